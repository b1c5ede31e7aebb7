"""The scene painter of the synthetic world: faces and persons rendered into images.

:func:`render_scene` paints one scene and returns the image with its face and person
tables; :mod:`tinylib.data.synthetic.worlds` writes many of them to disk in the official
layouts. The sections below describe what a scene holds and how face sizes are drawn.

What is in a scene (:func:`render_scene`)
-----------------------------------------
* **Faces**: the 100 real faces of ``skimage.data.lfw_subset()`` (25x25 grayscale crops,
  eyebrows to chin), colourised by mapping their luminance through a random skin-tone ramp,
  stretched to the face box (``w/h`` from WIDER's aspect distribution) and blended with a
  feathered elliptical alpha over a skin-coloured head of the same tone. The face box is
  the pasted crop, in integer pixels, so ``x y w h`` are exact.
* **Context**: every face sits on a person: hair (or a hat / bald head), neck, shoulders
  and a torso (sometimes legs) in clothes colours with soft texture. About 10 % of persons
  are seen from the back (hair where the face would be): persons without a face. Their
  proportions, colours and chances are the fields of :class:`PersonStyle`
  (:data:`PERSON_STYLE`); :func:`_render_person` paints them in named steps.
* **Hard negatives**: the 100 non-faces of ``lfw_subset`` colourised (half of them with
  skin ramps) and feathered like faces, plus skin-coloured blobs and textured clutter.
* **Backgrounds**: crops / flips / colour jitter of images shipped with scikit-image
  (coffee, chelsea, rocket, brick, grass, gravel, stereo_motorcycle, hubble_deep_field,
  immunohistochemistry, coins, clock, moon, text, page; grayscale ones tinted — no image with
  a human face: ``astronaut`` and ``camera`` are excluded) and scikit-learn
  (``china.jpg``, ``flower.jpg``), or procedural textures (multi-octave noise, gradients,
  stripes), with clutter objects on top.
* **Attributes** recorded WIDER-style: ``blur`` (0/1/2 from the Gaussian sigma relative to
  the face height, including a 0.35 px camera blur), ``illumination`` (1 = extreme gain
  < 0.55 or > 1.5), ``occlusion`` (fraction of the face ellipse covered by later layers —
  foreground objects or other persons: 0 < 2 %, 1 up to 33 %, 2 above), ``invalid`` (1 for
  the faces of dense far-away clusters), ``expression = pose = 0``.
* Global illumination gain, Gaussian sensor noise and JPEG (quality 92) at the end.

Rendering artefacts are avoided on purpose (tests/test_synthetic.py checks it): faces are
coloured like the scene, have no hard paste edge, never a constant patch, and a trivial
detector scoring windows by saturation, edge energy or local variance does not separate
face boxes from random boxes of the same size.

Face sizes
----------
``size_dist`` picks the face-height distribution (heights in pixels for the image width):

* ``None`` / ``"wider"``: the real WIDER FACE train face heights (resampled from
  ``tinylib.data.widerface.load_faces("train")`` when the data root has them, else the
  built-in log-normal fit :data:`WIDER_HEIGHT_LOGNORMAL`), scaled by ``width / 1024``
  (all WIDER images are 1024 px wide);
* ``"quick"``: log-normal with median 18 px and sigma 0.6 (most faces 8–60 px), what quick
  worlds use so that detectors learn something in minutes;
* a dict ``{"kind": "lognormal", "median": m, "sigma": s}``, or a 1-D array of heights
  (resampled);

always clipped to ``[min_face, 0.4 * height]`` so that a face fits the scene.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from functools import cache, lru_cache

import numpy as np
import pandas as pd
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage import data as skimage_data

from tinylib import config

log = logging.getLogger(__name__)

__all__ = [
    "WIDER_HEIGHT_LOGNORMAL",
    "WIDER_ASPECT_LOGNORMAL",
    "WIDER_IMAGE_WIDTH",
    "EVENTS",
    "EVENT_SPEC",
    "FACE_COLUMNS",
    "BACKGROUND_SOURCES",
    "SizeDistribution",
    "PersonStyle",
    "PERSON_STYLE",
    "face_size_distribution",
    "fit_wider_heights",
    "face_crop_library",
    "background_library",
    "render_background",
    "render_scene",
]

#: Log-normal fit of WIDER FACE train face heights (pixels, in the 1024 px wide images):
#: mean and std of ``ln(h)`` over the 159,393 train faces with ``w > 0`` and ``h > 0`` of
#: ``wider_face_train_bbx_gt.txt`` (median ``exp(3.1047) = 22.3`` px; real percentiles
#: 5/25/50/75/95 % = 6/12/20/38/124 px). Refit with :func:`fit_wider_heights`.
WIDER_HEIGHT_LOGNORMAL = (3.1047, 0.9073)
#: Mean and std of ``ln(w / h)`` over the same faces (median ``w/h = 0.79``).
WIDER_ASPECT_LOGNORMAL = (-0.2424, 0.1996)
WIDER_IMAGE_WIDTH = 1024

#: Events (scene types) in WIDER naming; each has its own person count and layout.
EVENTS = ("0--Crowd", "1--Street", "2--Group", "3--Meeting")
#: Per event: persons per 512x384 image, ground-plane perspective, chance of a dense cluster.
EVENT_SPEC = {
    # persons per 512x384 image (min, max), ground-plane perspective, chance of a dense cluster
    "0--Crowd": {"persons": (14, 30), "perspective": True, "cluster": 0.4},
    "1--Street": {"persons": (6, 14), "perspective": True, "cluster": 0.15},
    "2--Group": {"persons": (2, 7), "perspective": False, "cluster": 0.0},
    "3--Meeting": {"persons": (4, 10), "perspective": False, "cluster": 0.0},
}
#: Columns of a face row, in the order of the official WIDER FACE text files.
FACE_COLUMNS = ["x", "y", "w", "h", "blur", "expression", "illumination", "invalid",
                "occlusion", "pose"]
_REF_AREA = 512 * 384

# Skin tones (RGB in 0..1), light to dark; a face's tone is a random mix of two neighbours.
_SKIN_TONES = np.array([
    [0.96, 0.80, 0.69], [0.92, 0.72, 0.58], [0.85, 0.64, 0.48], [0.78, 0.55, 0.40],
    [0.66, 0.45, 0.30], [0.52, 0.35, 0.24], [0.40, 0.27, 0.19], [0.30, 0.20, 0.15],
])
_HAIR = np.array([
    [0.08, 0.06, 0.05], [0.20, 0.13, 0.08], [0.35, 0.24, 0.14], [0.55, 0.42, 0.25],
    [0.75, 0.62, 0.40], [0.45, 0.20, 0.10], [0.60, 0.60, 0.60], [0.15, 0.15, 0.17],
])


# ---------------------------------------------------------------------------------------
# face sizes
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SizeDistribution:
    """Face heights in pixels: ``kind`` is ``"lognormal"`` (``median``, ``sigma``, heights
    for an image ``ref_width`` wide) or ``"empirical"`` (resample ``heights``)."""

    kind: str
    median: float = 0.0
    sigma: float = 0.0
    heights: tuple = ()
    ref_width: float | None = None  # scale by width / ref_width; None = no scaling
    source: str = ""

    def sample(self, rng: np.random.Generator, n: int, width: int) -> np.ndarray:
        scale = 1.0 if self.ref_width is None else width / self.ref_width
        if self.kind == "lognormal":
            h = self.median * np.exp(self.sigma * rng.standard_normal(n))
        elif self.kind == "empirical":
            arr = np.asarray(self.heights, dtype=np.float64)
            h = arr[rng.integers(0, len(arr), size=n)] * np.exp(0.05 * rng.standard_normal(n))
        else:  # pragma: no cover - guarded in face_size_distribution
            raise ValueError(f"unknown size distribution kind {self.kind!r}")
        return h * scale

    def describe(self) -> dict:
        """JSON-able summary (goes into the manifest and the cache key)."""
        d = {"kind": self.kind, "ref_width": self.ref_width, "source": self.source}
        if self.kind == "lognormal":
            d.update(median=round(float(self.median), 6), sigma=round(float(self.sigma), 6))
        else:
            arr = np.asarray(self.heights, dtype=np.float64)
            d.update(n=len(arr), sha1=hashlib.sha1(arr.tobytes()).hexdigest()[:16],
                     median=float(np.median(arr)))
        return d


def fit_wider_heights(path: str | os.PathLike | None = None) -> tuple[float, float]:
    """Mean and std of ``ln(h)`` of the faces (``w, h > 0``) in a WIDER ``*_bbx_gt.txt``
    (default: the train file of the data root). Gives :data:`WIDER_HEIGHT_LOGNORMAL`."""
    h = _wider_heights(path)
    lh = np.log(h)
    return float(lh.mean()), float(lh.std())


def _wider_heights(path=None) -> np.ndarray:
    # imported here: the WIDER loader pulls in torch, which the render workers never need
    from tinylib.data import widerface

    if path is None:
        df = widerface.load_faces("train")
    else:
        df = widerface.read_bbx_gt(path)
    ok = (df["w"] > 0) & (df["h"] > 0)
    return df.loc[ok, "h"].to_numpy(np.float64)


@lru_cache(maxsize=4)
def _real_wider_heights(root: str) -> tuple | None:
    try:
        # imported here: the WIDER loader pulls in torch, which the render workers never need
        from tinylib.data import widerface

        df = widerface.load_faces("train", root=root)
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        log.info("real WIDER train heights unavailable (%s); using the log-normal fit", exc)
        return None
    ok = (df["w"] > 0) & (df["h"] > 0)
    return tuple(df.loc[ok, "h"].to_numpy(np.float64).tolist())


def face_size_distribution(spec=None) -> SizeDistribution:
    """Turn a ``size_dist`` argument into a :class:`SizeDistribution` (see module doc)."""
    if isinstance(spec, SizeDistribution):
        return spec
    if spec is None or (isinstance(spec, str) and spec == "wider"):
        root = config.data_root(must_exist=False)
        heights = None
        if (root / "widerface" / "wider_face_train_bbx_gt.txt").exists():
            heights = _real_wider_heights(str(root))
        if heights:
            return SizeDistribution("empirical", heights=heights, ref_width=WIDER_IMAGE_WIDTH,
                                    source="WIDER train heights (data root)")
        mu, sigma = WIDER_HEIGHT_LOGNORMAL
        return SizeDistribution("lognormal", median=float(np.exp(mu)), sigma=sigma,
                                ref_width=WIDER_IMAGE_WIDTH, source="WIDER log-normal fit")
    if isinstance(spec, str):
        if spec == "wider-fit":
            mu, sigma = WIDER_HEIGHT_LOGNORMAL
            return SizeDistribution("lognormal", median=float(np.exp(mu)), sigma=sigma,
                                    ref_width=WIDER_IMAGE_WIDTH, source="WIDER log-normal fit")
        if spec == "quick":
            return SizeDistribution("lognormal", median=20.0, sigma=0.65, source="quick")
        raise ValueError(f"size_dist={spec!r}: expected None, 'wider', 'wider-fit', 'quick', "
                         "a dict {'kind': 'lognormal', 'median', 'sigma'} or an array of heights")
    if isinstance(spec, dict):
        if spec.get("kind", "lognormal") != "lognormal" or "median" not in spec:
            raise ValueError(f"size_dist dict {spec!r}: expected kind 'lognormal', median, sigma")
        return SizeDistribution("lognormal", median=float(spec["median"]),
                                sigma=float(spec.get("sigma", 0.5)),
                                ref_width=spec.get("ref_width"), source="user")
    arr = np.asarray(spec, dtype=np.float64).ravel()
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError("size_dist array must hold positive finite face heights")
    return SizeDistribution("empirical", heights=tuple(arr.tolist()), source="user array")


# ---------------------------------------------------------------------------------------
# sources: faces and backgrounds shipped inside installed packages
# ---------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def face_crop_library() -> tuple[np.ndarray, np.ndarray]:
    """``(faces, nonfaces)``: two ``float32 (100, 25, 25)`` arrays in ``[0, 1]`` from
    ``skimage.data.lfw_subset()`` (first 100 are faces, last 100 are not)."""
    x = np.asarray(skimage_data.lfw_subset(), dtype=np.float32)
    faces, nonfaces = x[:100].copy(), x[100:].copy()
    faces.setflags(write=False)
    nonfaces.setflags(write=False)
    return faces, nonfaces


_SKIMAGE_BACKGROUNDS = ("coffee", "chelsea", "rocket", "brick", "grass", "gravel",
                        "stereo_motorcycle", "hubble_deep_field", "immunohistochemistry",
                        "coins", "clock", "moon", "text", "page")


#: Background sources, in a fixed order (an unavailable one is replaced by a procedural
#: texture, so a scikit-image without it renders other pixels for the same seed).
BACKGROUND_SOURCES = tuple(f"skimage:{n}" for n in _SKIMAGE_BACKGROUNDS) + (
    "sklearn:china.jpg", "sklearn:flower.jpg")


@cache
def _background_image(name: str) -> np.ndarray | None:
    """One background source as float32 HxWxC in [0, 1] (C = 1 or 3, at most 640 px wide),
    or None where the installed package does not ship it."""
    pkg, item = name.split(":", 1)
    try:
        if pkg == "skimage":
            img = getattr(skimage_data, item)()
            if isinstance(img, tuple):
                img = img[0]
        else:
            # imported here: scikit-learn is slow to import and only two backgrounds need it
            from sklearn.datasets import load_sample_image

            img = load_sample_image(item)
    except Exception as exc:  # noqa: BLE001 - optional sources (pooch downloads etc.)
        log.debug("background %s unavailable: %s", name, exc)
        return None
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    pil = Image.fromarray(img.astype(np.uint8))
    if pil.width > 640:
        pil = pil.resize((640, round(pil.height * 640 / pil.width)), Image.BILINEAR)
    arr = np.asarray(pil, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[..., None]
    arr.setflags(write=False)
    return arr


def background_library() -> tuple[tuple[str, np.ndarray], ...]:
    """``(name, image)`` pairs of the shipped photographs without human faces that are
    available (float32 HxWx3 in ``[0, 1]``, grayscale ones as HxWx1, at most 640 px wide).
    ``astronaut`` and ``camera`` are excluded: they show a human face."""
    lib = tuple((n, im) for n in BACKGROUND_SOURCES
                if (im := _background_image(n)) is not None)
    if not lib:
        raise RuntimeError("no background images found in scikit-image / scikit-learn")
    return lib


def _random_source(rng) -> np.ndarray | None:
    return _background_image(BACKGROUND_SOURCES[int(rng.integers(0, len(BACKGROUND_SOURCES)))])


# ---------------------------------------------------------------------------------------
# small image helpers
# ---------------------------------------------------------------------------------------


def _resize(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Antialiased bilinear resize of a float HxW or HxWxC array (PIL 'F' per channel)."""
    width, height = max(1, int(width)), max(1, int(height))
    if arr.ndim == 2:
        return np.asarray(Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32), "F")
                          .resize((width, height), Image.BILINEAR))
    return np.stack([_resize(arr[..., c], width, height) for c in range(arr.shape[2])], -1)


def _smooth_noise(rng, height: int, width: int, cells: int = 4) -> np.ndarray:
    """Low-frequency noise in about ``[-1, 1]``: a coarse random grid upsampled."""
    ch = max(2, int(round(cells * height / max(height, width))) + 1)
    cw = max(2, int(round(cells * width / max(height, width))) + 1)
    grid = rng.standard_normal((ch, cw)).astype(np.float32)
    return _resize(grid, width, height) * 0.8


def _colour_jitter(rng, img: np.ndarray) -> np.ndarray:
    gray = img.mean(axis=2, keepdims=True)
    sat = rng.uniform(0.8, 1.6)
    img = gray + (img - gray) * sat
    contrast = rng.uniform(0.7, 1.3)
    img = (img - img.mean()) * contrast + img.mean()
    img = img * rng.uniform(0.75, 1.25) * rng.uniform(0.9, 1.1, size=3)
    if rng.random() < 0.3:
        img = img[..., rng.permutation(3)]
    return img


def _tint(rng, lum: np.ndarray) -> np.ndarray:
    """Colourise a luminance map with a random two-colour ramp."""
    c0 = rng.uniform(0.0, 0.5, size=3)
    c1 = rng.uniform(0.5, 1.0, size=3)
    return c0 + lum[..., None] * (c1 - c0) if lum.ndim == 2 else c0 + lum * (c1 - c0)


def _skin_tone(rng) -> np.ndarray:
    i = rng.integers(0, len(_SKIN_TONES) - 1)
    t = rng.random()
    tone = _SKIN_TONES[i] * (1 - t) + _SKIN_TONES[i + 1] * t
    gray = tone.mean()
    tone = gray + (tone - gray) * rng.uniform(0.6, 1.05)  # lighting / white balance
    return np.clip(tone * rng.uniform(0.95, 1.05, size=3), 0, 1)


def _clothes_colour(rng) -> np.ndarray:
    if rng.random() < 0.35:  # dark / neutral
        return np.full(3, rng.uniform(0.05, 0.6)) * rng.uniform(0.9, 1.1, size=3)
    return rng.uniform(0.05, 0.95, size=3)


def _ellipse_alpha(xx, yy, cx, cy, ax, ay, soft=1.0):
    """Anti-aliased filled ellipse (semi-axes ax, ay) with an edge ``soft`` pixels wide."""
    r = np.sqrt(((xx - cx) / max(ax, 1e-3)) ** 2 + ((yy - cy) / max(ay, 1e-3)) ** 2)
    d = (1.0 - r) * min(ax, ay)
    return np.clip(d / max(soft, 1e-3) + 0.5, 0.0, 1.0)


def _face_pixels(lum: np.ndarray, tone: np.ndarray) -> np.ndarray:
    """Skin-coloured face from luminance: tone * (0.3 + 0.9 L), shadows slightly warmer."""
    shade = 0.3 + 0.9 * lum[..., None]
    warm = np.array([1.0, 0.95, 0.9], dtype=np.float32) ** (1.0 - lum[..., None])
    return tone * shade * warm


def _normalise_lum(rng, lum: np.ndarray, contrast=(0.13, 0.2)) -> np.ndarray:
    m, s = float(lum.mean()), float(lum.std()) + 1e-3
    return np.clip((lum - m) / s * rng.uniform(*contrast) + rng.uniform(0.5, 0.62), 0, 1)


# ---------------------------------------------------------------------------------------
# background
# ---------------------------------------------------------------------------------------


def render_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A float32 ``H x W x 3`` background in ``[0, 1]``: a jittered crop of a shipped photo
    or a procedural texture, with textured clutter objects on top."""
    src = _random_source(rng) if rng.random() < 0.6 else None
    if src is not None:
        sh, sw = src.shape[:2]
        aspect = width / height
        cw = min(sw, sh * aspect)
        scale = rng.uniform(0.5, 1.0)
        cw = max(8, int(cw * scale))
        ch = max(8, int(cw / aspect))
        x0 = rng.integers(0, sw - cw + 1)
        y0 = rng.integers(0, sh - ch + 1)
        crop = src[y0:y0 + ch, x0:x0 + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        img = _resize(crop, width, height)
        img = _tint(rng, img[..., 0]) if img.shape[2] == 1 else img
        img = _colour_jitter(rng, img)
    else:
        img = _procedural(rng, width, height)
    _add_clutter(rng, img, int(rng.integers(8, 25) * max(1.0, width * height / _REF_AREA)))
    # fine surface texture (grain, gravel, fabric) so that no region is perfectly smooth
    fine = _smooth_noise(rng, height, width, int(max(width, height) / rng.uniform(2.0, 5.0)))
    img *= 1.0 + rng.uniform(0.03, 0.12) * fine[..., None]
    return np.clip(img, 0, 1).astype(np.float32)


def _procedural(rng, width: int, height: int) -> np.ndarray:
    noise = np.zeros((height, width), np.float32)
    amp = 1.0
    for cells in (3, 8, 24, 64, 160):
        noise += amp * _smooth_noise(rng, height, width, cells)
        amp *= rng.uniform(0.45, 0.8)
    noise = (noise - noise.min()) / (np.ptp(noise) + 1e-6)
    img = _tint(rng, noise)
    kind = rng.integers(0, 4)
    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    if kind == 0:  # sky/ground gradient
        top, bottom = rng.uniform(0.2, 1.0, 3), rng.uniform(0.0, 0.7, 3)
        img = 0.5 * img + 0.5 * (top * (1 - yy) + bottom * yy)
    elif kind == 1:  # stripes
        period = rng.uniform(6, 40)
        ang = rng.uniform(0, np.pi)
        xx = np.arange(width, dtype=np.float32)[None, :]
        ys = np.arange(height, dtype=np.float32)[:, None]
        s = np.sin((xx * np.cos(ang) + ys * np.sin(ang)) * 2 * np.pi / period)
        img = img * (0.8 + 0.2 * s[..., None])
    elif kind == 2:  # bricks / tiles
        bw, bh = int(rng.integers(8, 48)), int(rng.integers(6, 30))
        ys = np.arange(height)[:, None]
        xs = np.arange(width)[None, :] + (ys // bh % 2) * (bw // 2)
        mortar = ((ys % bh) < 2) | ((xs % bw) < 2)
        img = np.where(mortar[..., None], img * 0.55, img)
    return img


def _add_clutter(rng, img: np.ndarray, n: int) -> None:
    """Textured ellipses / rectangles (hard or soft edges), some skin coloured."""
    height, width = img.shape[:2]
    for _ in range(n):
        w = int(np.exp(rng.uniform(np.log(0.015), np.log(0.3))) * width) + 3
        h = int(np.exp(rng.uniform(np.log(0.015), np.log(0.3))) * height) + 3
        x0 = int(rng.integers(-w // 2, width - w // 2))
        y0 = int(rng.integers(-h // 2, height - h // 2))
        if rng.random() < 0.25:
            patch = _skin_tone(rng) * (1 + 0.15 * _smooth_noise(rng, h, w, 3))[..., None]
        elif rng.random() < 0.5 and (src := _random_source(rng)) is not None:
            sy = rng.integers(0, max(1, src.shape[0] - h))
            sx = rng.integers(0, max(1, src.shape[1] - w))
            patch = _resize(src[sy:sy + h, sx:sx + w], w, h)
            patch = _tint(rng, patch[..., 0]) if patch.shape[2] == 1 else patch
            patch = _colour_jitter(rng, patch)
        else:
            patch = _clothes_colour(rng) * (1 + 0.2 * _smooth_noise(rng, h, w, 4))[..., None]
        yy, xx = np.ogrid[0:h, 0:w]
        if rng.random() < 0.5:
            alpha = _ellipse_alpha(xx + 0.5, yy + 0.5, w / 2, h / 2, w / 2, h / 2,
                                   soft=rng.uniform(0.5, 3))
        else:
            alpha = np.ones((h, w), np.float32)
        _composite(img, None, patch, alpha, x0, y0, 0)


def _composite(img, label, rgb, alpha, x0: int, y0: int, label_value: int,
               premultiplied: bool = False):
    """Alpha-composite ``rgb`` (h x w x 3) with ``alpha`` (h x w) at ``(x0, y0)``, clipped.
    Where alpha > 0.5 the label map gets ``label_value``. Returns the clipped slices."""
    H, W = img.shape[:2]
    h, w = alpha.shape
    ax0, ay0 = max(0, -x0), max(0, -y0)
    ix0, iy0 = max(0, x0), max(0, y0)
    ix1, iy1 = min(W, x0 + w), min(H, y0 + h)
    if ix1 <= ix0 or iy1 <= iy0:
        return None
    a = alpha[ay0:ay0 + iy1 - iy0, ax0:ax0 + ix1 - ix0]
    c = rgb[ay0:ay0 + iy1 - iy0, ax0:ax0 + ix1 - ix0]
    region = img[iy0:iy1, ix0:ix1]
    if premultiplied:
        region *= 1.0 - a[..., None]
        region += c
    else:
        region += (c - region) * a[..., None]
    if label is not None:
        label[iy0:iy1, ix0:ix1][a > 0.5] = label_value
    return (slice(iy0, iy1), slice(ix0, ix1)), (ay0, ax0)


# ---------------------------------------------------------------------------------------
# persons
# ---------------------------------------------------------------------------------------


@dataclass
class _Person:
    fx: int
    fy: int
    fw: int
    fh: int
    has_face: bool = True
    cluster: bool = False


@dataclass(frozen=True)
class PersonStyle:
    """The numbers a person is drawn with (:func:`_render_person`). Lengths are in units
    of the face height ``fh`` or face width ``fw``; ``(lo, hi)`` pairs are uniform ranges;
    chances are probabilities. Colours come from the palettes ``_SKIN_TONES`` / ``_HAIR`` and
    :func:`_clothes_colour`. Changing a value changes every cached synthetic world: bump
    ``worlds.GENERATOR_VERSION`` (``tests/test_synthetic.py`` pins rendered scenes)."""

    # camera: blur and exposure, recorded as WIDER attributes
    blur_share: tuple = (0.55, 0.3, 0.15)  # chance of a sharp / blurred / very blurred person
    blur_rel: tuple = ((0.0, 0.02), (0.04, 0.07), (0.10, 0.16))  # Gaussian sigma / fh, per class
    camera_blur: float = 0.35  # px, always present; added in quadrature for the recorded class
    blur_classes: tuple = (0.035, 0.09)  # effective sigma / fh: below -> blur 0, below -> 1, else 2
    min_blur: float = 0.05  # px: sigma below which no filter is applied
    blur_truncate: float = 3.0  # Gaussian filter truncation (sigmas); the canvas margin reaches it
    extreme_share: float = 0.1  # chance of an extreme exposure (illumination = 1)
    dark_share: float = 0.5  # of the extreme ones, the share too dark (the rest too bright)
    dark_gain: tuple = (0.3, 0.5)
    bright_gain: tuple = (1.55, 1.9)
    gain: tuple = (0.8, 1.15)  # normal exposure
    # proportions
    body_len: tuple = (2.2, 6.5)  # fh, chin gap to feet (or to the image bottom)
    shoulder: tuple = (1.05, 1.6)  # fw, half the shoulder width
    hair_reach: float = 0.55  # fh above the face box: where the hair may start
    edge: tuple = (0.6, 0.02)  # soft edge width in px: a + b * fh
    neck_len: float = 0.22  # fh from chin to the top of the shoulders
    dome: float = 0.45  # fh over which the shoulders round into the torso
    taper: float = 0.12  # the torso narrows by this share towards the bottom
    torso_len: float = 2.8  # fh; a longer body gets legs below the torso
    # clothes
    cloth_texture: float = 0.18  # amplitude of the smooth fabric noise
    cloth_cells: int = 4  # noise grid cells over the canvas
    pattern_share: float = 0.4  # chance of stripes (or checks) on the clothes
    pattern_period: tuple = (0.15, 0.5)  # fh, plus 2 px
    checks_share: float = 0.5  # of the patterned ones, the share with checks
    pattern_contrast: float = 0.15
    side_shade: float = 0.25  # torso darkened by this share at the shoulders' edge
    pants_shade: float = 0.7  # trousers darker than a clothes colour
    leg_half: float = 0.42  # of the shoulder half-width
    leg_offset: float = 0.5  # leg centres, share of the shoulder half-width off the middle
    # neck
    neck_from: float = 0.7  # fh below the face top
    neck_into: float = 0.2  # fh into the torso
    neck_half: float = 0.24  # fw
    neck_shade: float = 0.8  # the neck is in the head's shadow
    # hair and head
    hair_share: float = 0.8  # chance of hair on a person with a face; then a hat up to ...
    hat_share: float = 0.9  # ... this, bald above
    hair_gain: tuple = (0.85, 1.15)  # brightness jitter of the hair palette colour
    bald_shade: float = 0.9  # a bald head: the skin tone, darker
    head_half_w: tuple = (0.5, 0.62)  # fw, head ellipse semi-axis
    head_half_h: tuple = (0.55, 0.68)  # fh, head ellipse semi-axis
    head_shift: tuple = (-0.1, 0.04)  # fh, head centre off the face centre
    head_below: float = 1.2  # fh below the face top: where the head rows end
    hair_lift: tuple = (0.12, 0.22)  # fh, hair ellipse raised above the head
    hair_widen: tuple = (0.03, 0.1)  # fw, hair ellipse wider than the head
    hair_texture: float = 0.15
    hair_cells: int = 6
    back_shade: tuple = (0.75, 0.5)  # back of the head: hair * (a + b * non-face luminance)
    # the face
    face_contrast: tuple = (0.11, 0.17)  # luminance contrast of the pasted face
    mirror_share: float = 0.5  # chance of a mirrored face
    border_cols: int = 3  # face columns whose median luminance gives the head's skin
    feather: tuple = (0.3, 1.5)  # face alpha feather: a + b / min(fw, fh)
    face_extent: float = 1.05  # face alpha reaches 0 at this radius of the box ellipse
    # the annotation
    box_above: float = 0.3  # fh above the face top: the person box's top


#: The style every synthetic person is drawn with.
PERSON_STYLE = PersonStyle()


@dataclass(frozen=True)
class _Camera:
    sigma: float  # Gaussian blur, px
    blur: int  # WIDER blur class
    extreme: bool  # WIDER illumination
    gain: float


@dataclass(frozen=True)
class _Figure:
    """A person's geometry in scene pixels (face box, centre, body)."""

    fx: int
    fy: int
    fw: int
    fh: int
    cx: float
    cy: float
    body_len: float
    shoulder: float  # half-width
    soft: float  # edge width, px
    top: float  # top of the shoulders
    torso_end: float


@dataclass(frozen=True)
class _Head:
    ax: float
    ay: float
    cy: float
    rows: slice  # canvas rows of the head and hair
    yy: np.ndarray  # their y coordinates


class _Canvas:
    """A person's own premultiplied RGBA canvas: the scene window ``[x0, x1) x [y0, y1)``."""

    def __init__(self, x0: int, y0: int, x1: int, y1: int):
        self.x0, self.y0, self.x1, self.y1 = x0, y0, x1, y1
        self.h, self.w = y1 - y0, x1 - x0
        self.yy = (np.arange(y0, y1, dtype=np.float32) + 0.5)[:, None]
        self.xx = (np.arange(x0, x1, dtype=np.float32) + 0.5)[None, :]
        self.P = np.zeros((self.h, self.w, 3), np.float32)  # premultiplied colour
        self.A = np.zeros((self.h, self.w), np.float32)

    def rows(self, ya, yb) -> slice:
        """Canvas row slice covering scene rows [ya, yb)."""
        return slice(int(np.clip(np.floor(ya) - self.y0, 0, self.h)),
                     int(np.clip(np.ceil(yb) - self.y0, 0, self.h)))

    def over(self, colour, alpha, rs: slice) -> None:
        """Composite a layer over the canvas rows ``rs`` (alpha is computed on those rows)."""
        if rs.stop <= rs.start:
            return
        p, a = self.P[rs], self.A[rs]
        p *= 1.0 - alpha[..., None]
        p += colour * alpha[..., None]
        a *= 1.0 - alpha
        a += alpha


def _render_person(rng, img, label, p: _Person, face_id: int, faces_lib, nonfaces_lib,
                   style: PersonStyle = PERSON_STYLE):
    """Draw one person (body, neck, hair, head, face) onto ``img``; returns the person box
    (x1, y1, x2, y2, clipped to the image), the face-ellipse pixel count and the attributes,
    or None when the person lies outside the image. The steps below draw from ``rng`` in
    this order (the cached worlds depend on it)."""
    H, W = img.shape[:2]
    cam = _person_camera(rng, p.fh, style)
    fig = _person_figure(rng, p, style)
    cv = _person_canvas(fig, cam.sigma, H, W, style)
    if cv is None:
        return None
    tex, rb = _paint_torso(rng, cv, fig, style)
    if fig.body_len > style.torso_len * fig.fh:
        _paint_legs(rng, cv, fig, tex, rb, style)
    tone = _skin_tone(rng)
    _paint_neck(cv, fig, tone, style)
    hair_col = _hair_colour(rng, p.has_face, tone, style)
    head = _head_shape(rng, cv, fig, style)
    _paint_hair(rng, cv, fig, head, hair_col, style)
    if p.has_face:
        face_mask = _paint_face(rng, cv, fig, head, tone, faces_lib, style)
    else:
        _paint_back_of_head(rng, cv, fig, head, hair_col, nonfaces_lib, style)
        face_mask = None
    n_face = _composite_person(img, label, cv, cam, face_mask, face_id, style)
    attrs = {"blur": int(cam.blur), "illumination": int(cam.extreme),
             "blur_sigma": float(cam.sigma), "gain": float(cam.gain)}
    return _person_box(fig, H, W, style), n_face, attrs


def _person_camera(rng, fh: int, s: PersonStyle) -> _Camera:
    """Blur (a relative sigma class, recorded from the effective sigma) and exposure."""
    cls = rng.choice(len(s.blur_share), p=s.blur_share)
    rel = tuple(rng.uniform(lo, hi) for lo, hi in s.blur_rel)[cls]  # all drawn, one kept
    sigma = rel * fh
    eff = np.sqrt(sigma ** 2 + s.camera_blur ** 2) / fh
    blur = 0 if eff < s.blur_classes[0] else (1 if eff < s.blur_classes[1] else 2)
    extreme = rng.random() < s.extreme_share
    if extreme:
        gain = (rng.uniform(*s.dark_gain) if rng.random() < s.dark_share
                else rng.uniform(*s.bright_gain))
    else:
        gain = rng.uniform(*s.gain)
    return _Camera(sigma, blur, extreme, gain)


def _person_figure(rng, p: _Person, s: PersonStyle) -> _Figure:
    fx, fy, fw, fh = p.fx, p.fy, p.fw, p.fh
    body_len = rng.uniform(*s.body_len) * fh
    shoulder = rng.uniform(*s.shoulder) * fw
    top = fy + fh + s.neck_len * fh
    return _Figure(fx, fy, fw, fh, cx=fx + fw / 2.0, cy=fy + fh / 2.0, body_len=body_len,
                   shoulder=shoulder, soft=s.edge[0] + s.edge[1] * fh, top=top,
                   torso_end=top + min(body_len, s.torso_len * fh))


def _person_canvas(fig: _Figure, sigma: float, H: int, W: int, s: PersonStyle):
    """The canvas around the whole person plus the blur's reach, clipped to the image
    (None when nothing is left)."""
    margin = int(np.ceil(s.blur_truncate * sigma)) + 2
    x0 = int(np.floor(fig.cx - fig.shoulder - margin))
    x1 = int(np.ceil(fig.cx + fig.shoulder + margin))
    y0 = int(np.floor(fig.fy - s.hair_reach * fig.fh - margin))
    y1 = int(np.ceil(fig.fy + fig.fh + fig.body_len + margin))
    x0c, y0c, x1c, y1c = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if x1c <= x0c or y1c <= y0c:
        return None
    return _Canvas(x0c, y0c, x1c, y1c)


def _paint_torso(rng, cv: _Canvas, fig: _Figure, s: PersonStyle):
    """Dome-shaped shoulders then a tapering torso in a textured clothes colour; returns
    the texture and its rows (the legs reuse them)."""
    top, fh, cx = fig.top, fig.fh, fig.cx
    rb = cv.rows(top - 2, top + fig.body_len + 2)
    yb = cv.yy[rb]
    t = np.clip((yb - top) / (s.dome * fh), 0, 1)
    half = fig.shoulder * np.sqrt(t) * (1 - s.taper * np.clip((yb - top) / fig.body_len, 0, 1))
    body_a = np.clip((half - np.abs(cv.xx - cx)) / fig.soft + 0.5, 0, 1) * (yb >= top)
    body_a = body_a * np.clip((fig.torso_end - yb) / fig.soft + 0.5, 0, 1)
    cloth = _clothes_colour(rng)
    tex = _clothes_texture(rng, cv, yb, fh, rb, s)
    shade = 1.0 - s.side_shade * np.clip(np.abs(cv.xx - cx) / max(fig.shoulder, 1),
                                         0, 1)[..., None]
    cv.over(cloth * tex * shade, body_a.astype(np.float32), rb)
    return tex, rb


def _clothes_texture(rng, cv: _Canvas, yb, fh: int, rb: slice, s: PersonStyle):
    """Smooth fabric noise, sometimes with stripes or checks."""
    tex = 1.0 + s.cloth_texture * _smooth_noise(rng, max(1, rb.stop - rb.start), cv.w,
                                                s.cloth_cells)[..., None]
    if rng.random() < s.pattern_share:
        period = rng.uniform(*s.pattern_period) * fh + 2
        pat = np.sin(2 * np.pi * yb / period) + (np.sin(2 * np.pi * cv.xx / period)
                                                  if rng.random() < s.checks_share else 0.0)
        tex = tex * (1.0 + s.pattern_contrast * np.sign(pat)[..., None])
    return tex


def _paint_legs(rng, cv: _Canvas, fig: _Figure, tex, rb: slice, s: PersonStyle) -> None:
    """Two trouser legs below the torso, in the torso's texture."""
    pants = _clothes_colour(rng) * s.pants_shade
    leg_w = s.leg_half * fig.shoulder
    bottom = fig.top + fig.body_len
    rl = cv.rows(fig.torso_end - 2, bottom + 2)
    yl = cv.yy[rl]
    tl = tex[rl.start - rb.start:rl.stop - rb.start]
    for side in (-1, 1):
        lx = fig.cx + side * s.leg_offset * fig.shoulder
        la = np.clip((leg_w - np.abs(cv.xx - lx)) / fig.soft + 0.5, 0, 1) \
            * (yl >= fig.torso_end - 1)
        la = la * np.clip((bottom - yl) / fig.soft + 0.5, 0, 1)
        cv.over(pants * tl, la.astype(np.float32), rl)


def _paint_neck(cv: _Canvas, fig: _Figure, tone, s: PersonStyle) -> None:
    start, end = fig.fy + s.neck_from * fig.fh, fig.top + s.neck_into * fig.fh
    rn = cv.rows(start, end + 1)
    yn = cv.yy[rn]
    neck_a = np.clip((s.neck_half * fig.fw - np.abs(cv.xx - fig.cx)) / fig.soft + 0.5, 0, 1) \
        * (yn >= start) * (yn <= end)
    cv.over(tone * s.neck_shade, neck_a.astype(np.float32), rn)


def _hair_colour(rng, has_face: bool, tone, s: PersonStyle):
    """Hair from the palette (always when seen from the back), else a hat or a bald head."""
    style = rng.random()
    if not has_face or style < s.hair_share:
        return _HAIR[rng.integers(0, len(_HAIR))] * rng.uniform(*s.hair_gain)
    if style < s.hat_share:
        return _clothes_colour(rng)  # hat
    return tone * s.bald_shade  # bald


def _head_shape(rng, cv: _Canvas, fig: _Figure, s: PersonStyle) -> _Head:
    """The head ellipse; its geometry varies so that no boundary sits exactly on the face box."""
    ax, ay = rng.uniform(*s.head_half_w) * fig.fw, rng.uniform(*s.head_half_h) * fig.fh
    cy = fig.cy + rng.uniform(*s.head_shift) * fig.fh
    rows = cv.rows(fig.fy - s.hair_reach * fig.fh - 2, fig.fy + s.head_below * fig.fh + 2)
    return _Head(ax, ay, cy, rows, cv.yy[rows])


def _paint_hair(rng, cv: _Canvas, fig: _Figure, head: _Head, hair_col, s: PersonStyle) -> None:
    """A textured ellipse a little above and wider than the head (hair, hat or bald top)."""
    hair_a = _ellipse_alpha(cv.xx, head.yy, fig.cx, head.cy - rng.uniform(*s.hair_lift) * fig.fh,
                            head.ax + rng.uniform(*s.hair_widen) * fig.fw, head.ay, fig.soft)
    hair_tex = 1.0 + s.hair_texture * _smooth_noise(
        rng, max(1, head.rows.stop - head.rows.start), cv.w, s.hair_cells)[..., None]
    cv.over(hair_col * hair_tex, hair_a, head.rows)


def _paint_face(rng, cv: _Canvas, fig: _Figure, head: _Head, tone, faces_lib,
                s: PersonStyle) -> np.ndarray:
    """A skin-coloured head, then a real face crop stretched to the face box with a
    feathered elliptical alpha; returns the face-ellipse mask on the canvas."""
    k = int(rng.integers(0, len(faces_lib)))
    face_lum = _normalise_lum(rng, faces_lib[k], s.face_contrast)
    if rng.random() < s.mirror_share:
        face_lum = face_lum[:, ::-1]
    n = s.border_cols
    border = np.concatenate([face_lum[:, :n].ravel(), face_lum[:, -n:].ravel()])
    head_tone = _face_pixels(np.array([[float(np.median(border))]], np.float32), tone)[0, 0]
    head_a = _ellipse_alpha(cv.xx, head.yy, fig.cx, head.cy, head.ax, head.ay, fig.soft)
    cv.over(head_tone, head_a, head.rows)
    fw, fh = fig.fw, fig.fh
    ftex = _face_pixels(_resize(face_lum, fw, fh), tone)
    fyy, fxx = np.ogrid[0:fh, 0:fw]
    r = np.sqrt(((fxx + 0.5 - fw / 2) / (fw / 2)) ** 2 + ((fyy + 0.5 - fh / 2) / (fh / 2)) ** 2)
    feather = s.feather[0] + s.feather[1] / min(fw, fh)
    fa = np.clip((s.face_extent - r) / feather, 0, 1).astype(np.float32)
    oy, ox = fig.fy - cv.y0, fig.fx - cv.x0
    sub_p = cv.P[oy:oy + fh, ox:ox + fw]
    sub_a = cv.A[oy:oy + fh, ox:ox + fw]
    sub_p *= 1.0 - fa[..., None]
    sub_p += ftex * fa[..., None]
    sub_a *= 1.0 - fa
    sub_a += fa
    face_mask = np.zeros((cv.h, cv.w), bool)
    face_mask[oy:oy + fh, ox:ox + fw] = r < 1.0
    return face_mask


def _paint_back_of_head(rng, cv: _Canvas, fig: _Figure, head: _Head, hair_col, nonfaces_lib,
                        s: PersonStyle) -> None:
    """Seen from the back: hair over the whole head, textured by a non-face patch."""
    k = int(rng.integers(0, len(nonfaces_lib)))
    lum = _resize(_normalise_lum(rng, nonfaces_lib[k]), cv.w,
                  max(1, head.rows.stop - head.rows.start))
    head_a = _ellipse_alpha(cv.xx, head.yy, fig.cx, head.cy, head.ax, head.ay, fig.soft)
    cv.over(hair_col * (s.back_shade[0] + s.back_shade[1] * lum[..., None]), head_a, head.rows)


def _composite_person(img, label, cv: _Canvas, cam: _Camera, face_mask, face_id: int,
                      s: PersonStyle) -> int:
    """Expose and blur the canvas, paste it into the scene, label its pixels (-2 person,
    ``face_id`` the face ellipse); returns the face-ellipse pixel count."""
    P, A = cv.P, cv.A
    P *= cam.gain
    if cam.sigma > s.min_blur:
        sigma, trunc = cam.sigma, s.blur_truncate
        P = gaussian_filter(P, sigma=(sigma, sigma, 0), mode="constant", truncate=trunc)
        A = gaussian_filter(A, sigma=sigma, mode="constant", truncate=trunc)
    _composite(img, None, P, A, cv.x0, cv.y0, 0, premultiplied=True)
    lab = label[cv.y0:cv.y1, cv.x0:cv.x1]
    lab[A > 0.5] = -2
    if face_mask is None:
        return 0
    lab[face_mask] = face_id
    return int(face_mask.sum())


def _person_box(fig: _Figure, H: int, W: int, s: PersonStyle) -> np.ndarray:
    """Person box: hair top .. body bottom, shoulders; clipped to the image."""
    px1, px2 = fig.cx - fig.shoulder, fig.cx + fig.shoulder
    py1, py2 = fig.fy - s.box_above * fig.fh, fig.top + fig.body_len
    return np.array([max(0, np.floor(px1)), max(0, np.floor(py1)),
                     min(W, np.ceil(px2)), min(H, np.ceil(py2))])


def _paste_negative(rng, img, label, nonfaces_lib, fw, fh, x, y):
    """A colourised, feathered LFW non-face patch (hard negative), face-sized."""
    k = int(rng.integers(0, len(nonfaces_lib)))
    lum = _resize(_normalise_lum(rng, nonfaces_lib[k]), fw, fh)
    rgb = _face_pixels(lum, _skin_tone(rng)) if rng.random() < 0.5 else _tint(rng, lum)
    yy, xx = np.ogrid[0:fh, 0:fw]
    alpha = _ellipse_alpha(xx + 0.5, yy + 0.5, fw / 2, fh / 2, fw / 2, fh / 2,
                           soft=0.3 * min(fw, fh) + 0.5)
    if rng.random() < 0.5:
        s = rng.uniform(0.3, 1.2)
        rgb = gaussian_filter(rgb, sigma=(s, s, 0))
    _composite(img, label, rgb, alpha, x, y, -4)


def _paste_occluder(rng, img, label, fx, fy, fw, fh):
    """A foreground object (sign, hand, hat brim...) covering part of a face box."""
    cover = rng.uniform(0.15, 0.9)
    side = rng.integers(0, 4)
    ow = int(max(2, fw * (cover if side < 2 else rng.uniform(0.8, 1.6))))
    oh = int(max(2, fh * (cover if side >= 2 else rng.uniform(0.8, 1.6))))
    if side == 0:  # from the left
        x, y = fx + int(fw * cover) - ow, fy + int(rng.uniform(-0.3, 0.3) * fh)
    elif side == 1:  # from the right
        x, y = fx + fw - int(fw * cover), fy + int(rng.uniform(-0.3, 0.3) * fh)
    elif side == 2:  # from the top
        x, y = fx + int(rng.uniform(-0.3, 0.3) * fw), fy + int(fh * cover) - oh
    else:  # from the bottom
        x, y = fx + int(rng.uniform(-0.3, 0.3) * fw), fy + fh - int(fh * cover)
    col = _skin_tone(rng) if rng.random() < 0.3 else _clothes_colour(rng)
    rgb = col * (1 + 0.2 * _smooth_noise(rng, oh, ow, 3))[..., None]
    yy, xx = np.ogrid[0:oh, 0:ow]
    if rng.random() < 0.5:
        alpha = _ellipse_alpha(xx + 0.5, yy + 0.5, ow / 2, oh / 2, ow / 2, oh / 2, soft=0.8)
    else:
        alpha = np.ones((oh, ow), np.float32)
    _composite(img, label, rgb, alpha, int(x), int(y), -3)


def _place_faces(rng, heights, width, height, perspective, placed, max_tries=25):
    """Integer face boxes (x, y, w, h) for the given heights, without overlapping faces."""
    aw_mu, aw_sigma = WIDER_ASPECT_LOGNORMAL
    out = []
    if perspective:
        horizon = rng.uniform(0.05, 0.35) * height
        k = (0.92 * height - horizon) / max(heights.max(), 1.0)
    for h in heights:
        fh = int(round(h))
        fw = int(round(fh * float(np.clip(np.exp(aw_mu + 0.7 * aw_sigma * rng.standard_normal()),
                                          0.6, 1.0))))
        fw = max(fw, 2)
        for _ in range(max_tries):
            fx = int(rng.integers(0, width - fw + 1))
            if perspective:
                cy = horizon + k * fh * np.exp(0.15 * rng.standard_normal())
                fy = int(round(cy - fh))
            else:
                fy = int(rng.integers(0, max(1, int(0.75 * height) - fh + 1)))
            fy = int(np.clip(fy, 0, height - fh))
            if not _overlaps(placed, fx, fy, fw, fh):
                placed.append((fx, fy, fw, fh))
                out.append((fx, fy, fw, fh))
                break
    return out


def _overlaps(placed, fx, fy, fw, fh, pad=0.1):
    for x, y, w, h in placed:
        px, py = pad * max(w, fw), pad * max(h, fh)
        if fx < x + w + px and x < fx + fw + px and fy < y + h + py and y < fy + fh + py:
            return True
    return False


@dataclass
class _SceneLayers:
    """What :func:`render_scene` builds up: the image, its label map (0 background, -2
    person, -3 occluder, -4 hard negative, ``k`` the ellipse of face ``k``), the face and
    person rows so far, their face-ellipse pixel counts and the face boxes placed."""

    img: np.ndarray
    label: np.ndarray
    faces_lib: np.ndarray
    nonfaces_lib: np.ndarray
    persons: list = field(default_factory=list)
    faces: list = field(default_factory=list)
    face_pixels: list = field(default_factory=list)
    placed: list = field(default_factory=list)


def render_scene(rng: np.random.Generator, width: int, height: int, *, event: str = "1--Street",
                 size_dist=None, n_persons: int | None = None, min_face: int = 3,
                 noise: tuple[float, float] = (2.0, 6.0)):
    """Render one scene.

    Returns ``(image, faces, persons)``:

    * ``image``: ``uint8 H x W x 3`` RGB;
    * ``faces``: DataFrame, one row per annotated face: ``x, y, w, h`` (int, WIDER xywh),
      ``blur, expression, illumination, invalid, occlusion, pose`` (WIDER codes), ``person``
      (row in ``persons``), ``occluded_fraction``, ``blur_sigma``, ``gain``;
    * ``persons``: DataFrame ``x, y, w, h`` (int, full body clipped to the image),
      ``ignore``, ``uncertain``, ``has_face``, ``kind`` (``"person"`` or ``"ignore_region"``
      for a dense cluster whose members are not listed individually).
    """
    if event not in EVENT_SPEC:
        raise ValueError(f"event {event!r}: expected one of {list(EVENT_SPEC)}")
    if width < 32 or height < 32:
        raise ValueError(f"scene size {width}x{height}: both sides must be >= 32 px")
    dist = face_size_distribution(size_dist)
    spec = EVENT_SPEC[event]
    faces_lib, nonfaces_lib = face_crop_library()
    area_scale = width * height / _REF_AREA
    scene = _SceneLayers(render_background(rng, width, height),
                         np.zeros((height, width), np.int32), faces_lib, nonfaces_lib)
    # 1. a dense, far-away cluster (faces invalid=1, one ignore region in TinyPerson)
    if rng.random() < spec["cluster"]:
        _add_cluster(rng, scene)
    # 2. the persons of the scene, with hard negatives between them
    lo, hi = spec["persons"]
    n = n_persons if n_persons is not None else int(
        round(rng.integers(lo, hi + 1) * area_scale))
    if n > 0:
        _add_persons(rng, scene, n, dist, spec["perspective"], min_face, area_scale)
    # 3. foreground occluders over some faces
    _add_occluders(rng, scene)
    # 4. global illumination, sensor noise
    image = _expose(rng, scene.img, noise)
    keep_faces = _measure_occlusion(scene)
    return _scene_tables(image, keep_faces, scene.persons)


def _add_cluster(rng, scene: _SceneLayers) -> None:
    """A grid of tiny persons far away (faces ``invalid = 1``); the persons table gets one
    ignore region around them instead of one row each."""
    height, width = scene.label.shape
    cw = int(rng.uniform(0.1, 0.22) * width)
    chh = int(rng.uniform(0.05, 0.1) * height)
    cx0 = int(rng.integers(0, width - cw))
    cy0 = int(rng.integers(int(0.05 * height), int(0.4 * height)))
    members = []
    fh0 = max(3, int(round(rng.uniform(3, 6) * max(1.0, width / 512))))
    step_x, step_y = int(fh0 * 1.8) + 1, int(fh0 * 1.5) + 1
    for gy in range(cy0, cy0 + chh, step_y):
        for gx in range(cx0, cx0 + cw, step_x):
            fh = int(max(3, fh0 + rng.integers(-1, 2)))
            fw = max(2, int(round(fh * 0.8)))
            fx = int(np.clip(gx + rng.integers(0, 3), 0, width - fw))
            fy = int(np.clip(gy + rng.integers(0, 3), 0, height - fh))
            if _overlaps(scene.placed, fx, fy, fw, fh, pad=0.0):
                continue
            scene.placed.append((fx, fy, fw, fh))
            members.append(_Person(fx, fy, fw, fh, has_face=rng.random() > 0.15, cluster=True))
    boxes = _draw_persons(rng, scene, members, invalid=1)
    if boxes:
        b = np.array(boxes)
        scene.persons.append({"x1": b[:, 0].min(), "y1": b[:, 1].min(), "x2": b[:, 2].max(),
                              "y2": b[:, 3].max(), "ignore": True, "uncertain": False,
                              "has_face": False, "kind": "ignore_region"})


def _add_persons(rng, scene: _SceneLayers, n: int, dist: SizeDistribution, perspective: bool,
                 min_face: int, area_scale: float) -> None:
    """``n`` persons with face heights from ``dist``, far ones first, and face-sized hard
    negatives pasted before them."""
    height, width = scene.label.shape
    heights = dist.sample(rng, n, width)
    heights = np.clip(heights, min_face, max(min_face, 0.4 * height))
    boxes = _place_faces(rng, heights, width, height, perspective, scene.placed)
    # far (higher in the image) first: nearer people are drawn over them
    boxes.sort(key=lambda b: b[1] + b[3])
    members = [_Person(*b, has_face=rng.random() > 0.1) for b in boxes]
    _add_negatives(rng, scene, dist, min_face, area_scale)
    _draw_persons(rng, scene, members, invalid=0)


def _add_negatives(rng, scene: _SceneLayers, dist: SizeDistribution, min_face: int,
                   area_scale: float) -> None:
    """Hard negatives between the persons, sized like faces."""
    height, width = scene.label.shape
    for _ in range(int(rng.integers(3, 9) * max(1.0, area_scale))):
        fh = int(np.clip(dist.sample(rng, 1, width)[0], min_face + 2, 0.3 * height))
        fw = max(2, int(fh * rng.uniform(0.7, 1.1)))
        _paste_negative(rng, scene.img, scene.label, scene.nonfaces_lib, fw, fh,
                        int(rng.integers(0, width - fw + 1)),
                        int(rng.integers(0, height - fh + 1)))


def _add_occluders(rng, scene: _SceneLayers) -> None:
    for f in scene.faces:
        if f["invalid"] == 0 and rng.random() < 0.12:
            _paste_occluder(rng, scene.img, scene.label, f["x"], f["y"], f["w"], f["h"])


def _expose(rng, img: np.ndarray, noise: tuple[float, float]) -> np.ndarray:
    """Global illumination gain and Gaussian sensor noise (in place), then ``uint8``."""
    img *= rng.uniform(0.8, 1.15)
    img += rng.standard_normal(img.shape, dtype=np.float32) * (rng.uniform(*noise) / 255.0)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _measure_occlusion(scene: _SceneLayers) -> list[dict]:
    """Occlusion of every face from the final label map; flags its person ``ignore`` (heavy
    occlusion) or ``uncertain`` (small and very blurred). Returns the faces to annotate."""
    label, persons = scene.label, scene.persons
    keep_faces = []
    for i, f in enumerate(scene.faces):
        seen = int(np.count_nonzero(label[f["y"]:f["y"] + f["h"], f["x"]:f["x"] + f["w"]]
                                    == f["_id"]))
        frac = 1.0 - seen / max(scene.face_pixels[i], 1)
        f["occluded_fraction"] = float(frac)
        f["occlusion"] = 0 if frac < 0.02 else (1 if frac <= 0.33 else 2)
        if frac < 0.9:  # a face hidden by more than 90 % is not annotated
            keep_faces.append(f)
        pr = persons[f["person"]]
        if f["occlusion"] == 2:
            pr["ignore"] = True
        if f["blur"] == 2 and f["h"] < 10:  # too blurred and small to be sure
            pr["uncertain"] = True
    return keep_faces


def _scene_tables(image: np.ndarray, faces: list[dict], persons: list[dict]):
    """``(image, faces, persons)`` as :func:`render_scene` returns them."""
    face_df = pd.DataFrame(faces, columns=[*FACE_COLUMNS, "person", "occluded_fraction",
                                           "blur_sigma", "gain"])
    face_df = face_df.astype({c: np.int64 for c in [*FACE_COLUMNS, "person"]})
    pdf = pd.DataFrame(persons, columns=["x1", "y1", "x2", "y2", "ignore", "uncertain",
                                         "has_face", "kind"])
    person_df = pd.DataFrame({
        "x": pdf["x1"].astype(np.int64), "y": pdf["y1"].astype(np.int64),
        "w": (pdf["x2"] - pdf["x1"]).astype(np.int64), "h": (pdf["y2"] - pdf["y1"]).astype(np.int64),
        "ignore": pdf["ignore"].astype(bool), "uncertain": pdf["uncertain"].astype(bool),
        "has_face": pdf["has_face"].astype(bool), "kind": pdf["kind"].astype(str),
    })
    return image, face_df.reset_index(drop=True), person_df


def _draw_persons(rng, scene: _SceneLayers, members: list[_Person], invalid: int) -> list:
    """Render ``members`` in order; append their person rows (not for cluster members) and
    face rows to ``scene``. Returns the person boxes drawn."""
    boxes = []
    faces, persons = scene.faces, scene.persons
    for p in members:
        face_id = len(faces) + 1
        res = _render_person(rng, scene.img, scene.label, p, face_id, scene.faces_lib,
                             scene.nonfaces_lib)
        if res is None:
            continue
        box, n_face, attrs = res
        boxes.append(box)
        if p.cluster:
            person_index = None
        else:
            person_index = len(persons)
            persons.append({"x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3],
                            "ignore": False, "uncertain": False, "has_face": p.has_face,
                            "kind": "person"})
        if p.has_face:
            faces.append({"x": p.fx, "y": p.fy, "w": p.fw, "h": p.fh, "blur": attrs["blur"],
                          "expression": 0, "illumination": attrs["illumination"],
                          "invalid": invalid, "occlusion": 0, "pose": 0,
                          "person": -1 if person_index is None else person_index,
                          "blur_sigma": attrs["blur_sigma"], "gain": attrs["gain"],
                          "_id": face_id})
            scene.face_pixels.append(n_face)
    return boxes
