"""Section 3 of *Finding Tiny Faces* (context, foveal, resolution) on the ImageNet MobileNetV1
x0.25 trunk and from scratch, on every usable real face — the protocol of
:mod:`tinylib.studies.section3` (read it there: it was fixed before any gain was looked at).

    TINYLIB_DATA=../shared/data .venv/bin/python tools/run_studies.py [--out runs/studies]
        [--workers 2] [--ship] [--time]

Resumable: the window pools are cut once into ``OUT/pools/`` and each (init, size,
condition, seed) is written to ``OUT/results/`` when done; a rerun skips what is done.
``--ship`` writes ``tinylib/weights/studies_section3.csv`` and ``studies_section3_curves.csv``
(with provenance, :mod:`tinylib.measured`) — only from a completed run. ``--time`` measures
one training step and the scoring of each condition (single thread) and prints the estimate
of the whole run on an idle 2-core machine, then exits.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

from tinylib import measured
from tinylib.config import REPO_DIR, data_root
from tinylib.models.mobilenet import IMAGENET_WEIGHTS
from tinylib.studies import section3 as S3
from tinylib.studies.trunk import TrunkStudyNet

COMMAND = "TINYLIB_DATA=../shared/data python tools/run_studies.py --ship"


def time_steps(proto: S3.Protocol, n_train_pos=(3534, 380), n_eval=None) -> None:
    """Single-thread step and scoring times per condition, and the whole run's estimate."""
    torch.set_num_threads(1)
    total = 0.0
    counts = {"small": n_train_pos[0], "large": n_train_pos[1]}
    evals = n_eval or {s: (n + proto.train_ap_pos) * (1 + proto.neg_of(s))
                       for s, n in (("small", 699 + 700), ("large", 43 + 52))}
    for size in ("small", "large"):
        for init in ("imagenet", "scratch"):
            for cond in S3.CONDITIONS[size].values():
                side = cond.window if cond.resolution == 1.0 else proto.other_side
                net = TrunkStudyNet(cond.layers, init=init, pretrained=False)
                opt = torch.optim.AdamW([p for g in net.param_groups() for p in g["params"]], 1e-3)
                x = torch.randint(0, 255, (proto.batch_size, 3, side, side), dtype=torch.uint8)
                y = torch.randint(0, 2, (proto.batch_size,)).float()
                ts = []
                for _ in range(3):
                    t = time.process_time()
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    ts.append(time.process_time() - t)
                net.eval()
                with torch.no_grad():
                    t = time.process_time()
                    net(x[: proto.eval_batch])
                    te = (time.process_time() - t) / min(proto.eval_batch, len(x))
                step = min(ts)
                run = len(proto.seeds) * (step * proto.steps + te * evals[size])
                total += run
                print(f"{size:5s} {init:8s} {cond.name:9s} window {side:3d}: step {step:.3f} s, "
                      f"score {1000 * te:.2f} ms/window; 5 seeds {run / 60:.1f} min", flush=True)
    print(f"whole run: {total / 60:.0f} core-minutes -> about {total / 60 / 2:.0f} min on an idle "
          f"2-core machine (2 workers), plus cutting the windows ({counts} train positives)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO_DIR / "runs" / "studies")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--sizes", default="small,large")
    p.add_argument("--inits", default="imagenet,scratch")
    p.add_argument("--ship", action="store_true", help="write the tables into tinylib/weights/")
    p.add_argument("--time", action="store_true", help="measure step times and exit")
    p.add_argument("--status", action="store_true", help="say how far the run in --out is, and exit")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    proto = S3.PROTOCOL
    if a.time:
        time_steps(proto)
        return 0
    if a.status:
        print(S3.run_status(a.out, proto))
        return 0
    sizes, inits = tuple(a.sizes.split(",")), tuple(a.inits.split(","))
    start = time.time()
    frame = S3.run_section3(a.out, proto, sizes=sizes, inits=inits, source="real",
                            progress=not a.no_progress, workers=a.workers)
    logging.info("run complete in %.1f min (this session; earlier sessions' runs reused)",
                 (time.time() - start) / 60)
    curves = S3.curves(a.out, proto, sizes, inits)
    frame.to_csv(a.out / f"{S3.TABLE}.csv", index=False)
    curves.to_csv(a.out / f"{S3.CURVES}.csv", index=False)
    if a.ship:
        if sizes != ("small", "large") or inits != ("imagenet", "scratch"):
            print("--ship needs the whole run (both sizes, both inits)", file=sys.stderr)
            return 2
        import json

        run = json.loads((a.out / "run.json").read_text())
        images = {}
        for size in sizes:
            for split, keys in run["images"][size].items():
                images[f"{size}_{split}"] = keys
        seconds = frame.drop_duplicates(["init", "size", "run", "seed"])["seconds"].sum()
        notes = (
            "Section 3 studies (issue 25), protocol of tinylib.studies.section3 (fixed before "
            "any gain was looked at): MobileNetV1 x0.25 trunk, init imagenet (the data bundle's "
            "checkpoint, fine-tuned: s1-s2 frozen, s3 0.1x, BN frozen) and scratch (same "
            "architecture, random init); every usable face of the bundle's WIDER_train photos "
            "for training, test half of the WIDER val subset for the headline AP (column ap), "
            "tuning half beside (ap_tuning; the best loose stage of the context study is chosen "
            "on it); 6 (25x20) / 30 (250x200) negatives per test positive; window AP, not WIDER AP. "
            f"{len(proto.seeds)} seeds, {proto.steps} steps of {proto.batch_size}. "
            f"Training + scoring CPU seconds summed over runs: {seconds:.0f}.")
        weights = [data_root() / IMAGENET_WEIGHTS]
        prov = measured.provenance(COMMAND, weights=weights, images=images, notes=notes,
                                   source_kind="real", protocol=json.loads(json.dumps(
                                       run["protocol"], default=list)))
        measured.write_table(S3.TABLE, frame, prov)
        measured.write_table(S3.CURVES, curves, {**prov, "notes": "Training curves of "
                             f"{S3.TABLE}: loss and running AP of the training scores per "
                             "step (every 5th kept), train AP on 48 train positives and the test's ratio of negatives every "
                             "25 steps for seed 0. " + notes})
        print(f"shipped {S3.TABLE} ({len(frame)} rows) and {S3.CURVES} ({len(curves)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
