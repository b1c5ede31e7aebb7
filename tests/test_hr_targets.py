"""Dense template targets, OHEM and the decode round trip (tinylib.hr.targets, tinylib.hr.detect)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tinylib.boxes import box_iou
from tinylib.hr import targets as T
from tinylib.hr.detect import RawDetections, decode_level


def test_hand_checked_single_template():
    # one 16x16 template, stride 8, a 4x4 heatmap = a 32x32 input; face centred at (12, 12)
    lab, reg = T.assign_targets(torch.tensor([[16.0, 16.0]]), torch.tensor([[4.0, 4, 20, 20]]),
                                4, 4, 8)
    lab = lab[0]
    assert lab[1, 1] == T.POSITIVE  # window (4,4,20,20): IoU 1
    assert lab[1, 2] == T.IGNORE  # window (12,4,28,20): IoU 128/384 = 0.33 -> in between
    assert lab[2, 2] == T.NEGATIVE  # window (12,12,28,28): IoU 64/448 = 0.14, inside image
    assert lab[0, 0] == T.IGNORE  # window (-4,-4,12,12) crosses the border
    assert lab[3, 3] == T.IGNORE  # window (20,20,36,36) crosses the border
    assert (lab == T.POSITIVE).sum() == 1
    assert torch.allclose(reg[0, :, 1, 1], torch.zeros(4))
    assert torch.count_nonzero(reg[0, :, 2, 2]) == 0  # no regression target off positives


def test_regression_target_is_faster_rcnn_delta():
    # face 18x16 at centre (13, 12): window centred (12,12) 16x16 -> dx = 1/16, dw = log(18/16)
    lab, reg = T.assign_targets(torch.tensor([[16.0, 16.0]]), torch.tensor([[4.0, 4, 22, 20]]),
                                4, 4, 8, ignore_border=False)
    assert lab[0, 1, 1] == T.POSITIVE
    expect = torch.tensor([1 / 16, 0.0, np.log(18 / 16), 0.0], dtype=torch.float32)
    assert torch.allclose(reg[0, :, 1, 1], expect, atol=1e-6)


def test_degenerate_faces_are_dropped_and_ignore_must_match_the_faces():
    sizes = torch.tensor([[16.0, 16.0], [8.0, 10.0]])
    face = torch.tensor([[4.0, 4, 20, 20]])
    flat = torch.tensor([[4.0, 4, 20, 20], [30.0, 4, 30, 20], [8.0, 9, 40, 9]])  # + no w, no h
    lab, reg = T.assign_targets(sizes, face, 4, 4, 8, match_best=0.3)
    lab2, reg2 = T.assign_targets(sizes, flat, 4, 4, 8, match_best=0.3,
                                  ignore=torch.tensor([False, True, False]))
    assert torch.equal(lab, lab2) and torch.equal(reg, reg2)
    empty, _ = T.assign_targets(sizes, torch.zeros((0, 4)), 4, 4, 8, match_best=0.3)
    assert not (empty == T.POSITIVE).any() and (empty == T.NEGATIVE).any()
    with pytest.raises(ValueError, match="ignore has 2 entries for 3 boxes"):
        T.assign_targets(sizes, flat, 4, 4, 8, ignore=torch.tensor([False, True]))


def test_padding_counts_as_border_and_ignored_faces():
    sizes = torch.tensor([[16.0, 16.0]])
    face = torch.tensor([[4.0, 4, 20, 20]])
    # real pixels only up to x=24: the window at column 2 (12..28) overlaps the padding
    lab, _ = T.assign_targets(sizes, face, 4, 4, 8, valid=(0, 0, 24, 32))
    assert lab[0, 2, 2] == T.IGNORE
    lab2, _ = T.assign_targets(sizes, face, 4, 4, 8)
    assert lab2[0, 2, 2] == T.NEGATIVE
    # the same face marked ignore: the matching window is neither positive nor negative
    lab3, _ = T.assign_targets(sizes, face, 4, 4, 8, ignore=torch.tensor([True]))
    assert lab3[0, 1, 1] == T.IGNORE and lab3[0, 2, 2] == T.NEGATIVE
    assert (lab3 == T.POSITIVE).sum() == 0


def test_no_faces_all_negative_inside_and_degenerate_boxes_dropped():
    lab, reg = T.assign_targets(torch.tensor([[8.0, 8.0]]), torch.zeros((0, 4)), 3, 3, 8)
    assert (lab == T.NEGATIVE).all() and not reg.any()
    lab2, _ = T.assign_targets(torch.tensor([[8.0, 8.0]]), torch.tensor([[5.0, 5, 5, 9]]), 3, 3, 8)
    assert (lab2 == T.NEGATIVE).all()


def test_matches_brute_force_iou():
    rng = np.random.default_rng(0)
    sizes = torch.tensor([[12.0, 14], [24, 30], [40, 44]])
    xy = rng.uniform(0, 90, (6, 2))
    wh = rng.uniform(10, 45, (6, 2))
    faces = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    H = W = 12
    lab, _ = T.assign_targets(sizes, torch.from_numpy(faces), H, W, 8, ignore_border=False)
    win = T.template_windows(sizes, H, W, 8).reshape(-1, 4).numpy()
    best = box_iou(win, faces).max(1).reshape(3, H, W)
    expect = np.full(best.shape, -1)
    expect[best < 0.3] = 0
    expect[best > 0.7] = 1
    assert np.array_equal(lab.numpy(), expect)


def test_ohem_counts():
    g = torch.Generator().manual_seed(0)
    labels = torch.full((2, 3, 20, 20), T.NEGATIVE, dtype=torch.int8)
    labels[0, 0, :, :10] = T.POSITIVE  # 200 positives in image 0
    labels[1, 1, :3, :3] = T.POSITIVE  # 9 positives in image 1
    labels[:, 2] = T.IGNORE
    loss = torch.full(labels.shape, 0.5)
    loss[1, 0, :10] = 0.01  # 200 easy negatives in image 1
    mask = T.ohem_sample(loss, labels, generator=g)
    pos = mask & (labels == T.POSITIVE)
    neg = mask & (labels == T.NEGATIVE)
    assert pos[0].sum() == 128 and neg[0].sum() == 128
    assert pos[1].sum() == 9 and neg[1].sum() == 128
    assert not (mask & (labels == T.IGNORE)).any()
    assert not (mask & (loss < 0.03)).any()
    # few hard negatives left: all of them, no more
    loss2 = torch.full(labels.shape, 0.001)
    loss2[0, 1, 0, :5] = 1.0
    mask2 = T.ohem_sample(loss2, labels, generator=g)
    assert mask2[0].sum() == 5 and mask2[1].sum() == 0


def test_ohem_random_but_reproducible():
    labels = torch.zeros((1, 1, 30, 30), dtype=torch.int8)
    loss = torch.ones(labels.shape)
    a = T.ohem_sample(loss, labels, generator=torch.Generator().manual_seed(1))
    b = T.ohem_sample(loss, labels, generator=torch.Generator().manual_seed(1))
    c = T.ohem_sample(loss, labels, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.sum() == 128


@pytest.mark.parametrize("stride", [8, 4])
def test_decode_round_trip(stride):
    """Targets turned into perfect predictions decode back to the boxes."""
    sizes = torch.tensor([[20.0, 22], [32, 40], [50, 60]])
    H, W = 160 // stride, 160 // stride
    cy, cx = T.location_centres(H, W, stride)
    # faces near template shapes, centred up to 1.5 px off a location centre
    spec = [(2, 2, 0.5, -1.0, 21, 23), (5, 10, 1.5, 0.5, 33, 41), (6, 3, -1.0, 1.0, 48, 58),
            (14, 14, 0.0, 1.5, 22, 21)]
    faces = torch.tensor([[cx[j * 8 // stride] + dx - w / 2, cy[i * 8 // stride] + dy - h / 2,
                           cx[j * 8 // stride] + dx + w / 2, cy[i * 8 // stride] + dy + h / 2]
                          for i, j, dx, dy, w, h in spec])
    labels, reg = T.assign_targets(sizes, faces, H, W, stride)
    # every face has a positive window
    boxes, scores, tpl = decode_level(torch.where(labels == T.POSITIVE, 20.0, -20.0), reg,
                                      sizes, stride, threshold=0.5)
    assert len(boxes) == int((labels == T.POSITIVE).sum()) > 0
    iou = box_iou(boxes.numpy(), faces.numpy())
    assert np.allclose(iou.max(1), 1.0, atol=1e-5)  # every decoded box is exactly a face
    raw = RawDetections(boxes.numpy(), scores.numpy(), tpl.numpy(), np.ones(len(boxes)),
                        [1.0], [0, 1, 2], [])
    final, _ = raw.select(0.5, 0.3)
    assert len(final) == len(faces)
    assert np.allclose(box_iou(final, faces.numpy()).max(0), 1.0, atol=1e-5)


def test_decode_scale_maps_back_to_original_image():
    sizes = torch.tensor([[20.0, 22]])
    face2x = torch.tensor([[30.0, 33, 51, 54]])  # the face in the 2x image
    labels, reg = T.assign_targets(sizes, face2x, 12, 12, 8)
    boxes, _, _ = decode_level(torch.where(labels == 1, 9.0, -9.0), reg, sizes, 8, 2.0,
                               threshold=0.5, image_hw=(48, 48))
    assert np.allclose(boxes.numpy(), (face2x / 2).numpy(), atol=1e-4)


def test_decode_deltas_inverse():
    win = torch.tensor([[0.0, 0, 10, 20], [5, 5, 40, 30]])
    gt = torch.tensor([[1.0, 2, 12, 19], [0, 0, 44, 35]])
    assert torch.allclose(T.decode_deltas(T.encode_deltas(gt, win), win), gt, atol=1e-5)


def test_match_best_gives_an_off_grid_tiny_face_its_positive():
    """A 20x22 face 4 px off the stride-8 grid reaches IoU 0.49 with the same-shape window:
    no positive at 0.7; with the RPN rule (``match_best``) exactly its best window is one,
    and its regression target points at the face."""
    sizes = torch.tensor([[20.0, 22.0], [60.0, 66.0]])
    face = torch.tensor([[30.0, 31.0, 50.0, 53.0]])  # centre (40, 42): 4 px off (36, 36)/(44, 44)
    labels, _ = T.assign_targets(sizes, face, 12, 12, 8)
    assert int((labels == T.POSITIVE).sum()) == 0
    labels, reg = T.assign_targets(sizes, face, 12, 12, 8, match_best=0.3)
    pos = torch.nonzero(labels == T.POSITIVE)
    assert len(pos) == 1 and int(pos[0, 0]) == 0  # the small template
    t, i, j = pos[0].tolist()
    win = T.template_windows(sizes, 12, 12, 8)[t, i, j]
    assert torch.allclose(T.decode_deltas(reg[t, :, i, j], win), face[0], atol=1e-4)
    # a face whose best window lies over the padding gets none
    labels, _ = T.assign_targets(sizes, face, 12, 12, 8, match_best=0.3, valid=(0, 0, 40, 96))
    assert int((labels == T.POSITIVE).sum()) == 0
