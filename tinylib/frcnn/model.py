"""Faster R-CNN with a feature pyramid (FPN) over any tinylib backbone.

torchvision's pieces (``GeneralizedRCNN``, ``FeaturePyramidNetwork``, ``AnchorGenerator``,
``RegionProposalNetwork``, ``RoIHeads``, ``MultiScaleRoIAlign``) over the feature maps of
:func:`tinylib.models.backbones.build_backbone` -- ``resnet50``, ``bh_resnet50``,
``hrnet18``/``hrnet32`` and ``bh_hrnet18``/``bh_hrnet32`` (any name of
:data:`~tinylib.models.backbones.BACKBONES`): every one returns four maps at strides 4, 8, 16,
32 (``res2..res5`` or ``b1..b4``), which :class:`PyramidBackbone` renames ``p2..p5`` and feeds to
one FPN (``fpn_channels`` wide) with a max-pooled ``pool`` level at stride 64 (P6). The BH
paper's mmdetection runs put HRNets behind HRFPN; here every backbone gets the same FPN, so
that a comparison changes only the backbone.

Anchors for tiny objects
------------------------
Five levels, two sizes each, ``sqrt 2`` apart (rounded to even pixels, as torchvision rounds
the anchor corners to integers anyway), smallest on the stride-4 level
(:data:`DEFAULT_ANCHOR_SIZES`)::

    P2 stride 4: 8, 12 px   P3 8: 16, 22   P4 16: 32, 46   P5 32: 64, 90   P6 64: 128, 182

Why: on the WIDER FACE train annotations (all 159,393 valid faces,
``tinylib.analysis.scales.abs_size_stats``) the median absolute size ``sqrt(w h)`` is 17.4 px,
46% of the faces are under 16 px, 14% under 8 px and only 1.2% over 256 px; TinyPerson's
persons are 18.0 +- 17.4 px with 73% <= 20 px (BH paper, Table 1). torchvision's default (32
px on P2) cannot reach IoU 0.7 with a box under 27 px at all, so most of these objects would
be matched only by the low-quality rule, to anchors 2-4x too large. Consecutive sizes here
are at most 1.5x apart (``sqrt 2`` from 16 px up), so a square box centred on an anchor
reaches IoU ``>= 1 / 1.5 ~ 0.67`` (0.71) with one of them at any size from 8 to 182 px;
off-centre by a few pixels that drops fast for tiny boxes, which is why the smallest anchors
sit on the stride-4 grid. A 10-px face centred on a P2 grid point is positive for the 8 x 10
anchor (IoU 0.80) and the 10 x 14 one (0.71), both on P2; the 12-px and 8-px squares (0.69,
0.64) and P3's two nearest anchors (0.40, 0.39) are left out of the loss, everything else is
a negative (:func:`match_anchors` shows the assignment for any box). Faces at their real,
off-grid positions fare worse: on the 4,343 faces of the WIDER val subset
(:func:`tinylib.analysis.anchors.recall_by_size`) some anchor reaches IoU 0.5 for >= 98% of the
faces from 8 px up (59% below 8 px), but the RPN's positive threshold 0.7 only for 11% below
8 px, about 50% of 8-16 px and 24-37% above -- most faces become positives through
torchvision's low-quality rule (each face keeps its best anchors). Densifying P2 x2 (S3FD)
raises 8-12 px to 93%.

Aspect ratios (``h / w``, torchvision's convention): faces :data:`FACE_ASPECT_RATIOS` = 1.0
and 1.3 (WIDER train: median ``h / w`` 1.27, quartiles 1.14 and 1.42); persons
:data:`PERSON_ASPECT_RATIOS` = 0.5, 1, 2 (the ratios of TinyBenchmark's Faster R-CNN-FPN:
standing, crouching and swimming persons). Matching: the RPN's 0.7/0.3 IoU thresholds with
torchvision's low-quality rule (each object also keeps its best anchors), the box head's
0.5; anchors and proposals that are negatives but lie mostly (intersection over their own
area >= ``ignore_iof``) inside an *ignored* box (WIDER ``invalid``, TinyPerson ignore
regions, boxes under ``min_box`` px) are dropped from the loss instead.

Toolbox options (the survey's techniques, chapter 10)
----------------------------------------------------
``levels="single"`` keeps only P3 (stride 8, FPN-fused) with every anchor size on it -- the
one-level detector to set against the pyramid; ``context_module="ssh"`` puts SSH's context
module (:class:`SSHContext`) on every level; ``rpn_matching="s3fd"`` replaces the RPN's IoU
matching by S3FD's scale compensation (positives from IoU 0.35, every face topped up to
``s3fd_top_n`` anchors, :func:`tinylib.analysis.anchors.scale_compensation`). The defaults
leave the detector exactly as described above.

Images and boxes
----------------
The collate function (:func:`collate`) turns samples ``(uint8 H x W x 3, target)`` into
torchvision's input: a list of float ``(3, H, W)`` tensors in 0..1 and per image ``boxes``
(the library's xyxy, continuous pixels, width ``x2 - x1``: torchvision's own ``xyxy`` is
the same convention, so boxes pass through unconverted, inside the model and out of it),
``labels`` (1) and ``ignore_boxes``. Normalisation (``image_mean``/``image_std``, 0..1
scale) happens inside the model; ``keep_size=True`` (default) runs every image at its own
size (training crops and test images alike -- no resizing that would shrink tiny faces);
``keep_size=False`` uses torchvision's ``min_size``/``max_size`` resize.

Weights: nothing is downloaded. No ImageNet weights exist offline for ResNet-50 (and none
exist at all for the BH backbones or our HRNets): ``pretrained=False`` trains from scratch;
``pretrained="imagenet"`` loads torchvision's ResNet weights only from the torch hub cache
and otherwise raises with the path it looked at; ``backbone_weights=PATH`` loads a backbone
state dict (e.g. a tiny-image pre-training run); ``init_weights=PATH`` starts the whole detector
from a trained one (:func:`tinylib.frcnn.detect.save_weights` or a training checkpoint): every
tensor whose name and shape match is loaded, the rest (a context module the trained detector
did not have, an RPN head for other anchors) keep their initialisation, and the log names them.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes
from torchvision.ops import MultiScaleRoIAlign, box_iou
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

from ..analysis.anchors import scale_compensation
from ..config import REPO_DIR
from ..models.backbones import BACKBONES, build_backbone, hub_checkpoint_path

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ANCHOR_SIZES",
    "FACE_ASPECT_RATIOS",
    "PERSON_ASPECT_RATIOS",
    "IMAGE_MEAN",
    "IMAGE_STD",
    "MODEL_DEFAULTS",
    "PyramidBackbone",
    "SSHContext",
    "FasterRCNNFPN",
    "build_frcnn",
    "collate",
    "anchor_table",
    "match_anchors",
]

#: anchor sizes (px) per pyramid level P2..P6 (strides 4..64): ``s`` and ``s * sqrt 2`` rounded
#: to even pixels (torchvision rounds the anchor corners to integers)
DEFAULT_ANCHOR_SIZES = ((8, 12), (16, 22), (32, 46), (64, 90), (128, 182))
#: h / w of the anchors for faces (WIDER train: median 1.27)
FACE_ASPECT_RATIOS = (1.0, 1.3)
#: h / w of the anchors for persons (TinyBenchmark's Faster R-CNN-FPN)
PERSON_ASPECT_RATIOS = (0.5, 1.0, 2.0)
#: ImageNet mean / std on the 0..1 scale (torchvision's normalisation inside the model)
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)

#: every model setting of a recipe, with its default (``build_frcnn`` keywords)
MODEL_DEFAULTS: dict = {
    "backbone": "resnet50",
    "pretrained": False,          # False | "imagenet" (ResNets, torch hub cache only)
    "backbone_weights": None,     # path to a backbone state dict
    "init_weights": None,         # path to a detector's weights to start from (every tensor that fits)
    "backbone_width": None,       # resnet50 / bh_resnet50 only: base width (64 = the paper's; 16 = x0.25)
    "freeze_bn": False,           # keep the backbone's BatchNorm statistics and affine fixed
    "num_classes": 2,             # background + one object class (face or person)
    "fpn_channels": 256,
    "anchor_sizes": [list(s) for s in DEFAULT_ANCHOR_SIZES],
    "aspect_ratios": list(FACE_ASPECT_RATIOS),
    "keep_size": True,            # no resizing inside the model
    "min_size": 800,              # used only with keep_size: false (torchvision's resize)
    "max_size": 1333,
    "image_mean": list(IMAGE_MEAN),
    "image_std": list(IMAGE_STD),
    "rpn_fg_iou": 0.7,
    "rpn_bg_iou": 0.3,
    "rpn_batch_size": 256,
    "rpn_positive_fraction": 0.5,
    "rpn_pre_nms_train": 2000,
    "rpn_post_nms_train": 2000,
    "rpn_pre_nms_test": 1000,
    "rpn_post_nms_test": 1000,
    "rpn_nms": 0.7,
    "box_fg_iou": 0.5,
    "box_bg_iou": 0.5,
    "box_batch_size": 512,
    "box_positive_fraction": 0.25,
    "representation_size": 1024,
    "score_thresh": 0.05,
    "box_nms": 0.5,
    "detections_per_img": 300,
    "ignore_iof": 0.5,
    # the survey's toolbox (chapter 10): pyramid vs one level, a context module, anchor matching
    "levels": "fpn",              # fpn (P2..P6) | single (P3 only, stride 8, every anchor size on it)
    "context_module": None,       # None | ssh (SSH's 3x3 / 5x5 / 7x7 context module on every level)
    "rpn_matching": "iou",        # iou (the 0.7 / 0.3 thresholds) | s3fd (scale compensation)
    "s3fd_thresh": 0.35,          # s3fd stage 1: positive IoU threshold
    "s3fd_top_n": 6,              # s3fd stage 2: every face gets up to this many anchors ...
    "s3fd_min_iou": 0.1,          # ... with IoU above this
}


# ------------------------------------------------------------------------------ backbone
class SSHContext(nn.Module):
    """SSH's context module (Najibi et al., ICCV 2017; RetinaFace uses it on every level): a
    3x3 branch (C/2 channels) beside a 5x5 (two 3x3) and a 7x7 (three 3x3) branch that share
    their first convolution (C/4 each), concatenated back to C channels, then ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        if channels % 4:
            raise ValueError(f"SSH context needs channels divisible by 4, got {channels}")
        c2, c4 = channels // 2, channels // 4

        def conv(cin, cout, relu):
            layers = [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)]
            return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)

        self.b3, self.b5a, self.b5 = conv(channels, c2, False), conv(channels, c4, True), conv(c4, c4, False)
        self.b7a, self.b7 = conv(c4, c4, True), conv(c4, c4, False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.b5a(x)
        return torch.relu(torch.cat([self.b3(x), self.b5(t), self.b7(self.b7a(t))], 1))


class PyramidBackbone(nn.Module):
    """A tinylib backbone (maps at strides 4, 8, 16, 32) + an FPN: ``forward`` returns
    ``OrderedDict`` ``p2, p3, p4, p5, pool`` (strides 4..64), each ``out_channels`` wide;
    ``levels="single"`` keeps only ``p3`` (stride 8); ``context="ssh"`` puts an
    :class:`SSHContext` on every level kept."""

    def __init__(self, body: nn.Module, out_channels: int = 256, *, levels: str = "fpn",
                 context: str | None = None):
        super().__init__()
        names = list(body.out_channels)
        strides = [int(body.strides[n]) for n in names]
        if strides != [4, 8, 16, 32]:
            raise ValueError(f"the FPN needs backbone maps at strides 4, 8, 16, 32; "
                             f"{type(body).__name__} gives {dict(zip(names, strides))}")
        if levels not in ("fpn", "single"):
            raise ValueError(f"levels must be 'fpn' or 'single', got {levels!r}")
        if context not in (None, "none", "ssh"):
            raise ValueError(f"context_module must be null or 'ssh', got {context!r}")
        self.body = body
        self.in_names = names
        self.fpn_names = [f"p{int(math.log2(s))}" for s in strides]
        self.fpn = FeaturePyramidNetwork([int(body.out_channels[n]) for n in names],
                                         int(out_channels), extra_blocks=LastLevelMaxPool())
        self.levels = levels
        self.level_names = ["p3"] if levels == "single" else [*self.fpn_names, "pool"]
        #: the levels the box head pools RoIs from (P2..P5 -- not the max-pooled P6 -- as in
        #: torchvision's Faster R-CNN-FPN; the one level when single)
        self.roi_names = ["p3"] if levels == "single" else list(self.fpn_names)
        self.strides = [8] if levels == "single" else [4, 8, 16, 32, 64]
        self.context = None
        if context == "ssh":
            self.context = nn.ModuleDict({lv: SSHContext(int(out_channels)) for lv in self.level_names})
        self.out_channels = int(out_channels)

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        feats = self.body(x)
        out = self.fpn(OrderedDict((lv, feats[n]) for lv, n in zip(self.fpn_names, self.in_names)))
        out = OrderedDict((lv, out[lv]) for lv in self.level_names)
        if self.context is not None:
            out = OrderedDict((lv, self.context[lv](f)) for lv, f in out.items())
        return out


# ------------------------------------------------------------------ ignore-aware pieces
def _iof(boxes: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """Intersection over the area of each of ``boxes`` (N, 4) with each region (M, 4)."""
    lt = torch.max(boxes[:, None, :2], regions[None, :, :2])
    rb = torch.min(boxes[:, None, 2:], regions[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)
    area = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0).prod(1)
    return inter / area.clamp(min=1e-6)[:, None]


def _drop_ignored_negatives(labels: torch.Tensor, boxes: torch.Tensor, ignore, iof: float):
    if ignore is None or ignore.numel() == 0 or boxes.numel() == 0:
        return labels
    hit = _iof(boxes, ignore.to(boxes)).amax(1) >= iof
    labels[(labels == 0) & hit] = -1
    return labels


class _Transform(GeneralizedRCNNTransform):
    """torchvision's transform with ``keep_size`` (no resizing) and ``ignore_boxes`` resized
    with the image when it is resized."""

    def __init__(self, *args, keep_size: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.keep_size = bool(keep_size)

    def resize(self, image, target=None):
        if self.keep_size:
            return image, target
        hw = image.shape[-2:]
        image, target = super().resize(image, target)
        if target is not None and "ignore_boxes" in target:
            target["ignore_boxes"] = resize_boxes(target["ignore_boxes"], hw, image.shape[-2:])
        return image, target


class _RPN(RegionProposalNetwork):
    """RPN whose negative anchors lying inside an ignored box are left out of the loss, with
    torchvision's IoU matching or S3FD's scale-compensation matching
    (:func:`tinylib.analysis.anchors.scale_compensation`: positives at IoU >= ``s3fd[0]``, then
    every face topped up to ``s3fd[1]`` anchors above IoU ``s3fd[2]``; negatives below the
    background threshold, the rest left out)."""

    ignore_iof = 0.5
    matching = "iou"
    s3fd = (0.35, 6, 0.1)

    def _s3fd_assign(self, anchors, targets):
        labels, matched = [], []
        for anc, t in zip(anchors, targets):
            gt = t["boxes"]
            if gt.numel() == 0:
                labels.append(torch.zeros(len(anc), dtype=torch.float32, device=anc.device))
                matched.append(torch.zeros_like(anc, dtype=torch.float32))
                continue
            iou = box_iou(anc, gt)
            assign = torch.as_tensor(scale_compensation(iou.detach().cpu().numpy(), thresh=self.s3fd[0],
                                                        top_n=int(self.s3fd[1]), min_iou=self.s3fd[2]),
                                     device=anc.device)
            lab = torch.full((len(anc),), -1.0, device=anc.device)
            lab[iou.amax(1) < self.proposal_matcher.low_threshold] = 0.0
            lab[assign >= 0] = 1.0
            labels.append(lab)
            matched.append(gt[assign.clamp(min=0)])
        return labels, matched

    def assign_targets_to_anchors(self, anchors, targets):
        if self.matching == "s3fd":
            labels, matched = self._s3fd_assign(anchors, targets)
        else:
            labels, matched = super().assign_targets_to_anchors(anchors, targets)
        for lab, anc, t in zip(labels, anchors, targets):
            _drop_ignored_negatives(lab, anc, t.get("ignore_boxes"), self.ignore_iof)
        return labels, matched


class _RoIHeads(RoIHeads):
    """Box head whose negative proposals lying inside an ignored box are not sampled."""

    ignore_iof = 0.5

    def select_training_samples(self, proposals, targets):
        self._ignore = [t.get("ignore_boxes") for t in targets] if targets is not None else None
        try:
            return super().select_training_samples(proposals, targets)
        finally:
            self._ignore = None

    def assign_targets_to_proposals(self, proposals, gt_boxes, gt_labels):
        matched, labels = super().assign_targets_to_proposals(proposals, gt_boxes, gt_labels)
        for k, (lab, props) in enumerate(zip(labels, proposals)):
            ign = self._ignore[k] if getattr(self, "_ignore", None) else None
            _drop_ignored_negatives(lab, props, ign, self.ignore_iof)
        return matched, labels


# --------------------------------------------------------------------------------- model
class FasterRCNNFPN(GeneralizedRCNN):
    """Faster R-CNN-FPN (see the module docstring). Training: ``model(images, targets)`` ->
    ``{"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}``; eval:
    ``model(images)`` -> per image ``{"boxes" (N, 4) xyxy, "scores", "labels"}`` in the
    input image's pixels. ``config`` holds every setting (:data:`MODEL_DEFAULTS`)."""

    def __init__(self, backbone: PyramidBackbone, rpn, roi_heads, transform, *, config: dict,
                 freeze_bn: bool = False):
        super().__init__(backbone, rpn, roi_heads, transform)
        self.config = dict(config)
        self.freeze_bn = bool(freeze_bn)
        if self.freeze_bn:
            for m in self._backbone_norms():
                for p in m.parameters():
                    p.requires_grad_(False)

    def _backbone_norms(self):
        return [m for m in self.backbone.body.modules()
                if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_bn:
            for m in self._backbone_norms():
                m.eval()
        return self


def _resolve_path(path) -> Path:
    p = Path(path).expanduser()
    if not p.is_absolute() and not p.is_file():
        p = REPO_DIR / p
    return p


def _load_backbone_weights(body: nn.Module, path) -> None:
    p = _resolve_path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model.backbone_weights: file not found: {p}")
    obj = torch.load(p, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "backbone" in obj and isinstance(obj["backbone"], dict):
        obj = obj["backbone"]
    if not isinstance(obj, dict):
        raise ValueError(f"{p}: expected a backbone state dict (or a dict with 'backbone')")
    own = body.state_dict()
    missing, unexpected = sorted(set(own) - set(obj)), sorted(set(obj) - set(own))
    shapes = [k for k in obj if k in own and obj[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(f"{p}: not a state dict of this backbone (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}, other shapes {shapes[:3]})")
    body.load_state_dict(obj)
    log.info("backbone initialised from %s", p)


def _load_init_weights(model: nn.Module, path) -> list[str]:
    """Load every tensor of the detector checkpoint at ``path`` whose name and shape match
    ``model``'s; returns the names of ``model``'s tensors left as they were."""
    from ..engine import load_checkpoint

    p = _resolve_path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model.init_weights: file not found: {p}")
    obj = load_checkpoint(p)
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict):
        raise ValueError(f"{p}: model.init_weights needs a Faster R-CNN checkpoint (a dict with 'model')")
    theirs = {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj["model"].items()}
    own = model.state_dict()
    fit = {k: v.to(own[k].dtype) for k, v in theirs.items() if k in own and v.shape == own[k].shape}
    share = sum(v.numel() for v in fit.values()) / max(1, sum(v.numel() for v in own.values()))
    if share < 0.5:  # a few biases of the heads fit any detector: that is not a start
        raise ValueError(f"{p}: only {share:.0%} of this detector's weights fit it (another backbone or "
                         "width?); model.init_weights needs the same detector up to added parts")
    model.load_state_dict(fit, strict=False)
    left = sorted(set(own) - set(fit))
    log.info("detector initialised from %s: %d tensors loaded, %d left as initialised%s", p, len(fit),
             len(left), f" ({', '.join(left[:4])}{', ...' if len(left) > 4 else ''})" if left else "")
    return left


def _build_body(name: str, pretrained, width=None) -> nn.Module:
    if name.lower() not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
    if width is not None:
        if pretrained not in (None, False, "none", "scratch"):
            raise ValueError(f"model.backbone_width={width}: no pretrained weights exist for a "
                             "scaled backbone (use backbone_weights: PATH)")
        return build_backbone(name, width=int(width))
    if pretrained in (None, False, "none", "scratch"):
        return build_backbone(name)
    if pretrained not in (True, "imagenet"):
        raise ValueError(f"model.pretrained must be false or 'imagenet', got {pretrained!r} "
                         "(a file of backbone weights goes in model.backbone_weights)")
    key = name.lower()
    depth = {"resnet50_caffe": 50}.get(key) or (int(key[6:]) if key.startswith("resnet") else None)
    if depth is None:
        raise ValueError(f"no ImageNet weights exist for {name} (only torchvision's ResNets "
                         "have them); use pretrained: false (from scratch) or "
                         "backbone_weights: PATH")
    path = hub_checkpoint_path(depth)
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageNet weights for {name} are not available offline (looked for {path}; nothing "
            "is downloaded). Train from scratch with pretrained: false, put torchvision's file "
            "there, or give a backbone state dict in backbone_weights.")
    return build_backbone(name, pretrained=True)


def build_frcnn(backbone: str = "resnet50", **settings) -> FasterRCNNFPN:
    """Faster R-CNN-FPN over ``build_backbone(backbone)``; ``settings`` are the keys of
    :data:`MODEL_DEFAULTS` (an unknown key raises ``TypeError`` naming the known ones)."""
    unknown = sorted(set(settings) - set(MODEL_DEFAULTS))
    if unknown:
        raise TypeError(f"unknown Faster R-CNN settings {unknown}; known: {sorted(MODEL_DEFAULTS)}")
    cfg = {**MODEL_DEFAULTS, **settings, "backbone": str(backbone)}
    sizes = tuple(tuple(float(v) for v in lv) for lv in cfg["anchor_sizes"])
    ratios = tuple(float(r) for r in cfg["aspect_ratios"])
    if len(sizes) != 5 or len({len(s) for s in sizes}) != 1:
        raise ValueError(f"anchor_sizes: expected 5 levels (P2..P6) with the same number of "
                         f"sizes each, got {cfg['anchor_sizes']}")
    cfg["anchor_sizes"] = [list(s) for s in sizes]
    cfg["aspect_ratios"] = list(ratios)

    body = _build_body(cfg["backbone"], cfg["pretrained"], cfg["backbone_width"])
    if cfg["backbone_weights"]:
        _load_backbone_weights(body, cfg["backbone_weights"])
    pyramid = PyramidBackbone(body, int(cfg["fpn_channels"]), levels=str(cfg["levels"]),
                              context=cfg["context_module"])
    if pyramid.levels == "single":  # every anchor size on the one stride-8 level
        sizes = (tuple(v for lv in sizes for v in lv),)
    if cfg["rpn_matching"] not in ("iou", "s3fd"):
        raise ValueError(f"rpn_matching must be 'iou' or 's3fd', got {cfg['rpn_matching']!r}")
    anchors = AnchorGenerator(sizes, (ratios,) * len(sizes))
    rpn = _RPN(anchors, RPNHead(pyramid.out_channels, anchors.num_anchors_per_location()[0]),
               cfg["rpn_fg_iou"], cfg["rpn_bg_iou"], int(cfg["rpn_batch_size"]),
               cfg["rpn_positive_fraction"],
               {"training": int(cfg["rpn_pre_nms_train"]), "testing": int(cfg["rpn_pre_nms_test"])},
               {"training": int(cfg["rpn_post_nms_train"]), "testing": int(cfg["rpn_post_nms_test"])},
               cfg["rpn_nms"])
    rpn.ignore_iof = float(cfg["ignore_iof"])
    rpn.matching = str(cfg["rpn_matching"])
    rpn.s3fd = (float(cfg["s3fd_thresh"]), int(cfg["s3fd_top_n"]), float(cfg["s3fd_min_iou"]))
    rep = int(cfg["representation_size"])
    heads = _RoIHeads(
        MultiScaleRoIAlign(pyramid.roi_names, output_size=7, sampling_ratio=2),
        TwoMLPHead(pyramid.out_channels * 7 * 7, rep), FastRCNNPredictor(rep, int(cfg["num_classes"])),
        cfg["box_fg_iou"], cfg["box_bg_iou"], int(cfg["box_batch_size"]),
        cfg["box_positive_fraction"], None, cfg["score_thresh"], cfg["box_nms"],
        int(cfg["detections_per_img"]))
    heads.ignore_iof = float(cfg["ignore_iof"])
    transform = _Transform(int(cfg["min_size"]), int(cfg["max_size"]),
                           [float(v) for v in cfg["image_mean"]], [float(v) for v in cfg["image_std"]],
                           keep_size=bool(cfg["keep_size"]))
    model = FasterRCNNFPN(pyramid, rpn, heads, transform, config=cfg, freeze_bn=bool(cfg["freeze_bn"]))
    if cfg["init_weights"]:
        _load_init_weights(model, cfg["init_weights"])
    return model


# --------------------------------------------------------------------------------- data
def collate(batch, min_box: float = 1.0):
    """Samples ``(image uint8 HxWx3, target)`` -> ``(images, targets)`` for
    :class:`FasterRCNNFPN`: ``images`` a list of float ``(3, H, W)`` tensors in 0..1 (any
    sizes: the model pads them); per image ``boxes`` float32 ``(N, 4)`` xyxy (the library's
    convention, which is torchvision's) of the boxes that are not ``ignore`` and at least
    ``min_box`` px wide and high, ``labels`` int64 (1), ``ignore_boxes`` the other boxes
    with a positive area, and ``image_id``."""
    if not batch:
        raise ValueError("collate got an empty batch")
    images, targets = [], []
    for i, (img, tgt) in enumerate(batch):
        arr = np.asarray(img)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"image {tgt.get('image_id', i)!r}: expected uint8 HxWx3, got "
                             f"{arr.dtype} {arr.shape}")
        images.append(torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float().div_(255.0))
        boxes = np.asarray(tgt.get("boxes", np.zeros((0, 4))), np.float32).reshape(-1, 4)
        ign = tgt.get("ignore")
        ign = np.zeros(len(boxes), bool) if ign is None else np.asarray(ign, bool).reshape(-1)
        if len(ign) != len(boxes):
            raise ValueError(f"image {tgt.get('image_id', i)!r}: {len(boxes)} boxes but "
                             f"{len(ign)} ignore flags")
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        pos = ~ign & (w >= min_box) & (h >= min_box)
        rest = ~pos & (w > 0) & (h > 0)
        targets.append({"boxes": torch.from_numpy(boxes[pos].copy()),
                        "labels": torch.ones(int(pos.sum()), dtype=torch.int64),
                        "ignore_boxes": torch.from_numpy(boxes[rest].copy()),
                        "image_id": str(tgt.get("image_id", i))})
    return images, targets


# ------------------------------------------------------------------------------ anchors
def _anchors_for(model: FasterRCNNFPN, image_hw) -> tuple[list[torch.Tensor], list[int]]:
    h, w = (int(v) for v in image_hw)
    ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
    shapes = [(ph // s, pw // s) for s in (4, 8, 16, 32)]
    shapes.append((-(-shapes[-1][0] // 2), -(-shapes[-1][1] // 2)))  # LastLevelMaxPool
    strides = list(model.backbone.strides)
    shapes = [shapes[[4, 8, 16, 32, 64].index(s)] for s in strides]
    feats = [torch.zeros(1, 1, a, b) for a, b in shapes]
    images = ImageList(torch.zeros(1, 3, ph, pw), [(h, w)])
    anchors = model.rpn.anchor_generator(images, feats)[0]
    per = [a * b * model.rpn.anchor_generator.num_anchors_per_location()[0] for a, b in shapes]
    return list(anchors.split(per)), strides


def anchor_table(model: FasterRCNNFPN) -> pd.DataFrame:
    """One row per anchor shape: ``level, stride, size, aspect_ratio`` (h / w) and the
    ``w, h`` torchvision really uses (its anchor corners are rounded to integers)."""
    gen = model.rpn.anchor_generator
    rows = []
    levels = zip(model.backbone.level_names, model.backbone.strides)
    for (name, stride), sizes, ratios, cell in zip(levels, gen.sizes, gen.aspect_ratios, gen.cell_anchors):
        shapes = [(r, s) for r in ratios for s in sizes]  # torchvision's order
        for (r, s), a in zip(shapes, cell.tolist()):
            rows.append(dict(level=name if name != "pool" else "p6", stride=int(stride), size=float(s),
                             aspect_ratio=float(r), w=a[2] - a[0], h=a[3] - a[1]))
    return pd.DataFrame(rows)


def match_anchors(model: FasterRCNNFPN, boxes, image_hw, ignore_boxes=None) -> pd.DataFrame:
    """How the RPN labels the anchors of an ``image_hw`` image for ground-truth ``boxes``
    (xyxy): one row per anchor that is not a plain negative -- ``level, stride, x1..y2,
    w, h, iou`` (best IoU with a box), ``label`` (1 positive, -1 left out: between the
    thresholds or inside an ignored box), exactly as training assigns them."""
    anchors, strides = _anchors_for(model, image_hw)
    gt = torch.as_tensor(np.asarray(boxes, np.float32).reshape(-1, 4))
    ign = torch.as_tensor(np.asarray(ignore_boxes if ignore_boxes is not None else np.zeros((0, 4)),
                                     np.float32).reshape(-1, 4))
    all_anchors = torch.cat(anchors)
    labels, _ = model.rpn.assign_targets_to_anchors([all_anchors], [{"boxes": gt, "ignore_boxes": ign}])
    iou = box_iou(all_anchors, gt).amax(1) if len(gt) else torch.zeros(len(all_anchors))
    level = np.concatenate([np.full(len(a), f"p{int(math.log2(st))}") for a, st in zip(anchors, strides)])
    stride = np.concatenate([np.full(len(a), s) for a, s in zip(anchors, strides)])
    a = all_anchors.numpy()
    df = pd.DataFrame(dict(level=level, stride=stride, x1=a[:, 0], y1=a[:, 1], x2=a[:, 2], y2=a[:, 3],
                           w=a[:, 2] - a[:, 0], h=a[:, 3] - a[:, 1], iou=iou.numpy(),
                           label=labels[0].numpy().astype(int)))
    return df[df["label"] != 0].sort_values("iou", ascending=False).reset_index(drop=True)
