"""Theoretical and effective receptive fields of convolutional networks.

Theoretical receptive field (TRF)
---------------------------------
:func:`receptive_field_table` traces a module with :mod:`torch.fx` and propagates, per
spatial axis (height, width), three numbers through every node:

* ``size``   -- receptive-field size in input pixels,
* ``stride`` -- distance in input pixels between neighbouring units ("jump"),
* ``offset`` -- input coordinate of the centre of the receptive field of unit 0, where input
  pixel ``i`` is centred at ``i`` (so unit ``n`` is centred at ``offset + n * stride``).

A layer with kernel ``k``, stride ``s``, padding ``p`` and dilation ``d`` (``ke = d(k-1)+1``)
maps ``(size, stride, offset)`` to ``(size + (ke-1)*stride, stride*s,
offset + ((ke-1)/2 - p)*stride)``. Element-wise layers (BatchNorm, ReLU, ...) leave them
unchanged. Where branches meet (residual ``+``, concatenation) the receptive field is the
**union** of the branches' fields (the max of the sizes when they share a centre); the
strides must agree. Anything else -- global pooling, linear layers, up-sampling,
unknown functions -- raises :class:`UnsupportedLayerError` naming the node.

Convention: the receptive field of a stage ``res_k`` is that of the units of the **last
layer of the stage** (its output), i.e. the largest in the stage.

Effective receptive field (ERF)
-------------------------------
:func:`effective_receptive_field` back-propagates from the centre unit of a feature map to
the input (Luo et al., 2016) and returns the mean absolute input gradient.
"""

from __future__ import annotations

import logging
import math
import operator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import fx, nn

log = logging.getLogger(__name__)

__all__ = [
    "RF",
    "UnsupportedLayerError",
    "receptive_field_table",
    "receptive_fields",
    "effective_receptive_field",
    "erf_radius",
    "foveal_figure",
    "erf_figure",
]


class UnsupportedLayerError(TypeError):
    """A node whose effect on the receptive field is not known (its name is in the message)."""


@dataclass(frozen=True)
class RF:
    """Receptive field along (height, width): ``size``, ``stride`` and ``offset``."""

    size: tuple[float, float]
    stride: tuple[float, float]
    offset: tuple[float, float]

    @property
    def square(self) -> float:
        """The size when both axes agree (the paper's 'res3 99x99'); else raises."""
        if self.size[0] != self.size[1]:
            raise ValueError(f"receptive field is not square: {self.size}")
        return self.size[0]

    def box(self, row: int = 0, col: int = 0) -> tuple[float, float, float, float]:
        """Receptive field of unit ``(row, col)`` as ``(x1, y1, x2, y2)`` in input pixels."""
        cy = self.offset[0] + row * self.stride[0]
        cx = self.offset[1] + col * self.stride[1]
        hh, hw = self.size[0] / 2, self.size[1] / 2
        return (cx - hw + 0.5, cy - hh + 0.5, cx + hw + 0.5, cy + hh + 0.5)


_INPUT = RF((1.0, 1.0), (1.0, 1.0), (0.0, 0.0))

_ELEMENTWISE_MODULES = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
    nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.Identity, nn.Dropout, nn.Dropout2d,
)
_ELEMENTWISE_FUNCS = {
    F.relu, F.relu6, F.leaky_relu, F.gelu, F.silu, F.sigmoid, F.hardswish, F.dropout,
    F.batch_norm, torch.relu, torch.sigmoid, torch.tanh, torch.sigmoid, operator.neg,
    torch.nn.functional.elu,
}
_MERGE_FUNCS = {operator.add, operator.mul, operator.sub, torch.add, torch.mul, torch.cat,
                torch.stack, operator.iadd}
_PASS_METHODS = {"relu", "relu_", "sigmoid", "contiguous", "clone", "float", "to", "add",
                 "add_", "mul", "mul_", "sub"}


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _through(rf: RF, k, s, p, d=1) -> RF:
    k, s, p, d = _pair(k), _pair(s), _pair(p), _pair(d)
    size, stride, offset = [], [], []
    for a in range(2):
        ke = d[a] * (k[a] - 1) + 1
        size.append(rf.size[a] + (ke - 1) * rf.stride[a])
        offset.append(rf.offset[a] + ((ke - 1) / 2 - p[a]) * rf.stride[a])
        stride.append(rf.stride[a] * s[a])
    return RF(tuple(size), tuple(stride), tuple(offset))


def _union(rfs: list[RF], where: str) -> RF:
    strides = {r.stride for r in rfs}
    if len(strides) > 1:
        raise UnsupportedLayerError(
            f"{where}: merging branches with different strides {sorted(strides)}; expected equal")
    size, offset = [], []
    for a in range(2):
        lo = min(r.offset[a] - (r.size[a] - 1) / 2 for r in rfs)
        hi = max(r.offset[a] + (r.size[a] - 1) / 2 for r in rfs)
        size.append(hi - lo + 1)
        offset.append((lo + hi) / 2)
    return RF(tuple(size), rfs[0].stride, tuple(offset))


def _rf_args(node: fx.Node, env: dict) -> list[RF]:
    out = []

    def visit(a):
        if isinstance(a, fx.Node) and isinstance(env.get(a), RF):
            out.append(env[a])
        return a

    fx.node.map_aggregate(node.args, visit)
    fx.node.map_aggregate(node.kwargs, visit)
    return out


def _module_rf(mod: nn.Module, inputs: list[RF], name: str) -> RF:
    if len(inputs) != 1:
        raise UnsupportedLayerError(f"{name} ({type(mod).__name__}): expected one tensor input")
    rf = inputs[0]
    if isinstance(mod, nn.Conv2d):
        if isinstance(mod.padding, str):
            raise UnsupportedLayerError(f"{name}: string padding {mod.padding!r} not supported")
        return _through(rf, mod.kernel_size, mod.stride, mod.padding, mod.dilation)
    if isinstance(mod, nn.MaxPool2d):
        return _through(rf, mod.kernel_size, mod.stride or mod.kernel_size, mod.padding,
                        mod.dilation)
    if isinstance(mod, nn.AvgPool2d):
        return _through(rf, mod.kernel_size, mod.stride or mod.kernel_size, mod.padding)
    if isinstance(mod, _ELEMENTWISE_MODULES):
        return rf
    raise UnsupportedLayerError(
        f"layer {name!r} of type {type(mod).__name__} has no known receptive-field rule; "
        "supported: Conv2d, MaxPool2d, AvgPool2d and element-wise layers")


class _LeafTracer(fx.Tracer):
    """Keeps every module the walker understands as one node (BatchNorm, pools, convs)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return len(list(m.children())) == 0


def _trace(model: nn.Module) -> fx.GraphModule:
    tracer = _LeafTracer()
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # torch.fx raises many types
        raise UnsupportedLayerError(
            f"cannot trace {type(model).__name__} with torch.fx: {exc}") from exc
    return fx.GraphModule(tracer.root, graph)


def _walk(model: nn.Module):
    if len(list(model.children())) == 0:  # a bare layer: trace it as a one-layer stack
        model = nn.Sequential(model)
    gm = _trace(model)
    modules = dict(gm.named_modules())
    env: dict[fx.Node, object] = {}
    rows = []
    n_inputs = 0
    output = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            n_inputs += 1
            if n_inputs > 1:
                raise UnsupportedLayerError(f"{node.name}: only one image input is supported")
            env[node] = _INPUT
            continue
        if node.op == "get_attr":
            env[node] = None
            continue
        if node.op == "output":
            output = node.args[0]
            break
        inputs = _rf_args(node, env)
        if node.op == "call_module":
            rf = _module_rf(modules[node.target], inputs, node.target)
            label, kind = node.target, type(modules[node.target]).__name__
        elif node.op in ("call_function", "call_method"):
            target = node.target
            fname = getattr(target, "__name__", str(target))
            label, kind = node.name, fname
            if not inputs:
                env[node] = None
                continue
            if node.op == "call_function" and target in _MERGE_FUNCS:
                rf = _union(inputs, node.name)
            elif len(inputs) == 1 and (
                (node.op == "call_function" and target in _ELEMENTWISE_FUNCS)
                or (node.op == "call_method" and target in _PASS_METHODS)
                or (node.op == "call_function" and target is operator.getitem
                    and not isinstance(node.args[1], (slice, tuple)))
            ):
                rf = inputs[0]
            elif node.op == "call_function" and target is F.max_pool2d:
                a = list(node.args) + [None] * 5
                k = node.kwargs.get("kernel_size", a[1])
                s = node.kwargs.get("stride", a[2]) or k
                p = node.kwargs.get("padding", a[3] if a[3] is not None else 0)
                rf = _through(inputs[0], k, s, p)
            else:
                raise UnsupportedLayerError(
                    f"node {node.name!r} calls {fname!r}, which has no known receptive-field "
                    "rule (supported: conv/pool modules, element-wise ops, +, *, cat)")
        else:  # pragma: no cover - fx has no other ops
            raise UnsupportedLayerError(f"node {node.name}: unexpected fx op {node.op}")
        env[node] = rf
        rows.append(dict(layer=label, type=kind, rf_h=rf.size[0], rf_w=rf.size[1],
                         stride_h=rf.stride[0], stride_w=rf.stride[1],
                         offset_h=rf.offset[0], offset_w=rf.offset[1]))
    return env, rows, output


def receptive_field_table(model: nn.Module) -> pd.DataFrame:
    """One row per traced layer (in execution order): ``layer, type, rf_h, rf_w, stride_h,
    stride_w, offset_h, offset_w``."""
    _, rows, _ = _walk(model)
    return pd.DataFrame(rows)


def receptive_fields(model: nn.Module) -> dict[str, RF]:
    """Receptive field of each output of ``model``: keys of a returned dict (e.g. ``res2``
    ..``res5``), indices of a returned tuple/list, or ``"out"`` for a single tensor."""
    env, _, output = _walk(model)
    if isinstance(output, fx.Node):
        return {"out": env[output]}
    if isinstance(output, dict):
        return {str(k): env[v] for k, v in output.items()}
    if isinstance(output, (tuple, list)):
        return {str(i): env[v] for i, v in enumerate(output)}
    raise UnsupportedLayerError(f"unsupported output structure {type(output).__name__}")


def effective_receptive_field(model: nn.Module, feature: str | None = None, *,
                              input_size: tuple[int, int] = (256, 256), n_samples: int = 4,
                              seed: int = 0, inputs: str = "noise") -> np.ndarray:
    """Mean ``|d y_c / d x|`` over ``n_samples`` inputs, where ``y_c`` is the sum over
    channels of the centre unit of output ``feature`` (a key of the model's output dict).

    ``inputs="noise"`` uses standard-normal images, ``"zeros"`` an all-zero image. The model is
    evaluated in ``eval()`` mode (BatchNorm uses its running statistics). Returns an
    ``(H, W)`` array normalised to sum 1."""
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    acc = torch.zeros(input_size)
    try:
        for _ in range(n_samples):
            if inputs == "noise":
                x = torch.randn(1, 3, *input_size, generator=gen)
            elif inputs == "zeros":
                x = torch.zeros(1, 3, *input_size)
            else:
                raise ValueError(f"inputs must be 'noise' or 'zeros', got {inputs!r}")
            x.requires_grad_(True)
            out = model(x)
            if isinstance(out, dict):
                if feature is None or feature not in out:
                    raise KeyError(f"feature must be one of {list(out)}, got {feature!r}")
                out = out[feature]
            h, w = out.shape[-2:]
            out[0, :, h // 2, w // 2].sum().backward()
            acc += x.grad[0].abs().sum(0)
    finally:
        model.train(was_training)
    total = acc.sum()
    arr = (acc / total if total > 0 else acc).numpy()
    return arr


def erf_radius(erf: np.ndarray, mass: float = 0.95) -> float:
    """Side (px) of the smallest square centred on the map's centre unit (``(H//2, W//2)``,
    where :func:`effective_receptive_field` puts it) holding ``mass`` of the ERF's total."""
    erf = np.asarray(erf, dtype=np.float64)
    h, w = erf.shape
    cy, cx = h // 2, w // 2
    total = erf.sum()
    for r in range(max(h, w)):
        win = erf[max(cy - r, 0): cy + r + 1, max(cx - r, 0): cx + r + 1]
        if win.sum() >= mass * total * (1 - 1e-9):
            return float(2 * r + 1)
    return float(math.inf)


def erf_figure(erfs: dict, rfs: dict | None = None, erf_sizes: dict | None = None, *,
               gamma: float = 0.5, panel_size: float = 3.4):
    """The effective receptive fields ``erfs`` (name -> ``(H, W)`` map, as
    :func:`effective_receptive_field` returns) side by side, shown as ``erf ** gamma`` (the
    tails visible). Each panel's title names the feature and, on its own lines, its
    theoretical field (``rfs[name]``, an :class:`RF`) and the side of the square holding 95 %
    of its ERF (``erf_sizes[name]`` px, :func:`erf_radius`); short lines and a constrained
    layout keep the titles of neighbouring panels apart. Returns the figure."""
    import matplotlib.pyplot as plt  # matplotlib only when drawing (heavy import)

    if not erfs:
        raise ValueError("erf_figure needs at least one ERF map")
    fig, axes = plt.subplots(1, len(erfs), figsize=(panel_size * len(erfs), panel_size + 0.6),
                             layout="constrained", squeeze=False)
    for ax, (name, erf) in zip(axes[0], erfs.items()):
        ax.imshow(np.asarray(erf) ** gamma, cmap="magma")
        lines = [str(name)]
        if rfs and name in rfs:
            lines.append(f"TRF {rfs[name].square:.0f} px")
        if erf_sizes and name in erf_sizes:
            lines.append(f"95 % of ERF in {erf_sizes[name]:.0f} px")
        ax.set_title("\n".join(lines), fontsize=9)
        ax.axis("off")
    return fig


def foveal_figure(rfs: dict, face=(25, 20), erf_sizes: dict | None = None, ax=None,
                  colours=("c", "deepskyblue", "navy", "k")):
    """Fig. 4-style picture: a ``face = (h, w)`` box centred at 0 with the theoretical
    receptive field of each feature (dotted squares) and, optionally, the ERF sizes
    (``erf_sizes[name]`` px, dashed). Returns the matplotlib axes."""
    import matplotlib.patches as mpatches  # matplotlib only when drawing (heavy import)
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    fh, fw = face
    ax.add_patch(mpatches.Rectangle((-fw / 2, -fh / 2), fw, fh, fill=False, color="g", lw=2,
                                    label=f"face {fh}x{fw}"))
    big = max(fh, fw)
    for (name, rf), col in zip(rfs.items(), colours):
        s = rf.size[0]
        big = max(big, s)
        ax.add_patch(mpatches.Rectangle((-s / 2, -s / 2), s, s, fill=False, color=col, ls=":",
                                        lw=1.5, label=f"{name} TRF {s:.0f}"))
        if erf_sizes and name in erf_sizes:
            e = erf_sizes[name]
            ax.add_patch(mpatches.Rectangle((-e / 2, -e / 2), e, e, fill=False, color=col,
                                            ls="--", lw=1, label=f"{name} ERF95 {e:.0f}"))
    lim = big / 2 * 1.05
    ax.set_xlim(-lim, lim)
    ax.set_ylim(lim, -lim)
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="upper right")
    return ax
