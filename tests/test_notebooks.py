"""Every notebook executes headless, top to bottom, in quick mode, and is committed clean."""

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
def test_notebook_runs_in_quick_mode(path, tmp_path):
    notebooks.execute(path, out_dir=tmp_path, quick=True, timeout=TIMEOUT)
