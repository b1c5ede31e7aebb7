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
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import shutil
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


def submit(submission_dir: str | os.PathLike, student: str, assignment: str | None = None, *,
           course: str | os.PathLike | None = None) -> dict[str, Path]:
    """Copy a submission into ``<course>/submitted/<student>/<assignment>/`` (replacing an
    earlier one, with a ``timestamp.txt``). ``submission_dir`` holds one assignment's
    notebooks, or assignment folders. Every notebook of the assignment must be there."""
    root = _course(course)
    if not _STUDENT_ID.match(student or ""):
        raise CourseError(f"student id {student!r}: use letters, digits, '.', '_' or '-'")
    if not (root / "source").is_dir():
        raise CourseError(f"{root}: no course here; run `python -m tinylib.course release` first")
    known = list_assignments(root / "source")
    folders = _submission_folders(Path(submission_dir), assignment, known)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    out = {}
    for name, folder in folders.items():
        expected = {p.name for p in _notebooks(root / "source" / name)}
        given = {p.name: p for p in _notebooks(folder)}
        missing = sorted(expected - set(given))
        if missing:
            raise CourseError(f"{folder}: submission of {name!r} lacks {missing} "
                              f"(expected {sorted(expected)})")
        extra = sorted(set(given) - expected)
        if extra:
            log.warning("%s: ignoring notebooks that are not part of %s: %s", folder, name, extra)
        target = root / "submitted" / student / name
        _copy_notebooks([given[n] for n in sorted(expected)], target,
                        extra={"timestamp.txt": stamp + "\n"})
        out[name] = target
    return out


def autograde(submission_dir: str | os.PathLike, student: str, assignment: str | None = None,
              *, course: str | os.PathLike | None = None, progress: bool = False) -> pd.DataFrame:
    """Submit ``submission_dir`` for ``student`` (:func:`submit`) and run ``nbgrader
    autograde`` on each assignment in it: the tests cells are restored from the gradebook
    (hidden tests included) and executed. The assignments must have been released
    (:func:`generate`). Returns the student's :func:`scores` for those assignments."""
    from nbgrader.converters import Autograde

    root = _course(course)
    folders = submit(submission_dir, student, assignment, course=root)
    released = _graded_assignments(root)
    missing = sorted(set(folders) - released)
    if missing:
        raise CourseError(f"{root}: {missing} not released yet (no gradebook entry); run "
                          "`python -m tinylib.course release` first")
    for name in tqdm(folders, desc=f"autograde {student}", disable=not progress):
        _run(Autograde, root, f"autograde {name} for {student}", assignment_id=name,
             student_id=student, force=True, create_student=True)
        log.info("autograded %s for %s", name, student)
    df = scores(root, student=student)
    return df[df["assignment"].isin(list(folders))].reset_index(drop=True)


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
