"""The study network on the ImageNet MobileNetV1 x0.25 trunk (issue 25): the paper's Section 3
fixed-size heatmap predictor, built on ImageNet features as the paper builds it on ResNet.

:class:`TrunkFeatures` cuts :class:`tinylib.models.mobilenet.MobileNetV1` (the checkpoint in
the data bundle, ``weights/mobilenet_v1_025_imagenet``) into five stages at strides 2 .. 32::

    s1: conv 3->8 /2, dw 8->16               stride  2, RF   7   (16 channels)
    s2: dw 16->32 /2, dw 32->32              stride  4, RF  19   (32)
    s3: dw 32->64 /2, dw 64->64              stride  8, RF  43   (64)   = MobileNet "stage1"
    s4: dw 64->128 /2, 5 x dw 128->128       stride 16, RF 219   (128)  = "stage2"
    s5: dw 128->256 /2, dw 256->256          stride 32, RF 315   (256)  = "stage3"

(the receptive fields are computed by :func:`tinylib.analysis.receptive_field.receptive_fields`
on the real modules, :func:`stage_receptive_fields`, and asserted in the tests).

:class:`TrunkStudyNet` is the template: the features of the stages it reads are sampled at the
window centre (bilinear; one pixel of the heatmap) and concatenated (several stages = the
foveal / hypercolumn descriptor), then a linear layer gives one logit. Two inits:

* ``"imagenet"``: the released weights, fine-tuned as the paper fine-tunes its ResNet
  (Sec. 5 and its supplement: the lower layers learn slower — res2 0.01, res3 0.1, res4 1):
  s1 and s2 frozen, s3 at 0.1 x the learning rate, s4, s5 and the template at 1 x; every
  BatchNorm frozen at its ImageNet statistics (Caffe's ResNet is fine-tuned that way).
* ``"scratch"``: the same architecture, random init (PyTorch's defaults), every layer
  trained at 1 x, BatchNorm on batch statistics (a random network has none to freeze).

The bundle's weights are loaded strict; without them ``pretrained="auto"`` falls back to the
random init and says so (:func:`imagenet_available`), ``pretrained=True`` raises.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..analysis.receptive_field import receptive_fields
from ..config import data_root
from ..models.mobilenet import IMAGENET_WEIGHTS, MobileNetV1, load_imagenet_state

log = logging.getLogger(__name__)

__all__ = ["TRUNK_STAGES", "TRUNK_CHANNELS", "TRUNK_STRIDES", "INITS", "TrunkFeatures",
           "TrunkStudyNet", "stage_receptive_fields", "imagenet_available", "window_side"]

TRUNK_STAGES = ("s1", "s2", "s3", "s4", "s5")
TRUNK_CHANNELS = {"s1": 16, "s2": 32, "s3": 64, "s4": 128, "s5": 256}
TRUNK_STRIDES = {"s1": 2, "s2": 4, "s3": 8, "s4": 16, "s5": 32}
INITS = ("imagenet", "scratch")
#: torchvision's ImageNet normalisation (RGB), as the checkpoint was trained
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: learning-rate multiplier of each stage when fine-tuning the ImageNet trunk (0 = frozen)
IMAGENET_LR_MULT = {"s1": 0.0, "s2": 0.0, "s3": 0.1, "s4": 1.0, "s5": 1.0, "head": 1.0}


def imagenet_available() -> bool:
    """Whether the data root holds the ImageNet MobileNetV1 x0.25 checkpoint."""
    return (data_root(must_exist=False) / IMAGENET_WEIGHTS).is_file()


class TrunkFeatures(nn.Module):
    """MobileNetV1 x0.25 as five stages ``s1..s5``; ``forward`` returns an ``OrderedDict``
    of the stages up to ``depth`` (1..5). Input: an already normalised image tensor."""

    def __init__(self, net: MobileNetV1 | None = None, depth: int = 5):
        super().__init__()
        net = net if net is not None else MobileNetV1(num_classes=None)
        st1 = list(net.stage1)
        mods = [nn.Sequential(*st1[0:2]), nn.Sequential(*st1[2:4]), nn.Sequential(*st1[4:6]),
                net.stage2, net.stage3]
        self.depth = int(depth)
        if not 1 <= self.depth <= 5:
            raise ValueError(f"depth must be 1..5, got {depth}")
        for name, mod in zip(TRUNK_STAGES[: self.depth], mods):
            self.add_module(name, mod)

    def forward(self, x: torch.Tensor) -> OrderedDict:
        out = OrderedDict()
        for name in TRUNK_STAGES[: self.depth]:
            x = getattr(self, name)(x)
            out[name] = x
        return out


def stage_receptive_fields(depth: int = 5) -> dict[str, int]:
    """Receptive field (pixels, one side) of each stage's output units, computed by the
    receptive-field walker on the trunk's own modules."""
    rfs = receptive_fields(TrunkFeatures(depth=depth))
    return {k: int(v.square) for k, v in rfs.items()}


def window_side(layers: Sequence[str]) -> int:
    """Window side (network pixels) for a template reading ``layers``: the receptive field of
    the deepest stage rounded up to a multiple of 32 — every pixel that can reach the centre
    score is inside the window, and nothing else is cut."""
    rf = _STAGE_RF[max(layers, key=TRUNK_STAGES.index)]
    return int(32 * -(-rf // 32))


# the walker's numbers (asserted in tests/test_studies_imagenet.py against stage_receptive_fields)
_STAGE_RF = {"s1": 7, "s2": 19, "s3": 43, "s4": 219, "s5": 315}


_WARNED: set = set()


def _warn_once(msg: str, *args) -> None:
    if msg not in _WARNED:
        _WARNED.add(msg)
        log.warning(msg, *args)


class TrunkStudyNet(nn.Module):
    """The fixed-size template on the MobileNet trunk (see the module docstring).

    ``layers``: the stages read at the window centre. ``init``: ``"imagenet"`` or
    ``"scratch"``. ``pretrained``: ``"auto"`` (load the bundle's weights for ``imagenet``
    when present, else fall back to random init with a warning; :attr:`loaded` says which),
    ``True`` (raise when absent) or ``False``. ``freeze``: apply the fine-tuning recipe of
    the init (frozen stages and BatchNorm for ImageNet); ``False`` trains everything."""

    def __init__(self, layers: Sequence[str] = ("s2", "s3", "s4"), init: str = "imagenet",
                 pretrained="auto", freeze: bool = True):
        super().__init__()
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        bad = [n for n in layers if n not in TRUNK_STAGES]
        if not layers or bad:
            raise ValueError(f"layers must be some of {list(TRUNK_STAGES)}, got {list(layers)}")
        self.layers = tuple(sorted(layers, key=TRUNK_STAGES.index))
        self.init = init
        net = MobileNetV1(num_classes=None)
        self.loaded = False
        if init == "imagenet" and pretrained:
            if pretrained == "auto" and not imagenet_available():
                _warn_once("ImageNet MobileNetV1 x0.25 weights not under %s: the 'imagenet' "
                            "study net falls back to random init", data_root(must_exist=False))
            else:
                state = {k: v for k, v in load_imagenet_state().items() if not k.startswith("fc.")}
                net.load_state_dict(state, strict=True)
                self.loaded = True
        depth = max(TRUNK_STAGES.index(n) for n in self.layers) + 1
        self.trunk = TrunkFeatures(net, depth=depth)
        self.head = nn.Linear(sum(TRUNK_CHANNELS[n] for n in self.layers), 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0)
        self.frozen_bn = init == "imagenet" and freeze
        self.lr_mult = dict(IMAGENET_LR_MULT) if (init == "imagenet" and freeze) else {
            name: 1.0 for name in (*TRUNK_STAGES, "head")}
        for name in TRUNK_STAGES[:depth]:
            stage = getattr(self.trunk, name)
            trainable = self.lr_mult[name] > 0
            for mod in stage.modules():
                for p in mod.parameters(recurse=False):
                    p.requires_grad_(trainable and not (self.frozen_bn and isinstance(mod, nn.BatchNorm2d)))
        self.to(memory_format=torch.channels_last)
        self.train()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen_bn:  # BatchNorm keeps its ImageNet statistics in training too
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def param_groups(self, lr_mult: dict | None = None, weight_decay: float = 0.0) -> list[dict]:
        """Optimiser groups (:func:`tinylib.engine.train`): one per stage with its ``lr_mult``
        (frozen stages left out) and the template."""
        mult = {**self.lr_mult, **(lr_mult or {})}
        groups = []
        for name in (*TRUNK_STAGES, "head"):
            mod = self.head if name == "head" else getattr(self.trunk, name, None)
            if mod is None or mult.get(name, 1.0) <= 0:
                continue
            params = [p for p in mod.parameters() if p.requires_grad]
            if params:
                groups.append({"params": params, "lr_mult": float(mult.get(name, 1.0)),
                               "weight_decay": weight_decay, "name": name})
        return groups

    def trainable(self) -> dict[str, bool]:
        """Per stage: whether any of its parameters is trained."""
        out = {}
        for name in TRUNK_STAGES[: self.trunk.depth]:
            out[name] = any(p.requires_grad for p in getattr(self.trunk, name).parameters())
        out["head"] = True
        return out

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() if x.dtype == torch.uint8 else x
        return ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.trunk(self.normalise(x))
        grid = torch.zeros(x.shape[0], 1, 1, 2, device=x.device)
        cols = [F.grid_sample(feats[n], grid.to(feats[n].dtype), mode="bilinear",
                              align_corners=False).flatten(1) for n in self.layers]
        return self.head(torch.cat(cols, dim=1)).squeeze(1)
