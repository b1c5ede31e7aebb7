"""WIDER FACE parsers (text, split MAT, eval ground truth) and the Dataset."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import scipy.io
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tinylib.data import widerface as wf
from tinylib.data._parse import AnnotationError

# Two events, four images: a CRLF file with trailing spaces, a count-0 placeholder, a
# negative-width box, a zero-size box and an invalid face.
GT_LINES = [
    "0--Parade/0_Parade_a_1.jpg",
    "2",
    "10 20 30 40 0 0 0 0 0 0 ",
    "100 50 -3 12 1 0 0 0 1 0 ",
    "0--Parade/0_Parade_b_2.jpg",
    "0",
    "0 0 0 0 0 0 0 0 0 0 ",
    "1--Handshaking/1_Hand_c_3.jpg",
    "3",
    "5 6 7 8 2 1 1 1 2 1 ",
    "0 0 0 0 0 0 0 0 0 0 ",
    "9 9 0 4 0 0 0 0 0 0",
    "1--Handshaking/1_Hand_d_4.jpg",
    "1",
    "1 2 3 4 0 0 0 0 0 0 ",
]


def write_gt(path, lines=GT_LINES, newline="\r\n"):
    path.write_bytes((newline.join(lines) + newline).encode())
    return path


def test_read_bbx_gt_quirks(tmp_path):
    df = wf.read_bbx_gt(write_gt(tmp_path / "gt.txt"))
    assert list(df.columns) == list(wf.COLUMNS)
    assert len(df) == 6  # placeholder left out, the all-zero line of a count-3 image kept
    assert df.attrs["images"] == [GT_LINES[0], GT_LINES[4], GT_LINES[7], GT_LINES[12]]
    assert df.attrs["placeholders"] == ["0--Parade/0_Parade_b_2.jpg"]
    assert df["image"].iloc[0] == "0--Parade/0_Parade_a_1.jpg"
    assert list(df["event"].unique()) == ["0--Parade", "1--Handshaking"]
    assert df[["x", "y", "w", "h"]].iloc[1].tolist() == [100, 50, -3, 12]
    assert df["degenerate"].tolist() == [False, True, False, True, True, False]
    assert df["invalid"].tolist() == [0, 0, 1, 0, 0, 0]
    assert df["pose"].iloc[2] == 1 and df["blur"].iloc[2] == 2


def test_lf_and_crlf_give_the_same_table(tmp_path):
    a = wf.read_bbx_gt(write_gt(tmp_path / "a.txt", newline="\r\n"))
    b = wf.read_bbx_gt(write_gt(tmp_path / "b.txt", newline="\n"))
    assert a.equals(b)


def test_count_zero_without_dummy_line(tmp_path):
    lines = ["e/a.jpg", "0", "e/b.jpg", "1", "1 1 2 2 0 0 0 0 0 0"]
    df = wf.read_bbx_gt(write_gt(tmp_path / "gt.txt", lines, "\n"))
    assert df.attrs["images"] == ["e/a.jpg", "e/b.jpg"] and len(df) == 1


@pytest.mark.parametrize(
    "bad_index, bad_line, needle",
    [
        (2, "10 20 30 40 0 0 0 0 0", "10 integers"),  # 9 fields
        (3, "100 50 -3 12.5 1 0 0 0 1 0", "100 50 -3 12.5"),  # not an integer
        (1, "two", "face count"),
    ],
)
def test_malformed_line_names_file_line_and_text(tmp_path, bad_index, bad_line, needle):
    lines = list(GT_LINES)
    lines[bad_index] = bad_line
    path = write_gt(tmp_path / "gt.txt", lines)
    with pytest.raises(AnnotationError) as info:
        wf.read_bbx_gt(path)
    msg = str(info.value)
    assert str(path) in msg and f"line {bad_index + 1}" in msg and needle in msg
    assert info.value.line == bad_index + 1 and isinstance(info.value, ValueError)


def test_truncated_file_is_an_error(tmp_path):
    path = write_gt(tmp_path / "gt.txt", GT_LINES[:-1], "\n")  # count 1, no box line
    with pytest.raises(AnnotationError, match="file ends"):
        wf.read_bbx_gt(path)
    path = write_gt(tmp_path / "gt2.txt", GT_LINES[:11], "\n")  # count 3, two box lines
    with pytest.raises(AnnotationError, match=r"3 face lines .* ends after 2"):
        wf.read_bbx_gt(path)
    path = write_gt(tmp_path / "gt3.txt", GT_LINES[:1], "\n")  # name only
    with pytest.raises(AnnotationError, match="face count"):
        wf.read_bbx_gt(path)


def test_count_zero_followed_by_a_real_box_is_an_error(tmp_path):
    lines = list(GT_LINES)
    lines[6] = "3 4 5 6 0 0 0 0 0 0"
    with pytest.raises(AnnotationError, match=r"line 7: expected the dummy line .* count wrong"):
        wf.read_bbx_gt(write_gt(tmp_path / "gt.txt", lines))


def test_count_smaller_than_boxes_is_an_error(tmp_path):
    lines = list(GT_LINES)
    lines[1] = "1"  # the second box line now sits where an image path is expected
    with pytest.raises(AnnotationError, match=r"line 4: expected an image path.*count too small"):
        wf.read_bbx_gt(write_gt(tmp_path / "gt.txt", lines))


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        wf.read_bbx_gt(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="wider_face_val_bbx_gt.txt"):
        wf.load_faces("val", root=tmp_path)


@st.composite
def face_tables(draw):
    n_images = draw(st.integers(1, 6))
    images = [f"{k % 3}--Ev{k % 3}/{k % 3}_img_{k}.jpg" for k in range(n_images)]
    rows = []
    for im in images:
        for _ in range(draw(st.integers(0, 4))):
            box = draw(st.lists(st.integers(-50, 2000), min_size=4, max_size=4))
            labels = draw(st.lists(st.integers(0, 2), min_size=6, max_size=6))
            rows.append([im, im.split("/")[0], *box, *labels])
    df = pd.DataFrame(rows, columns=["image", "event", *wf.BOX_FIELDS])
    return images, df


@settings(max_examples=40, deadline=None)
@given(face_tables(), st.sampled_from(["\n", "\r\n"]))
def test_format_then_read_round_trip(tmp_path_factory, table, newline):
    images, df = table
    text = wf.format_bbx_gt(df, images).replace("\n", newline)
    path = tmp_path_factory.mktemp("rt") / "gt.txt"
    path.write_bytes(text.encode())
    got = wf.read_bbx_gt(path)
    assert got.attrs["images"] == images
    empty = [im for im in images if im not in set(df["image"])]
    assert got.attrs["placeholders"] == empty
    assert got[list(wf.BOX_FIELDS)].to_numpy().tolist() == df[list(wf.BOX_FIELDS)].to_numpy().tolist()
    assert got["image"].tolist() == df["image"].tolist()
    assert got["degenerate"].tolist() == ((df["w"] <= 0) | (df["h"] <= 0)).tolist()


def test_write_bbx_gt_is_atomic_and_reads_back(tmp_path):
    df = wf.read_bbx_gt(write_gt(tmp_path / "gt.txt"))
    out = wf.write_bbx_gt(tmp_path / "sub" / "copy.txt", df)
    assert wf.read_bbx_gt(out).equals(df)
    assert [p.name for p in out.parent.iterdir()] == ["copy.txt"]


# --------------------------------------------------------------------------- MAT files
def _cell(items):
    arr = np.empty((len(items), 1), dtype=object)
    for i, x in enumerate(items):
        arr[i, 0] = x
    return arr


def write_split_mat(path, df, images, gt_lists=None):
    """Write ``df`` as scipy.io.savemat object arrays in the layout of the official files
    (images without rows get one all-zero box, as the official MAT files have them)."""
    events = list(dict.fromkeys(im.split("/")[0] for im in images))
    out = {"event_list": _cell([np.array([e]) for e in events])}
    names = {v: [] for v in ["file_list", "face_bbx_list", *wf._MAT_LABEL_VARS.values()]}
    gts = []
    for e in events:
        ims = [im for im in images if im.split("/")[0] == e]
        names["file_list"].append(_cell([np.array([im.split("/")[1][:-4]]) for im in ims]))
        rows = [df[df["image"] == im] for im in ims]
        rows = [r if len(r) else None for r in rows]
        names["face_bbx_list"].append(
            _cell([np.zeros((1, 4), np.int32) if r is None else r[["x", "y", "w", "h"]].to_numpy(np.int32) for r in rows])
        )
        for a, v in wf._MAT_LABEL_VARS.items():
            names[v].append(
                _cell([np.zeros((1, 1), np.uint8) if r is None else r[[a]].to_numpy(np.uint8) for r in rows])
            )
        if gt_lists is not None:
            gts.append(_cell([np.asarray(gt_lists[im], dtype=np.uint16).reshape(-1, 1) for im in ims]))
    for v, lst in names.items():
        out[v] = _cell(lst)
    if gt_lists is not None:
        out["gt_list"] = _cell(gts)
    scipy.io.savemat(str(path), out)
    return path


def test_split_mat_equals_text(tmp_path):
    df = wf.read_bbx_gt(write_gt(tmp_path / "gt.txt"))
    mat = write_split_mat(tmp_path / "gt.mat", df, df.attrs["images"])
    got = wf.read_split_mat(mat, empty_as_placeholder=True)
    assert got.equals(df)
    assert got.attrs["images"] == df.attrs["images"]
    assert got.attrs["placeholders"] == df.attrs["placeholders"]
    kept = wf.read_split_mat(mat, empty_as_placeholder=False)
    assert len(kept) == len(df) + 1


def test_eval_gt_from_savemat_cells(tmp_path):
    df = wf.read_bbx_gt(write_gt(tmp_path / "gt.txt"))
    images = df.attrs["images"]
    write_split_mat(tmp_path / "wider_face_val.mat", df, images)
    keeps = {
        "easy": {images[0]: [1], images[1]: [], images[2]: [], images[3]: [1]},
        "medium": {images[0]: [1, 2], images[1]: [], images[2]: [1], images[3]: [1]},
        "hard": {images[0]: [1, 2], images[1]: [], images[2]: [1, 3], images[3]: [1]},
    }
    for s, gl in keeps.items():
        write_split_mat(tmp_path / f"wider_{s}_val.mat", df, images, gt_lists=gl)
    gt = wf.read_eval_gt(tmp_path)
    assert gt.images == [wf.image_key(im) for im in images]
    assert gt.events == ["0--Parade", "1--Handshaking"]
    key = "1--Handshaking/1_Hand_c_3"
    assert gt.boxes[key].shape == (3, 4) and gt.boxes[key].dtype == np.float64
    np.testing.assert_array_equal(gt.boxes[key][0], [5, 6, 7, 8])
    np.testing.assert_array_equal(gt.keep["hard"][key], [0, 2])  # 1-based -> 0-based
    assert gt.keep["easy"]["0--Parade/0_Parade_b_2"].size == 0
    assert gt.num_kept("medium") == 4
    assert gt.ignore_mask(key, "hard").tolist() == [False, True, False]
    assert gt.invalid[key].tolist() == [True, False, False]
    assert gt.event_images["0--Parade"] == gt.images[:2]


def test_eval_gt_rejects_out_of_range_index(tmp_path):
    df = wf.read_bbx_gt(write_gt(tmp_path / "gt.txt"))
    images = df.attrs["images"]
    write_split_mat(tmp_path / "wider_face_val.mat", df, images)
    for s in wf.SETTINGS:
        write_split_mat(tmp_path / f"wider_{s}_val.mat", df, images, {im: [5] for im in images})
    with pytest.raises(AnnotationError, match="1-based indices"):
        wf.read_eval_gt(tmp_path)


# --------------------------------------------------------------------------- Dataset
def _world(tmp_path):
    base = tmp_path / "widerface"
    base.mkdir()
    write_gt(base / "wider_face_val_bbx_gt.txt")
    (base / "WIDER_val" / "images" / "0--Parade").mkdir(parents=True)
    (base / "sample_images").mkdir()
    Image.new("RGB", (64, 48), (10, 20, 30)).save(base / "WIDER_val/images/0--Parade/0_Parade_a_1.jpg")
    Image.new("L", (32, 32), 100).save(base / "sample_images/1_Hand_c_3.jpg")  # grayscale
    (base / "sample_images/1_Hand_d_4.jpg").write_bytes(b"not a jpeg")
    return tmp_path


def test_dataset_samples(tmp_path):
    root = _world(tmp_path)
    ds = wf.WiderFaceDataset(root=root, split="val")
    assert ds.images == [GT_LINES[0], GT_LINES[7], GT_LINES[12]]  # b_2 is not on disk
    image, target = ds[0]
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    assert target["image_id"] == "0--Parade/0_Parade_a_1"
    assert target["boxes"].dtype == np.float32 and target["boxes"].shape == (2, 4)
    np.testing.assert_array_equal(target["boxes"][0], [10, 20, 40, 60])
    assert target["ignore"].tolist() == [False, True]  # negative width
    image, target = ds[1]
    assert image.shape == (32, 32, 3)
    assert target["ignore"].tolist() == [True, True, True]  # invalid, all-zero, zero width
    assert target["attributes"]["blur"].tolist() == [2, 0, 0]
    # a mask, not the 0/1 "invalid" attribute ([0, 1] == [False, True] in Python: check types)
    assert target["ignore"].dtype == bool and target["attributes"]["invalid"].dtype == np.int64
    assert target["attributes"]["invalid"].tolist() == [1, 0, 0]
    ref = ds.faces.iloc[ds._rows[ds.images[1]]]  # the arrays read the face table row for row
    np.testing.assert_array_equal(target["boxes"][:, :2], ref[["x", "y"]].to_numpy(np.float32))


def test_dataset_skips_unreadable_and_counts(tmp_path, caplog):
    ds = wf.WiderFaceDataset(root=_world(tmp_path), split="val")
    image, target = ds[2]  # 1_Hand_d_4 is garbage -> wraps to the next readable sample
    assert ds.skipped == 1 and target["image_id"] == "0--Parade/0_Parade_a_1"
    assert "1_Hand_d_4.jpg" in caplog.text


def test_dataset_subset_and_missing(tmp_path):
    root = _world(tmp_path)
    ds = wf.WiderFaceDataset(root=root, split="val", images=["1--Handshaking/1_Hand_c_3"])
    assert len(ds) == 1 and ds[0][1]["image_id"] == "1--Handshaking/1_Hand_c_3"
    with pytest.raises(FileNotFoundError, match="0_Parade_b_2.jpg"):
        wf.WiderFaceDataset(root=root, split="val", images=["0--Parade/0_Parade_b_2.jpg"])
    with pytest.raises(KeyError, match="nobody"):
        wf.WiderFaceDataset(root=root, split="val", images=["0--Parade/nobody"])


def test_dataset_transform_gets_reproducible_rng(tmp_path):
    seen = []

    def transform(image, target, rng):
        seen.append(rng.integers(1 << 30))
        return image[:10], target

    ds = wf.WiderFaceDataset(root=_world(tmp_path), split="val", transform=transform, seed=3)
    assert ds[0][0].shape[0] == 10
    ds[0]
    ds.set_epoch(1)
    ds[0]
    assert seen[0] == seen[1] != seen[2]


# --------------------------------------------------------------------------- real files
@pytest.mark.realdata
def test_real_counts_and_txt_equals_mat(real_data):
    train = wf.load_faces("train")
    assert len(train.attrs["images"]) == 12880 and len(train) == 159420
    assert len(train.attrs["placeholders"]) == 4
    assert int(train["degenerate"].sum()) == 27 and int(train["invalid"].sum()) == 2399
    neg = train[train["w"] < 0]
    assert sorted(neg["image"]) == [
        "54--Rescue/54_Rescue_rescuepeople_54_29.jpg",
        "7--Cheering/7_Cheering_Cheering_7_17.jpg",
    ]
    assert wf.load_faces("train", source="mat").equals(train)
    val = wf.load_faces("val")
    assert len(val.attrs["images"]) == 3226 and len(val) == 39708 and val["event"].nunique() == 61
    assert int(val["degenerate"].sum()) == 11 and int(val["invalid"].sum()) == 585
    assert wf.load_faces("val", source="mat").equals(val)
    assert val["image"].iloc[0] == "0--Parade/0_Parade_marchingband_1_465.jpg"
    assert len(wf.load_images("test")) == 16097


@pytest.mark.realdata
def test_real_train_parse_is_fast(real_data):
    wf._read_bbx_gt_cached.cache_clear()
    t0 = time.perf_counter()
    wf.read_bbx_gt(real_data / "widerface" / "wider_face_train_bbx_gt.txt")
    assert time.perf_counter() - t0 < 4.0  # ~0.9 s on a shared 2-core box; spec < 2 s


@pytest.mark.realdata
def test_real_eval_gt(real_data):
    gt = wf.load_eval_gt()
    assert len(gt.images) == 3226 and len(gt.events) == 61 and gt.num_boxes() == 39708
    assert {s: gt.num_kept(s) for s in wf.SETTINGS} == {"easy": 7211, "medium": 13319, "hard": 31958}
    val = wf.load_faces("val")
    key = "0--Parade/0_Parade_marchingband_1_465"
    rows = val[val["image"] == key + ".jpg"]
    np.testing.assert_array_equal(gt.boxes[key], rows[["x", "y", "w", "h"]].to_numpy(float))
    for key in gt.images:  # easy is a subset of medium, medium of hard
        e, m, h = (set(gt.keep[s][key].tolist()) for s in wf.SETTINGS)
        assert e <= m <= h


@pytest.mark.realdata
def test_real_sample_images_dataset(real_data):
    ds = wf.WiderFaceDataset(split="val")
    # the real val subset (SOURCES.md section 7): 374 images under WIDER_val/images, which
    # include the three sample images
    assert len(ds) == 374
    image, target = ds[ds.images.index("0--Parade/0_Parade_marchingband_1_465.jpg")]
    assert image.shape == (678, 1024, 3)
    assert len(target["boxes"]) == 126


def test_dataset_test_split_has_empty_targets(tmp_path):
    base = tmp_path / "widerface"
    (base / "WIDER_test" / "images" / "0--Parade").mkdir(parents=True)
    (base / "wider_face_test_filelist.txt").write_text("0--Parade/0_Parade_t_1.jpg\r\n0--Parade/0_Parade_t_2.jpg\r\n")
    Image.new("RGB", (20, 10)).save(base / "WIDER_test/images/0--Parade/0_Parade_t_2.jpg")
    ds = wf.WiderFaceDataset(root=tmp_path, split="test")
    assert ds.images == ["0--Parade/0_Parade_t_2.jpg"]
    image, target = ds[0]
    assert image.shape == (10, 20, 3) and target["boxes"].shape == (0, 4) and target["ignore"].shape == (0,)
