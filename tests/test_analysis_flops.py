"""Parameter and FLOP counts per stage (BH paper Table 4)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from tinylib.analysis import flops as FL
from tinylib.models.backbones import build_backbone


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU(), nn.MaxPool2d(2))
        self.res2 = nn.Conv2d(8, 16, 1, bias=False)

    def forward(self, x):
        return {"res2": self.res2(self.stem(x))}


def test_counts_by_hand():
    df = FL.complexity_by_stage(_Tiny(), input_size=(8, 10)).set_index("stage")
    assert df.loc["stem", "conv_gmacs"] * 1e9 == pytest.approx(3 * 9 * 8 * 80)
    assert df.loc["stage1", "conv_gmacs"] * 1e9 == pytest.approx(8 * 16 * 20)
    # BN 2 x 640 + ReLU 640 + pool input 640
    assert df.loc["stem", "extra_gflops"] * 1e9 == pytest.approx(4 * 640)
    assert df.loc["stem", "params"] == 3 * 9 * 8 + 16
    assert df.loc["stem", "params_no_bn"] == 3 * 9 * 8
    assert df.loc["total", "params"] == 3 * 9 * 8 + 16 + 128


def test_meta_device_gives_same_counts_as_cpu():
    a = FL.complexity_by_stage(build_backbone("resnet18"), (64, 96), device="meta")
    b = FL.complexity_by_stage(build_backbone("resnet18"), (64, 96), device="cpu")
    assert a.equals(b)


def _meta(name):
    with torch.device("meta"):
        return build_backbone(name)


def test_flops_scale_with_pixels():
    m = _meta("resnet50")
    a = FL.complexity_by_stage(m, (128, 160)).set_index("stage").loc["total", "conv_gmacs"]
    b = FL.complexity_by_stage(m, (512, 640)).set_index("stage").loc["total", "conv_gmacs"]
    assert b == pytest.approx(16 * a, rel=1e-12)


@pytest.mark.parametrize("name,tol", [("resnet50", 0.01), ("bh_resnet50", 0.01)])
def test_resnet_table4_gflops(name, tol):
    t = FL.complexity_summary([name]).iloc[0]
    assert t["mmcv_gflops"] == pytest.approx(FL.PAPER_TABLE4[name][1], rel=tol)


@pytest.mark.parametrize("name", ["hrnet18", "hrnet32"])
def test_hrnet_table4_params(name):
    t = FL.complexity_summary([name]).iloc[0]
    assert t["params_m"] == pytest.approx(FL.PAPER_TABLE4[name][0], abs=0.01)


def test_bh_resnet50_params_without_bn():
    t = FL.complexity_summary(["bh_resnet50"]).iloc[0]
    assert t["params_no_bn_m"] == pytest.approx(10.91, abs=0.01)


def test_bh_stage_of():
    assert FL.bh_stage_of("res3.0.conv1.weight") == "stage2"
    assert FL.bh_stage_of("stages.2.0.fuse") == "stage4"
    assert FL.bh_stage_of("transitions.0.1.0.weight") == "stage2"


def test_stage_shares_fig2_direction():
    r = FL.stage_shares(FL.complexity_by_stage(_meta("resnet50")))
    b = FL.stage_shares(FL.complexity_by_stage(_meta("bh_resnet50")))
    assert r.sum() == pytest.approx(1) and b.sum() == pytest.approx(1)
    assert b["stage1"] > r["stage1"] and b["stage4"] < r["stage4"]


def test_bh_hrnet18_reading_close_to_table4():
    t = FL.complexity_summary(["bh_hrnet18"]).iloc[0]
    assert t["params_m"] == pytest.approx(5.85, rel=0.02)
    assert t["mmcv_gflops"] == pytest.approx(21.66, rel=0.02)


def test_output_shapes_table_is_shown_whole():
    t = FL.output_shapes({"tiny": _Tiny()}, input_size=(8, 10))
    assert t.loc["tiny"].to_dict() == {"/2": "res2: 16 x 4x5"}
    t = FL.output_shapes(["resnet50", "hrnet18"])
    assert list(t.columns) == ["/4", "/8", "/16", "/32"]
    assert t.loc["resnet50", "/32"] == "res5: 2048 x 16x20" and t.loc["hrnet18", "/4"] == "b1: 18 x 128x160"
    # every cell fits pandas' column width, so the notebook's table is not cut with "..."
    assert t.map(len).to_numpy().max() < pd.get_option("display.max_colwidth")
    assert "..." not in t._repr_html_() and "…" not in t._repr_html_()


def test_bh_hrnet32_reading_fits_both_table4_numbers():
    t = FL.complexity_summary(["bh_hrnet32"]).iloc[0]
    assert round(t["params_m"], 2) == 12.36
    assert t["mmcv_gflops"] == pytest.approx(51.89, rel=0.002)


@pytest.mark.parametrize("channels,blocks", [([8, 16], 2), ([8, 16, 32], (3, 2, 1)), ([4, 8, 16, 32], (2, 2, 1, 1))])
def test_hrnet_module_params_counts_without_building(channels, blocks):
    from tinylib.models.backbones import _HRModule

    with torch.device("meta"):
        m = _HRModule(channels, blocks)
    assert FL.hrnet_module_params(channels, blocks) == sum(p.numel() for p in m.parameters())


def test_hrnet_readings_keep_only_fits_and_mark_ours():
    t = FL.hrnet_readings("bh_hrnet32", max_blocks=3)
    ours = t[t["is_ours"]]
    assert len(ours) == 1 and ours["stages"].iloc[0] == "((4, (1, 1)), (4, (3, 3, 2)), (3, (1, 1, 1, 1)))"
    assert (abs(t["params_m"] - 12.36) <= 0.005).all()
    assert t["d_gflops"].abs().iloc[0] == t["d_gflops"].abs().min()  # best fit first
    assert list(t.columns) == ["model", "stages", "params_m", "mmcv_gflops", "d_gflops", "is_ours"]
    best = FL.closest_readings(t)
    assert best.at["bh_hrnet32", "fits"] == len(t) and bool(best.at["bh_hrnet32", "is_ours"])


@pytest.mark.parametrize("name,tol", [("hrnet18", 0.001), ("hrnet32", 0.001), ("bh_hrnet18", 0.002)])
def test_hrnet_table4_gflops(name, tol):
    """mmcv's rules (Table 4's counter) on mmdetection's HRNet = ours: Table 4 to its rounding."""
    t = FL.complexity_summary([name]).iloc[0]
    assert t["mmcv_gflops"] == pytest.approx(FL.PAPER_TABLE4[name][1], rel=tol)


class _Hooked(nn.Module):
    """Every op mmcv counts, a module called twice, an F.interpolate and an addition."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)  # with a bias
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2)

    def forward(self, x):
        y = self.relu(self.bn(self.conv(x)))
        z = self.relu(self.pool(y))  # relu called a second time
        return self.up(z) + torch.nn.functional.interpolate(z, scale_factor=2.0) + y


def test_module_counter_follows_mmcv_rules_by_hand():
    df = FL.complexity_by_module(_Hooked(), input_size=(6, 8)).set_index(["module", "op"])
    ops = (df["gflops"] * 1e9).round().astype(int)
    n = 4 * 6 * 8  # conv / bn / relu output elements
    assert ops[("conv", "conv")] == 27 * 4 * 48 + 4 * 48  # MACs + bias
    assert ops[("bn", "bn")] == 2 * n
    assert df.loc[("relu", "relu"), "calls"] == 2 and ops[("relu", "relu")] == n + n // 4
    assert ops[("pool", "pool")] == n
    assert ops[("up", "upsample")] == n
    assert ops[("", "upsample")] == n  # F.interpolate, called at the top
    assert len(df) == 6  # the additions are not counted


@pytest.mark.parametrize("name", ["hrnet18", "bh_resnet50"])
def test_two_counters_agree(name):
    """FlopCounterMode per stage and mmcv-style hooks per module give the same total; the
    HRNet transitions (3x3 convs from stage 1's 256 channels, then 2C -> 4C, 4C -> 8C) are in."""
    m = _meta(name)
    by_module = FL.complexity_by_module(m)
    total = FL.complexity_by_stage(m).set_index("stage").loc["total", "mmcv_gflops"]
    assert by_module["gflops"].sum() == pytest.approx(total, rel=1e-12)
    if name == "hrnet18":
        trans = by_module[(by_module["part"] == "transition") & (by_module["op"] == "conv")]
        c, hw4 = 18, 128 * 160
        by_hand = 9 * 256 * c * hw4 + 9 * 256 * 2 * c * hw4 / 4 + 9 * 2 * c * 4 * c * hw4 / 16 + \
            9 * 4 * c * 8 * c * hw4 / 64
        assert trans["gflops"].sum() * 1e9 == pytest.approx(by_hand)
        assert set(by_module["part"]) == {"stem", "stage1", "transition", "branch", "fuse"}
