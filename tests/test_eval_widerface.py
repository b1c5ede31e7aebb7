"""WIDER FACE evaluation: hand-computed cases pin the official semantics (TP, FP, ignored,
the +1 edge, ties, thresholds), order independence, missing files, bad input, and a
loop-by-loop reference port of the MATLAB code on random data."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from tinylib.eval import pitfalls as P
from tinylib.eval import widerface as W
from tinylib.eval.pr import voc_ap, wider_thresholds


def _gt(boxes, keep=None):
    boxes = {k: np.asarray(v, float).reshape(-1, 4) for k, v in boxes.items()}
    keep = keep or {}
    full = {}
    for s in W.SETTINGS:
        full[s] = {k: np.asarray(keep.get(s, keep.get("all", {})).get(k, np.arange(len(b))), int)
                   for k, b in boxes.items()}
    return W.SimpleEvalGT(boxes=boxes, keep=full)


A, B, C = [0, 0, 9, 9], [100, 100, 9, 9], [200, 200, 9, 9]
FAR = [50, 50, 10, 10]


def _case():
    gt = _gt({"e/img": [A, B, C]}, keep={"all": {"e/img": [0, 2]}})  # B is ignored
    preds = {"e/img": np.array([A + [0.9], FAR + [0.8], B + [0.7], C + [0.5], A + [0.3]])}
    return gt, preds


def test_hand_case_tp_fp_ignored_duplicate():
    gt, preds = _case()
    res = W.evaluate(preds, gt, normalize=False)
    t = res.thresholds
    p, r = res.precision["hard"], res.recall["hard"]
    # thresholds above 0.9: no proposal (0/0), recall 0
    assert np.isnan(p[t > 0.9]).all() and (r[t > 0.9] == 0).all()
    sel = (t <= 0.9) & (t > 0.8)
    assert np.allclose(p[sel], 1.0) and np.allclose(r[sel], 0.5)
    sel = (t <= 0.8) & (t > 0.5)  # the ignored detection (0.7) is not a proposal
    assert np.allclose(p[sel], 0.5) and np.allclose(r[sel], 0.5)
    sel = (t <= 0.5) & (t > 0.3)
    assert np.allclose(p[sel], 2 / 3) and np.allclose(r[sel], 1.0)
    sel = t <= 0.3  # the duplicate on A is a false positive
    assert np.allclose(p[sel], 0.5) and np.allclose(r[sel], 1.0)
    assert res.ap["hard"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert res.n_faces["hard"] == 2


def test_ignored_face_is_neither_tp_nor_fp():
    gt, preds = _case()
    base = W.evaluate(preds, gt, normalize=False).ap["easy"]
    gt_all = _gt({"e/img": [A, B, C]})  # B kept: its detection becomes a TP
    res_all = W.evaluate(preds, gt_all, normalize=False)
    k = np.flatnonzero(np.isclose(res_all.thresholds, 0.6))[0]
    assert res_all.precision["easy"][k] == pytest.approx(2 / 3)  # 0.9 TP, 0.8 FP, 0.7 TP
    # drop the detection on B: same AP as when it is ignored
    no_b = {"e/img": preds["e/img"][[0, 1, 3, 4]]}
    assert W.evaluate(no_b, gt, normalize=False).ap["easy"] == pytest.approx(base)


def test_score_normalisation_is_global_min_max():
    gt, preds = _case()
    two = {"e/img": preds["e/img"], "e/other": np.array([[0, 0, 5, 5, 10.0]])}
    gt2 = _gt({"e/img": [A, B, C], "e/other": [[300, 300, 5, 5]]},
              keep={"all": {"e/img": [0, 2]}})
    res = W.evaluate(two, gt2)
    # scores map to (s - 0.3) / (10 - 0.3): A's 0.9 -> 0.0619, the FP at 10 -> 1
    t = res.thresholds
    assert res.precision["hard"][0] == 0.0  # only the far-away FP scores above 0.999
    assert res.recall["hard"][t >= 0.062].max() == 0  # 0.9 normalises just below 0.062
    n = W.normalize_scores(np.array([0.3, 0.9, 10.0]))
    assert n.dtype == np.float64 and n[0] == 0 and n[-1] == 1
    assert n[1] == pytest.approx((0.9 - 0.3) / 9.7, rel=1e-6)


def test_constant_scores_are_lost_like_the_toolbox(caplog):
    gt = _gt({"e/img": [A]})
    with caplog.at_level(logging.WARNING):
        res = W.evaluate({"e/img": np.array([A + [1.0]])}, gt)
    assert res.ap["easy"] == 0.0 and "equal" in caplog.text


def test_plus_one_edge_iou_exactly_half():
    # gt 2x2 at (0,0); detection shifted by one pixel. Without +1: IoU 2/6. With +1 the
    # boxes are 3x3 with a 2x3 overlap: 6 / (9 + 9 - 6) = 0.5 exactly -> a true positive.
    gt = _gt({"e/i": [[0, 0, 2, 2]]})
    preds = {"e/i": np.array([[1, 0, 2, 2, 0.9], [40, 40, 2, 2, 0.1]])}
    assert W.evaluate(preds, gt, plus_one=True).ap["hard"] == pytest.approx(1.0)
    assert W.evaluate(preds, gt, plus_one=False).ap["hard"] == 0.0


def test_tie_on_two_faces_goes_to_the_first():
    # two identical faces; the detection hits both equally and MATLAB's max picks the first
    gt_first_ignored = _gt({"e/i": [A, A]}, keep={"all": {"e/i": [1]}})
    gt_first_kept = _gt({"e/i": [A, A]}, keep={"all": {"e/i": [0]}})
    preds = {"e/i": np.array([A + [0.9], FAR + [0.2]])}
    assert W.evaluate(preds, gt_first_ignored, normalize=False).ap["hard"] == 0.0
    assert W.evaluate(preds, gt_first_kept, normalize=False).ap["hard"] == pytest.approx(1.0)


def test_score_equal_to_threshold_counts():
    gt = _gt({"e/i": [A, C]})
    preds = {"e/i": np.array([A + [0.5], C + [0.25]])}
    res = W.evaluate(preds, gt, normalize=False)
    k = np.flatnonzero(np.isclose(res.thresholds, 0.5))[0]  # t = 1 - 500/1000 = 0.5
    assert res.recall["easy"][k] == 0.5 and res.recall["easy"][k - 1] == 0.0


def test_order_independence_shuffle():
    rng = np.random.default_rng(1)
    gt, preds = _random_world(rng, n_images=12)
    res = W.evaluate(preds, gt)
    shuffled = {k: v[rng.permutation(len(v))] for k, v in reversed(list(preds.items()))}
    res2 = W.evaluate(shuffled, gt)
    for s in W.SETTINGS:
        assert res.ap[s] == res2.ap[s]
        np.testing.assert_array_equal(res.recall[s], res2.recall[s])


def test_matches_loop_reference_port():
    rng = np.random.default_rng(7)
    for _ in range(3):
        gt, preds = _random_world(rng, n_images=10)
        ours = W.evaluate(preds, gt)
        ref = _reference(preds, gt)
        for s in W.SETTINGS:
            assert ours.ap[s] == pytest.approx(ref[s], abs=1e-12)


def test_folder_roundtrip_missing_file_and_extra(tmp_path, caplog):
    rng = np.random.default_rng(3)
    gt, preds = _random_world(rng, n_images=6)
    W.write_predictions(preds, tmp_path / "pred")
    res_dir = W.evaluate(tmp_path / "pred", gt)
    res_mem = W.evaluate(preds, gt)
    assert res_dir.ap == pytest.approx(res_mem.ap)
    gone = gt.images[2]
    (tmp_path / "pred" / f"{gone}.txt").unlink()
    W.write_predictions({"x--Other/not_in_gt": np.array([[0, 0, 5, 5, 0.5]])}, tmp_path / "pred")
    with caplog.at_level(logging.WARNING):
        res = W.evaluate(tmp_path / "pred", gt)
    assert res.missing == [gone] and res.extra == ["x--Other/not_in_gt"]
    assert "missing" in caplog.text and "not in the ground truth" in caplog.text
    without = {k: v for k, v in preds.items() if k != gone}
    assert res.ap == pytest.approx(W.evaluate(without, gt).ap)


@pytest.mark.parametrize(
    "body, line, what",
    [
        ("1\n1 2 3 4 nan\n", 3, "finite"),
        ("1\n1 2 3 4 inf\n", 3, "finite"),
        ("2\n1 2 3 4 0.5\n1 2 -3 4 0.5\n", 4, "non-negative"),
        ("1\n1 2 3 4\n", 3, "5 numbers"),
        ("1\n1 2 3 4 0.5 7\n", 3, "5 numbers"),
        ("2\n1 2 3 4 0.5\n", 4, "2 box lines"),
        ("1\n1 2 3 4 0.5\n5 6 7 8 0.1\n", 4, "no more box lines"),
        ("x\n", 2, "number of boxes"),
        ("1\n1 2 a 4 0.5\n", 3, "numbers"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, body, line, what):
    path = tmp_path / "e" / "img.txt"
    path.parent.mkdir()
    path.write_text("img\n" + body)
    with pytest.raises(W.PredictionFormatError) as exc:
        W.parse_prediction_file(path)
    msg = str(exc.value)
    assert str(path) in msg and f"line {line}" in msg and what in msg


def test_bad_in_memory_arrays_name_key_and_row():
    gt = _gt({"e/i": [A]})
    with pytest.raises(W.PredictionFormatError, match=r"'e/i'.*row 1.*finite"):
        W.evaluate({"e/i": np.array([A + [0.5], A + [np.nan]])}, gt)
    with pytest.raises(W.PredictionFormatError, match=r"\(N, 5\)"):
        W.evaluate({"e/i": np.zeros((2, 4))}, gt)


def test_subset_restricts_ground_truth():
    gt = _gt({"e/a": [A], "e/b": [C]})
    preds = {"e/a": np.array([A + [0.9], FAR + [0.1]])}
    assert W.evaluate(preds, gt).recall["easy"][-1] == 0.5
    res = W.evaluate(preds, gt, subset=["e/a"])
    assert res.recall["easy"][-1] == 1.0 and res.n_images == 1


def test_subset_hand_case_official_semantics():
    """Three images; the subset keeps two. By hand (normalised scores, thresholds 1 - k/1000):

    full set — faces A, B (e/a), C (e/b), D (e/c: missed); detections A .9, FAR .6 (e/a),
    C .8 (e/b), FAR .95 (e/c). min-max over all: FAR_c 1, A .857, C .571, FAR_a 0, so
    (recall, precision) = (0, 0), (1/4, 1/2), (2/4, 2/3), (2/4, 1/2): AP = 1/4 * 2/3 +
    1/4 * 2/3 = 1/3.
    subset e/a + e/b — D is no longer a miss (3 faces), FAR_c is dropped; min-max over
    the subset's detections: A 1, C .667, FAR_a 0, so (1/3, 1), (2/3, 1), (2/3, 2/3):
    AP = 1/3 * 1 + 1/3 * 1 = 2/3.
    """
    gt = _gt({"e/a": [A, B], "e/b": [C], "e/c": [FAR]})  # face D of e/c is at FAR
    preds = {
        "e/a": np.array([A + [0.9], [300, 300, 9, 9, 0.6]]),
        "e/b": np.array([C + [0.8]]),
        "e/c": np.array([[400, 10, 9, 9, 0.95]]),  # a false positive; D itself is missed
    }
    full = W.evaluate(preds, gt)
    sub = W.evaluate(preds, gt, subset=["e/a.jpg", "e/b"])  # ".jpg" names are accepted
    for s in W.SETTINGS:
        assert full.ap[s] == pytest.approx(1 / 3)
        assert full.n_faces[s] == 4 and full.recall[s][-1] == pytest.approx(0.5)
        assert sub.ap[s] == pytest.approx(2 / 3)
        assert sub.n_faces[s] == 3  # the face of the excluded image is not a miss
        assert sub.recall[s][-1] == pytest.approx(2 / 3)
        assert sub.precision[s][-1] == pytest.approx(2 / 3)  # FAR_c dropped: 2 of 3 proposals
        # at the strictest threshold the top detection is A (a hit), not FAR_c
        assert sub.precision[s][0] == 1.0 and full.precision[s][0] == 0.0
    # dropping the excluded image's detections by hand gives the same result
    alone = W.evaluate({k: v for k, v in preds.items() if k != "e/c"}, gt, subset=["e/a", "e/b"])
    assert alone.ap == sub.ap
    assert sub.excluded == ["e/c"] and alone.excluded == []
    assert sub.label == "WIDER val subset (2 images)" and sub.is_subset
    assert (sub.n_images, sub.n_gt_images) == (2, 3)
    assert full.label == "WIDER val" and not full.is_subset and full.excluded == []
    assert str(sub).startswith("WIDER val subset (2 images): easy: 0.6667")
    assert W.evaluate(preds, gt, subset=["e/a"], label="mine").label == "mine"


def test_subset_label():
    assert W.subset_label(3226) == "WIDER val"
    assert W.subset_label(374) == "WIDER val subset (374 images)"
    assert W.subset_label(1) == "WIDER val subset (1 image)"
    assert W.subset_label(1239, total=12880) == "WIDER val subset (1,239 images)"
    assert W.subset_label(3, total=3) == "WIDER val"
    with pytest.raises(ValueError, match="n_images"):
        W.subset_label(3227)


def test_read_image_list(tmp_path):
    gt = _gt({"0--E/a": [A], "0--E/b": [C]})
    f = tmp_path / "list.txt"
    f.write_text("# my subset\n0--E/a.jpg\n\n  0--E/b  \r\n0--E/a\n")
    assert W.read_image_list(f, gt) == ["0--E/a", "0--E/b"]
    for body, line, what in (
        ("0--E/a.jpg\njust_a_name.jpg\n", 2, "expected one image as 'event/name'"),
        ("0--E/a.jpg\n0--E/b.png\n", 2, "expected one image"),
        ("0--E/a b.jpg\n", 1, "expected one image"),
        ("0--E/a/x.jpg\n", 1, "expected one image"),
        ("0--E/a.jpg\n\n0--E/zzz.jpg\n", 3, "not a WIDER val image"),
    ):
        f.write_text(body)
        with pytest.raises(ValueError, match=rf"list.txt, line {line}: .*{what}"):
            W.read_image_list(f, gt)
    f.write_text("# nothing\n")
    with pytest.raises(ValueError, match="found none"):
        W.read_image_list(f)


def test_saved_curves_carry_the_subset_label(tmp_path):
    import scipy.io

    gt = _gt({"e/a": [A], "e/b": [C]})
    preds = {"e/a": np.array([A + [0.9], FAR + [0.2]]), "e/b": np.array([C + [0.5]])}
    sub = W.evaluate(preds, gt, subset=["e/a"])
    files = sub.save_curves(tmp_path / "sub", name="toy")
    m = scipy.io.loadmat(tmp_path / "sub" / "wider_pr_info_toy_hard_val.mat")
    assert str(m["legend_name"][0]) == "toy [WIDER val subset (1 image)]"
    assert str(m["eval_set"][0]) == "WIDER val subset (1 image)" and int(m["n_images"][0, 0]) == 1
    csv = (tmp_path / "sub" / "wider_pr_toy_hard_val.csv").read_text().splitlines()
    assert csv[0] == "threshold,precision,recall,eval_set"
    assert csv[1].endswith(",WIDER val subset (1 image)") and len(files) == 6
    full = W.evaluate(preds, gt)
    full.save_curves(tmp_path / "full", name="toy")
    m = scipy.io.loadmat(tmp_path / "full" / "wider_pr_info_toy_hard_val.mat")
    assert str(m["legend_name"][0]) == "toy" and str(m["eval_set"][0]) == "WIDER val"


def test_voc_ap_and_thresholds():
    t = wider_thresholds(1000)
    assert t[0] == pytest.approx(0.999) and t[-1] == 0.0 and len(t) == 1000
    assert voc_ap([0.5, 1.0], [1.0, 0.5]) == pytest.approx(0.75)
    assert voc_ap([0.0, 0.5], [np.nan, 1.0]) == pytest.approx(0.5)  # NaN skipped like MATLAB


def test_ceiling_on_tiny_gt_and_save_curves(tmp_path):
    gt = _gt({"e/i": [A, C, [5, 5, -2, 4]]})  # the last face has a negative width
    out = W.ceilings(gt)
    assert out["ap"]["easy"] == pytest.approx(2 / 3) and out["unreachable"]["easy"] == 1
    files = out["result"].save_curves(tmp_path, name="gt")
    assert len(files) == 6 and all(f.exists() for f in files)
    import scipy.io

    m = scipy.io.loadmat(files[0])
    assert m["pr_cruve"].shape == (1000, 2)


def test_published_curves(real_data):
    ap = W.published_ap("hr_res101")
    assert ap["easy"] == pytest.approx(0.930, abs=5e-4)
    assert ap["medium"] == pytest.approx(0.916, abs=5e-4)
    assert ap["hard"] == pytest.approx(0.830, abs=5e-4)
    p, r = W.load_published_curve("acf", "easy")  # a MATLAB v5 file
    assert p.shape == r.shape and p.size == 100


# ---------------------------------------------------------------- helpers


def _random_world(rng, n_images):
    boxes, keep = {}, {s: {} for s in W.SETTINGS}
    preds = {}
    for i in range(n_images):
        key = f"{i % 3}--Ev/img_{i}"
        n = int(rng.integers(1, 15))
        xy = rng.uniform(0, 200, (n, 2)).round()
        wh = rng.uniform(2, 40, (n, 2)).round()
        g = np.hstack([xy, wh])
        boxes[key] = g
        for j, s in enumerate(W.SETTINGS):
            keep[s][key] = np.flatnonzero(rng.random(n) < 0.3 + 0.3 * j)
        hits = g[rng.random(n) < 0.7] + rng.normal(0, 1.5, (1, 4)).round()
        hits[:, 2:] = np.abs(hits[:, 2:])
        k = int(rng.integers(0, 6))
        fps = np.hstack([rng.uniform(0, 200, (k, 2)), rng.uniform(2, 40, (k, 2))])
        d = np.vstack([hits, fps, hits[:2]])  # duplicates too
        s = rng.choice([0.1, 0.3, 0.5, 0.7, 0.9, 2.0], size=len(d)) + rng.normal(0, 0.2, len(d)) * (
            rng.random(len(d)) < 0.5)
        preds[key] = np.hstack([d, s[:, None]])
    return W.SimpleEvalGT(boxes=boxes, keep=keep), preds


def _boxoverlap(a, b):
    x1 = np.maximum(a[:, 0], b[0])
    y1 = np.maximum(a[:, 1], b[1])
    x2 = np.minimum(a[:, 2], b[2])
    y2 = np.minimum(a[:, 3], b[3])
    w, h = x2 - x1 + 1, y2 - y1 + 1
    inter = w * h
    o = inter / ((a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter)
    o[(w <= 0) | (h <= 0)] = 0
    return o


def _reference(preds, gt, thresh_num=1000):
    """Loop-by-loop port of the MATLAB toolbox (sorting, per-detection matching, per-threshold
    loop), independent of tinylib's implementation."""
    allp = np.concatenate([p[:, 4] for p in preds.values()]).astype(np.float32)
    hi, lo = max(np.float32(np.finfo(np.float32).tiny), allp.max()), allp.min()
    out = {}
    for s in W.SETTINGS:
        curve = np.zeros((thresh_num, 2))
        count = 0
        for key in gt.images:
            g = gt.boxes[key].copy()
            keep = gt.keep[s][key]
            count += len(keep)
            p = preds.get(key)
            if p is None or not len(p) or not len(g):
                continue
            p = p[np.argsort(-p[:, 4], kind="stable")].copy()
            p[:, 4] = ((p[:, 4].astype(np.float32) - lo) / (hi - lo)).astype(np.float64)
            p[:, 2:4] += p[:, 0:2]
            g[:, 2:4] += g[:, 0:2]
            kept = np.zeros(len(g))
            kept[keep] = 1
            recall_list = np.zeros(len(g))
            proposal = np.ones(len(p))
            pred_recall = np.zeros(len(p))
            for h in range(len(p)):
                o = _boxoverlap(g, p[h, :4])
                idx = int(np.argmax(o))
                if o[idx] >= 0.5:
                    if kept[idx] == 0:
                        recall_list[idx] = -1
                        proposal[h] = -1
                    elif recall_list[idx] == 0:
                        recall_list[idx] = 1
                pred_recall[h] = (recall_list == 1).sum()
            for t in range(1, thresh_num + 1):
                th = 1 - t / thresh_num
                r = np.flatnonzero(p[:, 4] >= th)
                if r.size:
                    r = r[-1]
                    curve[t - 1, 0] += (proposal[: r + 1] == 1).sum()
                    curve[t - 1, 1] += pred_recall[r]
        with np.errstate(divide="ignore", invalid="ignore"):
            prec = curve[:, 1] / curve[:, 0]
        out[s] = voc_ap(curve[:, 1] / count, prec)
    return out


def test_file_order_port_agrees_when_sorted_and_breaks_when_shuffled():
    rng = np.random.default_rng(11)
    gt, preds = _random_world(rng, n_images=15)
    ours = W.evaluate(preds, gt).ap
    sorted_preds = {k: v[np.argsort(-v[:, 4], kind="stable")] for k, v in preds.items()}
    assert P.evaluate_file_order(sorted_preds, gt) == pytest.approx(ours, abs=1e-12)
    shuffled = {k: v[rng.permutation(len(v))] for k, v in preds.items()}
    bad = P.evaluate_file_order(shuffled, gt)
    assert any(abs(bad[s] - ours[s]) > 1e-3 for s in W.SETTINGS)


def test_real_ceilings_and_order_on_val(real_data):
    from tinylib.data.widerface import load_eval_gt

    gt = load_eval_gt()
    out = W.ceilings(gt)
    assert out["ap"]["easy"] == 1.0 and out["ap"]["medium"] == 1.0
    # hard: the w=-2 box of 39_Ice_Skating_iceskiing_39_583 and the face annotated twice in
    # 21_Festival_Festival_21_604 cannot be recalled
    assert out["unreachable"] == {"easy": 0, "medium": 0, "hard": 2}
    assert 0.9999 < out["ap"]["hard"] < 1.0
    preds = P.jittered_predictions(gt, seed=0)
    shuffled = {k: v[::-1] for k, v in preds.items()}
    assert W.evaluate(preds, gt).ap == W.evaluate(shuffled, gt).ap


def _no_easy_faces():
    """Faces A (easy, medium, hard) and C (hard only); the second image has no easy face."""
    gt = _gt({"e/a": [A, C], "e/b": [B]},
             keep={"easy": {"e/a": [0], "e/b": []}, "medium": {"e/a": [0], "e/b": [0]},
                   "hard": {"e/a": [0, 1], "e/b": [0]}})
    preds = {"e/a": np.array([A + [0.9], FAR + [0.6]]), "e/b": np.array([B + [0.8]])}
    return gt, preds


def test_a_setting_without_faces_shows_na_not_zero():
    gt, preds = _no_easy_faces()
    only_b = W.evaluate(preds, gt, subset=["e/b"])
    assert only_b.n_faces["easy"] == 0 and only_b.ap["easy"] == 0.0  # stored as the toolbox does
    assert only_b.table().loc["easy", "ap"] == W.NO_FACES == "n/a (0 faces)"
    assert only_b.table().loc["hard", "ap"] == pytest.approx(only_b.ap["hard"])
    assert "easy: n/a (0 faces)" in str(only_b) and f"hard: {only_b.ap['hard']:.4f}" in str(only_b)
    assert W.format_ap(0.51234, 3) == "0.512" and W.format_ap(0.0, 0) == W.NO_FACES
    both = W.evaluate(preds, gt)
    tab = W.ap_table({"only b": only_b, "both": both})
    assert tab.loc["only b", "easy"] == W.NO_FACES and tab.loc["both", "easy"] == f"{both.ap['easy']:.3f}"
    assert tab.loc["both", "detections"] == 3 and list(tab.columns) == [*W.SETTINGS, "detections"]


def test_plot_curves_legends_readable_outside_and_labelled():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from tinylib import viz

    gt, preds = _no_easy_faces()
    only_b = W.evaluate(preds, gt, subset=["e/b"])
    fig = Figure(figsize=(12, 5), layout="constrained")
    axes = fig.subplots(1, 3)
    published = {s: (np.array([1.0, 0.5]), np.array([0.2, 0.8])) for s in W.SETTINGS}
    viz.plot_curves(axes, {"paper: full val": published, "ours: 1 image": only_b},
                  eval_set="ours: 1 image; paper: full val")
    fig.canvas.draw()
    for ax, s in zip(axes, W.SETTINGS):
        leg = ax.get_legend()
        texts = [t.get_text() for t in leg.get_texts()]
        assert all(t.get_fontsize() >= 8 for t in leg.get_texts())
        assert leg.get_window_extent().y1 <= ax.get_window_extent().y0  # below the axis
        assert texts[0] == "paper: full val (0.500)"
        assert texts[1] == ("ours: 1 image: n/a (0 faces)" if s == "easy"
                            else f"ours: 1 image ({voc_ap(only_b.recall[s], only_b.precision[s]):.3f})")
        assert ax.get_title().endswith(s) and ax.get_title().startswith("ours: 1 image; paper")
    assert len(axes[0].lines) == 2 and len(axes[0].lines[1].get_xdata()) == 0  # no easy curve
    inside = Figure().subplots()
    viz.plot_curves([inside], {"x": published}, settings=("hard",), legend="inside")
    assert inside.get_legend().get_window_extent().y0 >= inside.get_window_extent().y0 - 1
    with pytest.raises(ValueError, match="legend"):
        viz.plot_curves([inside], {"x": published}, legend="right")
