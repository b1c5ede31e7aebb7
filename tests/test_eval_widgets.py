"""The explorer's pure functions: NMS on cached detections, WIDER labels, state and drawing."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from tinylib import widgets  # noqa: E402
from tinylib.eval import widerface as W  # noqa: E402

A, B = [0, 0, 10, 10], [50, 50, 10, 10]


def _gt():
    return W.SimpleEvalGT(boxes={"e/i": np.array([A, B])},
                          keep={s: {"e/i": np.array([0])} for s in W.SETTINGS})  # B ignored


def test_nms_and_labels():
    dets = np.array([A + [0.9], [1, 0, 10, 10, 0.8], B + [0.7], [90, 90, 5, 5, 0.6], A + [0.1]])
    kept = widgets.apply_nms(dets, 0.5)
    assert len(kept) == 3 and kept[0, 4] == 0.9  # the two near-duplicates of A are gone
    assert len(widgets.apply_nms(dets, 1.0)) == 5
    labels = widgets.classify(dets, _gt().boxes["e/i"], [0])
    assert labels.tolist() == ["tp", "fp", "ignored", "fp", "fp"]


def test_state_point_and_drawing():
    import matplotlib.pyplot as plt

    gt = _gt()
    dets = np.array([A + [0.9], B + [0.7], [90, 90, 5, 5, 0.6]])
    st = widgets.explorer_state(dets, gt, "e/i", "hard", score_thr=0.65, nms_iou=0.3)
    assert len(st.dets) == 2 and st.point == (1.0, 1.0)
    st = widgets.explorer_state(dets, gt, "e/i", "hard", score_thr=0.0, nms_iou=0.3)
    assert st.point == (0.5, 1.0) and st.recall.size == 1000
    axes = widgets.draw_state(st, np.zeros((100, 100, 3), np.uint8), gt.boxes["e/i"], [0])
    assert "1 TP, 1 FP, 1 ignored" in axes[0].get_title()
    plt.close("all")
    box = widgets.explorer(np.zeros((100, 100, 3), np.uint8), dets, gt, "e/i")
    assert len(box.children) == 2
    plt.close("all")
