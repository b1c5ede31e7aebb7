"""The one table of paper claims (tinylib.papers) and how the scorecard reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinylib import papers, scorecard
from tinylib.data.sources import Source


@pytest.fixture
def build(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYLIB_BUILD", str(tmp_path))
    return tmp_path


REAL = Source("WIDER FACE annotations", "real", Path("/data"))
SYNTHETIC = Source("WIDER FACE annotations", "synthetic", Path("/world"), ("a.txt",))
MISSING = Source("released HR templates", "missing", None, ("b.mat",))


def test_claims_are_unique_and_well_formed():
    assert len(papers.CLAIMS) > 50
    for key, c in papers.CLAIMS.items():
        assert c.key == key and papers.KEY_RE.fullmatch(key), key
        assert c.source and c.claim, key
        assert isinstance(c.value, (int, float, str)) and not isinstance(c.value, bool), key
        for tol in (c.tolerance, c.rel_tolerance):
            assert tol is None or (isinstance(tol, (int, float)) and tol >= 0), key
    with pytest.raises(ValueError, match="twice"):
        papers._add("data.fddb.images", 1, "x")
    with pytest.raises(ValueError, match="dot-separated"):
        papers._add("no_dots", 1, "x")


def test_lookup_and_table():
    assert papers.value("scales.wider.abs_size_mean") == 32.8
    assert papers.get("hr.selfie.faces_found").source.startswith("Hu & Ramanan")
    assert papers.find("no.such.key") is None
    with pytest.raises(KeyError, match="near"):
        papers.get("scales.wider.nope")
    t = papers.table("bh.table4.")
    assert len(t) == 12 and set(t["rel_tolerance"]) == {0.02}


def test_same_numbers_as_the_library_tables():
    """flops, compare and stats read their paper numbers from tinylib.papers."""
    from tinylib.analysis import flops
    from tinylib.compare import wider_subset as compare
    from tinylib.data import stats

    assert flops.PAPER_TABLE4 == papers.TABLE4
    assert {k: v for k, v in compare.PEER_PUBLISHED.items() if v[0]} == papers.PEERS
    assert stats.OFFICIAL["widerface-train"]["images"] == papers.value("data.widerface.train.images")
    assert stats.OFFICIAL["fddb"]["objects"] == papers.value("data.fddb.faces")


def test_record_reads_the_table_on_real_data(build):
    c = scorecard.record("scales.wider.abs_size_mean", 32.85, source=REAL)
    assert (c.paper, c.tolerance, c.unit, c.status) == (32.8, 0.1, "px", "reproduced")
    assert c.source_kind == "real" and c.as_row()["source_kind"] == "real"
    assert c.claim == papers.get("scales.wider.abs_size_mean").claim
    assert scorecard.record("scales.wider.abs_size_mean", 33.0, source=REAL).status == "differs"
    # relative tolerance from the table; no data involved (source=None) compares too
    assert scorecard.record("bh.table4.resnet50.gflops", 26.905).status == "reproduced"
    assert scorecard.record("bh.table4.resnet50.gflops", 25.0).status == "differs"
    # the table's note on the paper value is the default note
    assert scorecard.record("data.widerface.train.boxes", 159424, source="real").note == \
        papers.get("data.widerface.train.boxes").note


@pytest.mark.parametrize("source", [SYNTHETIC, "synthetic", MISSING, (REAL, MISSING), (SYNTHETIC, REAL)])
def test_record_on_synthetic_or_missing_data_is_not_comparable(build, source):
    c = scorecard.record("scales.wider.abs_size_mean", 32.8, source=source, note="measured")
    assert c.status == "not comparable" and c.paper == 32.8 and c.tolerance is None
    kind = scorecard.source_kind(source)
    assert c.source_kind == kind and kind in ("synthetic", "missing")
    what = "data" if isinstance(source, str) else "WIDER FACE annotations"
    assert c.note.startswith(f"synthetic world (real {what} absent)" if kind == "synthetic"
                             else "released HR templates not in the data root")
    assert c.note.endswith("measured") == (kind == "synthetic")  # missing data: nothing measured


def test_study_data_like_sources(build):
    class Study:  # tinylib.studies.StudyData: a kind and the Source it came from
        kind, source = "synthetic", SYNTHETIC

    assert scorecard.source_kind(Study()) == "synthetic"
    assert "WIDER FACE annotations" in scorecard.source_note(Study())
    with pytest.raises(ValueError, match="source"):
        scorecard.record("a.b", 1, source="simulated")


def test_explicit_values_win_and_old_form_still_works(build):
    c = scorecard.record("scales.wider.abs_size_mean", 33.0, source=REAL, tolerance=0.5)
    assert (c.tolerance, c.status) == (0.5, "reproduced")
    # giving one tolerance drops the table's pair; explicit None: shown, not compared
    assert scorecard.record("scales.wider.share_le20", 0.57, rel_tolerance=0.0).status == "differs"
    assert scorecard.record("scales.wider.share_le20", 0.56, tolerance=None).status == "not comparable"
    # the pre-table form: a key not in the table, everything explicit
    c = scorecard.record("x.old", claim="c", paper=99, ours=99, unit="px", tolerance=0, note="n")
    assert (c.claim, c.paper, c.unit, c.status, c.note) == ("c", 99, "px", "reproduced", "n")
    assert scorecard.record("x.none", ours=1.0).status == "not comparable"
    # another key's claim as the paper side (e.g. the same number under a second key)
    c = scorecard.record("x.alias", 0.919, paper=papers.get("eval.published.hr_res101.easy"))
    assert (c.paper, c.status) == (0.919, "reproduced")


def test_evaluation_chapter_quotes_table2_as_typed_in_papers():
    """06's "paper says" table is Table 2 of Hu & Ramanan: each row equals tinylib.papers."""
    import json
    import re

    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / "06_evaluation.ipynb")
                    .read_text(encoding="utf-8"))
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    rows = {label: [papers.value(f"eval.table2.{key}.{s}") for s in papers.SETTINGS]
            for key, (label, _) in papers.HR_TABLE2_ROWS.items()}
    rows["HR-ResNet101"] = list(papers.HR_TABLE2.values())
    quoted = 0
    for line in text.splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in rows:
            assert [float(c) for c in cells[1:]] == list(rows[cells[0]]), line
            quoted += 1
    assert quoted >= 4 and re.search(r"Table 2", text)
