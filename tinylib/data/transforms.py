"""Training transforms for detectors: rescale, fixed-size crop, flip, photometric jitter.

A transform is a callable ``(image, target, rng) -> (image, target)`` (see
``docs/DEVELOPING.md``): ``image`` is ``uint8 H x W x 3`` RGB, ``target`` a dict with
``boxes`` (``float32 (N, 4)`` xyxy, continuous pixel coordinates, ``tinylib.boxes``),
``ignore`` (``bool (N,)``) and any other entries; ``rng`` a ``numpy.random.Generator``.
Transforms never modify their inputs in place.

**Per-box arrays.** Every NumPy array in the target whose first dimension is ``N`` (also
inside nested dicts such as ``target["attributes"]``) is treated as one value per box and
filtered together with ``boxes`` when boxes are dropped. Keys in :data:`NOT_PER_BOX`
(``image_id``, ``orig_size``, ``size``, ``scale``, ``crop``, ``flipped``) are never
filtered.

**The crop rule** (:class:`RandomCrop`). A box cut by the crop is clipped to the crop. If
less than ``min_visible`` (default 0.5) of its area remains inside, it is kept **as
ignore** (``cut="ignore"``, the default: a half-visible face is neither a positive nor a
negative) or dropped (``cut="drop"``). A box with nothing left inside the crop is always
dropped. Degenerate boxes (zero or negative width or height) count as visible when their
centre lies inside the crop. Padding (image smaller than the crop) is filled with
``pad_value`` (default: the ImageNet mean RGB) and never covers a box.

The HR detector's training recipes compose these in ``tinylib.hr.train``
(``paper_sampling`` / ``PaperSampling``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

__all__ = [
    "IMAGENET_MEAN_RGB",
    "NOT_PER_BOX",
    "select_boxes",
    "RandomRescale",
    "Rescale",
    "RandomCrop",
    "HorizontalFlip",
    "PhotometricJitter",
    "Compose",
]

#: Mean RGB of ImageNet in 0..255 (the pad value of the crop by default).
IMAGENET_MEAN_RGB = (123.675, 116.28, 103.53)
#: Target keys that are never per-box arrays.
NOT_PER_BOX = frozenset({"image_id", "orig_size", "size", "scale", "crop", "flipped", "valid"})


def _valid(target: dict, w: int, h: int) -> np.ndarray:
    """The region of real (not padded) pixels, ``[x1, y1, x2, y2]``: ``target["valid"]`` if a
    transform already set it, else the whole image. Detectors ignore windows that reach into
    padding (the HR detector's "border cases"), so every geometric transform carries it."""
    v = target.get("valid")
    return np.asarray(v if v is not None else (0, 0, w, h), dtype=np.float64).reshape(4)


def _check(image: np.ndarray, target: dict) -> tuple[np.ndarray, int]:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 \
            or image.dtype != np.uint8:
        got = getattr(image, "shape", type(image)), getattr(image, "dtype", None)
        raise ValueError(f"image must be a uint8 H x W x 3 array, got {got}")
    boxes = np.asarray(target.get("boxes", np.zeros((0, 4))), dtype=np.float32).reshape(-1, 4)
    return boxes, len(boxes)


def _copy_target(target: dict) -> dict:
    out = {}
    for k, v in target.items():
        out[k] = _copy_target(v) if isinstance(v, dict) else v
    return out


def _filter(value, keep: np.ndarray, n: int):
    if isinstance(value, dict):
        return {k: (v if k in NOT_PER_BOX else _filter(v, keep, n)) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n:
        return value[keep]
    return value


def select_boxes(target: dict, keep) -> dict:
    """A new target keeping the boxes ``keep`` (bool mask or indices) and, consistently,
    every per-box array (nested dicts included)."""
    boxes = np.asarray(target["boxes"]).reshape(-1, 4)
    n = len(boxes)
    keep = np.asarray(keep)
    if keep.dtype == bool and keep.shape != (n,):
        raise ValueError(f"keep mask has shape {keep.shape}, expected ({n},)")
    out = {}
    for k, v in target.items():
        out[k] = v if k in NOT_PER_BOX else _filter(v, keep, n)
    out["boxes"] = boxes[keep].astype(np.float32).reshape(-1, 4)
    return out


def _with_boxes(target: dict, boxes: np.ndarray) -> dict:
    out = _copy_target(target)
    out["boxes"] = np.ascontiguousarray(boxes, dtype=np.float32).reshape(-1, 4)
    if "ignore" not in out:
        out["ignore"] = np.zeros(len(out["boxes"]), dtype=bool)
    return out


def _resize_uint8(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image.copy()
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


class Rescale:
    """Resize by a fixed factor (bilinear, antialiased); boxes are scaled by the exact
    factors of the rounded size and clipped to the new image."""

    def __init__(self, scale: float):
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.scale = float(scale)

    def __call__(self, image, target, rng=None):
        return _rescale(image, target, self.scale)

    def __repr__(self):
        return f"Rescale({self.scale})"


def _rescale(image, target, scale):
    boxes, _ = _check(image, target)
    h, w = image.shape[:2]
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    out = _resize_uint8(image, nw, nh)
    b = boxes.astype(np.float64)
    b[:, [0, 2]] *= nw / w
    b[:, [1, 3]] *= nh / h
    # float rounding must not push a box edge on the image border past it
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, nw)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, nh)
    t = _with_boxes(target, b)
    t["scale"] = float(target.get("scale", 1.0)) * scale
    v = _valid(target, w, h) * [nw / w, nh / h, nw / w, nh / h]
    t["valid"] = np.clip(v, 0, [nw, nh, nw, nh])
    return out, t


class RandomRescale:
    """Resize by a factor drawn uniformly from ``scales`` (Tiny Faces: 0.5, 1, 2)."""

    def __init__(self, scales: Sequence[float] = (0.5, 1.0, 2.0)):
        scales = tuple(float(s) for s in scales)
        if not scales or any(not s > 0 for s in scales):
            raise ValueError(f"scales must be positive numbers, got {scales}")
        self.scales = scales

    def __call__(self, image, target, rng):
        return _rescale(image, target, self.scales[int(rng.integers(len(self.scales)))])

    def __repr__(self):
        return f"RandomRescale({self.scales})"


class RandomCrop:
    """A ``size_wh`` window (an int for a square, or ``(width, height)``) at a uniformly
    random position (padded with ``pad_value`` where the image is smaller); see the crop
    rule in the module doc."""

    def __init__(self, size_wh: int | tuple[int, int] = 500, pad_value=IMAGENET_MEAN_RGB,
                 min_visible: float = 0.5, cut: str = "ignore"):
        self.width, self.height = ((size_wh, size_wh) if np.isscalar(size_wh)
                                   else (int(size_wh[0]), int(size_wh[1])))
        if self.width < 1 or self.height < 1:
            raise ValueError(f"crop size must be >= 1, got {size_wh}")
        if not 0.0 <= min_visible <= 1.0:
            raise ValueError(f"min_visible must be in [0, 1], got {min_visible}")
        if cut not in ("ignore", "drop"):
            raise ValueError(f"cut must be 'ignore' or 'drop', got {cut!r}")
        pad = np.broadcast_to(np.asarray(pad_value, dtype=np.float64), (3,))
        self.pad_value = np.clip(np.rint(pad), 0, 255).astype(np.uint8)
        self.min_visible = float(min_visible)
        self.cut = cut

    def __call__(self, image, target, rng):
        boxes, n = _check(image, target)
        h, w = image.shape[:2]
        cw, ch = self.width, self.height
        x0 = int(rng.integers(min(0, w - cw), max(0, w - cw) + 1))
        y0 = int(rng.integers(min(0, h - ch), max(0, h - ch) + 1))
        out = np.empty((ch, cw, 3), dtype=np.uint8)
        out[:] = self.pad_value
        sx0, sy0 = max(x0, 0), max(y0, 0)
        sx1, sy1 = min(x0 + cw, w), min(y0 + ch, h)
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
        b = boxes.astype(np.float64) - [x0, y0, x0, y0]
        clipped = b.copy()
        clipped[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, cw)
        clipped[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, ch)
        bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        area = bw * bh
        degenerate = (bw <= 0) | (bh <= 0)
        inter = np.clip(clipped[:, 2] - clipped[:, 0], 0, None) * \
            np.clip(clipped[:, 3] - clipped[:, 1], 0, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            visible = np.where(degenerate, 0.0, inter / np.where(area > 0, area, 1.0))
        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
        centre_in = (cx >= 0) & (cx <= cw) & (cy >= 0) & (cy <= ch)
        visible = np.where(degenerate, centre_in.astype(np.float64), visible)
        keep = (inter > 0) | (degenerate & centre_in)
        partial = visible < self.min_visible
        if self.cut == "drop":
            keep &= ~partial
        t = _with_boxes(target, clipped)
        ignore = np.asarray(t.get("ignore", np.zeros(n, bool)), dtype=bool).reshape(n).copy()
        if self.cut == "ignore":
            ignore |= partial
        t["ignore"] = ignore
        t = select_boxes(t, keep)
        t["crop"] = np.array([x0, y0, x0 + cw, y0 + ch], dtype=np.int64)
        v = _valid(target, w, h) - [x0, y0, x0, y0]
        t["valid"] = np.clip(v, 0, [cw, ch, cw, ch])
        return out, t

    def __repr__(self):
        return (f"RandomCrop(({self.width}, {self.height}), pad_value={tuple(self.pad_value)}, "
                f"min_visible={self.min_visible}, cut={self.cut!r})")


class HorizontalFlip:
    """Mirror left-right with probability ``p``: ``x1' = W - x2``, ``x2' = W - x1``."""

    def __init__(self, p: float = 0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = float(p)

    def __call__(self, image, target, rng):
        boxes, _ = _check(image, target)
        if rng.random() >= self.p:
            return image, _with_boxes(target, boxes)
        w = image.shape[1]
        b = boxes.copy()
        b[:, 0], b[:, 2] = w - boxes[:, 2], w - boxes[:, 0]
        t = _with_boxes(target, b)
        t["flipped"] = not bool(target.get("flipped", False))
        v = _valid(target, w, image.shape[0])
        t["valid"] = np.array([w - v[2], v[1], w - v[0], v[3]])
        return np.ascontiguousarray(image[:, ::-1]), t

    def __repr__(self):
        return f"HorizontalFlip(p={self.p})"


class PhotometricJitter:
    """Random brightness, contrast and saturation factors in ``[1 - a, 1 + a]`` and a hue
    rotation of up to ``hue`` turns, applied in a random order; boxes unchanged."""

    def __init__(self, brightness: float = 0.25, contrast: float = 0.25,
                 saturation: float = 0.25, hue: float = 0.02, p: float = 1.0):
        for name, v in (("brightness", brightness), ("contrast", contrast),
                        ("saturation", saturation)):
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {v}")
        if not 0.0 <= hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {hue}")
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue
        self.p = float(p)

    def __call__(self, image, target, rng):
        boxes, _ = _check(image, target)
        t = _with_boxes(target, boxes)
        if rng.random() >= self.p:
            return image, t
        img = image.astype(np.float32)
        for op in rng.permutation(4):
            if op == 0 and self.brightness:
                img *= rng.uniform(1 - self.brightness, 1 + self.brightness)
            elif op == 1 and self.contrast:
                m = img.mean()
                img = (img - m) * rng.uniform(1 - self.contrast, 1 + self.contrast) + m
            elif op == 2 and self.saturation:
                g = img.mean(axis=2, keepdims=True)
                img = g + (img - g) * rng.uniform(1 - self.saturation, 1 + self.saturation)
            elif op == 3 and self.hue:
                img = _rotate_hue(img, rng.uniform(-self.hue, self.hue) * 2 * np.pi)
        return np.clip(np.rint(img), 0, 255).astype(np.uint8), t

    def __repr__(self):
        return (f"PhotometricJitter(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue}, p={self.p})")


def _rotate_hue(img: np.ndarray, angle: float) -> np.ndarray:
    """Rotate colours about the gray axis (a linear hue shift in RGB)."""
    c, s = np.cos(angle), np.sin(angle)
    k = 1.0 / 3.0
    sq = np.sqrt(k)
    m = np.array([
        [c + (1 - c) * k, k * (1 - c) - sq * s, k * (1 - c) + sq * s],
        [k * (1 - c) + sq * s, c + k * (1 - c), k * (1 - c) - sq * s],
        [k * (1 - c) - sq * s, k * (1 - c) + sq * s, c + k * (1 - c)],
    ], dtype=np.float32)
    return img @ m.T


class Compose:
    """Apply transforms in order, each with the same ``rng``."""

    def __init__(self, transforms: Sequence):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"{t!r} is not a transform (not callable)")

    def __call__(self, image, target, rng):
        for t in self.transforms:
            image, target = t(image, target, rng)
        return image, target

    def __repr__(self):
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"

