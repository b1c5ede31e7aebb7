"""The import direction of the library, as data: which layer each package and module of
``tinylib`` is in, and the check that no import reaches up (``docs/DEVELOPING.md``, "The map").

Layers, lowest first. A module imports its own layer and the layers below, never one above;
function-local imports count too (a lazy import that reaches up is still a reach up). The map
lists the top-level packages and modules of ``tinylib`` only: every module of a package is in
its package's layer, with no exception by sub-module or prefix. A layer may be held lower
still: the protocols (``eval``) import nothing above the data layer.

* :data:`LAYERS` -- the map: :class:`Layer` records, lowest first;
* :func:`layer_of` -- the layer of a dotted module name (``None``: not on the map);
* :func:`modules` / :func:`imports_of` -- every module of the package, and the ``tinylib``
  imports of one source file (nested ones too, relative ones resolved);
* :func:`violations` -- every import that reaches up, as ``file:line: ...`` lines;
* :func:`arrows` -- package -> the packages it imports, the map's arrows;
* ``python -m tinylib.layers`` prints the map and its arrows, and exits 1 when an arrow runs
  up (or a module is not on the map).

Nothing of ``tinylib`` is imported here: the sources are read as text (``ast``).
"""

from __future__ import annotations

import ast
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: how the map names the package root (``tinylib/__init__.py``)
ROOT = "tinylib"

__all__ = ["Layer", "LAYERS", "ROOT", "layer_of", "module_name", "modules", "imports_of", "violations",
           "arrows", "format_map", "main"]


@dataclass(frozen=True)
class Layer:
    level: int
    name: str
    members: tuple[str, ...]  # top-level packages and modules of tinylib (ROOT: the package root)
    owns: str
    may_import: int | None = None  # the highest *lower* layer it may import (None: every lower one)

    @property
    def reach(self) -> int:
        """The highest layer below its own that this layer may import."""
        return self.level - 1 if self.may_import is None else self.may_import


LAYERS: tuple[Layer, ...] = (
    Layer(0, "foundation", ("config", "io", "boxes", "scorecard", "papers", "measured", "layers"),
          "data root, device and tier; atomic writers; the box convention; the paper's numbers, "
          "paper-vs-ours rows, shipped tables; this map"),
    Layer(1, "data", ("data",),
          "the registry, the val subset's split, loaders of every dataset, images, transforms, "
          "the synthetic world"),
    Layer(2, "building blocks", ("analysis", "models", "engine"),
          "scale statistics, receptive fields, FLOPs, anchors; backbones; the training loop, "
          "recipes, run folders, the weights schema, test-time augmentation"),
    Layer(3, "protocols", ("eval",),
          "the benchmarks' protocols (WIDER FACE, FDDB, TinyPerson): pure functions of predictions "
          "and ground truth; their command line, tinylib-eval",
          may_import=1),
    Layer(4, "detectors", ("hr", "frcnn", "gan", "peers"),
          "the three detectors (models, targets, inference, recipes) and the third-party ones"),
    Layer(5, "comparison", ("compare", "studies"),
          "detectors side by side and the tables the chapters record; the Section 3 studies"),
    Layer(6, "presentation", ("viz", "widgets", "prose", "notebooks", "report", "course", ROOT),
          "drawings, explorers, rendered prose, the notebook runner, the results chapter, the "
          "course"),
)

_LEVEL = {m: layer.level for layer in LAYERS for m in layer.members}


def layer_of(module: str) -> int | None:
    """The layer of ``module`` (``"tinylib.eval.widerface"``): its top-level package's (or
    module's) in :data:`LAYERS`; ``"tinylib"`` itself is the package root. ``None`` when it is
    not on the map (or not a tinylib module)."""
    parts = module.split(".")
    if parts[0] != ROOT:
        return None
    return _LEVEL.get(parts[1] if len(parts) > 1 else ROOT)


def _layer(level: int) -> Layer:
    return next(layer for layer in LAYERS if layer.level == level)


def module_name(path: Path, package_dir: Path = PACKAGE_DIR) -> str:
    """``tinylib/eval/widerface.py`` -> ``"tinylib.eval.widerface"`` (a package's
    ``__init__.py``: the package)."""
    parts = list(Path(path).relative_to(Path(package_dir).parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules(package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """Every Python source of the package (not the shipped ``weights/`` folder), sorted."""
    return sorted(p for p in Path(package_dir).rglob("*.py") if "weights" not in p.parts)


def imports_of(path: Path, package_dir: Path = PACKAGE_DIR) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every tinylib import in ``path``, nested ones too.

    ``from tinylib.eval import widerface`` gives ``tinylib.eval.widerface`` (for a plain
    attribute the longer name has its module's layer anyway)."""
    path = Path(path)
    mod = module_name(path, package_dir)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == ROOT]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != ROOT:
                continue
            out += [(node.lineno, f"{target}.{a.name}") for a in node.names]
    return out


def _allowed(own: int, target: int) -> bool:
    return target == own or target <= _layer(own).reach


def violations(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Every module not on the map, and every import that reaches up (above the importer's
    layer, or above what its layer may import), as ``path:line: ...`` lines."""
    bad = []
    for path in modules(package_dir):
        mod = module_name(path, package_dir)
        own = layer_of(mod)
        where = path.relative_to(Path(package_dir).parent)
        if own is None:
            bad.append(f"{where}: {mod} is not on the map (add its package to tinylib.layers.LAYERS)")
            continue
        for line, target in imports_of(path, package_dir):
            lt = layer_of(target)
            if lt is not None and not _allowed(own, lt):
                bad.append(f"{where}:{line}: {mod} (layer {own}, may import {_span(own)}) imports {target} "
                           f"(layer {lt})")
    return bad


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def arrows(package_dir: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """Top-level package (or module) -> the other top-level packages it imports."""
    out: dict[str, set[str]] = {}
    for path in modules(package_dir):
        src = _top(module_name(path, package_dir))
        deps = out.setdefault(src, set())
        deps |= {_top(t) for _, t in imports_of(path, package_dir) if _top(t) in _LEVEL} - {src}
    return out


def _span(level: int) -> str:
    reach = _layer(level).reach
    if reach < 0:
        return "its own layer only"
    return f"its own layer and {'layer 0' if reach == 0 else f'layers 0-{reach}'}"


def _name(member: str) -> str:
    return "the package root" if member == ROOT else member


def format_map(package_dir: Path = PACKAGE_DIR) -> tuple[str, int]:
    """The map, its arrows and the verdict as text, and the number of problems."""
    lines = ["tinylib's layers, lowest first: a module imports its own layer and those below it, never",
             "one above (function-local imports included). docs/DEVELOPING.md, \"The map\".", ""]
    for layer in LAYERS:
        lines.append(f"{layer.level} {layer.name}: {', '.join(map(_name, layer.members))}")
        lines += textwrap.wrap(f"owns {layer.owns}; may import {_span(layer.level)}", 92,
                               initial_indent="    ", subsequent_indent="    ",
                               break_on_hyphens=False)
    lines += ["", "The arrows (package -> the packages it imports, with their layer):"]
    found = arrows(package_dir)
    for layer in LAYERS:
        for member in layer.members:
            deps = sorted(found.get(member, ()), key=lambda m: (_LEVEL[m], m))
            text = ", ".join(f"{_name(d)} ({_LEVEL[d]})" for d in deps) or "nothing of tinylib"
            lines.append(f"  {layer.level} {_name(member)} -> {text}")
    bad = violations(package_dir)
    n_mod = len(modules(package_dir))
    n_imp = sum(len(imports_of(p, package_dir)) for p in modules(package_dir))
    lines.append("")
    if bad:
        lines += [f"{len(bad)} problem(s):", *bad]
    else:
        lines.append(f"{n_mod} modules, {n_imp} tinylib imports checked: no arrow runs up, every module "
                     "is on the map.")
    return "\n".join(lines), len(bad)


def main(argv=None) -> int:
    text, problems = format_map()
    print(text)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
