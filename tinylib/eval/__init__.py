"""Benchmark-exact evaluation: WIDER FACE (official MATLAB semantics), FDDB (discrete and
continuous scores), TinyPerson-style size-range AP. ``tinylib-eval`` is the command line.

Modules:

* ``pr`` -- precision/recall helpers shared by the evaluators (``voc_ap``);
* ``widerface`` -- WIDER FACE evaluation with the official ``eval_tools`` semantics;
* ``fddb`` -- FDDB evaluation and the box-to-ellipse regressor;
* ``tinyperson`` -- TinyPerson-style AP per absolute-size range;
* ``tta`` -- test-time augmentation (pyramid, flip) around any ``detect`` function;
* ``compare`` -- detectors side by side on the WIDER val subset (a layer above the protocols);
* ``cli`` -- ``tinylib-eval``, the command line.
"""
