"""TinyPerson COCO-style json (TinyBenchmark release layout), on fixtures written here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tinylib.data import tinyperson as tp
from tinylib.data._parse import AnnotationError


def ann(id, image_id, bbox, cat=1, **flags):
    x, y, w, h = bbox
    a = {
        "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]], "bbox": list(bbox),
        "category_id": cat, "area": w * h, "iscrowd": 0, "image_id": image_id, "id": id,
        "ignore": False, "uncertain": False, "logo": False, "in_dense_image": False,
    }
    a.update(flags)
    return a


def coco():
    return {
        "type": "instance",
        "images": [
            {"file_name": "labeled_images/bb_V0032_I0001640.jpg", "height": 72, "width": 128, "id": 0},
            {"file_name": "labeled_images/bb_V0001_I0000001.jpg", "height": 72, "width": 128, "id": 1},
            {"file_name": "labeled_images/pure_bg.jpg", "height": 72, "width": 128, "id": 2},
        ],
        "annotations": [
            ann(0, 0, (108.1, 1.7, 18.6, 5.0), ignore=True, logo=True),
            ann(1, 0, (10.5, 20.25, 4.0, 9.5), cat=2),
            ann(2, 0, (30, 30, 3, 6), uncertain=True),
            ann(3, 0, (40, 30, 0, 6)),  # degenerate
            ann(4, 1, (1, 1, 5, 10), in_dense_image=True),
        ],
        "categories": [
            {"id": 1, "name": "sea_person", "supercategory": "person"},
            {"id": 2, "name": "earth_person", "supercategory": "person"},
        ],
    }


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    return path


def test_flags_and_rules(tmp_path):
    s = tp.read_annotations(write(tmp_path / "a.json", coco()))
    b = s.boxes
    assert list(b.columns) == list(tp.BOX_COLUMNS)
    assert b["category"].tolist() == ["sea_person", "earth_person", "sea_person", "sea_person", "sea_person"]
    assert b["ignored"].tolist() == [True, False, True, True, False]
    assert b["positive"].tolist() == [False, True, False, False, False]  # dense box is not positive
    assert s.images["dense"].tolist() == [False, True, False]
    assert s.images["boxes"].tolist() == [4, 1, 0]
    assert s.counts() == {
        "images": 3, "dense_images": 1, "boxes": 5, "positive": 1, "ignore": 1,
        "uncertain": 1, "dense_boxes": 1, "degenerate": 1,
    }
    assert b.loc[1, ["x", "y", "w", "h"]].tolist() == [10.5, 20.25, 4.0, 9.5]


def test_plain_coco_and_ignore_category(tmp_path):
    data = coco()
    for a in data["annotations"]:
        for f in tp.FLAGS:
            a.pop(f)
    data["annotations"][1]["category_id"] = 3
    data["categories"].append({"id": 3, "name": "ignore"})
    s = tp.read_annotations(write(tmp_path / "a.json", data))
    assert s.boxes["ignore"].tolist() == [False, True, False, False, False]
    assert not s.images["dense"].any()


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda d: d["annotations"][2].update(bbox=[1, 2, 3]), r"bbox of 4.*annotations\[2\] \(id 2\)"),
        (lambda d: d["annotations"][2].update(image_id=99), "image_id=99"),
        (lambda d: d["annotations"][2].update(ignore="yes"), "boolean 'ignore'"),
        (lambda d: d["images"][1].pop("width"), r"images\[1\]"),
        (lambda d: d.pop("annotations"), "'images' and 'annotations'"),
    ],
)
def test_bad_content_is_named(tmp_path, mutate, needle):
    data = coco()
    mutate(data)
    path = write(tmp_path / "bad.json", data)
    with pytest.raises(AnnotationError, match=needle) as info:
        tp.read_annotations(path)
    assert str(path) in str(info.value)


def test_json_syntax_error_has_line(tmp_path):
    path = tmp_path / "broken.json"
    text = json.dumps(coco(), indent=1).replace('"iscrowd": 0', '"iscrowd": 0,,', 1)
    path.write_text(text)
    line = text[: text.index(",,")].count("\n") + 1
    with pytest.raises(AnnotationError, match=rf"broken.json, line {line}: expected valid JSON"):
        tp.read_annotations(path)


def test_missing_split_explains(tmp_path):
    with pytest.raises(FileNotFoundError, match="tiny_set_train.json.*tinylib-data status"):
        tp.load_annotations("train", root=tmp_path)


def test_dataset(tmp_path):
    write(tmp_path / "tinyperson" / "annotations" / "tiny_set_train.json", coco())
    d = tmp_path / "tinyperson" / "train" / "labeled_images"
    d.mkdir(parents=True)
    Image.new("RGB", (128, 72), (1, 2, 3)).save(d / "bb_V0032_I0001640.jpg")
    Image.new("RGB", (128, 72)).save(d / "bb_V0001_I0000001.jpg")  # dense: left out
    ds = tp.TinyPersonDataset(root=tmp_path, split="train")
    assert len(ds) == 1  # pure_bg.jpg absent, dense image excluded
    image, target = ds[0]
    assert image.shape == (72, 128, 3)
    assert target["image_id"] == "labeled_images/bb_V0032_I0001640"
    np.testing.assert_allclose(target["boxes"][1], [10.5, 20.25, 14.5, 29.75])
    assert target["boxes"].dtype == np.float32
    assert target["ignore"].tolist() == [True, False, True, True]
    assert len(tp.TinyPersonDataset(root=tmp_path, split="train", include_dense=True)) == 2


def test_corner_entries_crop(tmp_path):
    data = coco()
    data["images"][0]["corner"] = [64, 0, 128, 72]
    write(tmp_path / "tinyperson" / "annotations" / "tiny_set_train.json", data)
    d = tmp_path / "tinyperson" / "train" / "labeled_images"
    d.mkdir(parents=True)
    Image.new("RGB", (128, 72)).save(d / "bb_V0032_I0001640.jpg")
    image, _ = tp.TinyPersonDataset(root=tmp_path, split="train")[0]
    assert image.shape == (72, 64, 3)
