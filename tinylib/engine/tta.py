"""Test-time augmentation for any detector: an image pyramid and horizontal flipping, merged by
NMS (the survey's toolbox, technique 6; Hu & Ramanan's pyramid is the HR detector's own).

:func:`tta_detect` wraps a ``detect(image) -> (boxes xyxy, scores)`` function: it runs it on the
image rescaled by each of ``scales`` (and on its mirror image when ``flip``), maps every box back
to the original pixels (the library's xyxy convention: a mirror maps ``x1, x2`` to
``W - x2, W - x1``), and merges everything with NMS at ``iou``. :func:`tta_cost` is the pixel cost
relative to one pass at 1x (``sum s^2``, doubled by flipping), the x-axis of the toolbox's
gain-vs-cost figure. :data:`TTA_SETTINGS` are the chapter's settings.

Model-agnostic like the rest of :mod:`tinylib.engine` (below the detectors, which use it:
:func:`tinylib.frcnn.detect.predict_wider`'s ``tta=``; the toolbox's ``tta_<setting>.json`` scorings are
:mod:`tinylib.engine.runs` files).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.ops import nms

__all__ = ["TTA_SETTINGS", "tta_cost", "tta_detect"]

#: the toolbox's test-time settings: name -> (scales, flip)
TTA_SETTINGS = {"1x": ((1.0,), False), "1x+flip": ((1.0,), True), "1x+2x": ((1.0, 2.0), False),
                "0.5x/1x/2x": ((0.5, 1.0, 2.0), False), "0.5x/1x/2x+flip": ((0.5, 1.0, 2.0), True)}


def tta_cost(scales, flip: bool) -> float:
    """Pixels processed relative to one pass at 1x."""
    return float(sum(float(s) ** 2 for s in scales) * (2 if flip else 1))


def tta_detect(detect, image: np.ndarray, scales=(1.0,), flip: bool = False, *, iou: float = 0.3,
               max_detections: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``detect`` over a pyramid of ``scales`` (and mirrored, when ``flip``), boxes mapped back to
    ``image``'s pixels and merged by NMS at ``iou`` (module doc). Returns ``(boxes float32 (N, 4)
    xyxy, scores float32 (N,))`` sorted by score."""
    image = np.asarray(image)
    h, w = image.shape[:2]
    all_b, all_s = [], []
    for s in scales:
        s = float(s)
        img = image if s == 1.0 else np.asarray(
            Image.fromarray(image).resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR))
        sx, sy = img.shape[1] / w, img.shape[0] / h
        for mirrored in ((False, True) if flip else (False,)):
            b, sc = detect(img[:, ::-1].copy() if mirrored else img)
            b = np.asarray(b, np.float64).reshape(-1, 4).copy()
            if mirrored:
                b[:, [0, 2]] = img.shape[1] - b[:, [2, 0]]
            b[:, [0, 2]] /= sx
            b[:, [1, 3]] /= sy
            all_b.append(b)
            all_s.append(np.asarray(sc, np.float64).reshape(-1))
    boxes, scores = np.concatenate(all_b), np.concatenate(all_s)
    if not len(boxes):
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    keep = nms(torch.as_tensor(boxes), torch.as_tensor(scores), float(iou)).numpy()
    if max_detections is not None:
        keep = keep[: int(max_detections)]
    return boxes[keep].astype(np.float32), scores[keep].astype(np.float32)
