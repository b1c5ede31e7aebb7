from __future__ import annotations

import pytest
import torch

from tinylib import config


@pytest.fixture
def no_tier_env(monkeypatch):
    monkeypatch.delenv("TINYLIB_TIER", raising=False)
    monkeypatch.delenv("TINYLIB_QUICK", raising=False)
    return monkeypatch


def test_cpu_is_the_default_tier_without_cuda_and_full_with_it(no_tier_env):
    no_tier_env.setattr(torch.cuda, "is_available", lambda: False)
    assert config._cuda_available() is False
    assert config.tier() == "cpu" and config.quick_mode() is False
    assert config.pick("q", "c", "f") == "c"
    no_tier_env.setattr(torch.cuda, "is_available", lambda: True)
    assert config._cuda_available() is True
    assert config.tier() == "full" and config.pick("q", "c", "f") == "f"
    no_tier_env.setattr(config, "_cuda_available", lambda: False)
    assert config.tier() == "cpu"


def test_quick_alias_and_tier_variable(no_tier_env):
    no_tier_env.setattr(config, "_cuda_available", lambda: False)
    no_tier_env.setenv("TINYLIB_QUICK", "1")
    assert config.tier() == "quick" and config.quick_mode() is True
    assert config.pick("q", "c", "f") == "q"
    no_tier_env.setenv("TINYLIB_QUICK", "off")  # "not quick": the default tier
    assert config.tier() == "cpu" and config.quick_mode() is False
    no_tier_env.setenv("TINYLIB_QUICK", "1")
    for name in config.TIERS:  # TINYLIB_TIER wins over the alias
        no_tier_env.setenv("TINYLIB_TIER", name.upper())
        assert config.tier() == name
        assert config.pick("q", "c", "f") == name[0]
    assert set(config.TIER_COSTS) == set(config.TIERS)


def test_tier_rejects_garbage(no_tier_env):
    no_tier_env.setenv("TINYLIB_TIER", "laptop")
    with pytest.raises(ValueError, match="TINYLIB_TIER"):
        config.tier()
    no_tier_env.delenv("TINYLIB_TIER")
    no_tier_env.setenv("TINYLIB_QUICK", "maybe")
    with pytest.raises(ValueError, match="TINYLIB_QUICK"):
        config.quick_mode()
    with pytest.raises(TypeError):
        config.pick("q", "f")  # the old two-value form: the laptop tier cannot be forgotten


NOTEBOOKS = sorted((config.REPO_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _code_cells(path):
    """``(cell number, parsed code)`` of every code cell (Jupyter magics and shell lines
    blanked, so that the rest parses as Python)."""
    import ast
    import json

    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"], start=1):
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.splitlines()]
        yield i, ast.parse("\n".join(lines))


def _tier_misuse(tree) -> list[str]:
    """``config.pick`` calls without exactly three values (quick, cpu, full), and
    ``quick_mode()`` used for anything but printing which tier runs."""
    import ast

    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def name(func):
        return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)

    def in_print(node):
        while node in parents:
            node = parents[node]
            if isinstance(node, ast.Call) and name(node.func) == "print":
                return True
        return False

    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = name(node.func)
        is_config = not isinstance(node.func, ast.Attribute) or name(node.func.value) == "config"
        if called == "pick" and is_config:
            starred = any(isinstance(a, ast.Starred) for a in node.args) or any(
                k.arg is None for k in node.keywords)
            if starred or len(node.args) + len(node.keywords) != 3:
                bad.append(f"line {node.lineno}: config.pick needs three values (quick, cpu, full)")
        elif called == "quick_mode" and is_config and not in_print(node):
            bad.append(f"line {node.lineno}: quick_mode() sizes work; use config.pick(quick, cpu, full)")
    return bad


def test_tier_check_catches_misuse():
    import ast

    code = ("n = config.pick(8, None)\nm = config.pick(1, 2, 3)\nif config.quick_mode():\n    n = 1\n"
            "print('tier:', config.tier(), config.quick_mode())\nx = rng.pick(1, 2)\n")
    bad = _tier_misuse(ast.parse(code))
    assert len(bad) == 2 and bad[0].startswith("line 1:") and bad[1].startswith("line 3:")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_sizes_its_work_through_the_tier(path):
    """Every config.pick in a chapter has a quick, a cpu and a full value; no chapter sizes
    its work with quick_mode() (printing which tier runs is allowed)."""
    bad = [f"cell {i}, {msg}" for i, tree in _code_cells(path) for msg in _tier_misuse(tree)]
    assert not bad, f"{path.name}:\n" + "\n".join(bad)


def test_data_root_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path))
    assert config.data_root() == tmp_path.resolve()
    (tmp_path / "widerface").mkdir()
    (tmp_path / "widerface" / "x.txt").write_text("hi")
    assert config.data_file("widerface/x.txt").read_text() == "hi"
    assert config.data_file("widerface/missing.txt", required=False) is None
    with pytest.raises(config.DataRootError, match="missing.txt"):
        config.data_file("widerface/missing.txt")


def test_dataset_dir_under_the_data_root_or_an_explicit_root(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path))
    assert config.dataset_dir("fddb") == tmp_path.resolve() / "fddb"
    assert config.dataset_dir() == tmp_path.resolve()
    other = tmp_path / "other"
    assert config.dataset_dir("widerface", other) == other / "widerface"
    assert config.dataset_dir(root=str(other)) == other
    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(config.DataRootError, match="nowhere"):
        config.dataset_dir("fddb")
    assert config.dataset_dir("fddb", must_exist=False) == tmp_path / "nowhere" / "fddb"
    assert config.dataset_dir("fddb", other) == other / "fddb"  # an explicit root is not checked


def test_data_root_pointing_nowhere_lists_where_it_looked(monkeypatch, tmp_path):
    nowhere = tmp_path / "does-not-exist"
    monkeypatch.setenv("TINYLIB_DATA", str(nowhere))
    with pytest.raises(config.DataRootError) as err:
        config.data_root()
    assert str(nowhere) in str(err.value) and "TINYLIB_DATA" in str(err.value)
    assert config.data_root(must_exist=False) == nowhere


def test_default_data_root_is_repo_data(monkeypatch):
    monkeypatch.delenv("TINYLIB_DATA", raising=False)
    assert config.data_root_candidates() == [config.REPO_DIR / "data"]


def test_cache_and_build_dirs(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYLIB_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("TINYLIB_BUILD", str(tmp_path / "b"))
    assert config.cache_dir("a", "b") == tmp_path / "c" / "a" / "b"
    assert (tmp_path / "c" / "a" / "b").is_dir()
    assert config.build_dir("x") == tmp_path / "b" / "x"
    assert config.cache_dir("z", create=False) == tmp_path / "c" / "z"
    assert not (tmp_path / "c" / "z").exists()


def test_device_choice(monkeypatch):
    monkeypatch.delenv("TINYLIB_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert config.pick_device() == expected
    monkeypatch.setenv("TINYLIB_DEVICE", "cpu")
    rt = config.runtime()
    assert rt.device == "cpu" and rt.amp_dtype is None and not rt.use_amp


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_device_override_without_cuda_is_clear(monkeypatch):
    monkeypatch.setenv("TINYLIB_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        config.pick_device()


def test_amp_dtype_per_device():
    assert config.amp_dtype_for("cpu") is None
    assert config.amp_dtype_for("mps") == torch.float16


def test_seeding_is_explicit_and_repeatable():
    config.seed_everything(123)
    a = torch.rand(3)
    config.seed_everything(123)
    assert torch.equal(a, torch.rand(3))


def test_import_has_no_side_effects():
    import subprocess
    import sys

    code = (
        "import torch, random; torch.manual_seed(7); a = torch.rand(1); "
        "torch.manual_seed(7); import tinylib, tinylib.config, tinylib.boxes, tinylib.scorecard; "
        "b = torch.rand(1); n = torch.get_num_threads(); "
        "assert torch.equal(a, b), 'import changed the RNG'; print(n)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().isdigit()


def test_describe_has_the_facts(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path))
    info = config.describe()
    assert info["torch"].startswith("2.14") and info["data_root_exists"] is True
    assert set(info) >= {"python", "device", "threads", "quick_mode", "cache_dir"}
