"""Detectors side by side on real WIDER FACE val images: the *WIDER val subset*.

The data root may hold only part of the 3,226 val images (the shared bundle has 374). This
module picks the images present (or an evenly spread sample of them), runs detectors on
them with on-disk caches, and evaluates every detector with the same official protocol
restricted to exactly those images (:func:`tinylib.eval.widerface.evaluate` with
``subset=``). Every number it produces is labelled with
:func:`~tinylib.eval.widerface.subset_label`, e.g. ``"WIDER val subset (374 images)"``.

* :func:`subset_images` -- ``{key: path}`` of the val images present (sampled with ``n``);
* :func:`hr_raw` -- the HR detector's pre-NMS candidates per image, cached by weights,
  pyramid settings and image content, so the ablations (A only, A+B, with/without the 2x
  level) are re-selections, not re-runs (:func:`hr_select`);
* :func:`peer_predictions` -- a peer (:mod:`tinylib.peers`) at one upsampling setting;
* :func:`compare` -- one row per detector/setting: easy, medium, hard AP, detections;
* :func:`best_per_detector` -- each detector's best setting by hard AP;
* :func:`recall_by_size` -- recall of faces in size bins at a score threshold.

The shipped measured tables (:mod:`tinylib.measured`: ``wider_subset_detectors``,
``hr_ablation``, ``hr_vote_sweep``, ``hr_recall_by_size``, made by
``tools/eval_wider_subset.py`` on the tuning and test halves of the subset) are shown and
recorded by :func:`halves_side_by_side`, :func:`detectors_table`, :func:`subset_claims`,
:func:`ablation_table`, :func:`ablation_claims`, :func:`recall_table`: the test half is the
headline, the tuning half (where every choice was made) beside it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .. import papers, peers
from ..config import dataset_dir
from ..eval import widerface as W
from ..eval.widerface import spread  # re-exported: compare's sample of the val images
from ..hr.cache import hr_raw, weights_id  # re-exported: the cache is the HR detector's
from ..hr.detect import RawDetections, to_wider

log = logging.getLogger(__name__)

__all__ = ["ABLATIONS", "ABLATION_KEYS", "PEER_SETTINGS", "PEER_PUBLISHED", "peer_label", "ablation_predictions",
           "weights_id", "all_peer_predictions",
           "subset_images", "hr_raw", "hr_select", "peer_predictions", "compare",
           "best_per_detector", "recall_by_size", "spread", "HALVES", "claim_key",
           "halves_side_by_side", "half_images", "detectors_table", "subset_claims", "ablation_table",
           "ablation_claims", "calibration_claims", "recall_table", "OPERATING_THRESHOLDS", "TARGET_PRECISION",
           "operating_table", "explorer_threshold"]


#: the HR ablations of Table 1 / Fig. 10 on real images, as :func:`hr_select` options
#: (candidates from ``Detector(routing="full")``); :data:`ABLATION_KEYS` names each row in the
#: scorecard (``<prefix>.ablation.<key>.hard``)
ABLATIONS = {
    "Full (all 25 templates, every level)": {"routing": "full"},
    "A+B (the paper's pruning)": {"routing": "ab"},
    "A+B, plain NMS (no box voting, as the paper)": {"routing": "ab", "vote_iou": None},
    "A only": {"routing": "ab", "use_b": False},
    "A+B without the 2x level": {"routing": "ab", "max_scale": 1.0},
    "A only without the 2x level": {"routing": "ab", "use_b": False, "max_scale": 1.0},
}
ABLATION_KEYS = {
    "Full (all 25 templates, every level)": "full",
    "A+B (the paper's pruning)": "a_plus_b",
    "A+B, plain NMS (no box voting, as the paper)": "a_plus_b_nms",
    "A only": "a_only",
    "A+B without the 2x level": "a_plus_b_no_2x",
    "A only without the 2x level": "a_only_no_2x",
}

#: the settings each peer runs at: at 1x and with an upsampled level (the best by hard AP
#: is reported). MTCNN's own pyramid starts at 12 / min_face_size: ``min_face_size=10`` runs
#: exactly the levels a 2x upsampling would add, without a second pass over 1x.
PEER_SETTINGS = {
    "yunet": [{"upsample": 1}, {"upsample": (1, 2)}],
    "retinaface": [{"upsample": 1}, {"upsample": (1, 2)}],
    "haar": [{"upsample": 1}, {"upsample": (1, 2)}],
    "mtcnn": [{"upsample": 1}, {"upsample": 1, "min_face_size": 10}],
    "dlib_hog": [{"upsample": 1, "adjust_threshold": -0.5},
                 {"upsample": 2, "adjust_threshold": -0.5}],
}

#: what each peer's authors report on the FULL WIDER val set (easy, medium, hard), and where
PEER_PUBLISHED = {
    **papers.PEERS,
    "haar": (None, "no WIDER FACE number published"),
    "dlib_hog": (None, "no WIDER FACE number published"),
}


def peer_label(name: str, opts: dict) -> str:
    """``"mtcnn @ 1x"``, ``"yunet @ 1x+2x"``, ``"mtcnn @ 1x (min face 10 px = a 2x level)"``."""
    up = opts.get("upsample", 1)
    up = "+".join(f"{u:g}x" for u in up) if isinstance(up, (tuple, list)) else f"{up:g}x"
    if "min_face_size" in opts:
        up += f" (min face {opts['min_face_size']} px = a 2x level)"
    return f"{name} @ {up}"


def ablation_predictions(raws: Mapping[str, RawDetections]) -> dict[str, dict[str, np.ndarray]]:
    """Every :data:`ABLATIONS` row's predictions from one set of cached candidates."""
    return {label: hr_select(raws, **opts) for label, opts in ABLATIONS.items()}




def subset_images(gt: W.EvalGT, root=None, n: int | None = None) -> dict[str, Path]:
    """``{"event/stem": path}`` of the val images of ``gt`` present under
    ``<root>/widerface/WIDER_val/images`` (``root``: the data root), in ground-truth order;
    ``n`` keeps an evenly spread sample of them."""
    base = dataset_dir("widerface", root) / "WIDER_val" / "images"
    present = [k for k in gt.images if (base / f"{k}.jpg").is_file()]
    if not present:
        raise FileNotFoundError(f"no WIDER val image of the ground truth is under {base}")
    return {k: base / f"{k}.jpg" for k in spread(present, n)}


# ----------------------------------------------------------------------------- HR detector
def hr_select(raws: Mapping[str, RawDetections], *, score_threshold: float = 0.05,
              nms_iou: float = 0.3, levels=None, use_a: bool = True, use_b: bool = True,
              routing: str = "ab", max_scale: float | None = None,
              max_dets: int = 2000, vote_iou: float | None = 0.4,
              calibration=None) -> dict[str, np.ndarray]:
    """WIDER rows ``(N, 5)`` from cached candidates: :meth:`RawDetections.select` per image.
    ``max_scale`` drops pyramid levels above it (``1`` = without the 2x level); ``routing``
    ``"full"`` keeps every template on every level (needs candidates of a
    ``Detector(routing="full")``); ``vote_iou`` as :class:`~tinylib.hr.detect.Detector`
    (``None``: plain NMS); ``calibration`` (a :class:`~tinylib.hr.calibrate.Calibration`)
    re-scores the candidates first (``score_threshold`` is then the floor on the raw scores,
    as for the candidates it was fitted on)."""
    out = {}
    for key, raw in raws.items():
        thr = score_threshold
        if calibration is not None:
            raw, thr = calibration.apply(raw, floor=score_threshold), 0.0
        lv = levels
        if max_scale is not None:
            lv = [s for s in raw.scales if s <= max_scale + 1e-9]
        boxes, scores = raw.select(thr, nms_iou, levels=lv, use_a=use_a,
                                   use_b=use_b, routing=routing, max_dets=max_dets,
                                   vote_iou=vote_iou)
        out[key] = to_wider(boxes, scores)
    return out


# ------------------------------------------------------------------------------------ peers
def all_peer_predictions(images: Mapping[str, os.PathLike], *, settings: int | None = None,
                         progress: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Every available peer at its :data:`PEER_SETTINGS` (the first ``settings`` of each, all
    when None), keyed by :func:`peer_label`; unavailable peers are left out (see
    :func:`tinylib.peers.available` for why)."""
    out = {}
    for name, reason in peers.available().items():
        if reason is not None:
            continue
        for opts in PEER_SETTINGS[name][:settings]:
            out[peer_label(name, opts)] = peer_predictions(name, images, progress=progress, **opts)
    return out


def peer_predictions(name: str, images: Mapping[str, os.PathLike], *, upsample=1,
                     progress: bool = False, **opts) -> dict[str, np.ndarray]:
    """A peer's WIDER rows per image at one upsampling setting (cached by
    :func:`tinylib.peers.detect_many`)."""
    det = peers.get(name, upsample=upsample, **opts)
    return peers.detect_many(det, dict(images), progress=progress)


# ---------------------------------------------------------------------------- evaluation
def compare(predictions: Mapping[str, Mapping[str, np.ndarray]], gt: W.EvalGT,
            keys: Iterable[str]) -> tuple[pd.DataFrame, dict[str, W.WiderResult]]:
    """Evaluate each ``predictions[label]`` on exactly ``keys`` with the official protocol.
    Returns a table (index ``label``; ``easy, medium, hard, detections``) and the results
    (for PR curves). The table's ``attrs["eval_set"]`` is the subset label."""
    keys = list(keys)
    rows, results = {}, {}
    for label, preds in predictions.items():
        missing = [k for k in keys if k not in preds]
        if missing:
            raise KeyError(f"{label}: no predictions for {len(missing)} image(s), e.g. {missing[0]}")
        res = W.evaluate({k: preds[k] for k in keys}, gt, subset=keys)
        results[label] = res
        rows[label] = {**{s: res.ap[s] for s in W.SETTINGS},
                       "detections": int(sum(len(preds[k]) for k in keys))}
    table = pd.DataFrame(rows).T
    table.index.name = "detector"
    table.attrs["eval_set"] = W.subset_label(len(keys))
    return table, results


def best_per_detector(table: pd.DataFrame, sep: str = " @ ") -> pd.DataFrame:
    """Rows labelled ``"name @ setting"``: keep each name's row with the highest hard AP
    (ties: the first); the index becomes the name, the setting a column."""
    names = [str(i).split(sep, 1) for i in table.index]
    t = table.copy()
    t["name"] = [n[0] for n in names]
    t["setting"] = [n[1] if len(n) > 1 else "" for n in names]
    best = t.sort_values("hard", ascending=False, kind="stable").groupby("name", sort=False).head(1)
    return best.set_index("name")[["setting", *W.SETTINGS, "detections"]]


def recall_by_size(preds: Mapping[str, np.ndarray], gt: W.EvalGT, keys: Iterable[str], *,
                   score_threshold: float, bins=(0, 10, 20, 40, 80, 1e9), iou: float = 0.5
                   ) -> pd.DataFrame:
    """Recall of the ground-truth faces of ``keys`` per size bin (``sqrt(w h)`` in pixels) at
    raw score ``>= score_threshold``: a face is found when some such detection's best face is
    it at IoU ``>= iou`` (+1 as the benchmark). Also the number of faces per bin."""
    sizes, found = [], []
    for k in keys:
        g = np.asarray(gt.boxes[k], dtype=np.float64).reshape(-1, 4)
        g = g[(g[:, 2] > 0) & (g[:, 3] > 0)]
        if not len(g):
            continue
        p = np.asarray(preds.get(k, np.zeros((0, 5))), dtype=np.float64).reshape(-1, 5)
        p = p[p[:, 4] >= score_threshold]
        hit = W.match_image(p, g, iou_thresh=iou) if len(p) else np.full(0, -1)
        got = np.zeros(len(g), dtype=bool)
        got[hit[hit >= 0]] = True
        sizes.append(np.sqrt(g[:, 2] * g[:, 3]))
        found.append(got)
    s, f = np.concatenate(sizes), np.concatenate(found)
    labels = [f"{int(a)}-{int(b)} px" if b < 1e9 else f">{int(a)} px" for a, b in zip(bins[:-1], bins[1:])]
    cut = pd.cut(s, bins=list(bins), labels=labels, right=True)
    df = pd.DataFrame({"bin": cut, "found": f}).groupby("bin", observed=False)["found"]
    return pd.DataFrame({"faces": df.size(), "recall": df.mean()})


# ------------------------------------------------------------ the shipped measured tables
#: the halves of the WIDER val subset, as the tables show them: the headline first
HALVES = ("test", "tuning")
PAPER_COLUMN = "paper (full WIDER val)"


def claim_key(detector: str, setting: str) -> str:
    """The scorecard key of a detector's AP on the subset: ``hr.wider_subset.hard``,
    ``eval.peers.mtcnn.wider_subset.hard``."""
    if detector == "hr":
        return f"hr.wider_subset.{setting}"
    return f"eval.peers.{detector}.wider_subset.{setting}"


def _ordered(values) -> list:
    return list(dict.fromkeys(values))


def halves_side_by_side(frame: pd.DataFrame, index, values=W.SETTINGS) -> pd.DataFrame:
    """A measured table in long form (one row per ``index`` and ``half``) as one row per
    ``index``: the test half's ``values``, then the tuning half's (columns ``(half, value)``),
    rows in the table's order. A half the table lacks is left out. With a ``chosen`` column
    (picked on the tuning half) a last column ``("chosen on tuning", "")`` marks the row."""
    index = [index] if isinstance(index, str) else list(index)
    missing = [c for c in [*index, "half", *values] if c not in frame.columns]
    if missing:
        raise ValueError(f"measured table lacks the column(s) {', '.join(missing)} "
                         f"(has {', '.join(map(str, frame.columns))})")
    order = _ordered(map(tuple, frame[index].itertuples(index=False)))
    parts = {}
    for half in HALVES:
        h = frame[frame["half"] == half]
        if len(h):
            parts[half] = h.set_index(index)[list(values)]
    if not parts:
        raise ValueError(f"measured table has no rows of the halves {', '.join(HALVES)}")
    wide = pd.concat(parts, axis=1)
    wide = wide.reindex(pd.MultiIndex.from_tuples(order, names=index) if len(index) > 1
                        else pd.Index([o[0] for o in order], name=index[0]))
    if "chosen" in frame:
        picked = set(map(tuple, _chosen(frame)[index].itertuples(index=False)))
        keys = wide.index if len(index) > 1 else [(i,) for i in wide.index]
        wide[("chosen on tuning", "")] = [tuple(k) in picked for k in keys]
    return wide


def _chosen(frame: pd.DataFrame) -> pd.DataFrame:
    if "chosen" not in frame:
        raise ValueError("measured table lacks the column 'chosen' (the setting picked on "
                         "the tuning half)")
    return frame[frame["chosen"].astype(str).str.lower().isin(("true", "1"))]


def detectors_table(frame: pd.DataFrame) -> pd.DataFrame:
    """``wider_subset_detectors``: each detector at the setting chosen on the tuning half,
    one row per (detector, setting), the papers' published full-val AP (:mod:`tinylib.papers`,
    NaN where none is published), then the test half, then the tuning half."""
    wide = halves_side_by_side(_chosen(frame).drop(columns="chosen"), ["detector", "setting"])
    paper = pd.DataFrame([[_paper_value(claim_key(d, s)) for s in W.SETTINGS] for d, _ in wide.index],
                         index=wide.index,
                         columns=pd.MultiIndex.from_product([[PAPER_COLUMN], list(W.SETTINGS)]))
    return pd.concat([paper, wide], axis=1)


def _paper_value(key: str) -> float:
    """The paper's number under ``key`` (:mod:`tinylib.papers`), NaN when there is none."""
    claim = papers.find(key)
    value = getattr(claim, "value", None)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else np.nan


def half_images(frame: pd.DataFrame, half: str) -> int | None:
    """The number of photos a measured table's ``half`` was scored on (its ``images``
    column), None when the table lacks that half."""
    h = frame[frame["half"] == half]
    return int(h["images"].iloc[0]) if len(h) and "images" in h else None


def subset_claims(frame: pd.DataFrame) -> list[dict]:
    """The scorecard rows of ``wider_subset_detectors``: for each detector at its chosen
    setting and each of easy / medium / hard, ``{"key", "ours", "unit", "claim", "note"}`` -- ``ours`` the
    test half, the note with the tuning half beside it (``scorecard.record(**row,
    table=...)`` adds the provenance)."""
    wide = halves_side_by_side(_chosen(frame), ["detector", "setting"])
    n_test, n_tun = half_images(frame, "test"), half_images(frame, "tuning")
    rows = []
    for (det, setting), r in wide.iterrows():
        for s in W.SETTINGS:
            tun = r.get(("tuning", s), np.nan)
            rows.append({
                "key": claim_key(det, s), "ours": round(float(r[("test", s)]), 3), "unit": "AP",
                "claim": f"{'HR detector' if det == 'hr' else det} AP, {s} (test half)",
                "note": (f"ours: WIDER val subset, test half ({n_test} images); tuning half "
                         f"({n_tun} images) {tun:.3f}; setting '{setting}' chosen on the tuning "
                         "half; paper: full WIDER val — not comparable")})
    return rows


def calibration_claims(frame: pd.DataFrame) -> list[dict]:
    """The scorecard rows of ``hr_calibration_sweep``: ``hr.wider_subset.raw_scores.<s>`` (the
    detector with the network's raw scores, the paper's post-processing of them) and
    ``hr.wider_subset.calibration_gain.hard`` (the chosen row minus the raw one), test half,
    the tuning half in the note."""
    wide = halves_side_by_side(frame, ["setting"])
    raw = next(i for i in wide.index if i.endswith("raw scores"))
    chosen = frame.loc[frame["chosen"], "setting"].iloc[0]
    n_test, n_tun = half_images(frame, "test"), half_images(frame, "tuning")
    where = f"WIDER val subset, test half ({n_test} images); tuning half ({n_tun} images)"
    rows = [{"key": f"hr.wider_subset.raw_scores.{s}", "ours": round(float(wide.at[raw, ("test", s)]), 3),
             "unit": "AP", "claim": f"HR detector AP, {s}, raw scores (no calibration)",
             "note": f"ours: {where} {wide.at[raw, ('tuning', s)]:.3f}; setting '{raw}'"}
            for s in W.SETTINGS]
    gain = {h: float(wide.at[chosen, (h, "hard")] - wide.at[raw, (h, "hard")]) for h in HALVES}
    rows.append({"key": "hr.wider_subset.calibration_gain.hard", "ours": round(gain["test"], 3), "unit": "AP",
                 "claim": "HR hard AP: the score calibration chosen on the tuning half minus raw scores",
                 "note": f"ours: {where} {gain['tuning']:+.3f}; chosen '{chosen}'; its biases fitted on "
                         "the tuning half's candidates (tinylib.hr.calibrate)"})
    return rows


def ablation_table(frame: pd.DataFrame) -> pd.DataFrame:
    """``hr_ablation``: one row per selection (Table 1 / Fig. 10's rows on real photos), the
    paper's hard AP where Table 1 has the row, the test half, the tuning half."""
    wide = halves_side_by_side(frame, ["selection"])
    keys = dict(zip(frame["selection"], frame["key"])) if "key" in frame else {}
    wide.insert(0, ("paper (Table 1)", "hard"),
                [_paper_value(f"hr.wider_subset.ablation.{keys.get(sel, '')}.hard") for sel in wide.index])
    return wide


def ablation_claims(frame: pd.DataFrame) -> list[dict]:
    """The scorecard rows of ``hr_ablation``: ``hr.wider_subset.ablation.<key>.hard`` from the
    test half, the tuning half in the note."""
    wide = halves_side_by_side(frame, ["selection"])
    keys = dict(zip(frame["selection"], frame["key"]))
    n_test, n_tun = half_images(frame, "test"), half_images(frame, "tuning")
    return [{"key": f"hr.wider_subset.ablation.{keys[sel]}.hard",
             "ours": round(float(r[("test", "hard")]), 3),
             "claim": f"HR hard AP, {sel}", "unit": "AP",
             "note": (f"ours: WIDER val subset, test half ({n_test} images); tuning half "
                      f"({n_tun} images) {r.get(('tuning', 'hard'), np.nan):.3f}; paper: Table 1, "
                      "HR-ResNet101, full val — not comparable")}
            for sel, r in wide.iterrows()]


def recall_table(frame: pd.DataFrame) -> pd.DataFrame:
    """``hr_recall_by_size``: one row per face-size bin (in the table's order), columns
    ``(half, "faces")`` and ``(half, stage)`` recall for ``before NMS`` / ``after NMS``,
    test half first."""
    bins = _ordered(frame["bin"])
    parts = {}
    for half in HALVES:
        h = frame[frame["half"] == half]
        if not len(h):
            continue
        rec = h.pivot(index="bin", columns="stage", values="recall")
        stages = [s for s in _ordered(h["stage"]) if s in rec.columns]
        faces = h.groupby("bin", sort=False)["faces"].first()
        parts[half] = pd.concat([faces.rename("faces"), rec[stages]], axis=1).reindex(bins)
    out = pd.concat(parts, axis=1)
    out.index.name = "face size"
    return out


# ------------------------------------------------------------------ the explorer's threshold
#: raw score thresholds of the operating-point table (``hr_operating_point``)
#: (the HR detector's sigmoid scores crowd near 1: the grid is fine there, in steps the
#: explorer's slider can show)
OPERATING_THRESHOLDS = (*(round(0.05 * i, 2) for i in range(1, 20)),
                        0.96, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999)
#: the precision the explorer's starting threshold must reach on the tuning half
TARGET_PRECISION = 0.8
#: the threshold the explorer falls back on without the shipped table
FALLBACK_THRESHOLD = 0.5


def operating_table(predictions: Mapping[str, np.ndarray], gt: W.EvalGT,
                    halves: Mapping[str, Iterable[str]], thresholds=OPERATING_THRESHOLDS,
                    setting: str = "hard", target: float = TARGET_PRECISION) -> pd.DataFrame:
    """Precision and recall (the protocol's matching and ``setting``'s ignore rules,
    :func:`tinylib.eval.widerface.operating_curve`) and detections per photo of one
    detector's ``predictions`` at each raw score threshold, per half. ``chosen`` marks, on
    both halves, the lowest threshold whose **tuning-half** precision reaches ``target`` (the
    most recall at that precision; the highest threshold if none does)."""
    rows = []
    for half, keys in halves.items():
        keys = list(keys)
        p, r = W.operating_curve(predictions, gt, thresholds, setting=setting, subset=keys)
        scores = np.concatenate([np.asarray(predictions[k], float).reshape(-1, 5)[:, 4]
                                 for k in keys if k in predictions] or [np.zeros(0)])
        for t, pi, ri in zip(thresholds, p, r):
            rows.append({"half": half, "images": len(keys), "setting": setting, "threshold": float(t),
                         "precision": float(pi), "recall": float(ri),
                         "detections_per_image": float((scores >= t).sum() / max(len(keys), 1))})
    table = pd.DataFrame(rows)
    tune = table[table["half"] == "tuning"]
    ok = tune[tune["precision"] >= target]
    pick = float(ok["threshold"].min()) if len(ok) else float(tune["threshold"].max())
    table["chosen"] = np.isclose(table["threshold"], pick)
    return table


def explorer_threshold(weights=None, directory=None) -> tuple[float, str]:
    """The HR explorer's starting score threshold for the detector with ``weights`` (a
    weights file), and why: the one ``hr_operating_point`` (shipped, :mod:`tinylib.measured`)
    chose on the tuning half when the table was measured with those weights, else
    :data:`FALLBACK_THRESHOLD` with the reason (no weights given, other weights, no table)."""
    from .. import measured

    fallback = f"{FALLBACK_THRESHOLD:g} by default"
    if weights is None:
        return FALLBACK_THRESHOLD, f"no weights named, so no measured operating point; {fallback}"
    try:
        t = measured.read_table("hr_operating_point", directory)
    except (FileNotFoundError, ValueError) as exc:
        return FALLBACK_THRESHOLD, f"no shipped operating point ({exc}); {fallback}"
    if measured.file_sha256(weights) not in t.provenance.get("weights", {}).values():
        return FALLBACK_THRESHOLD, (f"the shipped operating point was measured with other weights than "
                                    f"{Path(weights).name}; {fallback}")
    f = t.frame
    row = f[f["chosen"] & (f["half"] == "tuning")].iloc[0]
    where = (f"where precision ({row['setting']} setting) first reaches {TARGET_PRECISION:g} on the tuning half"
             if row["precision"] >= TARGET_PRECISION else
             f"the highest threshold tried: precision ({row['setting']} setting) never reaches "
             f"{TARGET_PRECISION:g} on the tuning half")
    return float(row["threshold"]), (f"{where} (precision {row['precision']:.2f}, recall "
                                      f"{row['recall']:.2f}; table hr_operating_point)")

