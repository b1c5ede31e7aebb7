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
           "PAPER_TABLE4", "stage_shares"]

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
        depth_ok = (len(parts) == 2 and parts[1] not in ("transitions", "stages")) or (
            len(parts) == 3 and parts[1] in ("transitions", "stages"))
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


def stage_shares(df: pd.DataFrame, column: str = "mmcv_gflops") -> pd.Series:
    """Share of ``column`` per stage (Fig. 2), from a :func:`complexity_by_stage` table."""
    body = df[df["stage"] != "total"].set_index("stage")[column]
    return body / body.sum()
