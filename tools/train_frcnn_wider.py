"""Every run of the bottom-heavy comparison (issue #11, chapter 08), on two CPU workers.

    TINYLIB_DATA=../shared/data .venv/bin/python tools/train_frcnn_wider.py [--out runs/bh] [--workers 2]

Tasks, for each of ResNet-50 and BH-ResNet50 (``configs/frcnn_<bb>_wider_cpu.yaml`` etc.):

1. ``<bb>_s0``, ``<bb>_s1``: from scratch on the real WIDER train photos, seeds ``--seeds`` (0 and 1); each
   scored on the whole WIDER val subset by ``tools/eval_frcnn_wider.py`` (``metrics.json``,
   ``ap_by_size.csv``, ``predictions.npz``);
2. ``pretrain_<bb>``: tiny-image pre-training (``configs/pretrain_<bb>_cpu.yaml``), then
   ``<bb>_pre_s<seed>``: the WIDER recipe from it, seeds ``--pre-seeds`` (0 and 1, as the
   shipped tables), scored like the runs from scratch;
3. ``<bb>_tinyperson``: the TinyPerson protocol on the tiny-person world (``--no-tinyperson``: skipped).

Each task runs as a subprocess with one thread; ``--workers`` of them at a time, each taking
the first task whose inputs are ready (the order below puts the longest chains first, and each
detector's scoring right after it, so seed 0's numbers arrive before seed 1 trains). A task
whose output exists is skipped; an unfinished training run resumes from its ``last.pt``. Logs:
``<out>/logs/<task>.log``. At the end ``tools/collect_frcnn_results.py`` writes the tables.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from _schedule import exit_status, run_tasks  # tools/_schedule.py

BACKBONES = ("resnet50", "bh_resnet50")


def tasks(out: Path, py: str, pre_seeds=(0, 1), seeds=(0, 1), tinyperson=True) -> list[dict]:
    def det(name, cfg, *sets, after=()):
        run = out / name
        cmd = [py, "-m", "tinylib.frcnn.train", cfg, "--threads", "1", "--no-progress", "--out", str(run),
               "--export", str(run / "weights.pt"), *[a for s in sets for a in ("--set", s)]]
        return {"name": name, "done": run / "weights.pt", "after": list(after), "cmd": cmd,
                "resume": run / "last.pt"}

    def ev(name):
        run = out / name
        return {"name": f"eval {name}", "done": run / "metrics.json", "after": [name],
                "cmd": [py, "tools/eval_frcnn_wider.py", str(run), "--threads", "1"]}

    t = []
    for bb in BACKBONES:  # the longest chains first: pre-training, then its detectors
        pre = out / f"pretrain_{bb}"
        t.append({"name": f"pretrain_{bb}", "done": pre / "backbone.pt", "after": [], "resume": pre / "last.pt",
                  "cmd": [py, "-m", "tinylib.frcnn.pretrain", f"configs/pretrain_{bb}_cpu.yaml", "--threads", "1",
                          "--no-progress", "--out", str(pre)]})
    for seed in sorted(set(seeds) | set(pre_seeds)):  # each detector's scoring right after it, seed by seed
        for bb in BACKBONES:
            if seed in seeds:
                t += [det(f"{bb}_s{seed}", f"configs/frcnn_{bb}_wider_cpu.yaml", f"train.seed={seed}"),
                      ev(f"{bb}_s{seed}")]
            if seed in pre_seeds:
                t += [det(f"{bb}_pre_s{seed}", f"configs/frcnn_{bb}_wider_cpu.yaml", f"train.seed={seed}",
                          f"model.backbone_weights={out / f'pretrain_{bb}' / 'backbone.pt'}",
                          after=[f"pretrain_{bb}"]),
                      ev(f"{bb}_pre_s{seed}")]
    if tinyperson:
        for bb in BACKBONES:
            t.append(det(f"{bb}_tinyperson", f"configs/frcnn_{bb}_tinyperson_cpu.yaml",
                         "data.root=$(tiny_person_world)"))
    return t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/bh", type=Path)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seeds", default="0,1", help="seeds of the runs from scratch")
    p.add_argument("--pre-seeds", default="0,1", help="seeds of the runs from pre-trained weights")
    p.add_argument("--tinyperson", action=argparse.BooleanOptionalAction, default=True,
                   help="also the TinyPerson-protocol runs (--no-tinyperson: the WIDER runs only)")
    args = p.parse_args(argv)
    py = sys.executable
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    seeds = lambda v: tuple(int(x) for x in v.split(",") if x)  # noqa: E731
    todo = tasks(args.out, py, seeds(args.pre_seeds), seeds(args.seeds), args.tinyperson)
    world = []

    def with_world(cmd):  # the tiny-person world, rendered once (under the scheduler's lock)
        if not world:
            world.append(subprocess.run(
                [py, "-c", "from tinylib.data.scale_match import tiny_person_world as w; print(w())"],
                env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        return [f"data.root={world[0]}" if c == "data.root=$(tiny_person_world)" else c for c in cmd]

    for t in todo:
        if "data.root=$(tiny_person_world)" in t["cmd"]:
            t["prepare"] = with_world
    failed = run_tasks(todo, args.out / "logs", args.workers, env)
    argv = sys.argv[1:] if argv is None else argv
    subprocess.run([py, "tools/collect_frcnn_results.py", str(args.out), "--command",
                    shlex.join(["TINYLIB_DATA=../shared/data", "python", "tools/train_frcnn_wider.py", *argv])],
                   env=env)
    return exit_status(failed)


if __name__ == "__main__":
    raise SystemExit(main())
