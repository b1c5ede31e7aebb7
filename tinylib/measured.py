"""Shipped measurements: the tables every claim about a long run comes from.

A chapter may *show* a live run (a quick- or cpu-tier sample, recorded as a sample), but
what it *claims* about a long run — the HR detector and its peers on the WIDER val subset,
the ablations, the GAN, the bottom-heavy and toolbox runs, the Section 3 studies — it reads
from a table shipped in ``tinylib/weights/``: ``NAME.csv`` beside ``NAME.provenance.json``.

The provenance says how to get the same table again:

``command``   the one command that re-makes it (``make reproduce NAME=...`` runs it);
``commit``    the git commit of the code that made it (``+dirty`` if the tree had changes);
``date``      when (UTC, ISO 8601);
``weights``   ``{file name: sha256}`` of every checkpoint measured;
``images``    ``{set name: {"n": count, "hash": image_list_hash}}`` of the photos measured
              on, e.g. the ``tuning`` and ``test`` halves of the WIDER val subset
              (:mod:`tinylib.data.splits`);
``notes``     free text: what was chosen on which half, what the table does not cover.

``write_table`` writes both files atomically (the provenance last, so a table without its
provenance is never taken for complete); ``read_table`` refuses a table whose provenance is
missing or malformed, naming the file and what is missing. ``describe`` renders the
provenance as one line for a chapter's caption or a scorecard note.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .config import PACKAGE_DIR, REPO_DIR
from .io import atomic_write_text

TABLES_DIR = PACKAGE_DIR / "weights"
REQUIRED = ("command", "commit", "date", "weights", "images")


def _tables_dir() -> Path:
    """Where tables are read and written: ``TINYLIB_RESULTS`` (a GPU or cpu-tier run's own
    tables), else the shipped ``tinylib/weights/``."""
    env = os.environ.get("TINYLIB_RESULTS")
    return Path(env) if env else TABLES_DIR


@dataclass
class Table:
    """A shipped table and its provenance."""

    name: str
    frame: object  # pandas.DataFrame
    provenance: dict = field(default_factory=dict)
    path: Path | None = None

    def images(self, name: str) -> int | None:
        entry = self.provenance.get("images", {}).get(name)
        return None if entry is None or entry.get("n") is None else int(entry["n"])

    def describe(self) -> str:
        return describe(self.provenance, self.name)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_commit(repo: Path = REPO_DIR) -> str:
    """The commit of the working tree (``+dirty`` when it has uncommitted changes to tracked
    files), or ``"unknown"`` outside a git checkout."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=repo, check=True,
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=repo, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty.strip() else "")


def image_list_hash(keys: Iterable[str]) -> str:
    """A short SHA-256 of the sorted image keys (``"event/stem"``, any ``.jpg`` dropped):
    which photos a measurement was made on."""
    norm = sorted(k.strip().replace("\\", "/").removesuffix(".jpg") for k in keys)
    return hashlib.sha256("\n".join(norm).encode("utf-8")).hexdigest()[:16]


def provenance(command: str | Iterable[str], *, weights: Iterable[str | os.PathLike] = (),
               images: Mapping[str, Iterable[str]] | None = None, notes: str = "",
               **extra) -> dict:
    """A provenance record for a table made now by ``command``."""
    if not isinstance(command, str):
        command = shlex.join(str(c) for c in command)
    imgs = {}
    for name, keys in (images or {}).items():
        keys = list(keys)
        imgs[name] = {"n": len(keys), "hash": image_list_hash(keys)}
    return {
        "command": command,
        "commit": git_commit(),
        "date": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "weights": {Path(w).name: file_sha256(w) for w in weights},
        "images": imgs,
        "notes": notes,
        **extra,
    }


def write_table(name: str, frame, prov: dict, directory: str | os.PathLike | None = None,
                index: bool = False) -> Path:
    """Write ``NAME.csv`` and ``NAME.provenance.json`` (atomically, provenance last)."""
    missing = [k for k in REQUIRED if k not in prov]
    if missing:
        raise ValueError(f"provenance of {name!r} lacks {', '.join(missing)}")
    d = Path(directory) if directory is not None else _tables_dir()
    path = d / f"{name}.csv"
    atomic_write_text(path, frame.to_csv(index=index, float_format="%.6g"))
    atomic_write_text(d / f"{name}.provenance.json", json.dumps(prov, indent=1) + "\n")
    return path


def read_table(name: str, directory: str | os.PathLike | None = None) -> Table:
    """The table ``NAME`` and its provenance; raises ``FileNotFoundError`` /
    ``ValueError`` naming the file and what is missing."""
    import pandas as pd  # heavy; only where a table is read

    d = Path(directory) if directory is not None else _tables_dir()
    path = d / f"{name}.csv"
    ppath = d / f"{name}.provenance.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no measured table {name!r} (re-make it with "
                                f"`make reproduce NAME={name}`)")
    if not ppath.is_file():
        raise FileNotFoundError(f"{ppath}: the table {path.name} has no provenance; a table "
                                "without it is not a claim (re-make it with `make reproduce`)")
    try:
        prov = json.loads(ppath.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{ppath}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    missing = [k for k in REQUIRED if k not in prov]
    if missing:
        raise ValueError(f"{ppath}: provenance lacks {', '.join(missing)} "
                         f"(expected keys: {', '.join(REQUIRED)})")
    return Table(name, pd.read_csv(path), prov, path)


def describe(prov: Mapping, name: str = "") -> str:
    """One line: ``table NAME: N images (test) / M (tuning); commit C, DATE; `COMMAND```."""
    imgs = prov.get("images", {})
    sets = ", ".join(f"{k} {v['n']} images" if v.get("n") is not None else k for k, v in imgs.items())
    date = str(prov.get("date", ""))[:10]
    head = f"table `{name}`" if name else "table"
    return (f"{head} ({sets}; commit {prov.get('commit', '?')}, {date}); "
            f"re-made by `{prov.get('command', '?')}`")


def list_tables(directory: str | os.PathLike | None = None) -> list[str]:
    d = Path(directory) if directory is not None else _tables_dir()
    return sorted(p.name[: -len(".provenance.json")] for p in d.glob("*.provenance.json"))


def reproduce_command(name: str, directory: str | os.PathLike | None = None) -> str:
    return read_table(name, directory).provenance["command"]


# ------------------------------------------------------------- tables rendered into prose
def markdown_table(frame, digits: int = 3) -> str:
    """A DataFrame as a GitHub markdown table (floats to ``digits``), no extra dependency."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |",
             "|" + "|".join("---:" if frame[c].dtype.kind in "fiu" else "---"
                            for c in frame.columns) + "|"]
    for _, row in frame.iterrows():
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append("—" if v != v else f"{v:.{digits}f}")
            else:
                cells.append(str(v).replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def halves_side_by_side(frame, by, settings=("easy", "medium", "hard")):
    """Rows of a long ``half`` table as one row per ``by`` with ``test`` and ``tuning``
    columns side by side (test first: it is the headline)."""
    wide = frame.pivot_table(index=by, columns="half", values=list(settings), sort=False)
    out = wide.reindex(columns=[(s, h) for h in ("test", "tuning") for s in settings])
    out.columns = [f"{s} ({h})" for s, h in out.columns]
    return out.reset_index()


def render(name: str, directory: str | os.PathLike | None = None) -> str:
    """The markdown block the READMEs show for table ``name``: the table (for the WIDER
    subset tables, the chosen rows with the test and tuning halves side by side) and its
    provenance line."""
    t = read_table(name, directory)
    f = t.frame
    if {"half", "chosen", "detector"} <= set(f.columns) and f["detector"].nunique() == 1:
        # a sweep of one detector's setting: every row, the one chosen on tuning marked
        f = f.assign(setting=[f"{s} (chosen)" if c else s for s, c in zip(f["setting"], f["chosen"])])
        body = halves_side_by_side(f, ["setting"])
    elif "half" in f.columns and "chosen" in f.columns and "detector" in f.columns:
        chosen = f[f["chosen"]]
        body = halves_side_by_side(chosen, ["detector", "setting"])
    elif "half" in f.columns and "selection" in f.columns:
        body = halves_side_by_side(f, ["selection"])
    elif {"half", "stage", "bin", "recall"} <= set(f.columns):
        body = f.pivot_table(index="bin", columns=["half", "stage"], values="recall", sort=False)
        stages = list(dict.fromkeys(f["stage"]))  # before NMS, after NMS (, calibrated)
        body = body.reindex(columns=[(h, st) for h in ("test", "tuning") for st in stages])
        body.columns = [f"recall {st} ({h})" for h, st in body.columns]
        faces = f[(f["half"] == "test") & (f["stage"] == "after NMS")].set_index("bin")["faces"]
        body.insert(0, "faces (test)", faces.reindex(body.index).astype(int))
        body = body.reset_index()
    elif {"half", "arm", "reach"} <= set(f.columns):  # paired arms of one recipe
        body = halves_side_by_side(f, ["arm", "reach"],
                                   settings=[c for c in ("easy", "medium", "hard", "le20") if c in f])
    elif {"half", "run", "init", "seed"} <= set(f.columns):  # detector runs scored per half
        halves = f[f["half"].isin(["tuning", "test"])]
        body = halves_side_by_side(halves, ["run"], settings=[c for c in ("easy", "medium", "hard", "le20")
                                                              if c in f])
    elif "half" in f.columns and "row" in f.columns:
        body = halves_side_by_side(f, ["row"])
    else:
        body = f
    return f"{markdown_table(body)}\n\n<sub>{t.describe()}</sub>"


_BLOCK = re.compile(r"(<!-- measured:(?P<name>[\w.-]+) -->\n)(?:(?:(?!<!-- measured:).)*?\n)?"
                    r"(<!-- /measured -->)", re.S)


def render_blocks(text: str, directory: str | os.PathLike | None = None) -> str:
    """``text`` with every ``<!-- measured:NAME -->...<!-- /measured -->`` block re-rendered."""
    return _BLOCK.sub(lambda m: m.group(1) + render(m.group("name"), directory) + "\n" + m.group(3),
                      text)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m tinylib.measured",
                                description="the shipped measured tables and their provenance")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="every table with its provenance")
    r = sub.add_parser("reproduce", help="re-make one table with its recorded command")
    r.add_argument("name")
    r.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    rr = sub.add_parser("render", help="re-render the <!-- measured:NAME --> blocks of files")
    rr.add_argument("files", nargs="+", type=Path)
    rr.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = p.parse_args(argv)
    if args.cmd == "render":
        stale = []
        for f in args.files:
            old = f.read_text(encoding="utf-8")
            new = render_blocks(old)
            if new != old:
                stale.append(str(f))
                if not args.check:
                    atomic_write_text(f, new)
        if stale:
            print(("out of date: " if args.check else "re-rendered: ") + ", ".join(stale))
        return 1 if (stale and args.check) else 0
    if args.cmd == "list":
        for n in list_tables():
            print(f"{n}: {read_table(n).describe()}")
        return 0
    names = list_tables()
    if args.name not in names:
        print(f"error: no measured table {args.name!r}; known: {', '.join(names)}",
              file=sys.stderr)
        return 2
    cmd = reproduce_command(args.name)
    print(cmd)
    if args.dry_run:
        return 0
    return subprocess.call(cmd, shell=True, cwd=REPO_DIR)


if __name__ == "__main__":
    raise SystemExit(main())
