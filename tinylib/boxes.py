"""THE box convention of tinylib, stated once.

Inside tinylib every box is a float ``(x1, y1, x2, y2)`` in **continuous pixel
coordinates**: the top-left corner of pixel ``(col, row)`` is ``(col, row)`` and its
bottom-right corner is ``(col + 1, row + 1)``. So

* width  = ``x2 - x1`` and height = ``y2 - y1`` (no ``+ 1``);
* a WIDER FACE / FDDB-style ``x y w h`` annotation (integer pixel indices, ``w`` pixels
  wide) converts to ``(x, y, x + w, y + h)`` and back losslessly;
* a box covering the whole ``W x H`` image is ``(0, 0, W, H)``.

This is torchvision's convention, so ``torchvision.ops`` (``nms``, ``box_iou``,
``roi_align``) applies unchanged.

The one deliberate exception is evaluation code that reproduces an official benchmark:
the WIDER FACE MATLAB toolbox and the Tiny Faces MATLAB code compute widths as
``x2 - x1 + 1`` on ``x2 = x + w``. ``tinylib.eval.widerface`` applies that ``+1`` *inside*
its IoU (``box_iou(..., plus_one=True)``), says so, and shows in notebook 06 how much it
moves the AP. Arrays of boxes are ``(N, 4)``; helpers accept NumPy arrays and return NumPy.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "xywh_to_xyxy",
    "xyxy_to_xywh",
    "widths_heights",
    "box_area",
    "box_iou",
    "shape_jaccard",
    "clip_boxes",
    "is_degenerate",
    "ellipse_to_box",
    "sqrt_area",
]


def _as_boxes(boxes) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == 4:
        arr = arr[None, :]
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {arr.shape}")
    return arr


def xywh_to_xyxy(boxes) -> np.ndarray:
    """``(x, y, w, h)`` (WIDER FACE, COCO) -> ``(x1, y1, x2, y2)`` with ``x2 = x + w``."""
    b = _as_boxes(boxes).copy()
    b[:, 2] += b[:, 0]
    b[:, 3] += b[:, 1]
    return b


def xyxy_to_xywh(boxes) -> np.ndarray:
    b = _as_boxes(boxes).copy()
    b[:, 2] -= b[:, 0]
    b[:, 3] -= b[:, 1]
    return b


def widths_heights(boxes, plus_one: bool = False) -> tuple[np.ndarray, np.ndarray]:
    b = _as_boxes(boxes)
    extra = 1.0 if plus_one else 0.0
    return b[:, 2] - b[:, 0] + extra, b[:, 3] - b[:, 1] + extra


def box_area(boxes, plus_one: bool = False) -> np.ndarray:
    """Area; negative or zero sizes give area 0 (they cannot overlap anything)."""
    w, h = widths_heights(boxes, plus_one)
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def sqrt_area(boxes) -> np.ndarray:
    """``sqrt(w * h)``: the 'absolute size' of TinyPerson and the BH paper's Table 1."""
    return np.sqrt(box_area(boxes))


def box_iou(a, b, plus_one: bool = False) -> np.ndarray:
    """Pairwise IoU, shape ``(len(a), len(b))``.

    ``plus_one=True`` reproduces the MATLAB benchmarks' ``x2 - x1 + 1`` widths (use it only
    in evaluation that must match them)."""
    a = _as_boxes(a)
    b = _as_boxes(b)
    extra = 1.0 if plus_one else 0.0
    area_a = box_area(a, plus_one)
    area_b = box_area(b, plus_one)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + extra
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + extra
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def shape_jaccard(shapes_a, shapes_b) -> np.ndarray:
    """Eq. 1 of *Finding Tiny Faces*: IoU of two box *shapes* ``(h, w)`` aligned at a corner.

    Returns the pairwise **similarity** ``J = min(h)min(w) / (h_a w_a + h_b w_b - min(h)min(w))``;
    the clustering distance is ``1 - J``. Shapes are ``(N, 2)`` arrays of ``(h, w)``."""
    a = np.asarray(shapes_a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(shapes_b, dtype=np.float64).reshape(-1, 2)
    inter = np.minimum(a[:, None, 0], b[None, :, 0]) * np.minimum(a[:, None, 1], b[None, :, 1])
    union = a[:, 0, None] * a[:, 1, None] + (b[:, 0] * b[:, 1])[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def clip_boxes(boxes, width: float, height: float) -> np.ndarray:
    b = _as_boxes(boxes).copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, height)
    return b


def is_degenerate(boxes) -> np.ndarray:
    """True where width or height is zero or negative (kept in tables, never used as targets)."""
    w, h = widths_heights(boxes)
    return (w <= 0) | (h <= 0)


def ellipse_to_box(major, minor, angle, cx, cy) -> np.ndarray:
    """Tight axis-aligned box of FDDB ellipses.

    FDDB's ``major_axis_radius minor_axis_radius angle center_x center_y``: as in the
    official evaluation (which draws the ellipse with OpenCV), the major semi-axis points
    along direction ``angle`` (radians, from the x axis); real faces have ``angle`` near
    ``pi/2`` (upright). Half-extents of a rotated ellipse with semi-axes ``a`` (along θ) and
    ``b``: ``sqrt(a²cos²θ + b²sin²θ)`` horizontally, ``sqrt(a²sin²θ + b²cos²θ)`` vertically."""
    a = np.asarray(major, dtype=np.float64)
    b = np.asarray(minor, dtype=np.float64)
    theta = np.asarray(angle, dtype=np.float64)
    cx = np.asarray(cx, dtype=np.float64)
    cy = np.asarray(cy, dtype=np.float64)
    hx = np.sqrt((a * np.cos(theta)) ** 2 + (b * np.sin(theta)) ** 2)
    hy = np.sqrt((a * np.sin(theta)) ** 2 + (b * np.cos(theta)) ** 2)
    return np.stack([cx - hx, cy - hy, cx + hx, cy + hy], axis=-1).reshape(-1, 4)
