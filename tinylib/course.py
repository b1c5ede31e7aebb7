"""The workbook's assignments as an nbgrader course: release them, autograde submissions,
read the points per cell from the gradebook.

The assignments are written in ``assignments/`` (``assignments/authoring`` generates the
nbgrader source notebooks ``assignments/source/<NN_topic>/<topic>.ipynb``). The course lives
in its own folder, ``build/course/`` by default (``TINYLIB_BUILD``), in nbgrader's layout::

    build/course/
      nbgrader_config.py           course_id "tinylib"; run the nbgrader CLI in this folder
      source/<assignment>/         copied from assignments/source by release
      release/<assignment>/        the student version: no solutions, no hidden tests
      submitted/<student>/<assignment>/
      submitted/<student>/<assignment>.prev/   the submission before it (kept on resubmission)
      autograded/<student>/<assignment>/
      gradebook.db                 nbgrader's gradebook (sqlite)

Python API: :func:`generate` (``nbgrader generate_assignment``), :func:`autograde`
(copy a submission in, ``nbgrader autograde``), :func:`scores` (points per autograded
cell from the gradebook), :func:`demo` (release everything and autograde the instructor's
solutions). Command line::

    python -m tinylib.course release [--assignment 01_kmedoids]
    python -m tinylib.course autograde SUBMISSION_DIR --student alice [--assignment A]
    python -m tinylib.course scores [--student alice] [--csv scores.csv]
    python -m tinylib.course demo

nbgrader runs in-process through its converters; its log is captured and re-emitted on
this module's logger (nothing is printed), and a failed step raises :class:`CourseError`
with nbgrader's own message.

Autograding is transactional: every notebook of a submission is validated first (it parses
as JSON, fits the nbformat schema, and the assignment's notebook names are there); then the
submission is graded in a private copy of the course (``<course>/.autograde.*/``: the
assignment's source, a copy of the gradebook, the new submission), and only when nbgrader
succeeded are the new submission, its autograded folder and the gradebook swapped in together
(the previous submission kept as ``<assignment>.prev``). A refused or failed submission
changes nothing: the stored submission, ``autograded/`` and the gradebook still agree.
One autograde at a time per course (a lock file, ``<course>/.course.lock``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .config import REPO_DIR, build_dir
from .io import atomic_write_text

log = logging.getLogger(__name__)

__all__ = [
    "COURSE_ID",
    "INSTRUCTOR",
    "SOURCE_DIR",
    "CourseError",
    "SCORE_COLUMNS",
    "default_course_dir",
    "list_assignments",
    "prepare",
    "generate",
    "submit",
    "validate_notebook",
    "autograde",
    "scores",
    "summary",
    "demo",
    "main",
]

COURSE_ID = "tinylib"
INSTRUCTOR = "instructor"  # the student id the demo grades the instructor's solutions under
SOURCE_DIR = REPO_DIR / "assignments" / "source"
CELL_TIMEOUT = 300  # seconds per cell when autograding
_STUDENT_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_EXCEPTION_LINE = re.compile(r"^\s*[\w.]*(?:Error|Exception): .+$", re.M)
_CONFIG = f'''\
# nbgrader configuration of the tinylib course, written by tinylib.course.
# Run nbgrader commands in this folder (e.g. `nbgrader autograde 01_kmedoids`), or use
# `python -m tinylib.course` from the repository.
c = get_config()  # noqa: F821 (provided by nbgrader)
c.CourseDirectory.course_id = "{COURSE_ID}"
c.Execute.timeout = {CELL_TIMEOUT}
'''


class CourseError(RuntimeError):
    """A course step failed; the message says which folder or assignment and why."""


# ------------------------------------------------------------------------------ folders


def default_course_dir() -> Path:
    """``build/course`` (under ``TINYLIB_BUILD`` when set)."""
    return build_dir("course", create=False)


def _course(course) -> Path:
    return Path(course).expanduser().resolve() if course is not None else default_course_dir()


def _notebooks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def list_assignments(source: str | os.PathLike | None = None) -> list[str]:
    """The assignments of a source folder (default ``assignments/source``): its sub-folders
    holding at least one notebook, sorted."""
    src = Path(source) if source is not None else SOURCE_DIR
    if not src.is_dir():
        raise CourseError(f"{src}: assignment source folder not found (expected "
                          "<source>/<NN_topic>/<topic>.ipynb)")
    names = [p.name for p in sorted(src.iterdir())
             if p.is_dir() and not p.name.startswith(".") and _notebooks(p)]
    if not names:
        raise CourseError(f"{src}: no assignment folders with notebooks in it")
    return names


def _replace_dir(staged: Path, target: Path) -> None:
    """Put the folder ``staged`` at ``target`` (same parent): the old one is moved aside
    first and removed after, so ``target`` is never half-written."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
        os.replace(target, old / target.name)
    try:
        os.replace(staged, target)
    except BaseException:
        if old is not None:  # put the previous folder back
            os.replace(old / target.name, target)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _copy_notebooks(files: list[Path], target: Path, extra: dict[str, str] | None = None) -> Path:
    """Copy ``files`` (and write the text files ``extra``) into a fresh folder ``target``,
    which replaces the old one as a whole."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.new."))
    try:
        staged.chmod(0o755)  # mkdtemp makes 0700; a course folder is shared with graders
        for f in files:
            shutil.copy2(f, staged / f.name)
        for name, text in (extra or {}).items():
            (staged / name).write_text(text, encoding="utf-8")
        _replace_dir(staged, target)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return target


def prepare(course: str | os.PathLike | None = None,
            source: str | os.PathLike | None = None) -> Path:
    """Create the course folder: write ``nbgrader_config.py`` and copy every assignment of
    ``source`` (default ``assignments/source``) to ``<course>/source/``. Returns the folder."""
    root = _course(course)
    src = Path(source) if source is not None else SOURCE_DIR
    names = list_assignments(src)
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / "nbgrader_config.py", _CONFIG)
    for name in names:
        _copy_notebooks(_notebooks(src / name), root / "source" / name)
    log.info("course %s: %d assignments from %s", root, len(names), src)
    return root


# ----------------------------------------------------------------------- running nbgrader


@contextlib.contextmanager
def _nbgrader_env():
    """nbgrader calls the ``alembic`` script by name: make sure this interpreter's scripts
    folder is on PATH; hide SQLAlchemy's autoflush warnings that nbgrader's gradebook emits
    on every new submission."""
    old_path = os.environ.get("PATH", "")
    bindir = str(Path(sys.executable).parent)
    if shutil.which("alembic") is None:
        os.environ["PATH"] = bindir + os.pathsep + old_path
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not in session.*")
            yield
    finally:
        os.environ["PATH"] = old_path


def _nbgrader_logger() -> logging.Logger:
    """A private logger (not in the logging tree: nbgrader's chatter is re-emitted on
    :data:`log` after each step, never printed)."""
    logger = logging.Logger("tinylib.course.nbgrader", level=logging.INFO)
    logger.addHandler(logging.NullHandler())
    return logger


def _coursedir(root: Path, logger: logging.Logger):
    from nbgrader.coursedir import CourseDirectory  # heavy import, only to run nbgrader
    from traitlets.config import Config

    cfg = Config()
    cfg.CourseDirectory.root = str(root)
    cfg.CourseDirectory.course_id = COURSE_ID
    cfg.Execute.timeout = CELL_TIMEOUT
    return cfg, CourseDirectory(config=cfg, log=logger)


def _run(converter_cls, root: Path, what: str, **attrs) -> None:
    """Run one nbgrader converter (GenerateAssignment, Autograde) on the course in ``root``;
    raise :class:`CourseError` with nbgrader's log when it fails."""
    from nbgrader.utils import capture_log

    logger = _nbgrader_logger()
    cfg, coursedir = _coursedir(root, logger)
    for key in ("assignment_id", "student_id"):
        if key in attrs:
            setattr(coursedir, key, attrs.pop(key))
    app = converter_cls(coursedir=coursedir, config=cfg, log=logger)
    for key, value in attrs.items():
        setattr(app, key, value)
    with _nbgrader_env():
        result = capture_log(app)
    text = result.get("log", "") or ""
    if not result.get("success"):
        log.debug("nbgrader (%s) log:\n%s", what, text)
        # the cause is in the tracebacks nbgrader logged; its own exception only says "see above"
        found = _EXCEPTION_LINE.finditer(text + "\n" + (result.get("error") or ""))
        causes = [m.group(0).strip() for m in found if "NbGraderException" not in m.group(0)]
        causes = list(dict.fromkeys(causes)) or [
            next((ln[8:] for ln in text.splitlines() if ln.startswith("[ERROR]")), "no message")]
        raise CourseError(f"nbgrader {what} failed in {root}: " + "; ".join(causes[:3]))
    for line in text.splitlines():
        if line.startswith("[WARNING]") and "checksum" not in line:
            # nbgrader's warnings are notes here (an earlier release replaced, a student's
            # edit of a read-only cell undone); checksum ones are expected with hidden tests
            log.info("nbgrader (%s): %s", what, line[10:])
        else:
            log.debug("nbgrader (%s): %s", what, line)


def _db_url(root: Path) -> str:
    return f"sqlite:///{root / 'gradebook.db'}"


def _graded_assignments(root: Path) -> set[str]:
    if not (root / "gradebook.db").exists():
        return set()
    from nbgrader.api import Gradebook

    with _nbgrader_env(), Gradebook(_db_url(root), course_id=COURSE_ID) as gb:
        return {a.name for a in gb.assignments}


# ----------------------------------------------------------------------------- the steps


def generate(assignment: str | None = None, *, course: str | os.PathLike | None = None,
             source: str | os.PathLike | None = None, progress: bool = False) -> dict[str, Path]:
    """Release ``assignment`` (default: all): refresh the course's source from ``source``,
    run ``nbgrader generate_assignment`` (which also records the assignment, its cells,
    points and hidden tests in the gradebook). Returns ``{assignment: release folder}``."""
    from nbgrader.converters import GenerateAssignment

    root = prepare(course, source)
    names = list_assignments(root / "source")
    if assignment is not None:
        if assignment not in names:
            raise CourseError(f"unknown assignment {assignment!r}; the course has {names}")
        names = [assignment]
    out = {}
    for name in tqdm(names, desc="release", disable=not progress):
        _run(GenerateAssignment, root, f"generate_assignment {name}", assignment_id=name,
             force=True, create_assignment=True)
        out[name] = root / "release" / name
        log.info("released %s -> %s", name, out[name])
    return out


def _submission_folders(submission_dir: Path, assignment: str | None,
                        known: list[str]) -> dict[str, Path]:
    """``{assignment: folder}`` of a submission: a folder of notebooks (one assignment,
    named by ``assignment`` or by the folder's name) or a folder of assignment folders."""
    if not submission_dir.is_dir():
        raise CourseError(f"{submission_dir}: submission folder not found")
    if _notebooks(submission_dir):
        name = assignment or submission_dir.name
        if name not in known:
            raise CourseError(f"{submission_dir}: {name!r} is not an assignment of the course "
                              f"({known}); pass the assignment name")
        return {name: submission_dir}
    found = {p.name: p for p in sorted(submission_dir.iterdir())
             if p.is_dir() and p.name in known and _notebooks(p)}
    if assignment is not None:
        found = {k: v for k, v in found.items() if k == assignment}
    if not found:
        raise CourseError(f"{submission_dir}: no notebooks of "
                          f"{[assignment] if assignment else known} in it (expected *.ipynb "
                          "or <assignment>/*.ipynb)")
    return found


def validate_notebook(path: str | os.PathLike) -> None:
    """Raise :class:`CourseError` unless ``path`` is a readable Jupyter notebook: JSON (the
    error's line and column), the nbformat schema (the first violation)."""
    import nbformat  # heavy import (jsonschema), only to check a notebook

    path = Path(path)
    fix = ("re-save the notebook in Jupyter (or start again from the released one) and submit "
           "again; nothing was changed")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CourseError(f"{path}: cannot read the notebook ({exc}); {fix}") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CourseError(f"{path}: not a valid notebook: broken JSON at line {exc.lineno}, "
                          f"column {exc.colno} ({exc.msg}; a truncated or damaged file?); "
                          f"{fix}") from exc
    if not isinstance(raw, dict) or "cells" not in raw or "nbformat" not in raw:
        raise CourseError(f"{path}: JSON, but not a Jupyter notebook (no 'cells'/'nbformat'); "
                          f"{fix}")
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - nbformat raises several kinds; name the file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CourseError(f"{path}: not a valid notebook (nbformat schema: {first}); {fix}") from exc


def _checked_submission(root: Path, submission_dir, student: str,
                        assignment: str | None) -> dict[str, dict[str, Path]]:
    """``{assignment: {notebook name: file}}`` of a submission, every notebook validated
    (:func:`validate_notebook`) before anything in the course is touched."""
    if not _STUDENT_ID.match(student or ""):
        raise CourseError(f"student id {student!r}: use letters, digits, '.', '_' or '-'")
    if not (root / "source").is_dir():
        raise CourseError(f"{root}: no course here; run `python -m tinylib.course release` first")
    known = list_assignments(root / "source")
    folders = _submission_folders(Path(submission_dir), assignment, known)
    out = {}
    for name, folder in folders.items():
        expected = {p.name for p in _notebooks(root / "source" / name)}
        given = {p.name: p for p in _notebooks(folder)}
        missing = sorted(expected - set(given))
        if missing:
            raise CourseError(f"{folder}: submission of {name!r} lacks {missing} "
                              f"(expected {sorted(expected)}); add them and submit again")
        extra = sorted(set(given) - expected)
        if extra:
            log.warning("%s: ignoring notebooks that are not part of %s: %s", folder, name, extra)
        for n in sorted(expected):
            validate_notebook(given[n])
        out[name] = {n: given[n] for n in sorted(expected)}
    return out


def _previous(target: Path) -> Path:
    return target.with_name(target.name + ".prev")


def _keep_previous(target: Path) -> None:
    """Move the folder ``target`` (a stored submission) to ``<target>.prev`` (replacing an
    older one)."""
    if not target.exists():
        return
    prev = _previous(target)
    if prev.exists():
        shutil.rmtree(prev)
    os.replace(target, prev)


def _stage_files(files: list[Path], folder: Path, extra: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    for f in files:
        shutil.copy2(f, folder / f.name)
    for name, text in (extra or {}).items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def submit(submission_dir: str | os.PathLike, student: str, assignment: str | None = None, *,
           course: str | os.PathLike | None = None) -> dict[str, Path]:
    """Copy a submission into ``<course>/submitted/<student>/<assignment>/`` (with a
    ``timestamp.txt``; an earlier submission is kept as ``<assignment>.prev/``).
    ``submission_dir`` holds one assignment's notebooks, or assignment folders. Every notebook
    of the assignment must be there and be valid (:func:`validate_notebook`); a bad
    submission raises :class:`CourseError` before anything is stored. Grading is
    :func:`autograde`'s."""
    root = _course(course)
    checked = _checked_submission(root, submission_dir, student, assignment)
    stamp = _stamp()
    out = {}
    for name, files in checked.items():
        target = root / "submitted" / student / name
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name}.new."))
        try:
            _stage_files(list(files.values()), staged / name, {"timestamp.txt": stamp + "\n"})
            _keep_previous(target)
            os.replace(staged / name, target)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        out[name] = target
    return out


@contextlib.contextmanager
def _course_lock(root: Path):
    """One autograde at a time per course (advisory ``flock`` where the OS has it)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(root / ".course.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _copy_gradebook(src: Path, dst: Path) -> None:
    """A consistent copy of the sqlite gradebook (sqlite's online backup)."""
    with contextlib.closing(sqlite3.connect(src)) as a, contextlib.closing(sqlite3.connect(dst)) as b:
        a.backup(b)


def _swap_in(stage: Path, root: Path, student: str, names: list[str]) -> None:
    """Move the staged submissions, autograded folders and gradebook into the course; on any
    error, undo the moves already made (the course is left as it was)."""
    undo: list[tuple[Path, Path]] = []  # (moved to, move back to)

    def move(src: Path, dst: Path) -> None:
        os.replace(src, dst)
        undo.append((dst, src))

    trash = Path(tempfile.mkdtemp(dir=root, prefix=".autograde-old."))
    try:
        for name in names:
            sub = root / "submitted" / student / name
            graded = root / "autograded" / student / name
            sub.parent.mkdir(parents=True, exist_ok=True)
            graded.parent.mkdir(parents=True, exist_ok=True)
            prev = _previous(sub)
            if sub.exists():
                if prev.exists():
                    move(prev, trash / f"{name}.prev")
                move(sub, prev)
            move(stage / "submitted" / student / name, sub)
            if graded.exists():
                move(graded, trash / f"{name}.autograded")
            move(stage / "autograded" / student / name, graded)
        if (root / "gradebook.db").exists():
            move(root / "gradebook.db", trash / "gradebook.db")
        move(stage / "gradebook.db", root / "gradebook.db")
    except BaseException:
        for dst, src in reversed(undo):
            os.replace(dst, src)
        raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def autograde(submission_dir: str | os.PathLike, student: str, assignment: str | None = None,
              *, course: str | os.PathLike | None = None, progress: bool = False) -> pd.DataFrame:
    """Grade ``submission_dir`` for ``student`` with ``nbgrader autograde``: the tests cells
    are restored from the gradebook (hidden tests included) and executed. The assignments
    must have been released (:func:`generate`). Transactional (module doc): the submission
    is validated first, graded in a private copy of the course, and swapped in -- with its
    autograded folder and the gradebook, the previous submission kept as
    ``submitted/<student>/<assignment>.prev/`` -- only when grading succeeded; otherwise
    :class:`CourseError` and nothing changed. Returns the student's :func:`scores` for those
    assignments."""
    from nbgrader.converters import Autograde

    root = _course(course)
    checked = _checked_submission(root, submission_dir, student, assignment)
    released = _graded_assignments(root)
    missing = sorted(set(checked) - released)
    if missing:
        raise CourseError(f"{root}: {missing} not released yet (no gradebook entry); run "
                          "`python -m tinylib.course release` first")
    stamp = _stamp()
    with _course_lock(root):
        stage = Path(tempfile.mkdtemp(dir=root, prefix=".autograde."))
        try:
            _copy_gradebook(root / "gradebook.db", stage / "gradebook.db")
            for name, files in checked.items():
                shutil.copytree(root / "source" / name, stage / "source" / name)
                _stage_files(list(files.values()), stage / "submitted" / student / name,
                             {"timestamp.txt": stamp + "\n"})
            for name in tqdm(checked, desc=f"autograde {student}", disable=not progress):
                try:
                    _run(Autograde, stage, f"autograde {name} for {student}", assignment_id=name,
                         student_id=student, force=True, create_student=True)
                except CourseError as exc:
                    why = str(exc).replace(f" in {stage}", "")
                    raise CourseError(
                        f"{why} -- {Path(submission_dir)} was not graded and nothing in the "
                        "course changed (the stored submission, autograded/ and the gradebook "
                        "are as before); fix the notebook and submit again") from exc
                graded = stage / "autograded" / student / name
                lacking = [n for n in checked[name] if not (graded / n).is_file()]
                if lacking:
                    raise CourseError(f"nbgrader autograde of {name} for {student} wrote no "
                                      f"{lacking}; nothing in the course changed")
                log.info("autograded %s for %s", name, student)
            _swap_in(stage, root, student, list(checked))
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    df = scores(root, student=student)
    return df[df["assignment"].isin(list(checked))].reset_index(drop=True)


def _cell_order(root: Path, assignment: str, notebook: str) -> dict[str, int]:
    path = root / "source" / assignment / f"{notebook}.ipynb"
    if not path.exists():
        return {}
    import nbformat  # heavy import (jsonschema), only to read a notebook

    nb = nbformat.read(str(path), as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    return {g: i for i, g in enumerate(ids) if g}


SCORE_COLUMNS = ["student", "assignment", "notebook", "cell", "points", "max_points"]


def scores(course: str | os.PathLike | None = None, *, student: str | None = None,
           assignment: str | None = None) -> pd.DataFrame:
    """Points of every autograded cell in the gradebook: one row per (student, assignment,
    notebook, cell) with ``points`` and ``max_points``, in the notebooks' cell order.
    ``student`` / ``assignment`` filter."""
    root = _course(course)
    if not (root / "gradebook.db").exists():
        raise CourseError(f"{root}: no gradebook.db; release and autograde first")
    from nbgrader.api import Gradebook

    rows = []
    with _nbgrader_env(), Gradebook(_db_url(root), course_id=COURSE_ID) as gb:
        for a in gb.assignments:
            if assignment is not None and a.name != assignment:
                continue
            for sub in a.submissions:
                if student is not None and sub.student.id != student:
                    continue
                for nb in sub.notebooks:
                    order = _cell_order(root, a.name, nb.name)
                    for g in nb.grades:
                        rows.append(dict(student=sub.student.id, assignment=a.name,
                                         notebook=nb.name, cell=g.name,
                                         points=float(g.score or 0.0),
                                         max_points=float(g.max_score),
                                         _order=order.get(g.name, len(order))))
    df = pd.DataFrame(rows, columns=SCORE_COLUMNS + ["_order"])
    df = df.sort_values(["student", "assignment", "notebook", "_order", "cell"])
    return df.drop(columns="_order").reset_index(drop=True)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Totals per student and assignment of a :func:`scores` table (``points``,
    ``max_points``, ``percent``)."""
    if df.empty:
        return pd.DataFrame(columns=["student", "assignment", "points", "max_points", "percent"])
    tot = df.groupby(["student", "assignment"], as_index=False)[["points", "max_points"]].sum()
    tot["percent"] = (100.0 * tot["points"] / tot["max_points"]).round(1)
    return tot


def demo(course: str | os.PathLike | None = None, *, progress: bool = False) -> pd.DataFrame:
    """Release every assignment and autograde the instructor's solutions (the course's
    source notebooks) as student :data:`INSTRUCTOR`; returns their scores."""
    root = _course(course)
    generate(course=root, progress=progress)
    return autograde(root / "source", INSTRUCTOR, course=root, progress=progress)


# -------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m tinylib.course",
                                 description="The workbook's nbgrader course.")
    ap.add_argument("--course", type=Path, default=None,
                    help="course folder (default: build/course, or $TINYLIB_BUILD/course)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log nbgrader's steps")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="generate the student versions (release/<assignment>)")
    p.add_argument("--assignment", default=None, help="one assignment (default: all)")
    p.add_argument("--source", type=Path, default=None,
                   help="assignment source folder (default: assignments/source)")
    p = sub.add_parser("autograde", help="autograde a submission and print its points")
    p.add_argument("submission", type=Path,
                   help="folder of one assignment's notebooks, or of assignment folders")
    p.add_argument("--student", required=True, help="student id")
    p.add_argument("--assignment", default=None,
                   help="assignment name (default: the folder's name, or every one found)")
    p = sub.add_parser("scores", help="print the points per cell from the gradebook")
    p.add_argument("--student", default=None)
    p.add_argument("--assignment", default=None)
    p.add_argument("--csv", type=Path, default=None, help="also write the table as CSV")
    sub.add_parser("demo", help="release all and autograde the instructor's solutions")
    return ap


def _print_table(df: pd.DataFrame) -> None:
    if df.empty:
        print("no autograded submissions")
        return
    print(df.to_string(index=False))
    print()
    print(summary(df).to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "release":
            for name, path in generate(args.assignment, course=args.course, source=args.source,
                                       progress=True).items():
                print(f"{name}: {path}")
        elif args.command == "autograde":
            _print_table(autograde(args.submission, args.student, args.assignment,
                                   course=args.course, progress=True))
        elif args.command == "scores":
            df = scores(args.course, student=args.student, assignment=args.assignment)
            if args.csv is not None:
                atomic_write_text(args.csv, df.to_csv(index=False))
            _print_table(df)
        elif args.command == "demo":
            df = demo(args.course, progress=True)
            _print_table(df)
            if not (df["points"] == df["max_points"]).all():
                lost = df[df["points"] < df["max_points"]]
                print(f"the instructor's solutions lose points in {len(lost)} cell(s): "
                      f"{', '.join(lost['assignment'] + '/' + lost['cell'])}", file=sys.stderr)
                return 1
            print(f"\ncourse folder: {_course(args.course)} (release/ holds the student versions)")
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
