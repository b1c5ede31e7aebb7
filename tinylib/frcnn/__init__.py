"""Faster R-CNN with a feature pyramid over any tinylib backbone (the bottom-heavy chapter).

One package, one job each, beside :mod:`tinylib.hr`:

* :mod:`tinylib.frcnn.model` -- torchvision's Faster R-CNN + FPN over
  :func:`tinylib.models.backbones.build_backbone` (ResNet-50, BH-ResNet50, HRNet18/32 and their
  BH versions), anchors for tiny objects, ignore regions, the collate function;
* :mod:`tinylib.frcnn.detect` -- inference in the library's box convention, WIDER-submission
  rows, fp16 weights (save/load), WIDER FACE and TinyPerson evaluation;
* :mod:`tinylib.frcnn.train` -- YAML recipes -> :func:`tinylib.engine.train`
  (``python -m tinylib.frcnn.train CONFIG``);
* :mod:`tinylib.frcnn.pretrain` -- tiny-image pre-training of a backbone (BH Table 5: CIFAR-100,
  ImageNet32 or the WIDER-32 stand-in), whose weights the detector starts from.

The comparisons made with it (the bottom-heavy tables of chapter 08, the toolbox of chapter 10)
are a layer above the detectors: :mod:`tinylib.compare.bottom_heavy`, :mod:`tinylib.compare.toolbox`.

Import what you need from the submodules; importing the package loads nothing heavy.
"""
