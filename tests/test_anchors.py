"""Anchor recall, densification and scale-compensation matching (tinylib.analysis.anchors) on
hand-made cases and against brute-force enumeration of every anchor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from tinylib.analysis import anchors as A


def test_best_iou_on_and_off_the_grid():
    lv = [A.Level(4, ((8, 8),))]
    on = [[-4, -4, 4, 4]]           # centred on the grid point (0, 0)
    off = [[-2, -4, 6, 4]]          # 2 px off: IoU 6*8 / (64 + 64 - 48) = 0.6
    assert A.best_iou(on, lv)[0] == pytest.approx(1.0)
    assert A.best_iou(off, lv)[0] == pytest.approx(0.6)
    assert A.best_iou(off, A.densify(lv, 2))[0] == pytest.approx(1.0)  # a centre every 2 px


def test_densify_only_small_levels():
    lv = [A.Level(4, ((8, 8), (12, 12))), A.Level(8, ((16, 16),))]
    d = A.densify(lv, 2, max_size=12)
    assert [x.density for x in d] == [2, 1] and d[0].step == 2.0
    with pytest.raises(ValueError):
        A.densify(lv, 0)


def _brute(boxes, levels, size=96):
    """Every anchor of an image of ``size`` px, enumerated."""
    all_a = []
    for lv in levels:
        c = np.arange(-2 * lv.step, size + 2 * lv.step, lv.step)
        cx, cy = np.meshgrid(c, c)
        for w, h in lv.shapes:
            all_a.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1).reshape(-1, 4))
    return box_iou(torch.as_tensor(np.asarray(boxes, float)), torch.as_tensor(np.concatenate(all_a))).numpy()


def test_best_iou_and_counts_match_brute_force():
    rng = np.random.default_rng(0)
    levels = A.densify(A.frcnn_levels(((8, 12), (16, 22)), (1.0, 1.3), strides=(4, 8)), 2, max_size=10)
    xy = rng.uniform(20, 70, (40, 2))
    wh = rng.uniform(3, 30, (40, 2))
    boxes = np.hstack([xy, xy + wh])
    iou = _brute(boxes, levels)
    assert np.allclose(A.best_iou(boxes, levels), iou.max(1), atol=1e-9)
    for t in (0.35, 0.5):
        assert np.array_equal(A.matched_counts(boxes, levels, t), (iou >= t).sum(1))


def test_frcnn_levels_are_the_detectors_anchors():
    from tinylib.frcnn.model import (
        DEFAULT_ANCHOR_SIZES,
        FACE_ASPECT_RATIOS,
        anchor_table,
        build_frcnn,
    )

    torch.manual_seed(0)
    table = anchor_table(build_frcnn("resnet18", fpn_channels=16, representation_size=32))
    levels = A.frcnn_levels(DEFAULT_ANCHOR_SIZES, FACE_ASPECT_RATIOS)
    for k, lv in enumerate(levels):
        t = table[table["level"] == f"p{k + 2}"]
        assert sorted(lv.shapes) == sorted(zip(t["w"].astype(int), t["h"].astype(int)))
        assert lv.stride == t["stride"].iloc[0]


def test_recall_by_size_table():
    lv = [A.Level(4, ((8, 8),))]
    boxes = [[-4, -4, 4, 4], [-2, -4, 6, 4], [100, 100, 140, 140]]
    t = A.recall_by_size(boxes, lv, 0.5, bins=(0, 10, 1e9))
    assert t["faces"].tolist() == [2, 1]
    assert t["recall"].tolist() == [1.0, 0.0]  # 0.6 and 1.0 reach 0.5; a 40-px face does not
    assert t.loc["0-10", "mean_anchors"] == pytest.approx(1.5)  # the off-grid face: 2 anchors at 0.6


def test_scale_compensation_two_stages():
    iou = np.array([[0.6, 0.0], [0.4, 0.0], [0.3, 0.2], [0.0, 0.15], [0.0, 0.05], [0.2, 0.12]])
    got = A.scale_compensation(iou, thresh=0.35, top_n=2, min_iou=0.1)
    # stage 1: anchors 0, 1 -> face 0 (>= 0.35); face 1 has none: stage 2 gives it its best
    # unassigned anchors above 0.1: anchor 2 (0.2) and 3 (0.15); anchor 4 (0.05) never
    assert got.tolist() == [0, 0, 1, 1, -1, -1]
    assert A.scale_compensation(np.zeros((3, 0))).tolist() == [-1, -1, -1]
    with pytest.raises(ValueError):
        A.scale_compensation(np.zeros(3))
