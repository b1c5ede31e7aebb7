"""The bottom-heavy comparison's pieces (issue #11): the per-size WIDER setting, tiny-image
pre-training (WIDER-32 crops, the classifier, backbone weights into the detector), scale
matching and the tiny-person world, and the result tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from tinylib.compare import bottom_heavy as C
from tinylib.data import scale_match as SM
from tinylib.data import tinycrops as TC
from tinylib.eval import widerface as W
from tinylib.frcnn import pretrain as P
from tinylib.frcnn.model import build_frcnn

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tinylib.data.synthetic import make_world

    return make_world(4, 3, image_size=(256, 192), seed=2,
                      root=tmp_path_factory.mktemp("bh_world") / "w")


# ------------------------------------------------------------------- per-size setting
def _gt():
    # one image: faces of 10, 16, 30 and 60 px (xywh); the 60-px face is not in "hard"
    boxes = {"e/a": np.array([[0, 0, 10, 10], [100, 0, 16, 16], [200, 0, 30, 30], [300, 0, 60, 60]], float)}
    keep = {s: {"e/a": np.arange(3 if s == "hard" else 4)} for s in W.SETTINGS}
    return W.SimpleEvalGT(boxes, keep)


def test_le20_keeps_exactly_the_small_hard_faces():
    g = W.with_size_setting(_gt())
    assert g.keep["le20"]["e/a"].tolist() == [0, 1]
    assert g.keep["hard"]["e/a"].tolist() == [0, 1, 2]  # the others unchanged
    assert W.with_size_setting(_gt(), "mid", "easy", 20, 100).keep["mid"]["e/a"].tolist() == [2, 3]
    with pytest.raises(ValueError, match="empty"):
        W.with_size_setting(_gt(), "x", "hard", 20, 10)


def test_le20_ap_ignores_larger_faces_but_counts_false_positives():
    g = W.with_size_setting(_gt())
    # the two small faces found with the lowest scores; a 30-px face hit with the top score
    det = np.array([[200, 0, 30, 30, 0.9], [0, 0, 10, 10, 0.5], [100, 0, 16, 16, 0.4]])
    res = W.evaluate({"e/a": det}, g, settings=("hard", "le20"))
    assert res.n_faces["le20"] == 2
    assert res.ap["le20"] == pytest.approx(1.0)  # the 30-px hit is ignored, not a false positive
    fp = np.vstack([det, [[400, 100, 20, 20, 0.95]]])  # a box on no face, scored first
    assert W.evaluate({"e/a": fp}, g, settings=("le20",)).ap["le20"] < 0.9


def test_ap_by_size_bins():
    det = np.array([[0, 0, 10, 10, 0.9], [200, 0, 30, 30, 0.8]])
    t = W.ap_by_size({"e/a": det}, _gt(), bins=(0, 12, 20, 40, 1e9))
    assert t["faces"].tolist() == [1, 1, 1, 0]
    assert t["ap"].iloc[0] == pytest.approx(1.0) and t["ap"].iloc[1] == 0.0
    assert t["ap"].iloc[2] == pytest.approx(1.0) and np.isnan(t["ap"].iloc[3])


# ------------------------------------------------------------------- WIDER-32 crops
def _photo():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)
    img[50:70, 100:120] = 255  # a white 20-px "face"
    return img


def test_cut_crops_windows_and_labels():
    boxes = np.array([[100, 50, 120, 70], [0, 0, 4, 4], [250, 150, 290, 190]], float)
    ignore = np.array([False, False, True])  # a 4-px face (too small) and an invalid one
    crops, labels, win = TC.cut_crops(_photo(), boxes, ignore, np.random.default_rng(1), per_image=5)
    faces = labels > 0
    assert crops.shape[1:] == (32, 32, 3) and crops.dtype == np.uint8
    assert sorted(labels[faces].tolist()) == [1, 2, 3]  # one face, one crop per context
    for (x0, y0, side), lab in zip(win[faces], labels[faces]):
        assert side == round(TC.FACE_CONTEXTS[lab - 1] * 20)
        assert abs(x0 + side / 2 - 110) <= 0.1 * side + 1 and abs(y0 + side / 2 - 60) <= 0.1 * side + 1
    c = crops[labels == 1][0]  # x1.25: the white face fills the middle of the crop
    assert c[12:20, 12:20].min() > 200
    assert (labels == 0).sum() == 5
    for x0, y0, side in win[labels == 0]:  # no face (the ignored one included) in a background
        for b in boxes:
            iw = max(0, min(b[2], x0 + side) - max(b[0], x0))
            ih = max(0, min(b[3], y0 + side) - max(b[1], y0))
            assert iw * ih <= 0.2 * (b[2] - b[0]) * (b[3] - b[1])
    again = TC.cut_crops(_photo(), boxes, ignore, np.random.default_rng(1), per_image=5)
    assert np.array_equal(again[0], crops)


def test_wider32_from_a_world_is_cached(world):
    a = TC.build_wider_crops("train", world, per_image=4, progress=False)
    assert a["images"].shape[1:] == (32, 32, 3) and len(a["images"]) == len(a["labels"])
    assert set(np.unique(a["labels"])) <= set(range(len(TC.CLASSES)))
    assert (a["labels"] == 0).any() and (a["labels"] > 0).any()
    b = TC.build_wider_crops("train", world, per_image=4, progress=False)
    assert np.array_equal(a["images"], b["images"]) and a["source"] == b["source"]


# ------------------------------------------------------------------- pre-training
def test_tiny_augment_train_and_eval():
    img = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    plain = P.TinyAugment(train=False)(img)
    assert plain.shape == (3, 32, 32)
    ref = (torch.from_numpy(img.transpose(2, 0, 1)).float() / 255 - plain.new_tensor(P.IMAGE_MEAN).view(3, 1, 1)) \
        / plain.new_tensor(P.IMAGE_STD).view(3, 1, 1)
    assert torch.allclose(plain, ref)
    torch.manual_seed(0)
    a = P.TinyAugment()(img)
    torch.manual_seed(0)
    assert torch.equal(a, P.TinyAugment()(img)) and a.shape == (3, 32, 32)


def test_auto_source_falls_back_to_wider32_with_a_warning(tmp_path, caplog):
    with caplog.at_level("WARNING"):
        assert P.resolve_source("auto", tmp_path) == "wider_crops"
    assert "WIDER-32" in caplog.text
    cif = tmp_path / "cifar100" / "cifar-100-binary"
    cif.mkdir(parents=True)
    (cif / "train.bin").write_bytes(bytes(3074))
    assert P.resolve_source("auto", tmp_path) == "cifar100"


def test_pretrain_run_then_detector_from_its_backbone(world, tmp_path):
    cfg = {"name": "t", "model": {"backbone": "resnet18"},
           "data": {"source": "wider_crops", "root": str(world), "per_image": 2},
           "train": {"epochs": 1, "max_steps_per_epoch": 2, "batch_size": 8, "optimizer": "adamw",
                     "lr": 1e-3, "seed": 0}}
    model, hist, result = P.run(cfg, out_dir=tmp_path / "pt", progress=False)
    assert len(hist) == 2 and np.isfinite(hist["loss"]).all()
    assert result["source"] == "wider_crops" and 0 <= result["top1"] <= 1
    assert json.loads((tmp_path / "pt" / "result.json").read_text())["top1"] == result["top1"]
    det = build_frcnn("resnet18", backbone_weights=str(tmp_path / "pt" / "backbone.pt"),
                      fpn_channels=16, representation_size=32)
    for k, v in model.body.state_dict().items():
        assert torch.equal(det.backbone.body.state_dict()[k], v), k
    with pytest.raises(ValueError, match="not a state dict of this backbone"):
        build_frcnn("resnet50", backbone_weights=str(tmp_path / "pt" / "backbone.pt"))


def test_classifier_logits_and_top1():
    torch.manual_seed(0)
    m = P.BackboneClassifier("resnet18", 3)
    x = torch.randn(4, 3, 32, 32)
    m.train()
    loss = m(x, {"labels": torch.tensor([0, 1, 2, 0])})["loss_cls"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    m.eval()
    assert m(x).shape == (4, 3)
    ds = TC.ArrayImages(np.zeros((5, 32, 32, 3), np.uint8), np.zeros(5), P.TinyAugment(False))
    acc = P.top1(m, ds)
    pred = m(torch.stack([ds[i][0] for i in range(5)])).argmax(1)
    assert acc == pytest.approx(float((pred == 0).float().mean()))


# ------------------------------------------------------------------- scale matching
def test_lognormal_params_round_trip():
    mu, sigma = SM.lognormal_params(18.0, 17.4)
    s = np.exp(mu + sigma * np.random.default_rng(0).standard_normal(400_000))
    assert s.mean() == pytest.approx(18.0, rel=0.01) and s.std() == pytest.approx(17.4, rel=0.03)


def test_image_factors_match_the_target_histogram():
    rng = np.random.default_rng(0)
    # 600 images, each with its own median size (40..150 px) and a within-image spread
    sizes = [np.exp(np.log(rng.uniform(40, 150)) + 0.3 * rng.standard_normal(rng.integers(1, 30)))
             for _ in range(600)]
    f = SM.image_factors(sizes, 18.0, 17.4, np.random.default_rng(1))
    after = np.concatenate([s * k for s, k in zip(sizes, f)])
    mu, sigma = SM.lognormal_params(18.0, 17.4)
    # the log-normal of mean 18 and std 17.4: log-mean and log-sd, mean, share <= 20 px (0.70;
    # TinyPerson's own 0.73 is not exactly log-normal). The sample std of so heavy a tail over
    # 600 image draws is too noisy to test tightly.
    assert np.log(after).mean() == pytest.approx(mu, abs=0.06)
    assert np.log(after).std() == pytest.approx(sigma, rel=0.08)
    out = SM.size_summary(after)
    assert out["mean"] == pytest.approx(18.0, rel=0.1)
    assert out["share_le20"] == pytest.approx(0.70, abs=0.04)
    assert (f <= 1).all()  # down-scaling only
    with pytest.raises(ValueError, match="at least one image"):
        SM.image_factors([[], []], 18, 17, rng)


def test_tiny_person_world(world, tmp_path):
    from tinylib.data.tinyperson import TinyPersonDataset, load_annotations

    out = SM.make_tiny_person_world(world, tmp_path / "tp", seed=0)
    man = json.loads((out / "world.json").read_text())
    before, after = man["splits"]["train"]["before"], man["splits"]["train"]["after"]
    assert after["mean"] < before["mean"] and after["share_le20"] > before["share_le20"]
    src = json.loads((world / "tinyperson" / "annotations" / "tiny_set_train.json").read_text())
    new = json.loads((out / "tinyperson" / "annotations" / "tiny_set_train.json").read_text())
    assert len(new["annotations"]) == len(src["annotations"])
    for a, b in zip(src["annotations"], new["annotations"]):
        im = next(i for i in new["images"] if i["id"] == b["image_id"])
        assert b["bbox"][2] == pytest.approx(a["bbox"][2] * im["width"] / next(
            i for i in src["images"] if i["id"] == a["image_id"])["width"], rel=1e-6)
        assert b.get("ignore") == a.get("ignore")
    ds = TinyPersonDataset(out, "train")
    img, tgt = ds[0]
    assert img.ndim == 3 and img.shape[0] > 0 and len(tgt["boxes"]) == len(tgt["ignore"])
    test_src = json.loads((world / "tinyperson" / "annotations" / "tiny_set_test.json").read_text())
    assert len(load_annotations("test", out).images) == len(test_src["images"])
    assert SM.make_tiny_person_world(world, tmp_path / "tp", seed=0) == out  # reused


# ------------------------------------------------------------------- result tables
def _fake_runs(tmp_path):
    vals = {"resnet50_s0": 0.30, "resnet50_s1": 0.32, "bh_resnet50_s0": 0.40, "bh_resnet50_s1": 0.41,
            "resnet50_pre_s0": 0.35, "resnet50_pre_s1": 0.36}
    def metrics(v, n):
        return json.dumps({"easy": v + 0.2, "medium": v + 0.1, "hard": v, "le20": v - 0.1, "images": n,
                           "faces": {"le20": 100}})

    for name, v in vals.items():
        d = tmp_path / name
        d.mkdir()
        (d / "metrics.json").write_text(metrics(v, 374))
        if name == "resnet50_s0":  # its detections re-scored on 120 of the images
            (d / "metrics_n120.json").write_text(metrics(0.28, 120))
        pd.DataFrame({"step": [1, 600]}).to_csv(d / "history.csv", index=False)
        pd.DataFrame({"bin": ["0-10 px"], "min_size": [0], "max_size": [10], "faces": [5], "ap": [v]}) \
            .to_csv(d / "ap_by_size.csv", index=False)
    return tmp_path


def test_seed_summary_delta_and_pretrain_gain(tmp_path):
    runs = C.collect_runs(_fake_runs(tmp_path))
    assert len(runs) == 7 and set(runs["init"]) == {"scratch", "pretrained"}
    assert sorted(runs["images"]) == [120] + [374] * 6
    assert runs.set_index("run").at["resnet50_pre_s0", "backbone"] == "resnet50"
    s = C.seed_summary(runs)
    r50 = s[(s["backbone"] == "resnet50") & (s["init"] == "scratch")].iloc[0]
    assert r50["seeds"] == 2 and r50["hard_mean"] == pytest.approx(0.31) and r50["hard_spread"] == pytest.approx(0.02)
    d = C.backbone_delta(s)
    assert d.at["hard", "delta"] == pytest.approx(0.095) and d.at["hard", "outside_spread"]
    assert set(s["images"]) == {374}  # the re-scoring on 120 images is left out
    g = C.pretrain_gain(runs).set_index("backbone")  # 0.355 - 0.31, spreads 0.01 and 0.02
    assert list(g.index) == ["resnet50"]
    assert g.at["resnet50", "hard"] == pytest.approx(0.045) and g.at["resnet50", "hard_spread"] == pytest.approx(0.02)
    assert g.at["resnet50", "hard_outside"] and g.at["resnet50", "seeds"] == "2/2"
    one = C.pretrain_gain(runs[runs["run"] != "resnet50_pre_s1"]).set_index("backbone")
    assert one.at["resnet50", "seeds"] == "1/2" and one.at["resnet50", "hard"] == pytest.approx(0.04)
    assert one.at["resnet50", "hard_spread"] == pytest.approx(0.02) and one.at["resnet50", "hard_outside"]
    assert len(C.collect_by_size(tmp_path)) == 6
    with pytest.raises(ValueError, match="run folder"):
        C._parse_run("weird")


def test_runs_scored_on_the_halves_report_the_test_half(tmp_path):
    vals = {"resnet50_s0": 0.30, "bh_resnet50_s0": 0.40, "resnet50_pre_s0": 0.35, "bh_resnet50_pre_s0": 0.45}
    for name, v in vals.items():
        d = tmp_path / name
        d.mkdir()
        m = lambda x, n: {"easy": x + 0.2, "medium": x + 0.1, "hard": x, "le20": x - 0.1, "images": n}  # noqa: E731
        (d / "metrics.json").write_text(json.dumps({**m(v, 374), "faces": {"le20": 100},
                                                    "halves": {"tuning": m(v + 0.05, 187), "test": m(v - 0.05, 187)}}))
        pd.DataFrame({"bin": ["0-10 px"] * 3, "min_size": [0] * 3, "max_size": [10] * 3, "faces": [5, 2, 3],
                      "ap": [v, v + 0.05, v - 0.05], "half": ["all", "tuning", "test"]}) \
            .to_csv(d / "ap_by_size.csv", index=False)
    runs = C.collect_runs(tmp_path)
    assert len(runs) == 12 and sorted(set(runs["half"])) == ["all", "test", "tuning"]
    assert C.headline_half(runs) == "test" and C.headline_half(runs[runs["half"] == "all"]) == "all"
    assert C.headline_half(runs.drop(columns="half")) == "all"  # a legacy table
    s = C.seed_summary(runs).set_index(["backbone", "init"])
    assert s.at[("resnet50", "scratch"), "hard_mean"] == pytest.approx(0.25)  # the test half, not tuning's 0.35
    assert set(s["images"]) == {187} and set(s["seeds"]) == {1}
    assert C.seed_summary(runs, half="tuning").set_index(["backbone", "init"]).at[
        ("resnet50", "scratch"), "hard_mean"] == pytest.approx(0.35)
    assert C.scored_on(runs) == "the test half of the WIDER val subset (187 photos)"
    assert "before the tuning/test split" in C.scored_on(runs, "all")
    by = C.collect_by_size(tmp_path)
    assert len(by) == 12 and sorted(C.headline_rows(by)["ap"]) == pytest.approx([0.25, 0.30, 0.35, 0.40])
    assert C.seed_order(runs, "bh_resnet50", "resnet50") == "all above"
    assert C.spread_words(0.0, False, 1) == "one seed: no seed spread"
    assert C.spread_words(0.018, True, 2) == "outside the seed spread (0.018)"
    assert C.spread_words(0.02, None, 2) == "seed spread 0.020"
    assert C.seed_words([0]) == "seed 0" and C.seed_words([1, 0]) == "mean of seeds 0, 1"
    with pytest.raises(ValueError, match="no rows of half 'n120'"):
        C.headline_rows(runs, "n120")


def test_delta_inside_the_spread_is_not_a_win(tmp_path):
    runs = pd.DataFrame({"backbone": ["a", "a", "b", "b"], "init": ["scratch"] * 4, "seed": [0, 1, 0, 1],
                         "images": [374] * 4,
                         **{m: [0.30, 0.40, 0.33, 0.35] for m in C.METRICS}})
    d = C.backbone_delta(C.seed_summary(runs), "a", "b")
    assert d.at["hard", "delta"] == pytest.approx(0.01) and not d.at["hard", "outside_spread"]
    with pytest.raises(KeyError, match="no scratch runs"):
        C.backbone_delta(C.seed_summary(runs), "c", "b")


# ------------------------------------------------------------------- recipes, speed
@pytest.mark.parametrize("bb", ["resnet50", "bh_resnet50"])
def test_pretrain_recipes_parse_and_match(bb):
    from tinylib import engine
    from tinylib.engine.recipe import load_config

    cfg = load_config(C.REPO_DIR / "configs" / f"pretrain_{bb}_cpu.yaml")
    assert cfg["name"] == f"pretrain_{bb}_cpu" and cfg["model"] == {"backbone": bb, "width": 16}
    det = load_config(C.REPO_DIR / "configs" / f"frcnn_{bb}_wider_cpu.yaml")
    assert det["model"]["backbone_width"] == cfg["model"]["width"]  # pre-trains what it detects with
    engine.TrainConfig.from_dict(cfg["train"])
    P._settings(cfg["data"])
    other = load_config(C.REPO_DIR / "configs" / "pretrain_resnet50_cpu.yaml")
    assert {k: v for k, v in cfg.items() if k not in ("name", "model")} == \
        {k: v for k, v in other.items() if k not in ("name", "model")}


def test_throughput_is_a_positive_rate_and_keeps_the_mode():
    from tinylib.frcnn.detect import throughput

    torch.manual_seed(0)
    m = build_frcnn("resnet18", fpn_channels=16, representation_size=32, rpn_pre_nms_test=50,
                    rpn_post_nms_test=20)
    m.train()
    assert throughput(m, (64, 96), reps=1, warmup=0) > 0
    assert m.training


def test_load_results_reads_a_folder_or_says_what_writes_it(tmp_path, monkeypatch):
    from tinylib import measured

    with pytest.raises(FileNotFoundError, match="collect_frcnn_results"):
        C.load_results(tmp_path)
    for name in C.RESULT_FILES.values():  # a table without its provenance is not read
        pd.DataFrame({"a": [1]}).to_csv(tmp_path / name, index=False)
    with pytest.raises(FileNotFoundError, match="provenance"):
        C.load_results(tmp_path)
    prov = {"command": "tools/train_frcnn_wider.py", "commit": "abc", "date": "2026-01-01", "weights": {},
            "images": {"whole WIDER val subset (before the split)": {"n": 374, "hash": "h"}}, "legacy": True}
    for name in C.RESULT_TABLES.values():
        measured.write_table(name, pd.DataFrame({"a": [1]}), prov, tmp_path)
    monkeypatch.setenv("TINYLIB_BH_RESULTS", str(tmp_path))
    got = C.load_results()
    assert set(got) == set(C.RESULT_FILES) and got["runs"].frame["a"].tolist() == [1]
    assert got["runs"].provenance["legacy"] and "374" in got["runs"].describe()


def test_pretrain_cli_exit_codes(tmp_path, capsys):
    assert P.main([str(tmp_path / "none.yaml")]) == 2
    assert "not found" in capsys.readouterr().err
    cfg = tmp_path / "r.yaml"
    cfg.write_text("name: r\nmodel: {backbone: resnet18}\ndata: {source: nope}\n")
    assert P.main([str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "data.source" in capsys.readouterr().err


def test_scaled_resnets():
    from torchvision.models import resnet50

    from tinylib.models.backbones import build_backbone, resnet50_scaled

    def n(m):
        return sum(p.numel() for p in m.parameters())

    tv = resnet50()
    assert n(resnet50_scaled(width=64)) == n(tv) - n(tv.fc)  # width 64 is ResNet-50 exactly
    r, b = build_backbone("resnet50", width=16), build_backbone("bh_resnet50", width=16)
    assert r.out_channels == b.out_channels == {"res2": 64, "res3": 128, "res4": 256, "res5": 512}
    assert n(b) < n(r)  # bottom-heavy: fewer parameters at the same width
    x = torch.zeros(1, 3, 64, 64)
    assert [f.shape[-1] for f in r(x).values()] == [f.shape[-1] for f in b(x).values()] == [16, 8, 4, 2]
    with pytest.raises(TypeError, match="width"):
        build_backbone("hrnet18", width=16)
    with pytest.raises(ValueError, match="pretrained"):
        build_backbone("resnet50", width=16, pretrained=True)
    det = build_frcnn("bh_resnet50", backbone_width=8, fpn_channels=16, representation_size=32)
    assert det.backbone.body.out_channels["res5"] == 256
    with pytest.raises(ValueError, match="backbone_width"):
        build_frcnn("resnet50", backbone_width=8, pretrained="imagenet")


def test_speed_table_times_detectors_and_backbones_alike():
    from tinylib.models.backbones import build_backbone

    torch.manual_seed(0)
    det = build_frcnn("resnet18", fpn_channels=16, representation_size=32, rpn_pre_nms_test=50,
                      rpn_post_nms_test=20)
    det.train()
    body = build_backbone("resnet18")
    threads = torch.get_num_threads()
    t = C.speed_table({"det": det, "body": body}, (64, 96), reps=2, warmup=1, threads=1)
    assert list(t.index) == ["det", "body"] and (t["images_per_s"] > 0).all()
    assert (t["best_images_per_s"] >= t["images_per_s"] - 1e-9).all()  # the fastest rep is never slower
    assert t.at["det", "relative"] == pytest.approx(1.0)
    assert t.at["body", "relative"] == pytest.approx(t.at["body", "best_images_per_s"] / t.at["det", "best_images_per_s"])
    assert set(t["threads"]) == {1} and set(t["reps"]) == {2} and set(t["input_wh"]) == {"96x64"}
    assert det.training and torch.get_num_threads() == threads  # modes and threads restored
    with pytest.raises(ValueError, match="reps"):
        C.speed_table({"body": body}, (32, 32), reps=0)
    with pytest.raises(ValueError, match="at least one"):
        C.speed_table({}, (32, 32))


def test_seed_order():
    runs = pd.DataFrame({"backbone": ["a", "a", "b", "b"], "init": ["scratch"] * 4, "seed": [0, 1, 0, 1],
                         "images": [374] * 4, "hard": [0.30, 0.40, 0.10, 0.20]})
    assert C.seed_order(runs, "a", "b") == "all above" and C.seed_order(runs, "b", "a") == "all below"
    assert C.seed_order(runs.assign(hard=[0.1, 0.4, 0.2, 0.3]), "a", "b") == "overlap"
    with pytest.raises(KeyError, match="no scratch runs"):
        C.seed_order(runs, "a", "c")


def test_shipped_tables_hold_the_comparison():
    r = C.load_results(C.WEIGHTS_DIR)
    assert r["runs"].images("test") == r["runs"].images("tuning") == 187  # scored on each half apart
    assert not r["runs"].provenance.get("legacy") and not r["by_size"].provenance.get("legacy")
    assert r["tinyperson"].provenance["source_kind"] == "synthetic"
    r = {k: t.frame for k, t in r.items()}
    runs = r["runs"]
    s = C.seed_summary(runs)
    assert C.headline_half(runs) == "test" and set(s["images"]) == {187}
    assert set(runs.loc[runs["half"] == "all", "images"]) == {374}
    assert C.headline_half(r["by_size"]) == "test"
    scratch = s[s["init"] == "scratch"].set_index("backbone")
    assert set(scratch.index) == {"resnet50", "bh_resnet50"} and (scratch["seeds"] == 2).all()
    assert set(r["pretrain"]["backbone"]) == set(r["tinyperson"]["backbone"]) == {"resnet50", "bh_resnet50"}
    assert len(C.pretrain_gain(runs)) == 2
    assert set(r["by_size"]["run"]) == set(runs["run"])
