"""The HR detector model: heads, hypercolumn upsampling, losses, parameter groups, weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinylib.hr.detect import load_detector, save_weights
from tinylib.hr.model import bilinear_upsampler, build_hr, collate
from tinylib.hr.templates import HR25_A, HR25_B, Templates, hr_template_set

SIZES = np.array([[16.0, 20.0, 1.0], [32.0, 40.0, 1.0], [12.0, 14.0, 2.0]])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_hr(Templates(SIZES[:, :2], SIZES[:, 2]), 18, pretrained=False)


def test_templates_from_any_and_routing(tmp_path):
    t = Templates.from_any(np.array([[-10.0, -12, 10, 12, 1], [-4, -5, 4, 5, 2]]))
    assert np.allclose(t.sizes_wh, [[21, 25], [9, 11]])  # MATLAB +1 widths of RefBox files
    assert t.a == [0] and t.b == [1]
    assert Templates.from_any(t.to_dict()).to_dict() == t.to_dict()
    assert np.allclose(Templates.from_any(SIZES).scales, [1, 1, 2])
    with pytest.raises(ValueError, match=r"\(T, 2\)"):
        Templates.from_any(np.zeros((3, 6)))


def test_paper_templates(real_data):
    t = hr_template_set()
    assert len(t) == 25 and t.a == HR25_A and t.b == HR25_B
    assert np.allclose(t.sizes_wh[24], [20.32, 22.23], atol=0.01)  # table in SOURCES.md
    assert np.allclose(t.scales[t.a], 1.0) and np.allclose(t.scales[t.b], 2.0)


def test_output_shapes_stride_8_and_truncation(model):
    model.eval()
    with torch.no_grad():
        cls, reg = model(torch.rand(2, 3, 96, 128) * 255)
    assert cls.shape == (2, 3, 12, 16) and reg.shape == (2, 3, 4, 12, 16)
    assert model.stride == 8
    assert not any(n.startswith("backbone.res5.") for n, _ in model.named_parameters())
    full = build_hr(SIZES, 18, pretrained=False, use_res5=True)
    with torch.no_grad():
        c5, _ = full.eval()(torch.rand(1, 3, 100, 70) * 255)
    assert c5.shape[-2:] == (13, 9)  # ceil(100/8), ceil(70/8): res4/res5 upsampled + cropped


def test_bilinear_upsampler_matches_interpolate():
    x = torch.rand(1, 2, 5, 7)
    for f in (2, 4):
        up = bilinear_upsampler(2, f)
        assert not up.weight.requires_grad
        ref = F.interpolate(x, scale_factor=f, mode="bilinear", align_corners=False)
        # equal away from the border (the transposed conv zero-pads, interpolate clamps)
        assert torch.allclose(up(x)[..., f:-f, f:-f], ref[..., f:-f, f:-f], atol=1e-5)


def test_param_groups_lr_multipliers(model):
    groups = {g["name"]: g for g in model.param_groups()}
    assert groups["res2"]["lr_mult"] == 0.01 and groups["res3"]["lr_mult"] == 0.1
    assert groups["res4"]["lr_mult"] == 1.0 and groups["head"]["lr_mult"] == 1.0
    assert groups["res4/no_decay"]["weight_decay"] == 0.0
    n = sum(len(g["params"]) for g in groups.values())
    assert n == sum(1 for p in model.parameters() if p.requires_grad)
    custom = {g["name"]: g["lr_mult"] for g in model.param_groups({"res2": 0.5})}
    assert custom["res2"] == 0.5


def test_collate_pads_with_mean_and_sets_valid():
    img1 = np.zeros((40, 50, 3), np.uint8)
    img2 = np.full((70, 30, 3), 255, np.uint8)
    x, t = collate([(img1, {"boxes": np.array([[1, 2, 10, 12]], np.float32)}),
                    (img2, {"boxes": np.zeros((0, 4), np.float32), "valid": (0, 0, 30, 60)})])
    assert x.shape == (2, 3, 96, 64)
    assert t[0]["valid"] == [0, 0, 50, 40] and t[1]["valid"] == [0, 0, 30, 60]
    assert torch.allclose(x[0, :, 50, 60], torch.tensor([123.675, 116.28, 103.53]))
    assert t[0]["boxes"].dtype == torch.float32 and t[0]["ignore"].dtype == torch.bool


def test_training_step_learns_and_handles_images_without_faces():
    torch.manual_seed(0)
    m = build_hr(SIZES, 18, pretrained=False)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 60, (96, 96, 3), dtype=np.uint8)
    img[30:70, 40:72] = 230  # one bright 32x40 "face"
    batch = [(img, {"boxes": np.array([[40, 30, 72, 70]], np.float32)}),
             (rng.integers(0, 255, (80, 64, 3), dtype=np.uint8),
              {"boxes": np.zeros((0, 4), np.float32)})]
    x, t = collate(batch)
    m.train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        out = m(x, t)
        loss = out["loss_cls"] + out["loss_reg"]
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0]
    with pytest.raises(ValueError, match="needs targets"):
        m(x)


def test_weights_round_trip_fp16(tmp_path, model):
    path = save_weights(model, tmp_path / "w.pt", meta={"note": "test"})
    loaded = load_detector(path)
    assert loaded.templates.to_dict() == model.templates.to_dict()
    x = torch.rand(1, 3, 64, 64) * 255
    model.eval()
    with torch.no_grad():
        a, _ = model(x)
        b, _ = loaded(x)
    assert torch.allclose(a, b, atol=5e-2)  # fp16 storage
    assert path.stat().st_size < 0.6 * sum(p.numel() * 4 for p in model.parameters())
    with pytest.raises(FileNotFoundError, match="not found"):
        load_detector(tmp_path / "missing.pt")
    torch.save({"something": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a tinylib HR checkpoint"):
        load_detector(tmp_path / "bad.pt")


def test_own_templates_stand_in_without_the_released_files(monkeypatch, tmp_path, caplog):
    """Embedded default: no RefBox_N25*.mat -> tinylib's own k-medoids templates (warned)."""
    from tinylib.hr.templates import hr_template_set

    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path))
    monkeypatch.setenv("TINYLIB_QUICK", "1")
    with caplog.at_level("WARNING"):
        tpl = hr_template_set()
    assert "own k-medoids templates" in caplog.text
    assert len(tpl) == 25 and set(np.unique(tpl.scales)) <= {0.5, 1.0, 2.0}
    assert tpl.a and set(tpl.a).isdisjoint(tpl.b)
    # the resolution rule: 2x templates are built for faces shorter than 40 px
    small = tpl.scales == 2.0
    assert (tpl.sizes_wh[small, 1] / 2 < 40).all() and (tpl.sizes_wh[~small, 1] / tpl.scales[~small] >= 40).all()
