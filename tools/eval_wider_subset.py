"""Every detector on the real WIDER val images of the data root, tuning and test halves apart.

    TINYLIB_DATA=../shared/data .venv/bin/python tools/eval_wider_subset.py \
        [--detectors hr,mtcnn,...] [--weights PATH] [--out build/wider_subset] [--ship]

Runs the HR detector (shipped weights or ``--weights``) and each available peer at 1x and
with an upsampled level over the 374 photos of the WIDER val subset (every detection is
cached: re-runs are instant), then scores each with the official protocol on the **tuning**
and the **test** half of the subset separately (:mod:`tinylib.data.splits`).

Every choice is made on the tuning half: each peer's setting (1x or with an upsampled
level), the HR detector's box-voting IoU (swept, ``vote_iou`` of the chosen row); the test
half only reports. Writes, into ``--out`` (and with ``--ship`` into ``tinylib/weights/``
as measured tables with provenance, :mod:`tinylib.measured`):

* ``wider_subset_detectors``: one row per detector, setting and half (easy/medium/hard AP,
  detections, seconds for the whole subset, ``chosen`` = picked on the tuning half);
* ``hr_ablation``: the HR detector's candidates re-selected as Table 1 / Fig. 10's
  ablations (A only, A+B, without the 2x level, ...), per half;
* ``hr_vote_sweep``: box-voting IoU on the tuning half (the choice) and the test half;
* ``hr_calibration_sweep``: the HR detector with raw scores and with the score calibration
  across templates and levels (:mod:`tinylib.hr.calibrate`) fitted on the tuning half at each
  label IoU of :data:`CALIBRATION_IOUS`; the best on the tuning half is the default detector's
  (``hr_calibration.json`` beside the weights, with ``--ship``), and the ``hr`` row of
  ``wider_subset_detectors`` is that detector;
* ``hr_recall_by_size``: recall by face size before NMS and after it (raw and, when chosen,
  calibrated scores), per half.
* ``hr_operating_point``: the HR detector's precision / recall / detections per photo at raw
  score thresholds, per half; ``chosen`` = the lowest threshold reaching precision 0.8 on the
  tuning half (where the explorer of chapter 07 opens).

``--ship`` with only some detectors (``--detectors hr``) ships the HR tables, and replaces
only the ``hr`` rows of the shipped ``wider_subset_detectors`` (the peers' rows are carried
over, which its provenance notes say); a table of every detector needs them all.

The HR detector's rows (the vote and calibration sweeps, ``wider_subset_detectors``, recall by
size, operating points) are measured on the candidates of the default detector exactly as
``tinylib-detect`` makes them: A+B templates decoded, its pyramid cap (``CLI_MAX_SIDE``). The
ablations (``hr_ablation``) re-select one cached set of candidates of every template on every
level (``--max-side``), so their top-k per level is shared by all 25 templates; they and the
operating points (``hr_operating_point``, where the explorer of chapter 07 opens on the
network's scores) use the raw scores.

Chapter 07, the weights README and the scorecard read these tables. ``--n N`` (an evenly
spread sample) is for trying the script, never for a shipped table.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tinylib import measured, peers
from tinylib.compare import wider_subset as C
from tinylib.config import data_root
from tinylib.data import splits
from tinylib.eval import widerface as W
from tinylib.hr import calibrate
from tinylib.hr.detect import (
    CLI_MAX_SIDE,
    DEFAULT_CALIBRATION,
    DEFAULT_WEIGHTS,
    Detector,
    load_detector,
)

#: box-voting IoUs tried on the tuning half (None = plain NMS, the paper's post-processing)
VOTE_IOUS = (None, 0.3, 0.35, 0.4, 0.5, 0.6)
HR = "hr"
#: label IoUs of the score calibration tried on the tuning half (tinylib.hr.calibrate)
CALIBRATION_IOUS = (0.5, 0.6, 0.7, 0.8)


def _score(preds: dict, gt, halves: dict) -> pd.DataFrame:
    """Long table: one row per label and half."""
    rows = []
    for half, keys in halves.items():
        table, _ = C.compare(preds, gt, keys)
        for label, r in table.iterrows():
            rows.append({"label": label, "half": half, "images": len(keys),
                         **{s: float(r[s]) for s in W.SETTINGS},
                         "detections": int(r["detections"])})
    return pd.DataFrame(rows)


def _split_label(label: str) -> tuple[str, str]:
    name, _, setting = str(label).partition(" @ ")
    return name, setting


def choose_on_tuning(table: pd.DataFrame, by: str = "hard") -> pd.DataFrame:
    """Mark, for each detector, the setting with the best tuning-half ``by`` AP (ties: the
    first listed) as ``chosen`` on both halves."""
    t = table.copy()
    t["detector"], t["setting"] = zip(*(_split_label(x) for x in t["label"]))
    tun = t[t["half"] == "tuning"]
    best = tun.sort_values(by, ascending=False, kind="stable").groupby("detector").head(1)
    chosen = set(best["label"])
    t["chosen"] = t["label"].isin(chosen)
    return t.drop(columns=["label"])[["detector", "setting", "half", "images", *W.SETTINGS,
                                      "detections", "chosen"]]


def _candidates(raw) -> tuple:
    """The A+B candidates of score >= 0.05 (what :meth:`RawDetections.select` would keep with
    NMS switched off), sorted by score; no NMS at IoU 1 (quadratic in tens of thousands)."""
    kept = raw.subset(raw.mask(0.05, routing="ab"))
    order = np.argsort(-kept.scores, kind="stable")
    return kept.boxes[order], kept.scores[order]


def recall_before_after(raws, gt, halves: dict, vote_iou, calibration=None) -> pd.DataFrame:
    """Recall by face size of the HR detector's A+B candidates (raw score >= 0.05) before NMS
    and after it, with raw scores and (``calibration``) with calibrated ones."""
    rows = []
    stages = {"before NMS": {k: C.to_wider(*_candidates(raw)) for k, raw in raws.items()},
              "after NMS": C.hr_select(raws, vote_iou=vote_iou)}
    if calibration is not None:
        stages["after NMS, calibrated"] = C.hr_select(raws, vote_iou=vote_iou, calibration=calibration)
    for half, keys in halves.items():
        for stage, preds in stages.items():
            r = C.recall_by_size(preds, gt, keys, score_threshold=0.0,
                                 bins=(0, 10, 13, 16, 20, 30, 50, 1e9))
            for b, row in r.iterrows():
                rows.append({"half": half, "stage": stage, "bin": str(b),
                             "faces": int(row["faces"]), "recall": float(row["recall"])})
    return pd.DataFrame(rows)


def calibration_sweep(raws, gt, halves: dict, vote, setting: str, *, n_templates: int,
                      weights: str) -> tuple[calibrate.Calibration | None, pd.DataFrame]:
    """The HR detector with raw scores and with a calibration fitted on the tuning half at each
    of :data:`CALIBRATION_IOUS`, scored on both halves; returns the calibration chosen on the
    tuning half (``None``: raw scores won) and the sweep table (``chosen`` marked)."""
    cals = {iou: calibrate.fit(raws, gt.boxes, halves["tuning"], n_templates=n_templates, label_iou=iou,
                               weights=weights, fitted_on={"half": "tuning", "vote_iou": vote})
            for iou in CALIBRATION_IOUS}
    label = f"{HR} @ {setting}"
    preds = {f"{label}, raw scores": C.hr_select(raws, vote_iou=vote),
             **{f"{label}, calibrated (label IoU {iou:g})": C.hr_select(raws, vote_iou=vote, calibration=c)
                for iou, c in cals.items()}}
    sweep = choose_on_tuning(_score(preds, gt, halves))
    best = sweep[sweep["chosen"]]["setting"].iloc[0]
    pick = next((c for iou, c in cals.items() if best.endswith(f"(label IoU {iou:g})")), None)
    return pick, sweep


def with_shipped_peers(hr_rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """``hr_rows`` (this run's ``hr`` rows of ``wider_subset_detectors``) with the peers' rows of
    the shipped table, and a note saying where those come from."""
    old = measured.read_table("wider_subset_detectors")
    peers_rows = old.frame[old.frame["detector"] != HR]
    merged = pd.concat([hr_rows[hr_rows["detector"] == HR], peers_rows], ignore_index=True)
    return merged, (f" The peers' rows are carried over from the table of commit {old.provenance.get('commit')} "
                    f"({old.provenance.get('date')}); only the hr rows were re-measured (--detectors hr).")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=None,
                   help="evenly spread sample of N images (a try-out; never --ship it)")
    p.add_argument("--detectors", default=",".join([HR, *C.PEER_SETTINGS]))
    p.add_argument("--weights", default=None, help=f"HR weights (default {DEFAULT_WEIGHTS.name})")
    p.add_argument("--max-side", type=int, default=2100,
                   help="HR pyramid cap of the ablations' candidates (keeps 2x of 1024 px); the "
                        f"detector's own rows use tinylib-detect's ({CLI_MAX_SIDE})")
    p.add_argument("--out", default="build/wider_subset")
    p.add_argument("--ship", action="store_true",
                   help="also write the measured tables into tinylib/weights/ (with provenance)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--peer-settings", default=None,
                   help="comma-separated peer=N: run only the first N settings of that peer "
                        "(e.g. haar=1,dlib_hog=1); default every setting")
    args = p.parse_args(argv)
    if args.ship and args.n:
        p.error("--ship measures the whole subset: drop --n")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    gt = W.load_gt()
    images = C.subset_images(gt, data_root(), n=args.n)
    keys = list(images)
    halves = splits.halves(keys)
    print(f"{W.subset_label(len(keys))}: tuning {len(halves['tuning'])}, "
          f"test {len(halves['test'])} images", flush=True)
    preds, timing = {}, {}
    names = [d.strip() for d in args.detectors.split(",") if d.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    limit = {k: int(v) for k, v in (item.split("=") for item in
                                     (args.peer_settings or "").split(",") if item)}
    tables: dict[str, pd.DataFrame] = {}
    wpath = Path(args.weights) if args.weights else DEFAULT_WEIGHTS
    peer_names = []
    for name in names:
        if name == HR:
            model = load_detector(wpath)
            # the default detector's candidates (tinylib-detect: A+B templates decoded, its pyramid cap)
            det = Detector(model, score_threshold=0.05, max_side=CLI_MAX_SIDE, routing="ab")
            t = time.perf_counter()
            raws = C.hr_raw(det, images, weights_id=C.weights_id(wpath), progress=True)
            timing[HR] = time.perf_counter() - t
            # the ablations': every template on every level, re-selected row by row
            full = Detector(model, score_threshold=0.05, max_side=args.max_side, routing="full")
            raws_full = C.hr_raw(full, images, weights_id=C.weights_id(wpath), progress=True)
            sweep = _score({f"{HR} @ vote {v if v is not None else 'none'}":
                            C.hr_select(raws, vote_iou=v) for v in VOTE_IOUS}, gt, halves)
            sweep = choose_on_tuning(sweep)
            tables["hr_vote_sweep"] = sweep
            chosen = sweep[sweep["chosen"]]["setting"].iloc[0].removeprefix("vote ")
            vote = None if chosen == "none" else float(chosen)
            print(f"box voting chosen on the tuning half: {chosen}", flush=True)
            setting = f"0.0625x..2x pyramid, A+B decoded, vote {chosen}"
            cal, csweep = calibration_sweep(raws, gt, halves, vote, setting, n_templates=len(det.templates),
                                            weights=C.weights_id(wpath))
            tables["hr_calibration_sweep"] = csweep
            if cal is not None:
                setting += f", calibrated (label IoU {cal.label_iou:g})"
                if args.ship:
                    cal.save(DEFAULT_CALIBRATION if wpath == DEFAULT_WEIGHTS else out / "hr_calibration.json")
            print(f"score calibration chosen on the tuning half: {setting}", flush=True)
            preds[f"{HR} @ {setting}"] = C.hr_select(raws, vote_iou=vote, calibration=cal)
            abl = {label: C.hr_select(raws_full, **{"vote_iou": vote, **opts})
                   for label, opts in C.ABLATIONS.items()}
            a = _score(abl, gt, halves).rename(columns={"label": "selection"})
            a["key"] = a["selection"].map(C.ABLATION_KEYS)
            tables["hr_ablation"] = a
            tables["hr_recall_by_size"] = recall_before_after(raws, gt, halves, vote, cal)
            op = C.operating_table(C.hr_select(raws, vote_iou=vote), gt, halves)
            tables["hr_operating_point"] = op
            pick = op[op["chosen"]].set_index("half")
            print(f"explorer threshold chosen on the tuning half: {pick.at['tuning', 'threshold']:g} "
                  f"(precision {pick.at['tuning', 'precision']:.2f}; test half "
                  f"{pick.at['test', 'precision']:.2f})", flush=True)
            continue
        reason = peers.available().get(name, f"unknown detector {name!r}")
        if reason is not None:
            print(f"{name}: skipped ({reason})", file=sys.stderr)
            continue
        peer_names.append(name)
    # every peer at 1x first, then every peer with its upsampled level
    for i in range(max((len(C.PEER_SETTINGS[n]) for n in peer_names), default=0)):
        for name in peer_names:
            if i >= min(len(C.PEER_SETTINGS[name]), limit.get(name, 99)):
                continue
            opts = C.PEER_SETTINGS[name][i]
            label = C.peer_label(name, opts)
            t = time.perf_counter()
            preds[label] = C.peer_predictions(name, images, progress=True, **opts)
            timing[label] = time.perf_counter() - t
            print(f"{label}: {timing[label]:.0f} s", flush=True)
    every = set(p.get_default("detectors").split(","))
    partial = set(names) != every or bool(limit)
    det_table = choose_on_tuning(_score(preds, gt, halves))
    det_table["seconds"] = [timing.get(f"{d} @ {s}" if s else d, timing.get(d, float("nan")))
                            for d, s in zip(det_table["detector"], det_table["setting"])]
    carried = ""
    if partial and args.ship and HR in names and limit == {} and names == [HR]:
        det_table, carried = with_shipped_peers(det_table)
        tables["wider_subset_detectors"] = det_table
    elif partial and args.ship:
        print("wider_subset_detectors not shipped: it needs every detector at every setting "
              "(this run has only part of them); the HR tables are", file=sys.stderr)
    else:
        tables["wider_subset_detectors"] = det_table
    cmd = ["python", "tools/eval_wider_subset.py", "--ship"]
    if args.weights:
        cmd += ["--weights", args.weights]
    notes = ("Scored with the official WIDER FACE protocol restricted to each half of the "
             "WIDER val subset (tinylib/data/wider_val_split.csv). Every choice (each peer's "
             "setting, the HR box-voting IoU and score calibration) made on the tuning half; the "
             "score calibration's biases are fitted on the tuning half's candidates; the test half "
             "only reports.")
    for tname, frame in tables.items():
        frame.to_csv(out / f"{tname}.csv", index=False)
        if args.ship:
            prov = measured.provenance("TINYLIB_DATA=../shared/data " + " ".join(cmd),
                                       weights=[wpath] if HR in names else [],
                                       images=halves, notes=notes + (carried if tname == "wider_subset_detectors" else ""))
            measured.write_table(tname, frame, prov)
    if det_table.empty:
        return 0
    show = det_table[det_table["chosen"]].pivot_table(index="detector", columns="half",
                                                      values=list(W.SETTINGS))
    print(show.round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
