"""Helpers that turn the assignment specs (``a0N_*.py``) into nbgrader source notebooks.

Each cell kind sets the nbgrader metadata the "Create Assignment" toolbar would set
(schema version 3):

* :func:`md` / :func:`readonly` -- read-only cells (``locked``), story and set-up code;
* :func:`answer` -- an *autograded answer* cell (``solution``), its solution between
  ``### BEGIN SOLUTION`` / ``### END SOLUTION``;
* :func:`tests` -- an *autograder tests* cell (``grade``, ``locked``, ``points``), visible
  tests first, then ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``.

Cell ids are the grade ids (or ``<notebook>-<n>``), so a rebuild is byte-identical.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import nbformat

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
SOLUTION = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


@dataclass
class Cell:
    kind: str  # "markdown" or "code"
    source: str
    nbgrader: dict | None = None
    grade_id: str | None = None


@dataclass
class Spec:
    """One assignment: its folder (``NN_topic``), notebook stem and cells."""

    assignment: str
    notebook: str
    cells: list[Cell] = field(default_factory=list)


def _clean(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def _meta(grade_id: str, *, grade: bool, solution: bool, locked: bool,
          points: float | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution}
    if grade:
        meta["points"] = points
    return meta


def md(text: str, grade_id: str | None = None) -> Cell:
    """A markdown cell; read-only when it has a ``grade_id``."""
    meta = None if grade_id is None else _meta(grade_id, grade=False, solution=False, locked=True)
    return Cell("markdown", _clean(text), meta, grade_id)


def readonly(grade_id: str, code: str) -> Cell:
    """A read-only code cell (set-up, helpers the tasks use)."""
    return Cell("code", _clean(code), _meta(grade_id, grade=False, solution=False, locked=True),
                grade_id)


def answer(grade_id: str, code: str) -> Cell:
    """An autograded answer cell; its source must hold one solution region."""
    src = _clean(code)
    if SOLUTION[0] not in src or SOLUTION[1] not in src:
        raise ValueError(f"answer cell {grade_id!r} has no {SOLUTION[0]} ... {SOLUTION[1]} region")
    return Cell("code", src, _meta(grade_id, grade=False, solution=True, locked=False), grade_id)


def tests(grade_id: str, points: float, code: str) -> Cell:
    """An autograder tests cell worth ``points``; it must hold hidden tests."""
    src = _clean(code)
    if HIDDEN[0] not in src or HIDDEN[1] not in src:
        raise ValueError(f"tests cell {grade_id!r} has no {HIDDEN[0]} ... {HIDDEN[1]} region")
    if points <= 0:
        raise ValueError(f"tests cell {grade_id!r}: points must be positive, got {points}")
    return Cell("code", src, _meta(grade_id, grade=True, solution=False, locked=True,
                                   points=points), grade_id)


def to_notebook(spec: Spec) -> nbformat.NotebookNode:
    """The nbgrader source notebook of ``spec`` (no outputs, deterministic ids)."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": dict(KERNELSPEC)})
    seen = set()
    for i, c in enumerate(spec.cells):
        cid = c.grade_id or f"{spec.notebook}-{i}"
        if cid in seen:
            raise ValueError(f"{spec.assignment}: duplicate cell id {cid!r}")
        seen.add(cid)
        meta = {} if c.nbgrader is None else {"nbgrader": dict(c.nbgrader)}
        if c.kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(c.source, metadata=meta)
        else:
            cell = nbformat.v4.new_code_cell(c.source, metadata=meta)
        cell["id"] = cid
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb
