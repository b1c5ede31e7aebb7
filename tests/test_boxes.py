from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou as tv_box_iou

from tinylib import boxes as B


def test_wider_xywh_round_trip_and_convention():
    xywh = np.array([[10, 20, 5, 8], [0, 0, 1024, 700]], dtype=float)
    xyxy = B.xywh_to_xyxy(xywh)
    assert xyxy.tolist() == [[10, 20, 15, 28], [0, 0, 1024, 700]]
    assert np.array_equal(B.xyxy_to_xywh(xyxy), xywh)
    w, h = B.widths_heights(xyxy)
    assert w.tolist() == [5, 1024] and h.tolist() == [8, 700]
    assert B.box_area(xyxy, plus_one=True).tolist() == [6 * 9, 1025 * 701]


def test_iou_matches_torchvision_without_plus_one():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 50, (7, 2))
    a = np.hstack([a, a + rng.uniform(1, 30, (7, 2))])
    b = rng.uniform(0, 50, (5, 2))
    b = np.hstack([b, b + rng.uniform(1, 30, (5, 2))])
    ours = B.box_iou(a, b)
    ref = tv_box_iou(torch.tensor(a), torch.tensor(b)).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_plus_one_hand_case():
    # two 10x10 boxes (x2 = x + w) overlapping by 5 columns
    a = B.xywh_to_xyxy([[0, 0, 10, 10]])
    b = B.xywh_to_xyxy([[5, 0, 10, 10]])
    assert B.box_iou(a, b)[0, 0] == pytest.approx(50 / 150)
    # MATLAB: widths 11, overlap 6 columns x 11 rows
    assert B.box_iou(a, b, plus_one=True)[0, 0] == pytest.approx(66 / (121 + 121 - 66))
    # touching boxes: 0 without +1, one shared column with +1
    c = B.xywh_to_xyxy([[10, 0, 10, 10]])
    assert B.box_iou(a, c)[0, 0] == 0
    assert B.box_iou(a, c, plus_one=True)[0, 0] > 0


def test_degenerate_boxes_have_zero_area_and_iou():
    d = B.xywh_to_xyxy([[1050, 142, -26, 50], [3, 3, 0, 5]])
    assert B.is_degenerate(d).tolist() == [True, True]
    assert B.box_area(d).tolist() == [0, 0]
    assert (B.box_iou(d, d) == 0).all()
    assert B.box_iou(np.zeros((0, 4)), d).shape == (0, 2)


def test_shape_jaccard_eq1():
    # same shape -> 1; (h,w)=(10,10) vs (20,20) -> 100/400
    j = B.shape_jaccard([[10, 10], [20, 20]], [[10, 10], [20, 20], [10, 40]])
    np.testing.assert_allclose(j[0], [1, 0.25, 100 / 400])
    np.testing.assert_allclose(j[1], [0.25, 1, 200 / (400 + 400 - 200)])
    assert np.allclose(j[:, :2], j[:, :2].T)


def test_ellipse_to_box_upright_and_rotated():
    # angle = pi/2: major radius vertical -> box 2*minor wide, 2*major tall
    box = B.ellipse_to_box(20, 10, np.pi / 2, 100, 50)[0]
    np.testing.assert_allclose(box, [90, 30, 110, 70], atol=1e-9)
    box = B.ellipse_to_box(20, 10, 0.0, 100, 50)[0]
    np.testing.assert_allclose(box, [80, 40, 120, 60], atol=1e-9)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        B.box_iou(np.zeros((3, 5)), np.zeros((1, 4)))


def test_clip():
    np.testing.assert_allclose(B.clip_boxes([[-5, -5, 30, 40]], 20, 25), [[0, 0, 20, 25]])
