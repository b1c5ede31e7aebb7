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

Formats between layouts are converted in one place, :func:`box_convert` (``"xyxy"``,
``"xywh"``, ``"cxcywh"``, as ``torchvision.ops.box_convert``; NumPy arrays and torch
tensors). Sizes name their order: ``*_hw`` is ``(height, width)``, ``*_wh`` is
``(width, height)``.
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = [
    "BOX_FORMATS",
    "box_convert",
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


#: the box layouts :func:`box_convert` knows (torchvision's names)
BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


def _to_xyxy(c0, c1, c2, c3, fmt: str):
    if fmt == "xywh":
        return c0, c1, c0 + c2, c1 + c3
    if fmt == "cxcywh":
        return c0 - 0.5 * c2, c1 - 0.5 * c3, c0 + 0.5 * c2, c1 + 0.5 * c3
    return c0, c1, c2, c3


def box_convert(boxes, in_fmt: str, out_fmt: str):
    """Convert boxes between ``"xyxy"`` ``(x1, y1, x2, y2)``, ``"xywh"`` ``(x, y, w, h)``
    (WIDER FACE, COCO) and ``"cxcywh"`` ``(cx, cy, w, h)``, like
    ``torchvision.ops.box_convert``, in tinylib's convention: ``x2 = x + w``, no ``+ 1``
    (the module docstring).

    ``boxes``: a NumPy array or a torch tensor of shape ``(..., K)`` with ``K >= 4``; the
    first four columns are converted, **extra columns (e.g. a score) are carried over
    unchanged**, so WIDER rows ``x y w h score`` convert as they are. A single box ``(4,)``
    gives ``(1, 4)``; lists become float64 arrays; an empty list gives ``(0, 4)``. Returns
    the same kind (array or tensor, same device) and dtype; never modifies ``boxes``.
    Integer input stays integer between ``xyxy`` and ``xywh``; ``cxcywh`` halves, so it
    comes out floating (as in torchvision)."""
    for fmt in (in_fmt, out_fmt):
        if fmt not in BOX_FORMATS:
            raise ValueError(f"unknown box format {fmt!r}; known: {', '.join(BOX_FORMATS)}")
    # torch is not imported here (heavy, and the NumPy-only evaluation does not need it): a
    # tensor can only exist once torch is loaded, so it is taken from sys.modules
    torch = sys.modules.get("torch")
    is_tensor = torch is not None and isinstance(boxes, torch.Tensor)
    if not is_tensor:
        boxes = boxes if isinstance(boxes, np.ndarray) else np.asarray(boxes, np.float64)
    if boxes.ndim == 1:
        boxes = boxes.reshape(-1, 4) if boxes.shape[0] in (0, 4) else boxes[None, :]
    if boxes.shape[-1] < 4:
        raise ValueError(f"boxes must have at least 4 columns, got shape {tuple(boxes.shape)}")
    if in_fmt == out_fmt:
        return boxes.clone() if is_tensor else boxes.copy()
    c = [boxes[..., k] for k in range(4)]
    x1, y1, x2, y2 = _to_xyxy(*c, in_fmt)
    if out_fmt == "xyxy":
        cols = (x1, y1, x2, y2)
    elif in_fmt == "cxcywh":  # cxcywh -> xywh: the corner, sizes as they are
        cols = (x1, y1, c[2], c[3])
    elif in_fmt == "xywh":  # xywh -> cxcywh: the centre, sizes as they are
        cols = (c[0] + 0.5 * c[2], c[1] + 0.5 * c[3], c[2], c[3])
    elif out_fmt == "xywh":
        cols = (x1, y1, x2 - x1, y2 - y1)
    else:  # xyxy -> cxcywh
        cols = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
    if is_tensor:
        out = torch.stack(torch.broadcast_tensors(*cols), dim=-1)
        return torch.cat([out, boxes[..., 4:].to(out.dtype)], dim=-1) if boxes.shape[-1] > 4 else out
    out = np.stack(np.broadcast_arrays(*cols), axis=-1)
    return np.concatenate([out, boxes[..., 4:].astype(out.dtype)], axis=-1) if boxes.shape[-1] > 4 else out


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


def shape_jaccard(shapes_a_hw, shapes_b_hw) -> np.ndarray:
    """Eq. 1 of *Finding Tiny Faces*: IoU of two box *shapes* ``(h, w)`` aligned at a corner.

    Returns the pairwise **similarity** ``J = min(h)min(w) / (h_a w_a + h_b w_b - min(h)min(w))``;
    the clustering distance is ``1 - J``. Shapes are ``(N, 2)`` arrays of ``(h, w)``."""
    a = np.asarray(shapes_a_hw, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(shapes_b_hw, dtype=np.float64).reshape(-1, 2)
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
