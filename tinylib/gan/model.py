"""The GAN of Bai et al. (``../shared/papers/004_...``, Table 1): a generator that
super-resolves a low-resolution crop x4 and refines it, and a discriminator with three heads.

Generator (Table 1, left; BN + ReLU after every convolution but the last of each sub-network):

* **up-sample sub-network** ``G1``: conv 3x3 (``width``), conv 3x3, a residual trunk of
  ``blocks`` two-convolution blocks (the paper's "x8" = 8 convolutions = 4 blocks), conv 3x3,
  two learned x2 deconvolutions (``up_width`` channels; 3x3, stride 2) and a 1x1 conv to RGB;
* **refinement sub-network** ``G2``: conv 3x3 (``refine_width``), conv 3x3, the same residual
  trunk, conv 3x3 (``refine_up_width``), conv 3x3, conv 3x3 to RGB. One choice of ours: its
  output is *added* to its input (``G2(x) = x + f(x)``), so an untrained refinement is the
  identity; the paper does not say.
* ``skip=True`` (ours, not in Table 1; the CPU recipes use it): ``G1`` predicts the *residual*
  over the bicubic x``scale`` up-sampling of its input, ``G1(x) = bicubic(x) + f(x)`` (VDSR's
  global skip). Without it the CPU-scale generator, which must rebuild every colour through a
  1x1 convolution of a 32-channel map, desaturates: on real val faces its luma PSNR beats
  bicubic while its RGB PSNR and CIELAB colour error lose to it (red caps turn orange, a green
  uniform grey-blue). The channel order and the ``[-1, 1]`` scaling were checked first and are
  the same for input, output and loss (``tests/test_gan.py``).

Discriminator (Table 1, right): a trunk -- ``resnet50`` as the paper (its max-pool removed,
"to avoid too many down-sampling operations for small blurry faces"), ``resnet18``, or the
ImageNet MobileNetV1 x0.25 of the data bundle (``mnet025``, the one ImageNet trunk available
offline) -- global average pooling, then three parallel fully-connected heads: ``gan``
(real vs generated, 1 logit), ``cls`` (face vs non-face, 1 logit) and ``reg`` (box offsets
``(tx, ty, tw, th)``). Heads are initialised N(0, 0.1) as the paper; generator convolutions
N(0, 0.02), biases 0.

Images are RGB in ``[-1, 1]`` (:func:`to_unit` / :func:`from_unit`).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

__all__ = ["GEN_DEFAULTS", "DISC_DEFAULTS", "Generator", "Discriminator", "to_unit", "from_unit"]

#: the paper's generator (Table 1); CPU recipes shrink the widths
GEN_DEFAULTS = {"width": 64, "up_width": 256, "blocks": 4, "refine": True, "refine_width": 64,
                "refine_up_width": 256, "scale": 4, "skip": False}
DISC_DEFAULTS = {"trunk": "resnet50", "pretrained": "auto"}


def to_unit(images_uint8: torch.Tensor) -> torch.Tensor:
    """``uint8`` (or 0..255 float) images to ``[-1, 1]`` floats."""
    return images_uint8.float() / 127.5 - 1.0


def from_unit(x: torch.Tensor) -> torch.Tensor:
    """``[-1, 1]`` images back to ``uint8`` (clamped)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _cbr(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class _ResBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the input (two of the trunk's "x8" convolutions)."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c),
                                  nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1),
                                  nn.BatchNorm2d(c))

    def forward(self, x):
        return torch.relu(x + self.body(x))


def _deconv(cin: int, cout: int) -> nn.Sequential:
    """A learned x2 up-sampling: 3x3 transposed convolution, stride 2 (exactly doubles)."""
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Generator(nn.Module):
    """``forward(lr) -> (sr, refined)``: the x``scale`` output of ``G1`` and ``G2(G1(lr))``
    (``refined`` is ``None`` when ``refine=False``, the paper's "w/o refinement network")."""

    def __init__(self, width: int = 64, up_width: int = 256, blocks: int = 4, refine: bool = True,
                 refine_width: int = 64, refine_up_width: int = 256, scale: int = 4,
                 skip: bool = False):
        super().__init__()
        if scale not in (2, 4, 8):
            raise ValueError(f"scale must be 2, 4 or 8 (x2 deconvolutions), got {scale}")
        n_up = {2: 1, 4: 2, 8: 3}[scale]
        self.config = {"width": width, "up_width": up_width, "blocks": blocks, "refine": refine,
                       "refine_width": refine_width, "refine_up_width": refine_up_width,
                       "scale": scale, "skip": bool(skip)}
        self.scale = scale
        self.skip = bool(skip)
        ups = [_deconv(width if i == 0 else up_width, up_width) for i in range(n_up)]
        self.upsample = nn.Sequential(
            _cbr(3, width), _cbr(width, width), *[_ResBlock(width) for _ in range(blocks)],
            _cbr(width, width), *ups, nn.Conv2d(up_width, 3, 1))
        self.refine = None
        if refine:
            self.refine = nn.Sequential(
                _cbr(3, refine_width), _cbr(refine_width, refine_width),
                *[_ResBlock(refine_width) for _ in range(blocks)],
                _cbr(refine_width, refine_up_width), _cbr(refine_up_width, refine_up_width),
                nn.Conv2d(refine_up_width, 3, 3, padding=1))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, lr: torch.Tensor):
        sr = self.upsample(lr)
        if self.skip:
            sr = sr + F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        refined = sr + self.refine(sr) if self.refine is not None else None
        return sr, refined

    def output(self, lr: torch.Tensor) -> torch.Tensor:
        """The generator's final image: refined when there is a refinement sub-network."""
        sr, refined = self(lr)
        return refined if refined is not None else sr


def _trunk(name: str, pretrained) -> tuple[nn.Module, int]:
    from ..models.backbones import resnet_features
    from ..models.mobilenet import mobilenet_v1_025

    key = name.lower()
    if key == "mnet025":
        use = pretrained
        if pretrained == "auto":
            try:
                net = mobilenet_v1_025(pretrained=True)
                return _Features(net, "stage3"), 256
            except FileNotFoundError as exc:
                log.warning("discriminator trunk mnet025 from scratch: %s", exc)
                use = False
        return _Features(mobilenet_v1_025(pretrained=bool(use)), "stage3"), 256
    if key in ("resnet18", "resnet34", "resnet50", "resnet101"):
        depth = int(key[6:])
        net = resnet_features(depth, pretrained=pretrained in (True, "auto"))
        net.stem.maxpool = nn.Identity()  # the paper removes the max-pool
        return _Features(net, "res5"), net.out_channels["res5"]
    raise ValueError(f"unknown discriminator trunk {name!r}; expected mnet025, resnet18/34/50/101")


class _Features(nn.Module):
    def __init__(self, net: nn.Module, last: str):
        super().__init__()
        self.net, self.last = net, last
        if hasattr(net, "fc"):
            net.fc = None

    def forward(self, x):
        return self.net(x)[self.last]


class Discriminator(nn.Module):
    """``forward(x) -> {"gan": (B,), "cls": (B,), "reg": (B, 4)}`` (logits and offsets) for
    ``x`` in ``[-1, 1]``; the trunk sees ImageNet-normalised input."""

    def __init__(self, trunk: str = "resnet50", pretrained="auto"):
        super().__init__()
        self.config = {"trunk": trunk, "pretrained": pretrained}
        self.trunk, c = _trunk(trunk, pretrained)
        self.fc_gan, self.fc_cls, self.fc_reg = nn.Linear(c, 1), nn.Linear(c, 1), nn.Linear(c, 4)
        for fc in (self.fc_gan, self.fc_cls, self.fc_reg):
            nn.init.normal_(fc.weight, 0.0, 0.1)
            nn.init.zeros_(fc.bias)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x + 1) / 2 - self.mean) / self.std
        return self.trunk(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.features(x)
        return {"gan": self.fc_gan(f)[:, 0], "cls": self.fc_cls(f)[:, 0], "reg": self.fc_reg(f)}
