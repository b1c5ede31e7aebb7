"""CIFAR-100, binary version (no pickle).

``cifar-100-binary/{train,test}.bin``: records of ``1 + 1 + 3072`` bytes: the coarse label
(0-19), the fine label (0-99), then the 32x32 image channel-planar: 1024 red bytes, 1024
green, 1024 blue, each row-major. ``{coarse,fine}_label_names.txt``: one name per line.
(CIFAR-10's binary version has a single label byte: ``label_bytes=1``.)

Files under the data root: ``cifar100/cifar-100-binary/`` (``tinylib-data fetch cifar100``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.utils.data

from ..config import dataset_dir
from ._parse import AnnotationError, read_text_lines

__all__ = ["read_cifar_bin", "read_label_names", "load_cifar100", "Cifar100", "to_tensor", "cifar_dir"]

PIXELS = 32 * 32 * 3
LABEL_LIMITS = {1: (10,), 2: (20, 100)}  # classes per label byte (CIFAR-10; CIFAR-100 coarse, fine)


def cifar_dir(root=None) -> Path:
    base = dataset_dir("cifar100", root)
    for c in (base / "cifar-100-binary", base):
        if (c / "train.bin").is_file() or (c / "test.bin").is_file():
            return c
    return base / "cifar-100-binary"


def read_cifar_bin(path: str | os.PathLike, label_bytes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, 32, 32, 3) RGB, labels int64 (N, label_bytes))``.

    For CIFAR-100 ``labels[:, 0]`` is the coarse and ``labels[:, 1]`` the fine label.
    A size that is not a whole number of records, or a label out of range, raises
    :class:`AnnotationError` naming the file and the record."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR binary file not found: {path}")
    rec = label_bytes + PIXELS
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % rec:
        n = raw.size // rec
        raise AnnotationError(
            path, None, f"{raw.size} bytes (record {n + 1} has {raw.size - n * rec} bytes)",
            f"a whole number of {rec}-byte records ({label_bytes} label byte(s) + 3072 pixels)",
        )
    recs = raw.reshape(-1, rec)
    labels = recs[:, :label_bytes].astype(np.int64)
    limits = LABEL_LIMITS.get(label_bytes)
    if limits:
        for j, lim in enumerate(limits):
            bad = np.flatnonzero(labels[:, j] >= lim)
            if bad.size:
                k = int(bad[0])
                raise AnnotationError(
                    path, None, f"record {k + 1} (byte {k * rec + j}): label {labels[k, j]}",
                    f"label byte {j + 1} in 0..{lim - 1}",
                )
    images = recs[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def read_label_names(path: str | os.PathLike) -> list[str]:
    return [s.strip() for s in read_text_lines(path) if s.strip()]


def load_cifar100(split: str = "train", root=None) -> dict:
    """``{"images", "fine", "coarse", "fine_names", "coarse_names"}`` of a split."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    d = cifar_dir(root)
    images, labels = read_cifar_bin(d / f"{split}.bin", label_bytes=2)
    names = {}
    for kind in ("fine", "coarse"):
        p = d / f"{kind}_label_names.txt"
        names[kind] = read_label_names(p) if p.is_file() else []
    return {"images": images, "coarse": labels[:, 0], "fine": labels[:, 1],
            "fine_names": names["fine"], "coarse_names": names["coarse"]}


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``uint8 H x W x 3`` -> ``float32 3 x H x W`` in ``[0, 1]``."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


class Cifar100(torch.utils.data.Dataset):
    """CIFAR-100 samples ``(image, label)``.

    Without ``transform`` the image is a ``float32 3x32x32`` tensor in ``[0, 1]``; with
    ``transform`` it is ``transform(uint8 32x32x3 RGB array)`` (whatever that returns).
    ``label`` is the fine (default) or coarse class index (``int``). ``images``/``labels``
    may be given directly (tests, subsets)."""

    def __init__(self, root=None, split: str = "train", label: str = "fine", transform=None,
                 images: np.ndarray | None = None, labels: np.ndarray | None = None):
        if label not in ("fine", "coarse"):
            raise ValueError(f"label must be 'fine' or 'coarse', got {label!r}")
        if images is None:
            data = load_cifar100(split, root)
            images, labels = data["images"], data[label]
            self.classes = data[f"{label}_names"]
        else:
            self.classes = []
        if labels is None or len(labels) != len(images):
            raise ValueError("images and labels must have the same length")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = self.images[index]
        x = self.transform(image) if self.transform is not None else to_tensor(image)
        return x, int(self.labels[index])
