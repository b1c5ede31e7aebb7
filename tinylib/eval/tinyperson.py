"""TinyPerson-style AP per absolute-size range (TinyBenchmark's ``COCOevalTiny``).

The TinyBenchmark evaluation is COCO's (greedy matching in score order, 101-point
interpolated AP) with three changes, all reproduced here:

* **Size ranges by absolute size** ``sqrt(w * h)``: ``tiny [2, 20]``, ``tiny1 [2, 8]``,
  ``tiny2 [8, 12]``, ``tiny3 [12, 20]``, ``small [20, 32]``, ``all [2, inf)`` (bounds
  inclusive, compared on the area ``w * h`` against ``lo², hi²`` as COCO does). The paper
  writes the lower bound 2; some TinyBenchmark configs use 1 — pass ``ranges=``.
* **IoU thresholds** 0.25, 0.5 and 0.75, up to 200 detections per image.
* **Ignore handling.** A ground-truth box is ignored if it is an ignore region (``ignore``
  or ``iscrowd``; with ``ignore_uncertain`` also ``uncertain``) or its size is outside the
  range. Matching prefers non-ignored boxes (ignored ones are tried last); a detection
  matched to an ignored box is ignored. A detection matched to nothing is then tested
  against every ignored box with **IoD** (intersection over the *detection's* area): if the
  largest IoD is ``>= t`` it is ignored too (a detection inside a dense-crowd ignore region
  is no false positive). Finally an unmatched detection whose own size is outside the
  range is ignored (COCO's rule).

No ``+1`` here: TinyBenchmark uses COCO's continuous boxes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..boxes import box_area, box_convert, box_iou
from .pr import coco_interp_ap

__all__ = ["SIZE_RANGES", "IOU_THRESHOLDS", "TinyGT", "TinyResult", "load_coco_gt", "evaluate",
           "match_image"]

SIZE_RANGES: dict[str, tuple[float, float]] = {
    "all": (2.0, 1e5),
    "tiny": (2.0, 20.0),
    "tiny1": (2.0, 8.0),
    "tiny2": (8.0, 12.0),
    "tiny3": (12.0, 20.0),
    "small": (20.0, 32.0),
}
IOU_THRESHOLDS = (0.25, 0.5, 0.75)


@dataclass
class TinyGT:
    """Per image ``boxes[key]`` ``(N, 4)`` xywh and ``ignore[key]`` bool ``(N,)``."""

    boxes: dict[str, np.ndarray]
    ignore: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        self.boxes = {k: np.asarray(v, dtype=np.float64).reshape(-1, 4) for k, v in self.boxes.items()}
        for k, b in self.boxes.items():
            ig = np.asarray(self.ignore.get(k, np.zeros(len(b), bool)), dtype=bool).ravel()
            if ig.shape != (len(b),):
                raise ValueError(f"ignore[{k!r}] has {ig.size} flags for {len(b)} boxes")
            self.ignore[k] = ig

    @property
    def images(self) -> list[str]:
        return list(self.boxes)


def load_coco_gt(path: str | os.PathLike, ignore_uncertain: bool = True) -> TinyGT:
    """A TinyPerson-style COCO json (``ignore``/``iscrowd``/``uncertain`` flags per box);
    images are keyed by ``file_name``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}, line {exc.lineno}: expected valid JSON ({exc.msg})") from None
    for k in ("images", "annotations"):
        if k not in data:
            raise ValueError(f"{path}: expected a COCO json with '{k}'")
    names = {im["id"]: im["file_name"] for im in data["images"]}
    boxes = {n: [] for n in names.values()}
    ignore = {n: [] for n in names.values()}
    for i, a in enumerate(data["annotations"]):
        if a.get("image_id") not in names:
            raise ValueError(f"{path}: annotation #{i} (id {a.get('id')}) names unknown image_id "
                             f"{a.get('image_id')!r}")
        bbox = a.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise ValueError(f"{path}: annotation #{i} (id {a.get('id')}): expected bbox [x, y, w, h], "
                             f"got {bbox!r}")
        n = names[a["image_id"]]
        boxes[n].append(bbox)
        ig = bool(a.get("ignore", False)) or bool(a.get("iscrowd", 0))
        if ignore_uncertain:
            ig = ig or bool(a.get("uncertain", False))
        ignore[n].append(ig)
    return TinyGT(boxes={k: np.asarray(v, float).reshape(-1, 4) for k, v in boxes.items()},
                  ignore={k: np.asarray(v, bool) for k, v in ignore.items()})


def _iod(det_xyxy: np.ndarray, gt_xyxy: np.ndarray) -> np.ndarray:
    iw = np.minimum(det_xyxy[:, None, 2], gt_xyxy[None, :, 2]) - np.maximum(det_xyxy[:, None, 0], gt_xyxy[None, :, 0])
    ih = np.minimum(det_xyxy[:, None, 3], gt_xyxy[None, :, 3]) - np.maximum(det_xyxy[:, None, 1], gt_xyxy[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area = box_area(det_xyxy)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(area[:, None] > 0, inter / (area[:, None] + 1e-12), 0.0)


def match_image(dets: np.ndarray, gt_xywh: np.ndarray, gt_ignore: np.ndarray, t: float,
                area_rng: tuple[float, float], use_iod_for_ignore: bool = True):
    """One image, one IoU threshold, one size range. ``dets`` ``(D, 5)`` already sorted by
    score. Returns ``(matched bool (D,), det_ignored bool (D,), n_counted_gt)``."""
    lo, hi = area_rng
    g_area = gt_xywh[:, 2] * gt_xywh[:, 3]
    g_ig = gt_ignore | (g_area < lo) | (g_area > hi)
    order = np.argsort(g_ig, kind="stable")  # non-ignored first
    g = gt_xywh[order]
    g_ig = g_ig[order]
    D, G = len(dets), len(g)
    matched = np.zeros(D, bool)
    d_ig = np.zeros(D, bool)
    if D and G:
        d_xyxy = box_convert(np.asarray(dets, np.float64)[:, :4], "xywh", "xyxy")
        g_xyxy = box_convert(np.asarray(g, np.float64).reshape(-1, 4), "xywh", "xyxy")
        ious = box_iou(d_xyxy, g_xyxy)
        g_taken = np.zeros(G, bool)
        iods = _iod(d_xyxy, g_xyxy[g_ig]) if use_iod_for_ignore and g_ig.any() else None
        ig_idx = np.flatnonzero(g_ig)
        for d in range(D):
            best, m = min(t, 1 - 1e-10), -1
            for j in range(G):
                if g_taken[j]:
                    continue
                if m > -1 and not g_ig[m] and g_ig[j]:
                    break
                if ious[d, j] < best:
                    continue
                best, m = ious[d, j], j
            if m == -1 and iods is not None:
                k = int(np.argmax(iods[d]))
                if iods[d, k] >= best:
                    m = ig_idx[k]
                    d_ig[d] = True
                    matched[d] = True
                    g_taken[m] = True
                continue
            if m == -1:
                continue
            matched[d] = True
            d_ig[d] = g_ig[m]
            g_taken[m] = True
    if D:
        d_area = dets[:, 2] * dets[:, 3]
        d_ig |= ~matched & ((d_area < lo) | (d_area > hi))
    return matched, d_ig, int((~g_ig).sum())


@dataclass
class TinyResult:
    ap: dict[tuple[str, float], float]  # (range, iou) -> AP (NaN: no counted object)
    recall: dict[tuple[str, float], float]
    n_objects: dict[str, int]

    def table(self):
        """AP as a DataFrame: rows size ranges, columns ``AP@IoU``."""
        import pandas as pd  # heavy import, only for the table

        ranges = list(dict.fromkeys(r for r, _ in self.ap))
        ious = sorted({t for _, t in self.ap})
        return pd.DataFrame({f"AP@{t:g}": [self.ap[(r, t)] for r in ranges] for t in ious},
                            index=pd.Index(ranges, name="range"))


def evaluate(
    predictions: Mapping[str, np.ndarray],
    gt: TinyGT,
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
    ranges: Mapping[str, tuple[float, float]] = SIZE_RANGES,
    max_dets: int = 200,
    use_iod_for_ignore: bool = True,
) -> TinyResult:
    """AP per size range and IoU threshold. ``predictions``: ``key -> (N, 5)`` x y w h score
    (keys as in ``gt``; images without predictions have no detections)."""
    unknown = sorted(set(predictions) - set(gt.boxes))
    if unknown:
        raise KeyError(f"predictions for images not in the ground truth: {unknown[:5]}")
    dets = {}
    for k in gt.images:
        d = np.asarray(predictions.get(k, np.zeros((0, 5))), dtype=np.float64).reshape(-1, 5)
        if not np.isfinite(d).all():
            raise ValueError(f"predictions[{k!r}]: expected finite numbers (found NaN/inf)")
        dets[k] = d[np.argsort(-d[:, 4], kind="mergesort")][:max_dets]
    ap, rec, n_obj = {}, {}, {}
    for name, (lo, hi) in ranges.items():
        area_rng = (lo * lo, hi * hi)
        for t in iou_thresholds:
            scores, tp, ig, npig = [], [], [], 0
            for k in gt.images:
                m, dig, n = match_image(dets[k], gt.boxes[k], gt.ignore[k], t, area_rng,
                                        use_iod_for_ignore)
                npig += n
                scores.append(dets[k][:, 4])
                tp.append(m)
                ig.append(dig)
            n_obj[name] = npig
            s = np.concatenate(scores)
            order = np.argsort(-s, kind="mergesort")
            m = np.concatenate(tp)[order]
            i = np.concatenate(ig)[order]
            tps = np.cumsum(m & ~i)
            fps = np.cumsum(~m & ~i)
            if npig == 0:
                ap[(name, t)], rec[(name, t)] = float("nan"), float("nan")
                continue
            r = tps / npig
            p = tps / (tps + fps + np.spacing(1))
            ap[(name, t)] = coco_interp_ap(r, p)
            rec[(name, t)] = float(r[-1]) if r.size else 0.0
    return TinyResult(ap=ap, recall=rec, n_objects=n_obj)


def jittered_detections(gt: TinyGT, recall: float = 0.8, jitter: float = 0.02, per_image_fp: int = 5,
                        seed: int = 0) -> dict[str, np.ndarray]:
    """Made-up detections for demonstrations: each non-ignored box found with probability
    ``recall`` (jittered by ``jitter`` x its size, relatively more for small boxes since the
    noise has a 1-px floor), plus random false positives; hits score higher on average."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, b in gt.boxes.items():
        g = b[~gt.ignore[k]]
        g = g[rng.random(len(g)) < recall]
        sd = np.maximum(jitter * np.repeat(g[:, 2:], 2, axis=1), 1.0)
        hit = g + rng.normal(0, 1, g.shape) * sd
        hit[:, 2:] = np.abs(hit[:, 2:]) + 1
        n = int(rng.integers(0, 2 * per_image_fp + 1))
        span = b[:, :2].max(axis=0) + 50 if len(b) else np.array([500.0, 500.0])
        fp = np.hstack([rng.uniform(0, 1, (n, 2)) * span, rng.uniform(3, 40, (n, 2))])
        s = np.concatenate([rng.beta(5, 2, len(hit)), rng.beta(2, 5, n)])
        out[k] = np.hstack([np.vstack([hit, fp]), s[:, None]])
    return out
