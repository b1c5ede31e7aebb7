"""The WIDER protocol's pitfalls, as chapter 06 shows them: AP as a widely copied port computes
it, and the made-up detections the chapter, the tests and the benchmark show the protocol on.

* :func:`evaluate_file_order` -- AP by a port that **trusts the line order** of the submission
  files instead of sorting by score (right only for files already sorted): the protocol's
  matching and normalisation (:mod:`tinylib.eval.widerface`), the port's counting;
* :func:`jittered_predictions` -- made-up detections: ground-truth faces found with some
  probability, their boxes jittered, plus random false positives.

The official protocol itself is :func:`tinylib.eval.widerface.evaluate`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .pr import voc_ap, wider_thresholds
from .widerface import SETTINGS, EvalGT, _key_from_name, _validated, match_image, normalize_scores

__all__ = ["evaluate_file_order", "jittered_predictions"]


def evaluate_file_order(
    predictions: Mapping[str, np.ndarray],
    gt: EvalGT,
    settings: Sequence[str] = SETTINGS,
    subset: Iterable[str] | None = None,
    plus_one: bool = True,
    thresh_num: int = 1000,
) -> dict[str, float]:
    """AP as computed by a port that **trusts the line order** of the files (the widely
    copied Python port does not sort): at threshold ``t`` it takes the *last line* whose
    score is ``>= t`` and counts every line before it. Correct only for files already
    sorted by score; kept (vectorised) to show the pitfall in notebook 06."""
    keys = list(gt.images) if subset is None else [_key_from_name(k) for k in subset]
    preds = _validated(predictions)
    allp = [preds[k][:, 4] for k in keys if k in preds and len(preds[k])]
    norm_all = normalize_scores(np.concatenate(allp)) if allp else np.zeros(0)
    thresholds = wider_thresholds(thresh_num)
    per_image, pos = [], 0
    for k in keys:  # normalise with the global min-max, keep file order
        p = preds.get(k)
        if p is None or not len(p):
            continue
        per_image.append((k, p, norm_all[pos : pos + len(p)]))
        pos += len(p)
    out = {}
    for s in settings:
        props = np.zeros(thresh_num)
        recs = np.zeros(thresh_num)
        count = sum(len(gt.keep[s].get(k, ())) for k in keys)
        for k, p, sc in per_image:
            g = np.asarray(gt.boxes[k], dtype=np.float64).reshape(-1, 4)
            if not len(g):
                continue
            hit = match_image(p, g, plus_one=plus_one)
            kept = np.zeros(len(g), dtype=bool)
            kept[np.asarray(gt.keep[s].get(k, ()), dtype=np.int64)] = True
            hk = (hit >= 0) & kept[np.maximum(hit, 0)]
            ignored = (hit >= 0) & ~hk
            cum_prop = np.cumsum(~ignored)
            first = np.zeros(len(p), dtype=bool)  # first line (file order) hitting each face
            if hk.any():
                _, idx = np.unique(hit[hk], return_index=True)
                first[np.flatnonzero(hk)[idx]] = True
            cum_rec = np.cumsum(first)
            suffix_max = np.maximum.accumulate(np.nan_to_num(sc, nan=-np.inf)[::-1])[::-1]
            n_ge = suffix_max.size - np.searchsorted(suffix_max[::-1], thresholds, side="left")
            ok = n_ge > 0
            props[ok] += cum_prop[n_ge[ok] - 1]
            recs[ok] += cum_rec[n_ge[ok] - 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[s] = voc_ap(recs / count if count else np.zeros(thresh_num), recs / props)
    return out


def jittered_predictions(gt: EvalGT, per_image_fp: int = 25, recall: float = 0.8,
                         jitter: float = 0.08, seed: int = 0) -> dict[str, np.ndarray]:
    """Made-up detections for demonstrations and benchmarks: each face found with
    probability ``recall``, its box jittered by ``jitter`` x its size, plus about
    ``per_image_fp`` random false positives per image; true hits score higher on average
    (Beta(5, 2) vs Beta(2, 5)). Rows come face hits first, then false positives (not
    sorted by score)."""
    rng = np.random.default_rng(seed)
    out = {}
    for key in gt.images:
        g = np.asarray(gt.boxes[key], dtype=np.float64).reshape(-1, 4)
        g = g[(g[:, 2] > 0) & (g[:, 3] > 0)]
        hit = g[rng.random(len(g)) < recall]
        hit = hit + rng.normal(0, jitter, hit.shape) * np.repeat(hit[:, 2:], 2, axis=1)
        hit[:, 2:] = np.abs(hit[:, 2:])
        k = int(rng.integers(per_image_fp // 2, per_image_fp * 3 // 2 + 1))
        fp = np.hstack([rng.uniform(0, 1000, (k, 2)), rng.uniform(4, 120, (k, 2))])
        boxes = np.vstack([hit, fp]).round(1)
        scores = np.concatenate([rng.beta(5, 2, len(hit)), rng.beta(2, 5, k)])
        out[key] = np.hstack([boxes, scores[:, None]])
    return out
