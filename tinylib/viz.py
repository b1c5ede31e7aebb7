"""Static drawings of detection results (matplotlib; no widgets, no kernel needed to view).

* :func:`outcome` -- which detections are true/false positives and which faces are missed,
  with the WIDER matching rule (IoU >= 0.5, ``+1`` pixel convention);
* :func:`draw_outcome` -- the same drawn in three colours on the image: true positives
  green, false positives red, missed faces yellow;
* :func:`draw_boxes_xyxy` -- plain boxes (e.g. all detections on the selfie).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boxes import box_convert
from .eval import widerface as W

__all__ = ["Outcome", "outcome", "draw_outcome", "draw_boxes_xyxy", "draw_positive_windows",
           "OUTCOME_COLORS"]

OUTCOME_COLORS = {"tp": "lime", "fp": "red", "missed": "yellow", "ignored": "grey"}


@dataclass
class Outcome:
    """Per-detection labels and per-face hits at one score threshold."""

    dets: np.ndarray  # (N, 5) x y w h score, the detections above the threshold
    label: np.ndarray  # (N,) "tp" | "fp" | "ignored" (hit on a face outside the keep list)
    found: np.ndarray  # (M,) bool per face: hit by some detection
    kept: np.ndarray  # (M,) bool per face: in the setting's keep list

    def counts(self) -> dict[str, int]:
        return {"tp": int((self.label == "tp").sum()), "fp": int((self.label == "fp").sum()),
                "missed": int((self.kept & ~self.found).sum()), "faces": int(self.kept.sum())}


def outcome(dets_xywh, gt_xywh, kept_idx=None, *, score_threshold: float = 0.5,
            iou: float = 0.5) -> Outcome:
    """Label detections above ``score_threshold`` against the faces ``gt_xywh`` (``x y w
    h``): the highest-scoring detection on a face is a true positive, a second one on the
    same face and one on no face false positives, one on a face outside ``kept_idx`` (the
    setting's keep list; default all faces) ignored -- the WIDER rules."""
    d = np.asarray(dets_xywh, dtype=np.float64).reshape(-1, 5)
    d = d[d[:, 4] >= score_threshold]
    d = d[np.argsort(-d[:, 4], kind="stable")]
    g = np.asarray(gt_xywh, dtype=np.float64).reshape(-1, 4)
    kept = np.zeros(len(g), dtype=bool)
    kept[np.arange(len(g)) if kept_idx is None else np.asarray(kept_idx, dtype=np.int64)] = True
    hit = W.match_image(d, g, iou_thresh=iou) if len(d) and len(g) else np.full(len(d), -1)
    label = np.full(len(d), "fp", dtype=object)
    found = np.zeros(len(g), dtype=bool)
    for i, h in enumerate(hit):
        if h < 0:
            continue
        if not kept[h]:
            label[i] = "ignored"
        elif not found[h]:
            label[i] = "tp"
        found[h] = True
    return Outcome(d, label.astype(str), found, kept)


def _rects(ax, xywh, color, lw):
    from matplotlib.patches import Rectangle  # matplotlib only when drawing (heavy import)

    for x, y, w, h in np.asarray(xywh, dtype=np.float64).reshape(-1, 4)[:, :4]:
        ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=color, linewidth=lw))


def draw_outcome(ax, image, out: Outcome, gt_xywh, *, linewidth: float = 0.8, title: str = ""):
    """Draw ``out`` on ``image``: TP green, FP red, missed faces yellow (ignored detections
    grey). Returns the counts."""
    g = np.asarray(gt_xywh, dtype=np.float64).reshape(-1, 4)
    ax.imshow(image)
    for lab in ("ignored", "fp", "tp"):
        _rects(ax, out.dets[out.label == lab, :4], OUTCOME_COLORS[lab], linewidth)
    _rects(ax, g[out.kept & ~out.found], OUTCOME_COLORS["missed"], linewidth)
    c = out.counts()
    ax.set_title(title or f"{c['tp']} found (green), {c['fp']} false (red), "
                          f"{c['missed']} missed (yellow) of {c['faces']} faces", fontsize=9)
    ax.axis("off")
    return c


def draw_boxes_xyxy(ax, image, boxes, *, color: str = "lime", linewidth: float = 0.6,
                    title: str = ""):
    """Plain ``x1 y1 x2 y2`` boxes on ``image``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ax.imshow(image)
    _rects(ax, box_convert(b, "xyxy", "xywh"), color, linewidth)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def draw_positive_windows(ax, image, boxes_xyxy, positives, template_sizes_wh, stride: int = 8,
                          *, title: str = ""):
    """A training crop with its faces (cyan) and the template windows labelled positive
    (yellow): ``positives`` is ``(K, 3)`` of ``(template, row, col)`` heatmap indices, as
    ``torch.nonzero(labels == 1)`` gives them; the window of template ``t`` at ``(i, j)`` is
    centred at ``(j * stride + stride / 2, i * stride + stride / 2)`` (tinylib.hr.targets);
    ``template_sizes_wh`` is ``(T, 2)`` of template ``(w, h)``."""
    sizes_wh = np.asarray(template_sizes_wh, dtype=np.float64).reshape(-1, 2)
    pos = np.asarray(positives, dtype=np.int64).reshape(-1, 3)
    cx = pos[:, 2] * stride + stride / 2
    cy = pos[:, 1] * stride + stride / 2
    w, h = sizes_wh[pos[:, 0], 0], sizes_wh[pos[:, 0], 1]
    ax.imshow(image)
    _rects(ax, box_convert(np.stack([cx, cy, w, h], 1), "cxcywh", "xywh"), "yellow", 0.7)
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    _rects(ax, box_convert(b, "xyxy", "xywh"), "cyan", 0.7)
    ax.set_title(title or "faces (cyan) and positive template windows (yellow)", fontsize=9)
    ax.axis("off")
