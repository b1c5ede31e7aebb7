"""Collect the bottom-heavy comparison's runs into the tables chapter 08 reads (issue #11).

    .venv/bin/python tools/collect_frcnn_results.py [OUT=runs/bh] [--to tinylib/weights]

Reads the run folders of ``tools/train_frcnn_wider.py`` (``metrics.json``, ``ap_by_size.csv``,
``history.csv``, ``pretrain_*/result.json``) and writes ``bh_wider_runs.csv``,
``bh_wider_ap_by_size.csv``, ``bh_pretrain.csv`` and ``bh_tinyperson.csv``
(:data:`tinylib.frcnn.compare.RESULT_FILES`), then prints the summary and the deltas.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tinylib.frcnn import compare as C
from tinylib.io import atomic_write_text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", nargs="?", default="runs/bh", type=Path)
    p.add_argument("--to", default=str(C.WEIGHTS_DIR), type=Path)
    args = p.parse_args(argv)
    tables = {"runs": C.collect_runs(args.out), "by_size": C.collect_by_size(args.out),
              "pretrain": C.collect_pretrain(args.out), "tinyperson": C.collect_tinyperson(args.out)}
    for key, df in tables.items():
        atomic_write_text(args.to / C.RESULT_FILES[key], df.to_csv(index=False, float_format="%.5g"))
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
