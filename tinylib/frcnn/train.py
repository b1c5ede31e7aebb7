"""Train Faster R-CNN-FPN from a YAML recipe: ``python -m tinylib.frcnn.train CONFIG [options]``.

A recipe has the sections of the HR detector's (``configs/frcnn_<backbone>_quick.yaml``,
``configs/frcnn_<backbone>_wider.yaml``)::

    model: {backbone: bh_resnet50, pretrained: false, fpn_channels: 256, anchor_sizes: ..., ...}
    data:  {source: wider | synthetic | tinyperson, scales: [0.5, 1, 2], crop: 640, flip: true}
    train: {epochs, optimizer, lr, batch_size, ...}        # tinylib.engine.TrainConfig
    eval:  {max_images: 40, every: 1}                       # AP on the val/test images

``model``: the keywords of :func:`tinylib.frcnn.model.build_frcnn` (every key of
:data:`~tinylib.frcnn.model.MODEL_DEFAULTS`; image normalisation ``image_mean``/``image_std``,
``keep_size`` or ``min_size``/``max_size``, anchors, RPN and box-head settings).

``data.source``:

* ``wider`` -- the real WIDER FACE train images under the data root (``TINYLIB_DATA``; the
  1,239 of the data bundle, ``SOURCES.md`` section 7) through
  :class:`tinylib.data.widerface.WiderFaceDataset`; when they are absent, the synthetic world
  (same layout), with a warning. Evaluation: the val images present (the 374-image subset),
  official WIDER protocol.
* ``synthetic`` -- the synthetic world (:func:`tinylib.data.synthetic.quick_world`).
* ``tinyperson`` -- TinyPerson (:class:`tinylib.data.tinyperson.TinyPersonDataset`) from the
  data root when its files are there, else the synthetic world's ``tinyperson/``;
  evaluation with :func:`tinylib.eval.tinyperson.evaluate` on the test split.
* ``data.root: PATH`` uses that data root as given (a world of one's own, a test fixture).

Sampling: a random rescale from ``scales``, a random ``crop x crop`` window padded with the
ImageNet mean (boxes cut below ``min_visible`` of their area become ignored), a horizontal
flip -- the generic transforms of :mod:`tinylib.data.transforms`; boxes stay in the library's
xyxy convention all the way into the model (:func:`tinylib.frcnn.model.collate`).

The small-object toolbox (chapter 10; each off by default):

* ``scale_match: {mean, std, min_factor, max_factor}`` -- Scale Match
  (:class:`tinylib.data.scale_match.ScaleMatch`) instead of the rescale from ``scales``: each
  draw rescales the image so that the object sizes follow a log-normal of ``mean +- std`` px;
* ``snip: {scale: [lo, hi], ...}`` -- SNIP's valid ranges after the rescale
  (:class:`tinylib.data.augment.ScaleAwareIgnore`): at each scale, the boxes outside its range
  become ignored;
* ``copy_paste: {count, sizes, p, feather, max_overlap, bank_size, bank_min_size}`` -- real
  train faces pasted into each crop at tiny sizes (:class:`tinylib.data.augment.CopyPaste`,
  a :class:`~tinylib.data.augment.FaceBank` of ``bank_size`` faces of at least
  ``bank_min_size`` px cut from the training images);
* ``oversample: alpha`` -- each epoch draws the images with probability proportional to
  ``1 + alpha x`` their count of faces <= 20 px (:class:`tinylib.data.augment.Oversampled`).

Order: rescale (or Scale Match), SNIP ranges, crop, copy-paste, flip.

Options: ``--out DIR`` (checkpoints, ``history.csv``; default ``runs/<name>``), ``--resume``
(continue from ``DIR/last.pt``, exactly), ``--overwrite`` (start over in a folder that holds a run;
the old files are moved to ``DIR/replaced-<time>/``), ``--set train.epochs=2`` (override any key),
``--threads N``, ``--export PATH`` (fp16 inference weights at the end).
Multi-GPU / multi-node: ``torchrun --nproc-per-node 8 -m tinylib.frcnn.train CONFIG``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

from .. import engine
from ..config import runtime
from ..data import sources
from ..data.augment import CopyPaste, FaceBank, Oversampled, ScaleAwareIgnore, tiny_counts
from ..data.scale_match import ScaleMatch
from ..data.synthetic import quick_world
from ..data.tinyperson import TinyPersonDataset
from ..data.transforms import IMAGENET_MEAN_RGB, Compose, HorizontalFlip, RandomCrop, RandomRescale
from ..data.widerface import WiderFaceDataset
from ..engine.recipe import (
    apply_overrides,
    check_settings,
    epoch_summary,
    history_path,
    history_trainer,
    load_config,
    recipe_main,
)
from ..engine.runs import write_history
from ..io import atomic_write_text
from .detect import evaluate_tinyperson, evaluate_wider, save_weights
from .model import FasterRCNNFPN, build_frcnn, collate

log = logging.getLogger(__name__)

__all__ = ["DATA_DEFAULTS", "COPY_PASTE_DEFAULTS", "SCALE_MATCH_DEFAULTS", "WIDER_TRAIN", "load_config", "apply_overrides", "build_model",
           "resolve_source", "train_transform", "build_train_set", "make_eval_fn", "run", "main"]

#: the data settings of a recipe, with their defaults
DATA_DEFAULTS = {"source": "wider", "root": None, "split": None, "scales": [1.0], "crop": 640,
                 "flip": True, "min_visible": 0.5, "min_box": 1.0,
                 # the small-object toolbox (module doc)
                 "scale_match": None, "snip": None, "copy_paste": None, "oversample": 0.0}
#: the settings of ``data.copy_paste`` with their defaults (CopyPaste's, and the face bank's)
COPY_PASTE_DEFAULTS = {"count": [1, 4], "sizes": [6.0, 20.0], "p": 1.0, "feather": 0.25,
                       "max_overlap": 0.1, "bank_size": 500, "bank_min_size": 24.0}
#: the settings of ``data.scale_match`` with their defaults (mean/std: TinyPerson's persons)
SCALE_MATCH_DEFAULTS = {"mean": 18.0, "std": 17.4, "min_factor": 0.25, "max_factor": 4.0}
#: the files the ``wider`` source needs (train annotations and the train image folder)
WIDER_TRAIN = ("widerface/wider_face_train_bbx_gt.txt", "widerface_train_images")
SOURCES = ("wider", "synthetic", "tinyperson")


def build_model(mcfg: dict | None) -> FasterRCNNFPN:
    """The recipe's model: ``model.backbone`` + the other keys for
    :func:`~tinylib.frcnn.model.build_frcnn`."""
    m = dict(mcfg or {})
    return build_frcnn(str(m.pop("backbone", "resnet50")), **m)


def _data_settings(dcfg: dict | None) -> dict:
    d = check_settings(dcfg, DATA_DEFAULTS, sources=SOURCES)
    for key, defaults in (("copy_paste", COPY_PASTE_DEFAULTS), ("scale_match", SCALE_MATCH_DEFAULTS)):
        if d[key] is not None:
            if not isinstance(d[key], dict):
                raise ValueError(f"data.{key} must be a mapping of settings (or null), got {d[key]!r}")
            d[key] = check_settings(d[key], defaults, section=f"data.{key}")
    if d["snip"] is not None and not isinstance(d["snip"], dict):
        raise ValueError(f"data.snip must map an image scale to a [lo, hi] size range, got {d['snip']!r}")
    if not float(d["oversample"]) >= 0:
        raise ValueError(f"data.oversample must be >= 0, got {d['oversample']!r}")
    return d


def resolve_source(dcfg: dict | None) -> sources.Source:
    """Where the recipe's data comes from (a :class:`tinylib.data.sources.Source`: real data
    root, synthetic world, or the ``data.root`` given)."""
    d = _data_settings(dcfg)
    if d["root"]:
        root = Path(d["root"]).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"data.root: not a directory: {root}")
        synthetic = (root / "world.json").is_file()  # the manifest of a synthetic world
        return sources.Source(f"{d['source']} data (data.root)", "synthetic" if synthetic else "real",
                              root, ("data.root was given",) if synthetic else ())
    if d["source"] == "synthetic":
        return sources.Source("the synthetic world", "synthetic", quick_world())
    if d["source"] == "wider":
        return sources.choose(WIDER_TRAIN, what="WIDER FACE train images")
    return sources.choose("tinyperson", what="TinyPerson")


def train_transform(scales=(1.0,), crop: int | None = 640, flip: bool = True,
                    min_visible: float = 0.5, *, scale_match=None, snip: dict | None = None,
                    copy_paste=None) -> Compose:
    """Random rescale (one of ``scales``; or ``scale_match``, a
    :class:`~tinylib.data.scale_match.ScaleMatch`, in its place), SNIP's valid ranges
    (``snip``: scale -> ``(lo, hi)`` px), a random ``crop x crop`` window padded with the
    ImageNet mean (``crop=None``: whole images), ``copy_paste`` (a
    :class:`~tinylib.data.augment.CopyPaste`), horizontal flip with probability 1/2."""
    steps = []
    if scale_match is not None:
        steps.append(scale_match)
    elif list(scales) != [1.0]:
        steps.append(RandomRescale(tuple(float(s) for s in scales)))
    if snip:
        steps.append(ScaleAwareIgnore(snip))
    if crop:
        steps.append(RandomCrop(int(crop), pad_value=IMAGENET_MEAN_RGB, min_visible=float(min_visible)))
    if copy_paste is not None:
        steps.append(copy_paste)
    if flip:
        steps.append(HorizontalFlip(0.5))
    return Compose(steps)


def build_train_set(dcfg: dict | None, seed: int = 0, source: sources.Source | None = None):
    """The training dataset of a recipe (WIDER-layout faces or TinyPerson persons), its
    samples ``(uint8 image, target with xyxy boxes)`` through :func:`train_transform`, with
    the toolbox settings of the recipe (module doc): the face bank and Scale Match's
    within-image spread are measured on the training images themselves."""
    d = _data_settings(dcfg)
    src = source or resolve_source(d)
    if d["source"] == "tinyperson":
        ds = TinyPersonDataset(src.root, d["split"] or "train", seed=seed)
    else:
        ds = WiderFaceDataset(src.root, d["split"] or "train", seed=seed)
    sm = cp = None
    if d["scale_match"]:
        m = d["scale_match"]
        sm = ScaleMatch.for_dataset(ds, m["mean"], m["std"], min_factor=m["min_factor"],
                                    max_factor=m["max_factor"])
        log.info("scale match: %s", sm)
    if d["copy_paste"]:
        c = dict(d["copy_paste"])
        bank = FaceBank.from_dataset(ds, min_size=float(c.pop("bank_min_size")),
                                     max_faces=int(c.pop("bank_size")), seed=seed)
        cp = CopyPaste(bank, **c)
        log.info("copy-paste: a bank of %d faces", len(bank))
    ds.transform = train_transform(d["scales"], d["crop"], d["flip"], d["min_visible"],
                                   scale_match=sm, snip=d["snip"], copy_paste=cp)
    if float(d["oversample"]) > 0:
        return Oversampled(ds, tiny_counts(ds), alpha=float(d["oversample"]), seed=seed)
    return ds


def make_eval_fn(ecfg: dict | None, epochs: int | None = None, *, source: str = "wider",
                 root=None):
    """AP after every ``every``-th epoch and the last one: WIDER easy/medium/hard on the val
    images of ``root`` (``ap_easy`` ...; NaN for a setting without faces there), or TinyPerson ``ap_tiny``/``ap_small``/... at IoU
    0.5 on its test images. ``max_images`` spreads that many over the split."""
    if not ecfg:
        return None
    e = dict(ecfg)
    unknown = sorted(set(e) - {"every", "max_images", "split", "score_threshold"})
    if unknown:
        raise ValueError(f"unknown eval settings {unknown}; known: every, max_images, split, "
                         "score_threshold")
    every = int(e.get("every", 1))
    kw = {"score_threshold": float(e.get("score_threshold", 0.05))}

    def _eval(model, epoch):
        if epoch % every and epoch != epochs:
            return {}
        if source == "tinyperson":
            res, _ = evaluate_tinyperson(model, root, e.get("split", "test"),
                                         max_images=e.get("max_images"), detector_kw=kw)
            out = {f"ap_{r}": v for (r, t), v in res.ap.items() if abs(t - 0.5) < 1e-9}
        else:
            res, _ = evaluate_wider(model, root, e.get("split", "val"),
                                    max_images=e.get("max_images"), detector_kw=kw)
            # a setting without a kept face in the images has no AP (NaN, not a 0.0)
            out = {f"ap_{k}": v if res.n_faces[k] else float("nan") for k, v in res.ap.items()}
        log.info("epoch %d: %s AP %s", epoch, source, out)
        return out

    return _eval


def run(cfg: dict, *, out_dir=None, resume=False, progress: bool = True, export=None,
        overwrite: bool = False):
    """Train per recipe; returns ``(model, history DataFrame)``. The initial weights
    depend only on ``train.seed``, so one recipe gives one run (and ``--resume`` continues
    it exactly)."""
    tcfg = dict(cfg.get("train", {}))
    if out_dir is not None:
        tcfg["out_dir"] = str(out_dir)
    dcfg = _data_settings(cfg.get("data"))
    with torch.random.fork_rng(devices=[]):  # the initial weights follow train.seed, and
        torch.manual_seed(int(tcfg.get("seed", 0)))  # the caller's RNG state is left alone
        model = build_model(cfg.get("model", {}))  # (a bad model setting fails before any data)
    src = resolve_source(dcfg)
    log.info("data: %s", src)
    train_set = build_train_set(dcfg, seed=int(tcfg.get("seed", 0)), source=src)
    hist = engine.train(model, train_set,
                        collate_fn=functools.partial(collate, min_box=float(dcfg["min_box"])),
                        config=tcfg, device=runtime().device, resume=resume or None,
                        overwrite=overwrite,
                        eval_fn=make_eval_fn(cfg.get("eval"), int(tcfg.get("epochs", 1)),
                                             source=dcfg["source"], root=src.root),
                        progress=progress,
                        extra_config={"recipe": cfg, "model": dict(model.config),
                                      "data_source": str(src)})
    if engine.is_main_process():
        if tcfg.get("out_dir"):
            write_history(tcfg["out_dir"], hist)
        if export:
            save_weights(model, export, meta={"recipe": cfg.get("name", ""), "data": str(src),
                                              "steps": int(hist["step"].max())})
            atomic_write_text(history_path(export), epoch_summary(hist).to_csv(index=False))
    return model, hist


def main(argv: list[str] | None = None) -> int:
    return recipe_main(argv, prog="python -m tinylib.frcnn.train", description=__doc__.split("\n")[0],
                       run_recipe=history_trainer(run))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
