"""No measured number is typed into a chapter's markdown (issue #22): "we get" prose is
rendered from the shipped tables or the cell's own result (tinylib.prose.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinylib import prose

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markdown_has_no_typed_measurement(path):
    bad = prose.undeclared_numbers(path)
    assert not bad, (
        f"{path.name}: numbers in markdown that are neither paper values (tinylib/papers.py) "
        "nor declared text constants (metadata.tinylib.text_constants): render them from a "
        "table with tinylib.prose.md instead:\n" + "\n".join(bad))


def test_checker_catches_a_typed_number_and_passes_references(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source":
                     "As Fig. 7 and Table 1 show (Hu & Ramanan 2017, chapter 05), 25x20 faces "
                     "at 2x: `ap=0.4` and $x_2$. We get hard AP 0.613 on 187 photos."}],
          "metadata": {"tinylib": {"text_constants": [187]}}, "nbformat": 4,
          "nbformat_minor": 5}
    p = tmp_path / "nb.ipynb"
    p.write_text(json.dumps(nb))
    bad = prose.undeclared_numbers(p, paper_values=set())
    assert len(bad) == 1 and "0.613" in bad[0] and bad[0].startswith("cell 1:")


def test_md_formats_and_signs():
    out = prose.md("hard {x:.3f} ({d})", x=0.5604, d=prose.signed(-0.03))
    assert "0.560" in str(getattr(out, "data", out)) and "\u22120.030" in str(getattr(out, "data", out))
    assert prose.verdict(0.05, 0.02) == "outside the seed spread"
    assert prose.verdict(0.01, 0.02) == "inside the seed spread"
