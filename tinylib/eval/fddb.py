"""FDDB evaluation (Jain & Learned-Miller's ``evaluate``) and the box-to-ellipse regressor.

The official program, reproduced here:

* **Overlap** of an annotated ellipse and a detected rectangle = area of the intersection of
  the two *pixel regions* divided by the area of their union (the program draws both filled
  into image-sized masks; the rectangle ``x y w h`` covers pixels ``x .. x+w`` inclusive).
  We rasterise on the same integer pixel grid with NumPy (an ellipse pixel is one whose
  centre lies inside the ellipse; OpenCV's polygonal ellipse differs by a pixel here and
  there). Without the images the canvas is clipped at 0 only, unless ``image_sizes`` is given.
* **One-to-one matching**, per image and per score threshold: the Hungarian algorithm
  maximising the total overlap between annotations and the detections with score ``>=``
  threshold; pairs with overlap > 0 are matched.
* **Scores** at each threshold, summed over images: discrete TP = matched pairs with overlap
  > 0.5; continuous TP = sum of the matched overlaps; FP = detections kept - discrete TP (the
  same FP count on both curves). The ROC is TPR (TP / number of faces) against the number of
  false positives, one point per distinct detection score.

The ellipse regressor of *Finding Tiny Faces* (supplement, Eq. 2-7): for a detected box with
centre ``(x_c, y_c)`` and size ``w x h``, targets ``t_x = (x_c* - x_c)/w``,
``t_y = (y_c* - y_c)/h``, ``t_a = log(r_a* / (h/2))``, ``t_b = log(r_b* / (w/2))``,
``t_θ = cot(θ*)``, learned by linear least squares offline; the paper fits it with 10-fold
cross validation (fit on 9 folds, apply to the held-out one): :func:`cross_validated_ellipses`.

The ROC drawing is :func:`tinylib.viz.plot_roc`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..boxes import box_convert, ellipse_to_box

log = logging.getLogger(__name__)

__all__ = ["FDDBResult", "overlap_matrix", "match", "evaluate", "evaluate_file", "read_detections",
           "EllipseRegressor", "training_pairs", "cross_validated_ellipses", "ellipses_from_faces",
           "detector_like_boxes"]


# ----------------------------------------------------------------------------- regions


def _ellipse_bounds(e):
    a, b, th, cx, cy = e
    hx = np.sqrt((a * np.cos(th)) ** 2 + (b * np.sin(th)) ** 2)
    hy = np.sqrt((a * np.sin(th)) ** 2 + (b * np.cos(th)) ** 2)
    return int(np.floor(cx - hx)), int(np.floor(cy - hy)), int(np.ceil(cx + hx)), int(np.ceil(cy + hy))


def _rect_bounds(r):
    x, y, w, h = (int(round(v)) for v in r[:4])
    return x, y, x + w, y + h  # inclusive pixel range


def _clip(bounds, size):
    x0, y0, x1, y1 = bounds
    x0, y0 = max(x0, 0), max(y0, 0)
    if size is not None:
        x1, y1 = min(x1, size[0] - 1), min(y1, size[1] - 1)
    return x0, y0, x1, y1


def _mask(kind, region, window):
    x0, y0, x1, y1 = window
    if x1 < x0 or y1 < y0:
        return np.zeros((0, 0), bool)
    ys, xs = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
    if kind == "rect":
        rx0, ry0, rx1, ry1 = _rect_bounds(region)
        return (xs >= rx0) & (xs <= rx1) & (ys >= ry0) & (ys <= ry1)
    a, b, th, cx, cy = region
    dx, dy = xs - cx, ys - cy
    u = dx * np.cos(th) + dy * np.sin(th)
    v = -dx * np.sin(th) + dy * np.cos(th)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def overlap_matrix(ellipses: np.ndarray, rects: np.ndarray, image_size=None,
                   det_kind: str = "rect") -> np.ndarray:
    """``(n_ellipses, n_detections)`` pixel-region IoU (see module doc). ``ellipses`` rows are
    ``major minor angle cx cy``; detections rows ``x y w h [score]`` (``det_kind="rect"``) or
    ``major minor angle cx cy [score]`` (``det_kind="ellipse"``, e.g. regressed ellipses)."""
    if det_kind not in ("rect", "ellipse"):
        raise ValueError(f"det_kind must be 'rect' or 'ellipse', got {det_kind!r}")
    kind = "rect" if det_kind == "rect" else "ell"
    E = np.asarray(ellipses, dtype=np.float64).reshape(-1, 5)
    R = np.asarray(rects, dtype=np.float64).reshape(len(rects), -1) if len(rects) else np.zeros((0, 4))
    if kind == "ell":
        R = R[:, :5]
    bounds = _rect_bounds if kind == "rect" else _ellipse_bounds
    eb = [_clip(_ellipse_bounds(e), image_size) for e in E]
    rb = [_clip(bounds(r), image_size) for r in R]
    ea = np.array([_mask("ell", e, w).sum() for e, w in zip(E, eb)], dtype=np.float64)
    ra = np.array([_mask(kind, r, w).sum() for r, w in zip(R, rb)], dtype=np.float64)
    out = np.zeros((len(E), len(R)))
    for i, (e, w1) in enumerate(zip(E, eb)):
        for j, (r, w2) in enumerate(zip(R, rb)):
            win = (max(w1[0], w2[0]), max(w1[1], w2[1]), min(w1[2], w2[2]), min(w1[3], w2[3]))
            if win[2] < win[0] or win[3] < win[1]:
                continue
            inter = float((_mask("ell", e, win) & _mask(kind, r, win)).sum())
            union = ea[i] + ra[j] - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def match(overlaps: np.ndarray) -> list[tuple[int, int, float]]:
    """Hungarian one-to-one matching maximising total overlap; pairs with overlap > 0."""
    from scipy.optimize import linear_sum_assignment  # heavy import, only for the matching

    if overlaps.size == 0 or not (overlaps > 0).any():
        return []
    rows, cols = linear_sum_assignment(overlaps, maximize=True)
    return [(int(i), int(j), float(overlaps[i, j])) for i, j in zip(rows, cols) if overlaps[i, j] > 0]


# ----------------------------------------------------------------------------- evaluation


@dataclass
class FDDBResult:
    """ROC points, one per distinct score threshold (descending)."""

    thresholds: np.ndarray
    fp: np.ndarray
    tp_discrete: np.ndarray
    tp_continuous: np.ndarray
    n_faces: int
    n_images: int
    n_detections: int

    @property
    def tpr_discrete(self) -> np.ndarray:
        return self.tp_discrete / max(self.n_faces, 1)

    @property
    def tpr_continuous(self) -> np.ndarray:
        return self.tp_continuous / max(self.n_faces, 1)

    def tpr_at(self, max_fp: float, kind: str = "discrete") -> float:
        """The best TPR reached with at most ``max_fp`` false positives (how FDDB numbers
        such as "TPR at 2,000 FP" are read off the curve)."""
        tpr = self.tpr_discrete if kind == "discrete" else self.tpr_continuous
        ok = self.fp <= max_fp
        return float(tpr[ok].max()) if ok.any() else 0.0

    def table(self, fps=(50, 100, 500, 1000, 2000)):
        import pandas as pd  # heavy import, only for the table

        return pd.DataFrame({"discrete": [self.tpr_at(f, "discrete") for f in fps],
                             "continuous": [self.tpr_at(f, "continuous") for f in fps]},
                            index=pd.Index(fps, name="false positives"))


def evaluate(
    detections: Mapping[str, np.ndarray],
    annotations: Mapping[str, np.ndarray],
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
    det_kind: str = "rect",
    progress: bool = False,
) -> FDDBResult:
    """FDDB discrete and continuous ROC. ``detections[image]`` ``(N, 5)`` ``x y w h score``
    (or ``(N, 6)`` ellipses + score with ``det_kind="ellipse"``); ``annotations[image]``
    ``(M, 5)`` ellipses. Images without detections count their faces."""
    width = 6 if det_kind == "ellipse" else 5
    unknown = sorted(set(detections) - set(annotations))
    if unknown:
        log.warning("%d detection image(s) not in the annotations (ignored), e.g. %s",
                    len(unknown), unknown[0])
    deltas_t, deltas_d, deltas_c, deltas_f = [], [], [], []
    n_faces = n_det = 0
    for img in tqdm(list(annotations), desc="FDDB", disable=not progress):
        E = np.asarray(annotations[img], dtype=np.float64).reshape(-1, 5)
        n_faces += len(E)
        D = np.asarray(detections.get(img, np.zeros((0, width))), dtype=np.float64).reshape(-1, width)
        if not np.isfinite(D).all():
            raise ValueError(f"detections[{img!r}]: expected finite numbers (found NaN/inf)")
        if not len(D):
            continue
        n_det += len(D)
        D = D[np.argsort(-D[:, -1], kind="stable")]
        size = image_sizes.get(img) if image_sizes else None
        ovl = overlap_matrix(E, D, size, det_kind=det_kind)
        prev = np.zeros(3)
        uniq = np.unique(D[:, -1])[::-1]
        for t in uniq:
            n_valid = int((D[:, -1] >= t).sum())
            pairs = match(ovl[:, :n_valid])
            disc = sum(1 for _, _, s in pairs if s > 0.5)
            cont = sum(s for _, _, s in pairs)
            cur = np.array([disc, cont, n_valid - disc], dtype=np.float64)
            deltas_t.append(t)
            deltas_d.append(cur[0] - prev[0])
            deltas_c.append(cur[1] - prev[1])
            deltas_f.append(cur[2] - prev[2])
            prev = cur
    t = np.asarray(deltas_t)
    order = np.argsort(-t, kind="stable")
    t = t[order]
    cd = np.cumsum(np.asarray(deltas_d)[order])
    cc = np.cumsum(np.asarray(deltas_c)[order])
    cf = np.cumsum(np.asarray(deltas_f)[order])
    last = np.r_[t[1:] != t[:-1], True] if t.size else np.zeros(0, bool)  # one point per threshold
    return FDDBResult(thresholds=t[last], fp=cf[last], tp_discrete=cd[last], tp_continuous=cc[last],
                      n_faces=n_faces, n_images=len(annotations), n_detections=n_det)


def read_detections(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """An FDDB detection file: blocks of ``image``, ``count``, ``count`` lines ``x y w h score``.
    Errors name the file and line."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    out: dict[str, np.ndarray] = {}
    i = 0
    while i < len(lines):
        name = lines[i].strip()
        if not name:
            i += 1
            continue
        if i + 1 >= len(lines) or not lines[i + 1].strip().isdigit():
            got = lines[i + 1] if i + 1 < len(lines) else "end of file"
            raise ValueError(f"{path}, line {i + 2}: expected the detection count of {name!r}, got {got!r}")
        n = int(lines[i + 1])
        rows = []
        for j in range(i + 2, i + 2 + n):
            if j >= len(lines):
                raise ValueError(f"{path}, line {j + 1}: expected {n} detection lines for {name!r}, file ends")
            parts = lines[j].split()
            try:
                vals = [float(v) for v in parts]
            except ValueError:
                vals = []
            if len(vals) != 5 or not np.isfinite(vals).all() or vals[2] < 0 or vals[3] < 0:
                raise ValueError(f"{path}, line {j + 1}: expected 'x y w h score' (finite, w, h >= 0), "
                                 f"got {lines[j]!r}")
            rows.append(vals)
        out[name] = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
        i += 2 + n
    return out


def ellipses_from_faces(faces) -> dict[str, np.ndarray]:
    """``{image: (M, 5) ellipses}`` from ``tinylib.data.fddb.load_faces()``'s table."""
    out = {im: np.zeros((0, 5)) for im in faces.attrs.get("images", faces["image"].unique())}
    for im, grp in faces.groupby("image", sort=False):
        out[im] = grp[["major", "minor", "angle", "cx", "cy"]].to_numpy(dtype=np.float64)
    return out


def evaluate_file(pred_file, folds_dir=None) -> FDDBResult:
    """Evaluate an FDDB detection file against the folds in the data root (or ``folds_dir``,
    a folder holding ``FDDB-fold-NN[-ellipseList].txt``)."""
    from ..data import fddb as data_fddb  # heavy (pandas): only when folds are read

    root = None
    if folds_dir is not None:
        d = Path(folds_dir)
        root = d.parent if d.name == "fddb" else d
        if not (Path(root) / "fddb").is_dir():
            raise FileNotFoundError(f"--folds {folds_dir}: expected a folder named fddb/ with the fold files")
    annotations = ellipses_from_faces(data_fddb.load_faces(root))
    dets = read_detections(pred_file)
    return evaluate({k: v for k, v in dets.items() if k in annotations}, annotations)


# ----------------------------------------------------------------------------- regressor


def _features(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = np.maximum(b[:, 2], 1e-6), np.maximum(b[:, 3], 1e-6)
    return np.stack([np.ones(len(b)), np.log(h / w), np.log(h)], axis=1)


class EllipseRegressor:
    """Linear least-squares map from a detected box ``x y w h`` to the targets of Eq. 2-7.

    Features: ``1, log(h/w), log(h)`` (the paper regresses from the network's features; a
    box alone carries its shape and scale). ``ridge`` regularises the solve."""

    def __init__(self, ridge: float = 1e-3):
        self.ridge = float(ridge)
        self.coef_: np.ndarray | None = None

    @staticmethod
    def targets(boxes: np.ndarray, ellipses: np.ndarray) -> np.ndarray:
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        e = np.asarray(ellipses, dtype=np.float64).reshape(-1, 5)
        xc, yc = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
        w, h = b[:, 2], b[:, 3]
        with np.errstate(divide="ignore"):
            cot = np.cos(e[:, 2]) / np.sin(e[:, 2])
        cot = np.clip(np.nan_to_num(cot, posinf=1e3, neginf=-1e3), -1e3, 1e3)
        return np.stack([(e[:, 3] - xc) / w, (e[:, 4] - yc) / h, np.log(e[:, 0] / (h / 2)),
                         np.log(e[:, 1] / (w / 2)), cot], axis=1)

    def fit(self, boxes, ellipses) -> EllipseRegressor:
        X = _features(boxes)
        Y = self.targets(boxes, ellipses)
        if len(X) < X.shape[1]:
            raise ValueError(f"need at least {X.shape[1]} box/ellipse pairs to fit, got {len(X)}")
        A = X.T @ X + self.ridge * np.eye(X.shape[1])
        self.coef_ = np.linalg.solve(A, X.T @ Y)
        return self

    def predict(self, boxes) -> np.ndarray:
        """Ellipses ``(N, 5)`` ``major minor angle cx cy`` for boxes ``x y w h``."""
        if self.coef_ is None:
            raise RuntimeError("EllipseRegressor.predict called before fit")
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        t = _features(b) @ self.coef_
        w, h = b[:, 2], b[:, 3]
        cx = b[:, 0] + w / 2 + t[:, 0] * w
        cy = b[:, 1] + h / 2 + t[:, 1] * h
        ra = np.exp(t[:, 2]) * h / 2
        rb = np.exp(t[:, 3]) * w / 2
        theta = np.arctan2(1.0, t[:, 4])  # cot(theta) = t, theta in (0, pi)
        return np.stack([ra, rb, theta, cx, cy], axis=1)


def training_pairs(detections: Mapping[str, np.ndarray], annotations: Mapping[str, np.ndarray],
                   min_overlap: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Matched ``(boxes (K, 4), ellipses (K, 5))`` for fitting: the Hungarian matches with
    overlap > ``min_overlap`` over all detections of each image."""
    boxes, ells = [], []
    for img, E in annotations.items():
        D = np.asarray(detections.get(img, np.zeros((0, 5))), dtype=np.float64).reshape(-1, 5)
        E = np.asarray(E, dtype=np.float64).reshape(-1, 5)
        if not len(D) or not len(E):
            continue
        for i, j, s in match(overlap_matrix(E, D)):
            if s > min_overlap:
                boxes.append(D[j, :4])
                ells.append(E[i])
    return np.asarray(boxes).reshape(-1, 4), np.asarray(ells).reshape(-1, 5)


def cross_validated_ellipses(detections: Mapping[str, np.ndarray], annotations: Mapping[str, np.ndarray],
                             fold_of: Mapping[str, int], folds: Sequence[int] | None = None,
                             ridge: float = 1e-3) -> dict[str, np.ndarray]:
    """The paper's protocol: for each fold, fit the regressor on the other folds' matched
    pairs and turn that fold's detections into ellipses. Returns ``{image: (N, 6)}`` rows
    ``major minor angle cx cy score``."""
    folds = sorted(set(fold_of.values())) if folds is None else list(folds)
    out = {}
    for f in folds:
        train = {k: v for k, v in annotations.items() if fold_of.get(k) != f}
        reg = EllipseRegressor(ridge).fit(*training_pairs(detections, train))
        for k in annotations:
            if fold_of.get(k) == f and k in detections and len(detections[k]):
                d = np.asarray(detections[k], dtype=np.float64).reshape(-1, 5)
                out[k] = np.hstack([reg.predict(d[:, :4]), d[:, 4:5]])
    return out


def overlap_ellipses(a: np.ndarray, b: np.ndarray) -> float:
    """Pixel IoU of two ellipses (to score regressed ellipses against annotations)."""
    wa, wb = _clip(_ellipse_bounds(a), None), _clip(_ellipse_bounds(b), None)
    win = (min(wa[0], wb[0]), min(wa[1], wb[1]), max(wa[2], wb[2]), max(wa[3], wb[3]))
    ma, mb = _mask("ell", a, win), _mask("ell", b, win)
    union = (ma | mb).sum()
    return float((ma & mb).sum() / union) if union else 0.0


def detector_like_boxes(annotations: Mapping[str, np.ndarray], seed: int = 0, scale: float = 0.8,
                        shift: float = 0.1, noise: float = 0.05) -> dict[str, np.ndarray]:
    """Stand-in detections when no FDDB images are at hand: the tight box of each ellipse,
    shrunk to ``scale`` of its height, moved down by ``shift`` x height (WIDER-style boxes
    run from the brows to the chin, not around the whole head), with relative noise, scores
    uniform. Used to exercise the regressor and the 10-fold protocol."""
    rng = np.random.default_rng(seed)
    out = {}
    for img, E in annotations.items():
        E = np.asarray(E, dtype=np.float64).reshape(-1, 5)
        if not len(E):
            continue
        cx, cy, w, h = box_convert(ellipse_to_box(*E.T), "xyxy", "cxcywh").T
        cy = cy + shift * h
        nh, nw = scale * h, w * (0.5 + 0.5 * scale)
        jit = 1 + noise * rng.normal(size=(len(E), 4))
        x = cx - nw / 2 + noise * nw * rng.normal(size=len(E))
        y = cy - nh / 2 + noise * nh * rng.normal(size=len(E))
        out[img] = np.stack([x, y, nw * jit[:, 2], nh * jit[:, 3], rng.uniform(0.5, 1, len(E))], axis=1)
    return out
