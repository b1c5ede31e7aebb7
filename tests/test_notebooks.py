"""Every notebook executes headless, top to bottom, in quick mode — with the real data root
(when present) and on the embedded default (no real data: synthetic fallbacks) — and is
committed clean."""

from __future__ import annotations

import os

import pytest

from tinylib import notebooks

NOTEBOOKS = notebooks.list_notebooks()
TIMEOUT = int(os.environ.get("TINYLIB_NOTEBOOK_TIMEOUT", "600"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no NN_topic.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    assert notebooks.dirty_cells(path) == [], f"{path.name} carries outputs: run `make strip`"


@pytest.mark.notebook
@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_with_real_data(path, tmp_path, real_data):
    notebooks.execute(path, out_dir=tmp_path, quick=True, timeout=TIMEOUT)


@pytest.mark.notebook
@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_embedded_default(path, tmp_path, monkeypatch):
    """What `make run` does on a fresh machine: no real data anywhere."""
    empty = tmp_path / "no-real-data"
    empty.mkdir()
    monkeypatch.setenv("TINYLIB_DATA", str(empty))
    notebooks.execute(path, out_dir=tmp_path, quick=True, timeout=TIMEOUT)
