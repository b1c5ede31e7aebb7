"""Parameters and multiply-adds per stage (Table 4 and Fig. 2 of the BH paper).

Counting conventions (they explain most gaps between published tables):

* ``conv_gmacs`` -- multiply-accumulates of the convolutions, counted by
  :class:`torch.utils.flop_counter.FlopCounterMode` (which reports FLOPs = 2 x MACs; we
  halve them). Detection papers' "GFLOPs" (mmcv's ``get_model_complexity_info``) are in
  fact GMACs.
* ``mmcv_gflops`` -- what mmcv's counter adds on top: BatchNorm ``2 x numel`` (affine),
  ReLU ``numel``, max-pool ``numel`` of its input, nearest up-sampling ``numel`` of its
  output, plus the convolutions' MACs. This is the convention of the BH paper's table.
* parameters of the backbone only (no classification head), with and without BatchNorm.

Table 4 of the BH paper was counted with mmcv 1.4.7's ``get_model_complexity_info`` on
mmdetection 2.19's HRNet (the authors' requirements), backbone only, input 640 x 512: forward
hooks on ``Conv2d`` (MACs + bias), ``BatchNorm`` (2 x input elements), ``ReLU`` (output
elements), pools (input elements) and ``nn.Upsample`` (output elements; the fusion's
nearest up-sampling), each call counted; additions not counted. mmdetection's HRNet is ours
layer for layer (1x1 conv + BN + nearest up-sampling up, strided 3x3 chains down, 3x3
transitions), so no change to the architecture is needed: with these rules
(:func:`complexity_by_stage`, and :func:`complexity_by_module` that mirrors mmcv's hooks
independently) HRNet18 / HRNet32 give 21.71 / 51.93 GFLOPs, Table 4's numbers to their
rounding, ResNet50 / BH-ResNet50 26.90 / 27.12 and our BH-HRNet18 reading 21.69 (21.66).
(An earlier version of :func:`complexity_by_stage` dropped HRNet's transition convolutions,
which put HRNet18/32 5-6% below Table 4.) The BH-HRNet rows show only the deepest branch;
:func:`hrnet_readings` enumerates the splits into modules x blocks per branch that fit a row's
parameters (shipped table ``bh_hrnet_readings``; chapter 08 renders what it shows: which
reading fits both of BH-HRNet32's numbers, and that none of the family fits BH-HRNet18's).

FLOPs are counted on the ``meta`` device: no memory, no arithmetic, same numbers.
"""

from __future__ import annotations

import logging

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .. import papers
from ..models.backbones import build_backbone

log = logging.getLogger(__name__)

__all__ = ["bh_stage_of", "count_params", "complexity_by_stage", "complexity_summary",
           "PAPER_TABLE4", "stage_shares", "output_shapes"]

PAPER_TABLE4 = papers.TABLE4  # params (M), GFLOPs at 640 x 512 -- Ning et al., Table 4

_STAGE_NAMES = {"res2": "stage1", "res3": "stage2", "res4": "stage3", "res5": "stage4",
                "stage1": "stage1", "stem": "stem", "pool": "stage1"}


def bh_stage_of(name: str) -> str:
    """The BH paper's stage of a parameter/module name: ``stem``, ``stage1``..``stage4``
    (ResNet ``res2`` = stage 1; HRNet ``transitions.i``/``stages.i`` = stage ``i + 2``,
    ``pool`` (BH-HRNet's max-pool after stage 1) = stage 1), ``other`` otherwise. (The HR
    detector's learning-rate groups are another grouping: ``tinylib.hr.model``.)"""
    head = name.split(".")[0]
    if head in _STAGE_NAMES:
        return _STAGE_NAMES[head]
    if head in ("transitions", "stages"):
        return f"stage{int(name.split('.')[1]) + 2}"
    return "other"


def count_params(model: nn.Module, include_bn: bool = True) -> dict[str, int]:
    """Parameters per stage (``include_bn=False`` counts convolution/linear weights only)."""
    bn_names = set()
    if not include_bn:
        for mname, m in model.named_modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                bn_names.update(f"{mname}.{p}" for p, _ in m.named_parameters(recurse=False))
    out: dict[str, int] = {}
    for name, p in model.named_parameters():
        if name in bn_names:
            continue
        out[bh_stage_of(name)] = out.get(bh_stage_of(name), 0) + p.numel()
    return out


def _extra_ops_hooks(model: nn.Module, extra: dict):
    handles = []

    def add(name, n):
        s = bh_stage_of(name)
        extra[s] = extra.get(s, 0) + int(n)

    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            handles.append(m.register_forward_hook(
                lambda mod, i, o, n=name: add(n, i[0].numel() * (2 if mod.affine else 1))))
        elif isinstance(m, nn.ReLU):
            handles.append(m.register_forward_hook(lambda mod, i, o, n=name: add(n, o.numel())))
        elif isinstance(m, nn.MaxPool2d):
            handles.append(m.register_forward_hook(lambda mod, i, o, n=name: add(n, i[0].numel())))
    return handles


def complexity_by_stage(model: nn.Module, input_size=(512, 640), device: str = "meta") -> pd.DataFrame:
    """Per stage: ``params``, ``params_no_bn``, ``conv_gmacs`` (FlopCounterMode / 2),
    ``extra_gflops`` (BN/ReLU/pool in mmcv's convention) and ``mmcv_gflops`` (their sum);
    ``input_size`` is ``(H, W)`` (640 x 512 in the paper = H 512, W 640). A last row
    ``total`` sums the columns. Bilinear/nearest up-sampling of HRNet's fusion (not counted
    by FlopCounterMode) is added to ``extra_gflops`` as ``numel`` of its output."""
    model = model.to(device).eval()
    extra: dict[str, int] = {}
    handles = _extra_ops_hooks(model, extra)
    interp: dict[str, int] = {"n": 0}
    orig = torch.nn.functional.interpolate

    def counting_interpolate(*a, **k):
        out = orig(*a, **k)
        interp["n"] += out.numel()
        return out

    top = type(model).__name__
    try:
        torch.nn.functional.interpolate = counting_interpolate
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            model(torch.zeros(1, 3, *input_size, device=device))
    finally:
        torch.nn.functional.interpolate = orig
        for h in handles:
            h.remove()
    counts = fc.get_flop_counts()
    params = count_params(model)
    params_nobn = count_params(model, include_bn=False)
    conv: dict[str, float] = {}
    for key, ops in counts.items():
        parts = key.split(".")
        if parts[0] != top or len(parts) < 2:
            continue
        sub = ".".join(parts[1:])
        # HRNet: a stage (``stages.i``) is called, its transitions' ModuleList is not: they
        # are counted one level deeper (``transitions.i.j``), else they are lost (5-6% of HRNet)
        depth_ok = (len(parts) == 2 and parts[1] not in ("transitions", "stages")) or (
            len(parts) == 3 and parts[1] == "stages") or (len(parts) == 4 and parts[1] == "transitions")
        if depth_ok:
            s = bh_stage_of(sub)
            conv[s] = conv.get(s, 0) + sum(ops.values()) / 2
    if interp["n"]:  # HRNet fusions (stages 2-4), kept on their own row
        extra["fusion_upsample"] = interp["n"]
    stages = [s for s in ("stem", "stage1", "stage2", "stage3", "stage4", "other",
                          "fusion_upsample") if s in params or s in conv or s in extra]
    rows = []
    for s in stages:
        rows.append(dict(stage=s, params=params.get(s, 0), params_no_bn=params_nobn.get(s, 0),
                         conv_gmacs=conv.get(s, 0) / 1e9, extra_gflops=extra.get(s, 0) / 1e9))
    df = pd.DataFrame(rows)
    df["mmcv_gflops"] = df["conv_gmacs"] + df["extra_gflops"]
    total = df.drop(columns="stage").sum()
    df = pd.concat([df, pd.DataFrame([dict(stage="total", **total)])], ignore_index=True)
    return df


def complexity_summary(names=tuple(PAPER_TABLE4), input_size=(512, 640)) -> pd.DataFrame:
    """Table 4 side by side: per backbone, paper params/GFLOPs and ours in each convention."""
    rows = []
    for name in names:
        with torch.device("meta"):  # no weight initialisation cost
            model = build_backbone(name)
        t = complexity_by_stage(model, input_size).set_index("stage").loc["total"]
        paper = PAPER_TABLE4.get(name, (float("nan"), float("nan")))
        rows.append(dict(model=name, paper_params_m=paper[0], params_m=t["params"] / 1e6,
                         params_no_bn_m=t["params_no_bn"] / 1e6, paper_gflops=paper[1],
                         conv_gmacs=t["conv_gmacs"], mmcv_gflops=t["mmcv_gflops"]))
    return pd.DataFrame(rows)


# ------------------------------------------- mmcv's rules, module by module (a second counter)
_MMCV_OPS = ((nn.Conv2d, "conv"), (nn.modules.batchnorm._BatchNorm, "bn"), (nn.ReLU, "relu"),
             (nn.MaxPool2d, "pool"), (nn.Upsample, "upsample"))


def _part_of(name: str) -> str:
    """The part of a backbone a module belongs to: ``stem``, ``stage1`` (HRNet's stage 1 and
    BH-HRNet's pool after it), ``transition``, ``branch`` (an HR module's parallel blocks),
    ``fuse`` (an HR module's exchange: its 1x1 / strided 3x3 convolutions, up-sampling, ReLU),
    ``blocks`` (a ResNet's ``res2..res5``), ``other``."""
    parts = name.split(".")
    if parts[0] == "stages":
        return "branch" if len(parts) > 3 and parts[3] == "branches" else "fuse"
    return {"transitions": "transition", "stem": "stem", "stage1": "stage1", "pool": "stage1"}.get(
        parts[0], "blocks" if parts[0].startswith("res") else "other")


def complexity_by_module(model: nn.Module, input_size=(512, 640), device: str = "meta") -> pd.DataFrame:
    """mmcv's counting rules (``mmcv.cnn.get_model_complexity_info``, 1.x: a forward hook on
    each module of a counted type, every call counted) module by module. One row per
    ``(module, op)``: ``conv`` = multiply-adds (``k_h k_w C_in C_out / groups`` per output
    position, plus ``C_out`` per position with a bias), ``bn`` = input elements (x2 when
    affine), ``relu`` = output elements, ``pool`` = input elements, ``upsample`` = output
    elements (``nn.Upsample``, which mmdetection's HRNet fuses with; our HRNet calls
    ``F.interpolate``, counted the same and booked to the HR module that calls it).
    Element-wise additions are not counted (mmcv has no hook for them). Columns ``module,
    op, stage`` (:func:`bh_stage_of`), ``part`` (:func:`_part_of`), ``calls``, ``gflops``;
    their sum is :func:`complexity_by_stage`'s ``mmcv_gflops`` total."""
    model = model.to(device).eval()
    rows: dict[tuple[str, str], list] = {}
    stack: list[tuple[str, nn.Module]] = []  # the modules being run, innermost last

    def add(name, op, n):
        r = rows.setdefault((name, op), [0, 0])
        r[0] += 1
        r[1] += int(n)

    def count(mod, inp, out, name, op):
        if op == "conv":
            per = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels * mod.out_channels // mod.groups
            pos = out.shape[0] * out.shape[2] * out.shape[3]
            add(name, op, per * pos + (mod.out_channels * pos if mod.bias is not None else 0))
        elif op == "bn":
            add(name, op, inp[0].numel() * (2 if mod.affine else 1))
        elif op in ("relu", "upsample"):
            add(name, op, out.numel())
        else:
            add(name, op, inp[0].numel())

    def enter(mod, inp, name):
        stack.append((name, mod))

    def leave(mod, inp, out):
        stack.pop()  # returns None: a hook's return value would replace the output

    handles = []
    for name, m in model.named_modules():
        handles.append(m.register_forward_pre_hook(lambda mod, i, n=name: enter(mod, i, n)))
        handles.append(m.register_forward_hook(leave))
        op = next((o for t, o in _MMCV_OPS if isinstance(m, t)), None)
        if op is not None:
            handles.append(m.register_forward_hook(lambda mod, i, o, n=name, op=op: count(mod, i, o, n, op)))
    orig = torch.nn.functional.interpolate

    def counting_interpolate(*a, **k):
        out = orig(*a, **k)
        if not (stack and isinstance(stack[-1][1], nn.Upsample)):  # nn.Upsample counts itself
            add(stack[-1][0] if stack else "", "upsample", out.numel())
        return out

    try:
        torch.nn.functional.interpolate = counting_interpolate
        with torch.no_grad():
            model(torch.zeros(1, 3, *input_size, device=device))
    finally:
        torch.nn.functional.interpolate = orig
        for h in handles:
            h.remove()
    df = pd.DataFrame([dict(module=n, op=op, stage=bh_stage_of(n), part=_part_of(n), calls=c,
                            gflops=v / 1e9) for (n, op), (c, v) in rows.items()])
    return df


__all__ += ["complexity_by_module"]


def stage_shares(df: pd.DataFrame, column: str = "mmcv_gflops") -> pd.Series:
    """Share of ``column`` per stage (Fig. 2), from a :func:`complexity_by_stage` table."""
    body = df[df["stage"] != "total"].set_index("stage")[column]
    return body / body.sum()


def output_shapes(models, input_size=(512, 640)) -> pd.DataFrame:
    """The output maps of each backbone for an ``input_size = (H, W)`` input, as a table
    short enough to be shown whole: one row per model (``models``: names for
    :func:`~tinylib.models.backbones.build_backbone`, or a dict name -> module), one column
    per stride (``"/4"``, ``"/8"``, ...) holding ``"<map>: C x H x W"``. Run on the ``meta``
    device: shapes only, no arithmetic."""
    if not isinstance(models, dict):
        models = {name: None for name in models}
    h, w = input_size
    x = torch.zeros(1, 3, h, w, device="meta")
    rows = {}
    for name, model in models.items():
        if model is None:
            with torch.device("meta"):
                model = build_backbone(name)
        out = model.to("meta").eval()(x)
        if not isinstance(out, dict):
            raise TypeError(f"{name}: expected the backbone to return a dict of maps, got {type(out).__name__}")
        row = {}
        for key, v in out.items():
            stride = f"/{w // v.shape[-1]}"
            if stride in row:
                raise ValueError(f"{name}: two output maps at stride {stride} ({key} and {row[stride]})")
            row[stride] = f"{key}: {v.shape[1]} x {v.shape[2]}x{v.shape[3]}"
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table = table[sorted(table.columns, key=lambda c: int(c[1:]))]
    table.index.name = f"model (input {h}x{w})"
    return table.fillna("")


# ------------------------------------------------ readings of a BH-HRNet row of Table 4
def hrnet_module_params(channels, blocks) -> int:
    """Parameters (BatchNorm included) of one high-resolution module
    (:class:`~tinylib.models.backbones.HRNet`'s ``_HRModule``) with branch widths
    ``channels`` and ``blocks`` basic blocks per branch (one number or one per branch),
    counted from the layer shapes without building it: a basic block ``18 c^2 + 4 c``; the
    fusion's 1x1 up-paths ``c_j c_i + 2 c_i``; its down-paths a chain of 3x3 stride-2 convs."""
    n = len(channels)
    per = (blocks,) * n if isinstance(blocks, int) else tuple(blocks)
    total = sum(b * (18 * c * c + 4 * c) for c, b in zip(channels, per))
    for i, ci in enumerate(channels):
        for j, cj in enumerate(channels):
            if j > i:
                total += cj * ci + 2 * ci
            elif j < i:
                total += (i - j - 1) * (9 * cj * cj + 2 * cj) + 9 * cj * ci + 2 * ci
    return total


def _stages_params(width: int, stages) -> int:
    return sum(m * hrnet_module_params([width * 2 ** i for i in range(s + 2)], b)
               for s, (m, b) in enumerate(stages))


def _canonical(stages) -> str:
    """``stages`` with every block count written per branch: one spelling per reading."""
    return str(tuple((m, (b,) * (s + 2) if isinstance(b, int) else tuple(b)) for s, (m, b) in enumerate(stages)))


def _reading_row(base, stages, params_m: float, paper_g: float, input_size) -> dict:
    from dataclasses import replace

    from ..models.backbones import HRNet

    with torch.device("meta"):  # built on meta, counted outside the device context
        model = HRNet(replace(base, stages=stages))
    g = complexity_by_stage(model, input_size).set_index("stage").at["total", "mmcv_gflops"]
    return {"stages": _canonical(stages), "params_m": params_m, "mmcv_gflops": g, "d_gflops": g / paper_g - 1}


def hrnet_readings(name: str = "bh_hrnet32", deepest=None, *, max_blocks: int = 4,
                   params_tol: float = 0.005, input_size=(512, 640)) -> pd.DataFrame:
    """Every reading of a BH-HRNet row of Table 4 that fits its parameter count, with its
    GFLOPs -- the answer to "which layer accounts for the gap".

    Table 4 shows, per stage 2-4, only the deepest branch's number of repeated blocks
    (``deepest``; BH-HRNet32 4 / 8 / 3, BH-HRNet18 4 / 12 / 6). Left open: how they split into
    modules x blocks, and how many blocks the shallower (higher-resolution) branches have.
    Enumerated here: every split ``modules x deepest blocks`` of each stage, and shallower
    branches with ``1..max_blocks`` blocks each, never fewer towards higher resolution (the
    bottom-heavy rule); stem and stage 1 as :data:`~tinylib.models.backbones.HRNET_SPECS`
    ``[name]``. Kept: readings within ``params_tol`` (M) of Table 4's parameters (counted by
    :func:`hrnet_module_params`, no model built); their GFLOPs are then counted by
    :func:`complexity_by_stage` in mmcv's convention. Columns: ``stages`` (the
    :class:`~tinylib.models.backbones.HRNetSpec` value), ``params_m``, ``mmcv_gflops``,
    ``d_gflops`` (relative to Table 4), ``is_ours`` (the reading :data:`HRNET_SPECS` uses)."""
    import itertools

    from ..models.backbones import HRNET_SPECS, HRNet

    base = HRNET_SPECS[name]
    deepest = tuple(deepest or {"bh_hrnet32": (4, 8, 3), "bh_hrnet18": (4, 12, 6)}[name])
    paper_p, paper_g = PAPER_TABLE4[name]
    with torch.device("meta"):
        fixed = sum(p.numel() for p in HRNet(base).parameters()) - _stages_params(base.width, base.stages)
    options = []
    for s, d in enumerate(deepest):
        opts = []
        for m in (m for m in range(1, d + 1) if d % m == 0):
            for k in itertools.product(range(1, max_blocks + 1), repeat=s + 1):
                if all(a >= b for a, b in zip(k, k[1:])) and k[-1] >= d // m:
                    opts.append((m, (*k, d // m)))
        options.append(opts)
    rows = []
    for stages in itertools.product(*options):
        p = (fixed + _stages_params(base.width, stages)) / 1e6
        if abs(p - paper_p) <= params_tol:
            rows.append(_reading_row(base, stages, p, paper_g, input_size))
    rows.append(_reading_row(base, base.stages, (fixed + _stages_params(base.width, base.stages)) / 1e6,
                             paper_g, input_size))
    out = pd.DataFrame(rows).drop_duplicates("stages", keep="last")
    out["is_ours"] = out["stages"] == _canonical(base.stages)
    out.insert(0, "model", name)
    return out.sort_values("d_gflops", key=abs, kind="stable").reset_index(drop=True)


def closest_readings(frame: pd.DataFrame, params_tol: float = 0.005) -> pd.DataFrame:
    """Per model of a :func:`hrnet_readings` table: ``fits`` (how many readings are within
    ``params_tol`` M of Table 4's parameters) and the one of them closest in GFLOPs
    (``stages``, ``d_gflops``, ``is_ours``); indexed by model."""
    paper = frame["model"].map(lambda m: PAPER_TABLE4[m][0])
    fits = frame[(frame["params_m"] - paper).abs() <= params_tol]
    best = fits.loc[fits["d_gflops"].abs().groupby(fits["model"]).idxmin()].set_index("model")
    best.insert(0, "fits", fits.groupby("model").size())
    return best[["fits", "stages", "d_gflops", "is_ours"]]
