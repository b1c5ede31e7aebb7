"""The GAN tiny-face detector (Bai et al.): generator + three-head discriminator trained in
alternation, and the re-scoring of a proposal stage's boxes.

:class:`GANDetector` follows the engine's multi-phase contract (:mod:`tinylib.engine`):
``phases = ("d", "g")`` -- every step first updates the discriminator (Eq. 11) on real
high-resolution crops and the generator's current output, detached; then the generator
(Eq. 10) through the just-updated discriminator, whose parameters only the "d" phase's
optimiser moves. Real and generated crops go through the discriminator as one batch in both
phases (:meth:`GANDetector._judge`; BatchNorm, see there). ``mode="mse"`` has the single phase ``"g"`` with the pixel loss alone: the
paper's "MSE-based SR network to initialize the generator" (Sec. 4.2).

Ablation switches (the paper's Table 2): ``refine`` (the refinement sub-network), ``adv``
(the adversarial loss in the generator), ``cls_in_g`` (the classification loss in the
generator), ``reg`` (the regression branch and its loss) and ``margin`` (context, Table 3).

Detection (:meth:`GANDetector.rescore`): each proposal's context window is cut from the photo
at ``lr_size x lr_size`` (the photo's own resolution for a tiny face), super-resolved and
refined, and the discriminator's face probability becomes its score (the paper's final
score); its ``reg`` offsets move the box. ``fuse="geometric"`` scores
``sqrt(proposal score x face probability)`` instead -- ours, stated wherever it is used.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..engine import weights as engine_weights
from . import losses as L
from .crops import crop, decode, downsample, windows
from .model import Discriminator, Generator, to_unit

log = logging.getLogger(__name__)

__all__ = ["MODEL_DEFAULTS", "GANDetector", "build_gan", "collate", "CropDataset",
           "save_weights", "load_gan"]

MODEL_DEFAULTS = {
    "lr_size": 16, "scale": 4, "margin": 2.0,
    "generator": {"width": 64, "up_width": 256, "blocks": 4, "refine_width": 64,
                  "refine_up_width": 256, "skip": False},
    "discriminator": {"trunk": "resnet50", "pretrained": "auto"},
    "refine": True, "adv": True, "cls_in_g": True, "reg": True,
    "alpha": L.ALPHA, "beta": L.BETA, "gamma": L.GAMMA, "adv_form": "paper",
    "mode": "gan",
}


def _merge(base: dict, over: dict | None) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for k, v in (over or {}).items():
        if k not in base:
            raise ValueError(f"unknown GAN model setting {k!r}; known: {sorted(base)}")
        out[k] = _merge(base[k], v) if isinstance(base[k], dict) else v
    return out


class GANDetector(nn.Module):
    """Generator + discriminator + the paper's losses; see the module docstring."""

    def __init__(self, config: dict | None = None):
        super().__init__()
        cfg = _merge(MODEL_DEFAULTS, config)
        if cfg["mode"] not in ("gan", "mse"):
            raise ValueError(f"mode must be 'gan' or 'mse', got {cfg['mode']!r}")
        self.config = cfg
        self.generator = Generator(**cfg["generator"], refine=cfg["refine"], scale=cfg["scale"])
        self.discriminator = Discriminator(**cfg["discriminator"])

    @property
    def phases(self) -> tuple[str, ...]:
        return ("g",) if self.config["mode"] == "mse" else ("d", "g")

    def phase_param_groups(self, phase: str, lr_mult=None, weight_decay: float = 0.0):
        net = {"d": self.discriminator, "g": self.generator}[phase]
        mult = float((lr_mult or {}).get(phase, 1.0))
        return [{"params": [p for p in net.parameters() if p.requires_grad], "lr_mult": mult,
                 "weight_decay": weight_decay, "name": phase}]

    # ----------------------------------------------------------------------- training
    def forward(self, lr: torch.Tensor, targets: dict, phase: str = "g") -> dict:
        """The losses of one phase for a batch: ``lr`` ``(B, 3, s, s)`` and ``targets`` with
        ``hr`` ``(B, 3, 4s, 4s)`` (both ``[-1, 1]``), ``label`` ``(B,)``, ``reg`` ``(B, 4)``."""
        c = self.config
        hr, y, v = targets["hr"], targets["label"], targets["reg"]
        if phase == "d":
            with torch.no_grad():
                fake = self.generator.output(lr)
            d_real, d_fake = self._judge(hr, fake)
            out = {"d_adv": c["alpha"] * L.adversarial_d(d_real["gan"], d_fake["gan"]),
                   "d_cls": c["beta"] * (L.classification(d_real["cls"], y)
                                         + L.classification(d_fake["cls"], y))}
            if c["reg"]:
                out["d_reg"] = c["gamma"] * (L.regression(d_real["reg"], v, y)
                                             + L.regression(d_fake["reg"], v, y))
            return out
        if phase != "g":
            raise ValueError(f"phase must be 'd' or 'g', got {phase!r}")
        sr, refined = self.generator(lr)
        out = {"g_mse": L.pixel_loss(sr, refined, hr)}
        if c["mode"] == "mse":
            return out
        _, d_fake = self._judge(hr, refined if refined is not None else sr)
        if c["adv"]:
            out["g_adv"] = c["alpha"] * L.adversarial_g(d_fake["gan"], c["adv_form"])
        if c["cls_in_g"]:
            out["g_cls"] = c["beta"] * L.classification(d_fake["cls"], y)
        if c["reg"]:
            out["g_reg"] = c["gamma"] * L.regression(d_fake["reg"], v, y)
        return out

    def _judge(self, real: torch.Tensor, fake: torch.Tensor):
        """The discriminator on real and generated crops in **one** batch, split after: its
        BatchNorm statistics are then those of the mix it meets at test time (running
        statistics of separate real-only and fake-only batches would differ from both)."""
        out = self.discriminator(torch.cat([real, fake]))
        n = len(real)
        return ({k: v[:n] for k, v in out.items()}, {k: v[n:] for k, v in out.items()})

    # ---------------------------------------------------------------------- inference
    @torch.no_grad()
    def score_crops(self, lr_crops: torch.Tensor, batch_size: int = 256):
        """Face probabilities ``(N,)`` and offsets ``(N, 4)`` of low-resolution crops
        ``(N, 3, s, s)`` (0..255 floats) through generator and discriminator."""
        self.eval()
        dev = next(self.parameters()).device
        probs, regs = [], []
        for i in range(0, len(lr_crops), batch_size):
            x = to_unit(lr_crops[i:i + batch_size].to(dev))
            d = self.discriminator(self.generator.output(x))
            probs.append(torch.sigmoid(d["cls"]).float().cpu())
            regs.append(d["reg"].float().cpu())
        if not probs:
            return torch.zeros(0), torch.zeros(0, 4)
        return torch.cat(probs), torch.cat(regs)

    def proposal_scores(self, image, proposals: np.ndarray):
        """Face probability ``(N,)`` and offsets ``(N, 4)`` of one photo's proposals (rows
        xyxy[+ score]): each context window cut at ``lr_size`` px, super-resolved, refined
        and put through the discriminator."""
        props = np.asarray(proposals, np.float32).reshape(len(proposals), -1)
        c = self.config
        lr = crop(torch.as_tensor(np.ascontiguousarray(image)),
                  windows(props[:, :4], c["margin"]), c["lr_size"])
        p, t = self.score_crops(lr)
        return p.numpy(), t.numpy()

    def finish(self, proposals: np.ndarray, prob: np.ndarray, offsets: np.ndarray, *,
               fuse: str = "none", use_reg: bool | None = None,
               nms_iou: float | None = 0.3) -> np.ndarray:
        """Rows ``(N', 5)`` (xyxy, new score) from proposals ``(N, 5)`` and their
        :meth:`proposal_scores`, sorted by score; see :meth:`rescore`."""
        props = np.asarray(proposals, np.float32).reshape(-1, 5)
        if fuse == "geometric":
            prob = np.sqrt(np.clip(props[:, 4], 0, 1) * prob)
        elif fuse != "none":
            raise ValueError(f"fuse must be 'none' or 'geometric', got {fuse!r}")
        use_reg = self.config["reg"] if use_reg is None else use_reg
        boxes = decode(offsets, props[:, :4]) if use_reg and len(props) else props[:, :4]
        out = np.concatenate([boxes, np.asarray(prob, np.float32).reshape(-1, 1)], 1).astype(np.float32)
        if nms_iou is not None and len(out):
            import torchvision

            keep = torchvision.ops.nms(torch.as_tensor(out[:, :4]), torch.as_tensor(out[:, 4]),
                                       nms_iou).numpy()
            out = out[keep]
        return out[np.argsort(-out[:, 4], kind="stable")]

    def rescore(self, image, proposals: np.ndarray, *, fuse: str = "none",
                use_reg: bool | None = None, nms_iou: float | None = 0.3) -> np.ndarray:
        """Re-score one photo's proposals ``(N, 5)`` xyxy + score: returns ``(N', 5)`` rows
        (xyxy, new score), sorted by score (NMS at ``nms_iou`` after the boxes moved; None:
        none). ``fuse``: ``"none"`` (the discriminator's face probability, the paper) or
        ``"geometric"`` (its geometric mean with the proposal's score, ours). ``use_reg``:
        move the boxes by the regression head (default: when the model has one)."""
        props = np.asarray(proposals, np.float32).reshape(-1, 5)
        if not len(props):
            return props
        p, t = self.proposal_scores(image, props)
        return self.finish(props, p, t, fuse=fuse, use_reg=use_reg, nms_iou=nms_iou)


def build_gan(config: dict | None = None) -> GANDetector:
    return GANDetector(config)


class CropDataset(torch.utils.data.Dataset):
    """Training samples from a :class:`~tinylib.gan.crops.CropSet`: the high-resolution crop
    (``hr_size``), its bicubic x``scale`` down-sampled copy, the label and the targets; a
    random horizontal flip (which negates ``tx``) when ``flip``."""

    def __init__(self, crops, *, scale: int = 4, flip: bool = True, seed: int = 0):
        self.crops, self.scale, self.flip, self.seed, self.epoch = crops, scale, flip, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i: int):
        hr = self.crops.hr[i].float()
        reg = self.crops.reg[i].clone()
        if self.flip and np.random.default_rng((self.seed, self.epoch, i)).random() < 0.5:
            hr = hr.flip(-1)
            reg[0] = -reg[0]
        return hr, self.crops.label[i], reg


def collate(batch, scale: int = 4):
    """``[(hr, label, reg)] -> (lr, {"hr", "label", "reg"})`` in ``[-1, 1]``; the LR inputs
    are the paper's bicubic x``scale`` down-samples of the HR crops."""
    hr = torch.stack([b[0] for b in batch])
    lr = downsample(hr, scale)
    return to_unit(lr), {"hr": to_unit(hr), "label": torch.stack([b[1] for b in batch]),
                         "reg": torch.stack([b[2] for b in batch])}


def save_weights(model: GANDetector, path, *, half: bool = True, meta: dict | None = None) -> Path:
    """Inference weights (the config, the state dict in fp16 unless ``half=False``, ``meta``),
    written atomically: :func:`tinylib.engine.weights.save` with family ``gan``."""
    return engine_weights.save(model, path, family="gan", half=half, meta=meta)


def _build_from_config(cfg: dict) -> GANDetector:
    """The untrained :class:`GANDetector` a weights file's config describes (family ``gan``),
    its discriminator's trunk built without pretrained weights (they are in the state dict)."""
    cfg = dict(cfg)
    cfg["discriminator"] = dict(cfg.get("discriminator", {}), pretrained=False)
    return GANDetector(cfg)


engine_weights.register_family(
    "gan", _build_from_config, recognise=lambda cfg: "generator" in cfg and "discriminator" in cfg,
    label="GAN", saver="tinylib.gan.detector.save_weights")


def load_gan(path: str | os.PathLike, *, device=None) -> GANDetector:
    """A :class:`GANDetector` from :func:`save_weights` files (and the older ``state_dict``
    ones) or a training checkpoint (``last.pt``): :func:`tinylib.engine.weights.load` with
    family ``gan``; errors name the file."""
    return engine_weights.load(path, device=device, family="gan")
