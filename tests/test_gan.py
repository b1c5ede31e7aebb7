"""The GAN detector (tinylib.gan): shapes, the paper's losses by hand, no gradient leaking
between the two networks, one alternating step and exact resume through the engine, crops and
box targets, PSNR/SSIM against scikit-image, re-scoring and weights I/O."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tinylib import engine
from tinylib.gan import crops as K
from tinylib.gan import losses as L
from tinylib.gan import metrics as M
from tinylib.gan.detector import CropDataset, GANDetector, collate, load_gan, save_weights
from tinylib.gan.model import Generator, from_unit, to_unit

TINY = {"lr_size": 8, "generator": {"width": 8, "up_width": 8, "blocks": 1, "refine_width": 8,
                                    "refine_up_width": 8},
        "discriminator": {"trunk": "mnet025", "pretrained": False}}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest


def tiny(**over) -> GANDetector:
    torch.manual_seed(0)
    cfg = {**TINY, **over}
    return GANDetector(cfg)


def crop_set(n=16, size=32, seed=0) -> K.CropSet:
    g = torch.Generator().manual_seed(seed)
    hr = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    label = (torch.arange(n) % 2).float()
    reg = torch.randn(n, 4, generator=g) * label[:, None]
    return K.CropSet(hr, label, reg, np.zeros((n, 4), np.float32), [f"im{i}" for i in range(n)])


# ------------------------------------------------------------------------------ generator
@pytest.mark.parametrize("scale", [2, 4])
def test_generator_output_shapes_and_scale(scale):
    g = Generator(width=8, up_width=8, blocks=1, refine_width=8, refine_up_width=8, scale=scale)
    sr, refined = g(torch.zeros(2, 3, 12, 10))
    assert sr.shape == refined.shape == (2, 3, 12 * scale, 10 * scale)
    g2 = Generator(width=8, up_width=8, blocks=1, refine=False, scale=scale)
    sr, refined = g2(torch.zeros(2, 3, 12, 10))
    assert refined is None and sr.shape == (2, 3, 12 * scale, 10 * scale)
    assert g2.output(torch.zeros(1, 3, 5, 5)).shape == (1, 3, 5 * scale, 5 * scale)


def test_generator_paper_layout_and_bad_scale():
    g = Generator()  # Table 1: 64 / 256 channels, "x8" = 4 two-conv residual blocks
    convs = [m for m in g.upsample.modules() if isinstance(m, torch.nn.Conv2d)]
    deconvs = [m for m in g.upsample.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convs) == 4 + 8 and len(deconvs) == 2  # conv conv x8 conv (de-conv x2) conv
    assert [d.out_channels for d in deconvs] == [256, 256] and convs[-1].out_channels == 3
    assert all(d.stride == (2, 2) for d in deconvs)
    with pytest.raises(ValueError, match="scale"):
        Generator(scale=3)


def test_unit_range_roundtrip():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(1, 3, 16, 16)
    assert torch.equal(from_unit(to_unit(x)), x)
    assert to_unit(x).min() == -1 and to_unit(x).max() == 1


# --------------------------------------------------------------------------------- losses
def test_losses_against_hand_computed_values():
    z = torch.tensor([0.0, 2.0])
    sig = 1 / (1 + np.exp(-np.array([0.0, 2.0])))
    # Eq. 5, paper form: mean log(1 - D)
    assert L.adversarial_g(z).item() == pytest.approx(np.mean(np.log(1 - sig)), abs=1e-6)
    assert L.adversarial_g(z, "nonsaturating").item() == pytest.approx(np.mean(-np.log(sig)), abs=1e-6)
    # Eq. 11 adversarial: -[log(1 - D(fake)) + log D(real)]
    real, fake = torch.tensor([1.0]), torch.tensor([-0.5])
    s = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    assert L.adversarial_d(real, fake).item() == pytest.approx(-(math.log(1 - s(-0.5)) + math.log(s(1.0))), abs=1e-6)
    # Eq. 6: binary cross-entropy
    y = torch.tensor([1.0, 0.0])
    want = -(math.log(s(0.0)) + math.log(1 - s(2.0))) / 2
    assert L.classification(z, y).item() == pytest.approx(want, abs=1e-6)
    # Eq. 8 and Eq. 7: faces only, averaged over all N
    assert L.smooth_l1(torch.tensor([0.5, -2.0])).tolist() == [0.125, 1.5]
    t = torch.tensor([[0.5, 0, 0, 0], [3.0, 0, 0, 0]])
    v = torch.zeros(2, 4)
    assert L.regression(t, v, torch.tensor([1.0, 0.0])).item() == pytest.approx(0.125 / 2)
    assert L.regression(t, v, torch.tensor([1.0, 1.0])).item() == pytest.approx((0.125 + 2.5) / 2)
    # Eq. 4: per-pixel MSE of both sub-networks
    hr = torch.zeros(1, 3, 2, 2)
    assert L.pixel_loss(hr + 1, hr + 2, hr).item() == pytest.approx(1 + 4)
    assert L.pixel_loss(hr + 1, None, hr).item() == pytest.approx(1)
    assert (L.ALPHA, L.BETA, L.GAMMA) == (0.001, 0.01, 0.01)
    with pytest.raises(ValueError):
        L.adversarial_g(z, "wgan")


def test_phase_losses_are_the_weighted_equations():
    m = tiny()
    cs = crop_set(4)
    lr, t = collate([CropDataset(cs, flip=False)[i] for i in range(4)])
    m.eval()  # BatchNorm in eval: the same network outputs for the hand computation
    with torch.no_grad():
        out_d = m(lr, t, phase="d")
        out_g = m(lr, t, phase="g")
        fake = m.generator.output(lr)
        d_real, d_fake = m._judge(t["hr"], fake)
        sr, refined = m.generator(lr)
    assert out_d["d_adv"].item() == pytest.approx(0.001 * L.adversarial_d(d_real["gan"], d_fake["gan"]).item(), rel=1e-5)
    assert out_d["d_cls"].item() == pytest.approx(
        0.01 * (L.classification(d_real["cls"], t["label"]) + L.classification(d_fake["cls"], t["label"])).item(), rel=1e-5)
    assert out_g["g_mse"].item() == pytest.approx(L.pixel_loss(sr, refined, t["hr"]).item(), rel=1e-5)
    assert out_g["g_adv"].item() == pytest.approx(0.001 * L.adversarial_g(d_fake["gan"]).item(), rel=1e-5)
    assert set(out_g) == {"g_mse", "g_adv", "g_cls", "g_reg"}
    # the ablation switches drop their terms
    assert set(tiny(adv=False, cls_in_g=False, reg=False)(lr, t, phase="g")) == {"g_mse"}
    assert set(tiny(mode="mse")(lr, t, phase="g")) == {"g_mse"} and tiny(mode="mse").phases == ("g",)
    assert "d_reg" not in tiny(reg=False)(lr, t, phase="d")


# ------------------------------------------------------------------ no gradient leaking
def test_discriminator_phase_leaves_the_generator_alone():
    m = tiny()
    m.train()
    lr, t = collate([CropDataset(crop_set(4), flip=False)[i] for i in range(4)])
    sum(m(lr, t, phase="d").values()).backward()
    assert all(p.grad is None for p in m.generator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.discriminator.parameters())
    # the phases' optimisers own disjoint parameter sets covering the model
    d = {id(p) for g in m.phase_param_groups("d") for p in g["params"]}
    g = {id(p) for g in m.phase_param_groups("g") for p in g["params"]}
    assert not d & g and d | g == {id(p) for p in m.parameters()}


def test_generator_phase_step_does_not_move_the_discriminator():
    """The generator's loss back-propagates through the discriminator, but only the
    generator's optimiser steps in its phase: D's parameters stay put."""

    class GOnly(GANDetector):
        phases = ("g",)

    gm = GOnly(TINY)
    d0 = {k: v.clone() for k, v in gm.discriminator.named_parameters()}
    g0 = {k: v.clone() for k, v in gm.generator.named_parameters()}
    engine.train(gm, CropDataset(crop_set(8), flip=False), collate_fn=collate,
                 config={"epochs": 1, "batch_size": 4, "optimizer": "adamw", "lr": 1e-2,
                         "weight_decay": 0.0}, progress=False)
    for k, v in gm.discriminator.named_parameters():
        assert torch.equal(v, d0[k]), k
    assert any(not torch.equal(v, g0[k]) for k, v in gm.generator.named_parameters())


# ----------------------------------------------------------------- engine: step and resume
def _train(out, epochs, resume=False, model=None, on_step=None):
    m = model or tiny()
    hist = engine.train(m, CropDataset(crop_set(12)), collate_fn=collate,
                        config={"epochs": epochs, "batch_size": 4, "optimizer": "adamw",
                                "lr": 1e-3, "weight_decay": 0.0, "out_dir": str(out), "seed": 3},
                        resume=resume, progress=False, on_step=on_step)
    return m, hist


def test_one_alternating_step_on_cpu(tmp_path):
    seen = []
    m, hist = _train(tmp_path / "a", 1, on_step=seen.append)
    assert len(hist) == 3 and [r["step"] for r in seen] == [1, 2, 3]  # the engine's on_step
    assert seen[-1]["g_mse"] == hist["g_mse"].iloc[-1]
    for col in ("loss_d", "loss_g", "d_adv", "d_cls", "d_reg", "g_mse", "g_adv", "g_cls", "g_reg"):
        assert col in hist and np.isfinite(hist[col]).all(), col
    assert hist["loss"].to_numpy() == pytest.approx((hist["loss_d"] + hist["loss_g"]).to_numpy())
    state = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    assert state["phases"] == ["d", "g"] and set(state["optimizer"]) == {"d", "g"}


def test_resume_gives_identical_next_steps(tmp_path):
    m_full, h_full = _train(tmp_path / "full", 2)
    _train(tmp_path / "part", 1)
    m_res, h_res = _train(tmp_path / "part", 2, resume=True)
    cols = ["loss", "d_adv", "g_mse", "g_cls"]
    np.testing.assert_allclose(h_res[cols].to_numpy(), h_full[cols].to_numpy(), rtol=1e-5, atol=1e-7)
    for (k, a), b in zip(m_full.state_dict().items(), m_res.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k


def test_resume_refuses_a_checkpoint_of_other_phases(tmp_path):
    _train(tmp_path / "a", 1)
    with pytest.raises(ValueError, match="phases"):
        _train(tmp_path / "a", 2, resume=True, model=tiny(mode="mse"))


def test_clashing_loss_names_between_phases_raise():
    class Clash(GANDetector):
        def forward(self, lr, targets, phase="g"):
            return {"same": self.generator.output(lr).mean() * 0 + sum(p.sum() * 0 for p in self.parameters())}

    with pytest.raises(ValueError, match="name them apart"):
        engine.train(Clash(TINY), CropDataset(crop_set(4)), collate_fn=collate,
                     config={"epochs": 1, "batch_size": 4, "optimizer": "adamw"}, progress=False)


# ----------------------------------------------------------------------------------- crops
def test_windows_crop_and_downsample():
    w = K.windows([[10, 20, 30, 30]], 2.0)  # 20 x 10 box: a 40 px square on (20, 25)
    np.testing.assert_allclose(w, [[0, 5, 40, 45]])
    img = np.zeros((60, 60, 3), np.uint8)
    img[5:25, 0:20] = 255  # the window's top-left quarter
    c = K.crop(torch.as_tensor(img), w, 8)
    assert c.shape == (1, 3, 8, 8)
    assert c[0, :, :4, :4].min() > 250 and c[0, :, 4:, 4:].max() < 5
    out = K.crop(torch.as_tensor(img), [[-40, -40, -10, -10]], 4)  # outside the image: pad
    assert torch.allclose(out, torch.full_like(out, 127.5))
    assert K.downsample(torch.rand(2, 3, 64, 64) * 255, 4).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError):
        K.windows([[0, 0, 1, 1]], 0)


def test_encode_decode_roundtrip():
    p = np.array([[10, 10, 30, 40], [0, 0, 8, 8]], np.float32)
    g = np.array([[12, 8, 33, 44], [1, 1, 7, 9]], np.float32)
    t = K.encode(g, p)
    np.testing.assert_allclose(K.decode(t, p), g, atol=1e-4)
    np.testing.assert_allclose(K.encode(p, p), 0, atol=1e-6)
    assert t[0, 0] == pytest.approx(10 * ((12 + 33) / 2 - 20) / 20)


def test_image_crops_labels_positives_negatives_and_ignore():
    img = np.full((100, 100, 3), 50, np.uint8)
    faces = np.array([[10, 10, 30, 30]], np.float32)
    props = np.array([[11, 11, 31, 31, 0.9],   # on the face: positive
                      [60, 60, 80, 80, 0.8],   # background: negative
                      [70, 10, 90, 30, 0.7],   # on an ignore region: dropped
                      [14, 14, 40, 40, 0.6]], np.float32)  # IoU 0.3..0.5: neither
    cs = K.image_crops(img, faces, props, ignore=[[68, 8, 92, 32]], image_id="a", hr_size=16, neg_iou=0.3,
                       jitter=0)
    assert cs.label.tolist() == [1.0, 0.0]
    np.testing.assert_allclose(cs.box, props[:2, :4])
    np.testing.assert_allclose(cs.reg[0].numpy(), K.encode(faces, props[:1, :4])[0], atol=1e-6)
    assert cs.reg[1].abs().sum() == 0 and cs.hr.shape == (2, 3, 16, 16) and cs.hr.dtype == torch.uint8
    # the default neg_iou 0.5: a proposal on the face at the wrong size is a non-face
    cs05 = K.image_crops(img, faces, props, ignore=[[68, 8, 92, 32]], hr_size=16, jitter=0)
    assert cs05.label.tolist() == [1.0, 0.0, 0.0]
    np.testing.assert_allclose(cs05.box[2], props[3, :4])
    # jittered ground truth adds positives; tiny faces (< min_face) are never positives
    cs2 = K.image_crops(img, np.vstack([faces, [[50, 50, 53, 53]]]), np.zeros((0, 5)), hr_size=16,
                        jitter=3, rng=np.random.default_rng(1))
    assert len(cs2) >= 1 and cs2.label.min() == 1 and (cs2.box[:, 0] < 45).all()
    both = K.CropSet.concat([cs, cs2])
    assert len(both) == len(cs) + len(cs2) and both.counts()["non_faces"] == 1


# --------------------------------------------------------------------------------- metrics
def test_psnr_and_ssim_match_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 3, 32, 32)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    ya, yb = M.luminance(torch.as_tensor(a)).numpy(), M.luminance(torch.as_tensor(b)).numpy()
    for i in range(2):
        want_p = skm.peak_signal_noise_ratio(ya[i, 0], yb[i, 0], data_range=255)
        want_s = skm.structural_similarity(ya[i, 0], yb[i, 0], data_range=255, gaussian_weights=True,
                                           sigma=1.5, use_sample_covariance=False)
        assert M.psnr(torch.as_tensor(a), torch.as_tensor(b))[i].item() == pytest.approx(want_p, abs=1e-6)
        assert M.ssim(torch.as_tensor(a), torch.as_tensor(b))[i].item() == pytest.approx(want_s, abs=1e-4)
    assert M.ssim(torch.as_tensor(a), torch.as_tensor(a)).tolist() == pytest.approx([1.0, 1.0])
    assert M.bicubic_up(torch.zeros(1, 3, 4, 4), 4).shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="11x11"):
        M.ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_colour_measures_match_scikit_image_and_see_a_cast():
    color = pytest.importorskip("skimage.color")
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (2, 3, 12, 12)).astype(np.float64)
    b = rng.integers(0, 256, (2, 3, 12, 12)).astype(np.float64)
    want_lab = np.stack([color.rgb2lab(im.transpose(1, 2, 0) / 255).transpose(2, 0, 1) for im in a])
    np.testing.assert_allclose(M.rgb_to_lab(torch.as_tensor(a)).numpy(), want_lab, atol=1e-3)
    want_de = [color.deltaE_cie76(color.rgb2lab(x.transpose(1, 2, 0) / 255),
                                  color.rgb2lab(y.transpose(1, 2, 0) / 255)).mean() for x, y in zip(a, b)]
    np.testing.assert_allclose(M.delta_e(torch.as_tensor(a), torch.as_tensor(b)).numpy(), want_de, atol=1e-3)
    # a red turned orange: luma barely moves, colour error and the green channel's bias do
    red = torch.tensor([200.0, 40.0, 40.0]).view(1, 3, 1, 1).expand(1, 3, 16, 16)
    orange = torch.tensor([190.0, 60.0, 40.0]).view(1, 3, 1, 1).expand(1, 3, 16, 16)
    assert M.channel_bias(orange, red).tolist() == pytest.approx([-10.0, 20.0, 0.0])
    assert M.delta_e(orange, red).item() > 2.3 * 3  # well past a just-noticeable difference
    assert M.psnr(orange, red).item() > M.psnr(orange, red, y_channel=False).item()
    assert M.delta_e(red, red).item() == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="delta_e"):
        M.delta_e(red, red[..., :8])


def test_generator_skip_is_bicubic_plus_a_residual_and_keeps_channel_order():
    from tinylib.gan.model import Generator

    torch.manual_seed(0)
    g = Generator(width=8, up_width=8, blocks=1, refine=False, skip=True).eval()
    for p in g.upsample[-1].parameters():  # the residual's last conv silenced: G1 = bicubic exactly
        torch.nn.init.zeros_(p)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        sr, refined = g(x)
        bic = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
        torch.testing.assert_close(sr, bic)
        assert refined is None
        # channel order: swapping the input's R and B swaps the output's (nothing mixes them)
        torch.testing.assert_close(g(x[:, [2, 1, 0]])[0], sr[:, [2, 1, 0]])
    assert g.config["skip"] is True and Generator(width=8, up_width=8, blocks=1).config["skip"] is False


# ----------------------------------------------------------------- re-scoring, weights I/O
def test_rescore_and_weights_roundtrip(tmp_path):
    m = tiny()
    img = np.random.default_rng(0).integers(0, 256, (80, 90, 3)).astype(np.uint8)
    props = np.array([[10, 10, 20, 22, 0.9], [50, 40, 58, 50, 0.2], [0, 0, 4, 4, 0.5]], np.float32)
    out = m.rescore(img, props, nms_iou=None)
    assert out.shape == (3, 5) and (np.diff(out[:, 4]) <= 0).all() and ((0 <= out[:, 4]) & (out[:, 4] <= 1)).all()
    p, _ = m.score_crops(K.crop(torch.as_tensor(img), K.windows(props[:, :4], 2.0), 8))
    np.testing.assert_allclose(np.sort(out[:, 4])[::-1], np.sort(p.numpy())[::-1], atol=1e-6)
    fused = m.rescore(img, props, nms_iou=None, use_reg=False, fuse="geometric")
    np.testing.assert_allclose(np.sort(fused[:, 4]), np.sort(np.sqrt(props[:, 4] * p.numpy())), atol=1e-6)
    assert m.rescore(img, np.zeros((0, 5))).shape == (0, 5)
    path = save_weights(m, tmp_path / "w.pt", meta={"steps": 1})
    m2 = load_gan(path)
    out2 = m2.rescore(img, props, nms_iou=None)
    np.testing.assert_allclose(out2[:, 4], out[:, 4], atol=2e-2)  # fp16 weights
    with pytest.raises(FileNotFoundError):
        load_gan(tmp_path / "nope.pt")
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="broken.pt: not a PyTorch checkpoint"):
        load_gan(tmp_path / "broken.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: not a tinylib GAN checkpoint"):
        load_gan(tmp_path / "other.pt")


# ------------------------------------------------------------------------------- evaluate
class _FakeVal:
    """Two photos with one large and one tiny face each (the WiderFaceDataset interface)."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.images = [rng.integers(0, 256, (120, 160, 3)).astype(np.uint8) for _ in range(2)]

    def __len__(self):
        return 2

    def target(self, i):
        return {"boxes": np.array([[20, 20, 60, 60], [100, 100, 104, 104]], np.float32),
                "ignore": np.array([False, False])}

    def __getitem__(self, i):
        return self.images[i], self.target(i)


def test_held_apart_faces_and_sr_quality():
    from tinylib.gan.evaluate import held_apart_faces, sr_examples, sr_quality

    lr, hr = held_apart_faces(_FakeVal(), n=10, hr_size=32, margin=2.0, scale=4)
    assert hr.shape == (2, 3, 32, 32) and lr.shape == (2, 3, 8, 8)  # only the 40-px faces
    np.testing.assert_allclose(hr[0].numpy(), K.crop(torch.as_tensor(_FakeVal().images[0]),
                                                     [[0, 0, 80, 80]], 32)[0].round().numpy())
    q = sr_quality(tiny(), lr, hr)
    assert list(q.index) == ["bicubic", "sr", "refined"] and (q["ssim"] <= 1).all()
    assert list(q.columns) == ["psnr", "ssim", "psnr_rgb", "delta_e", "bias_r", "bias_g", "bias_b"]
    assert (q["delta_e"] >= 0).all()
    assert list(sr_quality(tiny(refine=False), lr, hr).index) == ["bicubic", "sr"]
    ex = sr_examples(tiny(), lr, hr)
    assert list(ex) == ["low-res input", "bicubic", "SR (G1)", "refined (G2)", "real high-res"]
    assert all(v.shape == hr.shape for v in ex.values())
    with pytest.raises(ValueError, match="large enough"):
        held_apart_faces(_FakeVal(), hr_size=500)


def test_detection_table_scores_proposals_with_the_official_protocol():
    from tinylib.eval.widerface import SimpleEvalGT
    from tinylib.gan.evaluate import detection_table

    boxes = {"e/a": np.array([[10, 10, 20, 20]], float), "e/b": np.array([[5, 5, 30, 30]], float)}
    gt = SimpleEvalGT(boxes=boxes)  # xywh; every face kept in every setting
    perfect = {k: np.hstack([v, [[sc]]]) for (k, v), sc in zip(boxes.items(), (0.9, 0.8))}
    half = {"e/a": perfect["e/a"], "e/b": np.array([[100, 100, 10, 10, 0.95]])}
    t = detection_table({"perfect": perfect, "half": half}, gt, list(boxes))
    assert t.loc["perfect"].tolist() == pytest.approx([1, 1, 1])
    assert t.loc["half", "hard"] < 1


def test_ranking_by_size_auc_and_precision():
    from tinylib.eval.widerface import SimpleEvalGT
    from tinylib.gan.evaluate import _auc, ranking_by_size

    assert _auc(np.array([True, False, True, False]), np.array([0.9, 0.1, 0.8, 0.2])) == 1.0
    assert _auc(np.array([True, False]), np.array([0.1, 0.9])) == 0.0
    assert _auc(np.array([True, False]), np.array([0.5, 0.5])) == 0.5
    gt = SimpleEvalGT(boxes={"e/a": np.array([[10, 10, 10, 10], [100, 100, 60, 60]], float)})
    props = {"e/a": np.array([[10, 10, 20, 20], [30, 30, 40, 40], [100, 100, 160, 160], [0, 0, 60, 60]], float)}
    good = {"e/a": np.array([0.9, 0.1, 0.8, 0.2])}
    bad = {"e/a": np.array([0.1, 0.9, 0.2, 0.8])}
    t = ranking_by_size(props, {"good": good, "bad": bad}, gt, ["e/a"], top=2)
    assert t.loc[("all", "good"), "auc"] == 1.0 and t.loc[("all", "bad"), "auc"] == 0.0
    assert t.loc[("all", "good"), "precision@2"] == 1.0 and t.loc[("all", "good"), "hit share"] == 0.5
    assert t.loc[("0-20 px", "good"), "proposals"] == 2 and t.loc[(">50 px", "good"), "proposals"] == 2


# -------------------------------------------------------------------------------- recipes
REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("gan_*.yaml")), ids=lambda p: p.stem)
def test_shipped_recipes_parse(path):
    from tinylib.engine.recipe import load_config
    from tinylib.gan.detector import MODEL_DEFAULTS, _merge
    from tinylib.gan.train import data_settings

    cfg = load_config(path)
    engine.TrainConfig.from_dict(cfg["train"])
    data = data_settings(cfg["data"])
    assert data["neg_iou"] == 0.5
    model = _merge(MODEL_DEFAULTS, cfg["model"])
    assert model["lr_size"] * model["scale"] == 64


def test_unknown_settings_raise():
    from tinylib.gan.train import data_settings

    with pytest.raises(ValueError, match="unknown GAN data settings"):
        data_settings({"budgett": 3})
    with pytest.raises(ValueError, match="unknown GAN model setting"):
        GANDetector({"widht": 3})
    from tinylib.gan.train import train_crops

    with pytest.raises(ValueError, match="data.source must be"):
        train_crops({"source": "coco"}, hr_size=16, margin=2.0)


def test_history_summary_blocks_of_steps():
    import pandas as pd

    from tinylib.gan.train import history_summary

    h = pd.DataFrame({"epoch": [1] * 5, "step": [1, 2, 3, 4, 5], "g_mse": [1.0, 3.0, 5.0, 7.0, 9.0]})
    s = history_summary(h, every=2)
    assert s["step"].tolist() == [2, 4, 5] and s["g_mse"].tolist() == [2.0, 6.0, 9.0]


def test_confident_misses_are_the_best_scored_non_hits():
    from tinylib.eval.widerface import SimpleEvalGT
    from tinylib.gan.evaluate import confident_misses

    gt = SimpleEvalGT(boxes={"e/a": np.array([[10, 10, 10, 10]], float)})
    props = {"e/a": np.array([[10, 10, 20, 20], [30, 30, 40, 40], [12, 12, 24, 24], [50, 50, 60, 60]], float)}
    df = confident_misses(props, {"e/a": np.array([0.99, 0.2, 0.9, 0.5])}, gt, ["e/a"], n=2)
    assert df["score"].tolist() == [0.9, 0.5]  # the 0.99 box hits the face
    assert 0.3 < df["iou"][0] < 0.5 and df["iou"][1] == 0


def test_train_crops_cache_roundtrip(tmp_path, monkeypatch):
    """The crops of a recipe are cached (weights_only-loadable) and come back identical."""
    import tinylib.gan.train as T
    from tinylib.data.synthetic import quick_world

    monkeypatch.setenv("TINYLIB_QUICK", "1")  # the small world (160 + 40 images)
    root = quick_world()  # from the shared cache; the crops go to a fresh one
    monkeypatch.setenv("TINYLIB_CACHE", str(tmp_path / "cache"))
    from tinylib.hr.detect import DEFAULT_WEIGHTS, Detector, load_detector

    small = Detector(load_detector(DEFAULT_WEIGHTS), score_threshold=0.05, max_side=512, routing="full")
    monkeypatch.setattr(T, "proposal_stage", lambda real: (small, DEFAULT_WEIGHTS))
    calls = []
    real = T.build_crop_set
    monkeypatch.setattr(T, "build_crop_set", lambda *a, **k: calls.append(1) or real(*a, **k))
    data = {"root": str(root), "max_images": 2, "budget": 10}
    a = T.train_crops(data, hr_size=16, margin=2.0)
    b = T.train_crops(data, hr_size=16, margin=2.0)
    assert len(calls) == 1 and len(a) == len(b) > 0
    assert torch.equal(a.hr, b.hr) and torch.equal(a.label, b.label)
    np.testing.assert_array_equal(a.box, b.box)
    assert a.image_id == b.image_id


def test_claims_of_the_shipped_gan_tables():
    import pandas as pd

    from tinylib.compare import gan_rescoring as E

    rows = []
    for row, hard in (("proposals (HR detector)", 0.5), ("GAN: rescored", 0.40),
                      ("GAN: rescored, no box regression", 0.42), ("GAN: fused (geometric mean)", 0.47),
                      ("GAN: fused, no box regression", 0.46)):
        for half, shift, n in (("tuning", 0.0, 187), ("test", -0.01, 187)):
            rows.append({"row": row, "half": half, "images": n, "easy": 0.7, "medium": 0.6,
                         "hard": hard + shift, "chosen": row == "GAN: fused (geometric mean)"})
    f = pd.DataFrame(rows)
    assert E.subset_rows(f) == {"proposals": "proposals (HR detector)",
                                "rescored": "GAN: rescored, no box regression",  # better on tuning
                                "fused": "GAN: fused (geometric mean)"}
    claims = {c["key"]: c for c in E.subset_claims(f)}
    assert len(claims) == 9 and claims["gan.wider_subset.rescored.hard"]["ours"] == 0.41
    note = claims["gan.wider_subset.fused.hard"]["note"]
    assert "test half (187 images)" in note and "0.470" in note and "GAN: fused (geometric mean)" in note
    sr = pd.DataFrame({"kind": ["bicubic", "sr", "bicubic"], "model": ["GAN", "GAN", "other"],
                       "psnr": [25.011, 25.5, 1.0], "ssim": [0.7321, 0.77, 0.1]})
    assert [(c["key"], c["ours"]) for c in E.sr_claims(sr)] == [
        ("gan.sr.psnr.bicubic", 25.01), ("gan.sr.ssim.bicubic", 0.732), ("gan.sr.psnr.sr", 25.5),
        ("gan.sr.ssim.sr", 0.77)]
    sr["psnr_rgb"], sr["delta_e"] = [23.561, 23.2, 1.0], [5.855, 10.33, 1.0]
    got = {c["key"]: c["ours"] for c in E.sr_claims(sr)}
    assert got["gan.sr.psnr_rgb.bicubic"] == 23.56 and got["gan.sr.delta_e.sr"] == 10.33 and len(got) == 8
    abl = pd.DataFrame({"Unnamed: 0": ["ours", "no_adv"], "easy": [0.1, 0.1], "medium": [0.1, 0.1],
                        "hard": [0.1038, 0.1111], "eval_set": ["WIDER val subset (80 images)"] * 2})
    got = E.ablation_claims(abl)
    assert [c["key"] for c in got] == ["gan.ablation.ours.hard", "gan.ablation.no_adv.hard"]
    assert got[0]["ours"] == 0.104 and "before the tuning/test split" in got[0]["note"]
