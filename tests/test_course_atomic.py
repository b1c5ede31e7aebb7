"""The course is transactional (issue #23): a broken resubmission is refused before anything is
touched, a submission nbgrader cannot grade leaves the course as it was, and a good one is
swapped in with its autograded folder and the gradebook together, the previous submission
kept as ``submitted/<student>/<assignment>.prev/``. A real nbgrader run on one assignment."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nbformat
import pytest

from tinylib import course

ASSIGNMENT, NOTEBOOK = "05_nms", "nms.ipynb"


def _digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` -> its sha256 (the course's stored state)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".course.lock"}


def _totals(root: Path, student: str) -> list[tuple[float, float]]:
    tot = course.summary(course.scores(root, student=student))
    return list(zip(tot.points, tot.max_points))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A course with 05_nms released and bob's full-marks solution autograded."""
    base = tmp_path_factory.mktemp("atomic")
    root = base / "course"
    course.generate(ASSIGNMENT, course=root)
    df = course.autograde(root / "source" / ASSIGNMENT, "bob", course=root)
    assert (df.points == df.max_points).all() and df.max_points.sum() > 0
    return root


def _submission(base: Path, name: str, text: str) -> Path:
    folder = base / name / ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / NOTEBOOK).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.slow
def test_truncated_resubmission_is_refused_and_changes_nothing(graded, tmp_path, capsys):
    root = graded
    before, totals = _digest(root), _totals(root, "bob")
    full = (root / "source" / ASSIGNMENT / NOTEBOOK).read_text(encoding="utf-8")
    broken = _submission(tmp_path, "truncated", full[:len(full) // 2])
    rc = course.main(["--course", str(root), "autograde", str(broken), "--student", "bob"])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(broken / NOTEBOOK) in err and "broken JSON at line" in err and "re-save" in err
    assert "Traceback" not in err
    assert _digest(root) == before  # submission, autograded/ and gradebook byte for byte
    assert _totals(root, "bob") == totals
    assert (root / "autograded" / "bob" / ASSIGNMENT / NOTEBOOK).is_file()

    nb = json.loads(full)  # JSON, but not the nbformat schema
    nb["cells"][0]["cell_type"] = "spreadsheet"
    bad_schema = _submission(tmp_path, "schema", json.dumps(nb))
    with pytest.raises(course.CourseError, match=r"nms.ipynb: not a valid notebook \(nbformat schema"):
        course.autograde(bad_schema, "bob", course=root)
    with pytest.raises(course.CourseError, match="not a valid notebook"):
        course.submit(broken, "bob", course=root)
    assert _digest(root) == before


@pytest.mark.slow
def test_a_submission_nbgrader_cannot_grade_leaves_the_course_as_it_was(graded, tmp_path):
    root = graded
    before, totals = _digest(root), _totals(root, "bob")
    nb = nbformat.read(root / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    tests_cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
    tests_cell.metadata["nbgrader"]["points"] = "lots"  # valid nbformat, nbgrader fails on it
    folder = tmp_path / "meta" / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / NOTEBOOK)
    with pytest.raises(course.CourseError, match=r"autograde 05_nms for bob failed.*nothing in the "
                                                 r"course changed"):
        course.autograde(folder, "bob", course=root)
    assert _digest(root) == before
    assert _totals(root, "bob") == totals
    assert not list(root.glob(".autograde*"))  # the private copy is gone


@pytest.mark.slow
def test_a_good_resubmission_is_swapped_in_and_the_previous_one_kept(graded, tmp_path):
    root = graded
    solution = (root / "submitted" / "bob" / ASSIGNMENT / NOTEBOOK).read_bytes()
    df = course.autograde(root / "release" / ASSIGNMENT, "bob", course=root)  # the blank release
    assert (df.points == 0).all()
    assert _totals(root, "bob") == [(0.0, df.max_points.sum())]  # the gradebook follows
    stored = root / "submitted" / "bob" / ASSIGNMENT / NOTEBOOK
    assert stored.read_bytes() == (root / "release" / ASSIGNMENT / NOTEBOOK).read_bytes()
    assert (root / "submitted" / "bob" / f"{ASSIGNMENT}.prev" / NOTEBOOK).read_bytes() == solution
    graded_nb = nbformat.read(root / "autograded" / "bob" / ASSIGNMENT / NOTEBOOK, as_version=4)
    assert any("NotImplementedError" in str(c.get("outputs", "")) for c in graded_nb.cells)
    assert not list(root.glob(".autograde*"))
