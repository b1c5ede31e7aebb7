"""Section 3 of *Finding Tiny Faces* as small, repeatable experiments: context (Fig. 4),
foveal descriptors (Fig. 5) and template resolution (Fig. 7) for **one fixed face size**.

The paper asks "what is the best way to find faces of a fixed size (25x20, height x width)?"
and answers it with scanning-window detectors: a fully convolutional network whose heatmap
value at ``(x, y)`` scores a fixed-size face centred there. We ask the same question on
*windows*: crops centred on a candidate position, scored by the network's output at the
crop centre (= one pixel of the heatmap).

Layout (everything is re-exported here: ``from tinylib import studies``)
------------------------------------------------------------------------
* :mod:`.specs` — :class:`StudySpec` (one experimental condition: target face size
  ``face_hw``, template resolution ``resolution`` (the paper's sigma: the template sees
  faces of ``sigma * face_hw``), context ``"tight"`` (everything outside the face box + a
  small margin blanked) or ``"loose"`` (the full window), the feature ``layers`` read at the
  centre (several = the "foveal"/hypercolumn descriptor) and the training budget);
  :func:`budget` (quick / full mode) and the standard conditions :func:`context_specs`,
  :func:`foveal_specs`, :func:`resolution_specs`.
* :mod:`.scenes` — the images the windows are cut from, chosen in one place by
  :func:`study_data`: **real WIDER FACE images** (train windows from ``WIDER_train``, test
  windows from ``WIDER_val``; :func:`real_scenes`, faces picked by :func:`usable_faces`)
  when the data root holds them, else the **synthetic world** (:func:`render_scenes`, the
  embedded default); :class:`StudyData` says which (:meth:`StudyData.note`).
* :mod:`.windows` — :func:`sample_windows`: positives centred on faces rescaled to exactly
  ``face_hw`` and only *then* interpolated by sigma (a 2x template sees no more detail than
  the 1x one, as with the paper's "2X upsampled (interpolated) test image"), negatives at
  random positions plus hard ones (shifted off a face, or a face of the wrong size);
  :func:`context_mask`, :func:`window_grid`.
* :mod:`.model` — :class:`StudyNet`, a small FCN (``arch="tiny"``, CPU-friendly) or
  torchvision ResNet-18 stages (``arch="resnet18"``, random init, for a GPU) read out at the
  window centre; :func:`analytic_receptive_field` and :func:`window_rf_extent` (the window
  region that reaches the centre score) measure what each model can see.
* :mod:`.training` — :func:`train_classifier` through :func:`tinylib.engine.train` (AdamW,
  cosine schedule, AMP from :func:`tinylib.config.runtime`) on :class:`BalancedBatches`;
  :func:`window_ap`: window-level AP (VOC AP via :func:`tinylib.eval.pr.voc_ap`; test windows
  at a fixed 1:``test_neg_per_pos`` ratio), not the WIDER FACE protocol: only differences
  between conditions are meaningful.
* :mod:`.experiment` — :func:`run_studies`: train and test each condition over several
  seeds (each seed draws its own training windows and initialisation; the test windows are
  fixed); returns the comparison table.
* :mod:`.compare` — :func:`describe_gain` (the verdict: sign against the paper, inside or
  outside the seed spread) and :func:`comparison_claims` / :func:`gain_claim`: the scorecard
  rows as data, recorded by the notebooks with :func:`tinylib.scorecard.record`.
* :mod:`.plots` — :func:`ap_bars`: window AP per condition, ours beside the paper's.

Section 3 at the scale that decides (issue 25): ImageNet features, every real face
-------------------------------------------------------------------------------------
The modules above are the small live demo of the chapters (quick/cpu tier, a sample). The
**claims** come from one shipped table, ``tinylib/weights/studies_section3.csv``, made by
``tools/run_studies.py`` with a protocol fixed in advance:

* :mod:`.trunk` — :class:`TrunkStudyNet`: the template on the ImageNet MobileNetV1 x0.25 of
  the data bundle, cut into stages s1..s5 (strides 2..32, receptive fields 7 / 19 / 43 / 219
  / 315 px by the walker: :func:`stage_receptive_fields`), ``init="imagenet"`` (fine-tuned
  as the paper fine-tunes: lower stages frozen/slower, BatchNorm frozen) or ``"scratch"``.
* :mod:`.section3` — THE PROTOCOL (its docstring): the conditions of Fig. 4 (the RF of the
  stage read), Fig. 5 (s2+s3+s4 vs s4) and Fig. 7 (1x vs 2x / 0.5x) for 25x20 and real
  250x200 faces, every usable WIDER_train face, the test half of the WIDER val subset for the
  headline and its tuning half beside, window pools cut once (:func:`cut_fast`), resumable
  runs (:func:`run_section3`), the table (:func:`assemble`) and training curves.
* :mod:`.results` — the shipped table read back (:func:`read_section3`), the gains and
  verdicts (:func:`section3_gains`, :func:`section3_summary`), the scorecard claims
  (:func:`section3_claims`: ``scorecard.record(**c, table=t)``; ImageNet = the headline keys,
  scratch = ``*.scratch``) and the figures in the paper's layouts (:func:`fig4_context`,
  :func:`fig5_foveal`, :func:`fig7_resolution`, :func:`plot_curves`).
"""

from __future__ import annotations

from .compare import comparison_claims, describe_gain, gain_claim, paper_value
from .experiment import StudyResult, run_studies, run_study
from .model import StudyNet, analytic_receptive_field, build_model, window_rf_extent
from .plots import ap_bars
from .results import (
    fig4_context,
    fig5_foveal,
    fig7_resolution,
    plot_curves,
    read_section3,
    read_section3_curves,
    sample_claims,
    section3_claims,
    section3_gains,
    section3_summary,
)
from .scenes import (
    ASPECT_RANGE,
    MAX_DOWNSCALE,
    Scene,
    StudyData,
    real_scenes,
    render_scenes,
    scenes_from_dataset,
    scenes_from_root,
    study_data,
    study_scenes,
    usable_faces,
)
from .section3 import (
    PROTOCOL,
    Protocol,
    cut_fast,
    live_sample,
    run_section3,
    sample_protocol,
    section3_scenes,
)
from .specs import (
    LARGE_FACE,
    SMALL_FACE,
    STAGES,
    StudySpec,
    budget,
    context_specs,
    foveal_specs,
    resolution_specs,
)
from .training import BalancedBatches, balanced_batches, predict, train_classifier, window_ap
from .trunk import TrunkStudyNet, stage_receptive_fields
from .windows import (
    WindowSet,
    context_mask,
    cut_windows,
    plan_windows,
    sample_windows,
    torch_threads,
    window_grid,
)

__all__ = [
    "StudySpec",
    "WindowSet",
    "Scene",
    "budget",
    "scenes_from_dataset",
    "scenes_from_root",
    "render_scenes",
    "study_scenes",
    "StudyData",
    "study_data",
    "usable_faces",
    "paper_value",
    "real_scenes",
    "window_grid",
    "sample_windows",
    "context_mask",
    "StudyNet",
    "build_model",
    "analytic_receptive_field",
    "window_rf_extent",
    "BalancedBatches",
    "balanced_batches",
    "train_classifier",
    "predict",
    "window_ap",
    "StudyResult",
    "run_study",
    "run_studies",
    "torch_threads",
    "context_specs",
    "foveal_specs",
    "resolution_specs",
    "describe_gain",
    "comparison_claims",
    "gain_claim",
    "ap_bars",
    "SMALL_FACE",
    "LARGE_FACE",
    "STAGES",
    "MAX_DOWNSCALE",
    "ASPECT_RANGE",
    "plan_windows",
    "cut_windows",
    "TrunkStudyNet",
    "stage_receptive_fields",
    "PROTOCOL",
    "Protocol",
    "cut_fast",
    "run_section3",
    "live_sample",
    "sample_protocol",
    "section3_scenes",
    "read_section3",
    "read_section3_curves",
    "section3_gains",
    "section3_summary",
    "section3_claims",
    "sample_claims",
    "fig4_context",
    "fig5_foveal",
    "fig7_resolution",
    "plot_curves",
]
