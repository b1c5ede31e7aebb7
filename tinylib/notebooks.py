"""Execute, strip and check the workbook's notebooks (used by ``make run``, ``make strip``
and the tests).

``python -m tinylib.notebooks run [NOTEBOOK ...] --out build`` executes notebooks headless
in order (quick mode unless ``--full``), writes executed copies to ``build/notebooks/``,
collects the scorecard into ``build/scorecard.{json,md}`` and writes ``build/report.html``:
every executed notebook in order in one self-contained HTML page (figures embedded, no
scripts or style sheets fetched from the web; :func:`html_report`). It exits non-zero if any
notebook fails, naming the notebook and the failing cell.

``python -m tinylib.notebooks strip`` removes outputs and execution counts in place
(cell metadata such as ``tags`` and ``nbgrader`` is kept). ``check`` fails when a notebook
carries outputs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from . import scorecard
from .config import REPO_DIR
from .io import atomic_write_text

log = logging.getLogger(__name__)

NOTEBOOK_DIR = REPO_DIR / "notebooks"
DEFAULT_TIMEOUT = 900  # seconds per cell
REPORT_NAME = "report.html"

# nbconvert's JupyterLab template without what it would fetch from the web (require.js,
# MathJax, Mermaid, the widget manager): the report opens offline, styles and images inline
_REPORT_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


class NotebookError(RuntimeError):
    """A notebook failed; the message names the notebook and the failing cell."""


class NotebookTimeout(NotebookError):
    """A cell ran past the per-cell timeout (or the kernel stopped answering)."""


def list_notebooks(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    return sorted(p for p in Path(directory).glob("[0-9][0-9]_*.ipynb"))


def _read(path: Path):
    import nbformat  # heavy import (jsonschema), only when a notebook is read

    return nbformat.read(str(path), as_version=4)


def dirty_cells(path: Path) -> list[int]:
    """Indices of code cells that carry outputs or execution counts."""
    nb = _read(path)
    return [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]


def strip(path: Path) -> bool:
    """Remove outputs and execution counts; returns True if the file changed."""
    import nbformat  # heavy import (jsonschema), only when a notebook is written

    nb = _read(path)
    changed = False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.get("outputs") or cell.get("execution_count") is not None:
            changed = True
        cell["outputs"] = []
        cell["execution_count"] = None
    if changed:
        nbformat.write(nb, str(path))
    return changed


@contextmanager
def _env(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def execute(
    path: Path,
    out_dir: Path | None = None,
    quick: bool = True,
    timeout: int = DEFAULT_TIMEOUT,
    kernel_name: str = "python3",
    tier: str | None = None,
):
    """Execute one notebook top to bottom in a fresh kernel (cwd = the notebook's folder).

    ``TINYLIB_TIER`` (``tier``; default ``quick`` if ``quick`` else ``full``),
    ``TINYLIB_QUICK`` and ``TINYLIB_NOTEBOOK`` are passed to the kernel through its
    environment. Raises :class:`NotebookError` naming the failing cell. Returns the executed
    notebook (written to ``out_dir`` if given, also on failure, for inspection)."""
    import nbformat  # heavy imports (jsonschema, jupyter_client, zmq), only to run notebooks
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = Path(path)
    nb = _read(path)
    name = path.stem
    tier = _check_tier(tier if tier is not None else ("quick" if quick else "full"))
    env = {"TINYLIB_TIER": tier, "TINYLIB_QUICK": "1" if tier == "quick" else "0",
           "TINYLIB_NOTEBOOK": name}
    with _env(**env):
        scorecard.reset(name)
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name=kernel_name,
            # a graceful kernel shutdown can stall on a loaded machine after the last cell;
            # the notebook's work is done by then, so stop the kernel at once
            shutdown_kernel="immediate",
            resources={"metadata": {"path": str(path.parent)}},
        )
        start = time.perf_counter()
        error = None
        try:
            client.execute()
        except CellExecutionError as exc:
            error = exc
        except (CellTimeoutError, DeadKernelError, TimeoutError) as exc:
            raise NotebookTimeout(
                f"{path.name}: no answer from the kernel within {timeout}s per cell "
                f"({type(exc).__name__}: {exc})"
            ) from None
        finally:
            if out_dir is not None:
                out = Path(out_dir) / path.name
                out.parent.mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, str(out))
        elapsed = time.perf_counter() - start
    if error is not None:
        failing = next(
            (
                i
                for i, c in enumerate(nb.cells)
                if c.cell_type == "code"
                and any(o.get("output_type") == "error" for o in c.get("outputs", []))
            ),
            None,
        )
        # counted from 1 over all cells (Markdown included), as Jupyter shows them
        where = f"cell {failing + 1}" if failing is not None else "a cell"
        raise NotebookError(f"{path.name}: {where} failed after {elapsed:.0f}s:\n{error}") from None
    log.info("%s executed in %.1fs", path.name, elapsed)
    nb.metadata["tinylib_elapsed_s"] = round(elapsed, 1)
    return nb


def combined_notebook(entries, title: str = "tinylib workbook", intro: str = ""):
    """One notebook holding the executed notebooks ``entries`` -- ``(path, status, seconds)``
    -- in order, after a contents table (chapter, status, time; links to each chapter). A
    notebook whose executed copy is missing gets a line saying so."""
    import nbformat

    def markdown(text: str, cell_id: str):
        cell = nbformat.v4.new_markdown_cell(text)
        cell["id"] = cell_id
        return cell

    rows, cells, meta = [], [], {}
    for path, status, secs in entries:
        path = Path(path)
        stem = path.stem[:48]  # cell ids: at most 64 characters, unique in the merged notebook
        anchor = f"nb-{path.stem}"
        rows.append(f"| [{path.stem}](#{anchor}) | {status} | {secs:.0f} s |")
        head = f'<a id="{anchor}"></a>\n\n---\n\n*Notebook `{path.name}`: {status}, {secs:.0f} s.*'
        if not path.is_file():
            cells.append(markdown(head + " No executed copy was written.", f"{stem}-head"))
            continue
        nb = _read(path)
        meta = meta or {k: nb.metadata[k] for k in ("kernelspec", "language_info") if k in nb.metadata}
        cells.append(markdown(head, f"{stem}-head"))
        for i, cell in enumerate(nb.cells):
            cell = nbformat.from_dict(dict(cell))
            cell["id"] = f"{stem}-{i}"
            cells.append(cell)
    top = (f"# {title}\n\n{intro}\n\n| chapter | status | time |\n|---|---|---|\n"
           + "\n".join(rows))
    out = nbformat.v4.new_notebook(metadata={**meta, "title": title})
    out.cells = [markdown(top, "report-contents"), *cells]
    return out


def html_report(entries, out_path: Path, *, title: str = "tinylib workbook", intro: str = "",
                source_dir: Path = NOTEBOOK_DIR) -> Path:
    """Write the executed notebooks ``entries`` (``(path, status, seconds)``, in order) as one
    self-contained HTML page to ``out_path`` (atomically): nbconvert's JupyterLab look, images
    embedded (outputs and Markdown images, the latter resolved in ``source_dir``), nothing
    fetched from the web. Returns ``out_path``."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter  # heavy import, only to write the report

    nb = combined_notebook(entries, title=title, intro=intro)
    quiet = logging.getLogger(f"{__name__}.nbconvert")  # not a warning per figure without alt text
    quiet.setLevel(logging.ERROR)
    exporter = HTMLExporter(
        template_name="lab", embed_images=True, template_file="tinylib_report.html.j2",
        extra_loaders=[DictLoader({"tinylib_report.html.j2": _REPORT_TEMPLATE})], log=quiet,
    )
    body, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"path": str(source_dir), "name": title}})
    atomic_write_text(out_path, body)
    log.info("report: %s (%.1f MB)", out_path, len(body.encode()) / 1e6)
    return Path(out_path)


def _check_tier(tier: str) -> str:
    from .config import TIERS

    if tier not in TIERS:
        raise ValueError(f"tier {tier!r}: expected one of {', '.join(TIERS)}")
    return tier


def run_all(paths: list[Path], out_dir: Path, quick: bool = True, timeout: int = DEFAULT_TIMEOUT,
            tier: str | None = None):
    """Execute notebooks in order, collect the scorecard and write the HTML report
    (``out_dir/report.html``, :func:`html_report`); returns ``(results, failures)``."""
    out_dir = Path(out_dir)
    results, failures = [], []
    for path in paths:
        start = time.perf_counter()
        try:
            execute(path, out_dir / "notebooks", quick=quick, timeout=timeout, tier=tier)
            results.append((path.name, "ok", time.perf_counter() - start))
        except NotebookError as exc:
            failures.append(str(exc))
            results.append((path.name, "FAILED", time.perf_counter() - start))
    with _env(TINYLIB_BUILD=str(out_dir)):
        scorecard.collect(out_dir)
    if paths:
        entries = [(out_dir / "notebooks" / name, status, secs) for name, status, secs in results]
        mode = f"tier {tier or ('quick' if quick else 'full')}"
        intro = (f"The executed notebooks of `make run`, {time.strftime('%Y-%m-%d %H:%M')}, "
                 f"{mode}. The scorecard: `scorecard.md` beside this file.")
        html_report(entries, out_dir / REPORT_NAME, intro=intro, source_dir=Path(paths[0]).parent)
    return results, failures


def check_paths(paths: list[Path]) -> list[str]:
    """Problems with the notebooks to run/strip/check, one message each (empty when all
    exist and parse as notebooks): found before any notebook runs."""
    problems = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            problems.append(f"{p}: no such notebook; expected the path of an .ipynb file "
                            f"(the workbook's are in {NOTEBOOK_DIR})")
            continue
        if p.is_dir():
            problems.append(f"{p}: is a folder; expected .ipynb files (e.g. {p / '*.ipynb'})")
            continue
        try:
            _read(p)
        except Exception as exc:  # JSON, schema or encoding errors: the reader raises many kinds
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            problems.append(f"{p}: not a Jupyter notebook ({type(exc).__name__}: {first[:200]}); "
                            "expected an .ipynb file (nbformat 4 JSON)")
    return problems


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinylib.notebooks", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="execute notebooks headless and collect the scorecard")
    run.add_argument("notebooks", nargs="*", type=Path)
    run.add_argument("--out", type=Path, default=REPO_DIR / "build")
    run.add_argument("--tier", choices=("quick", "cpu", "full"), default="quick",
                     help="how much work each chapter does: quick (CI, default), cpu (a laptop, "
                          "minutes per chapter), full (the paper's scale, a GPU machine)")
    run.add_argument("--full", action="store_true", help="the same as --tier full")
    run.add_argument("--timeout", type=_positive_int, default=DEFAULT_TIMEOUT,
                     help="seconds per cell")
    for name in ("strip", "check"):
        p = sub.add_parser(name)
        p.add_argument("notebooks", nargs="*", type=Path)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the error
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = args.notebooks or list_notebooks()
    problems = check_paths(paths)
    if problems:
        for msg in problems:
            print(f"{parser.prog} {args.cmd}: error: {msg}", file=sys.stderr)
        print(f"{parser.prog} {args.cmd}: nothing done; fix the path(s) above", file=sys.stderr)
        return 2
    if args.cmd == "strip":
        for p in paths:
            if strip(p):
                print(f"stripped {p}")
        return 0
    if args.cmd == "check":
        bad = {str(p): dirty_cells(p) for p in paths}
        bad = {k: v for k, v in bad.items() if v}
        for k, v in bad.items():
            print(f"{k}: code cells {v} carry outputs or execution counts (run `make strip`)")
        return 1 if bad else 0
    out = args.out.resolve()
    os.environ["TINYLIB_BUILD"] = str(out)
    tier = "full" if args.full else args.tier
    results, failures = run_all(paths, out, quick=tier == "quick", timeout=args.timeout, tier=tier)
    for name, status, secs in results:
        print(f"{status:>6}  {secs:7.1f}s  {name}")
    print(f"scorecard: {out / 'scorecard.md'}")
    print(f"report: {out / REPORT_NAME}")
    for f in failures:
        print(f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
