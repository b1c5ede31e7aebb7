"""Downsampled ImageNet 32x32 (Chrabaszcz, Loshchilov & Hutter 2017), ``.npz`` version.

Each file (``Imagenet32_train_npz/train_data_batch_{1..10}.npz``,
``Imagenet32_val_npz/val_data.npz``) holds ``data`` ``uint8 (N, 3072)`` (channel-planar:
1024 R, 1024 G, 1024 B bytes, row-major 32x32, as CIFAR) and ``labels`` (``N``, 1-based
class indices 1..1000); the train files also hold ``mean``. Read with
``allow_pickle=False``; labels are returned 0-based.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch.utils.data

from ..config import dataset_dir
from ._parse import AnnotationError
from .cifar import to_tensor

log = logging.getLogger(__name__)

__all__ = ["read_npz", "read_labels", "split_files", "ImageNet32"]

SIDE = 32
NUM_CLASSES = 1000


def _open(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"ImageNet32 file not found: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:  # object arrays would need pickle
        raise AnnotationError(path, None, str(exc), "an .npz of plain arrays (no pickle)") from None
    except Exception as exc:  # zipfile.BadZipFile, OSError ...
        raise AnnotationError(path, None, f"{type(exc).__name__}: {exc}", "a readable .npz file") from None


def _member(path: Path, npz, key: str) -> np.ndarray:
    if key not in npz.files:
        raise AnnotationError(path, None, f"keys {npz.files}", f"a {key!r} array")
    try:
        return npz[key]
    except ValueError as exc:  # object arrays would need pickle
        raise AnnotationError(path, None, f"{key}: {exc}", "an .npz of plain arrays (no pickle)") from None


def _labels(path: Path, npz) -> np.ndarray:
    labels = np.asarray(_member(path, npz, "labels")).reshape(-1).astype(np.int64)
    if labels.size and (labels.min() < 1 or labels.max() > NUM_CLASSES):
        k = int(np.flatnonzero((labels < 1) | (labels > NUM_CLASSES))[0])
        raise AnnotationError(path, None, f"labels[{k}] = {labels[k]}", f"1-based labels in 1..{NUM_CLASSES}")
    return labels - 1


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """0-based labels of one file (reads only the ``labels`` member)."""
    path = Path(path)
    with _open(path) as npz:
        return _labels(path, npz)


def read_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, 32, 32, 3) RGB, labels int64 (N,) 0-based)`` of one file."""
    path = Path(path)
    with _open(path) as npz:
        labels = _labels(path, npz)
        data = _member(path, npz, "data")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE:
        raise AnnotationError(path, None, f"data {data.dtype} {data.shape}", "data uint8 of shape (N, 3072)")
    if len(data) != len(labels):
        raise AnnotationError(path, None, f"{len(data)} images, {len(labels)} labels", "one label per image")
    images = data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def split_files(split: str = "train", root=None) -> list[Path]:
    """The official files of a split under ``<root>/imagenet32/`` (existing ones, sorted by
    batch number)."""
    base = dataset_dir("imagenet32", root)
    if split == "train":
        found = {p.name: p for d in (base / "Imagenet32_train_npz", base) for p in d.glob("train_data_batch_*.npz")}
        files = sorted(found.values(), key=lambda p: int(p.stem.rsplit("_", 1)[-1]))
    elif split == "val":
        files = [p for p in (base / "Imagenet32_val_npz" / "val_data.npz", base / "val_data.npz") if p.is_file()][:1]
    else:
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    if not files:
        raise FileNotFoundError(
            f"no ImageNet32 {split} files under {base} (expected Imagenet32_{split}_npz/*.npz); "
            "see `tinylib-data status` for how to obtain them"
        )
    return files


class ImageNet32(torch.utils.data.Dataset):
    """ImageNet32 samples ``(image, label)`` over one or more ``.npz`` files.

    Without ``transform`` the image is a ``float32 3x32x32`` tensor in ``[0, 1]``; with
    ``transform`` it is ``transform(uint8 32x32x3 RGB array)``. ``label`` is 0-based.
    Only the labels are read up front; the pixel arrays of at most ``cache_files`` files
    are held in memory (a train file is ~390 MB), so iterate roughly file by file (e.g.
    shuffle within files) or give ``files=`` a subset."""

    def __init__(self, root=None, split: str = "train", transform=None, files=None, cache_files: int = 1):
        self.files = [Path(f) for f in files] if files is not None else split_files(split, root)
        self.transform = transform
        self.cache_files = max(1, int(cache_files))
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        labels = [read_labels(f) for f in self.files]
        self.labels = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
        self.offsets = np.cumsum([0] + [len(x) for x in labels])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _images(self, k: int) -> np.ndarray:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        images, labels = read_npz(self.files[k])
        if len(images) != self.offsets[k + 1] - self.offsets[k]:
            raise AnnotationError(self.files[k], None, f"{len(images)} images", "as many images as labels")
        self._cache[k] = images
        while len(self._cache) > self.cache_files:
            self._cache.popitem(last=False)
        return images

    def __getitem__(self, index: int):
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} images")
        index %= n
        k = int(np.searchsorted(self.offsets, index, side="right") - 1)
        image = self._images(k)[index - self.offsets[k]]
        x = self.transform(image) if self.transform is not None else to_tensor(image)
        return x, int(self.labels[index])
