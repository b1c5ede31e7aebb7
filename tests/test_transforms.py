"""Training transforms: boxes move with the pixels, the crop rule, per-box arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinylib.data import transforms as T

PALETTE = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255],
                    [0, 255, 255], [255, 255, 255], [255, 128, 0]], dtype=np.uint8)
SLACK = 2.0  # pixels of resampling slack around a box edge
TOL = 8  # max channel difference of a "pure" pixel


@st.composite
def scenes(draw, max_side=120):
    """A black image with non-overlapping rectangles, each a unique palette colour."""
    w = draw(st.integers(16, max_side))
    h = draw(st.integers(16, max_side))
    boxes = []
    for _ in range(draw(st.integers(0, len(PALETTE)))):
        bw = draw(st.integers(4, max(4, min(40, w - 1))))
        bh = draw(st.integers(4, max(4, min(40, h - 1))))
        x = draw(st.integers(0, w - bw))
        y = draw(st.integers(0, h - bh))
        b = (x, y, x + bw, y + bh)
        gap = 4  # keep rectangles apart so resampling does not mix two colours
        if all(b[0] >= o[2] + gap or o[0] >= b[2] + gap or b[1] >= o[3] + gap
               or o[1] >= b[3] + gap for o in boxes):
            boxes.append(b)
    img = np.zeros((h, w, 3), np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        img[y1:y2, x1:x2] = PALETTE[i]
    n = len(boxes)
    target = {"boxes": np.array(boxes, np.float32).reshape(-1, 4),
              "ignore": np.zeros(n, bool), "image_id": "synthetic/scene",
              "colour": np.arange(n), "attributes": {"blur": np.arange(n) * 10}}
    return img, target


def assert_boxes_match_pixels(img, target):
    H, W = img.shape[:2]
    b = target["boxes"]
    assert b.dtype == np.float32 and b.shape == (len(target["ignore"]), 4)
    assert np.all((b[:, 0] >= 0) & (b[:, 1] >= 0) & (b[:, 2] <= W) & (b[:, 3] <= H))
    assert np.all(b[:, 2] >= b[:, 0]) and np.all(b[:, 3] >= b[:, 1])
    # per-box arrays stayed aligned with their boxes
    np.testing.assert_array_equal(target["attributes"]["blur"], target["colour"] * 10)
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    for (x1, y1, x2, y2), c in zip(b, target["colour"]):
        pure = np.abs(img.astype(int) - PALETTE[c].astype(int)).max(axis=2) <= TOL
        # (a) no pure pixel of this colour outside the box (+ slack)
        outside = (xx < x1 - SLACK) | (xx > x2 + SLACK) | (yy < y1 - SLACK) | (yy > y2 + SLACK)
        assert not np.any(pure & outside), f"colour {c} found outside its box {x1, y1, x2, y2}"
        # (b) the box interior (- slack) is all this colour
        inner = (xx > x1 + SLACK) & (xx < x2 - SLACK) & (yy > y1 + SLACK) & (yy < y2 - SLACK)
        assert np.all(pure[inner]), f"box {x1, y1, x2, y2} does not cover colour {c}"


def visible_colours(img):
    present = []
    for i, c in enumerate(PALETTE):
        if np.any(np.abs(img.astype(int) - c.astype(int)).max(axis=2) <= TOL):
            present.append(i)
    return present


PROPS = settings(max_examples=150, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROPS
@given(scenes(), st.sampled_from([0.5, 1.0, 2.0, 0.75, 1.5]))
def test_rescale_moves_boxes_with_pixels(scene, scale):
    img, target = scene
    out, t = T.Rescale(scale)(img, target)
    assert out.shape[:2] == (round(img.shape[0] * scale), round(img.shape[1] * scale))
    assert_boxes_match_pixels(out, t)
    assert len(t["boxes"]) == len(target["boxes"])


@PROPS
@given(scenes(), st.integers(8, 140), st.integers(0, 2**32 - 1), st.sampled_from(["ignore", "drop"]))
def test_crop_moves_boxes_with_pixels_and_follows_the_rule(scene, size, seed, cut):
    img, target = scene
    crop = T.RandomCrop(size, min_visible=0.5, cut=cut)
    out, t = crop(img, target, np.random.default_rng(seed))
    assert out.shape == (size, size, 3)
    assert_boxes_match_pixels(out, t)
    x0, y0 = t["crop"][:2]
    for i, c in enumerate(t["colour"]):
        x1, y1, x2, y2 = target["boxes"][c]
        vis = (min(x2 - x0, size) - max(x1 - x0, 0)) * (min(y2 - y0, size) - max(y1 - y0, 0))
        frac = vis / ((x2 - x1) * (y2 - y1))
        assert frac > 0
        assert t["ignore"][i] == (frac < 0.5)
        if cut == "drop":
            assert frac >= 0.5
    # a box missing from the target is invisible, or (drop) less than half visible
    for c in set(range(len(target["boxes"]))) - set(t["colour"].tolist()):
        x1, y1, x2, y2 = target["boxes"][c]
        iw = max(0, min(x2 - x0, size) - max(x1 - x0, 0))
        ih = max(0, min(y2 - y0, size) - max(y1 - y0, 0))
        assert iw * ih == 0 or (cut == "drop" and iw * ih / ((x2 - x1) * (y2 - y1)) < 0.5)


@PROPS
@given(scenes(), st.integers(0, 2**32 - 1))
def test_flip_and_full_pipeline_keep_boxes_on_their_pixels(scene, seed):
    img, target = scene
    out, t = T.HorizontalFlip(p=1.0)(img, target, np.random.default_rng(seed))
    assert_boxes_match_pixels(out, t)
    back, t2 = T.HorizontalFlip(p=1.0)(out, t, np.random.default_rng(seed))
    np.testing.assert_array_equal(back, img)
    np.testing.assert_allclose(t2["boxes"], target["boxes"])
    geo = T.Compose([T.RandomRescale((0.5, 1.0, 2.0)), T.RandomCrop(64), T.HorizontalFlip(0.5)])
    out, t = geo(img, target, np.random.default_rng(seed))
    assert out.shape == (64, 64, 3)
    assert_boxes_match_pixels(out, t)


@PROPS
@given(scenes(max_side=60), st.integers(0, 2**32 - 1))
def test_jitter_keeps_geometry(scene, seed):
    img, target = scene
    out, t = T.PhotometricJitter(0.4, 0.4, 0.4, 0.1)(img, target, np.random.default_rng(seed))
    assert out.shape == img.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(t["boxes"], target["boxes"])
    for (x1, y1, x2, y2) in target["boxes"].astype(int):  # a flat rectangle stays flat
        patch = out[y1:y2, x1:x2].reshape(-1, 3).astype(int)
        assert np.ptp(patch, axis=0).max() <= 1


def test_crop_rule_examples():
    img = np.zeros((100, 100, 3), np.uint8)
    target = {"boxes": np.array([[10, 10, 30, 30],    # fully inside the crop
                                 [45, 10, 65, 30],    # 25 % visible
                                 [30, 30, 55, 50],    # 80 % visible
                                 [80, 80, 90, 90],    # outside
                                 [20, 20, 20, 25]],   # degenerate, centre inside
                                np.float32),
              "ignore": np.array([False, False, False, False, True]),
              "image_id": "x", "orig_size": np.array([100, 100, 7, 7, 7])}

    class FixedRng:  # puts the crop at (0, 0)
        def integers(self, lo, hi):
            return 0

    out, t = T.RandomCrop(50, cut="ignore")(img, target, FixedRng())
    np.testing.assert_array_equal(t["boxes"], [[10, 10, 30, 30], [45, 10, 50, 30],
                                                [30, 30, 50, 50], [20, 20, 20, 25]])
    assert t["ignore"].tolist() == [False, True, False, True]
    assert t["orig_size"].tolist() == [100, 100, 7, 7, 7]  # not a per-box array
    _, t = T.RandomCrop(50, cut="drop")(img, target, FixedRng())
    assert len(t["boxes"]) == 3 and t["ignore"].tolist() == [False, False, True]


def test_crop_pads_small_images_with_the_mean():
    img = np.full((20, 30, 3), 7, np.uint8)
    target = {"boxes": np.array([[0, 0, 30, 20]], np.float32), "ignore": np.array([False])}
    out, t = T.RandomCrop(50)(img, target, np.random.default_rng(1))
    assert out.shape == (50, 50, 3)
    x0, y0 = t["crop"][:2]
    assert -20 <= x0 <= 0 and -30 <= y0 <= 0
    np.testing.assert_array_equal(t["boxes"], [[-x0, -y0, 30 - x0, 20 - y0]])
    pad = np.ones((50, 50), bool)
    pad[-y0:20 - y0, -x0:30 - x0] = False
    assert (out[pad] == np.round(T.IMAGENET_MEAN_RGB).astype(np.uint8)).all()
    assert (out[~pad] == 7).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="cut"):
        T.RandomCrop(10, cut="maybe")
    with pytest.raises(ValueError, match="scales"):
        T.RandomRescale((0, 1))
    with pytest.raises(ValueError, match="uint8"):
        T.HorizontalFlip()(np.zeros((4, 4)), {"boxes": np.zeros((0, 4))}, np.random.default_rng())
    with pytest.raises(TypeError):
        T.Compose([1])


def test_valid_region_follows_rescale_crop_and_flip():
    """``target["valid"]`` marks the real (unpadded) pixels through every geometric step."""
    from tinylib.data.transforms import HorizontalFlip, RandomCrop, Rescale

    img = np.full((40, 60, 3), 200, np.uint8)
    tgt = {"boxes": np.array([[10, 10, 20, 30]], np.float32), "ignore": np.zeros(1, bool)}
    rng = np.random.default_rng(0)
    img2, t = Rescale(0.5)(img, tgt, rng)
    np.testing.assert_allclose(t["valid"], [0, 0, 30, 20])
    img3, t = RandomCrop(50, pad_value=(0, 0, 0))(img2, t, rng)  # crop larger than the image
    x1, y1, x2, y2 = t["valid"]
    assert (x2 - x1, y2 - y1) == (30, 20)
    real = img3[int(y1):int(y2), int(x1):int(x2)]
    assert (real == 200).all() and (img3.sum() == real.sum())  # padding is black
    img4, t2 = HorizontalFlip(1.0)(img3, t, rng)
    np.testing.assert_allclose(t2["valid"], [50 - x2, y1, 50 - x1, y2])
    assert (img4[int(y1):int(y2), int(50 - x2):int(50 - x1)] == 200).all()


def test_crop_size_is_width_height():
    img = np.zeros((100, 120, 3), np.uint8)
    out, t = T.RandomCrop((30, 20))(img, {"boxes": np.zeros((0, 4), np.float32)},
                                    np.random.default_rng(0))
    assert out.shape == (20, 30, 3) and t["valid"].tolist() == [0, 0, 30, 20]
