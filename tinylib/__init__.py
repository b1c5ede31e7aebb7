"""tinylib: the library behind the tiny-objects workbook.

Import submodules explicitly (``from tinylib import boxes``); importing ``tinylib`` does
nothing else — no seeding, no thread settings, no downloads.

Modules (the layers and the import direction: ``docs/DEVELOPING.md``, "The map"):

* ``config`` -- where data lives, the tier, device and precision, seeding;
* ``io`` -- atomic writes of whatever a user makes;
* ``boxes`` -- THE box convention and ``box_convert``;
* ``papers`` -- the papers' numbers in one table, keyed like the scorecard;
* ``scorecard`` -- every reproduced claim, "paper says / we get", in one table;
* ``measured`` -- the shipped tables (with provenance) every claim about a long run comes from;
* ``layers`` -- the layer map as data; ``python -m tinylib.layers`` prints it and checks the imports;
* ``data`` -- the data registry, loaders of every dataset, images, transforms, the synthetic world;
* ``analysis`` -- object scales, template clustering, receptive fields, FLOPs, anchors;
* ``models`` -- feature backbones, MobileNetV1 x0.25, RetinaFace;
* ``engine`` -- the one training loop (AMP, atomic checkpoints, exact resume, DDP), the recipe
  every detector trains from, the run-folder format, the weights schema, test-time augmentation;
* ``eval`` -- the benchmarks' protocols (WIDER FACE, FDDB, TinyPerson), benchmark-exact;
* ``hr`` -- the hybrid-resolution detector of *Finding Tiny Faces*;
* ``frcnn`` -- Faster R-CNN + FPN over any backbone (the bottom-heavy chapter, the toolbox);
* ``gan`` -- the GAN super-resolution tiny-face detector of Bai et al.;
* ``peers`` -- off-the-shelf face detectors behind one interface;
* ``compare`` -- detectors side by side: the WIDER val subset with the peers, the bottom-heavy
  comparison, the toolbox, the GAN against its proposals;
* ``studies`` -- Section 3 of *Finding Tiny Faces* as small, repeatable experiments;
* ``viz`` -- static drawings of detection results;
* ``widgets`` -- the ipywidgets explorers on top of ``viz``;
* ``prose`` -- "we get" prose rendered from measurements, and the markdown-number check;
* ``notebooks`` -- execute, strip and check the workbook's notebooks;
* ``report`` -- the results chapter: a build's scorecard, chapter by chapter;
* ``course`` -- the assignments as an nbgrader course.
"""

__version__ = "0.1.0"
