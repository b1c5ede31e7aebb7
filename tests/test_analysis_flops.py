"""Parameter and FLOP counts per stage (BH paper Table 4)."""

from __future__ import annotations

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
