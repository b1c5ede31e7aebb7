"""Pyramid inference: scales, A/B routing, end-to-end decoding, NMS, bad input, the CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from tinylib.boxes import box_iou
from tinylib.hr import targets as T
from tinylib.hr.detect import (
    Detector,
    RawDetections,
    main,
    nms_vote,
    pyramid_scales,
    save_weights,
    to_wider,
)
from tinylib.hr.model import build_hr
from tinylib.hr.templates import Templates

HR_LIKE = Templates(np.array([[80.0, 100], [40, 50], [20, 22]]), np.array([1.0, 1.0, 2.0]))


def test_pyramid_scales_follow_template_sizes_and_cap():
    s = pyramid_scales(768, 1024, HR_LIKE)
    # largest A template 80x100: 2**floor(log2(80/1024)) = 1/16 is the coarsest octave
    assert s == [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2]
    assert pyramid_scales(768, 1024, HR_LIKE, max_side=1500)[-1] == 1
    assert math.sqrt(2) in pyramid_scales(768, 1024, HR_LIKE, half_octaves=True)
    assert pyramid_scales(768, 1024, HR_LIKE, upsample=False)[-1] == 1
    assert pyramid_scales(60, 60, HR_LIKE) == [1, 2]  # image smaller than the template
    assert pyramid_scales(5000, 5000, HR_LIKE, max_side=1000)[-1] <= 1000 / 5000
    with pytest.raises(ValueError, match="positive"):
        pyramid_scales(0, 10, HR_LIKE)


class PerfectModel(torch.nn.Module):
    """Stands in for HRDetector: 'predicts' the targets of known faces at every level."""

    def __init__(self, faces, image_hw, templates=HR_LIKE):
        super().__init__()
        self.templates = templates
        self.stride = 8
        self.register_buffer("template_sizes_wh", torch.tensor(templates.sizes_wh, dtype=torch.float32))
        self.faces = torch.tensor(faces, dtype=torch.float32)
        self.image_hw = image_hw

    def forward(self, x):
        H, W = x.shape[-2] // 8, x.shape[-1] // 8
        s = self.current_scale  # set by the patched Detector._run below
        lab, reg = T.assign_targets(self.template_sizes_wh, self.faces * s, H, W, 8,
                                    valid=(0, 0, self.image_hw[1] * s, self.image_hw[0] * s))
        cls = torch.where(lab == T.POSITIVE, 10.0, -10.0)
        return cls[None].repeat(len(x), 1, 1, 1), reg[None].repeat(len(x), 1, 1, 1, 1)


def test_detector_end_to_end_with_perfect_predictions(monkeypatch):
    faces = np.array([[100.0, 60, 140, 110], [21, 28.5, 31, 39.5], [300, 200, 380, 300]])
    model = PerfectModel(faces, (320, 400))
    det = Detector(model, device="cpu", score_threshold=0.5)
    orig_run = Detector._run

    def run(self, batch, scale):
        model.current_scale = scale
        return orig_run(self, batch, scale)

    monkeypatch.setattr(Detector, "_run", run)
    image = np.zeros((320, 400, 3), np.uint8)
    raw = det.raw(image)
    assert raw.scales == pyramid_scales(320, 400, HR_LIKE)
    # the tiny face (10x11) is found only by the B template, only at 2x
    tiny = box_iou(raw.boxes, faces[1:2])[:, 0] > 0.99
    assert tiny.any() and set(raw.level[tiny]) == {2.0} and set(raw.template[tiny]) == {2}
    boxes, scores = raw.select(0.5, 0.3)
    iou = box_iou(boxes, faces)
    assert len(boxes) == 3 and np.allclose(np.sort(iou.max(0)), 1.0, atol=1e-4)
    b_off, _ = raw.select(0.5, 0.3, use_b=False)
    assert len(b_off) == 2  # no B templates: the tiny face is lost
    only1, _ = raw.select(0.5, 0.3, levels=[1.0])
    assert len(only1) == 2  # at 1x nothing fits the tiny face (B templates run only at 2x)


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build_hr(HR_LIKE, 18, pretrained=False).eval()


def test_batched_equals_single_and_bad_input_converted(small_model):
    det = Detector(small_model, device="cpu", score_threshold=0.0, candidate_threshold=0.0,
                   max_side=200, top_k=50)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (60, 90, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (60, 90, 3), dtype=np.uint8)
    many = det.detect_many([a, b])
    one = det.detect(b)
    assert np.allclose(many[1][0], one[0], atol=1e-3) and np.allclose(many[1][1], one[1], atol=1e-4)
    gray = rng.integers(0, 255, (50, 70), dtype=np.uint8)
    rgba = rng.integers(0, 255, (50, 70, 4), dtype=np.uint8)
    deep = rng.integers(0, 65535, (50, 70, 3), dtype=np.uint16)
    for im in (gray, rgba, deep):
        boxes, scores = det.detect(im)
        assert boxes.shape[1] == 4 and len(boxes) == len(scores)
        assert (boxes[:, 2] <= 70 + 1e-4).all() and (boxes[:, 3] <= 50 + 1e-4).all()


def test_nms_at_03_and_wider_rows():
    boxes = np.array([[0, 0, 10, 10], [0, 2.5, 10, 12.5], [0, 5, 10, 15]], np.float32)
    raw = RawDetections(boxes, np.array([0.9, 0.8, 0.7], np.float32), np.zeros(3, int),
                        np.ones(3), [1.0], [0], [])
    kept, sc = raw.select(0.5, 0.3)  # IoU(0,1) = 0.6 suppressed; IoU(0,2) = 1/3 > 0.3 too
    assert len(kept) == 1 and sc[0] == pytest.approx(0.9)
    kept, _ = raw.select(0.5, 0.5)
    assert len(kept) == 2
    rows = to_wider(np.array([[1.0, 2, 11, 22]]), np.array([0.5]))
    assert rows.tolist() == [[1.0, 2.0, 10.0, 20.0, 0.5]]


def test_box_voting_by_hand():
    # 0 and 1 overlap with IoU 80/120 = 0.67: NMS keeps 0, voting moves it towards 1 by
    # 0.3 / (0.9 + 0.3); 2 (IoU 0 with both) stays; 3 is degenerate and votes only for itself
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60], [80, 80, 80, 90]], np.float32)
    scores = np.array([0.9, 0.3, 0.6, 0.2], np.float32)
    plain, s_plain = nms_vote(boxes, scores, 0.3)
    assert plain.tolist() == [[0, 0, 10, 10], [50, 50, 60, 60], [80, 80, 80, 90]]
    voted, s_voted = nms_vote(boxes, scores, 0.3, vote_iou=0.4)
    np.testing.assert_allclose(voted, [[0.5, 0, 10.5, 10], [50, 50, 60, 60], [80, 80, 80, 90]],
                               atol=1e-5)
    assert s_voted.tolist() == s_plain.tolist()  # voting moves boxes, never scores
    alone, _ = nms_vote(boxes, scores, 0.3, vote_iou=0.7)  # 0.67 < 0.7: 1 does not vote
    assert alone[0].tolist() == [0, 0, 10, 10]
    assert nms_vote(boxes, scores, 0.3, vote_iou=0.4, max_dets=1)[0].shape == (1, 4)
    empty = nms_vote(np.zeros((0, 4)), np.zeros(0), 0.3, vote_iou=0.4)
    assert empty[0].shape == (0, 4) and empty[1].shape == (0,)
    with pytest.raises(ValueError, match="2 boxes but 1 scores"):
        nms_vote(boxes[:2], scores[:1])
    raw = RawDetections(boxes, scores, np.zeros(4, int), np.ones(4), [1.0], [0], [])
    np.testing.assert_allclose(raw.select(0.1, 0.3, vote_iou=0.4)[0], voted, atol=1e-5)


def test_cli_writes_wider_submission(tmp_path, small_model, capsys):
    weights = save_weights(small_model, tmp_path / "w.pt")
    img_dir = tmp_path / "imgs" / "0--Parade"
    img_dir.mkdir(parents=True)
    Image.fromarray(np.zeros((40, 60), np.uint8)).save(img_dir / "gray.png")  # grayscale
    (img_dir / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    rc = main([str(img_dir / "gray.png"), str(img_dir / "broken.jpg"), "--out", str(out),
               "--weights", str(weights), "--threshold", "0.0", "--draw", "--max-side", "200"])
    assert rc == 1  # one image could not be read: reported, the others done
    lines = (out / "0--Parade" / "gray.txt").read_text().splitlines()
    assert lines[0] == "gray" and int(lines[1]) == len(lines) - 2
    assert all(len(line.split()) == 5 for line in lines[2:])
    assert (out / "drawings" / "0--Parade" / "gray.jpg").is_file()
    assert "skipping" in capsys.readouterr().err
    assert main(["x.jpg", "--out", str(out), "--weights", str(tmp_path / "none.pt")]) == 2


def test_shipped_weights_load_and_are_small():
    from tinylib.hr.detect import SYNTHETIC_WEIGHTS, load_detector

    assert SYNTHETIC_WEIGHTS.is_file(), "run tools/train_shipped_weights.sh"
    assert SYNTHETIC_WEIGHTS.stat().st_size < 8e6
    model = load_detector(SYNTHETIC_WEIGHTS)
    assert model.num_templates == 25 and not model.use_res5
    assert len(model.templates.a) == 8 and len(model.templates.b) == 7
    boxes, scores = Detector(model, device="cpu", max_side=400).detect(
        np.full((120, 160, 3), 128, np.uint8))
    assert boxes.shape[1] == 4 and len(scores) == len(boxes)


def test_cli_keeps_the_2x_level_on_1024_px_photos(tmp_path, small_model, capsys):
    weights = save_weights(small_model, tmp_path / "w.pt")
    img_dir = tmp_path / "imgs" / "0--Parade"
    img_dir.mkdir(parents=True)
    Image.fromarray(np.full((683, 1024, 3), 120, np.uint8)).save(img_dir / "wide.jpg")
    Image.fromarray(np.full((1150, 2048, 3), 120, np.uint8)).save(img_dir / "selfie.jpg")
    rc = main([str(img_dir / "wide.jpg"), str(img_dir / "selfie.jpg"), "--out",
               str(tmp_path / "out"), "--weights", str(weights)])
    assert rc == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and all(", 2x)" in line for line in out), out


def test_shipped_real_photo_weights_find_real_faces(real_data):
    """The default checkpoint (MobileNet x0.25 HR trained on real WIDER photos) is small,
    loads, and finds most of the clearly visible faces of a real val photo."""
    from tinylib.data.images import read_image
    from tinylib.data.widerface import load_eval_gt
    from tinylib.eval.widerface import match_image
    from tinylib.hr.detect import DEFAULT_WEIGHTS, load_detector

    assert DEFAULT_WEIGHTS.is_file(), "run tools/train_hr_wider.sh"
    assert DEFAULT_WEIGHTS.stat().st_size < 10e6
    model = load_detector()
    assert model.config["backbone"] == "mobilenet_v1_025"
    key = "0--Parade/0_Parade_marchingband_1_410"
    path = real_data / "widerface" / "sample_images" / "0_Parade_marchingband_1_410.jpg"
    if not path.is_file():
        pytest.skip(f"{path} not in the data root")
    gt = load_eval_gt().boxes[key]
    big = gt[np.sqrt(gt[:, 2] * gt[:, 3]) >= 20]
    boxes, scores = Detector(model, device="cpu", score_threshold=0.5, max_side=2100).detect(
        read_image(path))
    hit = match_image(to_wider(boxes, scores), big)
    recall = len(set(hit[hit >= 0].tolist())) / len(big)
    assert len(big) >= 10 and recall >= 0.6, (len(big), recall)


def test_as_rgb_image_takes_paths_arrays_and_tensors(tmp_path):
    from tinylib.data.images import as_rgb_image

    rgb = (np.arange(4 * 5 * 3) % 255).astype(np.uint8).reshape(4, 5, 3)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    assert np.array_equal(as_rgb_image(tmp_path / "a.png"), rgb)
    assert np.array_equal(as_rgb_image(torch.from_numpy(rgb).permute(2, 0, 1)), rgb)  # C x H x W
    gray = as_rgb_image(rgb[..., 0])
    assert gray.shape == (4, 5, 3) and gray.dtype == np.uint8
