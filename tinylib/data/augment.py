"""Small-object augmentation from the survey's toolbox: copy-paste of real faces at tiny scales,
and oversampling of the images that hold tiny objects.

**Copy-paste** (Kisantal et al., *Augmentation for small object detection*, 2019; Ghiasi et
al., 2021). :class:`FaceBank` cuts real face crops (with a margin of context) out of training
images; :class:`CopyPaste` is a transform ``(image, target, rng) -> (image, target)`` (the
contract of :mod:`tinylib.data.transforms`) that pastes ``n`` of them into an image at a face
size drawn from ``sizes`` (px, ``sqrt(w h)`` of the face box), each blended with a
**feathered mask** (alpha 1 inside, falling linearly to 0 over the outer ``feather`` fraction
of the crop, so no hard seam teaches the detector a shortcut), and appends the pasted face
boxes as positives. Placement respects what is there: a pasted crop never covers more than
``max_overlap`` of any existing box's area (ignored boxes and ignore regions included), and
never lands on padding (``target["valid"]``); a paste that finds no place in ``tries`` draws is
skipped. Per-box arrays of the target (``attributes``...) grow with zeros for pasted boxes.

**Oversampling** (Kisantal et al.). :func:`tiny_counts` counts the tiny objects of each image
from its annotations (no pixels read); :class:`Oversampled` wraps a dataset so that each epoch
draws its ``len`` indices with probability proportional to ``1 + alpha * count``, seeded from
``(seed, epoch)`` -- deterministic, so the engine's exact resume still holds.

**Scale-aware training, SNIP style** (Singh & Davis, *An analysis of scale invariance in object
detection -- SNIP*, CVPR 2018). :class:`ScaleAwareIgnore` runs after the rescale of a
multi-scale recipe and marks every box whose size at the image's current scale lies outside the
valid range of that scale as *ignore* (left out of the loss, neither positive nor negative),
so each scale trains only the object sizes its receptive fields suit.
"""

from __future__ import annotations

import numpy as np
import torch.utils.data
from PIL import Image
from tqdm.auto import tqdm

from ..boxes import sqrt_area
from .transforms import NOT_PER_BOX

__all__ = ["FaceBank", "CopyPaste", "feather_mask", "tiny_counts", "Oversampled", "ScaleAwareIgnore"]


def feather_mask(h: int, w: int, feather: float = 0.25) -> np.ndarray:
    """Alpha ``(h, w)`` in 0..1: 1 in the middle, falling linearly to 0 at the border over the
    outer ``feather`` fraction of each side (0: a hard-edged box)."""
    def ramp(n):
        if feather <= 0:
            return np.ones(n)
        d = np.minimum(np.arange(n) + 0.5, n - np.arange(n) - 0.5) / (feather * n)
        return np.clip(d, 0, 1)
    return np.outer(ramp(h), ramp(w))


class FaceBank:
    """Real face crops with context: ``crops`` (uint8 arrays) and, per crop, the face box inside
    it (``boxes``, xyxy in the crop's pixels)."""

    def __init__(self, crops: list[np.ndarray], boxes: np.ndarray):
        if len(crops) != len(boxes) or not len(crops):
            raise ValueError(f"a face bank needs as many boxes as crops, and at least one "
                             f"(got {len(crops)} crops, {len(boxes)} boxes)")
        self.crops = list(crops)
        self.boxes = np.asarray(boxes, np.float64).reshape(-1, 4)

    def __len__(self) -> int:
        return len(self.crops)

    @classmethod
    def from_dataset(cls, dataset, *, min_size: float = 24.0, margin: float = 0.5,
                     max_faces: int = 500, seed: int = 0, progress: bool = False) -> FaceBank:
        """Faces of at least ``min_size`` px that are not ignored, from a detection dataset
        (``target(i)`` and ``paths``: :class:`~tinylib.data.widerface.WiderFaceDataset`), each
        cut with ``margin`` x its size of context on every side; at most ``max_faces``, spread
        over the images in a seeded random order."""
        from .images import read_image

        rng = np.random.default_rng(seed)
        crops, boxes = [], []
        for i in tqdm(rng.permutation(len(dataset)), disable=not progress, desc="face bank"):
            t = dataset.target(int(i))
            b = np.asarray(t["boxes"], np.float64).reshape(-1, 4)
            wh = b[:, 2:] - b[:, :2]
            ok = ~np.asarray(t["ignore"], bool) & (np.sqrt(np.clip(wh.prod(1), 0, None)) >= min_size)
            if not ok.any():
                continue
            img = read_image(dataset.paths[int(i)])
            h, w = img.shape[:2]
            for box, (bw, bh) in zip(b[ok], wh[ok]):
                x1, y1 = max(0, int(box[0] - margin * bw)), max(0, int(box[1] - margin * bh))
                x2, y2 = min(w, int(np.ceil(box[2] + margin * bw))), min(h, int(np.ceil(box[3] + margin * bh)))
                crops.append(img[y1:y2, x1:x2].copy())
                boxes.append(box - [x1, y1, x1, y1])
                if len(crops) >= max_faces:
                    return cls(crops, np.asarray(boxes))
        return cls(crops, np.asarray(boxes).reshape(-1, 4))


def _grow(value, n_old: int, n_new: int):
    """Per-box arrays of length ``n_old`` padded with zeros (False) to ``n_new``."""
    if isinstance(value, dict):
        return {k: (v if k in NOT_PER_BOX else _grow(v, n_old, n_new)) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n_old:
        pad = np.zeros((n_new - n_old, *value.shape[1:]), dtype=value.dtype)
        return np.concatenate([value, pad])
    return value


class CopyPaste:
    """Paste ``n`` (drawn from ``count`` = ``(lo, hi)``) bank faces at face sizes drawn
    log-uniformly from ``sizes`` px (module doc). ``ignore_regions`` in the target
    (``target["ignore_regions"]``, xyxy) are avoided like boxes."""

    def __init__(self, bank: FaceBank, *, count=(1, 4), sizes=(6.0, 20.0), feather: float = 0.25,
                 max_overlap: float = 0.1, tries: int = 20, p: float = 1.0):
        if not 0 < sizes[0] <= sizes[1]:
            raise ValueError(f"sizes must be 0 < lo <= hi, got {sizes}")
        self.bank, self.count, self.sizes = bank, tuple(count), tuple(float(s) for s in sizes)
        self.feather, self.max_overlap, self.tries, self.p = float(feather), float(max_overlap), int(tries), float(p)

    def _free(self, x1, y1, x2, y2, occupied: np.ndarray) -> bool:
        if not len(occupied):
            return True
        iw = np.clip(np.minimum(occupied[:, 2], x2) - np.maximum(occupied[:, 0], x1), 0, None)
        ih = np.clip(np.minimum(occupied[:, 3], y2) - np.maximum(occupied[:, 1], y1), 0, None)
        area = np.clip((occupied[:, 2] - occupied[:, 0]) * (occupied[:, 3] - occupied[:, 1]), 1e-6, None)
        return bool(np.all(iw * ih <= self.max_overlap * area))

    def __call__(self, image: np.ndarray, target: dict, rng: np.random.Generator):
        if rng.random() >= self.p:
            return image, target
        out = image.copy()
        h, w = out.shape[:2]
        boxes = np.asarray(target.get("boxes", np.zeros((0, 4))), np.float64).reshape(-1, 4)
        regions = np.asarray(target.get("ignore_regions", np.zeros((0, 4))), np.float64).reshape(-1, 4)
        occupied = np.concatenate([boxes, regions])
        vx1, vy1, vx2, vy2 = np.asarray(target.get("valid", (0, 0, w, h)), np.float64)
        new = []
        for _ in range(int(rng.integers(self.count[0], self.count[1] + 1))):
            k = int(rng.integers(len(self.bank)))
            crop, fb = self.bank.crops[k], self.bank.boxes[k]
            face = np.sqrt(max((fb[2] - fb[0]) * (fb[3] - fb[1]), 1e-6))
            scale = np.exp(rng.uniform(np.log(self.sizes[0]), np.log(self.sizes[1]))) / face
            cw, ch = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
            if cw > vx2 - vx1 or ch > vy2 - vy1:
                continue
            for _try in range(self.tries):
                x0 = int(rng.integers(int(np.ceil(vx1)), int(vx2 - cw) + 1))
                y0 = int(rng.integers(int(np.ceil(vy1)), int(vy2 - ch) + 1))
                if self._free(x0, y0, x0 + cw, y0 + ch, occupied):
                    break
            else:
                continue
            small = np.asarray(Image.fromarray(crop).resize((cw, ch), Image.Resampling.BOX), np.float64)
            alpha = feather_mask(ch, cw, self.feather)[..., None]
            patch = out[y0:y0 + ch, x0:x0 + cw].astype(np.float64)
            out[y0:y0 + ch, x0:x0 + cw] = np.clip(alpha * small + (1 - alpha) * patch + 0.5, 0, 255).astype(np.uint8)
            sx, sy = cw / crop.shape[1], ch / crop.shape[0]
            nb = np.array([x0 + fb[0] * sx, y0 + fb[1] * sy, x0 + fb[2] * sx, y0 + fb[3] * sy])
            new.append(nb)
            occupied = np.vstack([occupied, [x0, y0, x0 + cw, y0 + ch]])
        if not new:
            return out, target
        n_old = len(boxes)
        tgt = {k: (v if k in NOT_PER_BOX or k == "ignore_regions" else _grow(v, n_old, n_old + len(new)))
               for k, v in target.items()}
        tgt["boxes"] = np.vstack([boxes, new]).astype(np.float32)
        ign = np.asarray(target.get("ignore", np.zeros(n_old, bool)), bool)
        tgt["ignore"] = np.concatenate([ign, np.zeros(len(new), bool)])
        tgt["pasted"] = np.concatenate([np.asarray(target.get("pasted", np.zeros(n_old, bool)), bool),
                                        np.ones(len(new), bool)])
        return out, tgt


def tiny_counts(dataset, max_size: float = 20.0) -> np.ndarray:
    """Per image of ``dataset`` (anything with ``target(i)``), the number of boxes that are not
    ignored and at most ``max_size`` px (``sqrt(w h)``)."""
    out = np.zeros(len(dataset), dtype=np.int64)
    for i in range(len(dataset)):
        t = dataset.target(i)
        s = sqrt_area(np.asarray(t["boxes"], np.float64).reshape(-1, 4))
        out[i] = int(((s <= max_size) & (s > 0) & ~np.asarray(t["ignore"], bool)).sum())
    return out


class Oversampled(torch.utils.data.Dataset):
    """``dataset`` re-indexed each epoch: ``len(dataset)`` draws with replacement, image ``i``
    with probability proportional to ``1 + alpha * counts[i]`` (module doc). ``set_epoch``
    (called by the engine) redraws, and is passed on to the wrapped dataset."""

    def __init__(self, dataset, counts, alpha: float = 1.0, seed: int = 0):
        counts = np.asarray(counts, np.float64)
        if len(counts) != len(dataset):
            raise ValueError(f"{len(counts)} counts for a dataset of {len(dataset)}")
        if alpha < 0 or (counts < 0).any():
            raise ValueError("alpha and counts must be >= 0")
        self.dataset, self.seed = dataset, int(seed)
        w = 1.0 + float(alpha) * counts
        self.weights = w / w.sum()
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        rng = np.random.default_rng([self.seed, self.epoch])
        self.index = rng.choice(len(self.weights), size=len(self.weights), p=self.weights)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        return self.dataset[int(self.index[i])]


class ScaleAwareIgnore:
    """SNIP's valid ranges (module doc): ``ranges`` maps an image scale (``target["scale"]``,
    set by :class:`~tinylib.data.transforms.RandomRescale` / ``Rescale``) to ``(lo, hi)`` px;
    boxes whose size ``sqrt(w h)`` at that scale is outside ``[lo, hi]`` become ignored. A
    scale missing from ``ranges`` (or no ``scale`` in the target) uses ``default`` (None:
    leave the target as it is)."""

    def __init__(self, ranges: dict, default=None):
        self.ranges = {float(k): (float(v[0]), float(v[1])) for k, v in ranges.items()}
        for k, (lo, hi) in self.ranges.items():
            if not 0 <= lo < hi:
                raise ValueError(f"scale {k}: valid range must be 0 <= lo < hi, got {(lo, hi)}")
        self.default = default

    def range_for(self, scale) -> tuple[float, float] | None:
        if scale is not None:
            for k, r in self.ranges.items():
                if abs(k - float(scale)) < 1e-6:
                    return r
        return self.default

    def __call__(self, image, target: dict, rng=None):
        r = self.range_for(target.get("scale"))
        if r is None:
            return image, target
        size = sqrt_area(np.asarray(target["boxes"], np.float64).reshape(-1, 4))
        out = dict(target)
        ign = np.asarray(target.get("ignore", np.zeros(len(size), bool)), bool)
        out["ignore"] = ign | (size < r[0]) | (size > r[1])
        return image, out
