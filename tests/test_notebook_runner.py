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
    page = (tmp_path / "build" / "report.html").read_text()  # the executed workbook as HTML
    assert 'id="nb-01_ok"' in page and "t.k" in page and "reproduced" in page


@pytest.mark.timeout(120)
def test_failing_cell_is_named(tmp_path):
    p = _write(tmp_path / "02_bad.ipynb", "x = 1", "raise ValueError('boom')")
    with pytest.raises(notebooks.NotebookError, match=r"02_bad.ipynb: cell 2 failed"):
        notebooks.execute(p, out_dir=tmp_path / "out", timeout=60)
    assert (tmp_path / "out" / "02_bad.ipynb").exists()


@pytest.mark.timeout(120)
def test_a_cell_past_its_timeout_is_a_notebook_timeout(tmp_path):
    p = _write(tmp_path / "03_slow.ipynb", "import time\ntime.sleep(30)")
    with pytest.raises(notebooks.NotebookTimeout, match="03_slow.ipynb: no answer"):
        notebooks.execute(p, timeout=3)


PNG_1PX = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def _executed(path, text, with_image=True, markdown=""):
    """A notebook as the runner leaves it: a Markdown cell, a code cell with outputs."""
    nb = nbformat.v4.new_notebook()
    if markdown:
        nb.cells.append(nbformat.v4.new_markdown_cell(markdown))
    cell = nbformat.v4.new_code_cell("make_figure()")
    cell.execution_count = 1
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    if with_image:
        cell.outputs.append(nbformat.v4.new_output("display_data", data={"image/png": PNG_1PX,
                                                                          "text/plain": "<Figure>"}))
    nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return path


def test_html_report_is_one_self_contained_page(tmp_path):
    import base64

    src = tmp_path / "notebooks"
    src.mkdir()
    (src / "pic.png").write_bytes(base64.b64decode(PNG_1PX))
    done = tmp_path / "build" / "notebooks"
    done.mkdir(parents=True)
    a = _executed(done / "01_first.ipynb", "first output\n", markdown="# One\n\n![a picture](pic.png)")
    b = _executed(done / "02_second.ipynb", "second output\n", with_image=False)
    out = notebooks.html_report([(a, "ok", 3.0), (b, "ok", 4.0), (done / "03_gone.ipynb", "FAILED", 1.0)],
                                tmp_path / "build" / "report.html", intro="hello", source_dir=src)
    page = out.read_text()
    # every notebook in order, each reachable from the contents table
    assert page.index("first output") < page.index("second output")
    for stem in ("01_first", "02_second", "03_gone"):
        assert f'href="#nb-{stem}"' in page and f'id="nb-{stem}"' in page
    assert "03_gone.ipynb</code>: FAILED" in page and "No executed copy was written" in page
    # images embedded (the output's and the Markdown one), nothing fetched from elsewhere
    assert page.count('src="data:image/png;base64,') == 2 and 'src="pic.png"' not in page
    assert "<script src=" not in page and "<link" not in page
    assert sorted(p.name for p in out.parent.iterdir()) == ["notebooks", "report.html"]  # no temp file


def test_html_report_failure_keeps_the_previous_report(tmp_path, monkeypatch):
    from nbconvert import HTMLExporter

    out = tmp_path / "report.html"
    out.write_text("previous")
    a = _executed(tmp_path / "01_a.ipynb", "x\n")

    def boom(*args, **kwargs):
        raise RuntimeError("export failed")

    monkeypatch.setattr(HTMLExporter, "from_notebook_node", boom)
    with pytest.raises(RuntimeError, match="export failed"):
        notebooks.html_report([(a, "ok", 1.0)], out)
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01_a.ipynb", "report.html"]
