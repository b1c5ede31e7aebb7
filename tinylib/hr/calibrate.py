"""Score calibration of the HR detector across templates and pyramid levels (issue #26).

Each template is its own classifier, trained with its own positives, and each pyramid level
sees a different image scale, so a raw score of 0.9 from one template and one level is not
the same evidence as 0.9 from another. NMS then keeps whichever box scores highest, and that
can be a box of the wrong size from a neighbouring template or level (chapter 07 measures
recall by face size before and after NMS).

:func:`fit` puts every candidate on one scale: a logistic regression on the candidates of a set
of photos (the **tuning** half of the WIDER val subset, never the test half),

    calibrated logit = raw logit + template_bias[t] + level_bias[scale] + offset,

with the label "IoU >= ``label_iou`` with a ground-truth face" and a small L2 pull of every
bias towards 0. A high ``label_iou`` rewards the templates and levels whose boxes *fit* faces.
Measured on the WIDER val subset (chapter 07, ``hr_calibration_sweep`` and
``hr_recall_by_size``): the gain in AP comes from the ranking across templates and levels
(true faces ahead of other templates' false positives), hardly from more faces surviving NMS. The raw logit keeps slope 1: the order of candidates within one
template and level never changes, only how they rank against other templates and levels (a
per-template slope fitted worse on the tuning half). :class:`Calibration` holds the biases,
applies them to a :class:`~tinylib.hr.detect.RawDetections` (:meth:`Calibration.apply`) and
saves / loads them as JSON tied to the weights they were fitted for.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torchvision

from ..boxes import box_convert
from ..io import atomic_write_text

__all__ = ["Calibration", "candidates", "fit", "load_calibration", "FORMAT"]

FORMAT = "tinylib.hr.calibration/1"
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _level_key(scale: float) -> str:
    return f"{float(scale):.6g}"


@dataclass(frozen=True)
class Calibration:
    """Per-template and per-level score biases (module doc). ``level_bias`` maps a pyramid
    scale (as ``"0.5"``, ``"2"``) to its bias; a level not seen in fitting gets 0."""

    template_bias: tuple[float, ...]
    level_bias: dict[str, float] = field(default_factory=dict)
    offset: float = 0.0
    label_iou: float = 0.7
    weights: str | None = None  # the weights id (tinylib.hr.cache.weights_id) it was fitted for
    fitted_on: dict = field(default_factory=dict)  # e.g. {"half": "tuning", "images": 187, ...}

    def logits(self, template: np.ndarray, level: np.ndarray, scores: np.ndarray) -> np.ndarray:
        t = np.asarray(template, np.int64)
        if len(t) and (t.min() < 0 or t.max() >= len(self.template_bias)):
            raise ValueError(f"template index {int(t.max())} outside the calibration's "
                             f"{len(self.template_bias)} templates")
        lb = np.array([self.level_bias.get(_level_key(s), 0.0) for s in np.asarray(level, float)])
        return _logit(scores) + np.asarray(self.template_bias, np.float64)[t] + lb + self.offset

    def scores(self, template, level, scores) -> np.ndarray:
        """Calibrated scores in (0, 1), float32."""
        return (1.0 / (1.0 + np.exp(-self.logits(template, level, scores)))).astype(np.float32)

    def apply(self, raw, floor: float | None = None):
        """``raw`` (:class:`~tinylib.hr.detect.RawDetections`) with calibrated scores; with
        ``floor``, the candidates whose *raw* score is below it are dropped first."""
        if floor is not None:
            raw = raw.subset(raw.scores >= floor)
        return replace(raw, scores=self.scores(raw.template, raw.level, raw.scores))

    def to_dict(self) -> dict:
        return {"format": FORMAT, "template_bias": [float(v) for v in self.template_bias],
                "level_bias": {k: float(v) for k, v in self.level_bias.items()},
                "offset": float(self.offset), "label_iou": float(self.label_iou),
                "weights": self.weights, "fitted_on": dict(self.fitted_on)}

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "calibration") -> Calibration:
        if d.get("format") != FORMAT:
            raise ValueError(f"{source}: expected format {FORMAT!r}, got {d.get('format')!r}")
        try:
            tb = tuple(float(v) for v in d["template_bias"])
            lb = {str(k): float(v) for k, v in d.get("level_bias", {}).items()}
            return cls(tb, lb, float(d.get("offset", 0.0)), float(d.get("label_iou", 0.7)),
                       d.get("weights"), dict(d.get("fitted_on", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: not a calibration ({exc})") from None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the JSON atomically (a crash leaves the old file whole)."""
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        return path


def load_calibration(path: str | os.PathLike, weights: str | None = None) -> Calibration:
    """Read a calibration file; with ``weights`` (a weights id), raise ``ValueError`` when the
    file was fitted for other weights (its biases mean nothing for another network)."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no calibration file {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: line {exc.lineno}: not JSON ({exc.msg})") from None
    cal = Calibration.from_dict(d, str(path))
    if weights is not None and cal.weights is not None and cal.weights != weights:
        raise ValueError(f"{path}: fitted for weights {cal.weights}, not {weights}")
    return cal


def candidates(raws: Mapping, gt_boxes: Mapping[str, np.ndarray], keys: Iterable[str], *,
               min_score: float = 0.05) -> dict[str, np.ndarray]:
    """The A+B candidates (as :meth:`RawDetections.select`'s ``routing="ab"``) of ``keys``
    with their best IoU against the image's ground-truth faces (``gt_boxes``: ``x y w h``
    rows, WIDER's layout): ``{"scores", "template", "level", "iou"}`` arrays."""
    parts: dict[str, list] = {"scores": [], "template": [], "level": [], "iou": []}
    for k in keys:
        raw = raws[k]
        m = raw.mask(min_score, routing="ab")
        if not m.any():
            continue
        b = raw.boxes[m]
        g = np.asarray(gt_boxes.get(k, np.zeros((0, 4))), np.float64).reshape(-1, 4)
        if len(g):
            g = box_convert(g, "xywh", "xyxy")
            iou = torchvision.ops.box_iou(torch.as_tensor(b, dtype=torch.float32),
                                          torch.as_tensor(g, dtype=torch.float32)).amax(1).numpy()
        else:
            iou = np.zeros(len(b), np.float32)
        for name, v in (("scores", raw.scores[m]), ("template", raw.template[m]),
                        ("level", raw.level[m]), ("iou", iou)):
            parts[name].append(np.asarray(v))
    if not parts["scores"]:
        raise ValueError("no candidate to calibrate on (no image, or nothing above the score floor)")
    return {k: np.concatenate(v) for k, v in parts.items()}


def fit(raws: Mapping, gt_boxes: Mapping[str, np.ndarray], keys: Iterable[str], *,
        n_templates: int, label_iou: float = 0.7, l2: float = 1e-3, weights: str | None = None,
        fitted_on: dict | None = None) -> Calibration:
    """Fit the biases (module doc) on the candidates of ``keys`` (L-BFGS on the mean logistic
    loss plus ``l2`` times the squared biases). Deterministic: the same inputs give the same
    biases."""
    if not 0 < label_iou <= 1:
        raise ValueError(f"label_iou must be in (0, 1], got {label_iou}")
    keys = list(keys)
    c = candidates(raws, gt_boxes, keys)
    y = torch.as_tensor((c["iou"] >= label_iou).astype(np.float64))
    if not 0 < float(y.sum()) < len(y):
        raise ValueError(f"calibration needs positive and negative candidates at IoU {label_iou}: "
                         f"{int(y.sum())} of {len(y)} are positive")
    levels = sorted({_level_key(s) for s in c["level"]}, key=float)
    li = torch.as_tensor([levels.index(_level_key(s)) for s in c["level"]])
    ti = torch.as_tensor(c["template"].astype(np.int64))
    x = torch.as_tensor(_logit(c["scores"]))
    tb = torch.zeros(n_templates, dtype=torch.float64, requires_grad=True)
    lb = torch.zeros(len(levels), dtype=torch.float64, requires_grad=True)
    off = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([tb, lb, off], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = x + tb[ti] + lb[li] + off
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y) + l2 * (
            (tb ** 2).sum() + (lb ** 2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    info = {"images": len(keys), "candidates": int(len(y)), "positives": int(y.sum()), "l2": l2,
            **(fitted_on or {})}
    out = Calibration(tuple(float(v) for v in tb.detach()),
                      {k: float(v) for k, v in zip(levels, lb.detach())},
                      float(off.detach()[0]), float(label_iou), weights, info)
    if not all(math.isfinite(v) for v in (*out.template_bias, *out.level_bias.values(), out.offset)):
        raise ValueError("calibration fit diverged (non-finite bias)")
    return out
