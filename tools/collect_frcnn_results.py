"""Collect the bottom-heavy comparison's runs into the tables chapter 08 reads (issue #11).

    .venv/bin/python tools/collect_frcnn_results.py [OUT=runs/bh] [--to tinylib/weights]

Reads the run folders of ``tools/train_frcnn_wider.py`` (``metrics.json``, ``ap_by_size.csv``,
``history.csv``, ``pretrain_*/result.json``) and writes ``bh_wider_runs.csv``,
``bh_wider_ap_by_size.csv``, ``bh_pretrain.csv`` and ``bh_tinyperson.csv``
(:data:`tinylib.compare.bottom_heavy.RESULT_FILES`) with their provenance (``--command``: what re-makes
the runs), then prints the summary and the deltas. A table with nothing new under ``OUT`` keeps
the shipped one, and the runs tables are written only when each backbone has a scored run from
scratch and one from pre-training.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tinylib import measured
from tinylib.compare import bottom_heavy as C
from tinylib.data import splits

COMMAND = "TINYLIB_DATA=../shared/data python tools/train_frcnn_wider.py"
NOTES = {
    "runs": "Faster R-CNN-FPN, x0.25 width, 2,500 steps x 4 crops of 256 px on CPU; each run scored on all "
            "the WIDER val subset's photos (half 'all') and on its tuning and test halves apart; the chapter "
            "reports the test half (no setting of these runs was chosen on the val photos)",
    "by_size": "AP per face-size bin of the hard set, per run, on all the photos and on each half",
    "pretrain": "WIDER-32 stand-in pre-training, x0.25 width: trained on 32x32 crops of the WIDER train photos, "
                "top-1 on crops of the val photos (a score only: nothing is chosen on it)",
    "tinyperson": "the tiny-person world (scale-matched synthetic persons), TinyPerson's ranges",
}


def complete(runs) -> str | None:
    """Why a runs table is not ready to ship (``None`` when it is): each backbone needs a scored
    run from scratch and one from pre-training."""
    if runs.empty:
        return "no scored run"
    have = set(zip(runs["backbone"], runs["init"]))
    missing = [f"{bb} {init}" for bb in ("resnet50", "bh_resnet50") for init in ("scratch", "pretrained")
               if (bb, init) not in have]
    return f"no scored run of {', '.join(missing)}" if missing else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", nargs="?", default="runs/bh", type=Path)
    p.add_argument("--to", default=str(C.WEIGHTS_DIR), type=Path)
    p.add_argument("--command", default=COMMAND, help="the command that re-makes the runs (provenance)")
    args = p.parse_args(argv)
    tables = {"runs": C.collect_runs(args.out), "by_size": C.collect_by_size(args.out),
              "pretrain": C.collect_pretrain(args.out), "tinyperson": C.collect_tinyperson(args.out)}
    why = complete(tables["runs"])
    if why:
        print(f"not writing {C.RESULT_FILES['runs']} and {C.RESULT_FILES['by_size']}: {why} under {args.out}")
    for key, df in tables.items():
        if df.empty or (why and key in ("runs", "by_size")):  # never replace a shipped table by less
            print(f"{C.RESULT_FILES[key]}: kept (nothing new under {args.out})")
            continue
        images = None
        if key in ("runs", "by_size"):
            images = {h: splits.half_keys(h) for h in splits.HALVES}
        prov = measured.provenance(args.command, images=images, notes=NOTES[key],
                                   **({"runs": sorted(set(df["run"]))} if "run" in df else {}))
        if key == "pretrain":  # crops, not listed photos: their counts (no image-list hash)
            prov["images"] = {"WIDER-32 crops of the train photos (training)": {"n": int(df["n_train"].max()), "hash": None},
                              "WIDER-32 crops of the val photos (top-1)": {"n": int(df["n_test"].max()), "hash": None}}
        measured.write_table(C.RESULT_TABLES[key], df, prov, args.to)
        print(f"{C.RESULT_FILES[key]}: {len(df)} rows")
    if len(tables["runs"]):
        summary = C.seed_summary(tables["runs"])
        print(summary.round(4).to_string())
        if {"resnet50", "bh_resnet50"} <= set(summary["backbone"]):
            print(C.backbone_delta(summary).round(4).to_string())
        print(C.pretrain_gain(tables["runs"]).round(4).to_string())
    print(tables["pretrain"].to_string())
    print(tables["tinyperson"].round(4).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
