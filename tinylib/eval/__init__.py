"""The benchmarks' protocols, and only they: pure functions of predictions and ground truth, with
the official semantics of WIDER FACE (the MATLAB toolbox), FDDB (discrete and continuous scores)
and TinyPerson-style size-range AP. They import nothing above the data layer (``docs/DEVELOPING.md``,
"The map"), so a detector's training run can score itself. ``tinylib-eval`` is the command line.

Modules:

* ``pr`` -- precision/recall helpers shared by the evaluators (``voc_ap``);
* ``widerface`` -- WIDER FACE evaluation with the official ``eval_tools`` semantics (subsets,
  per-size settings, published curves, the ground truth's own ceiling);
* ``pitfalls`` -- what chapter 06 shows going wrong: AP by a port that trusts the files' line
  order, and the made-up detections it is shown on;
* ``fddb`` -- FDDB evaluation and the box-to-ellipse regressor;
* ``tinyperson`` -- TinyPerson-style AP per absolute-size range;
* ``cli`` -- ``tinylib-eval``, the command line.

Elsewhere: drawing the curves (:mod:`tinylib.viz`), test-time augmentation
(:mod:`tinylib.engine.tta`), detectors side by side (:mod:`tinylib.compare`).
"""
