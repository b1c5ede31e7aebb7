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
gives one loss curve, fresh or resumed. The recipe file and this command line are the ones every
detector shares (:mod:`tinylib.engine.recipe`); this module holds what is the HR detector's.
Multi-GPU / multi-node: ``torchrun --nproc-per-node 8 -m tinylib.hr.train CONFIG``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .. import engine
from ..config import REPO_DIR, data_root, runtime
from ..data.images import read_image
from ..data.synthetic import quick_world
from ..data.transforms import Compose, HorizontalFlip, RandomCrop, RandomRescale
from ..data.widerface import WiderFaceDataset, load_eval_gt
from ..engine.recipe import epoch_summary, history_path, history_trainer, recipe_main
from ..engine.runs import write_history
from ..eval.widerface import evaluate, spread
from ..io import atomic_write_text
from .detect import SYNTHETIC_WEIGHTS, Detector, load_detector, save_weights, to_wider
from .model import RGB_MEAN, build_hr, collate
from .templates import Templates, hr_template_set

log = logging.getLogger(__name__)

__all__ = ["PaperSampling", "paper_sampling", "build_model",
           "build_train_set", "make_eval_fn", "evaluate_world", "run", "main"]


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
            write_history(tcfg["out_dir"], hist)
        if export:
            save_weights(model, export, meta={"recipe": cfg.get("name", ""),
                                              "steps": int(hist["step"].max())})
            atomic_write_text(history_path(export), epoch_summary(hist).to_csv(index=False))
    return model, hist


def main(argv: list[str] | None = None) -> int:
    return recipe_main(argv, prog="python -m tinylib.hr.train", description=__doc__.split("\n")[0],
                       run_recipe=history_trainer(run))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
