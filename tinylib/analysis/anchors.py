"""Anchors and tiny faces before any training: anchor recall by face size, S3FD-style anchor
densification, and scale-compensation matching (the survey's "anchor design" techniques).

An anchor-based detector can only learn a face that some anchor matches. Whether one does is
pure geometry -- the face box, the anchor shapes and the grid they are tiled on -- so it can be
measured on the ground truth alone, before training (Zhang et al., *S3FD*, 2017, Fig. 3;
Zhang et al., *FaceBoxes*, 2017, anchor densification).

* A **level** (:class:`Level`) is a stride ``s``, anchor shapes ``(w, h)``, and a density
  ``n``: anchors are centred on the grid ``(k s / n)`` for integer ``k`` (torchvision's
  ``AnchorGenerator`` centres them on ``k s``, ``n = 1``). Densifying a level by ``n`` tiles
  ``n^2`` copies of each anchor per cell, offset by ``s / n`` (FaceBoxes).
* For an axis-aligned box and a same-shaped anchor, IoU falls monotonically with the centre
  offset on each axis, so the best anchor of a shape is the one on the grid point nearest the
  face centre: :func:`best_iou` is exact, with no search.
* :func:`matched_counts` counts every anchor with IoU ``>= thresh`` (grid points within reach
  of the face), the number a face contributes to the positives.
* :func:`scale_compensation` is S3FD's two-stage matching on any IoU matrix: stage 1 lowers the
  positive threshold (0.5 -> 0.35); stage 2 gives every face with fewer than ``top_n``
  positives its best anchors with IoU ``> min_iou`` up to ``top_n``.

Boxes: the library's xyxy (continuous pixels, width ``x2 - x1``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

__all__ = ["Level", "frcnn_levels", "densify", "best_iou", "matched_counts", "recall_by_size",
           "scale_compensation"]


@dataclass(frozen=True)
class Level:
    """Anchors of one feature level: ``stride`` (px), ``shapes`` ``((w, h), ...)`` and
    ``density`` (anchor centres every ``stride / density`` px)."""

    stride: float
    shapes: tuple
    density: int = 1

    @property
    def step(self) -> float:
        return float(self.stride) / int(self.density)


def frcnn_levels(anchor_sizes, aspect_ratios, strides=(4, 8, 16, 32, 64)) -> list[Level]:
    """The levels of :func:`tinylib.frcnn.model.build_frcnn`'s anchors: per level the sizes
    ``s`` and ratios ``r = h / w`` give ``w = s / sqrt r``, ``h = s sqrt r`` rounded as
    torchvision rounds anchor corners (to integers, centred on the grid point)."""
    levels = []
    for stride, sizes in zip(strides, anchor_sizes, strict=True):
        shapes = []
        for r in aspect_ratios:
            for s in sizes:
                w, h = s / np.sqrt(r), s * np.sqrt(r)
                shapes.append((2 * round(w / 2), 2 * round(h / 2)))
        levels.append(Level(float(stride), tuple(shapes)))
    return levels


def densify(levels, factor: int = 2, max_size: float = 16.0) -> list[Level]:
    """S3FD/FaceBoxes densification: the levels whose largest anchor is at most ``max_size`` px
    get ``density * factor`` (``factor^2`` times the anchors); the others are unchanged."""
    if int(factor) < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    return [replace(lv, density=lv.density * int(factor))
            if max(max(w, h) for w, h in lv.shapes) <= max_size else lv for lv in levels]


def _iou_same_centre_offset(fw, fh, aw, ah, dx, dy):
    """IoU of a ``fw x fh`` box and an ``aw x ah`` anchor whose centres are ``dx, dy`` apart."""
    ix = np.clip(np.minimum(fw / 2, aw / 2 + dx) - np.maximum(-fw / 2, -aw / 2 + dx), 0, None)
    iy = np.clip(np.minimum(fh / 2, ah / 2 + dy) - np.maximum(-fh / 2, -ah / 2 + dy), 0, None)
    inter = ix * iy
    return inter / (fw * fh + aw * ah - inter)


def _faces(boxes) -> tuple[np.ndarray, ...]:
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]


def best_iou(boxes, levels) -> np.ndarray:
    """The best IoU of each box (xyxy, in its image's pixels) with any anchor of ``levels``."""
    cx, cy, fw, fh = _faces(boxes)
    best = np.zeros(len(cx))
    for lv in levels:
        dx = cx - np.round(cx / lv.step) * lv.step  # offset to the nearest anchor centre
        dy = cy - np.round(cy / lv.step) * lv.step
        for aw, ah in lv.shapes:
            best = np.maximum(best, _iou_same_centre_offset(fw, fh, aw, ah, dx, dy))
    return best


def matched_counts(boxes, levels, thresh: float = 0.5) -> np.ndarray:
    """Per box, the number of anchors of ``levels`` with IoU ``>= thresh``."""
    cx, cy, fw, fh = _faces(boxes)
    counts = np.zeros(len(cx), dtype=np.int64)
    for lv in levels:
        for aw, ah in lv.shapes:
            for i in range(len(cx)):
                # anchor centres close enough to overlap at all, on each axis
                kx = np.arange(np.ceil((cx[i] - (fw[i] + aw) / 2) / lv.step),
                               np.floor((cx[i] + (fw[i] + aw) / 2) / lv.step) + 1)
                ky = np.arange(np.ceil((cy[i] - (fh[i] + ah) / 2) / lv.step),
                               np.floor((cy[i] + (fh[i] + ah) / 2) / lv.step) + 1)
                if not len(kx) or not len(ky):
                    continue
                dx = (cx[i] - kx * lv.step)[:, None]
                dy = (cy[i] - ky * lv.step)[None, :]
                counts[i] += int((_iou_same_centre_offset(fw[i], fh[i], aw, ah, dx, dy) >= thresh).sum())
    return counts


def recall_by_size(boxes, levels, thresh: float = 0.5, bins=(0, 8, 12, 16, 20, 32, 64, 1e9)) -> pd.DataFrame:
    """Anchor recall per face-size bin (``sqrt(w h)``): the share of boxes whose best anchor
    reaches IoU ``thresh``, and the mean number of anchors at ``>= thresh``. Rows: bins."""
    _, _, fw, fh = _faces(boxes)
    size = np.sqrt(np.clip(fw, 0, None) * np.clip(fh, 0, None))
    best = best_iou(boxes, levels)
    count = matched_counts(boxes, levels, thresh)
    labels = [f"{a:g}-{b:g}" if b < 1e9 else f">{a:g}" for a, b in zip(bins[:-1], bins[1:])]
    cut = pd.cut(size, list(bins), labels=labels, right=True)
    df = pd.DataFrame({"bin": cut, "recalled": best >= thresh, "anchors": count, "best_iou": best})
    g = df.groupby("bin", observed=False)
    return pd.DataFrame({"faces": g.size(), "recall": g["recalled"].mean(),
                         "mean_anchors": g["anchors"].mean(), "median_best_iou": g["best_iou"].median()})


def scale_compensation(iou: np.ndarray, *, thresh: float = 0.35, top_n: int = 6,
                       min_iou: float = 0.1) -> np.ndarray:
    """S3FD's scale-compensation anchor matching on ``iou`` (anchors x faces). Returns, per
    anchor, the index of its face or -1 (background). Stage 1: each anchor takes its best face
    if IoU ``>= thresh``. Stage 2: every face with fewer than ``top_n`` anchors gets its
    highest-IoU unassigned anchors with IoU ``> min_iou``, until it has ``top_n`` (or none
    are left)."""
    iou = np.asarray(iou)  # its own precision: a float32 IoU of exactly 0.35 stays >= 0.35
    if not np.issubdtype(iou.dtype, np.floating):
        iou = iou.astype(np.float64)
    if iou.ndim != 2:
        raise ValueError(f"iou must be anchors x faces, got shape {iou.shape}")
    n_anchors, n_faces = iou.shape
    assign = np.full(n_anchors, -1, dtype=np.int64)
    if not n_faces or not n_anchors:
        return assign
    best = iou.argmax(1)
    ok = iou[np.arange(n_anchors), best] >= thresh
    assign[ok] = best[ok]
    have = np.bincount(assign[assign >= 0], minlength=n_faces)
    for f in np.flatnonzero(have < top_n):
        order = np.argsort(-iou[:, f], kind="stable")
        for a in order:
            if have[f] >= top_n or iou[a, f] <= min_iou:
                break
            if assign[a] < 0:
                assign[a] = f
                have[f] += 1
    return assign
