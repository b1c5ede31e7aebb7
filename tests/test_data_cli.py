"""`tinylib-data` through ``main([...])``: status (table, image-set lines and JSON) on the
real bundle, on an empty root and on a root with a bad image, a data root that does not
exist, fetch errors, and stats."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys

import pytest

from tinylib.data import cli, registry
from tinylib.data.registry import Dataset, FileSpec


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(registry.digests, "_mem_cache", {})


@pytest.mark.realdata
def test_status_on_real_data(real_data, capsys):
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    table, _, image_sets = out.partition("\n\n")
    lines = {line.split()[0]: line for line in table.splitlines()[2:]}
    assert set(lines) == set(registry.DATASETS)
    assert "verified" in lines["widerface_annotations"] and "6/6" in lines["widerface_annotations"]
    assert "63/63" in lines["widerface_pr_curves"]
    assert "missing" in lines["tinyperson"] and "by hand" in lines["tinyperson"]
    assert "tinylib-data fetch cifar100" in lines["cifar100"]
    assert "verified" in lines["widerface_val_images"] and "374/3226" in lines["widerface_val_images"]
    for name in ("weights_yunet", "weights_retinaface_mnet025", "widerface_subset_manifest"):
        assert lines[name].split()[1] == "verified" and "by hand" in lines[name]
    assert out.splitlines()[0] == f"data root: {real_data.resolve()}"
    assert "  WIDER train images: 1,239 of 12,880 present, verified\n" in image_sets
    assert "  WIDER val images: 374 of 3,226 present, verified\n" in image_sets


@pytest.mark.realdata
def test_status_json_verbose_on_real_data(real_data, capsys):
    assert cli.main(["status", "--json", "-v"]) == 0
    doc = json.loads(capsys.readouterr().out)
    by_name = {d["name"]: d for d in doc["datasets"]}
    fddb = by_name["fddb"]
    assert fddb["state"] == "verified" and fddb["present"] == fddb["total"] == 20
    assert all(f["state"] == "verified" for f in fddb["files"])
    val = by_name["widerface_val_images"]
    assert val["kind"] == "images" and (val["present"], val["total"]) == (374, 3226)
    assert val["summary"] == "WIDER val images: 374 of 3,226 present, verified"
    assert len(val["files"]) == 374 and all(f["state"] == "verified" for f in val["files"])


def test_status_json_on_empty_root(tmp_path, capsys):
    assert cli.main(["status", "--json", "--root", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["data_root"] == str(tmp_path) and doc["data_root_exists"] is True
    assert {d["name"] for d in doc["datasets"]} == set(registry.DATASETS)
    for d in doc["datasets"]:
        assert d["state"] == "missing" and d["present"] == 0 and d["total"] > 0
        assert d["where"] and "files" not in d


def test_status_names_the_image_that_differs_from_the_manifest(tmp_path, monkeypatch, capsys):
    body = b"real image bytes"
    img = tmp_path / "widerface/WIDER_val/images/0--E/0_E_a.jpg"
    img.parent.mkdir(parents=True)
    img.write_bytes(body)
    (img.parent / "0_E_extra.jpg").write_bytes(b"x")
    manifest = (
        "split,image,bytes,sha256,faces\n"
        f"val,0--E/0_E_a.jpg,{len(body)},{hashlib.sha256(body).hexdigest()},2\n"
    ).encode()
    (tmp_path / "widerface/wider_subset_manifest.csv").write_bytes(manifest)
    spec = FileSpec(
        "widerface/wider_subset_manifest.csv",
        size=len(manifest),
        sha256=hashlib.sha256(manifest).hexdigest(),
    )
    ds = Dataset("widerface_subset_manifest", "m", (spec,), "http://x.invalid/", "none", False, "t")
    monkeypatch.setitem(registry.DATASETS, "widerface_subset_manifest", ds)
    assert cli.main(["status", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (
        "  WIDER val images: 2 of 3,226 present, present but unverified "
        "(1 not in the manifest: 0--E/0_E_extra.jpg)" in out
    )
    img.write_bytes(b"REAL image bytes")  # same size, other content
    assert cli.main(["status", "--root", str(tmp_path), "-v"]) == 0
    out = capsys.readouterr().out
    assert "WIDER val images: 2 of 3,226 present, present but unverified (1 differs" in out
    assert "0--E/0_E_a.jpg" in out.split("WIDER val images:")[1]
    # -v lists the image itself with expected and actual digest
    assert f"widerface/WIDER_val/images/0--E/0_E_a.jpg: checksum mismatch ({img}: sha256" in out
    assert cli.main(["status", "--root", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    val = {d["name"]: d for d in doc["datasets"]}["widerface_val_images"]
    assert val["state"] == "present but unverified" and "0--E/0_E_a.jpg" in val["hint"]


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


def test_status_does_not_import_the_loaders():
    """`tinylib-data status` starts fast: only the stats command imports the loaders."""
    code = (
        "import sys; from tinylib.data import cli; "
        "print(sorted(m for m in ('tinylib.data.stats', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


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
