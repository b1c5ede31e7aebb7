"""The matched-depth context ablation of the real-photo HR detector (issue 25, item 6).

    TINYLIB_DATA=../shared/data .venv/bin/python tools/hr_context_ablation.py [--ship]
        [--out runs] [--threads N]

Two arms, one recipe: ``configs/hr_mnet025_wider_ctxpair_cpu.yaml`` (``context: full``) and
``configs/hr_mnet025_wider_ctxpair_centre_cpu.yaml`` (``context: centre``: stage2's
depthwise 3x3 convolutions keep only their centre tap, :func:`tinylib.hr.model.build_hr`).
Same trunk, depth, parameters, FLOPs, data, seed and schedule; only the context the
templates can reach differs (the ``reach`` column: the extent of the input gradient of one
score, measured here on a 320-px input).

Trains each arm into ``OUT/hr_ctxpair_<arm>/`` (resumable: a finished arm is reused, an
unfinished one resumes from its ``last.pt``), then scores both on the two halves of the
WIDER val subset with the shipped detector's post-processing (A+B, box voting at the IoU the
tuning half chose for it, ``hr_vote_sweep``) and the official protocol, plus ``le20`` (the
hard set's faces of at most 20 px, every other face ignored; not an official setting). No
choice is made on either half. ``--ship`` writes ``tinylib/weights/hr_context_ablation.csv``
with its provenance.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd
import torch

from tinylib import measured
from tinylib.compare import wider_subset as C
from tinylib.config import REPO_DIR, data_root
from tinylib.data import splits
from tinylib.eval import widerface as W
from tinylib.hr import train as hr_train
from tinylib.hr.detect import Detector, load_detector
from tinylib.hr.model import input_reach

ARMS = {"full": REPO_DIR / "configs" / "hr_mnet025_wider_ctxpair_cpu.yaml",
        "centre": REPO_DIR / "configs" / "hr_mnet025_wider_ctxpair_centre_cpu.yaml"}
TABLE = "hr_context_ablation"
COMMAND = "TINYLIB_DATA=../shared/data python tools/hr_context_ablation.py --ship"


def train_arm(arm: str, out: Path, threads: int | None) -> Path:
    """The arm's inference weights, training (or resuming) it first when needed."""
    run = out / f"hr_ctxpair_{arm}"
    weights = run / "weights.pt"
    if weights.is_file():
        return weights
    argv = [str(ARMS[arm]), "--out", str(run), "--export", str(weights), "--no-progress"]
    if (run / "last.pt").is_file():
        argv.append("--resume")
    if threads:
        argv += ["--threads", str(threads)]
    code = hr_train.main(argv)
    if code not in (0, None) or not weights.is_file():
        raise RuntimeError(f"training the {arm} arm failed (exit {code}); see {run}")
    return weights


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=REPO_DIR / "runs")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--ship", action="store_true", help=f"write tinylib/weights/{TABLE}.csv")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    weights = {arm: train_arm(arm, args.out, args.threads) for arm in ARMS}
    vote = measured.read_table("hr_vote_sweep").frame
    chosen = vote[vote["chosen"]]["setting"].iloc[0].removeprefix("vote ")
    vote_iou = None if chosen == "none" else float(chosen)
    gt = W.load_gt()
    images = C.subset_images(gt, data_root())
    halves = splits.halves(list(images))
    sized = W.with_size_setting(gt)
    rows = []
    for arm, path in weights.items():
        model = load_detector(path)
        r = input_reach(model)
        det = Detector(model, score_threshold=0.05, max_side=2100, routing="full")
        raws = C.hr_raw(det, images, weights_id=C.weights_id(path), progress=True)
        preds = C.hr_select(raws, vote_iou=vote_iou)
        for half, keys in halves.items():
            res = W.evaluate({k: preds[k] for k in keys}, sized, settings=(*W.SETTINGS, "le20"),
                             subset=keys)
            rows.append({"arm": arm, "context": model.config.get("context", "full"), "reach": r,
                         "half": half, "images": len(keys), **{s: res.ap[s] for s in res.ap},
                         "detections": int(sum(len(preds[k]) for k in keys)),
                         "vote_iou": chosen, "steps": int(torch.load(path.parent / "last.pt",
                                                                      map_location="cpu",
                                                                      weights_only=False)["step"])
                         if (path.parent / "last.pt").is_file() else None})
        print(pd.DataFrame([x for x in rows if x["arm"] == arm]).round(3).to_string(), flush=True)
    table = pd.DataFrame(rows)
    (args.out / f"{TABLE}.csv").write_text(table.to_csv(index=False))
    if args.ship:
        prov = measured.provenance(
            COMMAND, weights=list(weights.values()), images=halves,
            notes=("Matched-depth context ablation (issue 25): two HR detectors from one recipe "
                   "(6 epochs, 930 steps), context 'full' vs 'centre' (stage2's depthwise 3x3 "
                   "convolutions reduced to their centre tap: same depth, parameters and FLOPs). "
                   "Scored on both halves of the WIDER val subset with A+B and the box voting "
                   f"the tuning half chose for the shipped detector (IoU {chosen}); nothing "
                   "chosen on either half. le20: the hard set's faces <= 20 px, others "
                   "ignored (not an official setting). The arms' weights are not shipped."))
        measured.write_table(TABLE, table, prov)
        print(f"shipped {TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
