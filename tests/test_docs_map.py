"""The library's map matches its code (issue #24 item 8).

Every package's ``__init__.py`` docstring names each module and sub-package directly inside it,
and docs/DEVELOPING.md's "Every module" list names the same modules, package by package: a new
module that is not written down, or a stale name of a module that is gone, fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "tinylib"
DEVELOPING = ROOT / "docs" / "DEVELOPING.md"
SECTION = "### Every module"


def packages() -> list[Path]:
    """Every package folder under ``tinylib/`` (a folder with an ``__init__.py``), sorted."""
    return sorted(init.parent for init in PKG.rglob("__init__.py"))


def dotted(package: Path) -> str:
    return ".".join(package.relative_to(PKG.parent).parts)


def members(package: Path) -> list[str]:
    """The modules (``*.py`` but ``__init__.py``) and sub-packages directly inside ``package``."""
    modules = [p.stem for p in package.glob("*.py") if p.name != "__init__.py"]
    subpackages = [d.name for d in package.iterdir() if (d / "__init__.py").is_file()]
    return sorted(modules + subpackages)


def map_entries() -> dict[str, set[str]]:
    """``package -> names`` of the "Every module" list of docs/DEVELOPING.md.

    One bullet per package, ``- `tinylib.hr`: `cache`, `calibrate`, ...``; an indented line
    right below a bullet continues it. The list ends at the next heading.
    """
    lines = DEVELOPING.read_text(encoding="utf-8").splitlines()
    assert SECTION in lines, f"docs/DEVELOPING.md has no {SECTION!r} section (under 'The map')"
    entries: dict[str, set[str]] = {}
    current = None
    for line in lines[lines.index(SECTION) + 1:]:
        if line.startswith("#"):
            break
        head = re.match(r"- `([\w.]+)`:(.*)$", line)
        if head:
            current = head.group(1)
            assert current not in entries, f"docs/DEVELOPING.md lists {current} twice"
            entries[current] = set(re.findall(r"`([\w.]+)`", head.group(2)))
        elif current is not None and line.startswith((" ", "\t")) and line.strip():
            entries[current] |= set(re.findall(r"`([\w.]+)`", line))
        else:
            current = None
    return entries


def test_the_walk_finds_the_packages():
    found = {dotted(p) for p in packages()}
    assert {"tinylib", "tinylib.data", "tinylib.data.synthetic", "tinylib.hr"} <= found
    assert "_parse" in members(PKG / "data")  # private modules count too
    assert "synthetic" in members(PKG / "data")  # and sub-packages


def test_every_package_docstring_names_its_modules():
    problems = []
    for package in packages():
        init = package / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"), filename=str(init)))
        if not doc:
            problems.append(f"{dotted(package)}: no docstring in {init.relative_to(ROOT)}")
            continue
        missing = [n for n in members(package) if not re.search(rf"\b{re.escape(n)}\b", doc)]
        if missing:
            problems.append(f"{dotted(package)}: its docstring does not name {', '.join(missing)}")
    assert not problems, (
        "each package's __init__.py docstring names every module and sub-package inside it "
        "(``name`` -- what it holds):\n" + "\n".join(problems)
    )


def test_the_developing_map_names_every_module():
    entries = map_entries()
    problems = []
    for package in packages():
        name = dotted(package)
        listed = entries.pop(name, None)
        if listed is None:
            problems.append(f"{name}: no bullet '- `{name}`: ...' (add one)")
            continue
        code = set(members(package))
        missing = sorted(code - listed)
        stale = sorted(listed - code)
        if missing:
            problems.append(f"{name}: missing {', '.join(missing)} (add them)")
        if stale:
            problems.append(f"{name}: lists {', '.join(stale)}, which the code no longer has")
    for name in sorted(entries):
        problems.append(f"{name}: listed, but tinylib has no such package")
    assert not problems, (
        f"docs/DEVELOPING.md's {SECTION!r} list does not match tinylib/; add each missing "
        f"module to docs/DEVELOPING.md's \"Every module\" list (remove the stale ones):\n"
        + "\n".join(problems)
    )
