"""Datasets: the registry of real files (``registry``), loaders and transforms.

Import submodules explicitly (``from tinylib.data import registry``); importing this
package loads nothing else.

Modules:

* ``registry`` -- every dataset file tinylib reads (size, checksum, source, terms, location;
  a package: catalog, digests, locating, image sets, downloads, ...);
* ``sources`` -- where a chapter's data comes from: real data root, synthetic world or a skip;
* ``cli`` -- ``tinylib-data``: the state of the data root, downloads, dataset statistics;
* ``stats`` -- per-split counts of every dataset tinylib can read;
* ``splits`` -- the tuning half and the test half of the WIDER val subset (shipped);
* ``_parse`` -- shared helpers of the annotation parsers (``AnnotationError``, MATLAB cells);
* ``widerface`` -- WIDER FACE: ground-truth files, evaluation ground truth, a torch Dataset;
* ``fddb`` -- FDDB fold lists and ellipse annotations;
* ``tinyperson`` -- TinyPerson's COCO-style json;
* ``imagenet`` -- ImageNet validation boxes with image sizes and class names;
* ``imagenet32`` -- downsampled ImageNet 32x32 (``.npz``);
* ``cifar`` -- CIFAR-100, binary version;
* ``tinycrops`` -- WIDER-32: tiny images cut from real WIDER FACE photos;
* ``templates`` -- the released 25 templates of the HR detector (``RefBox_N25*.mat``);
* ``images`` -- reading images as ``uint8 H x W x 3`` RGB, drawing annotations;
* ``transforms`` -- training transforms: rescale, fixed-size crop, flip, photometric jitter;
* ``augment`` -- small-object augmentation: copy-paste of real faces, oversampling;
* ``scale_match`` -- Scale Match and the tiny-person world built with it;
* ``synthetic`` -- the synthetic world (a package: ``scene`` paints, ``worlds`` writes).
"""
