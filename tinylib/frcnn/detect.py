"""Inference with Faster R-CNN-FPN: boxes in the library's convention, WIDER-submission rows,
weights, and evaluation through the same evaluators as the HR detector.

* :class:`Detector` -- ``detect(image) -> (boxes (N, 4) xyxy, scores (N,))``: float
  ``(x1, y1, x2, y2)`` in the input image's continuous pixels, width ``x2 - x1``
  (:mod:`tinylib.boxes`). torchvision's detection models use the same ``xyxy`` convention,
  so its output boxes are returned as they are; the one conversion is to the WIDER
  submission's ``x y w h score`` rows, by :func:`tinylib.hr.detect.to_wider`
  (``box_convert``), re-exported here.
* :func:`predict_wider` / :func:`evaluate_wider` -- detections on the WIDER FACE images of a
  data root (the real val subset or the synthetic world), scored by
  :func:`tinylib.eval.widerface.evaluate` with the ground truth restricted to the images
  used; :func:`predict_tinyperson` / :func:`evaluate_tinyperson` -- the same for TinyPerson
  with :func:`tinylib.eval.tinyperson.evaluate`.
* :func:`save_weights` / :func:`load_detector` -- an fp16 inference checkpoint (config +
  state dict) written atomically, read back (also from :mod:`tinylib.engine` training
  checkpoints): :mod:`tinylib.engine.weights`, family ``frcnn``, as for the HR detector.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import runtime
from ..data.images import as_rgb_image
from ..data.synthetic import quick_world
from ..data.tinyperson import TinyPersonDataset, annotation_path
from ..data.widerface import WiderFaceDataset, load_eval_gt
from ..engine import weights as engine_weights
from ..engine.tta import tta_detect
from ..eval import tinyperson as tp_eval
from ..eval.widerface import SETTINGS, SIZE_SETTING, evaluate, spread, with_size_setting
from ..hr.detect import to_wider
from .model import MODEL_DEFAULTS, FasterRCNNFPN, build_frcnn

log = logging.getLogger(__name__)

__all__ = [
    "WEIGHTS_FORMAT",
    "Detector",
    "to_wider",
    "predict_wider",
    "evaluate_wider",
    "predict_tinyperson",
    "evaluate_tinyperson",
    "save_weights",
    "load_detector",
    "throughput",
]

#: the format string of the Faster R-CNN weights files before
#: :data:`tinylib.engine.weights.FORMAT` (still read)
WEIGHTS_FORMAT = "tinylib.frcnn/1"


class Detector:
    """Run a :class:`~tinylib.frcnn.model.FasterRCNNFPN` (or any module with torchvision's
    detection interface) on images: paths or ``H x W (x C)`` arrays of any mode.

    ``detect(image)`` -> ``(boxes float32 (N, 4) xyxy, scores float32 (N,))`` sorted by
    score, at least ``score_threshold``; ``detect_many(images)`` runs ``batch_size`` images
    per forward pass (any sizes)."""

    def __init__(self, model, *, device=None, score_threshold: float = 0.05, batch_size: int = 4,
                 amp: bool = False):
        self.device = torch.device(device or runtime().device)
        self.model = model.to(self.device).eval()
        self.score_threshold = float(score_threshold)
        self.batch_size = int(batch_size)
        self.amp = bool(amp)

    @torch.no_grad()
    def _run(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        x = [torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1))).to(self.device).float() / 255.0
             for im in images]
        if self.amp and self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                outs = self.model(x)
        else:
            outs = self.model(x)
        res = []
        for o in outs:
            boxes = o["boxes"].float().cpu().numpy().reshape(-1, 4)
            scores = o["scores"].float().cpu().numpy().reshape(-1)
            keep = scores >= self.score_threshold
            order = np.argsort(-scores[keep], kind="mergesort")
            res.append((boxes[keep][order].astype(np.float32), scores[keep][order].astype(np.float32)))
        return res

    def detect_many(self, images, *, progress: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
        images = list(images)
        out = []
        for k in tqdm(range(0, len(images), self.batch_size), disable=not progress, desc="detect"):
            out += self._run([as_rgb_image(im) for im in images[k:k + self.batch_size]])
        return out

    def detect(self, image) -> tuple[np.ndarray, np.ndarray]:
        return self.detect_many([image])[0]


def _detector(model_or_detector, detector_kw) -> Detector:
    if isinstance(model_or_detector, Detector):
        return model_or_detector
    return Detector(model_or_detector, **(detector_kw or {}))


@torch.no_grad()
def throughput(model, image_hw=(480, 640), *, reps: int = 3, warmup: int = 1, device=None) -> float:
    """Images per second of ``model`` (eval mode) on one random ``image_hw`` image at a time,
    after ``warmup`` untimed runs: the median over ``reps`` timed runs. A speed on *this*
    machine (threads: ``torch.get_num_threads()``), for comparing backbones side by side."""
    import time

    device = torch.device(device or next(model.parameters()).device)
    was = model.training
    model.eval()
    x = [torch.rand(3, int(image_hw[0]), int(image_hw[1]), generator=torch.Generator().manual_seed(0)).to(device)]
    times = []
    for k in range(int(warmup) + max(1, int(reps))):
        t0 = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if k >= warmup:
            times.append(time.perf_counter() - t0)
    model.train(was)
    return float(1.0 / np.median(times))


# ---------------------------------------------------------------------------- evaluation
def predict_wider(model, root=None, split: str = "val", *, max_images: int | None = None,
                  progress: bool = False, detector_kw: dict | None = None,
                  tta: tuple | None = None) -> dict[str, np.ndarray]:
    """WIDER-submission rows ``key -> (N, 5)`` ``x y w h score`` for the ``split`` images
    present under ``root`` (default: the synthetic world); ``max_images`` takes that many
    spread evenly over the split's file order. ``tta=(scales, flip)``: each image through
    :func:`tinylib.engine.tta.tta_detect` (a pyramid of ``scales``, mirrored too when ``flip``,
    merged by NMS at the model's ``box_nms`` IoU, so ``((1.0,), False)`` is one plain pass)
    instead of one pass."""
    ds = WiderFaceDataset(root or quick_world(), split)
    idx = spread(list(range(len(ds))), max_images)
    det = _detector(model, detector_kw)
    if tta is None:
        results = det.detect_many([ds.paths[i] for i in idx], progress=progress)
    else:
        scales, flip = tta
        cfg = dict(getattr(det.model, "config", {}))  # merged at the model's own NMS IoU and cap,
        iou, cap = float(cfg.get("box_nms", 0.5)), cfg.get("detections_per_img")  # so 1x == one pass
        results = [tta_detect(det.detect, as_rgb_image(ds.paths[i]), scales, flip, iou=iou, max_detections=cap)
                   for i in tqdm(idx, disable=not progress, desc="detect (TTA)")]
    return {ds.target(i)["image_id"]: to_wider(*r) for i, r in zip(idx, results)}


def evaluate_wider(model, root=None, split: str = "val", *, max_images: int | None = None,
                   progress: bool = False, detector_kw: dict | None = None, tta: tuple | None = None):
    """:func:`predict_wider` scored by the official WIDER FACE protocol
    (:func:`tinylib.eval.widerface.evaluate`) against the root's ``eval_gt`` restricted to
    the images used, in the settings easy/medium/hard and ``le20`` (the hard faces of at most
    20 px, :func:`tinylib.eval.widerface.with_size_setting`). Returns ``(WiderResult,
    predictions)``."""
    root = root or quick_world()
    preds = predict_wider(model, root, split, max_images=max_images, progress=progress,
                          detector_kw=detector_kw, tta=tta)
    gt = with_size_setting(load_eval_gt(root))
    return evaluate(preds, gt, settings=(*SETTINGS, SIZE_SETTING[0]), subset=list(preds)), preds


def predict_tinyperson(model, root=None, split: str = "test", *, max_images: int | None = None,
                       progress: bool = False, detector_kw: dict | None = None) -> dict[str, np.ndarray]:
    """``file_name -> (N, 5)`` ``x y w h score`` on the TinyPerson ``split`` images under
    ``root`` (default: the synthetic world's ``tinyperson/``); dense images left out as the
    benchmark does."""
    ds = TinyPersonDataset(root or quick_world(), split)
    names = {os.path.splitext(str(f))[0]: str(f) for f in ds.images["file_name"]}
    idx = spread(list(range(len(ds))), max_images)
    det = _detector(model, detector_kw)
    preds = {}
    for i in tqdm(idx, disable=not progress, desc="detect"):
        image, target = ds[i]
        preds[names[target["image_id"]]] = to_wider(*det.detect(image))
    return preds


def evaluate_tinyperson(model, root=None, split: str = "test", *, max_images: int | None = None,
                        progress: bool = False, detector_kw: dict | None = None):
    """:func:`predict_tinyperson` scored by TinyBenchmark's protocol
    (:func:`tinylib.eval.tinyperson.evaluate`: AP per size range, ignore regions) on the
    images used. Returns ``(TinyResult, predictions)``."""
    root = root or quick_world()
    preds = predict_tinyperson(model, root, split, max_images=max_images, progress=progress,
                               detector_kw=detector_kw)
    gt = tp_eval.load_coco_gt(annotation_path(split, root))
    gt = tp_eval.TinyGT({k: gt.boxes[k] for k in preds}, {k: gt.ignore[k] for k in preds})
    return tp_eval.evaluate(preds, gt), preds


# ------------------------------------------------------------------------------- weights
def save_weights(model: FasterRCNNFPN, path, *, half: bool = True, meta: dict | None = None) -> Path:
    """Write an inference checkpoint (model config + state dict, fp16 by default) atomically:
    :func:`tinylib.engine.weights.save` with family ``frcnn``."""
    return engine_weights.save(model, path, family="frcnn", half=half, meta=meta)


def _build_from_config(cfg: dict) -> FasterRCNNFPN:
    """The untrained detector a weights file's config describes (family ``frcnn``): the
    backbone is built without its initial weights (they are in the state dict)."""
    if "backbone" not in cfg or "anchor_sizes" not in cfg:
        raise ValueError(f"checkpoint config is not a Faster R-CNN one (keys {sorted(cfg)[:8]})")
    settings = {k: v for k, v in cfg.items() if k in MODEL_DEFAULTS and k != "backbone"}
    settings.update(pretrained=False, backbone_weights=None, init_weights=None)
    return build_frcnn(cfg["backbone"], **settings)


engine_weights.register_family("frcnn", _build_from_config,
                               recognise=lambda cfg: "backbone" in cfg and "anchor_sizes" in cfg,
                               label="Faster R-CNN", saver="tinylib.frcnn.detect.save_weights")


def load_detector(path, *, device=None) -> FasterRCNNFPN:
    """A :class:`~tinylib.frcnn.model.FasterRCNNFPN` (eval mode) from :func:`save_weights`
    files (and the older ``tinylib.frcnn/1`` ones) or :mod:`tinylib.engine` training
    checkpoints (model config under ``config['model']``): :func:`tinylib.engine.weights.load`
    with family ``frcnn``. The backbone is rebuilt without its initial weights (they are in
    the state dict)."""
    return engine_weights.load(path, device=device, family="frcnn")
