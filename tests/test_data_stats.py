"""``tinylib.data.stats.collect``: per-split counts for the CLI and the datasets notebook."""

from __future__ import annotations

import json

import pytest

from tinylib.data import stats

WIDER = ["e/a.jpg", "2", "1 1 5 5 0 0 0 1 0 0 ", "3 3 -1 4 0 0 0 0 0 0 ", "e/b.jpg", "0", "0 0 0 0 0 0 0 0 0 0 "]


def _fixture_root(tmp_path):
    w = tmp_path / "widerface"
    w.mkdir()
    for split in ("train", "val"):
        (w / f"wider_face_{split}_bbx_gt.txt").write_text("\n".join(WIDER) + "\n")
    f = tmp_path / "fddb"
    f.mkdir()
    for k in range(1, 11):
        (f / f"FDDB-fold-{k:02d}.txt").write_text(f"img_{k}\n")
        (f / f"FDDB-fold-{k:02d}-ellipseList.txt").write_text(f"img_{k}\n1\n10 5 1.5 20 20  1\n")
    t = tmp_path / "tinyperson" / "annotations"
    t.mkdir(parents=True)
    coco = {
        "images": [{"id": 1, "file_name": "x.jpg", "width": 10, "height": 10}],
        "annotations": [
            {"id": 1, "image_id": 1, "bbox": [1, 1, 2, 2], "category_id": 1, "ignore": True},
            {"id": 2, "image_id": 1, "bbox": [1, 1, 2, 0], "category_id": 1},
            {"id": 3, "image_id": 1, "bbox": [4, 4, 2, 3], "category_id": 1},
        ],
        "categories": [{"id": 1, "name": "person"}],
    }
    (t / "tiny_set_train.json").write_text(json.dumps(coco))
    return tmp_path


def test_collect_on_fixture_root(tmp_path):
    root = _fixture_root(tmp_path)
    rows = stats.collect("widerface", root=root)
    assert [r["dataset"] for r in rows] == ["widerface-train", "widerface-val"]
    assert {k: rows[0][k] for k in ("images", "objects", "degenerate", "ignored")} == {
        "images": 2, "objects": 2, "degenerate": 1, "ignored": 1,
    }
    assert rows[0]["placeholders"] == 1
    assert stats.collect("widerface_annotations", root=root) == rows  # registry name
    (fd,) = stats.collect("fddb", root=root)
    assert (fd["images"], fd["objects"], fd["degenerate"]) == (10, 10, 0)
    (tp,) = stats.collect("tinyperson", root=root)  # test split absent: skipped
    assert (tp["dataset"], tp["objects"], tp["degenerate"], tp["ignored"], tp["positive"]) == (
        "tinyperson-train", 3, 1, 2, 1,
    )
    names = [r["dataset"] for r in stats.collect("all", root=root)]
    assert names == ["widerface-train", "widerface-val", "fddb", "tinyperson-train"]
    json.dumps(rows)  # the CLI prints them as JSON


def test_explicit_missing_dataset_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="wider_face_train_bbx_gt.txt"):
        stats.collect("widerface", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="cifar"):
        stats.collect("cifar100", root=tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        stats.collect("nope", root=tmp_path)
    assert stats.collect("demo", root=tmp_path) == []


def test_synthetic_world(monkeypatch, tmp_path):
    synthetic = pytest.importorskip("tinylib.data.synthetic")
    monkeypatch.setattr(synthetic, "quick_world", lambda **kw: synthetic.make_world(3, 2, seed=5, image_size=(96, 64)))
    rows = stats.collect("synthetic")
    by = {r["dataset"]: r for r in rows}
    assert by["synthetic-widerface-train"]["images"] == 3 and by["synthetic-widerface-val"]["images"] == 2
    assert by["synthetic-widerface-val-eval"]["images"] == 2
    assert by["synthetic-widerface-val-eval"]["objects"] == by["synthetic-widerface-val"]["objects"]
    assert {"synthetic-tinyperson-train", "synthetic-tinyperson-test"} <= set(by)


@pytest.mark.realdata
def test_real_counts(real_data):
    rows = {r["dataset"]: r for r in stats.collect("all")}
    assert (rows["widerface-train"]["images"], rows["widerface-train"]["objects"]) == (12880, 159420)
    assert rows["widerface-train"]["placeholders"] == 4
    assert (rows["widerface-val"]["images"], rows["widerface-val"]["objects"]) == (3226, 39708)
    assert rows["widerface-test"]["images"] == 16097
    assert rows["widerface-val-eval"]["kept_hard"] == 31958
    assert (rows["fddb"]["images"], rows["fddb"]["objects"]) == (2845, 5171)
    assert (rows["imagenet-val"]["images"], rows["imagenet-val"]["objects"]) == (50000, 80477)
    table = stats.compare_official(list(rows.values()))
    assert (table["images"] == table["official images"]).all()
