"""The import direction of the library (docs/DEVELOPING.md, "The map").

Layers, lowest first; a module may import its own layer and the ones below, never one above.
Function-local imports count too: a lazy import that reaches up is still a reach up.

0 foundation   config, io, boxes, papers (the paper's numbers), scorecard, measured (the
               shipped tables with provenance)
1 data         tinylib.data.*
2 building     analysis, models, engine (the model-agnostic trainer: engine.loop, the shared
               recipe and command line engine.recipe, the run-folder format engine.runs)
3 protocols    eval.pr, eval.widerface, eval.fddb, eval.tinyperson: pure functions of
               predictions and ground truth, below the detectors so that a training run can
               report AP per epoch; eval.tta, test-time pyramid/flip around any detect function
4 detectors    hr (and the detectors beside it), peers
5 comparison   eval.compare, eval.cli, studies
6 presentation viz, widgets, notebooks (the runner), report, course, the package root
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "tinylib"

LAYERS: list[tuple[int, str]] = [  # longest prefix wins
    (0, "tinylib.config"), (0, "tinylib.io"), (0, "tinylib.boxes"), (0, "tinylib.scorecard"),
    (0, "tinylib.papers"), (0, "tinylib.measured"),
    (1, "tinylib.data"),
    (2, "tinylib.analysis"), (2, "tinylib.models"), (2, "tinylib.engine"),
    (3, "tinylib.eval.pr"), (3, "tinylib.eval.widerface"), (3, "tinylib.eval.fddb"),
    (3, "tinylib.eval.tinyperson"), (3, "tinylib.eval.tta"),
    (4, "tinylib.hr"), (4, "tinylib.frcnn"), (4, "tinylib.gan"), (4, "tinylib.peers"),
    (5, "tinylib.eval"), (5, "tinylib.studies"),
    (6, "tinylib.viz"), (6, "tinylib.widgets"), (6, "tinylib.notebooks"), (6, "tinylib"),
]


def layer_of(module: str) -> int | None:
    best = None
    for level, prefix in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[1]):
                best = (level, prefix)
    return None if best is None else best[0]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every tinylib import in ``path``, nested ones too."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "tinylib"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "tinylib":
                continue
            # ``from tinylib.eval import compare`` imports the submodule compare: judge the
            # longest name (for a plain attribute it has the layer of its module anyway)
            out += [(node.lineno, f"{target}.{a.name}") for a in node.names]
    return out


def _sources():
    return sorted(p for p in PKG.rglob("*.py") if "weights" not in p.parts)


def test_every_module_has_a_layer():
    missing = [module_name(p) for p in _sources() if layer_of(module_name(p)) is None]
    assert not missing, f"modules without a layer in tests/test_layers.py: {missing}"


def test_imports_never_reach_up():
    bad = []
    for path in _sources():
        mod = module_name(path)
        own = layer_of(mod)
        for line, target in imports_of(path):
            lt = layer_of(target)
            if lt is not None and lt > own:
                bad.append(f"{path.relative_to(PKG.parent)}:{line}: {mod} (layer {own}) "
                           f"imports {target} (layer {lt})")
    assert not bad, "imports that reach up a layer:\n" + "\n".join(bad)


@pytest.mark.parametrize("module, expected", [
    ("tinylib.eval.widerface", 3), ("tinylib.eval.compare", 5), ("tinylib.hr.train", 4),
    ("tinylib.data.synthetic.scene", 1), ("tinylib", 6), ("tinylib.boxes", 0),
    ("tinylib.engine", 2), ("tinylib.engine.loop", 2), ("tinylib.engine.recipe", 2),
    ("tinylib.engine.runs", 2), ("tinylib.data.registry", 1), ("tinylib.data.registry.catalog", 1),
])
def test_layer_of(module, expected):
    assert layer_of(module) == expected


def test_a_reach_up_is_caught(tmp_path, monkeypatch):
    """The checker itself: a data module importing a detector is reported."""
    pkg = tmp_path / "tinylib"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "__init__.py").write_text("")
    bad = pkg / "data" / "bad.py"
    bad.write_text("def f():\n    from ..hr import detect\n    from tinylib.eval import compare\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", pkg)
    found = imports_of(bad)
    assert (2, "tinylib.hr.detect") in found and (3, "tinylib.eval.compare") in found
    assert layer_of("tinylib.data.bad") == 1 and layer_of("tinylib.hr") == 4
