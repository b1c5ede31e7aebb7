"""FDDB: pixel-region overlap, one-to-one (Hungarian) matching, discrete vs continuous scores,
ROC points per threshold, the ellipse regressor and its 10-fold protocol."""

from __future__ import annotations

import numpy as np
import pytest

from tinylib.eval import fddb as F

CIRCLE = np.array([20.0, 20.0, np.pi / 2, 50.0, 50.0])  # radius-20 circle at (50, 50)


def test_overlap_circle_and_its_box():
    box = np.array([[30.0, 30.0, 40.0, 40.0]])
    o = F.overlap_matrix(CIRCLE[None], box)[0, 0]
    # the rectangle covers pixels 30..70 inclusive (41 x 41), the circle ~pi 20^2 pixels
    assert o == pytest.approx(np.pi * 400 / 41**2, abs=0.01)
    far = np.array([[200.0, 200.0, 10.0, 10.0]])
    assert F.overlap_matrix(CIRCLE[None], far)[0, 0] == 0.0
    same = F.overlap_matrix(CIRCLE[None], np.hstack([CIRCLE, [1.0]])[None], det_kind="ellipse")
    assert same[0, 0] == pytest.approx(1.0)


def test_hungarian_beats_greedy():
    # greedy would give face 0 to detection 0 (0.6) and leave face 1 with nothing
    o = np.array([[0.6, 0.5], [0.55, 0.0]])
    pairs = sorted(F.match(o))
    assert pairs == [(0, 1, 0.5), (1, 0, 0.55)]


def test_one_to_one_discrete_and_continuous():
    ann = {"img": CIRCLE[None]}
    box = [30.0, 30.0, 40.0, 40.0]
    dets = {"img": np.array([box + [0.9], box + [0.8], [200, 200, 10, 10, 0.7]])}
    res = F.evaluate(dets, ann)
    np.testing.assert_allclose(res.thresholds, [0.9, 0.8, 0.7])
    np.testing.assert_array_equal(res.tp_discrete, [1, 1, 1])  # the duplicate is no second TP
    np.testing.assert_array_equal(res.fp, [0, 1, 2])
    assert res.tp_continuous[0] == pytest.approx(np.pi * 400 / 41**2, abs=0.01)
    assert res.tpr_at(0) == 1.0 and res.tpr_at(0, "continuous") < 0.8
    # a poorly placed box: overlap < 0.5 -> no discrete TP but continuous credit, and an FP
    low = F.evaluate({"img": np.array([[42.0, 42.0, 40.0, 40.0, 0.5]])}, ann)
    assert low.tp_discrete[0] == 0 and low.fp[0] == 1 and 0 < low.tp_continuous[0] < 0.5


def test_roc_sums_images_per_threshold_and_counts_undetected_faces():
    ann = {"a": CIRCLE[None], "b": CIRCLE[None], "c": CIRCLE[None]}
    box = [30.0, 30.0, 40.0, 40.0]
    dets = {"a": np.array([box + [0.9]]), "b": np.array([box + [0.4], [0, 0, 5, 5, 0.95]])}
    res = F.evaluate(dets, ann)
    np.testing.assert_allclose(res.thresholds, [0.95, 0.9, 0.4])
    np.testing.assert_array_equal(res.fp, [1, 1, 1])
    np.testing.assert_allclose(res.tpr_discrete, [0, 1 / 3, 2 / 3])
    assert res.n_faces == 3 and res.n_detections == 3


def test_regressor_recovers_a_linear_relation():
    rng = np.random.default_rng(0)
    w = rng.uniform(20, 80, 50)
    h = w * rng.uniform(1.1, 1.5, 50)
    boxes = np.stack([rng.uniform(0, 200, 50), rng.uniform(0, 200, 50), w, h], axis=1)
    ell = np.stack([0.6 * h, 0.55 * w, np.full(50, np.pi / 2), boxes[:, 0] + w / 2,
                    boxes[:, 1] + 0.45 * h], axis=1)
    reg = F.EllipseRegressor(ridge=1e-9).fit(boxes, ell)
    pred = reg.predict(boxes)
    np.testing.assert_allclose(pred, ell, rtol=1e-6, atol=1e-6)
    with pytest.raises(RuntimeError):
        F.EllipseRegressor().predict(boxes)


def test_read_detections_errors(tmp_path):
    p = tmp_path / "dets.txt"
    p.write_text("img_1\n2\n1 2 3 4 0.5\n1 2 3 4\n")
    with pytest.raises(ValueError, match=r"dets.txt, line 4"):
        F.read_detections(p)
    p.write_text("img_1\n1\n1 2 3 4 nan\n")
    with pytest.raises(ValueError, match="line 3"):
        F.read_detections(p)
    p.write_text("img_1\n1\n1 2 3 4 0.5\nimg_2\n0\n")
    d = F.read_detections(p)
    assert d["img_1"].shape == (1, 5) and d["img_2"].shape == (0, 5)


def test_ten_fold_regressor_improves_continuous_score(real_data):
    from tinylib.data import fddb as D

    faces = D.load_faces(real_data, folds=(1, 2, 3))
    ann = F.ellipses_from_faces(faces)
    keep = [k for i, k in enumerate(ann) if i % 6 == 0]  # a spread-out subset, all 3 folds
    ann = {k: ann[k] for k in keep}
    fold_of = dict(zip(faces.image, faces.fold))
    dets = F.detector_like_boxes(ann, seed=0)
    boxes = F.evaluate(dets, ann)
    ells = F.evaluate(F.cross_validated_ellipses(dets, ann, fold_of), ann, det_kind="ellipse")
    assert ells.tpr_at(1e9, "continuous") > boxes.tpr_at(1e9, "continuous") + 0.05


def test_plot_roc_true_positive_rate_against_false_positive_count():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from tinylib import viz

    ann = {"a": CIRCLE[None], "b": CIRCLE[None], "c": CIRCLE[None]}
    box = [30.0, 30.0, 40.0, 40.0]
    good = F.evaluate({"a": np.array([box + [0.9]]), "b": np.array([box + [0.4], [0, 0, 5, 5, 0.95]])}, ann)
    exact = F.evaluate({"a": np.array([box + [0.9]])}, ann)  # one TP, no false positive at all
    ax = Figure().subplots()
    viz.plot_roc(ax, {"two": good, "one": exact}, kind="discrete")
    step = ax.lines[0]  # the ROC starts at (0, 0), then one step per threshold
    np.testing.assert_allclose(step.get_xdata(), [0, 1, 1, 1])
    np.testing.assert_allclose(step.get_ydata(), [0, 0, 1 / 3, 2 / 3])
    assert ax.lines[1].get_xdata()[0] == 1 and ax.lines[1].get_ydata()[0] == pytest.approx(2 / 3)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["two (TPR 0.667 at 1 FP)", "one (TPR 0.333 at 0 FP)"]
    assert all(t.get_fontsize() >= 8 for t in ax.get_legend().get_texts())
    assert ax.get_xlabel() == "false positives (count)" and "discrete" in ax.get_ylabel()
    assert ax.get_xlim()[0] < 0 < 1 < ax.get_xlim()[1]  # a curve at 0 FP is not on the spine
    cont = Figure().subplots()
    viz.plot_roc(cont, {"two": good}, kind="continuous", max_fp=0)
    assert cont.lines[0].get_ydata()[-1] == pytest.approx(good.tpr_continuous[0])
    with pytest.raises(ValueError, match="kind"):
        viz.plot_roc(cont, {"two": good}, kind="roc")
