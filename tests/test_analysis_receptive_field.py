"""Receptive-field walker on hand-built stacks (exact numbers) and ResNet-50."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tinylib.analysis import receptive_field as R
from tinylib.models.backbones import resnet_features


def test_single_conv():
    rf = R.receptive_fields(nn.Conv2d(3, 4, 5, stride=2, padding=2))["out"]
    assert rf.size == (5, 5) and rf.stride == (2, 2) and rf.offset == (0, 0)


def test_stack_by_hand():
    # 3x3 s1 -> 2x2 maxpool s2 -> 3x3 s1 dilation 2: 3, 4, 4 + (5-1)*2 = 12; stride 2
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, padding=2, dilation=2))
    t = R.receptive_field_table(net)
    assert list(t["rf_h"]) == [3, 3, 4, 4, 12]
    assert list(t["stride_h"]) == [1, 1, 2, 2, 2]
    # the 2x2 pool without padding moves the centre by half a pixel
    assert t["offset_h"].iloc[-1] == 0.5


def test_padding_moves_offset_and_rectangular_kernel():
    rf = R.receptive_fields(nn.Conv2d(1, 1, (3, 7), stride=(1, 2), padding=0))["out"]
    assert rf.size == (3, 7) and rf.stride == (1, 2) and rf.offset == (1, 3)


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 2, 3, padding=1)
        self.b = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return {"y": self.b(self.a(x)) + x, "z": torch.cat([self.a(x), x], 1)}


def test_residual_union_is_max_branch():
    rfs = R.receptive_fields(_Residual())
    assert rfs["y"].size == (5, 5)
    assert rfs["z"].size == (3, 3)


class _Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(self.conv(x))


def test_unsupported_layer_names_it():
    with pytest.raises(R.UnsupportedLayerError, match="pool.*AdaptiveAvgPool2d"):
        R.receptive_fields(_Unsupported())


def test_resnet50_caffe_matches_paper_exactly():
    rfs = R.receptive_fields(resnet_features(50, caffe_style=True))
    assert {k: v.square for k, v in rfs.items()} == {"res2": 35, "res3": 99, "res4": 291,
                                                     "res5": 483}
    assert {k: v.stride[0] for k, v in rfs.items()} == {"res2": 4, "res3": 8, "res4": 16,
                                                        "res5": 32}


def test_resnet50_torchvision_numbers():
    rfs = R.receptive_fields(resnet_features(50))
    assert {k: v.square for k, v in rfs.items()} == {"res2": 35, "res3": 91, "res4": 267,
                                                     "res5": 427}


def test_erf_is_centred_and_inside_trf():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1))

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return {"f": self.net(x[:, :1])}

    erf = R.effective_receptive_field(Wrap(), "f", input_size=(15, 15), n_samples=2)
    assert erf.shape == (15, 15) and erf.sum() == pytest.approx(1)
    nz = erf > 0
    assert nz[2:13, 2:13].sum() == nz.sum() and nz.sum() <= 25  # within the 5x5 TRF
    assert R.erf_radius(erf, 1.0) <= 5


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_erf_figure_titles_do_not_overlap():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    erfs = {k: np.random.default_rng(0).random((256, 256)) for k in ("res3", "res4", "res5")}
    rfs = {"res3": R.RF((99, 99), (8, 8), (3.5, 3.5)), "res4": R.RF((291, 291), (16, 16), (7.5, 7.5)),
           "res5": R.RF((483, 483), (32, 32), (15.5, 15.5))}
    fig = R.erf_figure(erfs, rfs, {"res3": 123.0, "res4": 201.0, "res5": 255.0})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    titles = [ax.title for ax in fig.axes]
    assert [t.get_text().splitlines() for t in titles][0] == ["res3", "TRF 99 px", "95 % of ERF in 123 px"]
    boxes = [t.get_window_extent(renderer) for t in titles]
    assert not any(_overlaps(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    # and no title runs into a neighbouring panel's image
    images = [ax.get_window_extent(renderer) for ax in fig.axes]
    assert not any(_overlaps(boxes[i], images[j]) for i in range(3) for j in range(3) if i != j)
    plt.close(fig)
    with pytest.raises(ValueError, match="at least one"):
        R.erf_figure({})
