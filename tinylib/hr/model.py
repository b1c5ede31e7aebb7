"""The hybrid-resolution (HR) detector of *Finding Tiny Faces* (Hu & Ramanan, Fig. 8).

A backbone (``tinylib.models.backbones.resnet_features`` or the ImageNet MobileNetV1 x0.25 of
``tinylib.models.mobilenet``), a *hypercolumn* head at
stride 8 and one template per channel:

* features: ``res3`` (stride 8) + ``res4`` (stride 16) brought to ``res3`` resolution by a
  fixed bilinear transposed convolution, ``res5`` optional (stride 32, x4); ``use_res4=False``
  keeps ``res3`` alone (the "without context" ablation: no large receptive field);
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
(targets computed on the device, :mod:`tinylib.hr.targets`, with OHEM). Eval mode:
``model(images)`` returns ``(cls_logits (B, T, h, w), deltas (B, T, 4, h, w))``.
Images are float ``(B, 3, H, W)`` RGB in ``0..255``; padding should hold the RGB mean
(:data:`RGB_MEAN`), and each target may carry ``valid`` = the ``(x1, y1, x2, y2)`` of real
pixels so windows over the padding are ignored.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import data_file
from ..models.backbones import resnet_features
from ..models.mobilenet import IMAGENET_WEIGHTS, mobilenet_v1_025
from . import targets as T
from .templates import Templates, hr_template_set

log = logging.getLogger(__name__)

__all__ = ["RGB_MEAN", "RGB_STD", "HRDetector", "build_hr", "centre_taps_only", "input_reach", "bilinear_upsampler", "collate"]

RGB_MEAN = (123.675, 116.28, 103.53)  # ImageNet mean in 0..255 (torchvision)
RGB_STD = (58.395, 57.12, 57.375)


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


# learning-rate groups of backbone parameters (the keys of HRDetector.DEFAULT_LR_MULT); not
# the BH paper's stage numbering of tinylib.analysis.flops.bh_stage_of
_LR_GROUP_PATTERNS = [
    (re.compile(r"(^|\.)(layer4|res5)(\.|$)"), "res5"),
    (re.compile(r"(^|\.)(layer3|res4)(\.|$)"), "res4"),
    (re.compile(r"(^|\.)(layer2|res3)(\.|$)"), "res3"),
    (re.compile(r"(^|\.)(layer1|res2)(\.|$)"), "res2"),
    (re.compile(r"(^|\.)(conv1|bn1|stem|res1|maxpool)(\.|$)"), "stem"),
    (re.compile(r"(^|\.)stage1(\.|$)"), "stage1"),  # MobileNetV1 (tinylib.models.mobilenet)
    (re.compile(r"(^|\.)stage2(\.|$)"), "stage2"),
    (re.compile(r"(^|\.)stage3(\.|$)"), "stage3"),
]


def _lr_group(name: str) -> str:
    """The learning-rate group of a backbone parameter name: ``stem``, ``res2``..``res5``
    (ResNet), ``stage1``..``stage3`` (MobileNetV1, its own stage names) or ``head``."""
    for pat, group in _LR_GROUP_PATTERNS:
        if pat.search(name):
            return group
    return "head"


class HRDetector(nn.Module):
    """Hybrid-resolution tiny-face detector (see the module docstring)."""

    #: per-stage learning-rate multipliers (supplementary: res4 1, res3 0.1, res2 0.01)
    DEFAULT_LR_MULT = {"stem": 0.01, "res2": 0.01, "res3": 0.1, "res4": 1.0, "res5": 1.0,
                       "stage1": 0.1, "stage2": 1.0, "stage3": 1.0, "head": 1.0}

    #: feature maps the hypercolumn reads, finest (stride 8) first, per backbone family
    RESNET_FEATURES = ("res3", "res4", "res5")

    def __init__(
        self,
        templates,
        backbone: nn.Module,
        *,
        use_res5: bool = False,
        use_res4: bool = True,
        freeze_bn: bool = False,
        pos_iou: float = 0.7,
        neg_iou: float = 0.3,
        match_best: float | None = None,
        ohem_threshold: float = 0.03,
        num_pos: int = 128,
        num_neg: int = 128,
        reg_weight: float = 1.0,
        balance_classes: bool = False,
        features: tuple[str, str, str] = RESNET_FEATURES,
        config: dict | None = None,
    ):
        super().__init__()
        self.features = tuple(features)
        self.templates = Templates.from_any(templates)
        self.backbone = backbone
        if use_res5 and not use_res4:
            raise ValueError("use_res5 needs use_res4 (the hypercolumn adds res5 to res3 + res4)")
        self.use_res5 = use_res5
        self.use_res4 = use_res4
        self.freeze_bn = freeze_bn
        self.pos_iou, self.neg_iou = pos_iou, neg_iou
        self.match_best = match_best
        self.ohem_threshold, self.num_pos, self.num_neg = ohem_threshold, num_pos, num_neg
        self.reg_weight = reg_weight
        self.balance_classes = balance_classes
        self.config = dict(config or {})
        f3, f4, f5 = self.features
        strides = getattr(backbone, "strides", {f3: 8, f4: 16, f5: 32})
        chans = backbone.out_channels
        self.stride = int(strides[f3])
        nt = len(self.templates)
        self.num_templates = nt
        out = 5 * nt  # nt logits + 4 nt deltas
        self.score_res3 = nn.Conv2d(chans[f3], out, 1)
        if use_res4:
            self.score_res4 = nn.Conv2d(chans[f4], out, 1)
            self.up_res4 = bilinear_upsampler(out, int(strides[f4]) // self.stride)
        if use_res5:
            self.score_res5 = nn.Conv2d(chans[f5], out, 1)
            self.up_res5 = bilinear_upsampler(out, int(strides[f5]) // self.stride)
        for conv in ((self.score_res3,) + ((self.score_res4,) if use_res4 else ())
                     + ((self.score_res5,) if use_res5 else ())):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(RGB_STD).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("template_sizes_wh",
                             torch.tensor(self.templates.sizes_wh, dtype=torch.float32),
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
            group = _lr_group(name[len("backbone."):]) if name.startswith("backbone.") else "head"
            no_decay = p.ndim <= 1
            key = (group, no_decay)
            if key not in groups:
                groups[key] = {"params": [], "lr_mult": float(mult.get(group, 1.0)),
                               "weight_decay": 0.0 if no_decay else weight_decay,
                               "name": f"{group}{'/no_decay' if no_decay else ''}"}
            groups[key]["params"].append(p)
        return list(groups.values())

    # -- forward ---------------------------------------------------------------------------
    def heads(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (images - self.mean) / self.std
        feats = self.backbone(x)
        f3, f4, f5 = self.features
        r3 = self.score_res3(feats[f3])
        h, w = r3.shape[-2:]
        s = r3
        if self.use_res4:
            s = s + self.up_res4(self.score_res4(feats[f4]))[..., :h, :w]
        if self.use_res5:
            s = s + self.up_res5(self.score_res5(feats[f5]))[..., :h, :w]
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
                self.template_sizes_wh, t["boxes"], height, width, self.stride,
                ignore=t.get("ignore"), valid=t.get("valid"),
                pos_iou=self.pos_iou, neg_iou=self.neg_iou, match_best=self.match_best)
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


def centre_taps_only(module: nn.Module) -> int:
    """Keep only the centre tap of every 3x3 depthwise convolution in ``module``: the other
    taps are zeroed now and their gradients masked (a hook), so an optimiser whose update is
    zero for a zero gradient on a zero weight (SGD, Adam, AdamW) keeps them zero. Returns how
    many convolutions were restricted."""
    n = 0
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.groups == m.in_channels > 1:
            mask = torch.zeros_like(m.weight)
            mask[..., 1, 1] = 1.0
            with torch.no_grad():
                m.weight.mul_(mask)
            m.weight.register_hook(lambda g, mask=mask: g * mask)
            n += 1
    return n


def input_reach(model: HRDetector, size: int = 320, at: tuple[int, int] | None = None) -> int:
    """How much context one score can use: the extent (input pixels, the larger side) of the
    input pixels whose gradient reaches the first template's score at heatmap position ``at``
    (default: the centre) of a random ``size`` x ``size`` input. The model is put in eval mode."""
    model = model.eval()
    x = (torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 255).requires_grad_()
    cls = model(x)[0]
    i, j = at if at is not None else (cls.shape[2] // 2, cls.shape[3] // 2)
    cls[0, 0, i, j].backward()
    g = x.grad.abs().sum((0, 1)) > 0
    rows, cols = torch.nonzero(g.any(1)).ravel(), torch.nonzero(g.any(0)).ravel()
    return int(max(rows.max() - rows.min(), cols.max() - cols.min()) + 1)


def build_hr(
    templates=None,
    depth: int = 18,
    *,
    backbone: str = "resnet",
    caffe_style: bool = False,
    pretrained: bool | str = "auto",
    use_res5: bool = False,
    use_res4: bool = True,
    freeze_bn: bool | None = None,
    context: str = "full",
    **kwargs,
) -> HRDetector:
    """An :class:`HRDetector` on ``resnet_features(depth)`` (``backbone="resnet"``) or on
    the ImageNet MobileNetV1 x0.25 (``backbone="mobilenet_v1_025"``: its stride-8 ``stage1``
    and stride-16 ``stage2`` play res3 and res4, ``stage3`` (stride 32) res5).

    ``templates``: anything :meth:`Templates.from_any` takes; ``None`` loads the paper's 25
    (needs the data root). ``pretrained="auto"`` uses ImageNet weights when they are present
    (the torch hub cache for ResNets, the data root for the MobileNet) and otherwise logs a
    clear message and trains from scratch; ``True`` requires them.
    ``use_res5=False`` truncates the backbone after ``res4`` (res5 is neither computed nor
    stored); ``use_res4=False`` (with ``use_res5=False``) keeps only the stride-8 stage: the
    head sees no context beyond its receptive field (the MobileNet's ``stage2`` is then
    not computed either). ``freeze_bn`` defaults to ``True`` with ImageNet ResNet weights, ``False``
    otherwise (the MobileNet's BN is trained, as RetinaFace does).

    ``context="centre"`` (MobileNet only; issue 25's matched-depth context ablation): every
    3x3 depthwise convolution of ``stage2`` keeps only its centre tap (the other eight are
    zeroed and their gradients masked, so they stay zero under AdamW), so ``stage2`` adds
    depth and channels but no spatial reach: the templates see what ``stage1`` sees (plus
    the up-sampling), at the same depth, parameters and FLOPs as ``context="full"``."""
    tpl = hr_template_set() if templates is None else Templates.from_any(templates)
    if backbone == "mobilenet_v1_025":
        if pretrained == "auto":
            pretrained = data_file(IMAGENET_WEIGHTS, required=False) is not None
            if not pretrained:
                log.warning("ImageNet MobileNetV1 x0.25 weights (%s) are not in the data root; "
                            "training from scratch.", IMAGENET_WEIGHTS)
        net = mobilenet_v1_025(pretrained=bool(pretrained))
        net.fc = nn.Identity()  # the ImageNet classifier is not part of the detector
        if not use_res5:
            net.stage3 = nn.Identity()
            if not use_res4:
                net.stage2 = nn.Identity()
        if context == "centre":
            if not use_res4:
                raise ValueError("context='centre' restricts stage2: it needs use_res4=True")
            centre_taps_only(net.stage2)
        features = ("stage1", "stage2", "stage3")
        if freeze_bn is None:
            freeze_bn = False
    elif backbone == "resnet":
        if pretrained == "auto":
            pretrained = _imagenet_weights_cached(depth, caffe_style)
            if not pretrained:
                log.warning(
                    "ImageNet weights for ResNet-%d are not in the torch hub cache (%s); "
                    "training from scratch. Put the torchvision checkpoint there to fine-tune "
                    "as the paper does.", depth, torch.hub.get_dir())
        net = resnet_features(depth, caffe_style=caffe_style, pretrained=bool(pretrained))
        if not use_res5:
            _truncate_res5(net)
        features = HRDetector.RESNET_FEATURES
        if freeze_bn is None:
            freeze_bn = bool(pretrained)
    else:
        raise ValueError(f"HR backbone must be 'resnet' or 'mobilenet_v1_025', got {backbone!r}")
    if context not in ("full", "centre"):
        raise ValueError(f"HR context must be 'full' or 'centre', got {context!r}")
    if context == "centre" and backbone != "mobilenet_v1_025":
        raise ValueError("context='centre' is defined for the MobileNet backbone (its stage2)")
    cfg = {"backbone": backbone, "depth": depth, "caffe_style": caffe_style,
           "use_res5": use_res5, "use_res4": use_res4, "templates": tpl.to_dict(),
           "freeze_bn": freeze_bn, "context": context}
    cfg.update({k: v for k, v in kwargs.items() if isinstance(v, (int, float, str, bool))})
    return HRDetector(tpl, net, use_res5=use_res5, use_res4=use_res4, freeze_bn=freeze_bn,
                      features=features,
                      config=cfg, **kwargs)


def _imagenet_weights_cached(depth: int, caffe_style: bool) -> bool:
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
