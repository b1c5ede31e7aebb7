"""Shipped measured tables with provenance, the WIDER val subset split, and the scorecard's
rule that claims about long runs come from those tables (issue #22)."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest

from tinylib import measured, scorecard
from tinylib.data import splits


# ------------------------------------------------------------------------------- the split
def test_shipped_split_is_the_rule_applied_to_its_own_keys():
    shipped = splits.load_split()
    assert len(shipped) == 374
    assert splits.assign_halves(shipped) == shipped
    assert splits.SPLIT_FILE.read_text() == splits.format_split(shipped)


def test_registry_lists_each_half_of_the_present_val_images(real_data):
    from tinylib.data import registry

    every = registry.present_images("val")
    tuning, test = (registry.present_images("val", half=h) for h in ("tuning", "test"))
    assert sorted(tuning + test) == every and not set(tuning) & set(test)
    assert len(tuning) == len(test) == len(every) // 2
    assert [k[:-4] for k in test] == sorted(splits.half_keys("test"))
    with pytest.raises(ValueError, match="val images"):
        registry.present_images("train", half="test")
    with pytest.raises(ValueError, match="half"):
        registry.present_images("val", half="other")


def test_split_is_half_and_stratified_by_event():
    shipped = splits.load_split()
    assert Counter(shipped.values()) == {"tuning": 187, "test": 187}
    by_event = Counter((splits.event_of(k), h) for k, h in shipped.items())
    for event in {splits.event_of(k) for k in shipped}:
        assert abs(by_event[(event, "test")] - by_event[(event, "tuning")]) <= 1, event


def test_assign_halves_ignores_order_and_extension():
    keys = [f"{e}--Ev/{e}_img_{i}" for e in range(3) for i in range(7)]
    a = splits.assign_halves(keys)
    b = splits.assign_halves([k + ".jpg" for k in reversed(keys)])
    assert a == b
    assert abs(Counter(a.values())["test"] - Counter(a.values())["tuning"]) <= 1


def test_halves_keeps_order_and_rejects_unknown_images():
    split = {"0--P/a": "test", "0--P/b": "tuning", "0--P/c": "test"}
    assert splits.halves(["0--P/c", "0--P/b", "0--P/a"], split) == {
        "tuning": ["0--P/b"], "test": ["0--P/c", "0--P/a"]}
    with pytest.raises(KeyError, match="not in the WIDER val subset split"):
        splits.halves(["9--X/z"], split)


@pytest.mark.parametrize("text, where", [
    ("image,half\n", "line 1"),
    ("image,event,half\n0--P/a,0--P,train\n", "line 2: half 'train'"),
    ("image,event,half\n0--P/a,1--Q,test\n", "line 2: event"),
    ("image,event,half\n0--P/a,0--P,test\n0--P/a,0--P,tuning\n", "line 3: image"),
])
def test_malformed_split_names_file_and_line(tmp_path, text, where):
    p = tmp_path / "split.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=where):
        splits.load_split(p)


# ------------------------------------------------------------------------- measured tables
def test_table_round_trips_with_provenance(tmp_path):
    frame = pd.DataFrame({"detector": ["hr", "mtcnn"], "half": ["test", "test"],
                          "hard": [0.51234567, 0.4]})
    prov = measured.provenance(["python", "tools/x.py", "--ship"], images={"test": ["0--P/a"]},
                               notes="n")
    measured.write_table("demo", frame, prov, directory=tmp_path)
    t = measured.read_table("demo", directory=tmp_path)
    assert list(t.frame["detector"]) == ["hr", "mtcnn"]
    assert t.frame["hard"].iloc[0] == pytest.approx(0.512346)
    assert t.provenance["command"] == "python tools/x.py --ship"
    assert t.images("test") == 1
    assert "re-made by `python tools/x.py --ship`" in t.describe()
    assert measured.list_tables(tmp_path) == ["demo"]


def test_table_without_provenance_is_refused(tmp_path):
    (tmp_path / "bare.csv").write_text("a\n1\n")
    with pytest.raises(FileNotFoundError, match="no provenance"):
        measured.read_table("bare", directory=tmp_path)
    (tmp_path / "bare.provenance.json").write_text(json.dumps({"command": "x"}))
    with pytest.raises(ValueError, match="lacks commit"):
        measured.read_table("bare", directory=tmp_path)
    with pytest.raises(FileNotFoundError, match="make reproduce NAME=nothing"):
        measured.read_table("nothing", directory=tmp_path)


def test_every_shipped_table_has_complete_provenance():
    names = measured.list_tables()
    assert {"wider_subset_detectors", "hr_ablation", "toolbox_runs", "bh_wider_runs"} <= set(names)
    for n in names:
        t = measured.read_table(n)
        assert len(t.frame), n
        assert t.provenance["images"], n


def test_reproduce_dry_run_prints_the_recorded_command(capsys):
    assert measured.main(["reproduce", "toolbox_runs", "--dry-run"]) == 0
    assert "tools/train_toolbox.py" in capsys.readouterr().out
    assert measured.main(["reproduce", "no_such_table"]) == 2


# ----------------------------------------------------------------------------- scorecard
@pytest.fixture
def build(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLIB_BUILD", str(tmp_path))
    monkeypatch.setenv("TINYLIB_NOTEBOOK", "nb")
    return tmp_path


def test_claim_about_a_long_run_needs_a_table_or_is_a_sample(build, tmp_path):
    with pytest.raises(ValueError, match="shipped table"):
        scorecard.record("hr.wider_subset.hard", 0.8, source="real")
    with pytest.raises(ValueError, match="shipped table"):
        scorecard.record("eval.peers.mtcnn.wider_subset.hard", 0.9, source="real")
    s = scorecard.record("hr.wider_subset.hard", 0.803, sample=8, source="real")
    assert s.key == "hr.wider_subset.hard.sample"
    assert s.status == "not comparable" and "live sample: 8 images" in s.note
    frame = pd.DataFrame({"hard": [0.5]})
    measured.write_table("t", frame, measured.provenance("cmd", images={"test": ["a/b"]}),
                         directory=tmp_path)
    t = measured.read_table("t", directory=tmp_path)
    c = scorecard.record("hr.wider_subset.hard", 0.5, table=t, note="test half")
    assert c.key == "hr.wider_subset.hard" and c.source_kind == "real"
    assert c.note.startswith("test half; table `t` (test 1 images")
    with pytest.raises(ValueError, match="not both"):
        scorecard.record("hr.wider_subset.hard", 0.5, table=t, sample=3)
    # keys that need no long run are recorded as before
    assert scorecard.record("rf.x.res3", 99, paper=99, tolerance=0).status == "reproduced"


def test_readme_blocks_are_rendered_from_the_tables():
    from tinylib.config import PACKAGE_DIR, REPO_DIR

    for f in (PACKAGE_DIR / "weights" / "README.md", REPO_DIR / "README.md"):
        text = f.read_text(encoding="utf-8")
        assert measured.render_blocks(text) == text, (
            f"{f}: a measured block is stale: run `python -m tinylib.measured render {f}`")


def test_render_blocks_replaces_only_the_marked_block(tmp_path):
    frame = pd.DataFrame({"detector": ["hr", "hr", "mtcnn", "mtcnn", "mtcnn", "mtcnn"],
                          "setting": ["s", "s", "1x", "1x", "2x", "2x"],
                          "half": ["tuning", "test"] * 3, "easy": [0.1, 0.2, 0.7, 0.7, 0.8, 0.8],
                          "medium": [0.3, 0.4, 0.7, 0.7, 0.8, 0.8], "hard": [0.5, 0.6, 0.7, 0.7, 0.8, 0.8],
                          "chosen": [True, True, False, False, True, True]})
    measured.write_table("d", frame, measured.provenance("cmd", images={"test": ["a/b"]}),
                         directory=tmp_path)
    text = "before\n<!-- measured:d -->\nold 0.9\n<!-- /measured -->\nafter\n"
    out = measured.render_blocks(text, tmp_path)
    assert out.startswith("before\n<!-- measured:d -->\n| detector | setting | easy (test)")
    assert "| hr | s | 0.200 | 0.400 | 0.600 | 0.100 | 0.300 | 0.500 |" in out
    assert "| mtcnn | 2x |" in out and "| mtcnn | 1x |" not in out  # only what tuning chose
    assert "old 0.9" not in out and out.endswith("<!-- /measured -->\nafter\n")
    # a sweep of one detector's setting shows every row, the chosen one marked
    sweep = frame[frame["detector"] == "mtcnn"]
    measured.write_table("sw", sweep, measured.provenance("cmd", images={"test": ["a/b"]}),
                         directory=tmp_path)
    out = measured.render("sw", tmp_path)
    assert out.startswith("| setting | easy (test)")
    assert "| 1x | 0.700 |" in out and "| 2x (chosen) | 0.800 |" in out


def test_render_runs_scored_per_half(tmp_path):
    frame = pd.DataFrame({"run": ["a_s0"] * 3, "backbone": ["a"] * 3, "init": ["scratch"] * 3, "seed": [0] * 3,
                          "half": ["all", "tuning", "test"], "images": [374, 187, 187],
                          "easy": [0.3, 0.2, 0.4], "medium": [0.3] * 3, "hard": [0.1, 0.05, 0.15],
                          "le20": [0.01] * 3})
    measured.write_table("runs", frame, measured.provenance("cmd", images={"test": ["a/b"]}), directory=tmp_path)
    out = measured.render("runs", tmp_path)
    assert out.startswith("| run | easy (test) | medium (test) | hard (test) | le20 (test) | easy (tuning)")
    assert "| a_s0 | 0.400 | 0.300 | 0.150 | 0.010 | 0.200 |" in out  # the halves, not the whole subset
