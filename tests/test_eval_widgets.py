"""The explorers: NMS on cached detections, WIDER labels, state and drawing; the widgets'
mechanics without a browser (slider settings, labels, what a slider or a checkbox changes)
and the static snapshot every explorer emits next to its live widget
(``tests/test_browser.py`` drives the same widgets in JupyterLab)."""

from __future__ import annotations

import base64

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tinylib import viz, widgets  # noqa: E402
from tinylib.eval import widerface as W  # noqa: E402
from tinylib.hr.detect import RawDetections  # noqa: E402

A, B = [0, 0, 10, 10], [50, 50, 10, 10]
IMAGE = np.zeros((100, 100, 3), np.uint8)


def _gt():
    return W.SimpleEvalGT(boxes={"e/i": np.array([A, B])},
                          keep={s: {"e/i": np.array([0])} for s in W.SETTINGS})  # B ignored


def _raw(with_2x: bool = True) -> RawDetections:
    """Candidates: A templates (0-3) on 1x, four near-duplicates of one face and two other
    windows; B templates (4, 5) on 2x: three tiny, separate windows."""
    a = [[10, 10, 30, 30, 0.9, 0], [11, 10, 31, 30, 0.8, 1], [10, 11, 30, 31, 0.7, 2],
         [12, 12, 32, 32, 0.6, 3], [60, 60, 80, 80, 0.55, 0], [40, 5, 60, 25, 0.3, 1]]
    b = [[70, 10, 74, 14, 0.85, 4], [80, 20, 84, 24, 0.75, 5], [5, 80, 9, 84, 0.65, 4]]
    rows = np.array(a + (b if with_2x else []), dtype=np.float64)
    level = np.r_[np.ones(len(a)), np.full(len(rows) - len(a), 2.0)]
    scales = [0.5, 1.0, 2.0] if with_2x else [0.5, 1.0]
    return RawDetections(rows[:, :4].astype(np.float32), rows[:, 4].astype(np.float32),
                         rows[:, 5].astype(np.int64), level, scales, [0, 1, 2, 3], [4, 5])


def _count(ex) -> int:
    return int(ex.status.value.split("<b>")[1].split()[0])


# ------------------------------------------------------------------ pure functions
def test_nms_and_labels():
    dets = np.array([A + [0.9], [1, 0, 10, 10, 0.8], B + [0.7], [90, 90, 5, 5, 0.6], A + [0.1]])
    kept = widgets.apply_nms(dets, 0.5)
    assert len(kept) == 3 and kept[0, 4] == 0.9  # the two near-duplicates of A are gone
    assert len(widgets.apply_nms(dets, 1.0)) == 5
    labels = widgets.classify(dets, _gt().boxes["e/i"], [0])
    assert labels.tolist() == ["tp", "fp", "ignored", "fp", "fp"]
    # one labelling rule: the explorer's and the static drawing's agree
    out = viz.outcome(dets, _gt().boxes["e/i"], [0], score_threshold=-np.inf)
    assert sorted(out.label.tolist()) == sorted(labels.tolist())


def test_state_point_and_drawing():
    import matplotlib.pyplot as plt

    gt = _gt()
    dets = np.array([A + [0.9], B + [0.7], [90, 90, 5, 5, 0.6]])
    st = widgets.explorer_state(dets, gt, "e/i", "hard", score_thr=0.65, nms_iou=0.3)
    assert len(st.dets) == 2 and st.point == (1.0, 1.0)
    st = widgets.explorer_state(dets, gt, "e/i", "hard", score_thr=0.0, nms_iou=0.3)
    assert st.point == (0.5, 1.0) and st.recall.size == 1000 and st.n_faces == 1
    assert st.summary().startswith("3 detections shown: 1 TP, 1 FP, 1 ignored")
    axes = widgets.draw_state(st, IMAGE, gt.boxes["e/i"], [0])
    assert "1 TP, 1 FP, 0 missed, 1 ignored" in axes[0].get_title()
    assert len(axes[0].collections) == 3  # TP, FP, ignored (no face missed)
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == [
        viz.OUTCOME_LABELS[k] for k in viz.OUTCOME_KINDS]  # the workbook's one legend
    assert all(t.get_fontsize() >= 8 for t in axes[1].get_legend().get_texts())
    plt.close("all")


def test_state_of_an_image_without_faces_in_the_setting():
    gt = W.SimpleEvalGT(boxes={"e/i": np.array([A])}, keep={s: {"e/i": np.zeros(0, int)} for s in W.SETTINGS})
    st = widgets.explorer_state(np.array([A + [0.9]]), gt, "e/i", "easy", 0.0, 0.3)
    assert st.n_faces == 0 and "AP of this image n/a (0 faces)" in st.summary()


@pytest.mark.parametrize("scores, expect", [
    ([0.71, 0.99], {"min": 0.0, "max": 1.0, "step": 0.005, "readout_format": ".3f", "value": 0.0}),
    ([-1.29, 2.63], {"min": -1.3, "max": 2.64, "step": 0.02, "readout_format": ".2f", "value": -1.3}),
    ([3.0, 250.0], {"min": 2.0, "max": 250.0, "step": 2.0, "readout_format": ".0f", "value": 2.0}),
    ([], {"min": 0.0, "max": 1.0, "step": 0.005, "readout_format": ".3f", "value": 0.0}),
])
def test_score_slider_config(scores, expect):
    cfg = widgets.score_slider_config(scores)
    assert cfg == pytest.approx(expect)
    assert cfg["min"] <= min(scores, default=0) and cfg["max"] >= max(scores, default=1)


def test_score_slider_takes_a_typed_value_as_typed():
    # the old slider ran from the lowest cached score (0.70): a typed 0.5 became 0.70
    cfg = widgets.score_slider_config([0.7, 0.95], value=0.5)
    assert cfg["value"] == 0.5 and format(cfg["value"], cfg["readout_format"]) == "0.500"
    assert widgets.score_slider_config([0.7, 0.95], value=0.12345)["value"] == 0.123  # as shown
    assert widgets.score_slider_config([0.7, 0.95], value=7)["value"] == 1.0  # clipped


def test_candidates_and_crowded_crop():
    rows = widgets.candidates_xywh(_raw())
    assert rows.shape == (9, 5) and np.all(np.diff(rows[:, 4]) <= 0)
    assert rows[0].tolist() == pytest.approx([10, 10, 20, 20, 0.9])  # xyxy -> xywh
    assert len(widgets.candidates_xywh(_raw(), min_score=0.7)) == 5
    img = np.arange(200 * 300 * 3, dtype=np.uint8).reshape(200, 300, 3)
    faces = np.array([[200, 150, 210, 160], [220, 140, 230, 150], [240, 170, 250, 180],
                      [10, 10, 20, 20]], dtype=float)
    crop, boxes, (y0, x0) = widgets.crowded_crop(img, faces, size=(64, 96))
    assert crop.shape == (64, 96, 3) and np.array_equal(crop, img[y0:y0 + 64, x0:x0 + 96])
    assert len(boxes) == 3  # the cluster, not the lone face
    np.testing.assert_allclose(boxes[0], faces[0] - [x0, y0, x0, y0])
    small, b2, _ = widgets.crowded_crop(img[:50, :60], faces, size=(64, 96))
    assert small.shape == (50, 60, 3) and len(b2) == 1  # never larger than the image


def test_drawings_keep_their_titles_inside_the_picture():
    st = widgets.explorer_state(np.array([A + [0.9]]), _gt(), "e/i", "hard", 0.0, 0.3)
    for draw, size in [
        (lambda fig: widgets.draw_state(st, IMAGE, _gt().boxes["e/i"], [0], fig.subplots(1, 2)), (11, 4.5)),
        (lambda fig: widgets.draw_hr_selection(fig.add_subplot(), IMAGE, _raw()), (9, 6)),
    ]:
        fig = widgets.render_figure(draw, figsize=size, dpi=80)
        fig.canvas.draw()
        height = fig.bbox.height
        for ax in fig.axes:
            box = ax.title.get_window_extent()
            assert ax.get_title() and 0 <= box.y0 and box.y1 <= height, ax.get_title()


# ------------------------------------------------------------------ the widgets
def test_evaluation_explorer_widgets_and_state_changes():
    dets = np.array([A + [0.9], B + [0.7], [90, 90, 5, 5, 0.6], [1, 0, 10, 10, 0.75]])
    ex = widgets.explorer(IMAGE, dets, _gt(), "e/i")
    thr, nms = ex.controls["score"], ex.controls["nms"]
    assert (thr.min, thr.max, thr.step, thr.readout_format) == (0.0, 1.0, 0.005, ".3f")
    assert thr.layout.width == "480px" and thr.style.description_width == "initial"
    assert nms.value == 1.0  # a detector's output: no second NMS unless asked
    assert "already suppressed" in ex.widget.children[1].value
    assert _count(ex) == 4
    first = ex.view.value
    thr.value = 0.5  # typed or slid, 0.5 is what is used
    assert thr.value == 0.5 and _count(ex) == 4
    thr.value = 0.72
    assert _count(ex) == 2 and ex.view.value != first
    nms.value = 0.3  # the near-duplicate of A (0.75) goes
    assert _count(ex) == 1
    assert ex.snapshot == first  # the snapshot is the first drawing


def test_evaluation_explorer_on_pre_nms_candidates():
    gt = W.SimpleEvalGT(boxes={"e/i": np.array([[10, 10, 20, 20], [70, 10, 4, 4]])},
                        keep={s: {"e/i": np.array([0, 1])} for s in W.SETTINGS})
    ex = widgets.explorer(IMAGE, _raw(), gt, "e/i")
    assert ex.controls["score"].value == 0.5 and ex.controls["nms"].value == 0.3
    assert "pre-NMS candidates" in ex.widget.children[1].value
    with_nms = _count(ex)
    ex.controls["nms"].value = 1.0  # NMS off: the four windows on one face all come back
    assert _count(ex) == with_nms + 3
    assert "2 TP" in ex.status.value


def test_hr_explorer_controls_labels_and_b_templates():
    ex = widgets.hr_explorer(IMAGE, _raw(), figsize=(4, 4))
    score, use_b = ex.controls["score"], ex.controls["use_b"]
    assert score.layout.width == "480px" and score.step == 0.001 and score.readout_format == ".3f"
    assert score.value == 0.5 and "no weights named" in ex.status.value  # no weights: the default
    assert all(w.style.description_width == "initial" for w in (score, ex.controls["nms"]))
    label = ex.widget.children[1].children[0]
    assert label.value == "pyramid levels:" and label.layout.width == "auto"
    assert not use_b.disabled and "2x" in use_b.description
    n, img = _count(ex), ex.view.value
    use_b.value = False  # the three tiny windows on 2x go
    assert _count(ex) == n - 3 and ex.view.value != img and "B off" in ex.status.value
    use_b.value = True
    ex.controls["level_2x"].value = False  # the same by dropping the 2x level
    assert _count(ex) == n - 3
    ex.controls["level_2x"].value = True
    score.value = 0.8
    assert _count(ex) == 2  # 0.9 (A) and 0.85 (B)


def test_hr_explorer_says_why_b_is_off_without_an_upsampled_level():
    ex = widgets.hr_explorer(IMAGE, _raw(with_2x=False), figsize=(4, 4))
    use_b = ex.controls["use_b"]
    assert use_b.disabled and not use_b.value and "no level above 1x" in use_b.description


def test_display_data_carries_a_static_snapshot():
    ex = widgets.explorer(IMAGE, np.array([A + [0.9]]), _gt(), "e/i")
    (live, _), (static, _) = ex.display_bundles()
    assert "application/vnd.jupyter.widget-view+json" in live
    assert "VBox" not in live["text/plain"] and "live widget" in live["text/plain"]
    assert widgets.LIVE_CLASS in ex.widget._dom_classes
    assert base64.b64decode(static["image/jpeg"]) == ex.snapshot == bytes(ex.view.value)
    assert ex.snapshot[:2] == b"\xff\xd8"  # a JPEG
    html = static["text/html"]
    assert f'class="{widgets.STATIC_CLASS}"' in html and static["image/jpeg"] in html
    assert f":has(.{widgets.LIVE_CLASS})" in html  # hidden next to a live widget
    assert "widget-view" not in static


def test_ipython_display_emits_the_widget_then_the_snapshot():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    ex = widgets.hr_explorer(IMAGE, _raw(), figsize=(4, 4))
    with capture_output() as cap:
        from IPython.display import display

        display(ex)
    kinds = [sorted(o.data) for o in cap.outputs]
    assert kinds == [["application/vnd.jupyter.widget-view+json", "text/plain"],
                     ["image/jpeg", "text/html", "text/plain"]]


def test_nbconvert_shows_the_snapshot_of_a_notebook_saved_without_widget_state():
    import nbformat
    from nbconvert import HTMLExporter

    ex = widgets.explorer(IMAGE, np.array([A + [0.9]]), _gt(), "e/i")
    cell = nbformat.v4.new_code_cell("explorer(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", data=d, metadata=m)
                    for d, m in ex.display_bundles()]
    nb = nbformat.v4.new_notebook(cells=[cell])
    body, _ = HTMLExporter().from_notebook_node(nb)
    assert f"data:image/jpeg;base64,{base64.b64encode(ex.snapshot).decode()}" in body
    assert "VBox(" not in body


@pytest.mark.slow
def test_unticking_b_changes_the_count_on_a_synthetic_photo():
    """The shipped synthetic-world detector on a crop of a (small, quickly built) synthetic
    val photo: the crop keeps the 2x level, where the B templates add detections."""
    from tinylib.boxes import box_convert
    from tinylib.data.images import read_image
    from tinylib.data.synthetic import make_world
    from tinylib.data.widerface import load_eval_gt, val_image_paths
    from tinylib.hr.detect import SYNTHETIC_WEIGHTS, Detector, load_detector

    world = make_world(0, 2, seed=1, image_size=(320, 240))
    gt = load_eval_gt(world)
    key = max(gt.images, key=lambda k: len(gt.boxes[k]))
    image = read_image(val_image_paths(world, [key])[key])
    faces_xyxy = box_convert(gt.boxes[key], "xywh", "xyxy")
    crop, faces, _ = widgets.crowded_crop(image, faces_xyxy, size=(192, 256))
    raw = Detector(load_detector(SYNTHETIC_WEIGHTS), max_side=2 * max(crop.shape[:2])).raw(crop)
    assert 2.0 in raw.scales
    ex = widgets.hr_explorer(crop, raw, gt=faces, figsize=(4, 3))
    with_b = _count(ex)
    ex.controls["use_b"].value = False
    assert _count(ex) < with_b


# ------------------------------------------------------------------ your own photo
def _png_bytes(hw=(40, 60)) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((*hw, 3), 128, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_choose_photo_prefers_the_given_path_then_the_demo_then_a_synthetic_scene(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLIB_CACHE", str(tmp_path / "cache"))
    mine = tmp_path / "me.png"
    mine.write_bytes(_png_bytes())
    assert widgets.choose_photo(str(mine), demo=tmp_path / "selfie.jpg")[0] == mine
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        widgets.choose_photo(tmp_path / "nope.jpg")  # a typo never falls back silently
    assert widgets.choose_photo("", demo=mine) == (mine, "the data bundle's me.png")
    path, what = widgets.choose_photo("", demo=tmp_path / "absent.jpg")
    assert "synthetic" in what and path.parent == tmp_path / "cache" / "demo"
    from tinylib.data.images import read_image

    assert read_image(path).shape == (683, 1024, 3)
    assert widgets.choose_photo("")[0] == path  # written once, then reused


def test_image_from_upload_reads_both_ipywidgets_forms_and_names_a_bad_file():
    img = widgets.image_from_upload({"name": "a.png", "content": memoryview(_png_bytes())})
    assert img.shape == (40, 60, 3) and img.dtype == np.uint8
    old = widgets.image_from_upload({"metadata": {"name": "b.png"}, "content": _png_bytes((8, 9))})
    assert old.shape == (8, 9, 3)
    with pytest.raises(OSError, match="broken.jpg"):
        widgets.image_from_upload({"name": "broken.jpg", "content": b"not an image"})


def test_photo_explorer_runs_the_detector_on_an_upload():
    calls = []

    def detect(image):
        calls.append(image.shape)
        return np.array([[1, 1, 10, 10]], float), np.array([0.9])

    ex = widgets.photo_explorer(detect, IMAGE, title="default", figsize=(4, 3))
    assert calls == [(100, 100, 3)] and ex.snapshot[:2] == b"\xff\xd8"
    assert "1 detections" in ex.status.value and "default" in ex.status.value
    import datetime

    up = ex.controls["upload"]
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    up.value = ({"name": "mine.png", "type": "image/png", "size": 1, "last_modified": when,
                 "content": memoryview(_png_bytes())},)
    assert calls[-1] == (40, 60, 3) and "mine.png" in ex.status.value
    up.value = ({"name": "bad.jpg", "type": "image/jpeg", "size": 1, "last_modified": when,
                 "content": memoryview(b"xx")},)
    assert "cannot read bad.jpg" in ex.status.value and len(calls) == 2


def test_hr_explorer_opens_at_the_shipped_operating_point_for_its_weights():
    from tinylib.compare import wider_subset as C
    from tinylib.hr.detect import DEFAULT_WEIGHTS, SYNTHETIC_WEIGHTS

    value, why = C.explorer_threshold(DEFAULT_WEIGHTS)  # the table measured these weights
    assert C.OPERATING_THRESHOLDS[0] <= value < 1 and "tuning half" in why and "hr_operating_point" in why
    ex = widgets.hr_explorer(IMAGE, _raw(), figsize=(4, 4), weights=DEFAULT_WEIGHTS)
    assert ex.controls["score"].value == pytest.approx(value) and "hr_operating_point" in ex.status.value
    other, why = C.explorer_threshold(SYNTHETIC_WEIGHTS)  # another detector: not its threshold
    assert other == C.FALLBACK_THRESHOLD and "other weights" in why
    assert widgets.hr_explorer(IMAGE, _raw(), figsize=(4, 4), score=0.7).controls["score"].value == 0.7

