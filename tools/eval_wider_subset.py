"""Every detector on the real WIDER val images of the data root, with the official protocol.

    TINYLIB_DATA=../shared/data .venv/bin/python tools/eval_wider_subset.py \
        [--n N] [--detectors hr,mtcnn,...] [--weights PATH] [--out build/wider_subset]

Runs the HR detector (shipped weights or ``--weights``) and each available peer at 1x and
with an upsampled level, caches every detection (re-runs are instant), and writes
``<out>/results.csv`` (one row per detector and setting: easy/medium/hard AP on the
"WIDER val subset (N images)"), ``<out>/best.csv`` (each detector's best setting by hard AP)
and ``<out>/ablation.csv`` (the HR detector's A only / A+B / without the 2x level). The
numbers in notebook 07's "we get" and in the issue notes come from this script.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

from tinylib import peers
from tinylib.config import data_root
from tinylib.eval import compare as C
from tinylib.eval import widerface as W
from tinylib.hr.detect import DEFAULT_WEIGHTS, Detector, load_detector
from tinylib.io import atomic_write_text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=None, help="evenly spread sample of N images")
    p.add_argument("--detectors", default=",".join(["hr", *C.PEER_SETTINGS]))
    p.add_argument("--weights", default=None, help=f"HR weights (default {DEFAULT_WEIGHTS.name})")
    p.add_argument("--max-side", type=int, default=2100, help="HR pyramid cap (keeps 2x of 1024 px)")
    p.add_argument("--out", default="build/wider_subset")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--peer-settings", default=None,
                   help="comma-separated peer=N: run only the first N settings of that peer "
                        "(e.g. haar=1,dlib_hog=1); default every setting")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    gt = W.load_gt()
    images = C.subset_images(gt, data_root(), n=args.n)
    keys = list(images)
    print(f"{W.subset_label(len(keys))}: {len(keys)} images", flush=True)
    preds, timing = {}, {}
    names = [d.strip() for d in args.detectors.split(",") if d.strip()]
    out = Path(args.out)
    limit = {k: int(v) for k, v in (item.split("=") for item in
                                     (args.peer_settings or "").split(",") if item)}
    peer_names = []
    for name in names:
        if name == "hr":
            wpath = Path(args.weights) if args.weights else DEFAULT_WEIGHTS
            det = Detector(load_detector(wpath), score_threshold=0.05, max_side=args.max_side,
                           routing="full")
            t = time.perf_counter()
            raws = C.hr_raw(det, images, weights_id=C.weights_id(wpath), progress=True)
            timing["hr"] = time.perf_counter() - t
            preds["hr @ 0.25x..2x pyramid, A+B"] = C.hr_select(raws)
            table, _ = C.compare(C.ablation_predictions(raws), gt, keys)
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "ablation.csv", table.to_csv())
            print(table.round(3).to_string(), flush=True)
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
    table, _ = C.compare(preds, gt, keys)
    table["seconds"] = [timing.get(i, timing.get(str(i).split(" @ ")[0], float("nan")))
                        for i in table.index]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.csv", table.to_csv())
    best = C.best_per_detector(table)
    atomic_write_text(out / "best.csv", best.to_csv())
    print(table.attrs.get("eval_set", ""))
    print(table.round(3).to_string())
    print(best.round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
