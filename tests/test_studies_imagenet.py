"""Section 3 on the ImageNet MobileNetV1 x0.25 trunk (issue 25): the trunk and its receptive
fields, frozen vs fine-tuned, the fast window cutter, a 2-step run of every study, the shipped
table's reader/writer and the scorecard claims made from it."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from tinylib import measured, papers, scorecard
from tinylib.analysis.receptive_field import receptive_fields
from tinylib.models.mobilenet import load_imagenet_state
from tinylib.studies import results as R
from tinylib.studies import section3 as S3
from tinylib.studies.trunk import (
    _STAGE_RF,
    TRUNK_STRIDES,
    TrunkFeatures,
    TrunkStudyNet,
    imagenet_available,
    stage_receptive_fields,
    window_side,
)
from tinylib.studies.windows import Scene, cut_windows

TINY = replace(S3.PROTOCOL, steps=2, batch_size=4, seeds=(0, 1), max_train_pos=6, max_test_pos=4,
               train_ap_pos=3, curve_every=1, curve_pos=3, workers=1, test_neg_per_pos=2,
               train_neg_per_pos=1, eval_batch=8, test_neg_per_pos_large=2,
               train_neg_per_pos_large=1, train_ap_pos_large=3, curve_pos_large=3)


# ------------------------------------------------------------------------------ the trunk
def test_stage_receptive_fields_from_the_walker():
    rfs = stage_receptive_fields()
    assert rfs == {"s1": 7, "s2": 19, "s3": 43, "s4": 219, "s5": 315}
    assert rfs == _STAGE_RF  # the constants the windows are sized from
    walked = receptive_fields(TrunkFeatures())
    assert {k: int(v.stride[0]) for k, v in walked.items()} == TRUNK_STRIDES
    assert [window_side((s,)) for s in ("s2", "s3", "s4", "s5")] == [32, 64, 224, 320]
    assert window_side(("s2", "s3", "s4")) == 224


def test_conditions_map_the_paper_to_the_stages():
    small, large = S3.CONDITIONS["small"], S3.CONDITIONS["large"]
    assert S3.tight_stage("small") == "s2" and S3.tight_stage("large") == "s4"
    assert small["2x"].resolution == 2.0 and large["0.5x"].resolution == 0.5
    assert small["2x"].layers == small["s2+s3+s4"].layers == ("s2", "s3", "s4")
    for conds in (small, large):
        effects = {e for c in conds.values() for e in c.effects}
        assert effects == {"context", "foveal", "resolution"}
        assert [c.rf for c in conds.values() if "context" in c.effects] == [19, 43, 219, 315]


@pytest.mark.skipif(not imagenet_available(), reason="ImageNet MobileNetV1 x0.25 weights not in "
                    "the data root (TINYLIB_DATA=../shared/data holds them)")
def test_trunk_loads_the_real_imagenet_weights():
    net = TrunkStudyNet(("s2", "s3", "s4", "s5"), init="imagenet", pretrained=True)
    assert net.loaded
    state = load_imagenet_state()
    # s4 = MobileNet's stage2, first block's depthwise conv
    assert torch.equal(net.trunk.s4[0][0].weight, state["stage2.0.0.weight"])
    assert torch.equal(net.trunk.s1[0][0].weight, state["stage1.0.0.weight"])
    scratch = TrunkStudyNet(("s4",), init="scratch")
    assert not scratch.loaded
    assert not torch.equal(scratch.trunk.s1[0][0].weight, state["stage1.0.0.weight"])


def test_without_the_weights_auto_falls_back_and_true_raises(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path))
    assert not imagenet_available()
    net = TrunkStudyNet(("s3",), init="imagenet", pretrained="auto")
    assert not net.loaded
    with pytest.raises(FileNotFoundError, match="mobilenet_v1_025_imagenet"):
        TrunkStudyNet(("s3",), init="imagenet", pretrained=True)


def _params(mod):
    return {k: v.detach().clone() for k, v in mod.state_dict().items()}


def test_imagenet_init_is_fine_tuned_as_configured_and_scratch_trains_everything():
    torch.manual_seed(0)  # random init and input: unseeded, a draw could leave s4 without gradient (flaky)
    net = TrunkStudyNet(("s2", "s3", "s4"), init="imagenet", pretrained=False)
    assert net.trainable() == {"s1": False, "s2": False, "s3": True, "s4": True, "head": True}
    groups = {g["name"]: g["lr_mult"] for g in net.param_groups()}
    assert groups == {"s3": 0.1, "s4": 1.0, "head": 1.0}
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(not m.training for m in net.train().modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert all(not p.requires_grad for m in bns for p in m.parameters())
    before = _params(net)
    opt = torch.optim.SGD([p for g in net.param_groups() for p in g["params"]], lr=0.1)
    x = torch.randint(0, 255, (4, 3, 64, 64), dtype=torch.uint8)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), torch.tensor([1.0, 0, 1, 0]))
    loss.backward()
    opt.step()
    after = _params(net)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert not any(k.startswith(("trunk.s1.", "trunk.s2.")) for k in changed)
    assert not any("running_" in k for k in changed)  # BatchNorm statistics frozen
    assert any(k.startswith("trunk.s4.") for k in changed) and "head.weight" in changed

    scratch = TrunkStudyNet(("s2", "s3", "s4"), init="scratch")
    assert all(scratch.trainable().values())
    assert all(m.training for m in scratch.modules() if isinstance(m, torch.nn.BatchNorm2d))
    unfrozen = TrunkStudyNet(("s2",), init="imagenet", pretrained=False, freeze=False)
    assert all(unfrozen.trainable().values())
    with pytest.raises(ValueError, match="init"):
        TrunkStudyNet(("s2",), init="coco")
    with pytest.raises(ValueError, match="layers"):
        TrunkStudyNet(("res4",))


def test_fast_cutter_matches_roi_align():
    rng = np.random.default_rng(0)
    import cv2

    img = cv2.GaussianBlur((rng.random((300, 400, 3)) * 255).astype(np.uint8), (0, 0), 3)
    wins = np.array([[200.3, 150.7, 1.0], [180, 120, 0.37], [50, 40, 0.22], [395, 295, 0.6]])
    plan = [(0, *w, 1, "pos") for w in wins]
    for native, out in ((64, 64), (32, 64), (96, 48)):
        ref = cut_windows([Scene(img, np.zeros((0, 4)))], plan, (native, native), (out, out))
        fast = S3.cut_fast(img, wins, native, out)
        assert fast.shape == (4, 3, out, out) and fast.dtype == np.uint8
        assert np.abs(fast.astype(float) - ref.images.numpy()).mean() < 1.5


# ------------------------------------------------------------------------------ a 2-step run
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("section3")
    data = {s: S3.section3_scenes(s, TINY, source="synthetic") for s in ("small", "large")}
    frame = S3.run_section3(out, TINY, data=data, progress=False)
    return out, frame


def test_two_step_run_of_each_study(tiny_run):
    out, frame = tiny_run
    assert set(R.COLUMNS) <= set(frame.columns)
    assert set(frame["effect"]) == {"context", "foveal", "resolution"}
    assert set(frame["init"]) == {"imagenet", "scratch"} and set(frame["size"]) == {"small", "large"}
    assert set(frame["seed"]) == {0, 1}
    assert frame["ap"].between(0, 1).all() and frame["train_ap"].between(0, 1).all()
    assert (frame["data"] == "synthetic").all()
    res = frame[frame["effect"] == "resolution"]
    assert set(res["condition"]) == {"1x", "2x", "0.5x"}
    assert frame["test_positives"].str.startswith("all usable faces").all()
    # the s2+s3+s4 run is shared by the foveal study and resolution's 1x: same numbers
    fov = frame[(frame["effect"] == "foveal") & (frame["condition"] == "s2+s3+s4")]
    one = frame[(frame["effect"] == "resolution") & (frame["condition"] == "1x")]
    assert np.allclose(fov.sort_values(["init", "size", "seed"])["ap"].to_numpy(),
                       one.sort_values(["init", "size", "seed"])["ap"].to_numpy())
    curves = S3.curves(out, TINY)
    assert {"step", "loss", "running_ap", "train_ap"} <= set(curves.columns)
    assert curves.loc[curves["seed"] == 0, "train_ap"].notna().any()


def test_rerun_skips_the_runs_that_are_done(tiny_run, monkeypatch):
    out, frame = tiny_run

    def boom(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(S3, "run_task", boom)
    again = S3.run_section3(out, TINY, progress=False)
    pd.testing.assert_frame_equal(again, frame)


def test_assemble_names_the_runs_not_done(tmp_path):
    with pytest.raises(FileNotFoundError, match="runs not done"):
        S3.assemble(tmp_path, TINY)


# ------------------------------------------------------------------------------ table and claims
def _ship(frame, directory):
    prov = measured.provenance("TINYLIB_DATA=../shared/data python tools/run_studies.py --ship",
                               images={"small_test": ["a/b"]}, notes="test")
    measured.write_table(S3.TABLE, frame, prov, directory=directory)
    return R.read_section3(directory)


def test_table_writer_and_reader_round_trip(tiny_run, tmp_path):
    _, frame = tiny_run
    t = _ship(frame, tmp_path)
    pd.testing.assert_frame_equal(t.frame, frame, check_dtype=False)
    assert "run_studies.py" in t.provenance["command"]
    bad = frame.drop(columns=["train_ap"])
    measured.write_table(S3.TABLE, bad, t.provenance, directory=tmp_path)
    with pytest.raises(ValueError, match="train_ap"):
        R.read_section3(tmp_path)
    with pytest.raises(FileNotFoundError):
        R.read_section3(tmp_path / "nothing")


def _fake(spread=0.5, flat=False):
    """A hand-made table: known gains and spreads (``flat``: every condition alike)."""
    rows = []
    rng = np.random.default_rng(0)
    base = {"s2": 60.0, "s3": 70.0, "s4": 80.0, "s5": 75.0, "s2+s3+s4": 85.0,
            "2x": 88.0, "0.5x": 90.0}
    if flat:
        base = dict.fromkeys(base, 60.0)
    for init in ("imagenet", "scratch"):
        for size in ("small", "large"):
            for cond in S3.CONDITIONS[size].values():
                for eff in cond.effects:
                    for seed in range(5):
                        ap = (base[cond.name] + rng.normal(0, spread)) / 100
                        rows.append({"init": init, "effect": eff, "size": size,
                                     "face": "x".join(map(str, S3.FACES[size])),
                                     "condition": S3._condition_label(eff, size, cond),
                                     "layers": "+".join(cond.layers), "resolution": cond.resolution,
                                     "rf": cond.rf, "rf_image": round(cond.rf / cond.resolution),
                                     "window": cond.window, "seed": seed, "ap": ap, "ap_tuning": ap,
                                     "train_ap": min(1.0, ap + 0.05), "n_train_pos": 3534,
                                     "n_test_pos": 699, "n_test_neg": 4194, "n_tuning_pos": 700,
                                     "test_positives": "all usable faces (699 < 1000)",
                                     "data": "real"})
    return pd.DataFrame(rows)


def test_gains_and_verdicts():
    g = R.section3_gains(_fake()).set_index("key")
    ctx = g.loc["study.context.small.gain"]
    assert (ctx["base"], ctx["other"]) == ("s2", "s4")  # best loose on the tuning half
    assert ctx["gain"] == pytest.approx(20.0, abs=1.0) and ctx["outside"] and ctx["same_sign"]
    assert g.loc["study.context.large.gain", "other"] == "s5"  # the only larger RF
    assert g.loc["study.foveal.small.drop", "gain"] == pytest.approx(5.0, abs=1.0)
    assert g.loc["study.resolution.small.gain", "gain"] == pytest.approx(3.0, abs=1.0)
    assert g.loc["study.resolution.large.gain.scratch", "other"] == "0.5x"
    assert g.loc["study.context.small.overcontext", "gain"] == pytest.approx(-5.0, abs=1.0)
    assert "study.context.small.gain.scratch" in g.index
    noisy = R.section3_gains(_fake(spread=5.0, flat=True)).set_index("key")
    assert not noisy.loc["study.context.small.gain", "outside"]
    assert "inside the seed spread" in noisy.loc["study.context.small.gain", "verdict"]


def test_claims_record_from_the_table(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLIB_BUILD", str(tmp_path / "build"))
    t = _ship(_fake(), tmp_path)
    claims = R.section3_claims(t)
    keys = {c["key"] for c in claims}
    for effect, size, names in (("context", "small", ("tight", "best_loose", "gain", "overcontext")),
                                ("context", "large", ("tight", "best_loose", "gain")),
                                ("foveal", "small", ("foveal", "last_only", "drop")),
                                ("resolution", "small", ("1x", "2x", "gain")),
                                ("resolution", "large", ("1x", "0.5x", "gain"))):
        for n in names:
            assert f"study.{effect}.{size}.{n}" in keys
            assert f"study.{effect}.{size}.{n}.scratch" in keys
    for c in claims:
        row = scorecard.record(**c, table=t)
        assert row.status == "not comparable"
        assert "init:" in row.note and "positives" in row.note and "Verdict" in row.note
        assert "run_studies.py" in row.note  # the table's provenance
    by = {c["key"]: c for c in claims}
    assert by["study.context.small.gain"]["paper"] == papers.value("study.context.small.gain")
    assert by["study.context.small.gain.scratch"]["paper"] == papers.value("study.context.small.gain")
    assert by["study.foveal.small.foveal"]["paper"] == 68.5
    with pytest.raises(ValueError, match="shipped table"):
        scorecard.record("study.context.small.gain", 1.0)


def test_figures_draw_from_the_table():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = _fake()
    for fn in (R.fig4_context, R.fig5_foveal, R.fig7_resolution):
        axes = fn(frame)
        assert len(axes) >= 1
        plt.close("all")
    curves = pd.DataFrame({"init": "imagenet", "size": "small", "condition": "s4", "seed": 0,
                           "step": [1, 2, 3], "loss": 0.5, "running_ap": [0.6, 0.7, 0.8],
                           "train_ap": [np.nan, np.nan, 0.9]})
    R.plot_curves(curves)
    plt.close("all")


def test_shipped_table_is_complete():
    """The shipped table is complete: both inits, 5 seeds, real faces, every condition, and
    every test set at the protocol's minimum of positives or all usable faces."""
    t = R.read_section3()
    f = t.frame
    assert set(f["init"]) == {"imagenet", "scratch"}
    assert f.groupby(["init", "effect", "size", "condition"])["seed"].nunique().eq(5).all()
    assert (f["data"] == "real").all()
    assert json.dumps(t.provenance)  # serialisable
    assert len(R.section3_claims(t)) > 20
    assert set(f["condition"]) >= {"s2", "s3", "s4", "s5", "s2+s3+s4", "1x", "2x", "0.5x"}
    assert f["test_positives"].str.match(r"(>= 1000|all usable faces)").all()
    curves = R.read_section3_curves().frame
    assert curves.loc[curves["seed"] == 0, "train_ap"].notna().any()


# ------------------------------------------------------------------------------ live samples
def test_live_sample_runs_only_the_conditions_asked_for_and_records_samples(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLIB_BUILD", str(tmp_path / "build"))
    sample = S3.live_sample({"small": ("s2", "s4")}, proto=TINY, source="synthetic")
    assert list(sample["condition"]) == ["s2", "s4"] and set(sample["init"]) == {"imagenet"}
    assert sample["ap"].between(0, 100).all() and (sample["seeds"] == 2).all()
    assert (sample["data"] == "synthetic").all() and (sample["steps"] == TINY.steps).all()
    assert [t["cond"] for t in S3.tasks(TINY, ("small",), ("imagenet",), {"small": ("s4",)})] == ["s4", "s4"]
    claims = R.sample_claims(sample, [("study.context.small.gain", "s2", "s4"),
                                      ("study.foveal.small.drop", "s4", "s2+s3+s4")])  # 2nd: not run
    assert [c["key"] for c in claims] == ["study.context.small.gain"]
    c = claims[0]
    assert c["ours"] == round(sample.at[1, "ap"] - sample.at[0, "ap"], 1)
    row = scorecard.record(**c)
    assert row.key == "study.context.small.gain.sample" and row.status == "not comparable"
    assert c["sample"] == int(sample["n_test_images"].iloc[0]) > 0  # photos, as the note says
    assert "live sample" in row.note and "synthetic" in row.note
