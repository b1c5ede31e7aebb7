"""Every run of the toolbox measurement (issue #13, chapter 10), on two CPU workers.

    TINYLIB_DATA=../shared/data .venv/bin/python tools/train_toolbox.py [--out runs/toolbox] \
        [--workers 2] [--seeds 0,1] [--to tinylib/weights]

Tasks (:mod:`tinylib.compare.toolbox`):

1. ``pretrain_resnet50``: the WIDER-32 tiny-image pre-training of the backbone
   (``configs/pretrain_resnet50_cpu.yaml``), then ``base``: the start detector, 2,500 steps of
   ``configs/frcnn_resnet50_wider_cpu.yaml`` from it, seed 0 -- both exactly chapter 08's runs
   ``pretrain_resnet50`` and ``resnet50_pre_s0`` (copy those folders in to skip them);
2. ``baseline_s<seed>`` and ``<technique>_s<seed>`` for every ``train``/``model`` technique:
   ``configs/toolbox_frcnn_cpu.yaml`` with the technique's overrides (written to
   ``RUN/recipe.yaml``), 500 steps on from ``base``; each scored on the whole WIDER val
   subset by ``tools/eval_frcnn_wider.py`` (``metrics.json``);
3. the test-time settings on each baseline's weights, on an evenly spread 100 val images
   (``tools/eval_frcnn_wider.py --tta SETTING --n 100``), the plain 1x pass among them.

Each task is a subprocess with one thread; a finished task is skipped and an unfinished
training run resumes from its ``last.pt`` (``tools/_schedule.py``). At the end the runs are
collected into ``<to>/toolbox_runs.csv`` and the table is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml
from _schedule import exit_status, run_tasks  # tools/_schedule.py

from tinylib import measured
from tinylib.compare import toolbox as T
from tinylib.compare.bottom_heavy import WEIGHTS_DIR
from tinylib.data import splits
from tinylib.engine.recipe import load_config
from tinylib.engine.tta import TTA_SETTINGS
from tinylib.io import atomic_write_text

COMMAND = "TINYLIB_DATA=../shared/data python tools/train_toolbox.py"
NOTES = ("x0.25 Faster R-CNN-FPN, 500 CPU steps per run on from one trained detector (chapter 08's resnet50_pre_s0); "
         "each training run scored on all the WIDER val subset's photos (half 'all') and on its tuning and test "
         "halves apart; the test-time settings on an evenly spread 100 of the photos (half 'all') and on those of "
         "each half. No setting of these runs was chosen on the val photos; the chapter reports the test half.")


def tasks(out: Path, py: str, seeds=(0, 1)) -> list[dict]:
    base = load_config(T.BASE_RECIPE)
    pre = out / "pretrain_resnet50"
    t = [{"name": "pretrain_resnet50", "done": pre / "backbone.pt", "after": [], "resume": pre / "last.pt",
          "cmd": [py, "-m", "tinylib.frcnn.pretrain", "configs/pretrain_resnet50_cpu.yaml", "--threads", "1",
                  "--no-progress", "--out", str(pre)]}]
    start = out / "base"
    t.append({"name": "base", "done": start / "weights.pt", "after": ["pretrain_resnet50"], "resume": start / "last.pt",
              "cmd": [py, "-m", "tinylib.frcnn.train", T.START_RECIPE, "--threads", "1", "--no-progress",
                      "--out", str(start), "--export", str(start / "weights.pt"), "--set", "train.seed=0",
                      "--set", f"model.backbone_weights={pre / 'backbone.pt'}"]})
    trained = ["baseline", *(k for k, v in T.TECHNIQUES.items() if v["kind"] != "test")]
    for seed in seeds:  # each run then its scoring: a worker scores what it has just trained
        for tech in trained:
            run = out / f"{tech}_s{seed}"
            run.mkdir(parents=True, exist_ok=True)
            recipe = run / "recipe.yaml"
            text = yaml.safe_dump(T.variant_recipe(base, tech), sort_keys=False)
            if not recipe.is_file() or recipe.read_text() != text:
                atomic_write_text(recipe, text)
            t.append({"name": run.name, "done": run / "weights.pt", "after": ["base"],
                      "resume": run / "last.pt",
                      "cmd": [py, "-m", "tinylib.frcnn.train", str(recipe), "--threads", "1", "--no-progress",
                              "--out", str(run), "--export", str(run / "weights.pt"),
                              "--set", f"train.seed={seed}", "--set", f"model.init_weights={start / 'weights.pt'}"]})
            t.append({"name": f"eval {run.name}", "done": run / "metrics.json", "after": [run.name],
                      "cmd": [py, "tools/eval_frcnn_wider.py", str(run), "--threads", "1"]})
    for seed in seeds:
        run = out / f"baseline_s{seed}"
        for setting in TTA_SETTINGS:
            t.append({"name": f"tta {setting} {run.name}", "done": T.tta_result_path(run, setting), "after": [run.name],
                      "cmd": [py, "tools/eval_frcnn_wider.py", str(run), "--threads", "1", "--tta", setting,
                              "--n", str(T.TTA_IMAGES)]})
    return t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/toolbox", type=Path)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--to", default=str(WEIGHTS_DIR), type=Path, help="where toolbox_runs.csv goes")
    args = p.parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    todo = tasks(args.out, sys.executable, tuple(int(v) for v in args.seeds.split(",") if v))
    failed = run_tasks(todo, args.out / "logs", args.workers, env)
    runs = T.collect_toolbox(args.out)
    if len(runs):
        prov = measured.provenance(COMMAND, images={h: splits.half_keys(h) for h in splits.HALVES}, notes=NOTES)
        measured.write_table(T.RESULT_TABLE, runs.round(5), prov, args.to)
        print(f"{args.to / T.RESULT_FILE}: {len(runs)} rows")
        print(T.toolbox_table(runs).drop(columns=["survey"]).round(4).to_string())
    return exit_status(failed)


if __name__ == "__main__":
    raise SystemExit(main())
