"""Models: backbones (``tinylib.models.backbones``) and detectors built on them.

Modules:

* ``backbones`` -- feature backbones: ResNets, BH-ResNet50, HRNet-18/32 and their BH versions;
* ``mobilenet`` -- MobileNetV1 x0.25 in the layout of the released ImageNet checkpoint;
* ``retinaface`` -- RetinaFace with a MobileNetV1 x0.25 body, in the released weights' layout.
"""
