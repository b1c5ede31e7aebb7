"""The hybrid-resolution (HR) detector of *Finding Tiny Faces* (Hu & Ramanan, CVPR 2017).

One package, one job each:

* :mod:`tinylib.hr.templates` -- template shapes, the scale each was built for, A/B routing;
* :mod:`tinylib.hr.model` -- the network: a backbone + a stride-8 hypercolumn head, losses;
* :mod:`tinylib.hr.targets` -- dense template targets, OHEM, box deltas;
* :mod:`tinylib.hr.detect` -- image pyramid, A/B routing, decoding, NMS, weights, CLI;
* :mod:`tinylib.hr.train` -- YAML recipes -> :func:`tinylib.engine.train` (``python -m
  tinylib.hr.train CONFIG``);
* :mod:`tinylib.hr.soup` -- weight averaging of checkpoints of one run (the shipped
  real-photo weights are the average of two training stages);
* :mod:`tinylib.hr.cache` -- the pre-NMS candidates per image, cached on disk (the ablations'
  and the GAN's proposal stage's input; re-exported by :mod:`tinylib.compare.wider_subset`);
* :mod:`tinylib.hr.calibrate` -- score calibration across templates and pyramid levels
  (per-template and per-level biases fitted on the tuning half, :class:`Calibration`).

Import what you need from the submodules; importing the package loads nothing heavy.
"""
