"""Regenerate ``tinylib/data/registry_files.json`` from the appendix of SOURCES.md.

Usage::

    python tools/make_registry_table.py ../shared/data/SOURCES.md [--check]

The appendix is the table ``| `relpath` | bytes | sha256 |`` after the heading
``## Appendix``. The JSON maps each relative path to ``{"size": ..., "sha256": ...}``,
sorted by path, and is written atomically. With ``--check`` nothing is written; the exit
status says whether the committed table is up to date.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*(\d+)\s*\|\s*([0-9a-f]{64})\s*\|\s*$")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "tinylib" / "data" / "registry_files.json"


def parse_appendix(text: str, source: str = "SOURCES.md") -> dict[str, dict]:
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("## Appendix"))
    except StopIteration:
        raise ValueError(f"{source}: no '## Appendix' heading found") from None
    table: dict[str, dict] = {}
    for lineno, line in enumerate(lines[start + 1 :], start=start + 2):
        if not line.startswith("| `"):
            continue
        m = ROW.match(line)
        if m is None:
            raise ValueError(
                f"{source}:{lineno}: expected '| `path` | bytes | sha256 |', found {line!r}"
            )
        relpath, size, digest = m.group(1), int(m.group(2)), m.group(3)
        if relpath in table:
            raise ValueError(f"{source}:{lineno}: {relpath} listed twice")
        table[relpath] = {"size": size, "sha256": digest}
    if not table:
        raise ValueError(f"{source}: the appendix holds no file rows")
    return dict(sorted(table.items()))


def render(table: dict[str, dict]) -> str:
    return json.dumps(table, indent=1, sort_keys=True) + "\n"


def write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", type=Path, help="path to shared/data/SOURCES.md")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="only compare with --out")
    args = ap.parse_args(argv)
    table = parse_appendix(args.sources.read_text(encoding="utf-8"), str(args.sources))
    text = render(table)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date with {args.sources}", file=sys.stderr)
            return 1
        print(f"{args.out} up to date ({len(table)} files)")
        return 0
    write_atomic(args.out, text)
    print(f"wrote {args.out} ({len(table)} files)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
