"""Object-scale statistics: ImageNet categories at 224 px (Fig. 6 of *Finding Tiny Faces*),
WIDER FACE face sizes (Fig. 9's grey curve, Table 1 of the BH paper) and COCO-style files
(TinyPerson).

ImageNet "normalised to 224x224" is ambiguous, so every plausible reading is offered:

``normalisation``
    * ``"stretch"``  -- the image is resized to 224 x 224 (aspect ratio not kept);
    * ``"longer"``   -- the longer side becomes 224 (the whole image fits, aspect kept);
    * ``"shorter"``  -- the shorter side becomes 224 (the usual resize before a 224 crop).
``measure``
    * ``"sqrt_area"`` -- ``sqrt(w * h)``; ``"height"`` -- ``h``; ``"max_side"`` -- ``max(w, h)``.

Widths are ``x2 - x1`` (tinylib's convention; the XML's inclusive pixel indices would add 1,
a <1 px effect at 224).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

__all__ = [
    "NORMALISATIONS",
    "MEASURES",
    "normalised_sizes",
    "category_mean_sizes",
    "share_in_range",
    "imagenet_convention_table",
    "abs_size_stats",
    "wider_valid_faces",
    "height_histogram",
    "height_figure",
    "REFERENCE_SIZES",
    "coco_abs_sizes",
]

NORMALISATIONS = ("stretch", "longer", "shorter")
MEASURES = ("sqrt_area", "height", "max_side")


def normalised_sizes(df: pd.DataFrame, normalisation: str = "stretch",
                     measure: str = "sqrt_area", side: float = 224.0) -> np.ndarray:
    """Size of each box (rows with ``width, height, x1, y1, x2, y2``) once its image is
    normalised to ``side`` px by ``normalisation``, measured by ``measure``."""
    missing = {"width", "height", "x1", "y1", "x2", "y2"} - set(df.columns)
    if missing:
        raise KeyError(f"box table lacks columns {sorted(missing)}")
    W = df["width"].to_numpy(float)
    H = df["height"].to_numpy(float)
    bw = (df["x2"] - df["x1"]).to_numpy(float).clip(0)
    bh = (df["y2"] - df["y1"]).to_numpy(float).clip(0)
    if normalisation == "stretch":
        sx, sy = side / W, side / H
    elif normalisation == "longer":
        sx = sy = side / np.maximum(W, H)
    elif normalisation == "shorter":
        sx = sy = side / np.minimum(W, H)
    else:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    w, h = bw * sx, bh * sy
    if measure == "sqrt_area":
        return np.sqrt(w * h)
    if measure == "height":
        return h
    if measure == "max_side":
        return np.maximum(w, h)
    raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")


def category_mean_sizes(df: pd.DataFrame, normalisation: str = "stretch",
                        measure: str = "sqrt_area", by: str = "class_index") -> pd.Series:
    """Average normalised object size per category (one value per ``by`` group)."""
    sizes = normalised_sizes(df, normalisation, measure)
    return pd.Series(sizes, index=df[by].to_numpy()).groupby(level=0).mean()


def share_in_range(values, lo: float = 40.0, hi: float = 140.0) -> float:
    """Fraction of ``values`` with ``lo <= v <= hi``."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise ValueError("share_in_range needs at least one value")
    return float(((v >= lo) & (v <= hi)).mean())


def imagenet_convention_table(df: pd.DataFrame, lo: float = 40.0, hi: float = 140.0) -> pd.DataFrame:
    """For every normalisation x measure: share of **categories** whose average size is in
    ``[lo, hi]`` and share of **boxes** in that range, plus the median category size."""
    rows = []
    for norm in NORMALISATIONS:
        for meas in MEASURES:
            cat = category_mean_sizes(df, norm, meas)
            rows.append(dict(normalisation=norm, measure=meas,
                             share_categories=share_in_range(cat, lo, hi),
                             share_boxes=share_in_range(normalised_sizes(df, norm, meas), lo, hi),
                             median_category_size=float(cat.median())))
    return pd.DataFrame(rows)


def wider_valid_faces(faces: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Faces with positive width and height (from a ``load_faces`` table) and the number of
    degenerate lines dropped."""
    bad = (faces["w"] <= 0) | (faces["h"] <= 0)
    if "degenerate" in faces.columns:
        bad = bad | faces["degenerate"].astype(bool)
    return faces[~bad], int(bad.sum())


def abs_size_stats(w, h, small: float = 20.0) -> dict:
    """BH paper Table 1: 'absolute size' ``sqrt(w h)`` mean and standard deviation, and the
    share of objects with absolute size ``<= small``."""
    s = np.sqrt(np.asarray(w, float) * np.asarray(h, float))
    if s.size == 0:
        raise ValueError("abs_size_stats needs at least one box")
    return dict(n=int(s.size), mean=float(s.mean()), std=float(s.std()),
                median=float(np.median(s)), share_le=float((s <= small).mean()), small=small)


def height_histogram(heights, bins=None) -> pd.DataFrame:
    """Counts of face heights in log-spaced bins (Fig. 9's grey curve is this shape):
    columns ``lo, hi, centre, count``."""
    h = np.asarray(heights, float)
    if bins is None:
        bins = np.geomspace(2, 1024, 28)
    counts, edges = np.histogram(h, bins=bins)
    return pd.DataFrame(dict(lo=edges[:-1], hi=edges[1:], centre=np.sqrt(edges[:-1] * edges[1:]),
                             count=counts))


#: The reference sizes (px) the size figures mark, and what each is.
REFERENCE_SIZES = {
    20: "20 px: BH Table 1's small-object threshold (share of sqrt(wh) <= 20 px)",
    (40, 140): "40-140 px: average object size of most ImageNet categories at 224 px (Fig. 6)",
}


def height_figure(hist: pd.DataFrame, *, title: str = "", ax=None):
    """Fig. 9's grey curve: the :func:`height_histogram` ``hist`` as a step line on a log
    axis, with the reference sizes of :data:`REFERENCE_SIZES` marked and named -- a dashed
    red line at 20 px, the 40-140 px ImageNet range shaded between two orange lines -- in
    the legend (below the axes, off the curve) and by their value on the line. Returns the axes."""
    import matplotlib.pyplot as plt  # matplotlib only when drawing (heavy import)

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 3.9), layout="constrained")
    ax.step(hist["centre"], hist["count"], where="mid", color="grey", label="faces per bin")
    ax.set(xscale="log", xlabel="face height (px, log scale)", ylabel="faces per bin", title=title)
    styles = {20: dict(color="tab:red", ls="--"), (40, 140): dict(color="tab:orange", ls=":")}
    for ref, label in REFERENCE_SIZES.items():
        xs = ref if isinstance(ref, tuple) else (ref,)
        for i, x in enumerate(xs):
            ax.axvline(x, lw=1.3, label=label if i == 0 else "_nolegend_", **styles[ref])
            ax.annotate(f"{x} px", (x, 1), xycoords=("data", "axes fraction"), xytext=(2, -2),
                        textcoords="offset points", ha="left", va="top", fontsize=7,
                        color=styles[ref]["color"])
        if len(xs) == 2:
            ax.axvspan(*xs, color=styles[ref]["color"], alpha=0.12)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.2), frameon=False)  # off the curve
    return ax


def coco_abs_sizes(path, include_ignored: bool = False) -> np.ndarray:
    """``sqrt(w h)`` of the annotations of a COCO-style json (TinyPerson). Annotations flagged
    ``ignore`` or ``iscrowd`` (TinyPerson's ignore regions) and degenerate boxes are left
    out unless ``include_ignored``."""
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if "annotations" not in data:
        raise ValueError(f"{path}: not a COCO json (no 'annotations' key)")
    out = []
    for i, ann in enumerate(data["annotations"]):
        bbox = ann.get("bbox")
        if bbox is None or len(bbox) != 4:
            raise ValueError(f"{path}: annotation {i} has no 4-number 'bbox'")
        if not include_ignored and (ann.get("ignore") or ann.get("iscrowd")):
            continue
        w, h = float(bbox[2]), float(bbox[3])
        if w > 0 and h > 0:
            out.append(np.sqrt(w * h))
    return np.asarray(out)
