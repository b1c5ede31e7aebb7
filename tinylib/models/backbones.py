"""Feature-extracting backbones: ResNets (torchvision and Caffe-style), the bottom-heavy
BH-ResNet50 and HRNet-18/32 with their BH versions (Ning et al., Table 4).

Every backbone here is a :class:`FeatureBackbone`: its ``forward(x)`` returns an
``OrderedDict`` of named feature maps (finest first) and it carries

* ``out_channels: dict[str, int]`` -- channels of each returned map;
* ``strides: dict[str, int]`` -- its stride in input pixels (4, 8, 16, 32 for all here).

``build_backbone(name, **kw)`` builds any of them by name (:data:`BACKBONES`).

Caffe-style ResNet
------------------
The original (Caffe / MSRA) ResNet-50 of He et al., used by *Finding Tiny Faces*, puts the
stride 2 of every down-sampling bottleneck in its **first 1x1 convolution**; torchvision
(like Facebook's Torch ResNet, "ResNet v1.5") puts it in the **3x3**. Both have the same
parameters, so weights load into either, but the receptive fields and the FLOPs differ
(``resnet_features(50, caffe_style=True)``). Basic-block ResNets (18/34) have no 1x1
convolution to move the stride to, so ``caffe_style`` is rejected for them.

Nothing is ever downloaded: ``pretrained=True`` loads torchvision's ImageNet weights only if
the file is already in the torch hub cache, else it logs a warning and keeps random init.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet as tv_resnet

log = logging.getLogger(__name__)

__all__ = [
    "FeatureBackbone",
    "ResNetFeatures",
    "HRNet",
    "HRNetSpec",
    "resnet_features",
    "bh_resnet50",
    "resnet50_scaled",
    "hrnet",
    "build_backbone",
    "BACKBONES",
    "HRNET_SPECS",
    "hub_checkpoint_path",
]

_RESNET_BUILDERS = {
    18: (tv_resnet.resnet18, tv_resnet.ResNet18_Weights),
    34: (tv_resnet.resnet34, tv_resnet.ResNet34_Weights),
    50: (tv_resnet.resnet50, tv_resnet.ResNet50_Weights),
    101: (tv_resnet.resnet101, tv_resnet.ResNet101_Weights),
    152: (tv_resnet.resnet152, tv_resnet.ResNet152_Weights),
}


class FeatureBackbone(nn.Module):
    """Base class: ``forward`` returns ``OrderedDict[name, Tensor]``; see the module doc."""

    out_channels: dict[str, int]
    strides: dict[str, int]

    def feature_names(self) -> list[str]:
        return list(self.strides)


# --------------------------------------------------------------------------------- ResNet
class ResNetFeatures(FeatureBackbone):
    """A stem followed by named stages; returns every stage's output (``res2``..``res5``).

    ``stem`` is an ``nn.Sequential`` (conv/bn/relu/maxpool), each stage an ``nn.Sequential``
    of torchvision ``BasicBlock``/``Bottleneck`` blocks registered under its output name.
    """

    def __init__(self, stem: nn.Module, stages: OrderedDict[str, nn.Module],
                 out_channels: dict[str, int], strides: dict[str, int]):
        super().__init__()
        self.stem = stem
        for name, stage in stages.items():
            self.add_module(name, stage)
        self._stage_names = list(stages)
        self.out_channels = dict(out_channels)
        self.strides = dict(strides)

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        x = self.stem(x)
        for name in self._stage_names:
            x = getattr(self, name)(x)
            out[name] = x
        return out


def hub_checkpoint_path(depth: int) -> Path:
    """Where torchvision's ImageNet checkpoint for ResNet-``depth`` sits in the hub cache."""
    if depth not in _RESNET_BUILDERS:
        raise ValueError(f"ResNet depth must be one of {sorted(_RESNET_BUILDERS)}, got {depth!r}")
    weights = _RESNET_BUILDERS[depth][1].IMAGENET1K_V1
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def _make_caffe_style(model: nn.Module) -> int:
    """Move the stride 2 of each down-sampling bottleneck from conv2 (3x3) to conv1 (1x1)."""
    moved = 0
    for module in model.modules():
        if isinstance(module, tv_resnet.Bottleneck) and module.conv2.stride != (1, 1):
            module.conv1.stride = module.conv2.stride
            module.conv2.stride = (1, 1)
            moved += 1
    return moved


def resnet_features(depth: int, *, caffe_style: bool = False,
                    pretrained: bool = False) -> ResNetFeatures:
    """torchvision ResNet-``depth`` (18/34/50/101/152) as a feature extractor.

    Returns ``res2..res5`` (strides 4, 8, 16, 32; channels 64..512 for 18/34 and
    256..2048 for 50/101/152). ``caffe_style=True`` (bottleneck ResNets only) moves the
    stride 2 of the down-sampling blocks to their first 1x1 convolution, as in the original
    Caffe ResNet. ``pretrained=True`` loads torchvision's ImageNet weights **only from the
    local hub cache** (:func:`hub_checkpoint_path`); if they are missing a warning is
    logged and the random initialisation is kept. The fully-connected head is dropped.
    """
    if depth not in _RESNET_BUILDERS:
        raise ValueError(f"ResNet depth must be one of {sorted(_RESNET_BUILDERS)}, got {depth!r}")
    builder, _ = _RESNET_BUILDERS[depth]
    model = builder(weights=None)
    if pretrained:
        path = hub_checkpoint_path(depth)
        if path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
            log.info("loaded ImageNet weights for ResNet-%d from %s", depth, path)
        else:
            log.warning(
                "pretrained=True but the ImageNet weights of ResNet-%d are not in the torch hub "
                "cache (%s); nothing is downloaded, keeping random initialisation. Put the file "
                "there to use them.", depth, path)
    if caffe_style:
        if depth in (18, 34):
            raise ValueError(
                f"caffe_style=True needs bottleneck blocks (depth 50/101/152); ResNet-{depth} "
                "uses basic blocks whose first convolution is already the 3x3")
        _make_caffe_style(model)
    stem = nn.Sequential(OrderedDict(conv1=model.conv1, bn1=model.bn1, relu=model.relu,
                                     maxpool=model.maxpool))
    stages = OrderedDict(res2=model.layer1, res3=model.layer2, res4=model.layer3,
                         res5=model.layer4)
    expansion = 1 if depth in (18, 34) else 4
    out_channels = {f"res{i + 2}": 64 * 2 ** i * expansion for i in range(4)}
    strides = {f"res{i + 2}": 4 * 2 ** i for i in range(4)}
    return ResNetFeatures(stem, stages, out_channels, strides)


def _bottleneck_stage(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    block = tv_resnet.Bottleneck
    out = planes * block.expansion
    downsample = None
    if stride != 1 or inplanes != out:
        downsample = nn.Sequential(tv_resnet.conv1x1(inplanes, out, stride), nn.BatchNorm2d(out))
    layers = [block(inplanes, planes, stride, downsample)]
    layers += [block(out, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def _bottleneck_resnet(w: int, *, stem_kernel: int, stem_stride: int, depths, first_strides) -> ResNetFeatures:
    """Stem ``stem_kernel x stem_kernel / stem_stride, w`` + ``3x3/2`` max-pool, then four
    bottleneck stages of widths ``w, 2w, 4w, 8w`` with ``depths`` blocks, each starting with a
    block of stride ``first_strides[i]``; outputs ``res2..res5`` at strides 4..32."""
    stem = nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, w, stem_kernel, stem_stride, stem_kernel // 2, bias=False), bn1=nn.BatchNorm2d(w),
        relu=nn.ReLU(inplace=True), maxpool=nn.MaxPool2d(3, 2, 1)))
    stages: OrderedDict[str, nn.Module] = OrderedDict()
    inplanes = w
    for i, (planes, blocks, stride) in enumerate(zip((w, 2 * w, 4 * w, 8 * w), depths, first_strides)):
        stages[f"res{i + 2}"] = _bottleneck_stage(inplanes, planes, blocks, stride)
        inplanes = planes * 4
    _init_weights(stem, stages)
    out_channels = {f"res{i + 2}": 4 * w * 2 ** i for i in range(4)}
    strides = {f"res{i + 2}": 4 * 2 ** i for i in range(4)}
    return ResNetFeatures(stem, stages, out_channels, strides)


def bh_resnet50(*, depths=(7, 6, 2, 1), width: int = 64) -> ResNetFeatures:
    """BH-ResNet50 of Table 4 (Ning et al.): stem ``3x3, 64, stride 1`` + ``3x3`` max-pool
    stride 2, then bottleneck stages of widths 64/128/256/512 with ``depths`` = 7, 6, 2, 1
    blocks, each stage starting with a stride-2 block (torchvision style: in the 3x3).
    Outputs ``res2..res5`` at strides 4, 8, 16, 32 like ResNet50. ``width`` scales every
    width (64 = the paper's; 16 = "x0.25", the CPU-scale twin of :func:`resnet50_scaled`)."""
    return _bottleneck_resnet(int(width), stem_kernel=3, stem_stride=1, depths=depths,
                              first_strides=(2, 2, 2, 2))


def resnet50_scaled(*, width: int = 64) -> ResNetFeatures:
    """ResNet-50 (torchvision's layout: stem ``7x7/2`` + max-pool, 3/4/6/3 bottlenecks, the
    stride in the 3x3) with every width scaled: base ``width`` instead of 64. ``width=64`` is
    torchvision's ResNet-50 exactly (same modules and parameter count, our initialisation);
    ``width=16`` is the "x0.25" twin of ``bh_resnet50(width=16)``: the same FLOP ratio between
    the two as at full width, 1/16 of the FLOPs."""
    return _bottleneck_resnet(int(width), stem_kernel=7, stem_stride=2, depths=(3, 4, 6, 3),
                              first_strides=(1, 2, 2, 2))


def _init_weights(*modules) -> None:
    for root in modules:
        items = root.values() if isinstance(root, dict) else [root]
        for mod in items:
            for m in mod.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------------- HRNet
def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _basic_branch(cin: int, cout: int, blocks: int) -> nn.Sequential:
    downsample = None
    if cin != cout:
        downsample = nn.Sequential(tv_resnet.conv1x1(cin, cout), nn.BatchNorm2d(cout))
    layers = [tv_resnet.BasicBlock(cin, cout, 1, downsample)]
    layers += [tv_resnet.BasicBlock(cout, cout) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class _HRModule(nn.Module):
    """One high-resolution module: parallel branches of basic blocks, then a full fusion
    (higher-resolution inputs reach lower ones by chains of 3x3 stride-2 convs, lower ones
    reach higher ones by 1x1 conv + nearest up-sampling), sum and ReLU. ``blocks``: basic
    blocks per branch, one number for all branches or one per branch (mmdetection's
    ``num_blocks``, highest resolution first)."""

    def __init__(self, channels: list[int], blocks: int | tuple[int, ...]):
        super().__init__()
        n = len(channels)
        per_branch = (blocks,) * n if isinstance(blocks, int) else tuple(blocks)
        if len(per_branch) != n:
            raise ValueError(f"{n} branches need {n} block counts, got {blocks!r}")
        self.branches = nn.ModuleList(_basic_branch(c, c, b) for c, b in zip(channels, per_branch))
        self.fuse = nn.ModuleList()
        for i in range(n):
            row = nn.ModuleList()
            for j in range(n):
                if j > i:
                    row.append(_conv_bn(channels[j], channels[i], 1, relu=False))
                elif j == i:
                    row.append(nn.Identity())
                else:
                    steps = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        steps.append(_conv_bn(channels[j], channels[i] if last else channels[j],
                                              3, 2, relu=not last))
                    row.append(nn.Sequential(*steps))
            self.fuse.append(row)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        outs = []
        for i, row in enumerate(self.fuse):
            y = xs[i]
            for j, layer in enumerate(row):
                if j == i:
                    continue
                z = layer(xs[j])
                if j > i:
                    z = F.interpolate(z, size=xs[i].shape[-2:], mode="nearest")
                y = y + z
            outs.append(self.relu(y))
        return outs


@dataclass(frozen=True)
class HRNetSpec:
    """An HRNet configuration.

    ``width`` C: branch widths C, 2C, 4C, 8C. ``stem``: ``"standard"`` (two 3x3 stride-2
    convs, 64 channels) or ``"bottom_heavy"`` (3x3 stride 1, 3x3 stride 2, 3x3 max-pool
    stride 2). ``stage1``: ``("bottleneck", 64, 4)`` = four bottlenecks of width 64
    (output 256) as in HRNet, or ``("basic", channels, blocks)``. ``stages``: for stages
    2, 3, 4 the pair (number of modules, basic blocks per branch in each module); the blocks
    are one number for every branch or a tuple with one per branch (highest resolution first).
    ``pool_after_stage1`` (bottom-heavy stem only): the stem's max-pool runs *after* stage 1,
    so stage 1 works at stride 2 instead of 4."""

    width: int
    stem: str = "standard"
    stage1: tuple = ("bottleneck", 64, 4)
    stages: tuple = ((1, 4), (4, 4), (3, 4))
    pool_after_stage1: bool = False
    notes: str = field(default="", compare=False)


HRNET_SPECS: dict[str, HRNetSpec] = {
    "hrnet18": HRNetSpec(18),
    "hrnet32": HRNetSpec(32),
    # Our readings of Table 4's BH rows, which show only the deepest branch: 4 / 8 / 3
    # (BH-HRNet32) and 4 / 12 / 6 (BH-HRNet18) repeated blocks in stages 2-4. Stage 1 = four
    # basic blocks of width 2C run at stride 2 (max-pool after it), the placement that keeps
    # the FLOPs of the originals (with the pool in the stem the BH-HRNets would lose 30-40% of
    # them). BH-HRNet32: the one reading of the split into modules x blocks per branch that
    # fits both its numbers (tinylib.analysis.flops.hrnet_readings; shipped table
    # bh_hrnet_readings): stage 2 four modules of one block, stage 3 HRNet's four modules
    # with 3 / 3 / 2 blocks, stage 4 HRNet's three modules of one block. BH-HRNet18: four
    # blocks per branch in stage 3 (fewer modules), HRNet's three modules in stage 4 (fewer
    # blocks) -- no reading of that family fits both of its numbers. See
    # notebooks/08_bottom_heavy.ipynb.
    "bh_hrnet18": HRNetSpec(18, stem="bottom_heavy", stage1=("basic", 36, 4),
                            stages=((1, 4), (3, 4), (3, 2)), pool_after_stage1=True),
    "bh_hrnet32": HRNetSpec(32, stem="bottom_heavy", stage1=("basic", 64, 4),
                            stages=((4, (1, 1)), (4, (3, 3, 2)), (3, 1)), pool_after_stage1=True),
}


class HRNet(FeatureBackbone):
    """HRNet(V2) backbone returning all four branches ``b1..b4`` (strides 4, 8, 16, 32;
    channels C, 2C, 4C, 8C), as used by detectors (mmdetection's ``HRNet`` without neck)."""

    def __init__(self, spec: HRNetSpec):
        super().__init__()
        self.spec = spec
        c = spec.width
        if spec.stem == "standard":
            self.stem = nn.Sequential(_conv_bn(3, 64, 3, 2), _conv_bn(64, 64, 3, 2))
        elif spec.stem == "bottom_heavy":
            self.stem = nn.Sequential(_conv_bn(3, 64, 3, 1), _conv_bn(64, 64, 3, 2))
            if not spec.pool_after_stage1:
                self.stem.append(nn.MaxPool2d(3, 2, 1))
        else:
            raise ValueError(f"HRNetSpec.stem must be 'standard' or 'bottom_heavy', got {spec.stem!r}")
        kind, ch, blocks = spec.stage1
        if kind == "bottleneck":
            self.stage1 = _bottleneck_stage(64, ch, blocks, 1)
            prev = [ch * 4]
        elif kind == "basic":
            self.stage1 = _basic_branch(64, ch, blocks)
            prev = [ch]
        else:
            raise ValueError(f"HRNetSpec.stage1 kind must be 'bottleneck' or 'basic', got {kind!r}")
        if spec.pool_after_stage1 and spec.stem != "bottom_heavy":
            raise ValueError("pool_after_stage1 needs the bottom_heavy stem (the only one with a pool)")
        self.pool = nn.MaxPool2d(3, 2, 1) if spec.pool_after_stage1 else nn.Identity()
        if len(spec.stages) != 3:
            raise ValueError(f"HRNetSpec.stages needs 3 entries (stages 2-4), got {spec.stages!r}")
        self.transitions = nn.ModuleList()
        self.stages = nn.ModuleList()
        for s, (modules, nblocks) in enumerate(spec.stages):
            cur = [c * 2 ** i for i in range(s + 2)]
            trans = nn.ModuleList()
            for i, co in enumerate(cur):
                if i < len(prev):
                    trans.append(nn.Identity() if prev[i] == co else _conv_bn(prev[i], co, 3))
                else:
                    trans.append(_conv_bn(prev[-1], co, 3, 2))
            self.transitions.append(trans)
            self.stages.append(nn.Sequential(*[_HRModule(cur, nblocks) for _ in range(modules)]))
            prev = cur
        _init_weights(self)
        names = [f"b{i + 1}" for i in range(4)]
        self.out_channels = {n: c * 2 ** i for i, n in enumerate(names)}
        self.strides = {n: 4 * 2 ** i for i, n in enumerate(names)}

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        x = self.pool(self.stage1(self.stem(x)))
        xs = [x]
        for trans, stage in zip(self.transitions, self.stages):
            new = []
            for i, t in enumerate(trans):
                src = xs[i] if i < len(xs) else xs[-1]
                new.append(t(src))
            xs = stage(new)
        return OrderedDict((n, t) for n, t in zip(self.out_channels, xs))


def hrnet(name_or_spec: str | HRNetSpec) -> HRNet:
    """HRNet by name (``hrnet18``, ``hrnet32``, ``bh_hrnet18``, ``bh_hrnet32``) or spec."""
    if isinstance(name_or_spec, HRNetSpec):
        return HRNet(name_or_spec)
    if name_or_spec not in HRNET_SPECS:
        raise ValueError(f"unknown HRNet {name_or_spec!r}; expected one of {sorted(HRNET_SPECS)}")
    return HRNet(HRNET_SPECS[name_or_spec])


BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet50_caffe",
             "bh_resnet50", "hrnet18", "hrnet32", "bh_hrnet18", "bh_hrnet32")


def build_backbone(name: str, **kw) -> FeatureBackbone:
    """Build a backbone by name (see :data:`BACKBONES`); ``kw`` go to the builder
    (``pretrained``/``caffe_style`` for ResNets, ``depths`` for ``bh_resnet50``; ``width`` for
    ``resnet50`` (:func:`resnet50_scaled`) and ``bh_resnet50``: the base width, 64 the paper's)."""
    key = name.lower()
    width = kw.pop("width", None)
    if width is not None:
        if key not in ("resnet50", "bh_resnet50"):
            raise TypeError(f"width= is an option of resnet50 and bh_resnet50 only, not {name}")
        if kw.pop("pretrained", False):
            raise ValueError(f"{name} with width={width}: no pretrained weights exist")
        return resnet50_scaled(width=width, **kw) if key == "resnet50" else bh_resnet50(width=width, **kw)
    if key == "resnet50_caffe":
        return resnet_features(50, caffe_style=True, **kw)
    if key.startswith("resnet") and key[6:].isdigit():
        return resnet_features(int(key[6:]), **kw)
    if key == "bh_resnet50":
        return bh_resnet50(**kw)
    if key in HRNET_SPECS:
        if kw:
            raise TypeError(f"{name} takes no options, got {sorted(kw)}")
        return hrnet(key)
    raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
