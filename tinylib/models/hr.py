"""The hybrid-resolution (HR) detector of *Finding Tiny Faces* (Hu & Ramanan, Fig. 8).

A ResNet backbone (``tinylib.models.backbones.resnet_features``), a *hypercolumn* head at
stride 8 and one template per channel:

* features: ``res3`` (stride 8) + ``res4`` (stride 16) brought to ``res3`` resolution by a
  fixed bilinear transposed convolution, ``res5`` optional (stride 32, x4);
* heads: a 1x1 classification head (one logit per template) and a 1x1 regression head
  (4 Faster R-CNN deltas per template).

A 1x1 convolution on the concatenated hypercolumn ``[res3, up(res4), up(res5)]`` equals the
sum of 1x1 convolutions on each layer, each followed by the same fixed upsampling
(both are linear; the released MatConvNet model is built that way: ``score_res3 +
up(score_res4)``). We use the second form: it upsamples ``5 T`` channels instead of 1024.

``balance_classes=True`` averages the positive and the negative losses separately (useful
when faces are so small that an image has only a few positive locations, as in the quick
synthetic world); the default is the paper's mean over the sampled locations.

Training mode: ``model(images, targets)`` returns the loss dict ``{"loss_cls", "loss_reg"}``
(targets computed on the device, :mod:`tinylib.targets`, with OHEM). Eval mode:
``model(images)`` returns ``(cls_logits (B, T, h, w), deltas (B, T, 4, h, w))``.
Images are float ``(B, 3, H, W)`` RGB in ``0..255``; padding should hold the RGB mean
(:data:`RGB_MEAN`), and each target may carry ``valid`` = the ``(x1, y1, x2, y2)`` of real
pixels so windows over the padding are ignored.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .. import targets as T

log = logging.getLogger(__name__)

__all__ = [
    "RGB_MEAN",
    "RGB_STD",
    "Templates",
    "HRDetector",
    "build_hr",
    "bilinear_upsampler",
    "collate",
    "hr_template_set",
    "HR25_A",
    "HR25_B",
]

RGB_MEAN = (123.675, 116.28, 103.53)  # ImageNet mean in 0..255 (torchvision)
RGB_STD = (58.395, 57.12, 57.375)


@dataclass
class Templates:
    """Template shapes ``w x h`` (pixels of the image at ``scale``) and the A/B routing.

    ``a`` templates run on every pyramid level, ``b`` (the tiny ones, trained on 2x
    upsampled faces) only on upsampled levels; the rest are trained but pruned at test
    time (Table 1 of the paper: A+B)."""

    sizes: np.ndarray  # (T, 2) w, h
    scales: np.ndarray  # (T,) image scale the template is meant for (0.5, 1, 2)
    a: list[int] = field(default_factory=list)
    b: list[int] = field(default_factory=list)

    def __post_init__(self):
        self.sizes = np.asarray(self.sizes, dtype=np.float64).reshape(-1, 2)
        self.scales = np.asarray(self.scales, dtype=np.float64).reshape(-1)
        if len(self.scales) != len(self.sizes):
            raise ValueError(f"{len(self.sizes)} template sizes but {len(self.scales)} scales")
        if (self.sizes <= 0).any():
            raise ValueError("template widths and heights must be positive")
        if not self.a and not self.b:
            self.a = [int(i) for i in np.flatnonzero(np.isclose(self.scales, 1.0))]
            self.b = [int(i) for i in np.flatnonzero(self.scales > 1.0 + 1e-9)]
            if not self.a and not self.b:
                self.a = list(range(len(self.sizes)))
        self.a = [int(i) for i in self.a]
        self.b = [int(i) for i in self.b]

    def __len__(self) -> int:
        return len(self.sizes)

    @classmethod
    def from_any(cls, obj) -> Templates:
        """From a :class:`Templates`, a DataFrame with ``w, h[, scale]`` columns (e.g.
        ``tinylib.data.templates.load_templates()`` or tinylib's own clustering), an array
        ``(T, 2)`` of w, h, ``(T, 3)`` w, h, scale, ``(T, 4)`` centred boxes (MATLAB ``x2 - x1 + 1`` widths, as in
        ``RefBox_N25.mat``) or ``(T, 5)`` boxes + scale, or a dict from :meth:`to_dict`."""
        if isinstance(obj, Templates):
            return obj
        if isinstance(obj, dict):
            return cls(np.asarray(obj["sizes"]), np.asarray(obj["scales"]),
                       list(obj.get("a", [])), list(obj.get("b", [])))
        if hasattr(obj, "columns"):  # DataFrame
            cols = {c.lower(): c for c in obj.columns}
            if "w" not in cols or "h" not in cols:
                raise ValueError(f"template table needs columns w and h, has {list(obj.columns)}")
            sizes = np.stack([obj[cols["w"]].to_numpy(float), obj[cols["h"]].to_numpy(float)], 1)
            scales = obj[cols["scale"]].to_numpy(float) if "scale" in cols else np.ones(len(obj))
            return cls(sizes, scales)
        arr = np.asarray(obj, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] not in (2, 3, 4, 5):
            raise ValueError(f"templates: expected (T, 2) w h, (T, 3) w h scale, (T, 4) boxes "
                             f"or (T, 5) boxes + scale, got {arr.shape}")
        if arr.shape[1] in (2, 3):
            return cls(arr[:, :2], arr[:, 2] if arr.shape[1] == 3 else np.ones(len(arr)))
        sizes = np.stack([arr[:, 2] - arr[:, 0] + 1, arr[:, 3] - arr[:, 1] + 1], 1)
        scales = arr[:, 4] if arr.shape[1] == 5 else np.ones(len(arr))
        return cls(sizes, scales)

    def to_dict(self) -> dict:
        return {"sizes": self.sizes.tolist(), "scales": self.scales.tolist(),
                "a": list(self.a), "b": list(self.b)}


#: A and B templates of the released HR model (``tiny_face_detector.m``: ``tids = 5:12`` on
#: every level, ``19:25`` added on upsampled levels; 0-based here). Templates 1-4 (0.5x)
#: and 13-18 are trained but pruned at test time (Table 1, "A+B").
HR25_A = list(range(4, 12))
HR25_B = list(range(18, 25))


def hr_template_set(scaled: bool = True, root=None) -> Templates:
    """The paper's 25 templates (``RefBox_N25_scaled.mat`` when ``scaled``, else the raw
    clusters at scale 1) with the released model's A/B routing. Without the released files
    (the embedded default), tinylib's own clustering stands in (:func:`own_template_set`),
    with a warning."""
    from ..data import sources
    from ..data.templates import load_templates

    if root is None and sources.missing_files(sources.HR_TEMPLATES):
        log.warning("released HR templates (RefBox_N25*.mat) not in the data root: using "
                    "tinylib's own k-medoids templates instead")
        return own_template_set(scale_rule=scaled)
    tpl = Templates.from_any(load_templates(scaled=scaled, root=root))
    if scaled and len(tpl) == 25:
        tpl.a, tpl.b = list(HR25_A), list(HR25_B)
    return tpl


def own_template_set(k: int = 25, *, scale_rule: bool = True, seed: int = 0) -> Templates:
    """tinylib's own templates: Jaccard k-medoids (Eq. 1) of the WIDER-format train face
    shapes — the real annotations when present, else the synthetic world — with the paper's
    resolution rule (faces < 40 px tall get templates built at 2x, > 140 px at 0.5x) when
    ``scale_rule``. A templates are the 1x ones, B the 2x ones."""
    from ..analysis.clustering import apply_resolution_rule, kmedoids_shapes
    from ..data import sources
    from ..data.widerface import load_faces

    src = sources.choose(sources.WIDER_ANNOTATIONS, what="face shapes to cluster")
    faces = load_faces("train", root=src.root)
    faces = faces[~faces["degenerate"].to_numpy(bool)]
    medoids = kmedoids_shapes(faces[["h", "w"]].to_numpy(float), k, seed=seed).medoids
    if not scale_rule:
        return Templates(medoids[:, ::-1], np.ones(len(medoids)))
    rule = apply_resolution_rule(medoids)
    return Templates(np.stack([rule.w_built, rule.h_built], 1), rule.scale.to_numpy())


def bilinear_upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    """A frozen depthwise transposed convolution doing bilinear upsampling by ``factor``
    (FCN's ``bilinear`` filler; ``align_corners=False`` geometry: output ``factor * n``)."""
    k = 2 * factor
    conv = nn.ConvTranspose2d(channels, channels, k, stride=factor, padding=factor // 2,
                              groups=channels, bias=False)
    centre = (k - 1) / 2.0 if k % 2 == 1 else factor - 0.5
    og = np.ogrid[:k, :k]
    filt = (1 - abs(og[0] - centre) / factor) * (1 - abs(og[1] - centre) / factor)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(filt).float().expand(channels, 1, k, k))
    conv.weight.requires_grad_(False)
    return conv


_STAGE_PATTERNS = [
    (re.compile(r"(^|\.)(layer4|res5)(\.|$)"), "res5"),
    (re.compile(r"(^|\.)(layer3|res4)(\.|$)"), "res4"),
    (re.compile(r"(^|\.)(layer2|res3)(\.|$)"), "res3"),
    (re.compile(r"(^|\.)(layer1|res2)(\.|$)"), "res2"),
    (re.compile(r"(^|\.)(conv1|bn1|stem|res1|maxpool)(\.|$)"), "stem"),
]


def _stage(name: str) -> str:
    for pat, stage in _STAGE_PATTERNS:
        if pat.search(name):
            return stage
    return "head"


class HRDetector(nn.Module):
    """Hybrid-resolution tiny-face detector (see the module docstring)."""

    #: per-stage learning-rate multipliers (supplementary: res4 1, res3 0.1, res2 0.01)
    DEFAULT_LR_MULT = {"stem": 0.01, "res2": 0.01, "res3": 0.1, "res4": 1.0, "res5": 1.0,
                       "head": 1.0}

    def __init__(
        self,
        templates,
        backbone: nn.Module,
        *,
        use_res5: bool = False,
        freeze_bn: bool = False,
        pos_iou: float = 0.7,
        neg_iou: float = 0.3,
        ohem_threshold: float = 0.03,
        num_pos: int = 128,
        num_neg: int = 128,
        reg_weight: float = 1.0,
        balance_classes: bool = False,
        config: dict | None = None,
    ):
        super().__init__()
        self.templates = Templates.from_any(templates)
        self.backbone = backbone
        self.use_res5 = use_res5
        self.freeze_bn = freeze_bn
        self.pos_iou, self.neg_iou = pos_iou, neg_iou
        self.ohem_threshold, self.num_pos, self.num_neg = ohem_threshold, num_pos, num_neg
        self.reg_weight = reg_weight
        self.balance_classes = balance_classes
        self.config = dict(config or {})
        strides = getattr(backbone, "strides", {"res3": 8, "res4": 16, "res5": 32})
        chans = backbone.out_channels
        self.stride = int(strides["res3"])
        nt = len(self.templates)
        self.num_templates = nt
        out = 5 * nt  # nt logits + 4 nt deltas
        self.score_res3 = nn.Conv2d(chans["res3"], out, 1)
        self.score_res4 = nn.Conv2d(chans["res4"], out, 1)
        self.up_res4 = bilinear_upsampler(out, int(strides["res4"]) // self.stride)
        if use_res5:
            self.score_res5 = nn.Conv2d(chans["res5"], out, 1)
            self.up_res5 = bilinear_upsampler(out, int(strides["res5"]) // self.stride)
        for conv in (self.score_res3, self.score_res4) + ((self.score_res5,) if use_res5 else ()):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(RGB_STD).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("template_sizes",
                             torch.tensor(self.templates.sizes, dtype=torch.float32),
                             persistent=False)

    # -- training helpers -------------------------------------------------------------------
    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.freeze_bn:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def param_groups(self, lr_mult: dict | None = None, weight_decay: float = 5e-4) -> list[dict]:
        """Parameter groups with ``lr_mult`` per stage (``stem, res2, res3, res4, res5,
        head``); biases and norm parameters without weight decay. The engine multiplies
        the base learning rate by ``lr_mult``."""
        mult = dict(self.DEFAULT_LR_MULT)
        mult.update(lr_mult or {})
        groups: dict[tuple, dict] = OrderedDict()
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            stage = _stage(name[len("backbone."):]) if name.startswith("backbone.") else "head"
            no_decay = p.ndim <= 1
            key = (stage, no_decay)
            if key not in groups:
                groups[key] = {"params": [], "lr_mult": float(mult[stage]),
                               "weight_decay": 0.0 if no_decay else weight_decay,
                               "name": f"{stage}{'/no_decay' if no_decay else ''}"}
            groups[key]["params"].append(p)
        return list(groups.values())

    # -- forward ---------------------------------------------------------------------------
    def heads(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (images - self.mean) / self.std
        feats = self.backbone(x)
        r3 = self.score_res3(feats["res3"])
        h, w = r3.shape[-2:]
        s = r3 + self.up_res4(self.score_res4(feats["res4"]))[..., :h, :w]
        if self.use_res5:
            s = s + self.up_res5(self.score_res5(feats["res5"]))[..., :h, :w]
        nt = self.num_templates
        cls = s[:, :nt]
        reg = s[:, nt:].reshape(s.shape[0], nt, 4, h, w)
        return cls, reg

    def forward(self, images: torch.Tensor, targets: list[dict] | None = None):
        cls, reg = self.heads(images)
        if not self.training:
            return cls, reg
        if targets is None:
            raise ValueError("HRDetector in training mode needs targets (call model.eval() "
                             "for inference)")
        return self.loss(cls, reg, targets)

    def compute_targets(self, targets: list[dict], height: int, width: int):
        labels, regs = [], []
        for t in targets:
            lab, reg = T.assign_targets(
                self.template_sizes, t["boxes"], height, width, self.stride,
                ignore=t.get("ignore"), valid=t.get("valid"),
                pos_iou=self.pos_iou, neg_iou=self.neg_iou)
            labels.append(lab)
            regs.append(reg)
        return torch.stack(labels), torch.stack(regs)

    def loss(self, cls: torch.Tensor, reg: torch.Tensor, targets: list[dict]) -> dict:
        h, w = cls.shape[-2:]
        labels, reg_t = self.compute_targets(targets, h, w)
        cls = cls.float()
        el = T.classification_loss(cls, labels)
        mask = T.ohem_sample(el, labels, threshold=self.ohem_threshold,
                             num_pos=self.num_pos, num_neg=self.num_neg)
        pos = mask & (labels == T.POSITIVE)
        if self.balance_classes:  # positives and negatives weigh equally, however few
            neg = mask & (labels == T.NEGATIVE)
            loss_cls = 0.5 * ((el * pos).sum() / pos.sum().clamp(min=1)
                              + (el * neg).sum() / neg.sum().clamp(min=1))
        else:  # the paper: mean over the sampled locations
            loss_cls = (el * mask).sum() / mask.sum().clamp(min=1)
        npos = pos.sum()
        loss_reg = T.regression_loss(reg, reg_t, pos) / npos.clamp(min=1)
        return {"loss_cls": loss_cls, "loss_reg": self.reg_weight * loss_reg}


def build_hr(
    templates=None,
    depth: int = 18,
    *,
    caffe_style: bool = False,
    pretrained: bool | str = "auto",
    use_res5: bool = False,
    freeze_bn: bool | None = None,
    **kwargs,
) -> HRDetector:
    """An :class:`HRDetector` on ``resnet_features(depth)``.

    ``templates``: anything :meth:`Templates.from_any` takes; ``None`` loads the paper's 25
    (needs the data root). ``pretrained="auto"`` uses ImageNet weights when they are in the
    torch hub cache and otherwise logs a clear message and trains from scratch.
    ``use_res5=False`` truncates the backbone after ``res4`` (res5 is neither computed nor
    stored). ``freeze_bn`` defaults to ``True`` with ImageNet weights, ``False`` from scratch."""
    from .backbones import resnet_features

    tpl = hr_template_set() if templates is None else Templates.from_any(templates)
    if pretrained == "auto":
        pretrained = _imagenet_weights_cached(depth, caffe_style)
        if not pretrained:
            log.warning(
                "ImageNet weights for ResNet-%d are not in the torch hub cache (%s); training "
                "from scratch. Put the torchvision checkpoint there to fine-tune as the paper "
                "does.", depth, torch.hub.get_dir())
    backbone = resnet_features(depth, caffe_style=caffe_style, pretrained=bool(pretrained))
    if not use_res5:
        _truncate_res5(backbone)
    if freeze_bn is None:
        freeze_bn = bool(pretrained)
    cfg = {"depth": depth, "caffe_style": caffe_style, "use_res5": use_res5,
           "templates": tpl.to_dict(), "freeze_bn": freeze_bn}
    cfg.update({k: v for k, v in kwargs.items() if isinstance(v, (int, float, str, bool))})
    return HRDetector(tpl, backbone, use_res5=use_res5, freeze_bn=freeze_bn, config=cfg, **kwargs)


def _imagenet_weights_cached(depth: int, caffe_style: bool) -> bool:
    from pathlib import Path

    ckpt = Path(torch.hub.get_dir()) / "checkpoints"
    if not ckpt.is_dir():
        return False
    return any(p.name.startswith(f"resnet{depth}-") for p in ckpt.glob("*.pth"))


def _truncate_res5(backbone: nn.Module) -> None:
    """Replace the res5 stage by an identity so it is neither computed nor stored."""
    for name in ("res5", "layer4"):
        if hasattr(backbone, name):
            setattr(backbone, name, nn.Identity())
            return
    for name, _mod in list(backbone.named_modules()):
        if name.endswith(("res5", "layer4")) and "." in name:
            parent = backbone.get_submodule(name.rsplit(".", 1)[0])
            setattr(parent, name.rsplit(".", 1)[1], nn.Identity())
            return
    raise ValueError("cannot find the res5 stage (layer4/res5) of the backbone to truncate")


def collate(batch, divisor: int = 32):
    """Samples ``(image uint8 HxWx3, target)`` -> ``(images float (B,3,H,W), targets)``.

    Images are padded bottom/right to a common size (multiple of ``divisor``) with the RGB
    mean; each target gets ``boxes``/``ignore`` tensors and ``valid`` = the real-pixel region
    (intersected with a ``valid`` the transform may already have set, e.g. a padded crop)."""
    if not batch:
        raise ValueError("collate got an empty batch")
    hs = [int(img.shape[0]) for img, _ in batch]
    ws = [int(img.shape[1]) for img, _ in batch]
    H = -(-max(hs) // divisor) * divisor
    W = -(-max(ws) // divisor) * divisor
    out = torch.empty((len(batch), 3, H, W), dtype=torch.float32)
    out[:] = torch.tensor(RGB_MEAN).view(1, 3, 1, 1)
    targets = []
    for i, (img, tgt) in enumerate(batch):
        arr = np.asarray(img)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"image {tgt.get('image_id', i)!r}: expected HxWx3, got {arr.shape}")
        out[i, :, : arr.shape[0], : arr.shape[1]] = torch.from_numpy(
            np.ascontiguousarray(arr.transpose(2, 0, 1))).float()
        boxes = torch.as_tensor(np.asarray(tgt.get("boxes", np.zeros((0, 4))), np.float32)
                                .reshape(-1, 4))
        ign = tgt.get("ignore")
        ign = (torch.zeros(len(boxes), dtype=torch.bool) if ign is None
               else torch.as_tensor(np.asarray(ign, dtype=bool)))
        valid = [0.0, 0.0, float(arr.shape[1]), float(arr.shape[0])]
        if tgt.get("valid") is not None:
            v = [float(x) for x in tgt["valid"]]
            valid = [max(valid[0], v[0]), max(valid[1], v[1]), min(valid[2], v[2]),
                     min(valid[3], v[3])]
        targets.append({"boxes": boxes, "ignore": ign, "valid": valid,
                        "image_id": tgt.get("image_id", str(i))})
    return out, targets
