from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tinylib import report, scorecard  # noqa: E402

RESULTS_NB = Path(__file__).parents[1] / "notebooks" / "99_results.ipynb"


@pytest.fixture
def build(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYLIB_BUILD", str(tmp_path))
    return tmp_path


def _record_some():
    """Rows as the chapters write them: real, synthetic, missing, no data needed."""
    scorecard.record("rf.resnet50_caffe.res3", 99, notebook="04_receptive_fields")
    scorecard.record("rf.resnet50_torchvision.res3", 91, notebook="04_receptive_fields")
    scorecard.record("scales.wider.abs_size_mean", 32.75, source="real", notebook="02_object_scales")
    scorecard.record("scales.wider.abs_size_std", 40.0, source="synthetic", notebook="02_object_scales")
    scorecard.record("scales.imagenet.share_40_140", None, source="missing", notebook="02_object_scales")
    scorecard.record("templates.k25.mean_jaccard_to_paper", 0.01, notebook="03_templates")


def test_load_prefers_the_parts_of_this_build(build):
    _record_some()
    (build / "scorecard.json").write_text(json.dumps([{"notebook": "x", "key": "old.row", "status": "differs"}]))
    res = report.load()
    assert not res.example and "parts" in res.origin
    assert {r["key"] for r in res.rows} >= {"rf.resnet50_caffe.res3", "scales.wider.abs_size_std"}
    assert "old.row" not in {r["key"] for r in res.rows}


def test_load_falls_back_to_the_collected_scorecard(build):
    _record_some()
    scorecard.collect(build)
    for part in (build / "scorecard").glob("*.json"):
        part.unlink()
    res = report.load(build)
    assert not res.example and "scorecard.json" in res.origin and len(res.rows) == 6
    df = res.frame
    # scorecard.json carries no tolerances: the comparable rows take the paper table's
    row = df.set_index("key").loc["rf.resnet50_torchvision.res3"]
    assert row["status"] == "differs" and row["allowed"] == 0 and row["band"] == 0
    assert row["deviation"] == pytest.approx(91 / 99 - 1)


def test_nothing_recorded_gives_the_labelled_example(build):
    res = report.load()
    assert res.example and res.rows == report.EXAMPLE_ROWS and res.rows is not report.EXAMPLE_ROWS
    text = report.summary(res)
    assert text.startswith("**Nothing recorded yet.**") and "`make run`" in text and "EXAMPLE" in text
    assert str(build) in text
    assert "EXAMPLE" in report.counts(res.frame, example=True).index.name
    assert "EXAMPLE" in report.tables_html(res.frame, example=True)
    fig = report.plot(res.frame, "real", example=True)
    assert "EXAMPLE" in fig.axes[0].get_title(loc="left")
    plt.close(fig)


def test_example_rows_cover_every_kind_and_status():
    df = report.frame(report.EXAMPLE_ROWS)
    assert set(df["kind"]) == {"real", "synthetic", "missing"}
    assert set(df["status"]) == set(scorecard.STATUSES)
    for r in report.EXAMPLE_ROWS:  # the statuses are the ones the scorecard rule gives
        tol = None if r["status"] == "not comparable" else r["tolerance"]
        assert scorecard.decide_status(r["paper"], r["ours"], tol, r["rel_tolerance"]) == r["status"]


def test_corrupt_scorecard_json_names_the_file(build):
    (build / "scorecard.json").write_text('[{"key": "a.b", "status": "ok"},\n oops]')
    with pytest.raises(ValueError, match=r"scorecard.json: line 2"):
        report.load(build)
    (build / "scorecard.json").write_text('[{"notebook": "x"}]')
    with pytest.raises(ValueError, match=r"scorecard.json: row 0 has no 'key'"):
        report.load(build)


def test_interactive_duplicates_give_way_to_the_chapter(build):
    scorecard.record("rf.resnet50_caffe.res3", 98, notebook="interactive")
    scorecard.record("rf.resnet50_caffe.res3", 99, notebook="04_receptive_fields")
    scorecard.record("rf.resnet50_caffe.res4", 291, notebook="interactive")
    rows = report.load().rows
    assert sorted((r["notebook"], r["key"]) for r in rows) == [
        ("04_receptive_fields", "rf.resnet50_caffe.res3"), ("interactive", "rf.resnet50_caffe.res4")]


def test_kind_from_the_notes_the_library_writes(build):
    _record_some()
    df = report.load().frame.set_index("key")
    assert df.loc["scales.wider.abs_size_mean", "kind"] == "real"
    assert df.loc["rf.resnet50_caffe.res3", "kind"] == "real"  # no data needed
    assert df.loc["scales.wider.abs_size_std", "kind"] == "synthetic"
    assert df.loc["scales.imagenet.share_40_140", "kind"] == "missing"
    # the studies' note (record(**claim) without source=), and an explicit kind
    assert report.row_kind({"note": "x. Data: synthetic world (rendered scenes, no real faces) — not "
                                    "comparable."}) == "synthetic"
    assert report.row_kind({"note": "Data: real WIDER faces (40 train / 20 val windows)"}) == "real"
    assert report.row_kind({"note": "", "source_kind": "synthetic"}) == "synthetic"


def test_frame_band_and_deviation(build):
    _record_some()
    df = report.load().frame.set_index("key")
    mean = df.loc["scales.wider.abs_size_mean"]
    assert mean["status"] == "reproduced" and mean["allowed"] == pytest.approx(0.1)
    assert mean["band"] == pytest.approx(0.1 / 32.8) and mean["deviation"] == pytest.approx(32.75 / 32.8 - 1)
    assert np.isnan(df.loc["scales.wider.abs_size_std", "band"])  # synthetic: never compared
    assert np.isnan(df.loc["scales.imagenet.share_40_140", "deviation"])  # no value of ours
    assert np.isnan(df.loc["templates.k25.mean_jaccard_to_paper", "deviation"])  # paper 0: no ratio
    assert list(report.frame(report.EXAMPLE_ROWS)["notebook"]) == sorted(r["notebook"] for r in report.EXAMPLE_ROWS)


def test_counts_per_chapter_and_total(build):
    _record_some()
    c = report.counts(report.load().frame)
    assert list(c.index) == ["02 object scales", "03 templates", "04 receptive fields", "total"]
    assert c.loc["04 receptive fields", ["reproduced", "differs", "not comparable"]].tolist() == [1, 1, 0]
    assert c.loc["02 object scales"].to_dict() == {"reproduced": 1, "differs": 0, "not comparable": 2,
                                                   "rows": 3, "synthetic stand-ins": 1, "data missing": 1,
                                                   report.SAMPLES_COLUMN: 0}
    assert c.loc["total", "rows"] == 6 == c.loc["total", list(scorecard.STATUSES)].sum()
    assert (c.drop("total").sum() == c.loc["total"]).all()


def _record_samples():
    """A claim from a shipped table and the live sample beside it, as chapter 07 records them."""
    scorecard.record("scales.wider.abs_size_mean", 32.8, source="real", sample=8, notebook="02_object_scales")
    scorecard.record("rf.resnet50_caffe.res4", 290, sample=3, notebook="04_receptive_fields")


def test_samples_are_shown_apart_and_never_counted(build):
    _record_some()
    _record_samples()
    df = report.load().frame
    assert df.set_index("key")["sample"].to_dict()["scales.wider.abs_size_mean.sample"]
    assert int(df["sample"].sum()) == 2
    c = report.counts(df)
    assert c.loc["total", "rows"] == 6 == c.loc["total", list(scorecard.STATUSES)].sum()  # claims only
    assert c.loc["total", report.SAMPLES_COLUMN] == 2 and c.loc["04 receptive fields", report.SAMPLES_COLUMN] == 1
    assert c.loc["02 object scales", "reproduced"] == 1  # the sample (32.8 = the paper's) is not a reproduction
    assert "2 live samples" in report.summary(report.load())
    page = report.tables_html(df, kind="real")
    assert ".sample" not in page  # the claims' tables hold no sample ...
    samples = report.samples_html(df)
    assert "Live samples, not claims" in samples and "scales.wider.abs_size_mean.sample" in samples
    assert "rf.resnet50_caffe.res3" not in samples  # ... and the samples' table no claim
    fig = report.plot(df, "real")
    assert not any(t.get_text().endswith(".sample") for t in fig.axes[0].get_yticklabels())
    plt.close(fig)
    assert not report.verdicts(df)["key"].str.endswith(".sample").any()
    assert "no live samples" in report.samples_html(report.frame(report.EXAMPLE_ROWS))


def test_verdict_per_finding(build):
    _record_some()
    v = report.verdicts(report.load().frame).set_index("key")
    assert list(v.columns) == ["finding", "paper", "ours", "verdict", "chapter"]
    assert v.loc["rf.resnet50_torchvision.res3", "verdict"] == "differs"
    assert v.loc["rf.resnet50_torchvision.res3", "paper"] == "99 px" and v.loc["rf.resnet50_torchvision.res3", "ours"] == "91 px"
    assert v.loc["rf.resnet50_caffe.res3", "verdict"] == "reproduced"
    assert v.loc["rf.resnet50_caffe.res3", "chapter"] == "04 receptive fields"
    assert v.loc["scales.wider.abs_size_std", "verdict"] == "not comparable: synthetic stand-in"
    assert v.loc["scales.imagenet.share_40_140", "verdict"] == "not comparable: data missing"
    assert v.loc["scales.imagenet.share_40_140", "ours"] == "—"
    assert report.verdict_of({"status": "not comparable", "kind": "real", "paper": "helps (no number)",
                              "ours": 0.3}) == "not comparable: the paper gives no number"
    assert report.verdict_of({"status": "not comparable", "kind": "real", "paper": 0.82,
                              "ours": 0.56}).startswith("not comparable: shown beside")
    assert report.verdict_of({"key": "x.y.sample", "status": "not comparable"}) == "live sample (not a claim)"


def test_differences_are_rendered_from_the_rows(build):
    _record_some()
    text = report.differences(report.load().frame)
    assert text.startswith("1 claims differ") and "**04 receptive fields**" in text
    assert "`rf.resnet50_torchvision.res3` 99 → 91" in text and "res3` 99 → 99" not in text
    assert report.differences(report.frame([])).startswith("No claim of this build differs")


def test_deviation_ticks_stay_readable():
    assert report.deviation_ticks(0.05) == [-0.03, -0.01, 0.0, 0.01, 0.03]
    far = report.deviation_ticks(80)
    assert far == [-10, -1, -0.1, -0.01, 0.0, 0.01, 0.1, 1, 10]  # powers of ten only
    assert report._deviation_label(-0.1) == "\u221210%" and report._deviation_label(0) == "0"


def test_plot_draws_each_row_of_its_kind_with_its_band(build):
    _record_some()
    df = report.load().frame
    fig = report.plot(df, "real")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    # real rows with a numeric, non-zero paper value and a value of ours; the others are counted
    assert labels == ["scales.wider.abs_size_mean", "rf.resnet50_caffe.res3", "rf.resnet50_torchvision.res3"]
    assert "1 rows with a text or zero paper value" in ax.get_xlabel()
    assert ax.get_xscale() == "symlog"
    assert all(t.get_rotation() == 45 for t in ax.get_xticklabels())  # readable however many ticks
    bands = [ln for ln in ax.get_lines() if ln.get_linewidth() == 7]
    assert len(bands) == 1 and bands[0].get_xdata()[1] == pytest.approx(0.1 / 32.8)
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {
        "paper", "paper ± tolerance", "tolerance 0 (exact)", "ours: reproduced", "ours: differs"}
    plt.close(fig)
    syn = report.plot(df, "synthetic")
    assert [t.get_text() for t in syn.axes[0].get_yticklabels()] == ["scales.wider.abs_size_std"]
    assert "synthetic stand-ins" in syn.axes[0].get_title(loc="left")
    plt.close(syn)
    empty = report.plot(df[df["kind"] == "real"], "synthetic")
    assert "no rows to draw" in empty.axes[0].texts[0].get_text()
    plt.close(empty)
    with pytest.raises(ValueError, match="kind must be one of"):
        report.plot(df, "fake")


def test_tables_show_every_note_in_full(build):
    long_note = "a long note " * 40 + "END"
    scorecard.record("rf.resnet50_caffe.res5", 483, notebook="04_receptive_fields", note=long_note)
    _record_some()
    df = report.load().frame
    page = report.tables_html(df, kind="real")
    assert long_note.strip() in page and "<h4>04 receptive fields</h4>" in page
    assert "scales.wider.abs_size_std" not in page  # synthetic rows go to their own table
    assert "scales.wider.abs_size_std" in report.tables_html(df, kind="synthetic")
    t = report.table(df, kind="real").set_index("key")
    assert t.loc["scales.wider.abs_size_mean", "tolerance"] == "± 0.1"
    assert t.loc["rf.resnet50_caffe.res5", "tolerance"] == "exact"
    assert report.tables_html(df[df["kind"] == "x"]) == "<p>(no rows)</p>"


def test_results_notebook_only_calls_the_library():
    nb = nbformat.read(RESULTS_NB, 4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert code and all(len(src.splitlines()) <= 15 for src in code)
    assert not any("record(" in src or "collect(" in src for src in code)  # it records nothing
    assert "report.load()" in code[0]
