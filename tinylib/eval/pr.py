"""Precision/recall helpers shared by the evaluation modules.

* :func:`voc_ap` — the PASCAL VOC 2010+ area under the interpolated precision/recall curve
  (the ``VOCap`` function the WIDER FACE toolbox calls on its 1,000-point curves).
* :func:`count_at_least` — how many values are ``>= t`` for many thresholds at once
  (``searchsorted`` on a sorted copy: the vectorised replacement of a loop over thresholds).
* :func:`wider_thresholds` — the toolbox's thresholds ``1 - k / thresh_num``, ``k = 1..N``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["voc_ap", "count_at_least", "wider_thresholds", "coco_interp_ap"]


def wider_thresholds(thresh_num: int = 1000) -> np.ndarray:
    """``1 - k / thresh_num`` for ``k = 1 .. thresh_num`` (descending, last one is 0), computed
    exactly as the MATLAB toolbox does (double precision, same expression)."""
    k = np.arange(1, thresh_num + 1, dtype=np.float64)
    return 1.0 - k / float(thresh_num)


def count_at_least(values, thresholds) -> np.ndarray:
    """For each threshold ``t``, the number of ``values >= t`` (NaN values never count)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = np.sort(v[~np.isnan(v)])
    t = np.asarray(thresholds, dtype=np.float64)
    return (v.size - np.searchsorted(v, t, side="left")).astype(np.int64)


def voc_ap(recall, precision) -> float:
    """PASCAL VOC (2010+) average precision: ``mrec = [0, rec, 1]``, ``mpre = [0, prec, 0]``,
    precision made monotone from the right, summed over the points where recall changes.

    NaN precisions (thresholds with no proposal: 0/0) are skipped the way MATLAB's ``max``
    skips them (``np.fmax``), so curves straight from the toolbox give the toolbox's AP."""
    rec = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64).ravel(), [1.0]])
    pre = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64).ravel(), [0.0]])
    if rec.shape != pre.shape:
        raise ValueError(f"recall and precision differ in length: {rec.size - 2} vs {pre.size - 2}")
    pre = np.fmax.accumulate(pre[::-1])[::-1]
    idx = np.flatnonzero(rec[1:] != rec[:-1]) + 1
    return float(np.nansum((rec[idx] - rec[idx - 1]) * pre[idx]))


def coco_interp_ap(recall, precision, rec_points: int = 101) -> float:
    """COCO-style AP: precision made monotone, sampled at ``rec_points`` recall values
    (``0, 0.01, ..., 1``) with the first curve point at recall >= r (0 beyond the curve),
    averaged. ``recall``/``precision`` are per detection in descending score order."""
    rec = np.asarray(recall, dtype=np.float64).ravel()
    pre = np.asarray(precision, dtype=np.float64).ravel()
    if rec.size == 0:
        return 0.0
    pre = np.maximum.accumulate(pre[::-1])[::-1]
    points = np.linspace(0.0, 1.0, rec_points)
    idx = np.searchsorted(rec, points, side="left")
    q = np.where(idx < rec.size, pre[np.minimum(idx, rec.size - 1)], 0.0)
    return float(q.mean())
