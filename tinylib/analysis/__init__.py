"""Analyses of the papers' claims: object scales, template clustering, receptive fields,
parameters and FLOPs (import the submodules explicitly).

Modules:

* ``scales`` -- object-scale statistics: ImageNet categories, WIDER FACE face sizes, COCO-style
  files (TinyPerson);
* ``clustering`` -- k-medoids of box shapes with the Jaccard distance of Eq. 1;
* ``receptive_field`` -- theoretical and effective receptive fields of convolutional networks;
* ``flops`` -- parameters and multiply-adds per stage (Table 4 and Fig. 2 of the BH paper);
* ``anchors`` -- anchor recall by face size, S3FD-style densification, scale compensation.
"""
