"""Scale matching (Yu et al., *Scale Match for Tiny Person Detection*, WACV 2020) and the
tiny-person world built with it.

Scale Match rescales each training image so that the sizes of its objects follow a *target*
size distribution: for image ``i`` with object sizes ``s`` (absolute size ``sqrt(w h)``,
pixels) it draws a target size ``t_i`` and rescales the image by ``t_i / mean(s)``. Here the
draw is done in log space so that the *resulting* object sizes -- image factor times the
spread of sizes inside each image -- follow a log-normal with the target's mean and standard
deviation: ``log f_i = mu_t + z_i sqrt(sigma_t^2 - w^2) - mean(log s)``, where ``mu_t,
sigma_t`` are the log-normal parameters of the target mean/std (:func:`lognormal_params`)
and ``w`` is the pooled within-image standard deviation of ``log s`` (the part of the spread
the images already have). :func:`image_factors` does that; :func:`size_summary` measures
what came out.

:func:`make_tiny_person_world` applies it to a synthetic world's TinyPerson split (COCO json
+ images) and writes a new data root whose persons match **TinyPerson's own sizes: 18.0 +-
17.4 px, 73% <= 20 px** (Ning et al., Table 1): the world of the bottom-heavy chapter's
TinyPerson-protocol run (the synthetic persons are ~75 px as rendered). Factors are capped at
``max_factor`` (1: only down-scaling, which keeps the images sharp as TinyPerson's long-range
photos are). Ignore regions and flags are kept; boxes scale with the image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .. import config
from ..boxes import sqrt_area
from ..config import cache_dir
from ..io import atomic_write_text

log = logging.getLogger(__name__)

__all__ = ["TINYPERSON_SIZE", "lognormal_params", "within_spread", "image_factors", "ScaleMatch",
           "size_summary", "make_tiny_person_world", "tiny_person_world_params", "tiny_person_world"]

#: TinyPerson's absolute person size: mean, standard deviation (px) and the share <= 20 px
#: (Ning et al., Table 1)
TINYPERSON_SIZE = {"mean": 18.0, "std": 17.4, "share_le20": 0.73}
WORLD_VERSION = 1


def lognormal_params(mean: float, std: float) -> tuple[float, float]:
    """``(mu, sigma)`` of the log-normal with this mean and standard deviation."""
    if mean <= 0 or std <= 0:
        raise ValueError(f"mean and std must be positive, got {mean}, {std}")
    sigma2 = np.log1p((std / mean) ** 2)
    return float(np.log(mean) - sigma2 / 2), float(np.sqrt(sigma2))


def _logs(sizes_per_image) -> list[np.ndarray]:
    return [np.log(np.asarray(s, np.float64)[np.asarray(s, np.float64) > 0]) for s in sizes_per_image]


def within_spread(sizes_per_image) -> float:
    """The pooled within-image standard deviation of ``log`` object size (``w`` of the module
    doc): the part of a size distribution's spread that rescaling whole images cannot change."""
    with_obj = [x for x in _logs(sizes_per_image) if len(x)]
    if not with_obj:
        raise ValueError("scale matching needs at least one image with objects")
    resid = np.concatenate([x - x.mean() for x in with_obj])
    return float(np.sqrt(np.mean(resid ** 2)))


def image_factors(sizes_per_image, mean: float, std: float, rng: np.random.Generator, *,
                  max_factor: float | None = 1.0, min_factor: float = 0.02) -> np.ndarray:
    """One rescale factor per image (module doc) so that the objects' absolute sizes follow a
    log-normal of ``mean`` and ``std`` px. ``sizes_per_image``: a list of arrays of object
    sizes (images without objects get factor 1 if that is allowed, else the cap)."""
    logs = _logs(sizes_per_image)
    within = within_spread(sizes_per_image)
    mu, sigma = lognormal_params(mean, std)
    spread = float(np.sqrt(max(sigma ** 2 - within ** 2, 0.0)))
    z = rng.standard_normal(len(logs))
    out = np.ones(len(logs))
    for i, x in enumerate(logs):
        if len(x):
            out[i] = np.exp(mu + spread * z[i] - x.mean())
    hi = np.inf if max_factor is None else float(max_factor)
    return np.clip(out, min_factor, hi)


class ScaleMatch:
    """Scale Match as a training transform ``(image, target, rng) -> (image, target)`` (the
    contract of :mod:`tinylib.data.transforms`): each draw rescales the image by a factor drawn
    as in :func:`image_factors` from the sizes of its own boxes that are not ignored, so that over
    the draws the object sizes follow a log-normal of ``mean`` +- ``std`` px. ``within``: the
    training set's :func:`within_spread` (:meth:`for_dataset` measures it). Factors are clipped
    to ``[min_factor, max_factor]``; an image without a counted box is drawn from that range
    log-uniformly. Sets ``target["scale"]`` like :class:`~tinylib.data.transforms.Rescale`, so
    :class:`~tinylib.data.augment.ScaleAwareIgnore` can follow it."""

    def __init__(self, mean: float, std: float, within: float = 0.0, *, min_factor: float = 0.25,
                 max_factor: float = 4.0):
        if not 0 < min_factor <= max_factor:
            raise ValueError(f"factors must be 0 < min_factor <= max_factor, got {min_factor}, {max_factor}")
        self.mean, self.std, self.within = float(mean), float(std), float(within)
        self.mu, sigma = lognormal_params(mean, std)
        self.spread = float(np.sqrt(max(sigma ** 2 - self.within ** 2, 0.0)))
        self.min_factor, self.max_factor = float(min_factor), float(max_factor)

    @classmethod
    def for_dataset(cls, dataset, mean: float, std: float, **kw) -> ScaleMatch:
        """Measure ``within`` on ``dataset`` (anything with ``target(i)``; annotations only)."""
        return cls(mean, std, within_spread([_target_sizes(dataset.target(i)) for i in range(len(dataset))]), **kw)

    def factor(self, sizes, rng: np.random.Generator) -> float:
        x = _logs([sizes])[0]
        if not len(x):
            f = np.exp(rng.uniform(np.log(self.min_factor), np.log(self.max_factor)))
        else:
            f = np.exp(self.mu + self.spread * rng.standard_normal() - x.mean())
        return float(np.clip(f, self.min_factor, self.max_factor))

    def __call__(self, image, target: dict, rng: np.random.Generator):
        from .transforms import Rescale

        return Rescale(self.factor(_target_sizes(target), rng))(image, target)

    def __repr__(self):
        return f"ScaleMatch(mean={self.mean}, std={self.std}, within={self.within:.3f})"


def _target_sizes(target: dict) -> np.ndarray:
    """``sqrt(w h)`` of a target's boxes that are not ignored."""
    s = sqrt_area(np.asarray(target["boxes"], np.float64).reshape(-1, 4))
    ign = np.asarray(target.get("ignore", np.zeros(len(s), bool)), bool)
    return s[~ign]


def size_summary(sizes) -> dict:
    """``n, mean, std, median, share_le20`` of absolute sizes (px)."""
    s = np.asarray(sizes, np.float64).ravel()
    if not len(s):
        return {"n": 0, "mean": float("nan"), "std": float("nan"), "median": float("nan"),
                "share_le20": float("nan")}
    return {"n": int(len(s)), "mean": float(s.mean()), "std": float(s.std()),
            "median": float(np.median(s)), "share_le20": float((s <= 20).mean())}


def _abs_size(bbox) -> float:
    return float(np.sqrt(max(bbox[2], 0.0) * max(bbox[3], 0.0)))


def _counted(a: dict) -> bool:
    """A person that counts for the size distribution (not an ignore region / uncertain)."""
    return not (a.get("ignore") or a.get("uncertain") or a.get("iscrowd") or a.get("logo"))


def make_tiny_person_world(src_root, out_root=None, *, seed: int = 0,
                           mean: float = TINYPERSON_SIZE["mean"], std: float = TINYPERSON_SIZE["std"],
                           max_factor: float = 1.0, splits=("train", "test"),
                           progress: bool = False) -> Path:
    """Scale-match the TinyPerson split of the data root ``src_root`` (a synthetic world, or
    any root in TinyPerson's layout) to persons of ``mean +- std`` px; returns the new data
    root (default: cached under ``TINYLIB_CACHE/tinyperson_world/<key>``), written in a
    temporary directory and renamed into place. ``world.json`` there records the factors'
    source and :func:`size_summary` per split before and after."""
    from .tinyperson import annotation_path, image_path

    src_root = Path(src_root)
    anns = {sp: annotation_path(sp, src_root) for sp in splits}
    key_src = {sp: hashlib.sha1(p.read_bytes()).hexdigest()[:16] for sp, p in anns.items()}
    key = hashlib.sha1(json.dumps([key_src, seed, mean, std, max_factor, WORLD_VERSION])
                       .encode()).hexdigest()[:16]
    final = Path(out_root) if out_root is not None else cache_dir("tinyperson_world") / key
    if (final / "world.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    manifest = {"kind": "tiny-person world (scale-matched)", "source": str(src_root),
                "target": {"mean": mean, "std": std}, "seed": seed, "max_factor": max_factor,
                "version": WORLD_VERSION, "splits": {}}
    try:
        for k, sp in enumerate(splits):
            coco = json.loads(anns[sp].read_text())
            by_img: dict[int, list] = {}
            for a in coco["annotations"]:
                by_img.setdefault(a["image_id"], []).append(a)
            images = coco["images"]
            sizes = [[_abs_size(a["bbox"]) for a in by_img.get(im["id"], []) if _counted(a)]
                     for im in images]
            rng = np.random.default_rng([int(seed), k])
            factors = image_factors(sizes, mean, std, rng, max_factor=max_factor)
            new_images, new_anns, before, after = [], [], [], []
            for im, f in zip(tqdm(images, disable=not progress, desc=f"scale match {sp}"), factors):
                src = image_path(im["file_name"], sp, src_root)
                if src is None:
                    raise FileNotFoundError(f"{anns[sp]}: image {im['file_name']!r} not found "
                                            f"under {src_root / 'tinyperson'}")
                with Image.open(src) as pil:
                    pil = pil.convert("RGB")
                    w, h = max(1, round(pil.width * f)), max(1, round(pil.height * f))
                    sx, sy = w / pil.width, h / pil.height
                    out_path = tmp / "tinyperson" / im["file_name"]
                    out_path.parent.mkdir(parents=True, exist_ok=True)
                    pil.resize((w, h), Image.Resampling.BOX).save(out_path, quality=95)
                new_images.append({**im, "width": w, "height": h, "scale": float(f)})
                for a in by_img.get(im["id"], []):
                    x, y, bw, bh = a["bbox"]
                    nb = [x * sx, y * sy, bw * sx, bh * sy]
                    if _counted(a):
                        before.append(_abs_size(a["bbox"]))
                        after.append(_abs_size(nb))
                    new_anns.append({**a, "bbox": nb, "area": nb[2] * nb[3]})
            ann_dir = tmp / "tinyperson" / "annotations"
            ann_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(ann_dir / f"tiny_set_{sp}.json",
                              json.dumps({**coco, "images": new_images, "annotations": new_anns}))
            manifest["splits"][sp] = {"images": len(new_images), "before": size_summary(before),
                                      "after": size_summary(after),
                                      "factor_median": float(np.median(factors))}
        atomic_write_text(tmp / "world.json", json.dumps(manifest, indent=1))
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / "world.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def tiny_person_world_params() -> dict:
    """The synthetic world the tiny-person world is scale-matched from: quick mode the
    standard quick world (160 + 40 images of 512x384), full mode 300 + 100 images of
    1024x768 (about four times the persons per image; ~200x150 px after matching)."""
    return config.pick({"n_train": 160, "n_val": 40, "seed": 0, "image_size": (512, 384),
                        "size_dist": "quick"},
                       {"n_train": 160, "n_val": 60, "seed": 1, "image_size": (768, 576),
                        "size_dist": "quick"},
                       {"n_train": 300, "n_val": 100, "seed": 1, "image_size": (1024, 768),
                        "size_dist": "quick"})


def tiny_person_world(progress: bool = False) -> Path:
    """The tiny-person world of the current mode (:func:`tiny_person_world_params`, rendered
    once and cached, then :func:`make_tiny_person_world`); its persons measure about 18 +- 17
    px like TinyPerson's."""
    from .synthetic.worlds import make_world

    p = tiny_person_world_params()
    src = make_world(p["n_train"], p["n_val"], seed=p["seed"], image_size=p["image_size"],
                     size_dist=p["size_dist"], progress=progress)
    return make_tiny_person_world(src, progress=progress)
