"""Tiny images cut from real WIDER FACE photos: the offline stand-in for CIFAR-100 / ImageNet32.

The bottom-heavy paper pre-trains its backbones on 32x32 images (CIFAR-100, ImageNet32; Ning
et al., Table 5) because their size matches the objects of tiny-object detection. Neither
dataset is on this machine (their loaders, :mod:`tinylib.data.cifar` and
:mod:`tinylib.data.imagenet32`, read them when they are placed under the data root). This
module builds a **clearly named stand-in, "WIDER-32"**, from real photos that are here: 32x32
crops of the WIDER FACE photos of the data bundle, each labelled by what it shows:

* class 0 ``background`` -- a random square window (``background_sides`` px) that holds no
  face: no annotated face (ignored ones included) has more than ``max_face_overlap`` of its
  area inside it;
* classes 1, 2, 3 ``face x1.25`` / ``face x2`` / ``face x4`` -- square windows of 1.25, 2 and
  4 x the larger side of a valid (not ``invalid``) face of at least ``min_face`` px
  (``sqrt(w h)``), centred on it and jittered by up to 10% of the window, so that after
  down-sampling to 32 px the face spans ~26, ~16 or ~8 px: a tiny face at the three scales a
  tiny-object detector must find, and how much of its context is in view. Every chosen face
  gives one crop of each class.

(The photos' WIDER *events* are not used as labels: the bundle's 1,239 train photos come
from only five events, 46% of them ``13--Interview``.)

Train crops come from the ``train`` photos, test crops from the ``val`` photos (the val
subset's photos are never trained on, so top-1 on them is a held-out number). Down-sampling
uses box averaging, as ImageNet32 does (Chrabaszcz et al., 2017). The set is deterministic
for a given ``seed`` and cached (``TINYLIB_CACHE``/``tinycrops``) as ``.npz``.
"""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import torch
import torch.utils.data
from PIL import Image
from tqdm.auto import tqdm

from ..config import cache_dir
from ..io import atomic_save
from .images import read_image
from .widerface import WiderFaceDataset

log = logging.getLogger(__name__)

__all__ = ["FACE_CONTEXTS", "CLASSES", "SIZE", "cut_crops", "build_wider_crops",
           "ArrayImages"]

SIZE = 32
#: window side / face side of the three face classes
FACE_CONTEXTS = (1.25, 2.0, 4.0)
#: class names (label = index)
CLASSES = ("background",) + tuple(f"face x{c:g}" for c in FACE_CONTEXTS)


def _resize(window: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(window).resize((size, size), Image.Resampling.BOX))


def _window(image: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """A ``side x side`` window at ``(x0, y0)``, padded with the image's mean colour outside."""
    h, w = image.shape[:2]
    out = np.empty((side, side, 3), np.uint8)
    out[:] = image.reshape(-1, 3).mean(0).astype(np.uint8)
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if xb > xa and yb > ya:
        out[ya - y0:yb - y0, xa - x0:xb - x0] = image[ya:yb, xa:xb]
    return out


def cut_crops(image: np.ndarray, boxes: np.ndarray, ignore: np.ndarray,
              rng: np.random.Generator, *, per_image: int = 8, size: int = SIZE,
              contexts=FACE_CONTEXTS, min_face: float = 8.0, background_sides=(32, 160),
              max_face_overlap: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For up to ``per_image`` faces one crop at each of ``contexts`` (label ``1 + index``), and
    up to ``per_image`` background crops (label 0), of one photo (module doc). ``boxes`` xyxy (all annotated faces), ``ignore`` their invalid flags. Returns
    ``(crops uint8 (n, size, size, 3), labels int64 (n,), windows int (n, 3) x0 y0 side)``."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    ignore = np.asarray(ignore, bool).reshape(-1)
    h, w = image.shape[:2]
    crops, labels, windows = [], [], []
    wh = boxes[:, 2:] - boxes[:, :2]
    ok = ~ignore & (np.sqrt(np.clip(wh[:, 0], 0, None) * np.clip(wh[:, 1], 0, None)) >= min_face)
    for i in rng.permutation(np.flatnonzero(ok))[:per_image]:
        for c, context in enumerate(contexts):
            side = max(2, int(round(context * wh[i].max())))
            cx, cy = (boxes[i, :2] + boxes[i, 2:]) / 2 + rng.uniform(-0.1, 0.1, 2) * side
            x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
            crops.append(_resize(_window(image, x0, y0, side), size))
            labels.append(1 + c)
            windows.append((x0, y0, side))
    lo, hi = background_sides
    hi = min(int(hi), h, w)
    area = np.clip(wh[:, 0], 0, None) * np.clip(wh[:, 1], 0, None)
    got = 0
    for _ in range(per_image * 10):
        if got >= per_image or hi < lo:
            break
        side = int(rng.integers(lo, hi + 1))
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        if len(boxes):
            iw = np.clip(np.minimum(boxes[:, 2], x0 + side) - np.maximum(boxes[:, 0], x0), 0, None)
            ih = np.clip(np.minimum(boxes[:, 3], y0 + side) - np.maximum(boxes[:, 1], y0), 0, None)
            if np.any(iw * ih > max_face_overlap * np.maximum(area, 1e-9)):
                continue
        crops.append(_resize(image[y0:y0 + side, x0:x0 + side], size))
        labels.append(0)
        windows.append((x0, y0, side))
        got += 1
    if not crops:
        return (np.zeros((0, size, size, 3), np.uint8), np.zeros(0, np.int64), np.zeros((0, 3), int))
    return np.stack(crops), np.asarray(labels, np.int64), np.asarray(windows, int)


def build_wider_crops(split: str = "train", root=None, *, per_image: int = 8, seed: int = 0,
                      max_images: int | None = None, progress: bool = True, cache: bool = True) -> dict:
    """WIDER-32 (module doc) from the ``split`` photos present under the data root ``root``.
    Returns ``{"images": uint8 (N, 32, 32, 3), "labels": int64 (N,), "classes": CLASSES,
    "source": [photo per crop]}``; cached by split, photo list, ``per_image`` and ``seed``."""
    ds = WiderFaceDataset(root, split)
    names = list(ds.images)[:max_images] if max_images else list(ds.images)
    if not names:
        raise FileNotFoundError(f"no WIDER FACE {split} photos under {ds.root / 'widerface'}: "
                                "WIDER-32 is cut from them")
    key = hashlib.sha1(json.dumps([split, names, per_image, seed, SIZE, 2]).encode()).hexdigest()[:16]
    path = cache_dir("tinycrops") / f"wider32_{split}_{key}.npz"
    if cache and path.is_file():
        with np.load(path) as z:
            return {"images": z["images"], "labels": z["labels"], "classes": CLASSES,
                    "source": [str(s) for s in z["source"]]}
    imgs, labs, srcs = [], [], []
    for k, name in enumerate(tqdm(names, disable=not progress, desc=f"WIDER-32 {split}")):
        t = ds.target(k)
        rng = np.random.default_rng([int(seed), k])
        c, lab, _ = cut_crops(read_image(ds.paths[k]), t["boxes"], t["ignore"], rng,
                              per_image=per_image)
        imgs.append(c)
        labs.append(lab)
        srcs += [name] * len(lab)
    out = {"images": np.concatenate(imgs), "labels": np.concatenate(labs), "classes": CLASSES,
           "source": srcs}
    if cache:
        atomic_save(path, lambda p: np.savez(p, images=out["images"], labels=out["labels"],
                                             source=np.asarray(srcs)), suffix=".tmp.npz")
    log.info("WIDER-32 %s: %d crops (%d faces) from %d photos", split, len(out["labels"]),
             int((out["labels"] > 0).sum()), len(names))
    return out


class ArrayImages(torch.utils.data.Dataset):
    """Samples ``(transform(uint8 HxWx3 image), label)`` from in-memory arrays -- the interface
    of :class:`tinylib.data.cifar.Cifar100` and :class:`tinylib.data.imagenet32.ImageNet32`."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=None, classes=()):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = np.asarray(labels, np.int64)
        self.transform = transform
        self.classes = list(classes)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = self.images[index]
        if self.transform is not None:
            return self.transform(image), int(self.labels[index])
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255.0, \
            int(self.labels[index])
