"""The comparisons: detectors side by side on the same images, and the tables the chapters
record from them. A layer above the detectors (``docs/DEVELOPING.md``, "The map"): a comparison
may run any detector and peer, while the protocols it scores them with
(:mod:`tinylib.eval`) sit below the detectors.

Modules, one comparison each:

* ``wider_subset`` -- the HR detector and its peers on the WIDER val subset (chapter 07): the
  val images present, the HR detector's cached candidates and their re-selections (the
  ablations), the peers at their settings, AP and recall by size per detector, the operating
  point of the explorer, and the scorecard rows of the shipped tables (``wider_subset_detectors``,
  ``hr_ablation``, ``hr_calibration_sweep``, ``hr_recall_by_size``, ``hr_operating_point``);
* ``bottom_heavy`` -- the bottom-heavy comparison (chapter 08): run folders collected into the
  shipped ``bh_*.csv``, seed spreads, backbone deltas, the pre-training gain, speed side by side;
* ``toolbox`` -- the survey's small-object toolbox, measured (chapter 10): each technique (its
  recipe overrides or test-time setting) against one baseline detector, gains against the seed
  spread, costs, verdicts;
* ``gan_rescoring`` -- the GAN detector against its own proposals (chapter 09): the scorecard
  rows of ``gan_wider_subset``, ``gan_sr`` and ``gan_wider_ablation``.

Import what you need from the submodules; importing the package loads nothing.
"""
