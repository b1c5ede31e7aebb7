"""K-medoids of box shapes with the Jaccard distance of Eq. 1 (*Finding Tiny Faces*).

A box shape is ``(h, w)``; two shapes are compared as boxes sharing a corner:
``d = 1 - J`` with ``J = min(h)min(w) / (h1 w1 + h2 w2 - min(h)min(w))``
(:func:`tinylib.boxes.shape_jaccard`).

Why it is fast
--------------
WIDER FACE train has ~159k faces but only ~11k distinct integer ``(h, w)`` shapes, so the
clustering runs on the **unique shapes weighted by their counts** -- the objective (the
count-weighted sum of distances to the nearest medoid) is exactly the one over all faces.
No ``N x N`` matrix is ever stored: distances are computed in blocks.

Algorithm (:func:`kmedoids_shapes`), per restart:

1. *k-medoids++ seeding*: each next medoid drawn with probability ∝ count x distance to the
   nearest medoid already chosen;
2. *alternate* (Voronoi iteration): assign every shape to its nearest medoid, move each
   medoid to the member minimising the within-cluster weighted distance; repeat;
3. *PAM swap* refinement in the FasterPAM manner: for a block of candidate shapes the loss
   change of swapping each candidate with each medoid is computed at once from the nearest
   and second-nearest distances; the best improving swap of the block is applied (eager),
   until a full pass over all shapes finds no improving swap.

Steps 1-2 run ``n_restarts`` times; step 3 refines the best restart (at most ``max_passes``
passes; it stops early when a whole pass finds no improving swap).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from tqdm.auto import tqdm

from ..boxes import shape_jaccard

log = logging.getLogger(__name__)

__all__ = [
    "jaccard_distance",
    "unique_shapes",
    "KMedoidsResult",
    "kmedoids_shapes",
    "objective_vs_k",
    "match_templates",
    "resolution_for_height",
    "apply_resolution_rule",
    "count_within",
    "hr_template_types",
]


def jaccard_distance(a_hw, b_hw) -> np.ndarray:
    """Pairwise Eq. 1 distance ``1 - J`` between ``(h, w)`` shapes, shape ``(len(a), len(b))``."""
    return 1.0 - shape_jaccard(a_hw, b_hw)


def _as_shapes(shapes, name="shapes") -> np.ndarray:
    arr = np.asarray(shapes, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must be an (N, 2) array of (h, w), got shape {arr.shape}")
    if len(arr) and not (np.isfinite(arr).all() and (arr > 0).all()):
        bad = int((~(np.isfinite(arr).all(1) & (arr > 0).all(1))).sum())
        raise ValueError(f"{name}: {bad} shapes are not positive finite (h, w); drop degenerate "
                         "boxes first")
    return arr


def unique_shapes(shapes, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``(h, w)`` rows and their total weight (count when ``weights`` is None)."""
    arr = _as_shapes(shapes)
    uniq, inverse = np.unique(arr, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    w = np.ones(len(arr)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(arr),):
        raise ValueError(f"weights must have shape ({len(arr)},), got {w.shape}")
    return uniq, np.bincount(inverse, weights=w, minlength=len(uniq))


@dataclass
class KMedoidsResult:
    """``medoids``: ``(K, 2)`` shapes ``(h, w)``, sorted by decreasing area; ``objective``:
    weighted **mean** distance to the nearest medoid; ``loss``: weighted sum."""

    medoids: np.ndarray
    objective: float
    loss: float
    n_swaps: int
    n_restarts: int
    restart_objectives: list

    def assign(self, shapes) -> np.ndarray:
        """Index of the nearest medoid of each shape."""
        return _nearest(_as_shapes(shapes), self.medoids)[0]

    def distances(self, shapes) -> np.ndarray:
        return _nearest(_as_shapes(shapes), self.medoids)[1]


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Fast Eq. 1 distance for positive shapes (no zero-area guard needed)."""
    ha, wa = a[:, 0:1], a[:, 1:2]
    hb, wb = b[None, :, 0], b[None, :, 1]
    inter = np.minimum(ha, hb)
    inter *= np.minimum(wa, wb)
    union = (ha * wa) + (hb * wb)
    union -= inter
    inter /= union
    return np.subtract(1.0, inter, out=inter)


def _nearest(points: np.ndarray, centers: np.ndarray, block: int = 65536):
    labels = np.empty(len(points), dtype=np.int64)
    d1 = np.empty(len(points))
    d2 = np.full(len(points), np.inf)
    for s in range(0, len(points), block):
        d = _dist(points[s:s + block], centers)
        if d.shape[1] >= 2:
            part = np.argpartition(d, 1, axis=1)[:, :2]
            dd = np.take_along_axis(d, part, axis=1)
            first = dd[:, 0] <= dd[:, 1]
            labels[s:s + block] = np.where(first, part[:, 0], part[:, 1])
            d1[s:s + block] = dd.min(1)
            d2[s:s + block] = dd.max(1)
        else:
            labels[s:s + block] = 0
            d1[s:s + block] = d[:, 0]
    return labels, d1, d2


def _seed(pts, w, k, rng) -> np.ndarray:
    idx = [int(rng.choice(len(pts), p=w / w.sum()))]
    dmin = _dist(pts, pts[idx])[:, 0]
    for _ in range(1, k):
        p = w * dmin
        if p.sum() <= 0:
            remaining = np.setdiff1d(np.arange(len(pts)), idx)
            idx.append(int(rng.choice(remaining)))
        else:
            idx.append(int(rng.choice(len(pts), p=p / p.sum())))
        dmin = np.minimum(dmin, _dist(pts, pts[idx[-1:]])[:, 0])
    return np.array(idx)


def _alternate(pts, w, med, max_iter=100, n_candidates=128):
    """Voronoi iteration. The medoid update of a cluster scores its ``n_candidates`` members
    closest to the cluster's weighted geometric-mean shape (plus the current medoid) against
    all members -- exact for small clusters, a cheap approximation for the big ones that
    the PAM swap phase then checks exhaustively."""
    logs = np.log(pts)
    for _ in range(max_iter):
        labels, _, _ = _nearest(pts, pts[med])
        new = med.copy()
        for c in range(len(med)):
            members = np.flatnonzero(labels == c)
            if len(members) == 0:
                continue
            cands = members
            if len(members) > n_candidates:
                wm = w[members]
                centre = np.exp((logs[members] * wm[:, None]).sum(0) / wm.sum())[None, :]
                near = np.argsort(_dist(centre, pts[members])[0], kind="stable")[:n_candidates]
                cands = np.union1d(members[near], [med[c]])
            cost = _dist(pts[cands], pts[members]) @ w[members]
            new[c] = cands[np.argmin(cost)]
        if np.array_equal(np.sort(new), np.sort(med)):
            return new
        med = new
    return med


def _nearest_capped(pts, medoids):
    """:func:`_nearest` with the second-nearest distance capped at 1, the largest Jaccard
    distance: with one medoid there is no second one (``inf``), and ``inf - inf`` in the
    swap gains would be NaN; with the cap, removing the only medoid sends its shapes to the
    candidate, which is what a swap with ``k = 1`` means."""
    labels, d1, d2 = _nearest(pts, medoids)
    return labels, d1, np.minimum(d2, 1.0)


def _swap(pts, w, med, block=256, max_passes=20):
    """FasterPAM-style swaps, blocks of candidates in order of log-height.

    A shape ``o`` can only change the loss of a swap with candidate ``x`` when
    ``d(o, x) < d2(o)``; since ``1 - d <= min(h)/max(h)`` (and the same for ``w``), only
    shapes with ``|log h_o - log h_x| < -log(1 - d2(o))`` (and for ``w``) are visited --
    an exact pruning that makes a pass cost a fraction of ``U^2``."""
    k, n = len(med), len(pts)
    logs = np.log(pts)
    order = np.lexsort((logs[:, 1], np.floor(logs[:, 0] / 0.15)))  # compact 2-D blocks
    blocks = [order[s:s + block] for s in range(0, n, block)]
    labels, d1, d2 = _nearest_capped(pts, pts[med])
    swaps, since_swap, b_id, passes = 0, 0, 0, 0
    n_rel: list[int] = []
    tol = 1e-12 * max(float(w.sum()), 1.0)
    while since_swap < len(blocks) and passes < max_passes:
        cand = blocks[b_id]
        lo, hi = logs[cand].min(0), logs[cand].max(0)
        reach = -np.log(np.clip(1.0 - d2, 1e-12, None))[:, None]
        rel = np.flatnonzero(((logs + reach > lo) & (logs - reach < hi)).all(1))
        n_rel.append(len(rel))
        removal = np.bincount(labels, weights=w * (d2 - d1), minlength=k)
        d = _dist(pts[cand], pts[rel])
        d1r, d2r, wr = d1[rel], d2[rel], w[rel]
        shared = np.minimum(d - d1r, 0.0) @ wr
        contrib = np.where(d < d1r, d1r - d2r, np.minimum(d - d2r, 0.0)) * wr
        onehot = np.zeros((len(rel), k))
        onehot[np.arange(len(rel)), labels[rel]] = 1.0
        delta = contrib @ onehot
        delta += removal[None, :] + shared[:, None]
        delta[np.isin(cand, med)] = np.inf
        bi, i = np.unravel_index(np.argmin(delta), delta.shape)
        if delta[bi, i] < -tol:
            med = med.copy()
            med[i] = cand[bi]
            labels, d1, d2 = _nearest_capped(pts, pts[med])
            swaps += 1
            since_swap = 0
        else:
            since_swap += 1
        b_id += 1
        if b_id == len(blocks):
            b_id, passes = 0, passes + 1
    log.debug("swap phase: %d swaps, %d passes, mean %.0f of %d shapes visited per block",
              swaps, passes, np.mean(n_rel) if n_rel else 0, n)
    return med, swaps


def kmedoids_shapes(shapes, k: int, *, weights=None, n_restarts: int = 4,
                    method: str = "pam", seed: int = 0, max_passes: int = 2,
                    progress: bool = False) -> KMedoidsResult:
    """K-medoids of ``(h, w)`` shapes under the Eq. 1 Jaccard distance.

    ``method``: ``"alternate"`` (best of ``n_restarts`` k-medoids++ seedings + Voronoi
    iteration) or ``"pam"`` (that, then at most ``max_passes`` passes of FasterPAM-style
    swaps over all shapes on the best restart; the default). Runs on unique shapes weighted by their counts
    (times ``weights`` if given); medoids are always actual shapes of the input."""
    uniq, wts = unique_shapes(shapes, weights)
    if not 1 <= k <= len(uniq):
        raise ValueError(f"k must be between 1 and the number of distinct shapes {len(uniq)}, "
                         f"got {k}")
    if method not in ("pam", "alternate"):
        raise ValueError(f"method must be 'pam' or 'alternate', got {method!r}")
    rng = np.random.default_rng(seed)
    best, objs = None, []
    for _ in tqdm(range(n_restarts), desc=f"k-medoids K={k}", disable=not progress):
        med = _alternate(uniq, wts, _seed(uniq, wts, k, rng))
        loss = float(wts @ _nearest(uniq, uniq[med])[1])
        objs.append(loss / wts.sum())
        if best is None or loss < best[1]:
            best = (med, loss)
    med, loss = best
    swaps = 0
    if method == "pam":
        med, swaps = _swap(uniq, wts, med, max_passes=max_passes)
        loss = float(wts @ _nearest(uniq, uniq[med])[1])
    medoids = uniq[med]
    order = np.argsort(-(medoids[:, 0] * medoids[:, 1]), kind="stable")
    return KMedoidsResult(medoids=medoids[order], objective=loss / wts.sum(), loss=loss,
                          n_swaps=swaps, n_restarts=n_restarts, restart_objectives=objs)


def objective_vs_k(shapes, ks, **kw) -> pd.DataFrame:
    """Objective (weighted mean Jaccard distance) for each K in ``ks``."""
    rows = []
    for k in ks:
        res = kmedoids_shapes(shapes, k, **kw)
        rows.append(dict(k=k, objective=res.objective))
    return pd.DataFrame(rows)


def match_templates(ours, paper) -> pd.DataFrame:
    """One-to-one matching (Hungarian, minimum total Jaccard distance) of two template sets
    of ``(h, w)`` shapes. Returns rows ``ours_idx, paper_idx, ours_h, ours_w, paper_h,
    paper_w, distance`` ordered by the paper's index; the mean of ``distance`` is the
    headline number."""
    a, b = _as_shapes(ours, "ours"), _as_shapes(paper, "paper")
    d = jaccard_distance(a, b)
    r, c = linear_sum_assignment(d)
    df = pd.DataFrame(dict(ours_idx=r, paper_idx=c, ours_h=a[r, 0], ours_w=a[r, 1],
                           paper_h=b[c, 0], paper_w=b[c, 1], distance=d[r, c]))
    return df.sort_values("paper_idx").reset_index(drop=True)


def resolution_for_height(h, small: float = 40.0, large: float = 140.0) -> np.ndarray:
    """The paper's rule (Fig. 9): faces shorter than ``small`` px get templates built at 2X,
    taller than ``large`` px at 0.5X, the rest at 1X."""
    h = np.asarray(h, dtype=np.float64)
    return np.where(h < small, 2.0, np.where(h > large, 0.5, 1.0))


def apply_resolution_rule(templates, small: float = 40.0, large: float = 140.0) -> pd.DataFrame:
    """Templates ``(h, w)`` at original resolution -> ``h, w, scale, h_built, w_built``
    (the template size in the image it runs on, ``size x scale``)."""
    t = _as_shapes(templates, "templates")
    s = resolution_for_height(t[:, 0], small, large)
    return pd.DataFrame(dict(h=t[:, 0], w=t[:, 1], scale=s, h_built=t[:, 0] * s,
                             w_built=t[:, 1] * s))


def count_within(shapes, templates, max_distance: float = 0.5, weights=None) -> np.ndarray:
    """For each template, the number of shapes within ``max_distance`` Jaccard distance
    (Fig. 9's grey curve: 'number of data within 0.5 Jaccard distance')."""
    uniq, wts = unique_shapes(shapes, weights)
    t = _as_shapes(templates, "templates")
    return (jaccard_distance(t, uniq) <= max_distance) @ wts


def hr_template_types(scaled: pd.DataFrame, small: float = 40.0, large: float = 140.0,
                      tiny: float = 20.0) -> pd.Series:
    """Label the released HR templates (``load_templates(scaled=True)``) as in Fig. 10.

    * ``"A"``: built at 1X for 40-140 px tall faces (run on the whole coarse pyramid, 2X
      interpolation included);
    * ``"B"``: built at 2X for faces shorter than ``tiny`` px (run on the 2X image only);
    * ``"pruned"``: the rest (0.5X templates, 2X templates for 20-40 px faces), redundant
      once A runs on the pyramid.

    The face height a template finds is ``(h - 1) / scale`` -- the ``x2 - x1`` height; with the
    file's ``+1`` height template 19 would be 20.09 px and miss the ``< 20`` cut by 0.09 px."""
    face_h = (scaled["h"] - 1.0) / scaled["scale"]
    a = (scaled["scale"] == 1) & (face_h >= small - 1) & (face_h <= large)
    b = (scaled["scale"] == 2) & (face_h < tiny)
    return pd.Series(np.where(a, "A", np.where(b, "B", "pruned")), index=scaled.index,
                     name="type")
