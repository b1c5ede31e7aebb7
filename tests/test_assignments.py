"""The nbgrader assignments (assignments/) and the course driver (tinylib.course).

Fast checks read the source notebooks: they are what ``assignments/authoring`` writes, their
nbgrader metadata is valid, every task has a solution region and points-bearing tests with
hidden tests. The slow ones build a course in a temporary folder, release every assignment
and autograde three submissions once (module fixture): the untouched release (0 points),
the instructor's solutions (full marks, also without the real data when it is present) and
the solutions with one answer made wrong (exactly that cell's points lost).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tinylib import course
from tinylib.notebooks import dirty_cells

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "assignments" / "source"
BEGIN_SOL, END_SOL = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HID, END_HID = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
REAL_DATA_ASSIGNMENTS = ["01_kmedoids", "03_wider_ap"]  # hidden tests with a real-data branch


def _source_notebooks() -> list[Path]:
    return sorted(SOURCE.glob("*/*.ipynb"))


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _regions(text: str, begin: str, end: str) -> list[str]:
    return re.findall(re.escape(begin) + r"(.*?)" + re.escape(end), text, flags=re.S)


def _points(path: Path) -> dict[str, float]:
    nb = nbformat.read(path, as_version=4)
    return {_meta(c)["grade_id"]: float(_meta(c)["points"]) for c in nb.cells if _meta(c).get("grade")}


# ------------------------------------------------------------------------- fast checks


def test_source_notebooks_are_generated_by_the_authoring_script():
    proc = subprocess.run([sys.executable, str(REPO / "assignments" / "authoring"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_at_least_six_assignments_one_notebook_each():
    names = course.list_assignments()
    assert len(names) >= 6
    assert {"01_kmedoids", "02_receptive_field", "03_wider_ap", "04_ohem", "05_nms",
            "06_bh_flops"} <= set(names)
    for name in names:
        assert len(list((SOURCE / name).glob("*.ipynb"))) == 1, name


@pytest.mark.parametrize("path", _source_notebooks(), ids=lambda p: p.parent.name)
def test_source_notebook_has_valid_nbgrader_cells(path):
    from nbgrader.nbgraderformat import MetadataValidator

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    MetadataValidator().validate_nb(nb)  # schema v3: grade_id, points, unique ids ...
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert dirty_cells(path) == [], "committed with outputs"
    answers = [c for c in nb.cells if _meta(c).get("solution")]
    graded = [c for c in nb.cells if _meta(c).get("grade")]
    assert len(answers) >= 3 and len(graded) >= 3
    for c in answers:  # autograded answers: code, not graded, one solution region
        assert c.cell_type == "code" and not _meta(c)["grade"] and not _meta(c)["locked"]
        assert len(_regions(c.source, BEGIN_SOL, END_SOL)) == 1, _meta(c)["grade_id"]
    for c in graded:  # autograder tests: locked, points, visible and hidden tests
        m = _meta(c)
        assert c.cell_type == "code" and m["locked"] and not m["solution"] and m["points"] > 0
        visible = c.source.split(BEGIN_HID)[0]
        assert "assert" in visible, f"{m['grade_id']}: no visible test"
        assert "assert" in "".join(_regions(c.source, BEGIN_HID, END_HID)), m["grade_id"]
    for c in nb.cells:  # everything else is read-only story or set-up
        m = _meta(c)
        if not m.get("solution") and not m.get("grade"):
            assert m.get("locked"), f"cell {c.get('id')} of {path.name} is not read-only"
    # each answer is followed by the tests that grade it
    kinds = ["answer" if _meta(c).get("solution") else "tests" if _meta(c).get("grade") else ""
             for c in nb.cells]
    for i, k in enumerate(kinds):
        if k == "answer":
            assert "tests" in kinds[i + 1:i + 2], f"answer cell {i} of {path.name} has no tests"


def test_course_errors_are_clear(tmp_path):
    with pytest.raises(course.CourseError, match="source folder not found"):
        course.list_assignments(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(course.CourseError, match="no assignment folders"):
        course.list_assignments(tmp_path / "empty")
    with pytest.raises(course.CourseError, match="no course here"):
        course.submit(SOURCE / "01_kmedoids", "alice", course=tmp_path / "c")
    with pytest.raises(course.CourseError, match="no gradebook.db"):
        course.scores(tmp_path / "c")
    root = course.prepare(tmp_path / "c")
    assert 'course_id = "tinylib"' in (root / "nbgrader_config.py").read_text()
    assert sorted(p.name for p in (root / "source").iterdir()) == course.list_assignments()
    with pytest.raises(course.CourseError, match="student id"):
        course.submit(SOURCE / "01_kmedoids", "al ice", course=root)
    with pytest.raises(course.CourseError, match="'nope' is not an assignment"):
        course.submit(SOURCE / "01_kmedoids", "alice", "nope", course=root)
    partial = tmp_path / "sub" / "01_kmedoids"
    partial.mkdir(parents=True)
    (partial / "other.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    with pytest.raises(course.CourseError, match=r"lacks \['kmedoids.ipynb'\]"):
        course.submit(partial, "alice", course=root)
    with pytest.raises(course.CourseError, match="not released yet"):
        course.autograde(SOURCE / "01_kmedoids", "alice", course=root)
    with pytest.raises(course.CourseError, match="unknown assignment"):
        course.generate("99_nothing", course=root)


def test_nbgrader_failure_names_the_cause(tmp_path):
    src = tmp_path / "src" / "01_x"
    src.mkdir(parents=True)
    nb = nbformat.read(SOURCE / "05_nms" / "nms.ipynb", as_version=4)
    tests_cell = next(c for c in nb.cells if _meta(c).get("grade"))
    tests_cell.metadata["nbgrader"]["grade_id"] = "box_iou"  # the id of the answer cell
    nbformat.write(nb, src / "x.ipynb")
    with pytest.raises(course.CourseError, match="generate_assignment 01_x failed .*"
                                                 "Duplicate grade id: box_iou"):
        course.generate(course=tmp_path / "c", source=tmp_path / "src")


# ---------------------------------------------------------------- course (slow, shared)


def _break(src: Path, out: Path) -> Path:
    """A copy of the instructor's 01_kmedoids with one answer made wrong (``<=`` for ``<``)."""
    nb = nbformat.read(src / "kmedoids.ipynb", as_version=4)
    cell = next(c for c in nb.cells if _meta(c).get("grade_id") == "too_small")
    wrong = cell.source.replace("(s[:, 0] < min_hw[0])", "(s[:, 0] <= min_hw[0])")
    assert wrong != cell.source
    cell.source = wrong
    out.mkdir(parents=True)
    nbformat.write(nb, out / "kmedoids.ipynb")
    return out


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One course, released and autograded for: ``blank`` (the untouched release),
    ``instructor`` (the solutions), ``wrong`` (one answer broken) and, when the real data
    are present, ``nodata`` (the solutions of the assignments with a real-data branch, run
    without TINYLIB_DATA)."""
    base = tmp_path_factory.mktemp("course")
    root = base / "course"
    released = course.generate(course=root)
    course.autograde(root / "release", "blank", course=root)
    course.autograde(root / "source", course.INSTRUCTOR, course=root)
    course.autograde(_break(root / "source" / "01_kmedoids", base / "wrong" / "01_kmedoids"),
                     "wrong", course=root)
    from tinylib.data import sources

    real = sources.choose(sources.WIDER_ANNOTATIONS, what="x", fallback=None).is_real
    if real:
        (base / "empty_data").mkdir()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TINYLIB_DATA", str(base / "empty_data"))
            for name in REAL_DATA_ASSIGNMENTS:
                course.autograde(root / "source" / name, "nodata", course=root)
    return dict(root=root, released=released, scores=course.scores(root), real=real)


def _student(graded, student):
    df = graded["scores"]
    return df[df.student == student]


@pytest.mark.slow
def test_release_holds_no_solutions_and_no_hidden_tests(graded):
    assert sorted(graded["released"]) == course.list_assignments()
    for name, folder in graded["released"].items():
        (src_path,) = sorted((SOURCE / name).glob("*.ipynb"))
        release = nbformat.read(folder / src_path.name, as_version=4)
        text = "\n".join(c.source for c in release.cells)
        for marker in (BEGIN_SOL, END_SOL, BEGIN_HID, END_HID):
            assert marker not in text, (name, marker)
        source = nbformat.read(src_path, as_version=4)
        secret, public = [], []
        for c in source.cells:
            hidden = _regions(c.source, BEGIN_SOL, END_SOL) + _regions(c.source, BEGIN_HID, END_HID)
            secret += hidden
            public.append(re.sub(r"### BEGIN (SOLUTION|HIDDEN TESTS).*?### END (SOLUTION|HIDDEN TESTS)",
                                 "", c.source, flags=re.S))
        public_lines = {ln.strip() for ln in "\n".join(public).splitlines()}
        distinctive = {ln.strip() for ln in "\n".join(secret).splitlines()
                       if len(ln.strip()) >= 15 and not ln.strip().startswith("#")
                       and ln.strip() not in public_lines}
        assert len(distinctive) >= 10, name
        leaked = sorted(distinctive & {ln.strip() for ln in text.splitlines()})
        assert not leaked, f"{name}: solution or hidden-test lines in the release: {leaked[:3]}"
        stubs = [c.source for c in release.cells if _meta(c).get("solution")]
        assert stubs and all("raise NotImplementedError()" in s for s in stubs), name


@pytest.mark.slow
def test_untouched_release_scores_zero(graded):
    df = _student(graded, "blank")
    assert sorted(df.assignment.unique()) == course.list_assignments()
    assert (df.points == 0).all(), df[df.points != 0]
    assert (df.max_points > 0).all()


@pytest.mark.slow
def test_instructor_solutions_score_full_marks(graded):
    df = _student(graded, course.INSTRUCTOR)
    assert sorted(df.assignment.unique()) == course.list_assignments()
    assert (df.points == df.max_points).all(), df[df.points < df.max_points]
    for path in _source_notebooks():  # one row per tests cell, the points of the source
        rows = df[df.assignment == path.parent.name]
        assert dict(zip(rows.cell, rows.max_points)) == _points(path)
    totals = course.summary(df)
    assert (totals.percent == 100.0).all()


@pytest.mark.slow
def test_instructor_solutions_score_full_marks_without_real_data(graded):
    if not graded["real"]:
        pytest.skip("TINYLIB_DATA has no real data: the main run was already without it")
    df = _student(graded, "nodata")
    assert sorted(df.assignment.unique()) == REAL_DATA_ASSIGNMENTS
    assert (df.points == df.max_points).all(), df[df.points < df.max_points]


@pytest.mark.slow
def test_a_wrong_answer_loses_exactly_its_cells_points(graded):
    df = _student(graded, "wrong").set_index("cell")
    full = _points(SOURCE / "01_kmedoids" / "kmedoids.ipynb")
    assert df.loc["test_too_small", "points"] == 0
    others = df.drop(index="test_too_small")
    assert (others.points == others.max_points).all()
    assert df.points.sum() == sum(full.values()) - full["test_too_small"]


@pytest.mark.slow
def test_cli_scores_table_and_csv(graded, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    rc = course.main(["--course", str(graded["root"]), "scores", "--student", "wrong",
                      "--csv", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "test_too_small" in printed and "01_kmedoids" in printed
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join(course.SCORE_COLUMNS)
    assert len(lines) == 1 + len(_points(SOURCE / "01_kmedoids" / "kmedoids.ipynb"))
    assert course.main(["--course", str(tmp_path / "none"), "scores"]) == 2
    assert "no gradebook.db" in capsys.readouterr().err
