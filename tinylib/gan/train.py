"""Train the GAN detector from a YAML recipe: ``python -m tinylib.gan.train CONFIG [options]``,
and the proposal / re-scoring plumbing around it.

A recipe (``configs/gan_*.yaml``)::

    model: {lr_size: 16, margin: 2.0, generator: {...}, discriminator: {trunk: mnet025}, ...}
    data:  {source: wider, max_images: null, budget: 100, threshold: 0.05, jitter: 1,
            max_neg: 20, min_face: 6}
    train: {epochs, optimizer: adamw, lr, batch_size, ...}    # tinylib.engine.TrainConfig
    init:  PATH        # optional: start from these weights (the MSE-pretrained generator)

``data.source``: ``wider`` -- the real WIDER train images under the data root (the 1,239 of
the bundle, ``SOURCES.md`` section 7) with the shipped real-photo HR detector as the proposal
stage; when they are absent, the synthetic world (same layout) with the synthetic-world HR
detector, with a warning; ``synthetic`` -- that world on purpose. ``data.root: PATH`` uses
that data root as given (with the real-photo HR detector).

Training crops (:func:`tinylib.gan.crops.build_crop_set`): faces = HR proposals of IoU >=
``pos_iou`` (0.5) with a face + jittered ground-truth faces; non-faces = HR proposals of IoU <
``neg_iou`` with every face (its false positives), at most ``max_neg`` per image. ``neg_iou``
is 0.5, not a Fast R-CNN-style 0.3: a proposal on a face at the wrong size or place (IoU
0.3-0.5) is a false positive for the benchmark, and a re-scorer that never saw one calls its
context window, which shows the face, a face (measured: it filled the top of the ranking). The HR detector's candidates are
cached (:func:`tinylib.hr.cache.hr_raw`), the crops too (``cache_dir("gan_crops")``).
Caveat: the HR detector was trained on these same photos, so its false positives here are
fewer and easier than on unseen photos.

Options: ``--out DIR`` (checkpoints, ``history.csv``, ``weights.pt``), ``--resume``, ``--overwrite``
(a folder holding a run needs one of them; see :func:`tinylib.engine.recipe.recipe_main`),
``--set model.refine=false`` (any key), ``--threads N``. ``torchrun`` works as for the other
detectors (the engine's multi-phase DDP).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from .. import engine
from ..config import cache_dir
from ..data import sources
from ..data.images import read_image
from ..data.widerface import WiderFaceDataset, image_key
from ..engine.recipe import recipe_main
from ..engine.runs import write_history
from ..hr.cache import hr_raw, weights_id
from ..hr.detect import DEFAULT_WEIGHTS, SYNTHETIC_WEIGHTS, Detector, RawDetections, load_detector
from ..io import atomic_save, atomic_write_text
from .crops import CropSet, build_crop_set
from .detector import CropDataset, GANDetector, collate, load_gan, save_weights

log = logging.getLogger(__name__)

__all__ = ["DATA_DEFAULTS", "data_settings", "proposal_stage", "select_proposals", "train_crops", "run",
           "proposal_outputs", "rescore_many", "history_summary", "main"]

DATA_DEFAULTS = {"source": "wider", "root": None, "max_images": None, "budget": 100,
                 "threshold": 0.05, "jitter": 1, "max_neg": 20, "min_face": 6.0,
                 "pos_iou": 0.5, "neg_iou": 0.5}


def proposal_stage(real: bool) -> tuple[Detector, Path]:
    """The proposal stage: the shipped HR detector (real photos) or the synthetic-world one,
    with the pyramid of the evaluation (``max_side`` 2,100, every template)."""
    path = DEFAULT_WEIGHTS if real else SYNTHETIC_WEIGHTS
    return Detector(load_detector(path), score_threshold=0.05, max_side=2100, routing="full"), path


def select_proposals(raws: dict[str, RawDetections], *, budget: int = 100,
                     threshold: float = 0.05) -> dict[str, np.ndarray]:
    """``{key: (N, 5)}`` xyxy + score: the HR detector's A+B selection with box voting (as the
    shipped detector), at score >= ``threshold``, the ``budget`` best per image."""
    out = {}
    for key, raw in raws.items():
        boxes, scores = raw.select(threshold, 0.3, vote_iou=0.4, max_dets=budget)
        out[key] = np.concatenate([boxes, scores[:, None]], 1).astype(np.float32)
    return out


def data_settings(data: dict | None) -> dict:
    """A recipe's ``data`` section over :data:`DATA_DEFAULTS`; unknown keys raise."""
    unknown = sorted(set(data or {}) - set(DATA_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown GAN data settings {unknown}; known: {sorted(DATA_DEFAULTS)}")
    return {**DATA_DEFAULTS, **(data or {})}


def _source(data: dict):
    if data.get("root"):
        return Path(data["root"]), True
    if data["source"] == "synthetic":
        from ..data.synthetic import quick_world

        return quick_world(), False
    if data["source"] != "wider":
        raise ValueError(f"data.source must be 'wider' or 'synthetic', got {data['source']!r}")
    src = sources.choose(("widerface/WIDER_train/images",), what="WIDER train photos")
    if not src.is_real:
        log.warning("%s", src)
    return src.root, src.is_real


def train_crops(data: dict, *, hr_size: int, margin: float, seed: int = 0,
                progress: bool = False) -> CropSet:
    """The training crops of a recipe's ``data`` section (cached on disk)."""
    data = data_settings(data)
    root, real = _source(data)
    ds = WiderFaceDataset(root=root, split="train")
    idx = list(range(len(ds)))
    if data["max_images"]:
        from ..eval.widerface import spread

        idx = spread(idx, int(data["max_images"]))
    det, wpath = proposal_stage(real)
    wid = weights_id(wpath)
    tag = hashlib.sha1(json.dumps({"v": 2, "root": str(Path(root).resolve()), "idx": idx, "w": wid,
                                   "hr": hr_size, "m": margin, "seed": seed, **{
                                       k: data[k] for k in ("budget", "threshold", "jitter",
                                                            "max_neg", "min_face", "pos_iou",
                                                            "neg_iou")}},
                                  sort_keys=True).encode()).hexdigest()[:12]
    f = cache_dir("gan_crops") / f"{tag}.pt"
    if f.is_file():
        obj = torch.load(f, map_location="cpu", weights_only=True)
        return CropSet(obj["hr"], obj["label"], obj["reg"], obj["box"].numpy(), list(obj["image_id"]))
    paths = {image_key(ds.images[i]): ds.paths[i] for i in idx}
    raws = hr_raw(det, paths, weights_id=wid, progress=progress)
    props = select_proposals(raws, budget=data["budget"], threshold=data["threshold"])

    def samples():
        for i, key in zip(idx, paths):
            image, target = ds[i]
            b = np.asarray(target["boxes"], np.float32)
            ign = np.asarray(target["ignore"], bool)
            yield key, image, b[~ign], b[ign], props[key]

    crops = build_crop_set(samples(), progress=progress, seed=seed, hr_size=hr_size,
                           margin=margin, jitter=data["jitter"], max_neg=data["max_neg"],
                           min_face=data["min_face"], pos_iou=data["pos_iou"],
                           neg_iou=data["neg_iou"])
    atomic_save(f, lambda t: torch.save({**vars(crops), "box": torch.as_tensor(crops.box),
                                         "image_id": list(crops.image_id)}, t))
    return crops


def history_summary(hist, every: int = 20):
    """Means of the numeric history columns over blocks of ``every`` steps (``step`` = the
    block's last step): the compact training curve shipped beside the weights."""
    num = hist.select_dtypes("number")
    block = (num["step"] - 1) // int(every)
    out = num.groupby(block).mean()
    out["step"] = num.groupby(block)["step"].max()
    return out.reset_index(drop=True)


def run(cfg: dict, *, out_dir=None, resume=False, progress: bool = True, on_step=None,
        overwrite: bool = False):
    """Train a recipe; returns ``(model, history)``. Writes ``out_dir/weights.pt``,
    ``out_dir/history.csv`` and ``history_summary.csv`` (:func:`history_summary`) at the end. ``on_step`` as :func:`tinylib.engine.train` (e.g. a
    :class:`tinylib.viz.LiveLosses`)."""
    cfg = copy.deepcopy(cfg)
    with engine.seeded(int(cfg.get("train", {}).get("seed", 0))):  # init follows train.seed
        model = GANDetector(cfg.get("model"))
    if cfg.get("init"):
        init = load_gan(cfg["init"])
        missing = model.load_state_dict(init.state_dict(), strict=False)
        log.info("initialised from %s (%s)", cfg["init"], missing)
    mc = model.config
    crops = train_crops(cfg.get("data", {}), hr_size=mc["lr_size"] * mc["scale"],
                        margin=mc["margin"], seed=int(cfg.get("train", {}).get("seed", 0)),
                        progress=progress)
    log.info("training crops: %s", crops.counts())
    tcfg = dict(cfg.get("train", {}))
    if out_dir is not None:
        tcfg["out_dir"] = str(out_dir)
    dataset = CropDataset(crops, scale=mc["scale"], seed=int(tcfg.get("seed", 0)))
    hist = engine.train(model, dataset, collate_fn=lambda b: collate(b, mc["scale"]),
                        config=tcfg, resume=resume or None, overwrite=overwrite, progress=progress,
                        on_step=on_step,
                        extra_config={"model": mc, "data": cfg.get("data", {})})
    if out_dir is not None and engine.is_main_process():
        out = Path(out_dir)
        write_history(out, hist)
        atomic_write_text(out / "history_summary.csv",
                          history_summary(hist).to_csv(index=False, float_format="%.5g"))
        save_weights(model, out / "weights.pt", meta={"recipe": cfg, "crops": crops.counts(),
                                                      "steps": int(hist["step"].max())})
    return model, hist


def proposal_outputs(model: GANDetector, images: dict, proposals: dict[str, np.ndarray], *,
                     progress: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{key: (face probability (N,), offsets (N, 4))}`` of each photo's proposals
    (:meth:`GANDetector.proposal_scores`; the network runs once per photo)."""
    from tqdm.auto import tqdm

    out = {}
    for key, path in tqdm(list(images.items()), desc="re-scoring", disable=not progress):
        props = np.asarray(proposals.get(key, np.zeros((0, 5))), np.float32).reshape(-1, 5)
        out[key] = (model.proposal_scores(read_image(path), props) if len(props)
                    else (np.zeros(0, np.float32), np.zeros((0, 4), np.float32)))
    return out


def rescore_many(model: GANDetector, images: dict, proposals: dict[str, np.ndarray], *,
                 variants: dict | None = None, outputs: dict | None = None,
                 progress: bool = False) -> dict[str, dict]:
    """WIDER rows ``(N, 5)`` (x y w h score) per image for each variant
    ``{name: GANDetector.finish options}`` (default: ``{"rescored": {}}``, the paper's score),
    from :func:`proposal_outputs` (computed here unless given)."""
    from ..hr.detect import to_wider

    variants = variants or {"rescored": {}}
    outputs = outputs if outputs is not None else proposal_outputs(model, images, proposals,
                                                                   progress=progress)
    out = {name: {} for name in variants}
    for key in images:
        props = np.asarray(proposals.get(key, np.zeros((0, 5))), np.float32).reshape(-1, 5)
        p, t = outputs[key]
        for name, opts in variants.items():
            rows = model.finish(props, p, t, **opts) if len(props) else props
            out[name][key] = to_wider(rows[:, :4], rows[:, 4])
    return out


def main(argv: list[str] | None = None) -> int:
    def _run(cfg, out, args):
        run(cfg, out_dir=Path(out), resume=args.resume, overwrite=args.overwrite)
        return f"weights: {Path(out) / 'weights.pt'}"

    return recipe_main(argv, prog="python -m tinylib.gan.train", description=__doc__.split("\n")[0],
                       run_recipe=_run, export=False)


if __name__ == "__main__":
    sys.exit(main())
