"""`tinylib-data` through ``main([...])``: status (table and JSON) on the real bundle and on
an empty root, a data root that does not exist, fetch errors, and stats."""

from __future__ import annotations

import json
import socket

import pytest

from tinylib.data import cli, registry
from tinylib.data.registry import Dataset, FileSpec


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "_mem_cache", {})


@pytest.mark.realdata
def test_status_on_real_data(real_data, capsys):
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert set(lines) == set(registry.DATASETS)
    assert "verified" in lines["widerface_annotations"] and "6/6" in lines["widerface_annotations"]
    assert "63/63" in lines["widerface_pr_curves"]
    assert "missing" in lines["tinyperson"] and "by hand" in lines["tinyperson"]
    assert "tinylib-data fetch cifar100" in lines["cifar100"]
    assert out.splitlines()[0] == f"data root: {real_data.resolve()}"


@pytest.mark.realdata
def test_status_json_verbose_on_real_data(real_data, capsys):
    assert cli.main(["status", "--json", "-v"]) == 0
    doc = json.loads(capsys.readouterr().out)
    by_name = {d["name"]: d for d in doc["datasets"]}
    fddb = by_name["fddb"]
    assert fddb["state"] == "verified" and fddb["present"] == fddb["total"] == 20
    assert all(f["state"] == "verified" for f in fddb["files"])


def test_status_json_on_empty_root(tmp_path, capsys):
    assert cli.main(["status", "--json", "--root", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["data_root"] == str(tmp_path) and doc["data_root_exists"] is True
    assert {d["name"] for d in doc["datasets"]} == set(registry.DATASETS)
    for d in doc["datasets"]:
        assert d["state"] == "missing" and d["present"] == 0 and d["total"] > 0
        assert d["where"] and "files" not in d


def test_status_when_data_root_points_nowhere(tmp_path, monkeypatch, capsys):
    nowhere = tmp_path / "nowhere"
    monkeypatch.setenv("TINYLIB_DATA", str(nowhere))
    assert cli.main(["status"]) == 1
    cap = capsys.readouterr()
    assert "DOES NOT EXIST" in cap.out and "missing" in cap.out
    assert str(nowhere) in cap.err and "TINYLIB_DATA" in cap.err
    assert not nowhere.exists()  # a report creates nothing


def test_fetch_errors_are_clear(tmp_path, monkeypatch, capsys):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = f"http://127.0.0.1:{port}/x.bin"
    ds = Dataset(
        "fake",
        "fake",
        (FileSpec("fake/x.bin", url=url),),
        "http://x.invalid/",
        "none",
        True,
        "test",
    )
    monkeypatch.setitem(registry.DATASETS, "fake", ds)
    assert (
        cli.main(["fetch", "fake", "--root", str(tmp_path), "--no-progress", "--timeout", "5"]) == 1
    )
    err = capsys.readouterr().err
    assert url in err and str(tmp_path / "fake" / "x.bin") in err
    assert cli.main(["fetch", "imagenet32", "--root", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "imagenet32" / "Imagenet32_val_npz.zip") in err and "image-net.org" in err
    with pytest.raises(SystemExit) as ei:  # unknown names are a usage error
        cli.main(["fetch", "no_such_dataset"])
    assert ei.value.code == 2


def test_stats_reports_missing_module(monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "tinylib.data.stats", None)
    assert cli.main(["stats", "fddb"]) == 1
    assert "tinylib.data.stats is missing" in capsys.readouterr().err


@pytest.mark.realdata
def test_stats_prints_json_lines(real_data, capsys):
    assert cli.main(["stats", "fddb"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)
    assert cli.main(["stats", "widerface"]) == 0
    rows = {r["dataset"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["widerface-train"]["images"] == 12880
    assert rows["widerface-train"]["objects"] == 159420
    assert rows["widerface-val"]["objects"] == 39708
    assert rows["widerface-val"]["degenerate"] > 0


def test_stats_absent_or_unknown_dataset_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["stats", "tinyperson", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "TinyPerson" in err and "Traceback" not in err
    assert cli.main(["stats", "nonsense", "--root", str(tmp_path)]) == 1
    assert "unknown dataset 'nonsense'" in capsys.readouterr().err
