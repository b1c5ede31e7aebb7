"""RetinaFace with a MobileNetV1 x0.25 body (Deng et al., 2020, *RetinaFace: Single-stage
Dense Face Localisation in the Wild*), in the layout of the released PyTorch weights
(``weights/retinaface_mnet025/mobilenet0.25_Final.pth``, ``SOURCES.md`` section 8), so that
they load with ``weights_only=True`` and a strict key match.

Architecture (written from the paper and the public description of the release)::

    body   MobileNetV1 x0.25 (tinylib.models.mobilenet), stage1/2/3: 64/128/256 ch, stride 8/16/32
    fpn    lateral 1x1 conv+BN+act to 64 ch on each stage (output1..3); top-down: the coarser
           map is upsampled (nearest) to the finer one's size and added, then a 3x3
           conv+BN+act (merge2, merge1) smooths the sum; the coarsest level has no merge
    ssh    one SSH context module per level (ssh1..3): three branches whose receptive fields
           are 3x3, 5x5 and 7x7 (the larger ones as stacked 3x3 convs sharing the first),
           with 1/2, 1/4 and 1/4 of the channels, concatenated, then ReLU
    heads  per level a 1x1 conv for 2 anchors x (2 class logits | 4 box deltas | 10 landmark
           deltas) (ClassHead / BboxHead / LandmarkHead)

The activation inside the FPN and SSH is LeakyReLU(0.1) because the width is <= 64 channels
(the release's rule; wider variants use a plain ReLU there).

Anchors ("priors"): on level ``k`` (stride 8, 16, 32) each cell ``(i, j)`` of the
``ceil(H / stride) x ceil(W / stride)`` map carries square priors of side
``[[16, 32], [64, 128], [256, 512]][k]`` centred at ``((j + 0.5) * stride, (i + 0.5) *
stride)``; order: level, row, column, size — the order in which the heads' outputs are
flattened. Here priors are in pixels ``(cx, cy, w, h)`` (the release normalises by the image
size; decoding gives the same boxes).

Box coding with variances ``(0.1, 0.2)``: centre = prior centre + delta * 0.1 * prior size;
size = prior size * exp(delta * 0.2). Landmarks: prior centre + delta * 0.1 * prior size.

Inference as released: the image at its original resolution, BGR, minus the mean
``(104, 117, 123)``, no scaling; score = softmax face probability; then a confidence
threshold (0.02 for PR curves), the ``top_k`` best, NMS at IoU 0.4 and the ``keep_top_k``
best. Reported WIDER val AP of the release: 0.9070 / 0.8816 / 0.7382 (easy / medium / hard).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms

from .mobilenet import MobileNetV1, load_bundle_state

log = logging.getLogger(__name__)

__all__ = [
    "RetinaFace", "RETINAFACE_WEIGHTS", "MIN_SIZES", "STRIDES", "VARIANCES", "BGR_MEAN",
    "prior_boxes", "encode_boxes", "decode_boxes", "decode_landmarks", "load_retinaface_state",
    "retinaface_mnet025", "detect_faces",
]

#: the released weights' path under the data root
RETINAFACE_WEIGHTS = "weights/retinaface_mnet025/mobilenet0.25_Final.pth"
STRIDES = (8, 16, 32)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
VARIANCES = (0.1, 0.2)
#: per-channel mean subtracted from the BGR image (0..255, no scaling)
BGR_MEAN = (104.0, 117.0, 123.0)


def _conv_bn(cin: int, cout: int, kernel: int, leaky: float | None) -> nn.Sequential:
    """conv (no bias) + BN, followed by LeakyReLU(``leaky``) unless ``leaky`` is None."""
    layers = [nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    if leaky is not None:
        layers.append(nn.LeakyReLU(leaky, inplace=True))
    return nn.Sequential(*layers)


def _leak(channels: int) -> float:
    # the release's rule: LeakyReLU(0.1) for thin (<= 64 channel) necks, plain ReLU otherwise
    return 0.1 if channels <= 64 else 0.0


class FPN(nn.Module):
    """Three-level top-down feature pyramid (lateral 1x1, nearest upsampling, 3x3 merge)."""

    def __init__(self, in_channels: tuple[int, int, int], out_channels: int = 64):
        super().__init__()
        a = _leak(out_channels)
        self.output1 = _conv_bn(in_channels[0], out_channels, 1, a)
        self.output2 = _conv_bn(in_channels[1], out_channels, 1, a)
        self.output3 = _conv_bn(in_channels[2], out_channels, 1, a)
        self.merge1 = _conv_bn(out_channels, out_channels, 3, a)
        self.merge2 = _conv_bn(out_channels, out_channels, 3, a)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        c3, c4, c5 = feats
        p5 = self.output3(c5)
        p4 = self.output2(c4) + F.interpolate(p5, size=c4.shape[-2:], mode="nearest")
        p4 = self.merge2(p4)
        p3 = self.output1(c3) + F.interpolate(p4, size=c3.shape[-2:], mode="nearest")
        p3 = self.merge1(p3)
        return [p3, p4, p5]


class SSH(nn.Module):
    """SSH context module: 3x3 | 5x5 (two 3x3) | 7x7 (three 3x3) branches, concat, ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        if out_channels % 4:
            raise ValueError(f"SSH out_channels must be a multiple of 4, got {out_channels}")
        a = _leak(out_channels)
        half, quarter = out_channels // 2, out_channels // 4
        self.conv3X3 = _conv_bn(in_channels, half, 3, None)
        self.conv5X5_1 = _conv_bn(in_channels, quarter, 3, a)  # shared by the 5x5 and 7x7
        self.conv5X5_2 = _conv_bn(quarter, quarter, 3, None)
        self.conv7X7_2 = _conv_bn(quarter, quarter, 3, a)
        self.conv7x7_3 = _conv_bn(quarter, quarter, 3, None)  # (sic: lower-case x as released)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.conv3X3(x)
        t = self.conv5X5_1(x)
        b5 = self.conv5X5_2(t)
        b7 = self.conv7x7_3(self.conv7X7_2(t))
        return F.relu(torch.cat([b3, b5, b7], dim=1))


class _Head(nn.Module):
    """1x1 conv predicting ``per_anchor`` numbers for each of ``anchors`` priors per cell,
    flattened to ``(N, H * W * anchors, per_anchor)`` in (row, column, anchor) order."""

    def __init__(self, in_channels: int, anchors: int, per_anchor: int):
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(in_channels, anchors * per_anchor, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1x1(x).permute(0, 2, 3, 1)
        return y.reshape(y.shape[0], -1, self.per_anchor)


class RetinaFace(nn.Module):
    """RetinaFace-MobileNet0.25 (see the module doc). ``forward(x)`` on a ``(N, 3, H, W)``
    mean-subtracted BGR batch returns ``(loc (N, P, 4), logits (N, P, 2), landmarks (N, P,
    10))`` for the ``P`` priors of :func:`prior_boxes` ``(H, W)``."""

    def __init__(self, out_channels: int = 64, anchors: int = 2):
        super().__init__()
        self.body = MobileNetV1(num_classes=None)
        chans = tuple(self.body.out_channels[n] for n in ("stage1", "stage2", "stage3"))
        self.fpn = FPN(chans, out_channels)
        self.ssh1 = SSH(out_channels, out_channels)
        self.ssh2 = SSH(out_channels, out_channels)
        self.ssh3 = SSH(out_channels, out_channels)
        self.ClassHead = nn.ModuleList(_Head(out_channels, anchors, 2) for _ in STRIDES)
        self.BboxHead = nn.ModuleList(_Head(out_channels, anchors, 4) for _ in STRIDES)
        self.LandmarkHead = nn.ModuleList(_Head(out_channels, anchors, 10) for _ in STRIDES)

    def forward(self, x: torch.Tensor):
        feats: OrderedDict = self.body(x)
        levels = self.fpn([feats["stage1"], feats["stage2"], feats["stage3"]])
        levels = [self.ssh1(levels[0]), self.ssh2(levels[1]), self.ssh3(levels[2])]
        loc = torch.cat([h(f) for h, f in zip(self.BboxHead, levels)], dim=1)
        logits = torch.cat([h(f) for h, f in zip(self.ClassHead, levels)], dim=1)
        landmarks = torch.cat([h(f) for h, f in zip(self.LandmarkHead, levels)], dim=1)
        return loc, logits, landmarks


# ------------------------------------------------------------------------------ priors
def prior_boxes(height: int, width: int, *, strides=STRIDES, min_sizes=MIN_SIZES) -> torch.Tensor:
    """``(P, 4)`` priors ``(cx, cy, w, h)`` in pixels for an ``height x width`` input, in the
    heads' order (level, row, column, size)."""
    out = []
    for stride, sizes in zip(strides, min_sizes):
        fh, fw = math.ceil(height / stride), math.ceil(width / stride)
        cy, cx = torch.meshgrid((torch.arange(fh, dtype=torch.float32) + 0.5) * stride,
                                (torch.arange(fw, dtype=torch.float32) + 0.5) * stride,
                                indexing="ij")
        s = torch.as_tensor(sizes, dtype=torch.float32)
        k = len(sizes)
        level = torch.stack([cx[..., None].expand(fh, fw, k), cy[..., None].expand(fh, fw, k),
                             s.expand(fh, fw, k), s.expand(fh, fw, k)], dim=-1)
        out.append(level.reshape(-1, 4))
    return torch.cat(out)


def encode_boxes(boxes: torch.Tensor, priors: torch.Tensor, variances=VARIANCES) -> torch.Tensor:
    """xyxy boxes -> regression targets against ``priors`` (the inverse of :func:`decode_boxes`)."""
    wh = boxes[..., 2:] - boxes[..., :2]
    c = (boxes[..., :2] + boxes[..., 2:]) / 2
    d_c = (c - priors[..., :2]) / (variances[0] * priors[..., 2:])
    d_wh = torch.log(wh / priors[..., 2:]) / variances[1]
    return torch.cat([d_c, d_wh], dim=-1)


def decode_boxes(loc: torch.Tensor, priors: torch.Tensor, variances=VARIANCES) -> torch.Tensor:
    """Regression outputs ``(..., P, 4)`` -> xyxy boxes in pixels."""
    c = priors[..., :2] + loc[..., :2] * variances[0] * priors[..., 2:]
    wh = priors[..., 2:] * torch.exp(loc[..., 2:] * variances[1])
    return torch.cat([c - wh / 2, c + wh / 2], dim=-1)


def decode_landmarks(pre: torch.Tensor, priors: torch.Tensor, variances=VARIANCES) -> torch.Tensor:
    """Landmark outputs ``(..., P, 10)`` -> ``(..., P, 5, 2)`` points (x, y) in pixels."""
    pts = pre.reshape(*pre.shape[:-1], 5, 2)
    return priors[..., None, :2] + pts * variances[0] * priors[..., None, 2:]


# ----------------------------------------------------------------------------- weights
def load_retinaface_state(path=None) -> dict:
    """The released state dict (``module.`` prefix removed). ``path`` defaults to
    :data:`RETINAFACE_WEIGHTS` under the data root; a missing file raises
    :class:`FileNotFoundError` naming it."""
    return load_bundle_state(RETINAFACE_WEIGHTS, "RetinaFace-MobileNet0.25", path)


def retinaface_mnet025(*, pretrained: bool = True, weights=None) -> RetinaFace:
    """RetinaFace-MobileNet0.25 in eval mode; ``pretrained`` loads the released weights
    (strict)."""
    net = RetinaFace()
    if pretrained or weights is not None:
        net.load_state_dict(load_retinaface_state(weights), strict=True)
    return net.eval()


# --------------------------------------------------------------------------- inference
@torch.no_grad()
def detect_faces(model: RetinaFace, image: np.ndarray, *, conf_threshold: float = 0.02,
                 nms_iou: float = 0.4, top_k: int = 5000, keep_top_k: int = 750,
                 device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Faces in one RGB ``uint8 H x W x 3`` image at its own resolution: ``(boxes (N, 4)
    xyxy float32, scores (N,) float32)``, highest score first (the release's protocol: BGR
    minus :data:`BGR_MEAN`, softmax face probability >= ``conf_threshold``, ``top_k`` best,
    NMS ``nms_iou``, ``keep_top_k`` best)."""
    h, w = image.shape[:2]
    bgr = torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1])).to(device, torch.float32)
    x = (bgr - torch.tensor(BGR_MEAN, device=device)).permute(2, 0, 1)[None]
    loc, logits, _ = model(x)
    scores = F.softmax(logits[0], dim=-1)[:, 1]
    keep = scores >= conf_threshold
    priors = prior_boxes(h, w).to(device)
    boxes = decode_boxes(loc[0][keep], priors[keep])
    scores = scores[keep]
    order = scores.argsort(descending=True)[:top_k]
    boxes, scores = boxes[order], scores[order]
    k = nms(boxes, scores, nms_iou)[:keep_top_k]  # nms returns indices by decreasing score
    return (boxes[k].cpu().numpy().astype(np.float32),
            scores[k].cpu().numpy().astype(np.float32))
