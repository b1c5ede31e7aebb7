"""Detectors side by side on a val subset: sampling, cached HR candidates, the ablation
selections, best settings, recall by size, and the static outcome drawing."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from tinylib import papers, viz  # noqa: E402
from tinylib.compare import wider_subset as C  # noqa: E402
from tinylib.eval import widerface as W  # noqa: E402
from tinylib.hr.detect import Detector, RawDetections  # noqa: E402
from tinylib.hr.model import build_hr  # noqa: E402
from tinylib.hr.templates import Templates  # noqa: E402


def _gt():
    boxes = {"e/a": np.array([[10, 10, 20, 20], [50, 50, 8, 8]], float),
             "e/b": np.array([[5, 5, 30, 30]], float)}
    return W.SimpleEvalGT(boxes=boxes)


def test_spread_is_even_and_covers_both_ends():
    assert C.spread(list(range(10)), 4) == [0, 3, 6, 9]
    assert C.spread([1, 2], None) == [1, 2] and C.spread([1, 2], 5) == [1, 2]


def test_subset_images_lists_present_images_in_gt_order(tmp_path):
    gt = _gt()
    base = tmp_path / "widerface" / "WIDER_val" / "images" / "e"
    base.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(base / "b.jpg")
    assert list(C.subset_images(gt, tmp_path)) == ["e/b"]
    with pytest.raises(FileNotFoundError, match="no WIDER val image"):
        C.subset_images(W.SimpleEvalGT(boxes={"x/y": np.zeros((0, 4))}), tmp_path)


def test_compare_labels_the_subset_and_best_setting_picks_hard():
    gt = _gt()
    scores = {"e/a": [[0.9], [0.8]], "e/b": [[0.7]]}  # distinct: the official min-max needs a range
    perfect = {k: np.hstack([b, scores[k]]) for k, b in gt.boxes.items()}
    half = {"e/a": perfect["e/a"][:1], "e/b": perfect["e/b"]}
    table, results = C.compare({"p @ 1x": half, "p @ 2x": perfect, "q": half}, gt, ["e/a", "e/b"])
    assert table.attrs["eval_set"] == "WIDER val subset (2 images)"
    assert table.loc["p @ 2x", "hard"] == pytest.approx(1.0)
    best = C.best_per_detector(table)
    assert best.loc["p", "setting"] == "2x" and best.loc["q", "setting"] == ""
    with pytest.raises(KeyError, match="no predictions"):
        C.compare({"x": {"e/a": perfect["e/a"]}}, gt, ["e/a", "e/b"])


def test_recall_by_size_bins_faces():
    gt = _gt()
    preds = {"e/a": np.array([[10, 10, 20, 20, 0.9]]), "e/b": np.zeros((0, 5))}
    r = C.recall_by_size(preds, gt, ["e/a", "e/b"], score_threshold=0.5, bins=(0, 10, 25, 1e9))
    assert r["faces"].tolist() == [1, 1, 1] and r["recall"].tolist() == [0.0, 1.0, 0.0]


def _raw():
    # template 0 is A, 1 is B; candidates on levels 1 and 2
    boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 44, 44], [60, 60, 64, 64]], np.float32)
    return RawDetections(boxes, np.array([0.9, 0.8, 0.7, 0.6], np.float32), np.array([0, 0, 1, 1]),
                         np.array([1.0, 2.0, 1.0, 2.0]), [1.0, 2.0], [0], [1])


def test_routing_keeps_b_templates_only_on_upsampled_levels():
    raw = _raw()
    ab, _ = raw.select(0.0, 0.3)
    assert len(ab) == 3  # the B candidate found at 1x is pruned
    full, _ = raw.select(0.0, 0.3, routing="full")
    assert len(full) == 4
    a_only, _ = raw.select(0.0, 0.3, use_b=False)
    assert len(a_only) == 2
    sel = C.hr_select({"e/a": raw}, max_scale=1.0)
    assert len(sel["e/a"]) == 1  # only the A candidate at 1x
    with pytest.raises(ValueError, match="routing"):
        raw.select(routing="bogus")
    assert set(C.ablation_predictions({"e/a": raw})) == set(C.ABLATIONS) == set(C.ABLATION_KEYS)
    assert len(set(C.ABLATION_KEYS.values())) == len(C.ABLATION_KEYS)


def test_hr_raw_cache_round_trips(tmp_path):
    torch.manual_seed(0)
    model = build_hr(Templates([[12, 14], [24, 28], [8, 10]], [1, 1, 2]), pretrained=False)
    img = tmp_path / "e" / "a.jpg"
    img.parent.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(img)
    det = Detector(model, score_threshold=0.0, candidate_threshold=0.0, max_side=200, routing="full")
    first = C.hr_raw(det, {"e/a": img}, weights_id="w", cache=tmp_path / "cache")
    again = C.hr_raw(det, {"e/a": img}, weights_id="w", cache=tmp_path / "cache")
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 1
    for f in ("boxes", "scores", "template", "level"):
        np.testing.assert_array_equal(getattr(first["e/a"], f), getattr(again["e/a"], f))
    assert again["e/a"].scales == first["e/a"].scales


def test_outcome_follows_the_wider_rules_and_draws():
    gt = np.array([[10, 10, 20, 20], [50, 50, 20, 20], [80, 80, 20, 20]], float)
    dets = np.array([[10, 10, 20, 20, 0.9], [11, 11, 20, 20, 0.8], [200, 200, 5, 5, 0.7],
                     [80, 80, 20, 20, 0.95], [50, 50, 20, 20, 0.2]])
    out = viz.outcome(dets, gt, kept_idx=[0, 1], score_threshold=0.5)
    assert list(out.label) == ["ignored", "tp", "fp", "fp"]  # sorted by score; face 2 not kept
    assert out.counts() == {"tp": 1, "fp": 2, "missed": 1, "faces": 2}
    fig, ax = plt.subplots()
    viz.draw_outcome(ax, np.zeros((120, 120, 3), np.uint8), out, gt)
    assert len(ax.patches) == 5 and "1 found" in ax.get_title()
    plt.close(fig)


def test_weights_id_follows_content_not_size(tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.write_bytes(b"x" * 10)
    b.write_bytes(b"y" * 10)
    assert C.weights_id(a) != C.weights_id(b) and len(C.weights_id(a)) == 16
    b.write_bytes(b"x" * 10)
    assert C.weights_id(a) == C.weights_id(b)


def test_all_peer_predictions_skips_unavailable_peers(monkeypatch, tmp_path):
    from tinylib import peers

    monkeypatch.setattr(peers, "available", lambda: {"haar": None, "yunet": "no weights"})
    calls = []
    monkeypatch.setattr(C, "peer_predictions",
                        lambda name, images, progress=False, **o: calls.append((name, o)) or {})
    out = C.all_peer_predictions({"e/a": tmp_path / "a.jpg"}, settings=1)
    assert list(out) == ["haar @ 1x"] and calls == [("haar", {"upsample": 1})]
    assert len(C.all_peer_predictions({"e/a": tmp_path / "a.jpg"})) == len(C.PEER_SETTINGS["haar"])


# ------------------------------------------------------------ the shipped measured tables
def _detectors_frame():
    import pandas as pd

    rows = []
    for det, setting, chosen, aps in (("hr", "A+B, vote 0.4", True, (0.7, 0.6, 0.5)),
                                      ("hr", "A+B, vote none", False, (0.69, 0.59, 0.49)),
                                      ("haar", "1x", True, (0.4, 0.3, 0.2))):
        for half, shift, n in (("tuning", 0.05, 188), ("test", 0.0, 186)):
            rows.append({"detector": det, "setting": setting, "half": half, "images": n,
                         **{s: a + shift for s, a in zip(W.SETTINGS, aps)},
                         "detections": 10, "chosen": chosen, "seconds": 1.0})
    return pd.DataFrame(rows)


def test_measured_tables_put_the_test_half_first_and_the_tuning_half_beside_it():
    f = _detectors_frame()
    wide = C.halves_side_by_side(f, ["detector", "setting"])
    assert list(wide.columns.get_level_values(0).unique()) == ["test", "tuning", "chosen on tuning"]
    assert list(wide.index) == [("hr", "A+B, vote 0.4"), ("hr", "A+B, vote none"), ("haar", "1x")]
    assert wide.loc[("hr", "A+B, vote none"), ("tuning", "hard")] == pytest.approx(0.54)
    assert wide[("chosen on tuning", "")].tolist() == [True, False, True]
    table = C.detectors_table(f)
    assert list(table.index) == [("hr", "A+B, vote 0.4"), ("haar", "1x")]  # chosen settings only
    assert table.loc[("hr", "A+B, vote 0.4"), (C.PAPER_COLUMN, "hard")] == papers.value("hr.wider_subset.hard")
    assert np.isnan(table.loc[("haar", "1x"), (C.PAPER_COLUMN, "hard")])  # nothing published
    claims = {c["key"]: c for c in C.subset_claims(f)}
    assert set(claims) == {f"{p}.{s}" for p in ("hr.wider_subset", "eval.peers.haar.wider_subset")
                           for s in W.SETTINGS}
    hard = claims["hr.wider_subset.hard"]
    assert hard["ours"] == 0.5 and "test half (186 images)" in hard["note"] and "0.550" in hard["note"]
    with pytest.raises(ValueError, match="lacks the column"):
        C.halves_side_by_side(f.drop(columns="half"), "detector")


def test_ablation_rows_keep_their_order_and_keys():
    import pandas as pd

    rows = [{"selection": sel, "half": half, "images": 2, "easy": 0.5, "medium": 0.5,
             "hard": h + (0.1 if half == "tuning" else 0), "detections": 1, "key": C.ABLATION_KEYS[sel]}
            for half in ("tuning", "test") for sel, h in zip(C.ABLATIONS, (0.5, 0.55, 0.54, 0.45, 0.3, 0.2))]
    f = pd.DataFrame(rows)
    table = C.ablation_table(f)
    assert list(table.index) == list(C.ABLATIONS)
    assert table.iloc[0][("paper (Table 1)", "hard")] == papers.value("hr.wider_subset.ablation.full.hard")
    claims = C.ablation_claims(f)
    assert [c["key"] for c in claims] == [f"hr.wider_subset.ablation.{k}.hard" for k in C.ABLATION_KEYS.values()]
    assert claims[1]["ours"] == 0.55 and "tuning half (2 images) 0.650" in claims[1]["note"]


# ------------------------------------------------------------------ the explorer's threshold
def test_operating_curve_counts_hits_and_false_boxes_per_threshold():
    gt = _gt()  # e/a: two faces, e/b: one face (every face kept: SimpleEvalGT's default)
    preds = {"e/a": np.array([[10, 10, 20, 20, 0.9], [50, 50, 8, 8, 0.4], [200, 200, 9, 9, 0.7]], float),
             "e/b": np.array([[5, 5, 30, 30, 0.2], [100, 100, 9, 9, 0.95]], float)}
    p, r = W.operating_curve(preds, gt, [0.1, 0.5, 0.8, 0.99])
    # >= 0.1: 5 boxes, 3 hits; >= 0.5: 3 boxes (0.9 hit, 0.7 false, 0.95 false); >= 0.8: 2 boxes, 1 hit
    assert p[:3] == pytest.approx([3 / 5, 1 / 3, 1 / 2]) and np.isnan(p[3])
    assert r == pytest.approx([1.0, 1 / 3, 1 / 3, 0.0])
    assert W.operating_point(preds, gt, 0.5) == pytest.approx((p[1], r[1]))
    one, _ = W.operating_curve(preds, gt, [0.1], subset=["e/b"])
    assert one[0] == pytest.approx(1 / 2)


def test_operating_table_chooses_on_the_tuning_half_and_the_explorer_reads_it(tmp_path):
    from tinylib import measured

    gt = _gt()
    preds = {"e/a": np.array([[10, 10, 20, 20, 0.9], [50, 50, 8, 8, 0.4], [200, 200, 9, 9, 0.3]], float),
             "e/b": np.array([[5, 5, 30, 30, 0.6], [100, 100, 9, 9, 0.55]], float)}
    t = C.operating_table(preds, gt, {"tuning": ["e/a"], "test": ["e/b"]}, thresholds=(0.25, 0.35, 0.5, 0.95))
    tune = t[t["half"] == "tuning"].set_index("threshold")
    assert tune.at[0.25, "precision"] == pytest.approx(2 / 3) and tune.at[0.35, "precision"] == 1.0
    assert tune.at[0.35, "detections_per_image"] == 2.0
    # the lowest threshold reaching precision 0.8 on tuning, marked on both halves
    assert set(t.loc[t["chosen"], "threshold"]) == {0.35} and t["chosen"].sum() == 2
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"the weights")
    assert C.explorer_threshold(weights, tmp_path)[0] == C.FALLBACK_THRESHOLD  # no table: the fallback
    assert "no shipped operating point" in C.explorer_threshold(weights, tmp_path)[1]
    measured.write_table("hr_operating_point", t, measured.provenance(
        "cmd", weights=[weights], images={"tuning": ["e/a"]}), directory=tmp_path)
    value, why = C.explorer_threshold(weights, tmp_path)
    assert value == 0.35 and "first reaches" in why and "hr_operating_point" in why
    other = tmp_path / "other.pt"
    other.write_bytes(b"other weights")
    value, why = C.explorer_threshold(other, tmp_path)  # a table measured with other weights
    assert value == C.FALLBACK_THRESHOLD and "other weights" in why
    assert "no weights named" in C.explorer_threshold(None, tmp_path)[1]
    never = t.assign(precision=0.5, chosen=t["threshold"] == 0.95)  # precision never reaches 0.8
    measured.write_table("hr_operating_point", never, measured.provenance(
        "cmd", weights=[weights], images={"tuning": ["e/a"]}), directory=tmp_path)
    assert "never reaches" in C.explorer_threshold(weights, tmp_path)[1]
