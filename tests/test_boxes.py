from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou as tv_box_iou

from tinylib import boxes as B


def test_wider_xywh_round_trip_and_convention():
    xywh = np.array([[10, 20, 5, 8], [0, 0, 1024, 700]], dtype=float)
    xyxy = B.box_convert(xywh, "xywh", "xyxy")
    assert xyxy.tolist() == [[10, 20, 15, 28], [0, 0, 1024, 700]]
    assert np.array_equal(B.box_convert(xyxy, "xyxy", "xywh"), xywh)
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
    a = B.box_convert(np.asarray([[0, 0, 10, 10]], float), "xywh", "xyxy")
    b = B.box_convert(np.asarray([[5, 0, 10, 10]], float), "xywh", "xyxy")
    assert B.box_iou(a, b)[0, 0] == pytest.approx(50 / 150)
    # MATLAB: widths 11, overlap 6 columns x 11 rows
    assert B.box_iou(a, b, plus_one=True)[0, 0] == pytest.approx(66 / (121 + 121 - 66))
    # touching boxes: 0 without +1, one shared column with +1
    c = B.box_convert(np.asarray([[10, 0, 10, 10]], float), "xywh", "xyxy")
    assert B.box_iou(a, c)[0, 0] == 0
    assert B.box_iou(a, c, plus_one=True)[0, 0] > 0


def test_degenerate_boxes_have_zero_area_and_iou():
    d = B.box_convert(np.asarray([[1050, 142, -26, 50], [3, 3, 0, 5]], float), "xywh", "xyxy")
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


FORMATS = ("xyxy", "xywh", "cxcywh")


@pytest.mark.parametrize("in_fmt", FORMATS)
@pytest.mark.parametrize("out_fmt", FORMATS)
def test_box_convert_matches_torchvision_and_round_trips(in_fmt, out_fmt):
    from torchvision.ops import box_convert as tv_box_convert

    rng = np.random.default_rng(1)
    b = np.hstack([rng.uniform(0, 100, (9, 2)), rng.uniform(1, 40, (9, 2))])
    ours = B.box_convert(b, in_fmt, out_fmt)
    ref = tv_box_convert(torch.tensor(b), in_fmt, out_fmt).numpy()
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(B.box_convert(ours, out_fmt, in_fmt), b, rtol=0, atol=1e-12)
    t = B.box_convert(torch.tensor(b, dtype=torch.float32), in_fmt, out_fmt)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.shape == (9, 4)
    torch.testing.assert_close(t, tv_box_convert(torch.tensor(b, dtype=torch.float32),
                                                 in_fmt, out_fmt))


def test_box_convert_keeps_convention_dtype_shape_and_extra_columns():
    xywh = np.array([[10, 20, 5, 8], [0, 0, 1024, 700]], dtype=np.float32)
    xyxy = B.box_convert(xywh, "xywh", "xyxy")
    assert xyxy.dtype == np.float32 and xyxy.tolist() == [[10, 20, 15, 28], [0, 0, 1024, 700]]
    assert B.box_convert(xyxy, "xyxy", "cxcywh").tolist() == [[12.5, 24, 5, 8], [512, 350, 1024, 700]]
    rows = np.array([[1.0, 2, 11, 22, 0.5]])  # a score column rides along
    assert B.box_convert(rows, "xyxy", "xywh").tolist() == [[1, 2, 10, 20, 0.5]]
    assert B.box_convert(np.zeros((0, 5)), "xyxy", "xywh").shape == (0, 5)
    assert B.box_convert([], "xywh", "xyxy").shape == (0, 4)
    assert B.box_convert([1, 2, 3, 4], "xywh", "xyxy").tolist() == [[1, 2, 4, 6]]
    ints = np.array([[1, 2, 3, 4]])
    assert B.box_convert(ints, "xywh", "xyxy").dtype == ints.dtype
    assert not np.shares_memory(B.box_convert(xywh, "xywh", "xywh"), xywh)
    assert B.box_convert(torch.zeros(2, 3, 4), "cxcywh", "xyxy").shape == (2, 3, 4)
    with pytest.raises(ValueError, match="unknown box format"):
        B.box_convert(xywh, "xywh", "yxyx")
    with pytest.raises(ValueError, match="at least 4 columns"):
        B.box_convert(np.zeros((2, 3)), "xywh", "xyxy")
