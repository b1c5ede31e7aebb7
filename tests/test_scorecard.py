from __future__ import annotations

import json

import numpy as np
import pytest

from tinylib import scorecard


@pytest.fixture
def build(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYLIB_BUILD", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    "paper, ours, tol, rel, status",
    [
        (99, 99, 0, None, "reproduced"),
        (99, 100, 0, None, "differs"),
        (32.8, 33.5, None, 0.05, "reproduced"),
        (32.8, 40.0, None, 0.05, "differs"),
        (0.93, 0.925, 0.01, None, "reproduced"),
        (None, 1.0, 0.1, None, "not comparable"),
        (1.0, None, 0.1, None, "not comparable"),
        (1.0, float("nan"), 0.1, None, "not comparable"),
        (1.0, 1.0, None, None, "not comparable"),
        ("~800 of ~1000", 640, 0.1, None, "not comparable"),
    ],
)
def test_status_rule(paper, ours, tol, rel, status):
    assert scorecard.decide_status(paper, ours, tol, rel) == status


def test_record_and_collect(build, monkeypatch):
    monkeypatch.setenv("TINYLIB_NOTEBOOK", "01_object_scales")
    c = scorecard.record("scales.wider.share_le20", claim="share <= 20 px", paper=0.56,
                         ours=np.float32(0.57), unit="fraction", rel_tolerance=0.05)
    assert c.status == "reproduced" and "paper says" in c._repr_markdown_()
    # re-running the cell replaces the claim with the same key
    scorecard.record("scales.wider.share_le20", paper=0.56, ours=0.7, rel_tolerance=0.05)
    monkeypatch.setenv("TINYLIB_NOTEBOOK", "03_receptive_fields")
    scorecard.record("rf.resnet50_caffe.res3", paper=99, ours=99, unit="px", tolerance=0, note="exact")
    rows = scorecard.collect(build)
    assert [r["key"] for r in rows] == ["scales.wider.share_le20", "rf.resnet50_caffe.res3"]
    data = json.loads((build / "scorecard.json").read_text())
    assert data == rows
    assert set(data[0]) == {"notebook", "key", "claim", "paper", "ours", "unit", "status", "note"}
    assert data[0]["status"] == "differs" and data[0]["ours"] == 0.7
    assert data[1] == {"notebook": "03_receptive_fields", "key": "rf.resnet50_caffe.res3",
                       "claim": "rf.resnet50_caffe.res3", "paper": 99, "ours": 99, "unit": "px",
                       "status": "reproduced", "note": "exact"}
    md = (build / "scorecard.md").read_text()
    assert "| `rf.resnet50_caffe.res3` |" in md and "1 reproduced, 1 differs" in md


def test_same_key_from_two_notebooks_is_an_error(build):
    scorecard.record("a.b", paper=1, ours=1, tolerance=0, notebook="x")
    scorecard.record("a.b", paper=1, ours=1, tolerance=0, notebook="y")
    with pytest.raises(ValueError, match="a.b"):
        scorecard.collect(build)


def test_bad_key_and_corrupt_part(build):
    with pytest.raises(ValueError):
        scorecard.record("has space", paper=1, ours=1)
    (build / "scorecard").mkdir(exist_ok=True)
    (build / "scorecard" / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        scorecard.collect(build)


def test_reset_forgets_one_notebook(build):
    scorecard.record("k.one", paper=1, ours=1, tolerance=0, notebook="nb1")
    scorecard.record("k.two", paper=1, ours=1, tolerance=0, notebook="nb2")
    scorecard.reset("nb1")
    assert [r["key"] for r in scorecard.load_parts()] == ["k.two"]
    assert list(scorecard.table()["key"]) == ["k.two"]
