"""The scanning-window detector of the studies (:class:`StudyNet`, scored at the window
centre) and what it can see: :func:`analytic_receptive_field` (theory, one unit of a stage)
and :func:`window_rf_extent` (measured: the window region that reaches the centre score).

For the effective receptive field *map* of any backbone (normalised gradient mass), see
:func:`tinylib.analysis.receptive_field.effective_receptive_field`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import resnet18

from .specs import STAGES, StudySpec
from .windows import context_mask, torch_threads

__all__ = ["StudyNet", "build_model", "analytic_receptive_field", "window_rf_extent"]

_MEAN, _STD = 0.5, 0.25  # input normalisation of uint8 windows: (x / 255 - mean) / std

def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class StudyNet(nn.Module):
    """A fixed-size scanning-window detector scored at the window centre.

    ``arch="tiny"``: five blocks (conv3x3 stride 2 + conv3x3, BN, ReLU), stages ``s1..s5``
    at strides 2..32 with ``width * (1, 2, 4, 4, 4)`` channels. ``arch="resnet18"``:
    torchvision ResNet-18 (random init) with ``s2..s5`` = ``layer1..layer4`` (strides
    4..32; ``s1`` = the stem at stride 2). The features of each stage in ``layers`` are
    sampled (bilinearly) at the window centre and concatenated — a hypercolumn / foveal
    descriptor when several stages are used — then a linear layer gives one logit.
    ``mask`` (``(H, W)``), if given, blanks the normalised input outside it (tight context).
    Only the stages up to the deepest one in ``layers`` are built and run."""

    def __init__(self, layers: Sequence[str] = ("s2", "s3", "s4"), arch: str = "tiny",
                 width: int = 8, mask: torch.Tensor | None = None):
        super().__init__()
        self.layers = tuple(layers)
        self.arch = arch
        depth = max(STAGES.index(name) for name in self.layers) + 1
        if arch == "tiny":
            chans = [width * m for m in (1, 2, 4, 4, 4)][:depth]
            cins = [3] + chans[:-1]
            self.stages = nn.ModuleList(_block(ci, co) for ci, co in zip(cins, chans))
        elif arch == "resnet18":
            r = resnet18(weights=None)
            mods = [nn.Sequential(r.conv1, r.bn1, r.relu), nn.Sequential(r.maxpool, r.layer1),
                    r.layer2, r.layer3, r.layer4]
            chans = [64, 64, 128, 256, 512][:depth]
            self.stages = nn.ModuleList(mods[:depth])
        else:
            raise ValueError(f"arch must be 'tiny' or 'resnet18', got {arch!r}")
        self.channels = dict(zip(STAGES, chans))
        self.head = nn.Linear(sum(self.channels[n] for n in self.layers), 1)
        self.register_buffer("mask", None if mask is None else mask.float().clone())

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        x = (x - _MEAN) / _STD
        if self.mask is not None:
            x = x * self.mask
        return x

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        x = self.normalise(x)
        for name, stage in zip(STAGES, self.stages):
            x = stage(x)
            out[name] = x
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.features(x)
        grid = torch.zeros(x.shape[0], 1, 1, 2, device=x.device, dtype=feats[self.layers[0]].dtype)
        cols = [F.grid_sample(feats[n], grid.to(feats[n].dtype), mode="bilinear",
                              align_corners=False).flatten(1) for n in self.layers]
        return self.head(torch.cat(cols, dim=1)).squeeze(1)


def build_model(spec: StudySpec) -> StudyNet:
    mask = context_mask(spec.crop_hw, spec.template_hw, spec.tight_margin) if spec.context == "tight" else None
    return StudyNet(spec.layers, arch=spec.arch, width=spec.width, mask=mask)


def analytic_receptive_field(layer: str, arch: str = "tiny") -> int:
    """Theoretical receptive field (pixels, one side) of one unit of stage ``layer``."""
    if arch == "tiny":
        convs = [(3, 2), (3, 1)] * (STAGES.index(layer) + 1)
    elif arch == "resnet18":
        convs = [(7, 2)]
        for i in range(1, STAGES.index(layer) + 1):
            if i == 1:
                convs += [(3, 2)] + [(3, 1)] * 4
            else:
                convs += [(3, 2), (3, 1)] + [(3, 1)] * 2
    else:
        raise ValueError(f"unknown arch {arch!r}")
    rf, jump = 1, 1
    for k, s in convs:
        rf += (k - 1) * jump
        jump *= s
    return rf


def window_rf_extent(model: nn.Module, crop_hw, tol: float = 1e-8) -> tuple[int, int]:
    """Height and width of the window region that influences the centre score: the bounding
    box of the pixels where the input gradient is non-zero (the model in eval mode, summed
    over a few random inputs) — the *extent* of the effective receptive field, in window
    pixels (the table column ``effective_rf_hw`` of :func:`~tinylib.studies.run_studies`).
    Runs with one CPU thread (three single-window passes)."""
    was_training = model.training
    model.eval()
    g = torch.zeros(crop_hw)
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(0)
    with torch_threads(1):
        for _ in range(3):
            x = torch.rand(1, 3, *crop_hw, generator=gen).to(dev).requires_grad_(True)
            model(x).sum().backward()
            g += x.grad.detach().abs().sum(dim=(0, 1)).cpu()
    model.train(was_training)
    ys, xs = torch.nonzero(g > tol * g.max(), as_tuple=True)
    if len(ys) == 0:
        return (0, 0)
    return (int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1))
