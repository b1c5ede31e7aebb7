"""The import direction of the library (docs/DEVELOPING.md, "The map"; the map itself is data in
``tinylib.layers``, printed by ``python -m tinylib.layers``).

Layers, lowest first; a module may import its own layer and the ones below, never one above.
Function-local imports count too: a lazy import that reaches up is still a reach up. The map
lists top-level packages and modules only -- no sub-module has a layer of its own -- and the
protocols (``eval``) import nothing above the data layer.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tinylib import layers as L

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "tinylib"


def _top_level() -> set[str]:
    """The modules and packages directly inside ``tinylib/`` (not the shipped ``weights``)."""
    mods = {p.stem for p in PKG.glob("*.py") if p.name != "__init__.py"}
    pkgs = {d.name for d in PKG.iterdir() if (d / "__init__.py").is_file()}
    return mods | pkgs


def test_the_map_lists_packages_only_each_once():
    members = [m for layer in L.LAYERS for m in layer.members]
    assert len(members) == len(set(members)), "a package is on the map twice"
    assert not [m for m in members if "." in m], "the map lists top-level packages, not sub-modules"
    assert [layer.level for layer in L.LAYERS] == list(range(len(L.LAYERS)))
    listed = set(members) - {L.ROOT}
    assert listed == _top_level(), (f"not on the map: {sorted(_top_level() - listed)}; "
                                    f"on the map but not in tinylib/: {sorted(listed - _top_level())}")


def test_every_module_has_a_layer():
    missing = [L.module_name(p) for p in L.modules() if L.layer_of(L.module_name(p)) is None]
    assert not missing, f"modules without a layer in tinylib/layers.py: {missing}"


def test_imports_never_reach_up():
    bad = L.violations()
    assert not bad, "imports that reach up a layer:\n" + "\n".join(bad)


def test_the_protocols_import_nothing_above_the_data_layer():
    eval_layer = L.layer_of("tinylib.eval")
    for path in (PKG / "eval").rglob("*.py"):
        for line, target in L.imports_of(path):
            level = L.layer_of(target)
            assert level is None or level <= 1 or target.startswith("tinylib.eval"), (
                f"{path.relative_to(ROOT)}:{line} imports {target} (layer {level}); "
                f"the protocols (layer {eval_layer}) import only the data layer and below")


@pytest.mark.parametrize("module, expected", [
    ("tinylib.eval.widerface", 3), ("tinylib.eval.cli", 3), ("tinylib.eval.pitfalls", 3),
    ("tinylib.compare.wider_subset", 5), ("tinylib.compare", 5), ("tinylib.hr.train", 4),
    ("tinylib.data.synthetic.scene", 1), ("tinylib", 6), ("tinylib.boxes", 0), ("tinylib.layers", 0),
    ("tinylib.engine", 2), ("tinylib.engine.tta", 2), ("tinylib.engine.recipe", 2),
    ("tinylib.data.registry.catalog", 1), ("tinylib.prose", 6), ("tinylib.course", 6),
    ("tinylib.nosuchmodule", None), ("numpy", None),
])
def test_layer_of(module, expected):
    assert L.layer_of(module) == expected


def test_a_reach_up_is_caught(tmp_path):
    """The checker itself: a data module importing a detector, and a protocol importing the
    building blocks (allowed to others below it, not to the protocols), are reported."""
    pkg = tmp_path / "tinylib"
    for sub in ("data", "eval", "engine"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "bad.py").write_text(
        "def f():\n    from ..hr import detect\n    from tinylib.compare import wider_subset\n")
    (pkg / "eval" / "bad.py").write_text("from ..engine import tta\nfrom . import widerface\n")
    (pkg / "engine" / "ok.py").write_text("from ..data import bad\n")
    found = L.imports_of(pkg / "data" / "bad.py", pkg)
    assert (2, "tinylib.hr.detect") in found and (3, "tinylib.compare.wider_subset") in found
    bad = L.violations(pkg)
    assert len(bad) == 3, bad
    assert any("data/bad.py:2:" in b and "tinylib.hr.detect (layer 4)" in b for b in bad)
    assert any("data/bad.py:3:" in b and "(layer 5)" in b for b in bad)
    assert any("eval/bad.py:1:" in b and "tinylib.engine.tta (layer 2)" in b for b in bad)
    (pkg / "unknown.py").write_text("")
    assert any("tinylib.unknown is not on the map" in b for b in L.violations(pkg))


def test_python_m_tinylib_layers_prints_the_map():
    out = subprocess.run([sys.executable, "-m", "tinylib.layers"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    for layer in L.LAYERS:
        assert f"{layer.level} {layer.name}: " in out.stdout
    assert "3 protocols: eval\n" in out.stdout
    assert re.search(r"^  5 compare -> .*hr \(4\)", out.stdout, re.M)
    assert "no arrow runs up" in out.stdout


def test_the_developing_table_matches_the_map():
    """docs/DEVELOPING.md's layer table names the same packages per layer as tinylib.layers."""
    text = (ROOT / "docs" / "DEVELOPING.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| (\d) [^|]+\| ([^|]+)\|", line)
        if m:
            rows[int(m.group(1))] = set(re.findall(r"`([\w.]+)`", m.group(2)))
    expected = {layer.level: set(layer.members) - {L.ROOT} for layer in L.LAYERS}
    assert rows == expected
