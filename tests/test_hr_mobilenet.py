"""The HR detector on the ImageNet MobileNetV1 x0.25: ImageNet weights are really ImageNet
weights, the hypercolumn reads stage1 (stride 8) + stage2 (stride 16), weights round-trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data as skdata

from tinylib.hr.detect import Detector, load_detector, save_weights
from tinylib.hr.model import build_hr, input_reach
from tinylib.hr.templates import Templates
from tinylib.models.mobilenet import IMAGENET_WEIGHTS, mobilenet_v1_025

TPL = Templates([[12, 14], [24, 28], [48, 56], [8, 10]], [1, 1, 1, 2])


def test_imagenet_weights_classify_a_cat(real_data):
    if not (real_data / IMAGENET_WEIGHTS).is_file():
        pytest.skip(f"{IMAGENET_WEIGHTS} not under the data root")
    net = mobilenet_v1_025(pretrained=True).eval()
    img = torch.from_numpy(skdata.chelsea().astype(np.float32)).permute(2, 0, 1)[None] / 255
    img = torch.nn.functional.interpolate(img, size=(224, 224), mode="bilinear")
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        top = net.classify((img - mean) / std).argmax(1).item()
    assert 281 <= top <= 285  # ImageNet's domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian)


def test_missing_imagenet_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="mobilenetV1X0.25_pretrain.tar"):
        mobilenet_v1_025(pretrained=True)


def test_hr_on_mobilenet_shapes_groups_and_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_hr(TPL, backbone="mobilenet_v1_025", pretrained=False)
    assert model.features == ("stage1", "stage2", "stage3") and model.stride == 8
    assert isinstance(model.backbone.stage3, torch.nn.Identity)  # res5-style stage not computed
    model.eval()
    cls, reg = model(torch.rand(2, 3, 96, 128) * 255)
    assert cls.shape == (2, 4, 12, 16) and reg.shape == (2, 4, 4, 12, 16)
    names = {g["name"].split("/")[0] for g in model.param_groups({"stage1": 0.1})}
    assert names == {"stage1", "stage2", "head"}
    assert {g["lr_mult"] for g in model.param_groups({"stage1": 0.1}) if g["name"].startswith("stage1")} == {0.1}
    path = save_weights(model, tmp_path / "w.pt")
    back = load_detector(path)
    assert back.config["backbone"] == "mobilenet_v1_025"
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        a, b = model(x)[0], back(x)[0]
    assert torch.allclose(a, b, atol=0.05)  # fp16 storage


def test_without_context_the_head_sees_only_the_stride_8_stage(tmp_path):
    """use_res4=False: the "without context" ablation -- no stage2/res4 branch at all, so
    the scores of a location do not change when far-away pixels do."""
    torch.manual_seed(0)
    model = build_hr(TPL, backbone="mobilenet_v1_025", pretrained=False, use_res4=False).eval()
    assert not hasattr(model, "score_res4") and isinstance(model.backbone.stage2, torch.nn.Identity)
    x = torch.rand(1, 3, 128, 128) * 255
    y = x.clone()
    y[..., 96:, 96:] = 0  # far from the top-left corner
    with torch.no_grad():
        cls_x, cls_y = model(x)[0], model(y)[0]
        with_ctx = build_hr(TPL, backbone="mobilenet_v1_025", pretrained=False).eval()
        ctx_x, ctx_y = with_ctx(x)[0], with_ctx(y)[0]
    assert cls_x.shape == ctx_x.shape == (1, 4, 16, 16)
    assert torch.equal(cls_x[..., :4, :4], cls_y[..., :4, :4])  # stage1's field stays local
    assert not torch.equal(ctx_x[..., :4, :4], ctx_y[..., :4, :4])  # stage2 reaches across
    back = load_detector(save_weights(model, tmp_path / "w.pt"))
    assert back.use_res4 is False and back.config["use_res4"] is False
    with pytest.raises(ValueError, match="use_res5 needs use_res4"):
        build_hr(TPL, backbone="mobilenet_v1_025", pretrained=False, use_res4=False, use_res5=True)


def _reach(model, size=192, at=(12, 12)) -> int:
    return input_reach(model, size, at)


def test_centre_context_keeps_depth_and_parameters_but_not_the_reach(tmp_path):
    """context='centre' (issue 25's matched-depth ablation): the same layers and parameters as
    the full model, stage2's depthwise 3x3 convolutions reduced to their centre tap -- the
    head's reach falls to about stage1's, and training keeps the other taps at zero."""
    torch.manual_seed(0)
    full = build_hr(TPL, backbone="mobilenet_v1_025", pretrained=False).eval()
    torch.manual_seed(0)
    centre = build_hr(TPL, backbone="mobilenet_v1_025", pretrained=False, context="centre").eval()
    torch.manual_seed(0)
    stage1 = build_hr(TPL, backbone="mobilenet_v1_025", pretrained=False, use_res4=False).eval()
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(centre) == count(full) and len(list(centre.modules())) == len(list(full.modules()))
    dw = [m for m in centre.backbone.stage2.modules()
          if isinstance(m, torch.nn.Conv2d) and m.groups == m.in_channels > 1]
    assert dw and all(torch.count_nonzero(m.weight[..., [0, 0, 2, 2], [0, 2, 0, 2]]) == 0 for m in dw)
    r_full, r_centre, r_stage1 = _reach(full), _reach(centre), _reach(stage1)
    assert r_centre < r_full / 2 and r_centre <= r_stage1 + 32  # stage1's field + the up-sampling
    # a training step: the gradient mask keeps the off-centre taps at zero under AdamW
    centre.train()
    opt = torch.optim.AdamW(centre.parameters(), lr=0.1, weight_decay=0.1)
    cls, reg = centre.heads(torch.rand(2, 3, 96, 96) * 255)
    (cls.sum() + reg.sum()).backward()
    opt.step()
    assert all(torch.count_nonzero(m.weight[..., [0, 0, 2, 2], [0, 2, 0, 2]]) == 0 for m in dw)
    assert any(torch.count_nonzero(m.weight[..., 1, 1]) for m in dw)
    back = load_detector(save_weights(centre.eval(), tmp_path / "c.pt"))
    assert back.config["context"] == "centre" and _reach(back) == _reach(centre.eval())
    with pytest.raises(ValueError, match="needs use_res4"):
        build_hr(TPL, backbone="mobilenet_v1_025", pretrained=False, use_res4=False, context="centre")
    with pytest.raises(ValueError, match="'full' or 'centre'"):
        build_hr(TPL, backbone="mobilenet_v1_025", pretrained=False, context="wide")


def test_hr_on_mobilenet_learns_a_face():
    torch.manual_seed(0)
    model = build_hr(TPL, backbone="mobilenet_v1_025", pretrained=False, balance_classes=True,
                     ohem_threshold=0.0)
    img = np.full((64, 64, 3), 90, np.uint8)
    img[20:48, 20:44] = 220
    from tinylib.hr.model import collate

    x, t = collate([(img, {"boxes": np.array([[20.0, 20.0, 44.0, 48.0]], np.float32)})])
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    model.train()
    first = None
    for _ in range(30):
        loss = sum(model(x, t).values())
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    boxes, scores = Detector(model.eval(), score_threshold=0.3, upsample=False).detect(img)
    assert len(boxes) >= 1
