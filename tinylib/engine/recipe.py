"""The recipe every detector trains from, and the command line every recipe trainer shares.

A recipe is a YAML file (``configs/*.yaml``) with the sections ``name`` (default: the file's
stem), ``model``, ``data``, ``train`` (the :class:`tinylib.engine.loop.TrainConfig` settings),
``eval`` and ``notes``; what ``model``, ``data`` and ``eval`` hold is the detector's business
(:mod:`tinylib.hr.train`, :mod:`tinylib.frcnn.train`, :mod:`tinylib.frcnn.pretrain`,
:mod:`tinylib.gan.train`), which checks them with :func:`check_settings`.

* :func:`load_config` reads a recipe (errors name the file), :func:`apply_overrides` applies
  ``--set section.key=value`` overrides;
* :func:`recipe_main` is the shared command line (``python -m tinylib.<pkg>.train CONFIG``:
  ``--out``, ``--resume`` / ``--overwrite``, ``--set``, ``--threads``, ``--no-progress``,
  ``--export``), with its exit codes; :func:`history_trainer` turns a trainer
  ``run(cfg, *, out_dir, resume, progress, export, overwrite)`` into the ``run_recipe`` it takes;
* :func:`epoch_summary` condenses a step history per epoch, written beside exported weights at
  :func:`history_path`.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
from pathlib import Path

import torch
import yaml

from .loop import NonFiniteLossError
from .runs import check_run_dir

__all__ = ["load_config", "apply_overrides", "check_settings", "history_path", "epoch_summary",
           "recipe_main", "history_trainer"]


def load_config(path) -> dict:
    """Read a recipe; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config not found: {path}")
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a mapping with model/data/train/eval sections")
    unknown = sorted(set(cfg) - {"name", "model", "data", "train", "eval", "notes"})
    if unknown:
        raise ValueError(f"{path}: unknown sections {unknown}")
    cfg.setdefault("name", path.stem)
    return cfg


def apply_overrides(cfg: dict, overrides: list[str]) -> dict:
    """``["train.epochs=2", "model.depth=50"]`` -> a new config (values parsed as YAML)."""
    cfg = copy.deepcopy(cfg)
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override {item!r}: expected section.key=value")
        key, value = item.split("=", 1)
        node = cfg
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(value)
    return cfg


def check_settings(given: dict | None, defaults: dict, *, section: str = "data", sources=None) -> dict:
    """A recipe section: ``defaults`` updated with ``given``. An unknown key raises naming the
    known ones; with ``sources``, a ``source`` outside them raises naming them."""
    unknown = sorted(set(given or {}) - set(defaults))
    if unknown:
        raise ValueError(f"unknown {section} settings {unknown}; known: {sorted(defaults)}")
    d = {**defaults, **(given or {})}
    if sources is not None and d["source"] not in sources:
        raise ValueError(f"{section}.source must be one of {tuple(sources)}, got {d['source']!r}")
    return d


def history_path(weights) -> Path:
    """Where the per-epoch summary of an exported checkpoint's training lives."""
    weights = Path(weights)
    return weights.with_name(weights.stem + "_history.csv")


def epoch_summary(hist):
    """Per-epoch means of the step losses, the last lr, the wall-clock seconds at the epoch's
    end and any evaluation columns (``ap_*``) of an :func:`tinylib.engine.train` history."""
    num = hist.select_dtypes("number")
    loss_cols = [c for c in num.columns if c.startswith("loss")]
    g = num.groupby("epoch")
    out = g[loss_cols].mean()
    out["step"] = g["step"].max()
    out["lr"] = g["lr"].last()
    out["seconds"] = g["seconds"].max()
    for c in [c for c in num.columns if c.startswith("ap_")]:
        out[c] = g[c].last()
    return out.reset_index()


def recipe_main(argv, *, prog: str, description: str, run_recipe, export: bool = True) -> int:
    """The command line every recipe trainer shares (``python -m tinylib.<pkg>.train CONFIG``):
    ``--out DIR`` (default ``runs/<name>``), ``--resume`` / ``--overwrite``, ``--set KEY=VALUE``
    (repeatable), ``--threads N``, ``--no-progress`` and, with ``export``, ``--export PATH``.
    ``run_recipe(cfg, out, args)`` trains (passing ``args.resume`` and ``args.overwrite`` on)
    and returns the line to print. The run folder is checked first
    (:func:`tinylib.engine.check_run_dir`): a folder that holds a run needs ``--resume`` or
    ``--overwrite``, ``--resume`` needs ``<out>/last.pt``. Exit codes: 0 done, 2 a bad recipe,
    missing data, a refused run folder or an incompatible checkpoint (the message names it
    and the fix), 3 a non-finite loss."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("config", help="YAML recipe (configs/*.yaml)")
    p.add_argument("--out", default=None, help="checkpoint directory (default: runs/<name>)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--resume", action="store_true",
                     help="continue the run in <out> from <out>/last.pt (an error if it is missing)")
    how.add_argument("--overwrite", action="store_true",
                     help="start a new run in <out> although it holds one: the old run's files "
                          "(last.pt, history.csv, weights ...) are moved to "
                          "<out>/replaced-<time>/ once the new run is set up, never deleted")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set train.epochs=2")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    if export:
        p.add_argument("--export", default=None, help="write fp16 inference weights here at the end")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    name = prog.split()[-1]
    try:
        cfg = apply_overrides(load_config(args.config), args.set)
    except (FileNotFoundError, ValueError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or str(Path("runs") / cfg.get("name", Path(args.config).stem))
    try:
        check_run_dir(out, resume=args.resume or None, overwrite=args.overwrite)
        message = run_recipe(cfg, out, args)
    except NonFiniteLossError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 3
    except (FileNotFoundError, FileExistsError, ValueError, TypeError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    print(message)
    return 0


def history_trainer(run_fn):
    """``run_recipe`` for :func:`recipe_main` from a trainer ``run_fn(cfg, *, out_dir, resume,
    progress, export) -> (model, history DataFrame)`` (the HR and Faster R-CNN trainers): it
    trains and reports the steps, the last history row and where the checkpoints are."""
    def _run(cfg, out, args):
        _, hist = run_fn(cfg, out_dir=out, resume=args.resume, progress=not args.no_progress,
                         export=args.export, overwrite=args.overwrite)
        last = hist.iloc[-1].to_dict() if len(hist) else {}
        return f"done: {len(hist)} steps; last row: {last}; checkpoints in {out}"

    return _run
