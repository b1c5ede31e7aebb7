"""Copy-paste of real faces at tiny scales and tiny-object oversampling (tinylib.data.augment):
pasted boxes match pasted pixels, placement respects boxes, ignore regions and padding, and the
sampler draws in proportion to its weights, deterministically per epoch."""

from __future__ import annotations

import numpy as np
import pytest

from tinylib.data import augment as G


def _bank():
    crop = np.full((20, 20, 3), 255, np.uint8)
    return G.FaceBank([crop], np.array([[5, 5, 15, 15]]))


def test_feather_mask_shape_and_falloff():
    m = G.feather_mask(20, 10, 0.3)
    assert m.shape == (20, 10) and m.max() == 1.0 and m[10, 5] == 1.0
    assert m[0, 0] < 0.1 and np.all(np.diff(m[:10, 5]) >= 0)
    assert np.all(G.feather_mask(4, 4, 0) == 1)


def test_pasted_boxes_match_pasted_pixels():
    img = np.zeros((100, 120, 3), np.uint8)
    cp = G.CopyPaste(_bank(), count=(3, 3), sizes=(10, 10), feather=0.0, max_overlap=0.0)
    tgt = {"boxes": np.zeros((0, 4), np.float32), "ignore": np.zeros(0, bool), "image_id": "x"}
    out, t = cp(img, tgt, np.random.default_rng(0))
    assert len(t["boxes"]) == 3 and t["pasted"].all() and not t["ignore"].any()
    white = out[..., 0] == 255
    for x1, y1, x2, y2 in t["boxes"]:
        assert x2 - x1 == pytest.approx(10) and y2 - y1 == pytest.approx(10)  # scale 1: face 10 px
        assert white[int(y1):int(y2), int(x1):int(x2)].all()
    # every white pixel belongs to a pasted 20-px crop around a box (face + 5 px margin)
    covered = np.zeros_like(white)
    for x1, y1, x2, y2 in t["boxes"].astype(int):
        covered[y1 - 5:y2 + 5, x1 - 5:x2 + 5] = True
    assert white.sum() == covered.sum() == 3 * 400 and (white == covered).all()
    assert img.max() == 0  # the input is untouched


def test_paste_avoids_boxes_ignore_regions_and_padding():
    img = np.zeros((100, 100, 3), np.uint8)
    tgt = {"boxes": np.array([[0, 0, 100, 40]], np.float32), "ignore": np.array([True]),
           "ignore_regions": np.array([[0, 40, 50, 100]], np.float32), "valid": (0, 0, 100, 100),
           "attributes": {"blur": np.array([2])}, "image_id": "x"}
    cp = G.CopyPaste(_bank(), count=(2, 2), sizes=(10, 10), feather=0.0, max_overlap=0.0)
    for seed in range(5):
        _, t = cp(img, tgt, np.random.default_rng(seed))
        new = t["boxes"][1:]
        assert (new[:, 1] - 5 >= 40).all() and (new[:, 0] - 5 >= 50).all()
        assert t["attributes"]["blur"].tolist() == [2] + [0] * len(new)
        assert t["ignore"].tolist() == [True] + [False] * len(new)
    tgt["valid"] = (0, 0, 60, 100)  # the rest is padding: no room for a 20-px crop right of 50
    _, t = cp(img, tgt, np.random.default_rng(0))
    assert len(t["boxes"]) == 1
    with pytest.raises(ValueError):
        G.CopyPaste(_bank(), sizes=(0, 3))


class _Targets:
    def __init__(self, sizes_per_image):
        self.t = [np.array([[0, 0, s, s] for s in sizes], np.float32).reshape(-1, 4) for sizes in sizes_per_image]

    def __len__(self):
        return len(self.t)

    def target(self, i):
        return {"boxes": self.t[i], "ignore": np.zeros(len(self.t[i]), bool)}

    def __getitem__(self, i):
        return i


def test_tiny_counts_and_oversampling():
    ds = _Targets([[5, 30], [8, 12, 40], [50], []])
    counts = G.tiny_counts(ds)
    assert counts.tolist() == [1, 2, 0, 0]
    over = G.Oversampled(ds, counts, alpha=2.0, seed=0)
    assert np.allclose(over.weights, np.array([3, 5, 1, 1]) / 10)
    seen = np.concatenate([(over.set_epoch(e), [over[i] for i in range(len(over))])[1] for e in range(2000)])
    assert np.allclose(np.bincount(seen, minlength=4) / len(seen), over.weights, atol=0.01)
    over.set_epoch(3)
    first = [over[i] for i in range(4)]
    over.set_epoch(4)
    over.set_epoch(3)
    assert [over[i] for i in range(4)] == first  # an epoch's draw depends on (seed, epoch) only
    with pytest.raises(ValueError):
        G.Oversampled(ds, [1, 2], alpha=1)


def test_face_bank_from_a_dataset(tmp_path):
    from tinylib.data.synthetic import make_world
    from tinylib.data.widerface import WiderFaceDataset

    ds = WiderFaceDataset(make_world(3, 0, image_size=(256, 192), seed=3, root=tmp_path / "w"), "train")
    bank = G.FaceBank.from_dataset(ds, min_size=8, max_faces=5)
    assert 0 < len(bank) <= 5
    for crop, (x1, y1, x2, y2) in zip(bank.crops, bank.boxes):
        assert crop.dtype == np.uint8 and 0 <= x1 < x2 <= crop.shape[1] and 0 <= y1 < y2 <= crop.shape[0]
        assert np.sqrt((x2 - x1) * (y2 - y1)) >= 8


def test_snip_ignores_exactly_the_out_of_range_boxes():
    from tinylib.data.transforms import Rescale

    img = np.zeros((200, 200, 3), np.uint8)
    tgt = {"boxes": np.array([[0, 0, 8, 8], [20, 20, 40, 40], [50, 50, 150, 150]], np.float32),
           "ignore": np.array([False, False, True]), "image_id": "x"}
    snip = G.ScaleAwareIgnore({2.0: (24, 128), 0.5: (0, 16)})
    _, t = snip(*Rescale(2.0)(img, tgt))  # sizes at 2x: 16, 40, 200
    assert t["ignore"].tolist() == [True, False, True]
    _, t = snip(*Rescale(0.5)(img, tgt))  # sizes at 0.5x: 4, 10, 50
    assert t["ignore"].tolist() == [False, False, True]
    _, t = snip(*Rescale(1.0)(img, tgt))  # no range for 1x: unchanged
    assert t["ignore"].tolist() == [False, False, True]
    with pytest.raises(ValueError):
        G.ScaleAwareIgnore({1.0: (20, 10)})
