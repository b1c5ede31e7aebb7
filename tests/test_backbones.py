"""Backbones: output names, strides, channels and shapes; Caffe-style stride placement;
pretrained weights never downloaded."""

from __future__ import annotations

import logging

import pytest
import torch
from torchvision.models import resnet as tv_resnet

from tinylib.models import backbones as bb


def _meta(build, *a, **k):
    """Build on the meta device: shapes without the cost of initialising weights."""
    with torch.device("meta"):
        return build(*a, **k)


def _check(model, size=(64, 96)):
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model(torch.zeros(1, 3, *size, device=device))
    assert list(out) == list(model.strides) == list(model.out_channels)
    for name, t in out.items():
        s = model.strides[name]
        assert t.shape == (1, model.out_channels[name], -(-size[0] // s), -(-size[1] // s)), name
    return out


@pytest.mark.parametrize("depth,channels", [(18, 64), (34, 64), (50, 256), (101, 256)])
def test_resnet_features_strides_and_channels(depth, channels):
    m = _meta(bb.resnet_features, depth)
    assert m.strides == {"res2": 4, "res3": 8, "res4": 16, "res5": 32}
    assert m.out_channels == {f"res{i + 2}": channels * 2 ** i for i in range(4)}
    _check(m)


def test_resnet152_builds():
    m = _meta(bb.resnet_features, 152)
    assert m.out_channels["res5"] == 2048
    assert sum(len(getattr(m, f"res{i}")) for i in range(2, 6)) == 3 + 8 + 36 + 3


def test_caffe_style_moves_stride_to_first_1x1():
    tv = _meta(bb.resnet_features, 50)
    caffe = _meta(bb.resnet_features, 50, caffe_style=True)
    for stage in ("res3", "res4", "res5"):
        b_tv, b_cf = getattr(tv, stage)[0], getattr(caffe, stage)[0]
        assert b_tv.conv1.stride == (1, 1) and b_tv.conv2.stride == (2, 2)
        assert b_cf.conv1.stride == (2, 2) and b_cf.conv2.stride == (1, 1)
        assert b_cf.downsample[0].stride == (2, 2)
    assert caffe.res2[0].conv1.stride == (1, 1)  # res2 does not down-sample
    # same parameters, same output shapes
    assert sum(p.numel() for p in tv.parameters()) == sum(p.numel() for p in caffe.parameters())
    _check(caffe)


def test_caffe_style_rejected_for_basic_blocks():
    with pytest.raises(ValueError, match="bottleneck"):
        bb.resnet_features(18, caffe_style=True)


def test_bad_depth_names_choices():
    with pytest.raises(ValueError, match="18, 34, 50, 101, 152"):
        bb.resnet_features(42)


def test_pretrained_missing_warns_and_never_downloads(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def no_download(*a, **k):  # pragma: no cover - must not be called
        raise AssertionError("download attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    with caplog.at_level(logging.WARNING, logger="tinylib.models.backbones"):
        m = bb.resnet_features(18, pretrained=True)
    assert "not in the torch hub cache" in caplog.text
    assert isinstance(m, bb.ResNetFeatures)


def test_pretrained_loads_from_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    ref = tv_resnet.resnet18(weights=None)
    path = bb.hub_checkpoint_path(18)
    path.parent.mkdir(parents=True)
    torch.save(ref.state_dict(), path)
    m = bb.resnet_features(18, pretrained=True)
    assert torch.equal(m.stem.conv1.weight, ref.conv1.weight)
    assert torch.equal(m.res5[1].conv2.weight, ref.layer4[1].conv2.weight)


@pytest.mark.parametrize("name", ["resnet50", "bh_resnet50", "hrnet18", "hrnet32",
                                  "bh_hrnet18", "bh_hrnet32", "resnet50_caffe"])
def test_build_backbone_strides_and_shapes(name):
    m = _meta(bb.build_backbone, name)
    assert sorted(m.strides.values()) == [4, 8, 16, 32]
    _check(m)
    _check(m, size=(70, 50))  # not divisible by 32: ceil(size / stride)


def test_bh_resnet50_stage_depths_and_stem():
    m = _meta(bb.bh_resnet50)
    assert [len(getattr(m, f"res{i}")) for i in range(2, 6)] == [7, 6, 2, 1]
    assert m.stem.conv1.kernel_size == (3, 3) and m.stem.conv1.stride == (1, 1)
    assert all(getattr(m, f"res{i}")[0].conv2.stride == (2, 2) for i in range(2, 6))


def test_hrnet_widths():
    m = _meta(bb.build_backbone, "hrnet32")
    assert m.out_channels == {"b1": 32, "b2": 64, "b3": 128, "b4": 256}
    assert [len(s) for s in m.stages] == [1, 4, 3]


def test_unknown_backbone_lists_choices():
    with pytest.raises(ValueError, match="bh_hrnet32"):
        bb.build_backbone("vgg16")


@pytest.mark.parametrize("name", ["resnet18", "bh_hrnet18"])
def test_real_forward_on_cpu_is_finite(name):
    out = _check(bb.build_backbone(name), size=(32, 48))
    assert all(torch.isfinite(t).all() for t in out.values())


def test_bh_hrnet_stage1_runs_at_stride2():
    m = _meta(bb.build_backbone, "bh_hrnet18")
    assert isinstance(m.pool, torch.nn.MaxPool2d) and len(m.stem) == 2
    x = torch.zeros(1, 3, 64, 96, device="meta")
    assert m.stage1(m.stem(x)).shape[-2:] == (32, 48)
    assert [len(s) for s in m.stages] == [1, 3, 3]
    with pytest.raises(ValueError, match="bottom_heavy"):
        bb.HRNet(bb.HRNetSpec(18, pool_after_stage1=True))


def test_hrnet_blocks_per_branch():
    spec = bb.HRNetSpec(8, stages=((1, (2, 1)), (1, 1), (2, (3, 2, 2, 1))))
    m = _meta(bb.HRNet, spec)
    assert [len(b) for b in m.stages[0][0].branches] == [2, 1]
    assert [len(b) for b in m.stages[2][1].branches] == [3, 2, 2, 1]
    uniform = _meta(bb.HRNet, bb.HRNetSpec(8, stages=((1, 2), (1, 1), (1, 1))))
    assert [len(b) for b in uniform.stages[0][0].branches] == [2, 2]
    with pytest.raises(ValueError, match="3 branches need 3 block counts"):
        bb.HRNet(bb.HRNetSpec(8, stages=((1, 1), (1, (1, 1)), (1, 1))))
