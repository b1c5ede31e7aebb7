"""Context / foveal / resolution studies (tinylib.studies): windows, receptive fields,
the training loop, AP and determinism — on tiny private scenes, so the file runs in seconds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tinylib import studies as S


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny convolutions gain nothing from threads, and with parallel test workers on a
    small machine extra threads only oversubscribe the cores."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _scene(seed=0, face_hw=(50, 40), n_faces=2, size=(200, 160)) -> S.Scene:
    """Dark noisy background with bright 'faces' (rectangles with two dark eyes) on a
    mid-grey 'body' below each face."""
    rng = np.random.default_rng(seed)
    W, H = size
    img = rng.integers(0, 40, size=(H, W, 3)).astype(np.uint8)
    boxes = []
    fh, fw = face_hw
    xs = np.linspace(10, W - fw - 10, n_faces).astype(int)
    for x in xs:
        y = 10
        img[y + fh: min(H, y + 3 * fh), max(0, x - fw // 2): x + fw + fw // 2] = 120  # body
        img[y: y + fh, x: x + fw] = 230
        img[y + fh // 3: y + fh // 3 + 3, x + fw // 4: x + fw // 4 + 3] = 10
        img[y + fh // 3: y + fh // 3 + 3, x + 3 * fw // 4 - 3: x + 3 * fw // 4] = 10
        boxes.append([x, y, x + fw, y + fh])
    return S.Scene(img, np.array(boxes, float), f"toy{seed}")


def _tiny_spec(**kw) -> S.StudySpec:
    base = dict(face_hw=(25, 20), context_factor=2.0, steps=40, batch_size=16, width=4,
                n_train_pos=24, n_test_pos=16, lr=3e-3)
    base.update(kw)
    return S.StudySpec(**base)


# --------------------------------------------------------------------------- specs
def test_spec_sizes_follow_resolution_and_context():
    spec = _tiny_spec(resolution=1.0, context_factor=3.0)
    assert spec.template_hw == (25, 20)
    assert spec.native_crop_hw == (76, 60)  # 3 x face, rounded up to even
    assert spec.crop_hw == (76, 60)
    up = _tiny_spec(resolution=2.0, context_factor=3.0)
    assert up.template_hw == (50, 40) and up.crop_hw == (152, 120)
    down = _tiny_spec(face_hw=(250, 200), resolution=0.5, context_factor=1.5)
    assert down.template_hw == (125, 100) and down.native_crop_hw == (376, 300)
    assert down.crop_hw == (188, 150)
    # same image region, so same data key only when everything about the data matches
    assert up.data_key() != spec.data_key()
    assert _tiny_spec(context="tight").data_key() == _tiny_spec(context="loose").data_key()


@pytest.mark.parametrize("bad", [dict(context="medium"), dict(resolution=0), dict(layers=()),
                                 dict(layers=("res4",))])
def test_spec_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        _tiny_spec(**bad)


def test_standard_specs_quick_mode(monkeypatch):
    monkeypatch.setenv("TINYLIB_QUICK", "1")
    ctx = S.context_specs("small")
    assert set(ctx) == {"tight", "loose"} and ctx["tight"].face_hw == S.SMALL_FACE
    assert ctx["tight"].context == "tight" and ctx["loose"].context == "loose"
    assert ctx["loose"].arch == "tiny"
    fov = S.foveal_specs("large")
    assert len(fov["foveal"].layers) > 1 and fov["last_only"].layers == ("s4",)
    res = S.resolution_specs("small")
    assert res["2x"].template_hw == (50, 40) and res["1x"].template_hw == (25, 20)
    assert res["2x"].native_crop_hw == res["1x"].native_crop_hw  # same image region
    large = S.resolution_specs("large")
    assert set(large) == {"1x", "0.5x"} and large["0.5x"].resolution == 0.5
    monkeypatch.setenv("TINYLIB_TIER", "full")  # TINYLIB_QUICK=0 is the default tier (cpu without CUDA)
    assert S.context_specs("large")["tight"].face_hw == S.LARGE_FACE
    assert S.context_specs("large")["tight"].arch == "resnet18"
    with pytest.raises(ValueError):
        S.context_specs("medium")


# --------------------------------------------------------------------------- windows
def test_positive_windows_hold_the_face_at_the_centre_with_the_target_size():
    scene = _scene(face_hw=(50, 40))  # faces twice the target: windows downsample by 2
    spec = _tiny_spec(context_factor=2.0)
    ws = S.sample_windows([scene], spec, n_pos=8, rng=0)
    assert ws.images.shape == (8 * 4, 3, 50, 40) and ws.images.dtype == torch.uint8
    assert int(ws.labels.sum()) == 8 and ws.counts()["pos"] == 8
    pos = ws.images[ws.labels == 1].float().mean(dim=(0, 1))  # (50, 40)
    th, tw = spec.template_hw
    cy, cx = 25, 20
    inner = pos[cy - th // 2 + 3: cy + th // 2 - 3, cx - tw // 2 + 3: cx + tw // 2 - 3]
    assert inner.mean() > 170  # the bright face fills the central template box
    assert pos[:, :3].mean() < 110 and pos[:3, :].mean() < 110  # dark around it
    # the face edge is where the template box says (within the 8% jitter)
    col = pos[cy + 5]  # a row through the face below the eyes
    bright = torch.nonzero(col > 150).flatten()
    assert abs(int(bright.min()) - (cx - tw // 2)) <= 3 and abs(int(bright.max()) + 1 - (cx + tw // 2)) <= 3


def test_negative_windows_do_not_centre_a_face_of_the_target_size():
    scene = _scene(face_hw=(25, 20), n_faces=3)
    spec = _tiny_spec()
    ws = S.sample_windows([scene], spec, n_pos=8, rng=1, neg_per_pos=4)
    counts = ws.counts()
    assert counts["pos"] == 8 and sum(counts.values()) == 40
    assert {"random", "shifted", "wrong_size"} <= set(counts)
    neg = ws.images[ws.labels == 0].float()
    th, tw = spec.template_hw
    centre = neg[:, :, 25 - th // 2: 25 + th // 2, 20 - tw // 2: 20 + tw // 2].mean(dim=(1, 2, 3))
    pos = ws.images[ws.labels == 1].float()
    pcentre = pos[:, :, 25 - th // 2: 25 + th // 2, 20 - tw // 2: 20 + tw // 2].mean(dim=(1, 2, 3))
    assert pcentre.min() > 150
    assert (centre > 150).float().mean() < 0.2  # hardly any negative has a face filling the box


def test_two_x_windows_are_interpolated_from_the_one_x_face():
    """A 2x template must not see more detail than exists at the target size: the 2x window
    is the 1x window interpolated, not a sharper resample of the original image."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, size=(200, 200, 3)).astype(np.uint8)  # white noise: all detail
    scene = S.Scene(img, np.array([[50.0, 50.0, 150.0, 150.0]]))
    one = _tiny_spec(face_hw=(25, 25), resolution=1.0)
    two = _tiny_spec(face_hw=(25, 25), resolution=2.0)
    w1 = S.sample_windows([scene], one, n_pos=4, rng=3, neg_per_pos=0)
    w2 = S.sample_windows([scene], two, n_pos=4, rng=3, neg_per_pos=0)
    assert w2.images.shape[-2:] == (100, 100) and w1.images.shape[-2:] == (50, 50)
    down = torch.nn.functional.avg_pool2d(w2.images.float(), 2)
    assert (down - w1.images.float()).abs().mean() < 6  # same content
    # and no new high frequencies: neighbouring 2x pixels are strongly correlated
    a, b = w2.images.float()[..., :, :-1], w2.images.float()[..., :, 1:]
    assert (a - b).abs().mean() < 0.6 * (w1.images.float()[..., :, :-1] - w1.images.float()[..., :, 1:]).abs().mean()


def test_sample_windows_is_deterministic_and_reports_missing_faces():
    scene = _scene()
    spec = _tiny_spec(face_hw=(25, 20))
    a = S.sample_windows([scene], spec, 6, rng=5)
    b = S.sample_windows([scene], spec, 6, rng=5)
    assert torch.equal(a.images, b.images) and list(a.kind) == list(b.kind)
    with pytest.raises(ValueError, match="no face"):
        S.sample_windows([scene], _tiny_spec(face_hw=(250, 200), scale_range=(0.5, 2.0)), 4, rng=0)


def test_scenes_from_dataset_drops_ignored_boxes_but_avoids_them():
    image = np.zeros((50, 60, 3), np.uint8)
    target = {"boxes": np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32),
              "ignore": np.array([False, True]), "image_id": "a/b"}
    (scene,) = S.scenes_from_dataset([(image, target)])
    assert scene.boxes.shape == (1, 4) and scene.avoid.shape == (2, 4) and scene.image_id == "a/b"


# --------------------------------------------------------------------------- receptive fields
def test_analytic_receptive_fields():
    assert [S.analytic_receptive_field(s) for s in ("s1", "s2", "s3", "s4", "s5")] == [7, 19, 43, 91, 187]
    # torchvision ResNet-18: conv1 7, layer1 43, layer2 99, layer3 211, layer4 435
    assert [S.analytic_receptive_field(s, "resnet18") for s in ("s1", "s2", "s3", "s4", "s5")] == [
        7, 43, 99, 211, 435]


def test_tight_model_sees_only_the_face_box_and_loose_sees_context():
    spec_t = _tiny_spec(context="tight", context_factor=4.0, face_hw=(24, 20), tight_margin=0.1)
    spec_l = _tiny_spec(context="loose", context_factor=4.0, face_hw=(24, 20))
    torch.manual_seed(0)
    tight, loose = S.build_model(spec_t), S.build_model(spec_l)
    crop = spec_t.crop_hw  # (96, 80)
    eh, ew = S.window_rf_extent(tight, crop)
    th, tw = spec_t.template_hw
    # the face box grown by 10 % on each side, to the pixel
    assert abs(eh - th * 1.2) <= 1.5 and abs(ew - tw * 1.2) <= 1.5
    lh, lw = S.window_rf_extent(loose, crop)
    rf = S.analytic_receptive_field("s4")
    # context reaches the output: (almost) the whole window or the stage's theoretical RF
    assert lh >= 0.9 * min(rf, crop[0]) and lw >= 0.9 * min(rf, crop[1])
    assert lh >= 3 * th and lw >= 3 * tw
    mask = S.context_mask(crop, (th, tw), 0.1)
    assert mask.shape == crop and 0 < mask.mean() < 0.2


def test_foveal_descriptor_concatenates_stages():
    fov = S.StudyNet(("s2", "s3", "s4"), width=4)
    last = S.StudyNet(("s4",), width=4)
    assert fov.head.in_features == 4 * (2 + 4 + 4) and last.head.in_features == 16
    x = torch.zeros(2, 3, 64, 48, dtype=torch.uint8)
    assert fov(x).shape == (2,) and last(x).shape == (2,)
    shallow = S.StudyNet(("s2",), width=4)
    assert len(shallow.stages) == 2  # stages beyond the deepest layer are not built


def test_resnet18_arch_builds_and_runs():
    net = S.StudyNet(("s2", "s3", "s4"), arch="resnet18")
    assert net.head.in_features == 64 + 128 + 256
    assert net(torch.zeros(1, 3, 64, 64, dtype=torch.uint8)).shape == (1,)
    with pytest.raises(ValueError):
        S.StudyNet(("s2",), arch="vgg")


# --------------------------------------------------------------------------- training + AP
def _separable(n=64, hw=(24, 20), seed=0) -> S.WindowSet:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 60, (n, 3, *hw), generator=g, dtype=torch.uint8)
    y = torch.zeros(n)
    y[: n // 2] = 1
    x[: n // 2, :, 6:18, 5:15] += 150  # a bright centre patch on the positives
    return S.WindowSet(x, y, np.where(y.numpy() > 0, "pos", "random"))


def test_training_loop_learns_a_separable_toy_case():
    data = _separable()
    torch.manual_seed(0)
    model = S.StudyNet(("s1", "s2"), width=4)
    hist = S.train_classifier(model, S.balanced_batches(data, 16, rng=0), steps=60, lr=5e-3, device="cpu")
    assert isinstance(hist, pd.DataFrame) and list(hist.columns) == ["step", "loss", "accuracy", "lr"]
    assert len(hist) == 60 and hist["lr"].iloc[-1] < hist["lr"].iloc[0]
    assert hist["loss"].tail(10).mean() < 0.5 * hist["loss"].head(5).mean()
    test = _separable(seed=1)
    scores = S.predict(model, test.images)
    assert ((scores > 0.5) == (test.labels.numpy() > 0.5)).mean() > 0.95
    assert S.window_ap(scores, test.labels) > 0.95


def test_training_with_bf16_autocast_on_cpu_runs():
    data = _separable(32)
    model = S.StudyNet(("s1",), width=4)
    hist = S.train_classifier(model, S.balanced_batches(data, 8, rng=0), steps=3, device="cpu", amp=True)
    assert np.isfinite(hist["loss"]).all()


def test_balanced_batch_dataset_matches_the_stream():
    data = _separable(40)
    stream = S.balanced_batches(data, 10, rng=3)
    ds = S.BalancedBatches(data, 10, 5, rng=3)
    assert len(ds) == 5
    for i in range(5):
        x, y = next(stream)
        assert torch.equal(ds[i][0], x) and torch.equal(ds[i][1], y)


def test_training_through_the_engine_matches_a_stream_and_keeps_global_rngs():
    """The same batches as a dataset or as a stream train the same model; the engine's
    per-epoch seeding does not leak into the caller's global generators."""
    data = _separable(48)
    hists = []
    for batches in (S.BalancedBatches(data, 8, 12, rng=1), S.balanced_batches(data, 8, rng=1)):
        torch.manual_seed(0)
        model = S.StudyNet(("s1",), width=4)
        np.random.seed(123)  # noqa: NPY002 - the global state must survive
        before = (torch.random.get_rng_state(), np.random.random())  # noqa: NPY002
        np.random.seed(123)  # noqa: NPY002 - the global state must survive
        hists.append(S.train_classifier(model, batches, steps=12, lr=5e-3, device="cpu"))
        after = (torch.random.get_rng_state(), np.random.random())  # noqa: NPY002
        assert torch.equal(before[0], after[0]) and before[1] == after[1]
    pd.testing.assert_frame_equal(hists[0], hists[1])
    assert hists[0]["step"].tolist() == list(range(12))
    assert hists[0]["lr"].iloc[0] == pytest.approx(5e-3)  # the rate the first step used


def test_balanced_batches_are_balanced_and_need_both_classes():
    data = _separable(40)
    x, y = next(S.balanced_batches(data, 10, rng=0))
    assert x.shape == (10, 3, 24, 20) and y.sum() == 5
    only_pos = S.WindowSet(data.images[:20], data.labels[:20], data.kind[:20])
    with pytest.raises(ValueError, match="positives and negatives"):
        next(S.balanced_batches(only_pos, 4, rng=0))


def test_window_ap():
    assert S.window_ap([0.9, 0.8, 0.1, 0.05], [1, 1, 0, 0]) == pytest.approx(1.0)
    # ranking pos, neg, pos: precision 1 at recall .5, 2/3 at recall 1 -> VOC AP .5 + .5*2/3
    assert S.window_ap([0.9, 0.5, 0.4], [1, 0, 1]) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert S.window_ap([0.1, 0.9], [1, 0]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        S.window_ap([0.1], [0])
    with pytest.raises(ValueError):
        S.window_ap([0.1, 0.2], [1])


def test_run_studies_is_deterministic_by_seed_and_reports_each_condition():
    scenes = [_scene(seed=i, face_hw=(25, 20), n_faces=3) for i in range(6)]
    specs = {"tight": _tiny_spec(context="tight", context_factor=3.0, steps=30),
             "loose": _tiny_spec(context="loose", context_factor=3.0, steps=30)}
    table, results = S.run_studies(specs, scenes[:4], scenes[4:], seeds=(0,))
    again, _ = S.run_studies({"tight": specs["tight"]}, scenes[:4], scenes[4:], seeds=(0,))
    assert table.loc[0, "ap_mean"] == pytest.approx(again.loc[0, "ap_mean"], abs=1e-9)
    assert set(table["condition"]) == {"tight", "loose"}
    assert {"ap_mean", "ap_std", "effective_rf_hw", "seconds", "train_ap_mean"} <= set(table.columns)
    assert results["loose"].ap_mean >= 0.9  # the toy faces are easy
    assert table.loc[0, "effective_rf_hw"] == "30x24"  # tight: the 25x20 box + 10 % margins
    assert table.loc[1, "effective_rf_hw"] == "76x60"  # loose: the whole window


def test_render_scenes_from_the_synthetic_world():
    scenes = S.render_scenes(1, face_height=25, seed=0, image_size=(160, 120))
    assert len(scenes) == 1 and scenes[0].image.shape == (120, 160, 3)
    assert scenes[0].avoid.shape[0] >= scenes[0].boxes.shape[0]
    again = S.render_scenes(1, face_height=25, seed=0, image_size=(160, 120))
    assert np.array_equal(scenes[0].image, again[0].image)


def test_full_mode_specs_take_the_same_code_path(monkeypatch):
    """Full mode (GPU) uses ResNet-18 stages and bigger budgets; a few steps of it run here
    on the CPU through exactly the code the notebooks call."""
    monkeypatch.setenv("TINYLIB_TIER", "full")
    from dataclasses import replace

    b = S.budget()
    assert b["arch"] == "resnet18" and b["large_face"] == S.LARGE_FACE and len(b["seeds"]) >= 3
    specs = {k: replace(v, steps=2, batch_size=4, n_train_pos=4, n_test_pos=4)
             for k, v in S.context_specs("small").items()}
    scenes = [_scene(seed=i, face_hw=(25, 20), n_faces=3) for i in range(3)]
    table, results = S.run_studies(specs, scenes[:2], scenes[2:], seeds=(0,), device="cpu")
    assert results["loose"].model.arch == "resnet18"
    assert np.isfinite(table["ap_mean"]).all()
    assert table.loc[0, "effective_rf_hw"] == "30x24"  # tight holds for the ResNet too


def test_render_scenes_in_processes_gives_the_same_scenes():
    one = S.render_scenes(2, face_height=25, seed=3, image_size=(96, 64), n_persons=2)
    two = S.render_scenes(2, face_height=25, seed=3, image_size=(96, 64), n_persons=2, workers=2)
    for a, b in zip(one, two):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.avoid, b.avoid)


def test_describe_gain_and_comparison_claims(monkeypatch):
    from tinylib import scorecard

    monkeypatch.setenv("TINYLIB_NOTEBOOK", "test_studies")
    table = pd.DataFrame([
        {"condition": "1x", "ap_mean": 0.80, "ap_std": 0.01, "ap_per_seed": [0.79, 0.81],
         "template_hw": "25x20", "window_hw": "50x40", "effective_rf_hw": "50x40"},
        {"condition": "2x", "ap_mean": 0.90, "ap_std": 0.02, "ap_per_seed": [0.88, 0.92],
         "template_hw": "50x40", "window_hw": "100x80", "effective_rf_hw": "91x78"},
    ])
    text = S.describe_gain(table, "1x", "2x", paper_gain=6.3)
    assert "+10.0 AP points" in text and "same sign" in text
    assert "OUTSIDE the seed spread" in text and "INSIDE" not in text
    flipped = S.describe_gain(table, "2x", "1x", paper_gain=6.3)
    assert "NOT the same sign" in flipped
    # a gain smaller than twice its standard error is inside the spread
    noisy = table.assign(ap_std=[0.10, 0.12])
    assert "INSIDE the seed spread" in S.describe_gain(noisy, "1x", "2x")
    one = table.assign(ap_per_seed=[[0.8], [0.9]], ap_std=[0.0, 0.0])
    assert "one seed only" in S.describe_gain(one, "1x", "2x")
    synthetic = S.StudyData("small", S.SMALL_FACE, [], [], "synthetic")
    claims = S.comparison_claims("study.test", table, "1x", "2x", paper_base=69, paper_other=75,
                                 paper_gain=6.3, claim="toy", data=synthetic)
    # the studies return claims as data (the arguments of scorecard.record); the caller records
    assert [c["key"] for c in claims] == ["study.test.1x", "study.test.2x", "study.test.gain"]
    assert all(set(c) == {"key", "claim", "paper", "ours", "unit", "note"} for c in claims)
    # study.* keys are claims about long runs: a live run is recorded as a sample (KEY.sample)
    with pytest.raises(ValueError, match="long run"):
        scorecard.record(**claims[0])
    rows = pd.DataFrame([scorecard.record(**c, sample=3, source=synthetic).as_row() for c in claims])
    assert list(rows["key"]) == ["study.test.1x.sample", "study.test.2x.sample", "study.test.gain.sample"]
    assert list(rows["ours"]) == [80.0, 90.0, 10.0]
    assert list(rows["paper"]) == [69, 75, 6.3]
    assert all("synthetic world" in n for n in rows["note"])
    saved = scorecard.table("test_studies").set_index("key")
    assert (saved.loc[list(rows["key"]), "status"] == "not comparable").all()
    drop = scorecard.record(**S.gain_claim("study.test.drop", table, "1x", "2x", paper="~0",
                                           claim="toy drop", data=synthetic), sample=3)
    assert drop.ours == 10.0 and drop.paper == "~0" and drop.status == "not comparable"
    assert "OUTSIDE the seed spread" in drop.note and "synthetic world" in drop.note


def test_seed_std_is_the_sample_std():
    res = S.StudyResult("x", _tiny_spec(), ap=[0.7, 0.8, 0.9])
    assert res.ap_std == pytest.approx(0.1)
    assert S.StudyResult("x", _tiny_spec(), ap=[0.7]).ap_std == 0.0


def test_run_studies_cuts_the_same_windows_at_each_resolution(monkeypatch):
    """1x and 2x conditions are compared on the same windows (same faces, positions, scales)."""
    seen = {}
    real_sample = S.sample_windows

    def spy(scenes, spec, n_pos, rng, neg_per_pos=None):
        ws = real_sample(scenes, spec, n_pos, rng, neg_per_pos)
        seen.setdefault((spec.resolution, n_pos), []).append(ws)
        return ws

    monkeypatch.setattr(S.experiment, "sample_windows", spy)
    scenes = [_scene(seed=i, face_hw=(25, 20), n_faces=3) for i in range(3)]
    specs = {"1x": _tiny_spec(steps=2, n_train_pos=6, n_test_pos=4),
             "2x": _tiny_spec(steps=2, n_train_pos=6, n_test_pos=4, resolution=2.0)}
    S.run_studies(specs, scenes[:2], scenes[2:], seeds=(0, 1))
    assert len(seen[(1.0, 4)]) == 1 and len(seen[(1.0, 6)]) == 2  # test once, train per seed
    for n in (4, 6):
        one, two = seen[(1.0, n)][0], seen[(2.0, n)][0]
        assert list(one.kind) == list(two.kind)
        down = torch.nn.functional.avg_pool2d(two.images.float(), 2)
        assert (down - one.images.float()).abs().mean() < 8
    assert not torch.equal(seen[(1.0, 6)][0].images, seen[(1.0, 6)][1].images)


# --------------------------------------------------------------------------- real WIDER faces
@pytest.fixture
def real_images(real_data):
    """The data root with the real WIDER train and val images, or skip saying what is missing."""
    from tinylib.data import sources

    missing = sources.missing_files(sources.WIDER_IMAGES, real_data)
    if missing:
        pytest.skip(f"real WIDER images not under {real_data}: {', '.join(missing)}")
    return real_data


def test_usable_faces_rule():
    base = dict(x=0, y=0, w=40, h=50, blur=0, expression=0, illumination=0, invalid=0,
                occlusion=0, pose=0, degenerate=False)
    rows = [base, {**base, "invalid": 1}, {**base, "occlusion": 2}, {**base, "degenerate": True},
            {**base, "w": 16, "h": 20},  # smaller than 25x20: would have to be upscaled
            {**base, "w": 200, "h": 250},  # more than 5x the study's face
            {**base, "w": 40, "h": 140},  # a sliver
            {**base, "occlusion": 1, "blur": 2}]  # partial occlusion and blur are kept
    ok = S.usable_faces(pd.DataFrame(rows), S.SMALL_FACE)
    assert ok.tolist() == [True, False, False, False, False, False, False, True]


def test_real_scenes_hold_usable_wider_faces(real_images):
    from tinylib.data import widerface

    scenes = S.real_scenes(S.SMALL_FACE, "train", real_images, limit=3, seed=0)
    assert len(scenes) == 3
    gt = widerface.load_faces("train", real_images)
    keys = set(gt["image"].map(widerface.image_key))
    for sc in scenes:
        assert sc.image.dtype == np.uint8 and sc.image.ndim == 3 and sc.image.shape[2] == 3
        assert sc.image_id in keys and len(sc.boxes) >= 1
        side = np.sqrt((sc.boxes[:, 2] - sc.boxes[:, 0]) * (sc.boxes[:, 3] - sc.boxes[:, 1]))
        assert (side >= np.sqrt(25 * 20) - 1e-6).all() and (side <= 5 * np.sqrt(25 * 20) + 1e-6).all()
        assert len(sc.avoid) >= len(sc.boxes)  # every annotated face is avoided by negatives
        assert all(any(np.allclose(b, a) for a in sc.avoid) for b in sc.boxes)
    again = S.real_scenes(S.SMALL_FACE, "train", real_images, limit=3, seed=0)
    assert [s.image_id for s in again] == [s.image_id for s in scenes]


def test_real_windows_are_centred_on_real_faces(real_images):
    from PIL import Image

    scenes = S.real_scenes(S.SMALL_FACE, "val", real_images, limit=3, seed=1)
    spec = _tiny_spec(context_factor=3.0)  # 76x60 windows around a 25x20 face
    ws = S.sample_windows(scenes, spec, n_pos=6, rng=0, neg_per_pos=3)
    assert ws.images.shape == (24, 3, 76, 60) and ws.images.dtype == torch.uint8
    assert int(ws.labels.sum()) == 6 and (ws.labels[ws.kind == "pos"] == 1).all()
    assert (ws.labels[ws.kind != "pos"] == 0).all()
    # exact centring: the window of a face (centre, scale s so the face is 25x20 by area) is
    # the image region of 76x60 / s pixels around the face centre, resized (checked against PIL)
    checked = 0
    for scene in scenes:
        H, W = scene.image.shape[:2]
        for b in scene.boxes:
            s = np.sqrt(25 * 20 / ((b[2] - b[0]) * (b[3] - b[1])))
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            region = (cx - 30 / s, cy - 38 / s, cx + 30 / s, cy + 38 / s)
            if region[0] < 0 or region[1] < 0 or region[2] > W or region[3] > H:
                continue
            (win,) = S.windows._crop_many(scene, np.array([[cx, cy, s]]), (76, 60), (76, 60))
            ref = np.asarray(Image.fromarray(scene.image).resize((60, 76), Image.BILINEAR, box=region),
                             dtype=np.float32)
            got = win.permute(1, 2, 0).numpy().astype(np.float32)
            assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] > 0.98  # a 3 px shift gives < 0.9
            assert np.abs(got - ref).mean() < 4
            checked += 1
    assert checked >= 3


def test_windows_past_the_image_border_take_the_mean_colour(real_images):
    (scene,) = S.real_scenes(S.SMALL_FACE, "train", real_images, limit=1, seed=2)
    (win,) = S.windows._crop_many(scene, np.array([[0.0, 0.0, 1.0]]), (76, 60), (76, 60))  # centred on the corner
    win = win.permute(1, 2, 0).numpy().astype(np.float32)
    mean = scene.image.reshape(-1, 3).mean(0)
    assert np.abs(win[:36, :28] - mean).max() <= 1  # outside the image: the mean colour
    assert np.abs(win[38:, 30:] - scene.image[:38, :30]).max() <= 1  # inside: the pixels


def test_study_data_cuts_train_from_wider_train_and_test_from_val(real_images, monkeypatch):
    from tinylib.data import widerface

    monkeypatch.setenv("TINYLIB_QUICK", "1")
    small = {**S.budget(), "n_train_images": 3, "n_test_images": 2}
    monkeypatch.setattr(S.scenes, "budget", lambda: small)
    data = S.study_data("small", seed=0)
    assert data.kind == "real" and data.is_real and len(data.train) == 3 and len(data.test) == 2
    train_keys = set(widerface.load_faces("train", real_images)["image"].map(widerface.image_key))
    val_keys = set(widerface.load_faces("val", real_images)["image"].map(widerface.image_key))
    assert {s.image_id for s in data.train} <= train_keys and {s.image_id for s in data.test} <= val_keys
    assert "REAL WIDER FACE" in str(data) and "WIDER_val" in str(data)
    table = pd.DataFrame([{"condition": "a", "n_train": 768, "n_test": 960}])
    assert data.note(table).startswith("Data: real WIDER faces (768 train / 960 val windows per seed")
    spec = S.context_specs("small")["loose"]
    ws = S.sample_windows(data.test, spec, 8, rng=0)
    assert ws.images.shape == (32, 3, *spec.crop_hw) and int(ws.labels.sum()) == 8


@pytest.mark.parametrize("layout", ["empty", "annotations_only"])
def test_study_data_falls_back_to_synthetic_without_the_real_images(monkeypatch, tmp_path, layout):
    from tinylib.data import sources

    if layout == "annotations_only":  # the annotation files alone are not enough
        for rel in sources.WIDER_ANNOTATIONS:
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text("")
    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path))
    monkeypatch.setenv("TINYLIB_QUICK", "1")
    tiny = {**S.budget(), "n_train_scenes": 2, "n_test_scenes": 1, "image_size": (160, 120)}
    monkeypatch.setattr(S.scenes, "budget", lambda: tiny)
    data = S.study_data("small", seed=0)
    assert data.kind == "synthetic" and not data.is_real
    assert len(data.train) == 2 and len(data.test) == 1
    assert "SYNTHETIC" in str(data) and "WIDER_val/images" in str(data)
    assert "synthetic world" in data.note() and "not comparable" in data.note()
    train, test = S.study_scenes("small", seed=0)
    assert np.array_equal(train[0].image, data.train[0].image)
    with pytest.raises(FileNotFoundError, match="WIDER_train/images"):
        S.study_data("small", source="real")
    with pytest.raises(ValueError, match="source"):
        S.study_data("small", source="imagenet")


def test_ap_bars_tell_the_paper_from_the_error_bars():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    def table(conds, means):
        return pd.DataFrame({"condition": conds, "ap_mean": means, "ap_std": [0.02] * len(conds)})

    tables = {"small": table(["1x", "2x"], [0.73, 0.69]), "large": table(["1x", "0.5x"], [0.79, 0.86])}
    ax = S.ap_bars(tables, paper_prefix="study.resolution", title="toy")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["small\n1x", "small\n2x", "large\n1x",
                                                            "large\n0.5x"]
    paper = [c for c in ax.collections if isinstance(c, matplotlib.collections.PathCollection)]
    assert len(paper) == 4  # one marker per condition, at the value of tinylib.papers
    assert [float(c.get_offsets()[0][1]) for c in paper] == [69, 75, 89, 94]
    errbars = [c for c in ax.collections if isinstance(c, matplotlib.collections.LineCollection)]
    assert errbars
    err_rgb = mcolors.to_rgb(errbars[0].get_colors()[0])
    for c in paper:  # not black, not the error bars' colour, not a bar-like tick
        face = mcolors.to_rgb(c.get_facecolors()[0])
        assert face != err_rgb and face != (0.0, 0.0, 0.0)
        assert c.get_paths()[0].vertices.shape[0] > 2
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert "paper" in legend and "ours: ± seed std" in legend
    plt.close(ax.figure)
    # no paper values (e.g. the context study): no "paper" entry
    ax = S.ap_bars({"small": table(["tight", "loose"], [0.7, 0.8])})
    assert "paper" not in {t.get_text() for t in ax.get_legend().get_texts()}
    plt.close(ax.figure)
