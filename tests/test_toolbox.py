"""The toolbox measurement (issue #13, chapter 10): Scale Match as a training transform, the
recipe's toolbox settings wired into the training data, the technique recipes, test-time
augmentation inside the WIDER evaluation, and the table with its gains, spreads and costs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tinylib.boxes import sqrt_area
from tinylib.compare import bottom_heavy as C
from tinylib.compare import toolbox as T
from tinylib.data import augment as A
from tinylib.data import scale_match as SM
from tinylib.frcnn import detect as D
from tinylib.frcnn import train as TR
from tinylib.papers import SURVEY_CLAIMS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tinylib.data.synthetic import make_world

    return make_world(4, 3, image_size=(256, 192), seed=2, root=tmp_path_factory.mktemp("tbx_world") / "w")


# ------------------------------------------------------------------------------ Scale Match
class _Sizes:
    """A dataset of annotations only: image i holds faces of the given sizes."""

    def __init__(self, sizes):
        self.sizes = sizes

    def __len__(self):
        return len(self.sizes)

    def target(self, i):
        s = np.asarray(self.sizes[i], float)
        return {"boxes": np.stack([np.zeros_like(s), np.zeros_like(s), s, s], 1).reshape(-1, 4),
                "ignore": np.zeros(len(s), bool)}


def test_scale_match_transform_reproduces_the_target_histogram():
    rng = np.random.default_rng(0)
    sizes = [np.exp(np.log(rng.uniform(30, 120)) + 0.25 * rng.standard_normal(rng.integers(1, 12)))
             for _ in range(300)]
    sm = SM.ScaleMatch.for_dataset(_Sizes(sizes), 18.0, 17.4, min_factor=0.01, max_factor=10)
    assert sm.within == pytest.approx(SM.within_spread(sizes))
    after = []
    for k in range(3):  # three epochs of draws
        for i, s in enumerate(sizes):
            after.append(s * sm.factor(s, np.random.default_rng([k, i])))
    after = np.concatenate(after)
    mu, sigma = SM.lognormal_params(18.0, 17.4)
    assert np.log(after).mean() == pytest.approx(mu, abs=0.05)
    assert np.log(after).std() == pytest.approx(sigma, rel=0.08)
    assert SM.size_summary(after)["share_le20"] == pytest.approx(0.70, abs=0.04)


def test_scale_match_rescales_image_and_boxes_and_clips_its_factor():
    img = np.zeros((100, 200, 3), np.uint8)
    t = {"boxes": np.array([[10, 10, 90, 90]], np.float32), "ignore": np.zeros(1, bool)}
    sm = SM.ScaleMatch(18.0, 17.4, 0.0, min_factor=0.25, max_factor=4.0)
    out, ot = sm(img, t, np.random.default_rng(0))
    f = out.shape[1] / 200
    assert 0.25 <= f <= 4.0 and ot["scale"] == pytest.approx(f, rel=0.02)
    assert sqrt_area(ot["boxes"])[0] == pytest.approx(80 * f, rel=0.03)
    # an 80 px face brought to ~18 px needs ~0.22x: the factor stops at min_factor
    assert np.median([sm.factor([80.0], np.random.default_rng(i)) for i in range(50)]) == pytest.approx(0.25)
    ign = {**t, "ignore": np.ones(1, bool)}  # no counted face: a log-uniform factor in the range
    fs = [sm.factor(SM._target_sizes(ign), np.random.default_rng(i)) for i in range(200)]
    assert min(fs) >= 0.25 and max(fs) <= 4.0 and np.median(fs) == pytest.approx(1.0, abs=0.35)
    with pytest.raises(ValueError, match="min_factor"):
        SM.ScaleMatch(18, 17, min_factor=2, max_factor=1)


# ----------------------------------------------------------------- the recipe's toolbox data
def _data(world, **kw):
    return {"source": "wider", "root": str(world), "crop": 96, "scales": [1.0, 2.0], **kw}


def test_toolbox_settings_reach_the_training_samples(world):
    plain = TR.build_train_set(_data(world), seed=0)
    assert type(plain).__name__ == "WiderFaceDataset"
    cp = TR.build_train_set(_data(world, copy_paste={"count": [2, 2], "sizes": [8, 12], "bank_min_size": 4,
                                                     "bank_size": 20}, oversample=2.0), seed=0)
    assert isinstance(cp, A.Oversampled)
    steps = [type(s).__name__ for s in cp.dataset.transform.transforms]
    assert steps == ["RandomRescale", "RandomCrop", "CopyPaste", "HorizontalFlip"]
    pasted = 0
    for i in range(len(cp)):
        image, t = cp[i]
        assert image.shape == (96, 96, 3) and len(t["pasted"]) == len(t["boxes"])
        s = sqrt_area(t["boxes"][t["pasted"]])
        assert ((s > 4) & (s < 16)).all()  # 8..12 px faces inside a context crop, after the crop
        pasted += int(t["pasted"].sum())
    assert pasted > 0
    # a crop as large as the images: a random 96-px crop may hold no face at all, ignored or not
    snip = TR.build_train_set(_data(world, crop=512, snip={1.0: [1000, 2000], 2.0: [1000, 2000]}), seed=0)
    image, t = snip[0]
    assert [type(s).__name__ for s in snip.transform.transforms][:2] == ["RandomRescale", "ScaleAwareIgnore"]
    assert len(t["boxes"]) == 0 or t["ignore"].all()  # every face is out of range
    st = T.sample_stats(snip, 10)
    assert st["crops"] == len(snip) and st["faces"] == 0 and st["ignored"] > 0 and np.isnan(st["median_px"])
    st = T.sample_stats(cp, 3)
    assert 0 < st["pasted"] <= 2 and st["faces"] >= st["pasted"] and 0 < st["share_le20"] <= 1
    sm = TR.build_train_set(_data(world, scale_match={"mean": 10.0, "std": 4.0}), seed=0)
    assert type(sm.transform.transforms[0]).__name__ == "ScaleMatch"  # in place of the rescale
    assert "RandomRescale" not in [type(s).__name__ for s in sm.transform.transforms]


def test_toolbox_settings_are_checked(world):
    with pytest.raises(ValueError, match=r"unknown data.copy_paste settings \['size'\]"):
        TR.build_train_set(_data(world, copy_paste={"size": [6, 20]}))
    with pytest.raises(ValueError, match="data.scale_match must be a mapping"):
        TR.build_train_set(_data(world, scale_match=18))
    with pytest.raises(ValueError, match="data.snip must map an image scale"):
        TR.build_train_set(_data(world, snip=[6, 20]))
    with pytest.raises(ValueError, match="data.oversample must be >= 0"):
        TR.build_train_set(_data(world, oversample=-1))


# ------------------------------------------------------------------------------- recipes
def test_every_technique_recipe_is_the_baseline_plus_its_overrides():
    base = TR.load_config(REPO / T.BASE_RECIPE)
    before = json.dumps(base, sort_keys=True)
    for name, t in T.TECHNIQUES.items():
        r = T.variant_recipe(base, name)
        assert r["name"] == f"toolbox_frcnn_cpu_{name}"
        TR._data_settings(r["data"])  # every data setting is known
        TR.build_model(r["model"]) if name in ("single_level", "ssh_context") else None
        diff = {sec for sec in ("model", "data", "train") if r[sec] != base[sec]}
        assert diff == set(t.get("overrides", {})), name
        assert t["kind"] in ("train", "model", "test") and name in SURVEY_CLAIMS
        assert (t["kind"] == "test") == ("tta" in t)
    assert json.dumps(base, sort_keys=True) == before  # the base is not changed
    assert T.variant_recipe(base, "baseline")["model"] == base["model"]
    with pytest.raises(KeyError, match="unknown technique 'mosaic'"):
        T.variant_recipe(base, "mosaic")
    assert base["model"]["backbone"] == "resnet50" and base["model"]["backbone_width"] == 16
    start = TR.load_config(REPO / T.START_RECIPE)  # the same detector as the start detector's recipe
    assert start["model"] == base["model"] and start["data"] == base["data"]
    assert {v["item"] for v in T.TECHNIQUES.values()} == {1, 2, 3, 4, 5, 6}  # the issue's six
    assert set(SURVEY_CLAIMS) == set(T.TECHNIQUES)  # the survey beside every row


def test_the_scheduler_has_every_run_and_scoring(tmp_path):
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import train_toolbox
    finally:
        sys.path.remove(str(REPO / "tools"))
    todo = train_toolbox.tasks(tmp_path, "python", seeds=(0, 1))
    names = [t["name"] for t in todo]
    trained = [k for k, v in T.TECHNIQUES.items() if v["kind"] != "test"]
    for seed in (0, 1):
        for tech in ["baseline", *trained]:
            assert f"{tech}_s{seed}" in names and f"eval {tech}_s{seed}" in names
            assert TR.load_config(tmp_path / f"{tech}_s{seed}" / "recipe.yaml") == \
                T.variant_recipe(TR.load_config(REPO / T.BASE_RECIPE), tech)
        assert sum(n.startswith("tta ") and n.endswith(f"baseline_s{seed}") for n in names) == 5
    assert len(set(names)) == len(names)
    assert all(set(t["after"]) <= set(names) for t in todo)
    by = {t["name"]: t for t in todo}  # the start detector is chapter 08's run, and every run starts from it
    assert by["base"]["after"] == ["pretrain_resnet50"] and T.START_RECIPE in by["base"]["cmd"]
    assert f"model.init_weights={tmp_path / 'base' / 'weights.pt'}" in by["snip_s1"]["cmd"]
    assert by["snip_s1"]["after"] == ["base"]


# ----------------------------------------------------------------- test-time augmentation
def test_tta_inside_the_wider_evaluation(world):
    torch.manual_seed(0)
    from tinylib.frcnn.model import build_frcnn

    model = build_frcnn("resnet18", fpn_channels=16, representation_size=32, rpn_pre_nms_test=100,
                        rpn_post_nms_test=50, score_thresh=0.0).eval()
    kw = {"device": "cpu", "score_threshold": 0.0, "batch_size": 1}
    plain = D.predict_wider(model, world, max_images=2, detector_kw=kw)
    one = D.predict_wider(model, world, max_images=2, detector_kw=kw, tta=((1.0,), False))
    assert plain.keys() == one.keys()
    for k in plain:  # one plain pass, merged at the model's own NMS: the same boxes
        assert np.allclose(plain[k], one[k], atol=1e-4)
    flip = D.predict_wider(model, world, max_images=2, detector_kw=kw, tta=((1.0,), True))
    for k in flip:
        assert len(flip[k]) >= len(plain[k]) or len(flip[k]) == model.config["detections_per_img"]
        assert (flip[k][:, 0] >= -1e-3).all() and (flip[k][:, 2] > 0).all()


# -------------------------------------------------------------------------------- table
def _write_runs(out: Path):
    """Two seeds of the baseline, copy-paste (a real gain) and SNIP (inside the spread), and
    test-time scorings of each baseline."""
    def run(name, hard, le20, sps, spi, images=374):
        d = out / name
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"images": images, "easy": 0.5, "medium": 0.4, "hard": hard,
                                                    "le20": le20, "eval_seconds": spi * images}))
        pd.DataFrame({"step": [1, 2, 3], "seconds": [sps, 2 * sps, 3 * sps]}).to_csv(d / "history.csv", index=False)
    run("baseline_s0", 0.20, 0.05, 0.5, 0.5)
    run("baseline_s1", 0.22, 0.06, 0.5, 0.5)
    run("copy_paste_s0", 0.26, 0.09, 0.6, 0.5)
    run("copy_paste_s1", 0.27, 0.10, 0.6, 0.5)
    run("snip_s0", 0.19, 0.05, 0.5, 0.5)
    run("snip_s1", 0.225, 0.06, 0.5, 0.5)
    run("mosaic_s0", 0.9, 0.9, 1, 1)  # not a technique of the table: left out
    for seed, base in ((0, 0.20), (1, 0.21)):
        for setting, (hard, secs) in {"1x": (base, 50.0), "1x+2x": (base + 0.05, 250.0)}.items():
            f = T.tta_result_path(out / f"baseline_s{seed}", setting)
            f.write_text(json.dumps({"tta": setting, "images": 100, "easy": 0.5, "medium": 0.4, "hard": hard,
                                     "le20": 0.05, "eval_seconds": secs}))


def test_table_gains_spreads_and_costs(tmp_path):
    _write_runs(tmp_path)
    runs = T.collect_toolbox(tmp_path)
    assert set(runs["technique"]) == {"baseline", "copy_paste", "snip", "tta_1x", "tta_1x2x"}
    table = T.toolbox_table(runs).set_index("technique")
    assert list(table.index) == ["copy_paste", "snip", "tta_1x2x"]  # TECHNIQUES' order
    cp, snip, tta = table.loc["copy_paste"], table.loc["snip"], table.loc["tta_1x2x"]
    assert cp["hard_gain"] == pytest.approx(0.265 - 0.21) and cp["hard_spread"] == pytest.approx(0.02)
    assert cp["hard_outside"] and cp["le20_outside"]
    assert snip["hard_gain"] == pytest.approx(-0.0025) and not snip["hard_outside"]  # inside the spread
    assert (cp["hard_verdict"], snip["hard_verdict"]) == ("win", "inside the spread")
    worse = runs.assign(hard=np.where(runs["technique"] == "copy_paste", 0.1, runs["hard"]))
    assert T.toolbox_table(worse).set_index("technique").at["copy_paste", "hard_verdict"] == "loss"
    assert cp["train_cost"] == pytest.approx(1.2) and cp["cost_ratio"] == pytest.approx(1.2)  # paid in training
    assert cp["test_cost"] == pytest.approx(1.0)
    assert tta["hard_gain"] == pytest.approx(0.05) and tta["images"] == 100  # against tta_1x, same images
    assert tta["cost_ratio"] == pytest.approx(5.0) and tta["train_cost"] == 1.0  # paid at test time
    assert not tta["hard_outside"] or tta["hard_spread"] < 0.05
    with pytest.raises(ValueError, match="no toolbox runs"):
        T.toolbox_table(runs.iloc[:0])


def test_table_reads_the_test_half_when_the_scorings_have_halves(tmp_path):
    _write_runs(tmp_path)
    assert T.headline_half(T.collect_toolbox(tmp_path)) is None  # no halves: the whole subset
    for f in sorted(tmp_path.glob("*/*.json")):  # add halves: the test half reverses copy-paste's gain
        d = json.loads(f.read_text())
        test_hard = d["hard"] - (0.1 if f.parent.name.startswith("copy_paste") else 0.0)
        d["halves"] = {"tuning": {**{k: d[k] for k in ("easy", "medium", "hard", "le20")}, "images": d["images"] // 2},
                       "test": {**{k: d[k] for k in ("easy", "medium", "le20")}, "hard": test_hard,
                                "images": d["images"] - d["images"] // 2}}
        f.write_text(json.dumps(d))
    runs = T.collect_toolbox(tmp_path)
    assert set(runs["half"]) == {"all", "tuning", "test"} and T.headline_half(runs) == "test"
    assert len(runs[runs["half"] == "all"]) == len(runs) // 3
    test = T.toolbox_table(runs).set_index("technique")
    assert test.at["copy_paste", "hard_gain"] == pytest.approx(0.055 - 0.1) and test.at["copy_paste", "images"] == 187
    every = T.toolbox_table(runs, half="all").set_index("technique")
    assert every.at["copy_paste", "hard_gain"] == pytest.approx(0.055) and every.at["copy_paste", "images"] == 374
    assert T.toolbox_table(runs, half="tuning").set_index("technique").at["tta_1x2x", "images"] == 50


def test_outside_spread_rule():
    assert C.outside_spread(0.05, 0.02, 2) and not C.outside_spread(0.01, 0.02, 2)
    assert not C.outside_spread(0.5, 0.0, 1)  # one seed never counts


def test_verdict_table_and_gain_text(tmp_path):
    _write_runs(tmp_path)
    table = T.toolbox_table(T.collect_toolbox(tmp_path))
    v = T.verdict_table(table)
    assert list(v.index) == list(table["label"])
    cp = v.loc[T.TECHNIQUES["copy_paste"]["label"]]
    assert cp["hard gain"] == "+0.055" and cp["hard verdict"] == "win" and cp["cost"] == "1.20x train"
    snip = v.loc[T.TECHNIQUES["snip"]["label"]]
    assert snip["hard gain"] == "\u22120.003" and snip["hard verdict"] == "no win (inside the spread)"
    assert v.loc[T.TECHNIQUES["tta_1x2x"]["label"], "cost"] == "5.00x test"
    assert T.fmt_gain(-0.0003) == "0.000" and T.fmt_gain(0.0451) == "+0.045" and T.fmt_gain(-0.05) == "\u22120.050"
    assert T.gains_text(table, "copy_paste") == "hard +0.055, \u2264 20 px " + T.fmt_gain(table.iloc[0]["le20_gain"])


def test_binned_share_weights_bins_by_faces():
    share = pd.Series([0.0, 0.5, 1.0], index=["0-8", "8-12", ">64"])
    faces = pd.Series([10, 30, 0], index=share.index)
    assert T.binned_share(share, faces) == pytest.approx(15 / 40)
    assert T.binned_share(share, faces, 8) == pytest.approx(0.5)  # the empty >64 bin does not count
    assert T.binned_share(share, faces, 0, 8) == pytest.approx(0.0)
    assert np.isnan(T.binned_share(share, faces, 64))


def test_shipped_toolbox_table(tmp_path, monkeypatch):
    runs_t = T.load_toolbox()
    assert runs_t.provenance.get("legacy") and runs_t.images("whole WIDER val subset (before the split)") == 374
    table = T.toolbox_table(runs_t)  # the Table or its frame
    runs = runs_t.frame
    assert table.equals(T.toolbox_table(runs))
    assert {v["item"] for k, v in T.TECHNIQUES.items() if k in set(table["technique"])} == {1, 2, 3, 4, 5, 6}
    assert (table["seeds"] >= 2).all()  # every technique against the baseline with two seeds
    assert (runs.loc[runs["reference"] == "baseline", "images"] == 374).all()  # the whole val subset
    monkeypatch.setenv("TINYLIB_TOOLBOX_RESULTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="tools/train_toolbox.py"):
        T.load_toolbox()


def test_gain_vs_cost_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinylib.viz import toolbox_gain_cost

    _write_runs(tmp_path)
    table = T.toolbox_table(T.collect_toolbox(tmp_path))
    axes = toolbox_gain_cost(table)
    assert len(axes) == 2 and axes[0].get_xscale() == "log"
    marks = [ln for ln in axes[0].get_lines() if ln.get_label() in set(table["label"])]
    assert len(marks) == len(table)  # one marker per technique ...
    filled = {ln.get_label(): ln.get_markerfacecolor() != "white" for ln in marks}
    assert filled == dict(zip(table["label"], table["hard_outside"]))  # ... filled when outside the spread
    plt.close("all")
