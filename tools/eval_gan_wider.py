"""The GAN detector on the real WIDER val images of the data root: proposals alone vs re-scored.

    TINYLIB_DATA=../shared/data .venv/bin/python tools/eval_gan_wider.py \
        [--weights tinylib/weights/gan_wider.pt] [--extra name=PATH ...] [--n N] \
        [--budget 150] [--out build/gan_wider_subset]

Scores every row on the **tuning** and the **test** half of the WIDER val subset apart
(:mod:`tinylib.data.splits`); which re-scoring variant is the detector ("fused" or not, with
or without box regression) is chosen on the tuning half (``chosen``). With ``--ship`` the
tables ``gan_wider_subset`` (detection per variant and half) and ``gan_sr`` (PSNR/SSIM) go
into ``tinylib/weights/`` with their provenance (:mod:`tinylib.measured`).

Writes ``<out>/detection.csv`` (easy/medium/hard AP of the HR proposals and of each model
re-scored: the discriminator's face probability, the paper's score, and its geometric mean
with the proposal score, ours; each with and without the box regression), ``recall.csv``
(proposal recall by face size), ``ranking.csv`` (how well each score separates proposals
that hit a face, by proposal size: AUC, precision of the top 100) and ``sr.csv`` (PSNR/SSIM on held-apart val faces). The
numbers in notebook 09's "we get" and the weights README come from this script.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd
import torch

from tinylib import measured
from tinylib.compare import wider_subset as C
from tinylib.config import data_root
from tinylib.data import splits
from tinylib.data.widerface import WiderFaceDataset
from tinylib.eval import widerface as W
from tinylib.gan.detector import load_gan
from tinylib.gan.evaluate import detection_table, held_apart_faces, ranking_by_size, sr_quality
from tinylib.gan.train import proposal_outputs, proposal_stage, rescore_many, select_proposals
from tinylib.hr.detect import to_wider
from tinylib.io import atomic_write_text

VARIANTS = {"rescored": {}, "rescored, no box regression": {"use_reg": False},
            "fused (geometric mean)": {"fuse": "geometric"},
            "fused, no box regression": {"fuse": "geometric", "use_reg": False}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", default="tinylib/weights/gan_wider.pt")
    p.add_argument("--extra", action="append", default=[], metavar="NAME=PATH",
                   help="more models (ablations), re-scored the same way")
    p.add_argument("--n", type=int, default=None, help="evenly spread sample of N val images")
    p.add_argument("--budget", type=int, default=150)
    p.add_argument("--out", default="build/gan_wider_subset")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-sr", action="store_true")
    p.add_argument("--ship", action="store_true",
                   help="write gan_wider_subset and gan_sr into tinylib/weights/ with provenance")
    p.add_argument("--ablation-csv", default=None, metavar="PATH",
                   help="also write the ablation table notebook 09 reads: 'ours' = --weights "
                        "(context x2, so also 'margin_2'), one row per --extra, hard AP re-scored")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gt = W.load_gt()
    images = C.subset_images(gt, data_root(), n=args.n)
    keys = list(images)
    halves = splits.halves(keys)
    label = W.subset_label(len(keys))
    det, wpath = proposal_stage(True)
    raws = C.hr_raw(det, images, weights_id=C.weights_id(wpath), progress=True)
    props = select_proposals(raws, budget=args.budget)
    preds = {"proposals (HR detector)": {k: to_wider(v[:, :4], v[:, 4]) for k, v in props.items()}}
    recall = C.recall_by_size(preds["proposals (HR detector)"], gt, keys, score_threshold=0.0,
                              bins=(0, 20, 50, 1e9))
    atomic_write_text(out / "recall.csv", recall.to_csv())
    print(label, "proposal recall\n", recall.round(3).to_string(), flush=True)
    models = {"GAN": args.weights, **dict(e.split("=", 1) for e in args.extra)}
    sr_rows = []
    val = WiderFaceDataset(root=data_root(), split="val")
    for name, path in models.items():
        model = load_gan(path)
        outs = proposal_outputs(model, images, props, progress=True)
        res = rescore_many(model, images, props, variants=VARIANTS, outputs=outs)
        for v, pr in res.items():
            preds[f"{name}: {v}"] = pr
        table = detection_table(preds, gt, keys)
        atomic_write_text(out / "detection.csv", table.to_csv())
        print(table.round(3).to_string(), flush=True)
        if name == "GAN":
            scores = {"HR detector": {k: v[:, 4] for k, v in props.items()},
                      "GAN discriminator": {k: o[0] for k, o in outs.items()},
                      "fused": {k: (props[k][:, 4] * outs[k][0]) ** 0.5 for k in keys}}
            rank = ranking_by_size(props, scores, gt, keys)
            atomic_write_text(out / "ranking.csv", rank.to_csv())
            print(rank.round(3).to_string(), flush=True)
        if not args.no_sr:
            lr, hr = held_apart_faces(val, n=300, hr_size=model.config["lr_size"] * model.config["scale"],
                                      margin=model.config["margin"], scale=model.config["scale"])
            q = sr_quality(model, lr, hr)
            q.insert(0, "model", name)
            sr_rows.append(q)
            atomic_write_text(out / "sr.csv", pd.concat(sr_rows).to_csv())
            print(q.round(3).to_string(), flush=True)
    long = []
    for half, hkeys in halves.items():
        t = detection_table(preds, gt, hkeys)
        t = t.reset_index().rename(columns={t.index.name or "index": "row"})
        t.insert(1, "half", half)
        t.insert(2, "images", len(hkeys))
        long.append(t)
    long = pd.concat(long, ignore_index=True)
    tun = long[(long["half"] == "tuning") & long["row"].str.startswith("GAN: ")]
    best = tun.sort_values("hard", ascending=False, kind="stable")["row"].iloc[0]
    long["chosen"] = long["row"] == best
    atomic_write_text(out / "detection_halves.csv", long.to_csv(index=False))
    print(f"chosen on the tuning half: {best}")
    if args.ship:
        cmd = "TINYLIB_DATA=../shared/data python tools/eval_gan_wider.py --ship"
        weights = [args.weights, "tinylib/weights/hr_mnet025_wider.pt"]
        notes = ("HR proposals re-scored by the GAN discriminator; the variant marked chosen "
                 "was picked by hard AP on the tuning half; the test half only reports.")
        measured.write_table("gan_wider_subset", long,
                             measured.provenance(cmd, weights=weights, images=halves, notes=notes))
        if sr_rows:
            srt = pd.concat(sr_rows).reset_index().rename(columns={"index": "kind"})
            measured.write_table("gan_sr", srt, measured.provenance(
                cmd, weights=weights, images={"val photos the faces are cut from": keys},
                notes=f"PSNR/SSIM on {len(lr)} real val face crops (never trained on), "
                      "16->64 px"))
    if args.ablation_csv:
        rows = {"ours": table.loc["GAN: rescored"], "margin_2": table.loc["GAN: rescored"]}
        rows.update({name: table.loc[f"{name}: rescored"] for name in models if name != "GAN"})
        abl = pd.DataFrame(rows).T
        abl["eval_set"] = label
        atomic_write_text(Path(args.ablation_csv), abl.to_csv())
        print(abl.round(3).to_string())
    print(f"written: {out}/detection.csv, recall.csv, ranking.csv, sr.csv ({label})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
