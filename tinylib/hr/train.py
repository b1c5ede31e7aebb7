"""Train the HR detector from a YAML recipe: ``python -m tinylib.hr.train CONFIG [options]``.

A recipe has four sections (see ``configs/hr_res18_synth_quick.yaml`` and
``configs/hr_res101_wider.yaml``)::

    model: {depth: 18, caffe_style: false, pretrained: auto, use_res5: false, templates: hr25}
    data:  {source: synthetic | wider, scales: [0.5, 1, 2], crop: 500, flip: true}
    train: {epochs, lr, momentum, weight_decay, batch_size, ...}   # tinylib.engine.TrainConfig
    eval:  {max_images: 40, max_side: 1024, every: 1}               # synthetic val AP

``templates``: ``hr25`` (the paper's ``RefBox_N25_scaled``, from the data root), ``hr25_raw``
(``RefBox_N25``) or an explicit list of ``[w, h, scale]`` rows. ``data.source: synthetic``
trains on ``tinylib.data.synthetic.quick_world()`` (quick or full per ``TINYLIB_QUICK``);
``wider`` on the real WIDER FACE train images under the data root.

Options: ``--out DIR`` (checkpoints, ``history.csv``), ``--resume`` (continue from
``DIR/last.pt``), ``--overwrite`` (start a new run in a folder that holds one; the old run's
files are moved to ``DIR/replaced-<time>/``), ``--set train.epochs=2`` (override any key),
``--threads N`` (``torch.set_num_threads``), ``--export PATH`` (write fp16 inference weights
at the end). Runs are append-only: without ``--resume`` or ``--overwrite`` a folder that
already holds a run is refused. The initial weights follow ``train.seed``, so one recipe
gives one loss curve, fresh or resumed.
Multi-GPU / multi-node: ``torchrun --nproc-per-node 8 -m tinylib.hr.train CONFIG``.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from .. import engine
from ..config import REPO_DIR, data_root, runtime
from ..data.images import read_image
from ..data.synthetic import quick_world
from ..data.transforms import Compose, HorizontalFlip, RandomCrop, RandomRescale
from ..data.widerface import WiderFaceDataset, load_eval_gt
from ..engine import NonFiniteLossError
from ..eval.widerface import evaluate, spread
from ..io import atomic_write_text
from .detect import SYNTHETIC_WEIGHTS, Detector, load_detector, save_weights, to_wider
from .model import RGB_MEAN, build_hr, collate
from .templates import Templates, hr_template_set

log = logging.getLogger(__name__)

__all__ = ["PaperSampling", "paper_sampling", "load_config", "apply_overrides", "build_model",
           "build_train_set", "make_eval_fn", "evaluate_world", "epoch_summary", "history_path", "run",
           "recipe_main", "check_settings", "history_trainer", "main"]


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


def resolve_templates(spec):

    if spec is None or spec == "hr25":
        return hr_template_set(scaled=True)
    if spec == "hr25_raw":
        return hr_template_set(scaled=False)
    if isinstance(spec, dict):
        return Templates.from_any(spec)
    arr = np.asarray(spec, dtype=float)
    if arr.ndim == 2 and arr.shape[1] == 3:
        return Templates(arr[:, :2], arr[:, 2])
    return Templates.from_any(arr)


def build_model(mcfg: dict):
    """The recipe's model. ``init``: start from the weights of a trained HR detector with
    the same architecture and templates (``synthetic`` = the shipped synthetic-world
    ResNet-18, :data:`~tinylib.hr.detect.SYNTHETIC_WEIGHTS`; or a path, relative to the
    repository) instead of the backbone's own initialisation. ``init_strict: false`` lets the
    recipe's model have parts the init lacks (e.g. a ``use_res5`` branch added to a res3+res4
    model): those keep their own initialisation (ImageNet for backbone stages)."""
    m = dict(mcfg or {})
    templates = resolve_templates(m.pop("templates", "hr25"))
    depth = int(m.pop("depth", 18))
    init = m.pop("init", None)
    init_strict = bool(m.pop("init_strict", True))
    model = build_hr(templates, depth, **m)
    if init:
        path = SYNTHETIC_WEIGHTS if init == "synthetic" else Path(init)
        if not path.is_absolute() and not path.is_file():
            path = REPO_DIR / path
        start = load_detector(path).state_dict()
        own = model.state_dict()
        shapes = [k for k in start if k in own and start[k].shape != own[k].shape]
        if shapes or set(start) - set(own):
            raise ValueError(f"model.init {path}: its architecture or templates differ from "
                             f"the recipe's (mismatched: {(shapes + sorted(set(start) - set(own)))[:5]})")
        new = sorted(set(own) - set(start))
        if new and init_strict:
            raise ValueError(f"model.init {path} lacks {len(new)} tensors of the recipe's model "
                             f"(e.g. {new[:3]}); set model.init_strict: false to keep their own "
                             "initialisation")
        model.load_state_dict(start, strict=False)
        log.info("model initialised from %s%s", path,
                 f" ({len(new)} tensors keep their own initialisation, e.g. {new[:2]})" if new else "")
    return model


def paper_sampling(scales=(0.5, 1.0, 2.0), crop: int = 500, flip: bool = True,
                   min_visible: float = 0.5):
    """The supplementary's input sampling for the HR detector, built from the generic
    transforms: rescale by a random factor of ``scales`` (0.5, 1, 2), a random
    ``crop x crop`` window padded with the RGB mean, a horizontal flip with probability 1/2.
    The transforms carry ``target["valid"]``, the region of real pixels, so the targets
    ignore windows that reach into the padding ("Border cases"); faces cut by the crop keep
    their clipped box when at least ``min_visible`` of their area remains, else become
    ``ignore``."""

    steps = [RandomRescale(tuple(float(s) for s in scales)),
             RandomCrop(int(crop), pad_value=RGB_MEAN, min_visible=min_visible)]
    if flip:
        steps.append(HorizontalFlip(0.5))
    return Compose(steps)


PaperSampling = paper_sampling  # the name the recipes and notebook 07 use


def build_train_set(dcfg: dict, seed: int = 0):
    """The training dataset of a recipe with :class:`PaperSampling`."""

    d = dict(dcfg or {})
    source = d.pop("source", "synthetic")
    if source == "synthetic":
        root = quick_world()
    elif source == "wider":
        root = data_root()
    else:
        raise ValueError(f"data.source must be 'synthetic' or 'wider', got {source!r}")
    split = d.pop("split", "train")
    tf = paper_sampling(**d)
    return WiderFaceDataset(root, split, transform=tf, seed=seed)


def evaluate_world(model, root=None, split: str = "val", *, max_images: int | None = None,
                   max_side: int = 1024, progress: bool = False, detector_kw: dict | None = None):
    """Detect on the WIDER-layout ``split`` images under ``root`` (default: the synthetic
    world) and evaluate with the WIDER evaluator, ground truth restricted to the images
    used. ``max_images`` takes that many images evenly spread over the split's file order
    (every event is represented). Returns ``(WiderResult, predictions key -> (N, 5))``."""

    root = root or quick_world()
    ds = WiderFaceDataset(root, split)
    idx = spread(list(range(len(ds))), max_images)
    kw = {"score_threshold": 0.05, "max_side": max_side}
    kw.update(detector_kw or {})
    det = Detector(model, **kw)
    images = [read_image(ds.paths[i]) for i in idx]
    results = det.detect_many(images, progress=progress)
    preds = {ds.target(i)["image_id"]: to_wider(*r) for i, r in zip(idx, results)}
    gt = load_eval_gt(root)
    return evaluate(preds, gt, subset=list(preds)), preds


def make_eval_fn(ecfg: dict | None, epochs: int | None = None, source: str = "synthetic"):
    """Val AP (synthetic world, or the real WIDER val images present when ``source`` is
    ``wider``) after every ``every``-th epoch and the last one."""
    if not ecfg:
        return None
    e = dict(ecfg)
    every = int(e.get("every", 1))

    def _eval(model, epoch):
        if epoch % every and epoch != epochs:
            return {}
        root = None
        if source == "wider":
            root = data_root()
        res, _ = evaluate_world(model, root, max_images=e.get("max_images"),
                                max_side=int(e.get("max_side", 1024)))
        log.info("epoch %d: %s val AP %s", epoch, source, res.ap)
        return {f"ap_{k}": v for k, v in res.ap.items()}

    return _eval


def run(cfg: dict, *, out_dir=None, resume=False, progress: bool = True, export=None,
        overwrite: bool = False):
    """Train per recipe; returns ``(model, history DataFrame)``. The initial weights depend
    only on ``train.seed`` (the caller's random state is left alone). ``resume`` /
    ``overwrite``: as :func:`tinylib.engine.train` (a folder holding a run is refused
    without one of them)."""

    tcfg = dict(cfg.get("train", {}))
    if out_dir is not None:
        tcfg["out_dir"] = str(out_dir)
    engine.check_run_dir(tcfg.get("out_dir"), resume=resume or None, overwrite=overwrite)
    with engine.seeded(int(tcfg.get("seed", 0))):
        model = build_model(cfg.get("model", {}))
    train_set = build_train_set(cfg.get("data", {}), seed=int(tcfg.get("seed", 0)))
    hist = engine.train(model, train_set, collate_fn=collate, config=tcfg,
                        device=runtime().device, resume=resume or None, overwrite=overwrite,
                        eval_fn=make_eval_fn(cfg.get("eval"), int(tcfg.get("epochs", 1)),
                                             cfg.get("data", {}).get("source", "synthetic")),
                        progress=progress,
                        extra_config={"recipe": cfg, "model": dict(model.config)})
    if engine.is_main_process():
        if tcfg.get("out_dir"):

            atomic_write_text(Path(tcfg["out_dir"]) / "history.csv", hist.to_csv(index=False))
        if export:
            save_weights(model, export, meta={"recipe": cfg.get("name", ""),
                                              "steps": int(hist["step"].max())})
            atomic_write_text(history_path(export), epoch_summary(hist).to_csv(index=False))
    return model, hist


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
        engine.check_run_dir(out, resume=args.resume or None, overwrite=args.overwrite)
        message = run_recipe(cfg, out, args)
    except NonFiniteLossError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 3
    except (FileNotFoundError, FileExistsError, ValueError, TypeError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    print(message)
    return 0


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


def main(argv: list[str] | None = None) -> int:
    return recipe_main(argv, prog="python -m tinylib.hr.train", description=__doc__.split("\n")[0],
                       run_recipe=history_trainer(run))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
