"""Score calibration across templates and levels (tinylib.hr.calibrate, issue #26)."""

import json

import numpy as np
import pytest
import torch

from tinylib.compare import wider_subset as C
from tinylib.hr import calibrate as K
from tinylib.hr.detect import Detector, RawDetections, main, save_weights
from tinylib.hr.model import build_hr
from tinylib.hr.templates import Templates


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build_hr(Templates(np.array([[40.0, 50], [20, 22]]), np.array([1.0, 2.0])), 18, pretrained=False).eval()


def _world(n: int = 30, seed: int = 0):
    """Images with one 20 px face each. Template 0 (a level-1 A template) puts a well-fitting
    box on it; template 1 (an A template too) puts a box twice the size on it with a *higher*
    raw score, and scores background boxes as high as template 0's faces. Uncalibrated NMS keeps
    template 1's wrong box; a calibration must learn to trust template 0 more."""
    rng = np.random.default_rng(seed)
    raws, gt = {}, {}
    for i in range(n):
        x, y = rng.uniform(40, 200, 2)
        face = np.array([x, y, x + 20, y + 20], np.float32)
        big = np.array([x - 10, y - 10, x + 30, y + 30], np.float32)  # IoU 0.25 with the face
        bg = np.array([x + 100, y + 80, x + 140, y + 120], np.float32)
        jitter = rng.normal(0, 0.01, 3)
        raws[f"e/{i}"] = RawDetections(np.stack([face, big, bg]),
                                       np.clip(np.array([0.80, 0.95, 0.82]) + jitter, 0.06, 0.999).astype(np.float32),
                                       np.array([0, 1, 1]), np.ones(3), [1.0], [0, 1], [])
        gt[f"e/{i}"] = np.array([[x, y, 20, 20]])  # WIDER x y w h
    return raws, gt


def test_fit_learns_which_template_fits_faces_and_nms_then_keeps_it():
    raws, gt = _world()
    keys = list(raws)
    cal = K.fit(raws, gt, keys[:20], n_templates=2, label_iou=0.7, weights="abc")
    assert cal.template_bias[0] > cal.template_bias[1] + 1  # template 0 is trusted more
    assert cal.fitted_on["images"] == 20 and cal.fitted_on["positives"] == 20 and cal.weights == "abc"
    for k in keys[20:]:  # unseen images: calibrated NMS keeps the well-fitting box first
        raw_top = C.hr_select({k: raws[k]}, vote_iou=None)[k][0]
        cal_top = C.hr_select({k: raws[k]}, vote_iou=None, calibration=cal)[k][0]
        assert raw_top[2] == pytest.approx(40)  # raw scores: the double-size box wins
        assert cal_top[2] == pytest.approx(20)
    again = K.fit(raws, gt, keys[:20], n_templates=2, label_iou=0.7, weights="abc")
    assert again == cal  # deterministic


def test_apply_keeps_the_order_within_a_template_and_level_and_floors_raw_scores():
    cal = K.Calibration((0.5, -1.0), {"1": 0.25, "2": -0.5}, 0.1)
    boxes = np.zeros((4, 4), np.float32)
    raw = RawDetections(boxes, np.array([0.9, 0.6, 0.9, 0.04], np.float32), np.array([0, 0, 1, 0]),
                        np.array([1.0, 1.0, 2.0, 1.0]), [1.0, 2.0], [0, 1], [])
    out = cal.apply(raw)
    z = np.log(np.array([0.9, 0.6, 0.9, 0.04]) / (1 - np.array([0.9, 0.6, 0.9, 0.04])))
    want = 1 / (1 + np.exp(-(z + np.array([0.5 + 0.25, 0.5 + 0.25, -1 - 0.5, 0.5 + 0.25]) + 0.1)))
    np.testing.assert_allclose(out.scores, want, rtol=1e-5)
    assert out.scores[0] > out.scores[1] and out.boxes is raw.boxes
    floored = cal.apply(raw, floor=0.05)
    assert len(floored.scores) == 3 and len(floored.boxes) == 3 and len(floored.level) == 3
    unseen = RawDetections(boxes[:1], np.array([0.5], np.float32), np.array([1]), np.array([0.5]), [0.5], [0, 1], [])
    assert cal.apply(unseen).scores[0] == pytest.approx(1 / (1 + np.exp(-(-1.0 + 0.1))))  # level 0.5: no bias
    with pytest.raises(ValueError, match="template index 5"):
        cal.scores(np.array([5]), np.array([1.0]), np.array([0.5]))


def test_save_load_round_trip_and_bad_files_are_named(tmp_path):
    cal = K.Calibration((0.5, -1.0), {"0.5": 0.25}, 0.1, 0.7, "w1", {"half": "tuning"})
    path = cal.save(tmp_path / "cal.json")
    assert K.load_calibration(path) == cal and K.load_calibration(path, "w1") == cal
    with pytest.raises(ValueError, match="fitted for weights w1, not w2"):
        K.load_calibration(path, "w2")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "tinylib.hr.calibration/1",\n "template_bias": [1, }')
    with pytest.raises(ValueError, match=r"bad.json: line 2: not JSON"):
        K.load_calibration(bad)
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="expected format"):
        K.load_calibration(bad)
    bad.write_text(json.dumps({"format": K.FORMAT}))
    with pytest.raises(ValueError, match="not a calibration"):
        K.load_calibration(bad)
    with pytest.raises(FileNotFoundError, match="no calibration file"):
        K.load_calibration(tmp_path / "none.json")


def test_fit_refuses_labels_of_one_kind():
    raws, gt = _world(5)
    with pytest.raises(ValueError, match="positive and negative"):
        K.fit(raws, {k: np.zeros((0, 4)) for k in raws}, list(raws), n_templates=2)
    with pytest.raises(ValueError, match="label_iou"):
        K.fit(raws, gt, list(raws), n_templates=2, label_iou=0)
    with pytest.raises(ValueError, match="no candidate"):
        K.fit(raws, gt, [], n_templates=2)


def test_detector_and_cli_apply_a_calibration(tmp_path, small_model, capsys):
    torch.manual_seed(0)
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    n = len(small_model.templates)
    plain = Detector(small_model, device="cpu", score_threshold=0.0, max_side=128)
    down = K.Calibration(tuple([-3.0] * n), {}, 0.0)
    calibrated = Detector(small_model, device="cpu", score_threshold=0.0, max_side=128, calibration=down)
    (_, s0), (_, s1) = plain.detect(image), calibrated.detect(image)
    assert len(s0) and s1.max() < s0.max()  # every score pulled down by the same bias
    weights = save_weights(small_model, tmp_path / "w.pt")
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "a.png")
    cal_file = down.save(tmp_path / "cal.json")
    args = [str(tmp_path / "a.png"), "--weights", str(weights), "--max-side", "128", "--device", "cpu",
            "--threshold", "0.0"]
    assert main([*args, "--out", str(tmp_path / "raw"), "--calibration", "none"]) == 0
    assert main([*args, "--out", str(tmp_path / "cal"), "--calibration", str(cal_file)]) == 0
    raw_scores = [float(x.split()[4]) for x in (tmp_path / "raw" / tmp_path.name / "a.txt").read_text().splitlines()[2:]]
    cal_scores = [float(x.split()[4]) for x in (tmp_path / "cal" / tmp_path.name / "a.txt").read_text().splitlines()[2:]]
    assert max(cal_scores) < max(raw_scores)
    other = K.Calibration(tuple([0.0] * n), {}, 0.0, weights="not-these-weights").save(tmp_path / "o.json")
    assert main([*args, "--out", str(tmp_path / "o"), "--calibration", str(other)]) == 2  # refused, named
    capsys.readouterr()
    base = [str(tmp_path / "a.png"), "--weights", str(weights), "--max-side", "128", "--device", "cpu"]
    assert main([*base, "--out", str(tmp_path / "d"), "--draw", "--calibration", "none"]) == 0
    rows = [float(x.split()[4]) for x in (tmp_path / "d" / tmp_path.name / "a.txt").read_text().splitlines()[2:]]
    assert rows and min(rows) >= 0.0  # the files: every detection after NMS, for the evaluator
    shown = sum(r >= 0.5 for r in rows)  # the screen and the drawing: the draw threshold
    assert f"{shown} faces at score >= 0.5 ({len(rows)} detections at >= 0 written" in capsys.readouterr().out
