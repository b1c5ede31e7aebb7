"""Write (or check) the nbgrader source notebooks of the assignments.

    .venv/bin/python assignments/authoring            # (re)write assignments/source/*/*.ipynb
    .venv/bin/python assignments/authoring --check    # exit 1 if a notebook differs

The specs ``a0N_*.py`` are the one place the assignments are written; the notebooks under
``assignments/source/`` are generated from them (committed, without outputs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import a01_kmedoids  # noqa: E402
import a02_receptive_field  # noqa: E402
import a03_wider_ap  # noqa: E402
import a04_ohem  # noqa: E402
import a05_nms  # noqa: E402
import a06_bh_flops  # noqa: E402
from cells import to_notebook  # noqa: E402

SPECS = [m.SPEC for m in (a01_kmedoids, a02_receptive_field, a03_wider_ap, a04_ohem, a05_nms,
                          a06_bh_flops)]
SOURCE = HERE.parent / "source"


def render(spec) -> str:
    return nbformat.writes(to_notebook(spec)) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare, write nothing")
    ap.add_argument("--out", type=Path, default=SOURCE, help="source folder (default: %(default)s)")
    args = ap.parse_args(argv)
    stale = []
    for spec in SPECS:
        path = args.out / spec.assignment / f"{spec.notebook}.ipynb"
        text = render(spec)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
    if args.check and stale:
        print("out of date (run: python assignments/authoring):", *map(str, stale), sep="\n  ")
        return 1
    for p in stale:
        print("wrote", p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
