"""Inference with the HR detector: image pyramid, A/B template routing, decoding, NMS.

The pipeline of Fig. 8 of *Finding Tiny Faces* (and of the released ``tiny_face_detector.m``):

1. **Pyramid, per image** (:func:`pyramid_scales`): octaves ``2**k`` from the smallest scale
   at which the largest A template still covers the image down to ``1``, plus ``2x``
   interpolation (optionally the half octave ``sqrt 2`` as in the released code), capped so
   that no level exceeds ``max_side`` pixels.
2. **Routing**: A templates (those trained for scale 1) on every level, B templates (the
   tiny ones, trained on 2x upsampled faces) only on upsampled levels (scale > 1; with the
   default coarse pyramid: only at 2x). The other templates are pruned (Table 1: A+B).
3. **Decoding** (:func:`decode_level`): sigmoid scores above a threshold, the template window
   at each location moved by its regressed deltas, mapped back to the original image.
4. **NMS** at IoU 0.3 (``torchvision.ops.nms``), then **box voting** (:func:`nms_vote`): each
   kept box becomes the score-weighted mean of the candidates overlapping it with IoU >= 0.4
   (Gidaris & Komodakis 2015, the step most WIDER FACE detectors since use). Not in the paper
   or the released code (``vote_iou=None`` turns it off); on the WIDER val subset it adds
   0.016 / 0.013 / 0.023 easy / medium / hard AP to the shipped weights (0.055 / 0.042 /
   0.025 to the stage-1 weights alone): with a stride-8
   grid the kept window of a 10-px face is often a few pixels off, and the average of its
   neighbours is closer.

:class:`Detector` keeps the pre-NMS candidates (:class:`RawDetections`) so thresholds, NMS
IoU, levels and A/B templates can be changed without running the network again
(:meth:`RawDetections.select`), which the notebook's explorer widget uses.

Command line: ``tinylib-detect IMAGE... --out DIR`` writes one WIDER-submission file per
image (``<out>/<folder>/<stem>.txt``: name, count, ``x y w h score`` lines; ``<folder>/<stem>``
is the image's path below the images' common folder, so a WIDER tree keeps its
``event/stem`` layout) and, with ``--draw``, a JPEG with the boxes under
``<out>/drawings/<folder>/<stem>.jpg``. Arguments, device, weights and the output folder are
checked, and outputs that would collide or replace an input refused, before any work; an
unreadable image is reported and skipped (exit code 1, a summary at the end).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from ..boxes import box_convert
from ..config import runtime
from ..data.images import as_rgb_image, read_image
from ..engine import weights as engine_weights
from ..eval.widerface import write_predictions
from ..io import atomic_save
from . import targets as T
from .calibrate import Calibration, load_calibration
from .model import RGB_MEAN, HRDetector, build_hr
from .templates import Templates

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_WEIGHTS",
    "DEFAULT_CALIBRATION",
    "default_calibration",
    "SYNTHETIC_WEIGHTS",
    "pyramid_scales",
    "decode_level",
    "RawDetections",
    "Detector",
    "load_detector",
    "save_weights",
    "to_wider",
    "main",
]

PACKAGE_WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
#: the default detector: MobileNetV1 x0.25 HR trained on the real WIDER train images on CPU,
#: the weight average of two stages (``tools/train_hr_wider.sh``: ``configs/hr_mnet025_wider_cpu.yaml``
#: then ``configs/hr_mnet025_wider_cpu_stage2.yaml``, averaged by :mod:`tinylib.hr.soup`)
DEFAULT_WEIGHTS = PACKAGE_WEIGHTS_DIR / "hr_mnet025_wider.pt"
#: the score calibration across templates and levels of :data:`DEFAULT_WEIGHTS`
#: (:mod:`tinylib.hr.calibrate`), fitted on the tuning half of the WIDER val subset by
#: ``tools/eval_wider_subset.py --ship``; the default detector applies it
DEFAULT_CALIBRATION = PACKAGE_WEIGHTS_DIR / "hr_calibration.json"
#: the embedded default's detector: ResNet-18 HR trained on the synthetic world only
#: (``tools/train_shipped_weights.sh``); used where no real data is present
SYNTHETIC_WEIGHTS = PACKAGE_WEIGHTS_DIR / "hr_res18_synth.pt"
#: the pyramid cap of the CLI: keeps the 2x level of images up to 2,100 px (WIDER's 1,024-px
#: photos and the 2,048-px selfie)
CLI_MAX_SIDE = 4200
#: the format string of the HR weights files before :data:`tinylib.engine.weights.FORMAT`
#: (still read: the shipped files keep it)
WEIGHTS_FORMAT = "tinylib.hr/1"
#: the sub-folder of ``--out`` that holds the drawings of ``tinylib-detect --draw``
DRAWINGS = "drawings"


def pyramid_scales(
    height: int,
    width: int,
    templates: Templates,
    *,
    max_side: int = 5000,
    upsample: bool = True,
    half_octaves: bool = False,
    min_scale: float | None = None,
) -> list[float]:
    """The image scales to run for an ``height x width`` image (coarse to fine).

    Following ``tiny_face_detector.m``: the smallest octave ``2**k`` is the one at which the
    largest A template is as large as the image (coarser levels could not find anything
    bigger); octaves run up to ``1``; then ``2`` (and ``sqrt 2`` with ``half_octaves``) when
    ``upsample``. Levels whose longer side would exceed ``max_side`` are dropped (at least
    the largest scale that fits is kept). ``min_scale`` clips the coarse end."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    ids = templates.a or list(range(len(templates)))
    tw = float(np.max(templates.sizes_wh[ids, 0]))
    th = float(np.max(templates.sizes_wh[ids, 1]))
    k0 = min(math.floor(math.log2(tw / width)), math.floor(math.log2(th / height)), 0)
    scales = [2.0 ** k for k in range(k0, 1)]
    if upsample:
        scales += [math.sqrt(2.0), 2.0] if half_octaves else [2.0]
    if min_scale is not None:
        scales = [s for s in scales if s >= min_scale - 1e-9] or [max(scales)]
    fit = [s for s in scales if max(height, width) * s <= max_side + 1e-6]
    if not fit:
        fit = [max_side / max(height, width)]
    return fit


def decode_level(
    cls: torch.Tensor,
    reg: torch.Tensor,
    sizes_wh: torch.Tensor,
    stride: int,
    scale: float = 1.0,
    *,
    threshold: float = 0.5,
    templates: list[int] | None = None,
    image_hw: tuple[int, int] | None = None,
    top_k: int | None = None,
    from_logits: bool = True,
):
    """Decode one level of one image.

    ``cls`` ``(T, h, w)`` logits (or probabilities with ``from_logits=False``), ``reg``
    ``(T, 4, h, w)`` deltas, ``sizes_wh`` ``(T, 2)`` template ``(w, h)``. Returns
    ``boxes (N, 4)`` in original-image pixels (divided by ``scale``), ``scores (N,)``,
    ``template (N,)``; only ``templates`` (indices) are decoded, only locations whose centre
    lies inside ``image_hw`` = the original ``(height, width)``, boxes clipped to it."""
    nt, h, w = cls.shape
    prob = torch.sigmoid(cls.float()) if from_logits else cls.float()
    if templates is not None:
        keep_t = torch.zeros(nt, dtype=torch.bool, device=prob.device)
        keep_t[torch.as_tensor(templates, dtype=torch.long, device=prob.device)] = True
        prob = torch.where(keep_t.view(-1, 1, 1), prob, torch.zeros_like(prob))
    if image_hw is not None:
        cy, cx = T.location_centres(h, w, stride, device=prob.device)
        inside = (cy.view(-1, 1) < image_hw[0] * scale) & (cx.view(1, -1) < image_hw[1] * scale)
        prob = prob * inside
    flat = prob.flatten()
    idx = torch.nonzero(flat >= threshold, as_tuple=False).flatten()
    if top_k is not None and idx.numel() > top_k:
        idx = idx[flat[idx].topk(top_k).indices]
    t = idx // (h * w)
    rem = idx % (h * w)
    i, j = rem // w, rem % w
    cy, cx = T.location_centres(h, w, stride, device=prob.device)
    sz_wh = sizes_wh.to(prob.device, torch.float32)[t]
    win = box_convert(torch.stack([cx[j], cy[i], sz_wh[:, 0], sz_wh[:, 1]], dim=1), "cxcywh", "xyxy")
    deltas = reg[t, :, i, j].float()
    boxes = T.decode_deltas(deltas, win) / scale
    if image_hw is not None:
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, image_hw[1])
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, image_hw[0])
    return boxes, flat[idx], t


@dataclass
class RawDetections:
    """Pre-NMS candidates of one image: boxes (N, 4) xyxy, scores, template index and the
    pyramid level's scale of each. :meth:`select` re-filters them without the network."""

    boxes: np.ndarray
    scores: np.ndarray
    template: np.ndarray
    level: np.ndarray  # the pyramid scale each candidate came from
    scales: list[float]
    a: list[int]
    b: list[int]

    def select(self, score_threshold: float = 0.5, nms_iou: float = 0.3, *, levels=None,
               use_a: bool = True, use_b: bool = True, routing: str = "ab",
               max_dets: int | None = None, vote_iou: float | None = None):
        """Boxes and scores after threshold, level and template filtering, and NMS (with box
        voting at ``vote_iou`` when given: :func:`nms_vote`).

        ``routing="ab"`` (the paper's pruned detector, Table 1 "A+B"): A templates on every
        level, B templates only on upsampled levels (scale > 1), the rest dropped;
        ``use_a``/``use_b`` switch either set off. ``routing="full"`` keeps every template
        on every level (Table 1 "Full"; needs candidates from a ``Detector(routing="full")``)."""
        keep = self.mask(score_threshold, levels=levels, use_a=use_a, use_b=use_b, routing=routing)
        return nms_vote(self.boxes[keep], self.scores[keep], nms_iou, vote_iou=vote_iou,
                        max_dets=max_dets)

    def mask(self, score_threshold: float = 0.5, *, levels=None, use_a: bool = True,
             use_b: bool = True, routing: str = "ab") -> np.ndarray:
        """Which candidates :meth:`select` keeps before NMS (threshold, levels, routing: see
        there), as a boolean array."""
        keep = self.scores >= score_threshold
        if levels is not None:
            keep &= np.isin(np.round(self.level, 6), np.round(np.asarray(list(levels), float), 6))
        if routing == "ab":
            is_a = np.isin(self.template, list(self.a)) if use_a else np.zeros_like(keep)
            is_b = (np.isin(self.template, list(self.b)) & (self.level > 1 + 1e-6)
                    if use_b else np.zeros_like(keep))
            keep &= is_a | is_b
        elif routing != "full":
            raise ValueError(f"routing must be 'ab' or 'full', got {routing!r}")
        return keep

    def subset(self, keep: np.ndarray) -> RawDetections:
        """The candidates where ``keep`` (a boolean or index array) holds; the pyramid and the
        template sets unchanged."""
        return replace(self, boxes=self.boxes[keep], scores=self.scores[keep],
                       template=self.template[keep], level=self.level[keep])


def nms_vote(boxes: np.ndarray, scores: np.ndarray, nms_iou: float = 0.3, *,
             vote_iou: float | None = None, max_dets: int | None = None):
    """NMS at ``nms_iou``, then, when ``vote_iou`` is given, box voting: each kept box is
    replaced by the score-weighted mean of every candidate (kept or suppressed) whose IoU with
    it is at least ``vote_iou``; its score stays. ``boxes`` ``(N, 4)`` xyxy, ``scores``
    ``(N,)``; returns numpy ``(boxes (K, 4), scores (K,))`` sorted by score, at most
    ``max_dets``."""
    b = torch.as_tensor(np.asarray(boxes, np.float32)).reshape(-1, 4)
    s = torch.as_tensor(np.asarray(scores, np.float32)).reshape(-1)
    if len(b) != len(s):
        raise ValueError(f"nms_vote: {len(b)} boxes but {len(s)} scores")
    if not len(b):
        return b.numpy(), s.numpy()
    k = torchvision.ops.nms(b, s, nms_iou)
    if max_dets is not None:
        k = k[:max_dets]
    kept = b[k]
    if vote_iou is not None and len(k):
        w = (torchvision.ops.box_iou(kept, b) >= vote_iou).to(s.dtype) * s[None]
        w[torch.arange(len(k)), k] = s[k]  # a degenerate box (IoU NaN) still votes for itself
        kept = (w @ b) / w.sum(1, keepdim=True)
    return kept.numpy().reshape(-1, 4), s[k].numpy().reshape(-1)


class Detector:
    """Pyramid inference with an :class:`HRDetector` (see the module docstring).

    ``Detector(model).detect(image)`` -> ``(boxes (N, 4) xyxy, scores (N,))``;
    ``detect_many(images)`` batches images of equal size; ``raw(image)`` keeps the pre-NMS
    candidates. ``image``: a path or an ``H x W (x C)`` array (grayscale, RGBA and 16-bit are
    converted)."""

    def __init__(self, model: HRDetector, *, device=None, score_threshold: float = 0.5,
                 nms_iou: float = 0.3, max_side: int = 5000, half_octaves: bool = False,
                 upsample: bool = True, candidate_threshold: float = 0.05,
                 top_k: int = 5000, max_dets: int = 2000, amp: bool = False,
                 routing: str = "ab", vote_iou: float | None = 0.4,
                 calibration: Calibration | None = None):
        if routing not in ("ab", "full"):
            raise ValueError(f"routing must be 'ab' or 'full', got {routing!r}")
        self.device = torch.device(device or runtime().device)
        self.model = model.to(self.device).eval()
        self.templates = model.templates
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.max_side = max_side
        self.half_octaves = half_octaves
        self.upsample = upsample
        self.candidate_threshold = candidate_threshold
        self.top_k = top_k
        self.max_dets = max_dets
        self.amp = amp
        self.routing = routing
        self.vote_iou = vote_iou
        self.calibration = calibration  # applied to the candidates before threshold and NMS

    def scales_for(self, height: int, width: int) -> list[float]:
        return pyramid_scales(height, width, self.templates, max_side=self.max_side,
                              upsample=self.upsample, half_octaves=self.half_octaves)

    def _level_templates(self, scale: float) -> list[int]:
        if self.routing == "full":
            return list(range(len(self.templates)))
        return sorted(set(self.templates.a) | (set(self.templates.b) if scale > 1 + 1e-6 else set()))

    @torch.no_grad()
    def _run(self, batch: np.ndarray, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))).to(self.device)
        x = x.float()
        h, w = x.shape[-2:]
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        if (nh, nw) != (h, w):
            x = torch.nn.functional.interpolate(x, size=(nh, nw), mode="bilinear",
                                                align_corners=False, antialias=scale < 1)
        # pad to a multiple of 32 with the mean so every stride divides the input
        ph, pw = (-nh) % 32, (-nw) % 32
        if ph or pw:
            mean = torch.tensor(RGB_MEAN, device=x.device).view(1, 3, 1, 1)
            x = torch.nn.functional.pad(x - mean, (0, pw, 0, ph)) + mean
        dev_type = self.device.type
        if self.amp and dev_type == "cuda":
            with torch.autocast(dev_type, dtype=torch.float16):
                return self.model(x)
        return self.model(x)

    def raw_many(self, images) -> list[RawDetections]:
        imgs = [as_rgb_image(im) for im in images]
        out: list[RawDetections | None] = [None] * len(imgs)
        groups: dict[tuple, list[int]] = {}
        for i, im in enumerate(imgs):
            groups.setdefault(im.shape[:2], []).append(i)
        for (h, w), idx in groups.items():
            scales = self.scales_for(h, w)
            per = {i: ([], [], [], []) for i in idx}
            for s in scales:
                cls, reg = self._run(np.stack([imgs[i] for i in idx]), s)
                tids = self._level_templates(s)
                for b, i in enumerate(idx):
                    bx, sc, tt = decode_level(
                        cls[b], reg[b], self.model.template_sizes_wh, self.model.stride, s,
                        threshold=self.candidate_threshold, templates=tids,
                        image_hw=(h, w), top_k=self.top_k)
                    acc = per[i]
                    acc[0].append(bx.cpu().numpy())
                    acc[1].append(sc.cpu().numpy())
                    acc[2].append(tt.cpu().numpy())
                    acc[3].append(np.full(len(sc), s))
            for i, acc in per.items():
                out[i] = RawDetections(
                    np.concatenate(acc[0]).reshape(-1, 4).astype(np.float32),
                    np.concatenate(acc[1]).astype(np.float32),
                    np.concatenate(acc[2]).astype(np.int64),
                    np.concatenate(acc[3]).astype(np.float64),
                    scales, list(self.templates.a), list(self.templates.b))
        return out  # type: ignore[return-value]

    def raw(self, image) -> RawDetections:
        return self.raw_many([image])[0]

    def detect_many(self, images, *, progress: bool = False, batch_size: int = 8) -> list:
        images = list(images)
        results = []
        for k in tqdm(range(0, len(images), batch_size), disable=not progress, desc="detect"):
            for r in self.raw_many(images[k:k + batch_size]):
                if self.calibration is not None:
                    r = self.calibration.apply(r)
                results.append(r.select(self.score_threshold, self.nms_iou,
                                        routing=self.routing, max_dets=self.max_dets,
                                        vote_iou=self.vote_iou))
        return results

    def detect(self, image):
        return self.detect_many([image])[0]


def default_calibration(weights=None) -> Calibration | None:
    """The shipped calibration (:data:`DEFAULT_CALIBRATION`) when it was fitted for ``weights``
    (default :data:`DEFAULT_WEIGHTS`), else ``None`` (logged): other weights are used raw."""
    from .cache import weights_id  # cache imports this module

    path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    if not DEFAULT_CALIBRATION.is_file() or not path.is_file():
        return None
    try:
        return load_calibration(DEFAULT_CALIBRATION, weights_id(path))
    except ValueError as exc:
        log.info("no score calibration for %s: %s", path, exc)
        return None


def to_wider(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """xyxy boxes + scores -> the WIDER submission rows ``(N, 5)`` float64 ``x y w h score``."""
    rows = np.hstack([np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
                      np.asarray(scores, dtype=np.float64).reshape(-1, 1)])
    return box_convert(rows, "xyxy", "xywh")


# ------------------------------------------------------------------------------ weights
def save_weights(model: HRDetector, path, *, half: bool = True, meta: dict | None = None) -> Path:
    """Write an inference checkpoint (model config + state dict, fp16 by default) atomically:
    :func:`tinylib.engine.weights.save` with family ``hr``."""
    return engine_weights.save(model, path, family="hr", half=half, meta=meta)


def _build_from_config(mcfg: dict) -> HRDetector:
    """The untrained :class:`HRDetector` a weights file's config describes (family ``hr``)."""
    if "templates" not in mcfg:
        raise ValueError(f"checkpoint config has no templates (keys {sorted(mcfg)})")
    return build_hr(mcfg["templates"], int(mcfg.get("depth", 18)),
                    backbone=str(mcfg.get("backbone", "resnet")),
                    caffe_style=bool(mcfg.get("caffe_style", False)), pretrained=False,
                    use_res5=bool(mcfg.get("use_res5", False)),
                    use_res4=bool(mcfg.get("use_res4", True)), freeze_bn=False,
                    context=str(mcfg.get("context", "full")))


engine_weights.register_family("hr", _build_from_config, recognise=lambda cfg: "templates" in cfg,
                               label="HR", saver="tinylib.hr.detect.save_weights")

#: what a weights file must be, for error messages
WEIGHTS_EXPECTED = engine_weights.expected("hr")


def load_detector(path=None, *, device=None) -> HRDetector:
    """An :class:`HRDetector` (eval mode) from shipped weights (:data:`DEFAULT_WEIGHTS`
    when ``path`` is None), :func:`save_weights` files (and the older ``tinylib.hr/1`` ones)
    or training checkpoints of :mod:`tinylib.engine` (which hold the model config under
    ``config['model']``): :func:`tinylib.engine.weights.load` with family ``hr``.
    A missing file raises ``FileNotFoundError``; anything else that is not such a
    checkpoint (text, a truncated file, another model) ``ValueError`` naming the file."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.exists():
        hint = {DEFAULT_WEIGHTS: " (made by tools/train_hr_wider.sh)",
                SYNTHETIC_WEIGHTS: " (made by tools/train_shipped_weights.sh)"}.get(path, "")
        raise FileNotFoundError(f"HR detector weights not found: {path}{hint}; check the path "
                                f"(the shipped weights are in {PACKAGE_WEIGHTS_DIR})")
    return engine_weights.load(path, device=device, family="hr")


# --------------------------------------------------------------------------------- CLI
class CLIError(ValueError):
    """A command-line problem found before any work: printed as ``tinylib-detect: error: ...``
    (exit code 2), never as a traceback."""


def _number(text: str, kind=float) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _score(text: str) -> float:
    v = _number(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(
            f"expected a score between 0 and 1 (the detector's probabilities), got {text}")
    return v


def _iou(text: str) -> float:
    v = _number(text)
    if not 0.0 < v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected an IoU in (0, 1], got {text}")
    return v


def _iou_or_off(text: str) -> float:
    v = _number(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected an IoU in (0, 1], or 0 for no voting, got {text}")
    return v


def _positive_int(text: str) -> int:
    v = _number(text, int)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of pixels, got {text}")
    return v


def check_device(name: str | None) -> torch.device | None:
    """``--device``: None (the best available), or a device of this machine. Raises
    :class:`CLIError` naming the devices that exist."""
    if name is None:
        return None
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    have = ["cpu"] + (["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
                      if cuda else []) + (["mps"] if mps else [])
    options = f"this machine has: {', '.join(have)} (or leave --device out for the best)"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise CLIError(f"--device {name}: unknown device; expected cpu, cuda, cuda:N or mps; "
                       f"{options}") from None
    if dev.type == "cuda":
        if not cuda:
            raise CLIError(f"--device {name}: CUDA is not available (torch {torch.__version__}, "
                           f"no usable GPU); {options}")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CLIError(f"--device {name}: there are {torch.cuda.device_count()} CUDA "
                           f"device(s); {options}")
    elif dev.type == "mps":
        if not mps:
            raise CLIError(f"--device {name}: Apple MPS is not available; {options}")
    elif dev.type != "cpu":
        raise CLIError(f"--device {name}: expected cpu, cuda, cuda:N or mps; {options}")
    return dev


def check_output_dir(out: Path) -> None:
    """The output folder is a folder (or can be made) and writable: checked before any work,
    by writing and removing a probe file. Raises :class:`CLIError`."""
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out}: is a file, expected a folder for the results; "
                       "give a folder name (it is created if needed)")
    probe = None
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".tinylib-detect.", suffix=".probe")
        os.close(fd)
    except OSError as exc:
        raise CLIError(f"--out {out}: cannot write there ({exc.strerror or exc}); choose a "
                       "folder you can write to") from None
    finally:
        if probe is not None:
            Path(probe).unlink(missing_ok=True)


def output_keys(paths: list[Path]) -> dict[Path, str]:
    """The ``folder/stem`` key of each image: its path relative to the images' common folder
    without the extension, with that folder's name in front when an image lies directly in
    it. A WIDER-like tree (``images/<event>/<name>.jpg``) thus keeps its ``event/stem``
    layout, and images of one folder get ``<folder>/<stem>``."""
    if not paths:
        return {}
    full = [p.resolve() for p in paths]
    root = Path(os.path.commonpath([str(p.parent) for p in full]))
    rel = [p.relative_to(root) for p in full]
    prefix = ""
    if any(len(r.parts) == 1 for r in rel):
        prefix = (root.name or "images") + "/"
    return {p: prefix + r.with_suffix("").as_posix() for p, r in zip(paths, rel)}


def plan_outputs(paths: list[Path], out: Path, draw: bool) -> dict[Path, dict]:
    """Where each image's results go: ``{image: {"key", "boxes", "drawing"}}`` with the boxes
    at ``<out>/<key>.txt`` (the WIDER submission layout) and drawings under
    ``<out>/drawings/<key>.jpg``. Raises :class:`CLIError` before any work when two images
    would write the same file, or an output would replace an input image."""
    keys = output_keys(paths)
    plan = {p: {"key": k, "boxes": out / f"{k}.txt",
                "drawing": out / DRAWINGS / f"{k}.jpg" if draw else None}
            for p, k in keys.items()}
    by_key: dict[str, Path] = {}
    for p, k in keys.items():
        if k in by_key and by_key[k].resolve() == p.resolve():
            raise CLIError(f"{p} is given twice (as {by_key[k]} and {p}); give each image once")
        if k in by_key:
            raise CLIError(
                f"{by_key[k]} and {p} would both write {out / k}.txt (outputs are named by the "
                "path below the images' common folder, without the extension); give them "
                "different names or run them with different --out folders")
        by_key[k] = p
    inputs = {p.resolve(): p for p in paths}
    inodes = {}  # hard links and other aliases of an input
    for q in paths:
        st = q.stat()
        inodes[(st.st_dev, st.st_ino)] = q
    for p, entry in plan.items():
        for kind in ("boxes", "drawing"):
            target = entry[kind]
            if target is None:
                continue
            hit = inputs.get(target.resolve())
            if hit is None and target.is_file():
                st = target.stat()
                hit = inodes.get((st.st_dev, st.st_ino))
            if hit is not None:
                raise CLIError(
                    f"the {'drawing' if kind == 'drawing' else 'box file'} of {p} would be "
                    f"written to {target}, which is the input {hit}; nothing was written. Choose "
                    "another --out folder")
    return plan


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tinylib-detect",
        description="Find (tiny) faces with the HR detector; writes WIDER-submission files.")
    p.add_argument("images", nargs="+", help="image files (jpg/png/...; any mode)")
    p.add_argument("--out", required=True,
                   help="output folder: <out>/<folder>/<stem>.txt per image (the folder and name "
                        "below the images' common folder)")
    p.add_argument("--weights", default=None, help=f"checkpoint (default: {DEFAULT_WEIGHTS.name})")
    p.add_argument("--threshold", type=_score, default=0.0,
                   help="score floor in [0, 1] of the detections written to the .txt files (0: every "
                        "detection after NMS, i.e. every candidate of raw score >= 0.05, as the WIDER "
                        "evaluator wants them: it ranks them all)")
    p.add_argument("--draw-threshold", type=_score, default=0.5,
                   help="score threshold in [0, 1] of the boxes drawn (--draw) and of the faces counted "
                        "on the screen (0.5)")
    p.add_argument("--nms", type=_iou, default=0.3, help="NMS IoU in (0, 1] (0.3)")
    p.add_argument("--vote", type=_iou_or_off, default=0.4,
                   help="box-voting IoU (0.4); 0 turns voting off (plain NMS, as the paper)")
    p.add_argument("--calibration", default="auto",
                   help="score calibration JSON (tinylib.hr.calibrate); 'auto' (default): the shipped "
                        f"{DEFAULT_CALIBRATION.name} when it was fitted for the weights; 'none': raw scores")
    p.add_argument("--max-side", type=_positive_int, default=CLI_MAX_SIDE,
                   help=f"cap on the pyramid's level size ({CLI_MAX_SIDE}: keeps the 2x level of "
                        "images up to 2,100 px)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: best)")
    p.add_argument("--draw", action="store_true",
                   help=f"also write <out>/{DRAWINGS}/<folder>/<stem>.jpg with the boxes")
    return p


def _calibration(choice: str, weights) -> Calibration | None:
    if choice == "none":
        return None
    if choice == "auto":
        return default_calibration(weights)
    from .cache import weights_id

    return load_calibration(choice, weights_id(Path(weights) if weights else DEFAULT_WEIGHTS))


def _draw(image: np.ndarray, boxes: np.ndarray, path: Path) -> None:
    im = Image.fromarray(image)
    d = ImageDraw.Draw(im)
    for x1, y1, x2, y2 in boxes.tolist():
        d.rectangle([x1, y1, x2, y2], outline=(255, 255, 0), width=2)
    atomic_save(path, lambda tmp: im.save(tmp, format="JPEG", quality=90), suffix=".jpg")


def main(argv: list[str] | None = None) -> int:
    """``tinylib-detect``; returns the exit code: 0 all done, 1 some images skipped (listed
    at the end), 2 nothing done (bad arguments, weights, device or output folder)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the error
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out)
    paths = [Path(name) for name in args.images]
    try:
        device = check_device(args.device)
        files = [p for p in paths if p.is_file()]
        plan = plan_outputs(files, out, args.draw)
        model = load_detector(args.weights)
        calibration = _calibration(args.calibration, args.weights)
        check_output_dir(out)
    except (CLIError, FileNotFoundError, ValueError) as exc:
        print(f"tinylib-detect: error: {exc}", file=sys.stderr)
        return 2
    det = Detector(model, device=device, score_threshold=args.threshold,
                   nms_iou=args.nms, max_side=args.max_side, vote_iou=args.vote or None,
                   calibration=calibration)
    skipped: list[tuple[Path, str]] = []
    for path in paths:
        try:
            image = read_image(path)
        except (OSError, ValueError) as exc:
            print(f"tinylib-detect: skipping {path}: {exc}", file=sys.stderr)
            skipped.append((path, str(exc)))
            continue
        entry = plan[path]
        levels = det.scales_for(*image.shape[:2])
        boxes, scores = det.detect(image)
        try:
            write_predictions({entry["key"]: to_wider(boxes, scores)}, out)
            if entry["drawing"] is not None:
                _draw(image, boxes[scores >= args.draw_threshold], entry["drawing"])
        except OSError as exc:
            msg = f"cannot write its results under {out} ({exc})"
            print(f"tinylib-detect: skipping {path}: {msg}", file=sys.stderr)
            skipped.append((path, msg))
            continue
        lv = ", ".join(f"{s:g}x" for s in levels)
        shown = int((scores >= args.draw_threshold).sum())
        print(f"{path}: {shown} faces at score >= {args.draw_threshold:g} ({len(boxes)} detections at >= "
              f"{args.threshold:g} written; pyramid {lv}) -> {entry['boxes']}")
    if skipped:
        print(f"tinylib-detect: {len(skipped)} of {len(paths)} image(s) skipped, the others "
              "done:", file=sys.stderr)
        for path, why in skipped:
            print(f"  {path}: {why}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
