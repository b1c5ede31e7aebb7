from __future__ import annotations

import pytest
import torch

from tinylib import config


def test_quick_mode_reads_env_each_call(monkeypatch):
    monkeypatch.delenv("TINYLIB_QUICK", raising=False)
    assert config.quick_mode() is False
    assert config.pick("q", "f") == "f"
    monkeypatch.setenv("TINYLIB_QUICK", "1")
    assert config.quick_mode() is True
    assert config.pick("q", "f") == "q"
    monkeypatch.setenv("TINYLIB_QUICK", "off")
    assert config.quick_mode() is False


def test_quick_mode_rejects_garbage(monkeypatch):
    monkeypatch.setenv("TINYLIB_QUICK", "maybe")
    with pytest.raises(ValueError, match="TINYLIB_QUICK"):
        config.quick_mode()


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
