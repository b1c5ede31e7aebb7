"""MobileNetV1 x0.25 (Howard et al., 2017) as a feature backbone, in the layout of the
ImageNet checkpoint released with the RetinaFace PyTorch port (``SOURCES.md`` section 8).

The network is a 3x3 convolution (8 channels, stride 2) followed by 13 depthwise-separable
blocks (3x3 depthwise + BN + LeakyReLU(0.1), 1x1 pointwise + BN + LeakyReLU(0.1)), grouped in
three stages that end at strides 8, 16 and 32::

    stage1: conv 3->8 /2, dw 8->16, dw 16->32 /2, dw 32->32, dw 32->64 /2, dw 64->64   (stride 8)
    stage2: dw 64->128 /2, 5 x dw 128->128                                            (stride 16)
    stage3: dw 128->256 /2, dw 256->256                                               (stride 32)

Width multiplier 0.25 of the paper's 32..1024 channels. ``forward`` returns
``OrderedDict(stage1=..., stage2=..., stage3=...)`` (a :class:`FeatureBackbone`). The
ImageNet classifier (global pool + ``fc``) exists only for loading and checking the
checkpoint (``classify``); detectors never call it, and ``MobileNetV1(num_classes=None)``
omits it (RetinaFace's checkpoint has no ``fc``: ``tinylib.models.retinaface``).

``mobilenet_v1_025(pretrained=True)`` loads ``weights/mobilenet_v1_025_imagenet/
mobilenetV1X0.25_pretrain.tar`` from the data root with ``weights_only=True`` and a strict
key match, and raises :class:`FileNotFoundError` naming the file (and how to get it) when
it is not there.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from ..config import data_root
from .backbones import FeatureBackbone

log = logging.getLogger(__name__)

__all__ = ["MobileNetV1", "mobilenet_v1_025", "IMAGENET_WEIGHTS", "load_imagenet_state",
           "load_bundle_state"]

#: the checkpoint's path under the data root (registry entry ``weights_mobilenet_v1_025_imagenet``)
IMAGENET_WEIGHTS = "weights/mobilenet_v1_025_imagenet/mobilenetV1X0.25_pretrain.tar"

_LEAK = 0.1


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(_LEAK, inplace=True))


def _conv_dw(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
        nn.LeakyReLU(_LEAK, inplace=True),
        nn.Conv2d(cin, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout),
        nn.LeakyReLU(_LEAK, inplace=True))


class MobileNetV1(FeatureBackbone):
    """MobileNetV1 x0.25 returning ``stage1..stage3`` (strides 8, 16, 32); see the module doc."""

    def __init__(self, num_classes: int | None = 1000):
        super().__init__()
        self.stage1 = nn.Sequential(
            _conv_bn(3, 8, 2), _conv_dw(8, 16, 1), _conv_dw(16, 32, 2), _conv_dw(32, 32, 1),
            _conv_dw(32, 64, 2), _conv_dw(64, 64, 1))
        self.stage2 = nn.Sequential(_conv_dw(64, 128, 2),
                                    *[_conv_dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(_conv_dw(128, 256, 2), _conv_dw(256, 256, 1))
        # no classifier for ``num_classes=None`` (a pure backbone, e.g. RetinaFace's body)
        self.fc = nn.Linear(256, num_classes) if num_classes is not None else None
        self.out_channels = {"stage1": 64, "stage2": 128, "stage3": 256}
        self.strides = {"stage1": 8, "stage2": 16, "stage3": 32}

    def forward(self, x: torch.Tensor) -> OrderedDict:
        out = OrderedDict()
        for name in ("stage1", "stage2", "stage3"):
            stage = getattr(self, name)
            if isinstance(stage, nn.Identity):  # truncated (see tinylib.hr.model)
                break
            x = stage(x)
            out[name] = x
        return out

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (only to check the checkpoint: ``x`` normalised as torchvision)."""
        if self.fc is None:
            raise RuntimeError("this MobileNetV1 was built without a classifier (num_classes=None)")
        feats = self.forward(x)
        return self.fc(feats["stage3"].mean(dim=(2, 3)))


def load_bundle_state(relpath: str, what: str, path=None) -> dict:
    """A state dict shipped in the data bundle (``weights/...``, SOURCES.md section 8),
    loaded with ``weights_only=True``, from ``path`` or ``relpath`` under the data root, the
    checkpoint's ``state_dict`` taken when it has one and a ``module.`` prefix removed. A
    missing file raises :class:`FileNotFoundError` naming it and where it comes from."""
    path = Path(path) if path is not None else data_root(must_exist=False) / relpath
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} weights not found: {path}. They ship with the data bundle (SOURCES.md "
            f"section 8; `tinylib-data status` shows what is present); set TINYLIB_DATA to "
            f"the folder that holds {relpath}.")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{path}: expected a state dict (or a checkpoint with a "
                         f"'state_dict'), got {type(obj).__name__}")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def load_imagenet_state(path=None) -> dict:
    """The ImageNet checkpoint's state dict (``path`` defaults to :data:`IMAGENET_WEIGHTS`
    under the data root); build the backbone with ``pretrained=False`` to do without it."""
    return load_bundle_state(IMAGENET_WEIGHTS, "ImageNet MobileNetV1 x0.25", path)


def mobilenet_v1_025(*, pretrained: bool = False, weights=None) -> MobileNetV1:
    """MobileNetV1 x0.25; ``pretrained`` loads the ImageNet checkpoint (strict)."""
    net = MobileNetV1()
    if pretrained or weights is not None:
        net.load_state_dict(load_imagenet_state(weights), strict=True)
    return net
