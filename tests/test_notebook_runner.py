from __future__ import annotations

import json

import nbformat
import pytest

from tinylib import notebooks


def _write(path, *sources, outputs=False):
    nb = nbformat.v4.new_notebook()
    for src in sources:
        cell = nbformat.v4.new_code_cell(src)
        cell.metadata["tags"] = ["keep-me"]
        if outputs:
            cell.execution_count = 1
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x\n")]
        nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return path


def test_strip_removes_outputs_but_keeps_metadata(tmp_path):
    p = _write(tmp_path / "01_x.ipynb", "print(1)", outputs=True)
    assert notebooks.dirty_cells(p) == [0]
    assert notebooks.strip(p) is True
    assert notebooks.dirty_cells(p) == []
    assert json.loads(p.read_text())["cells"][0]["metadata"]["tags"] == ["keep-me"]
    assert notebooks.strip(p) is False
    assert notebooks.main(["check", str(p)]) == 0


@pytest.mark.timeout(120)
def test_execute_passes_quick_mode_and_records_scorecard(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLIB_BUILD", str(tmp_path / "build"))
    p = _write(
        tmp_path / "01_ok.ipynb",
        "from tinylib import config, scorecard\nassert config.quick_mode()",
        "scorecard.record('t.k', paper=1, ours=1, tolerance=0)",
    )
    results, failures = notebooks.run_all([p], tmp_path / "build", quick=True, timeout=60)
    assert failures == [] and results[0][1] == "ok"
    rows = json.loads((tmp_path / "build" / "scorecard.json").read_text())
    assert rows[0]["notebook"] == "01_ok" and rows[0]["status"] == "reproduced"
    assert (tmp_path / "build" / "notebooks" / "01_ok.ipynb").exists()
    assert notebooks.dirty_cells(p) == []  # the source stays clean


@pytest.mark.timeout(120)
def test_failing_cell_is_named(tmp_path):
    p = _write(tmp_path / "02_bad.ipynb", "x = 1", "raise ValueError('boom')")
    with pytest.raises(notebooks.NotebookError, match=r"02_bad.ipynb: cell 1 failed"):
        notebooks.execute(p, out_dir=tmp_path / "out", timeout=60)
    assert (tmp_path / "out" / "02_bad.ipynb").exists()


@pytest.mark.timeout(120)
def test_a_cell_past_its_timeout_is_a_notebook_timeout(tmp_path):
    p = _write(tmp_path / "03_slow.ipynb", "import time\ntime.sleep(30)")
    with pytest.raises(notebooks.NotebookTimeout, match="03_slow.ipynb: no answer"):
        notebooks.execute(p, timeout=3)
