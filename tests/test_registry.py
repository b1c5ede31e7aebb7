"""The data registry: the checksum table, locate/verify against the real bundle, image sets
(partial image folders verified against the subset manifest, digests cached), and
downloads against a local HTTP server (success, checksum mismatch, HTML page,
interrupted transfer, offline) plus archive unpacking."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from tinylib import config
from tinylib.data import registry
from tinylib.data.registry import (
    ChecksumError,
    DataMissingError,
    Dataset,
    DownloadError,
    ExtractError,
    FileSpec,
)

REPO = Path(__file__).resolve().parents[1]
TABLE = json.loads((REPO / "tinylib" / "data" / "registry_files.json").read_text())


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Each test gets its own verification cache (the on-disk JSON and the memory copy)."""
    monkeypatch.setenv("TINYLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(registry.digests, "_mem_cache", {})


# --------------------------------------------------------------------------- the table
def test_every_bundle_file_registered_once_with_its_checksum():
    seen: dict[str, str] = {}
    for ds in registry.DATASETS.values():
        for spec in ds.files + ds.archives:
            assert spec.relpath not in seen, f"{spec.relpath} in {ds.name} and {seen[spec.relpath]}"
            seen[spec.relpath] = ds.name
            if spec.relpath in TABLE:
                assert spec.sha256 == TABLE[spec.relpath]["sha256"]
                assert spec.size == TABLE[spec.relpath]["size"]
    assert set(TABLE) <= set(seen), sorted(set(TABLE) - set(seen))
    assert len(TABLE) == 115
    assert sum(k.startswith("widerface/pr_curves/Val/setting_int/") for k in TABLE) == 27
    assert sum(k.startswith("widerface/pr_curves/") for k in TABLE) == 63
    assert sum(k.startswith("weights/") for k in TABLE) == 6  # 3 weight files + 3 licences
    assert seen["widerface/wider_subset_manifest.csv"] == "widerface_subset_manifest"


def test_required_entries_and_consistency():
    names = set(registry.DATASETS)
    for must in (
        "widerface_annotations",
        "widerface_eval",
        "widerface_train_images",
        "widerface_val_images",
        "fddb",
        "fddb_images",
        "imagenet_val_boxes",
        "tinyfaces_hr",
        "demo",
        "tinyperson",
        "cifar100",
        "imagenet32",
        "widerface_subset_manifest",
        "weights_mobilenet_v1_025_imagenet",
        "weights_retinaface_mnet025",
        "weights_yunet",
    ):
        assert must in names
    for ds in registry.DATASETS.values():
        assert ds.homepage.startswith("http") and ds.terms and ds.how_to_obtain
        archives = {a.relpath: a for a in ds.archives}
        obtainable = []
        for spec in ds.files:
            if spec.source is not None:
                assert spec.source in archives, (ds.name, spec.relpath)
                obtainable.append(bool(archives[spec.source].urls))
            else:
                obtainable.append(bool(spec.urls))
        assert ds.downloadable == all(obtainable), ds.name
        for a in ds.archives:
            assert a.is_archive
    cifar = registry.get("cifar100").archives[0]
    assert cifar.checksum == ("md5", "03b5dce01913d631647c71ecec9e9cb8")
    assert cifar.url == "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
    split = registry.get("widerface_annotations").archives[0]
    assert split.sha256 == "c7561e4f5e7a118c249e0a5c5c902b0de90bbf120d7da9fa28d99041f68a8a5c"
    assert not registry.get("imagenet32").downloadable
    assert not registry.get("tinyperson").downloadable
    # image sets: the partial train/val folders, checked against the subset manifest
    for split, total in (("train", 12880), ("val", 3226)):
        ds = registry.image_set(split)
        assert ds.name == f"widerface_{split}_images"
        assert ds.images.total == total and ds.images.label == f"WIDER {split} images"
        assert ds.images.manifest == "widerface/wider_subset_manifest.csv"
        assert registry.spec_for(ds.images.manifest) is not None
    assert registry.get("widerface_test_images").images is None
    with pytest.raises(ValueError, match="train, val"):
        registry.image_set("test")
    # each weight file with its licence and its terms
    for name, weight, licence in (
        ("weights_mobilenet_v1_025_imagenet", "mobilenetV1X0.25_pretrain.tar", "MIT"),
        ("weights_retinaface_mnet025", "mobilenet0.25_Final.pth", "MIT"),
        ("weights_yunet", "yunet_n_640_640.onnx", "Apache"),
    ):
        ds = registry.get(name)
        rels = [f.relpath.rsplit("/", 1)[1] for f in ds.files]
        assert rels == [weight, "LICENSE"] and licence in ds.terms
        assert ds.files[0].url.startswith("https://raw.githubusercontent.com/")
        assert "LICENSE" in ds.how_to_obtain
    assert "shared data bundle" in registry.get("widerface_subset_manifest").where()


# --------------------------------------------------------------------------- the catalog
_CATALOG = REPO / "tinylib" / "data" / "registry_catalog.toml"
_MINI = """
[github]
tiny = ["peiyunh/tiny", "37c44deacf53e0fbe23327ef3721b5fb5f22559f"]

[terms]
wider = "WIDER terms."

[[dataset]]
name = "demo"
title = "Selfie"
homepage = "https://github.com/peiyunh/tiny"
terms = ["@wider", "and more."]
downloadable = true
how_to_obtain = "fetch it"

[[dataset.files]]
relpath = "demo/selfie.jpg"
checksum = "table"
url = { github = "tiny", path = "data/demo/selfie.jpg" }
"""


def test_catalog_is_packaged_data_and_loads_like_the_module():
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"data/*.toml"' in pyproject and '"data/*.json"' in pyproject
    assert registry.load_catalog() == registry.DATASETS
    assert list(registry.DATASETS)[:2] == ["widerface_annotations", "widerface_eval"]
    assert len(registry.DATASETS) == 19
    assert sum(len(d.files) for d in registry.DATASETS.values()) == 139


def test_catalog_matches_what_the_python_catalog_built():
    """Spot values of the catalog as the former Python literals built it (expanded
    table_prefix groups, pinned GitHub URLs, joined terms, image sets)."""
    ev = registry.get("widerface_eval")
    assert [f.relpath.rsplit("/", 1)[1] for f in ev.files] == [
        "wider_easy_val.mat", "wider_face_val.mat", "wider_hard_val.mat", "wider_medium_val.mat",
    ]
    assert ev.files[1].url == (
        "https://raw.githubusercontent.com/peiyunh/tiny/37c44deacf53e0fbe23327ef3721b5fb5f22559f/"
        "eval_tools/ground_truth/wider_face_val.mat"
    )
    pr = registry.get("widerface_pr_curves")
    assert len(pr.files) == 63 and all(
        f.url.endswith(quote("eval_tools/plot/baselines/" + f.relpath[len("widerface/pr_curves/"):]))
        for f in pr.files
    )
    wider_terms = registry.get("widerface_annotations").terms
    assert wider_terms.startswith("WIDER FACE: research use;")
    assert registry.get("widerface_pr_curves").terms.endswith(" " + wider_terms)
    assert registry.get("weights_yunet").terms.endswith("Trained on WIDER FACE: " + wider_terms)
    split = registry.get("widerface_annotations")
    assert split.archives[0].members[0] == (
        "wider_face_split/wider_face_val_bbx_gt.txt", "widerface/wider_face_val_bbx_gt.txt"
    )
    assert all(f.source == "widerface/wider_face_split.zip" for f in split.files)
    assert "RECONSTRUCTED" in split.files[1].note
    i32 = registry.get("imagenet32").files
    assert len(i32) == 11 and i32[9].relpath.endswith("train_data_batch_10.npz")
    fddb = registry.get("fddb").files
    assert len(fddb) == 20 and fddb[0].url.endswith("/FDDB-folds/FDDB-fold-01-ellipseList.txt")
    assert registry.get("widerface_val_images").images == registry.ImageSet(
        "val", "widerface/WIDER_val/images", "widerface/wider_subset_manifest.csv", 3226,
        "WIDER val images",
    )
    assert registry.get("widerface_subset_manifest").by_hand == "copy it from the shared data bundle"
    assert registry.files_of("demo") == ("demo/selfie.jpg", "demo/selfie_hr_detections.png")


def test_a_minimal_catalog_loads(tmp_path):
    path = tmp_path / "catalog.toml"
    path.write_text(_MINI)
    ds = registry.load_catalog(path)["demo"]
    assert ds.terms == "WIDER terms. and more."
    assert ds.files[0].sha256 == TABLE["demo/selfie.jpg"]["sha256"]
    assert ds.files[0].url.endswith("/37c44deacf53e0fbe23327ef3721b5fb5f22559f/data/demo/selfie.jpg")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('title = "Selfie"\n', "", r"dataset 'demo': missing field 'title'"),
        ("downloadable = true", 'downloadable = "yes"', r"dataset 'demo': field 'downloadable' must be bool"),
        ('checksum = "table"', 'checksum = "table"\ncolour = "red"', r"files\[0\] \(demo/selfie.jpg\): unknown field 'colour'"),
        ('relpath = "demo/selfie.jpg"', 'relpath = "demo/nope.jpg"', r"files\[0\] \(demo/nope.jpg\): checksum = \"table\" but registry_files.json has no row"),
        ('github = "tiny"', 'github = "tinny"', r"files\[0\] \(demo/selfie.jpg\): url: unknown github name 'tinny'"),
        ('"@wider"', '"@widr"', r"dataset 'demo': field 'terms': unknown reference '@widr'"),
        ('relpath = "demo/selfie.jpg"\nchecksum = "table"', 'relpath = "../selfie.jpg"', r"files\[0\] \(../selfie.jpg\): .*relative"),
        ('checksum = "table"', 'checksum = "table"\nsource = "demo/x.zip"', r"source 'demo/x.zip' is not one of the dataset's archives"),
        ('name = "demo"', "name = 3", r"dataset\[0\]: field 'name' must be str"),
        ("[[dataset.files]]", "[[dataset.files]]\n[dataset.files.oops]", r"unknown field 'oops'"),
        ("[[dataset.files]]", "[[dataset.file]]", r"unknown field 'file'"),
        ('title = "Selfie"', 'title = "Selfie', r"cannot read the dataset catalog"),
    ],
)
def test_a_malformed_catalog_entry_names_the_file_the_entry_and_the_field(
    tmp_path, old, new, expected
):
    assert old in _MINI
    path = tmp_path / "catalog.toml"
    path.write_text(_MINI.replace(old, new, 1))
    with pytest.raises(registry.CatalogError, match=expected) as err:
        registry.load_catalog(path)
    assert str(err.value).startswith(f"{path}: ")


def test_a_dataset_listed_twice_is_an_error(tmp_path):
    path = tmp_path / "catalog.toml"
    path.write_text(_MINI + _MINI[_MINI.index("[[dataset]]"):])
    with pytest.raises(registry.CatalogError, match="dataset 'demo': name used twice"):
        registry.load_catalog(path)


def test_the_package_keeps_the_module_names_and_its_patch_targets():
    """registry is a package (issue #24); every name of the former module is still there,
    and the private state tests patch lives only in the module that reads it, so a stale
    ``monkeypatch.setattr(registry, "_mem_cache", ...)`` fails instead of silently missing."""
    for name in [*registry.__all__, "dataset_status", "TABLE_PATH", "CATALOG_PATH"]:
        assert hasattr(registry, name), name
    assert registry.TABLE_PATH == REPO / "tinylib" / "data" / "registry_files.json"
    assert registry.CATALOG_PATH == REPO / "tinylib" / "data" / "registry_catalog.toml"
    assert registry.verify_file is registry.digests.verify_file
    assert registry.DATASETS is registry.catalog.DATASETS  # one dict: setitem patches reach all
    for private in ("_mem_cache", "atomic_write_text", "hashlib"):
        assert not hasattr(registry, private), private
    assert isinstance(registry.digests._mem_cache, dict)


def test_unknown_dataset_lists_known_names():
    with pytest.raises(ValueError, match="widerface_annotations"):
        registry.get("nope")


def test_filespec_rejects_bad_input():
    with pytest.raises(ValueError, match="relative"):
        FileSpec("../etc/passwd")
    with pytest.raises(ValueError, match="sha256"):
        FileSpec("a.txt", sha256="XYZ")
    with pytest.raises(ValueError, match="kind"):
        FileSpec("a", kind="link")


def _tool():
    spec = importlib.util.spec_from_file_location(
        "make_registry_table", REPO / "tools" / "make_registry_table.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_table_tool_parses_appendix_and_reports_bad_rows():
    tool = _tool()
    text = (
        "intro\n| `x.txt` | 3 | "
        + "a" * 64
        + " |\n## Appendix\n| file | bytes | sha256 |\n| --- | --- | --- |\n"
    )
    text += "| `b/y.txt` | 12 | " + "b" * 64 + " |\n| `a/x.txt` | 5 | " + "c" * 64 + " |\n"
    table = tool.parse_appendix(text, "S.md")
    assert list(table) == ["a/x.txt", "b/y.txt"]  # sorted, rows before the appendix ignored
    assert table["b/y.txt"] == {"size": 12, "sha256": "b" * 64}
    with pytest.raises(ValueError, match=r"S.md:4: expected"):
        tool.parse_appendix("## Appendix\n| a |\n|---|\n| `z` | 1 | short |\n", "S.md")
    with pytest.raises(ValueError, match="no '## Appendix'"):
        tool.parse_appendix("nothing", "S.md")


def test_table_matches_shared_sources(real_data):
    src = real_data / "SOURCES.md"
    if not src.exists():
        pytest.skip(f"{src} not present")
    assert _tool().parse_appendix(src.read_text(encoding="utf-8")) == TABLE


# --------------------------------------------------------------------------- locate / status
@pytest.mark.realdata
def test_locate_verifies_the_real_bundle(real_data):
    full = [s for s in registry.status() if s.state == registry.VERIFIED]
    assert {s.name for s in full} >= {
        "widerface_annotations",
        "widerface_eval",
        "widerface_pr_curves",
        "fddb",
        "imagenet_val_boxes",
        "tinyfaces_hr",
        "demo",
    }
    paths = registry.locate("widerface_eval")
    assert (
        paths["widerface/eval_gt/wider_hard_val.mat"]
        == real_data.resolve() / "widerface/eval_gt/wider_hard_val.mat"
    )
    assert len(registry.locate("widerface_pr_curves")) == 63
    assert registry.find("demo/selfie.jpg").name == "selfie.jpg"
    # the verdicts are cached: a second pass does not hash anything
    cache = config.cache_dir("verified") / "digests.json"
    assert len(json.loads(cache.read_text())) >= 100
    registry.digests._mem_cache.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry.digests.hashlib, "new", lambda *a, **k: pytest.fail("re-hashed a cached file"))
        assert len(registry.locate("fddb")) == 20


def test_data_root_pointing_nowhere(tmp_path, monkeypatch):
    nowhere = tmp_path / "does-not-exist"
    monkeypatch.setenv("TINYLIB_DATA", str(nowhere))
    with pytest.raises(config.DataRootError, match="does-not-exist"):
        registry.locate("fddb")
    with pytest.raises(config.DataRootError, match="does-not-exist"):
        registry.find("fddb/FDDB-fold-01.txt")
    with pytest.raises(config.DataRootError, match="does-not-exist"):
        registry.fetch("fddb")
    rows = registry.status()  # a report never raises
    assert all(r.state == registry.MISSING and r.present == 0 for r in rows)


def test_missing_files_error_says_where_and_how(tmp_path):
    (tmp_path / "fddb").mkdir()
    good = tmp_path / "fddb" / "FDDB-fold-01.txt"
    good.write_bytes(b"2002/07/19/big/img_18\n")
    with pytest.raises(DataMissingError) as ei:
        registry.locate("fddb", root=tmp_path, verify=False)
    msg = str(ei.value)
    assert "19 of 20" in msg and str(tmp_path / "fddb" / "FDDB-fold-02.txt") in msg
    assert "and 7 more" in msg
    assert "tinylib-data fetch fddb" in msg and "Terms:" in msg
    assert len(ei.value.missing) == 19
    assert isinstance(ei.value, config.DataRootError)  # callers may catch the broad error


def test_checksum_mismatch_names_file_expected_and_actual(tmp_path):
    bad = tmp_path / "demo" / "selfie.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"not the selfie")
    expected = TABLE["demo/selfie.jpg"]["sha256"]
    with pytest.raises(ChecksumError) as ei:
        registry.find("demo/selfie.jpg", root=tmp_path)
    msg = str(ei.value)
    assert str(bad) in msg and expected in msg and _sha(b"not the selfie") in msg
    assert ei.value.expected == expected and ei.value.actual == _sha(b"not the selfie")
    assert bad.read_bytes() == b"not the selfie"  # nothing deleted
    st = registry.dataset_status("demo", root=tmp_path)
    assert st.state == registry.MISMATCH and st.present == 1  # a bad file outranks a missing one
    assert "demo/selfie.jpg" in st.hint
    assert st.files[0].state == registry.MISMATCH


def test_find_inside_image_folder_names_the_dataset(tmp_path):
    with pytest.raises(DataMissingError, match="widerface_val_images"):
        registry.find("widerface/WIDER_val/images/0--Parade/x.jpg", root=tmp_path)
    img = tmp_path / "widerface/WIDER_val/images/0--Parade/x.jpg"
    img.parent.mkdir(parents=True)
    img.write_bytes(b"jpg")
    assert registry.find("widerface/WIDER_val/images/0--Parade/x.jpg", root=tmp_path) == img
    st = registry.dataset_status("widerface_val_images", root=tmp_path)
    # an image set counts images out of the full set; no manifest here: unverified
    assert st.state == registry.UNVERIFIED and st.present == 1 and st.total == 3226
    assert st.kind == "images" and "no manifest" in st.hint
    assert st.summary.startswith("WIDER val images: 1 of 3,226 present, present but unverified")


def test_cache_invalidated_when_file_changes(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"one")
    spec = FileSpec("a.bin", sha256=_sha(b"one"))
    assert registry.verify_file(f, spec) == registry.VERIFIED
    f.write_bytes(b"two!")  # new size and mtime: the cached digest no longer applies
    with pytest.raises(ChecksumError, match=_sha(b"two!")):
        registry.verify_file(f, spec)
    assert registry.verify_file(f, FileSpec("a.bin")) == registry.UNVERIFIED
    md5 = FileSpec("a.bin", md5=hashlib.md5(b"two!").hexdigest())
    assert registry.verify_file(f, md5) == registry.VERIFIED


# --------------------------------------------------------------------------- image sets
MANIFEST = "widerface/wider_subset_manifest.csv"
VAL = "widerface/WIDER_val/images"


def _image_root(tmp_path, monkeypatch, extra_rows=""):
    """A data root with 3 val images + 1 train image and a manifest registered with its
    checksum (standing in for the bundle's, whose checksum is in the appendix table)."""
    files = {
        f"{VAL}/0--E/0_E_a.jpg": b"image a",
        f"{VAL}/0--E/0_E_b.jpg": b"image b!",
        f"{VAL}/1--F/1_F_c.jpg": b"image c",
        "widerface/WIDER_train/images/0--E/0_E_t.jpg": b"train t",
    }
    rows = ["split,image,bytes,sha256,faces"]
    for rel, body in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        split = rel.split("/")[1].split("_")[1].lower()
        rows.append(f"{split},{rel.split('/images/')[1]},{len(body)},{_sha(body)},1")
    rows.append(f"val,2--G/2_G_absent.jpg,5,{_sha(b'never')},3")  # listed, not present
    text = "\n".join(rows) + "\n" + extra_rows
    (tmp_path / MANIFEST).write_text(text)
    spec = FileSpec(MANIFEST, size=len(text.encode()), sha256=_sha(text.encode()))
    _fake(monkeypatch, [spec], name="widerface_subset_manifest")
    return tmp_path


def test_image_set_verified_against_manifest(tmp_path, monkeypatch):
    root = _image_root(tmp_path, monkeypatch)
    st = registry.dataset_status("widerface_val_images", root=root)
    assert st.state == registry.VERIFIED and (st.present, st.total) == (3, 3226)
    assert st.summary == "WIDER val images: 3 of 3,226 present, verified"
    assert [f.relpath for f in st.files] == [
        f"{VAL}/0--E/0_E_a.jpg",
        f"{VAL}/0--E/0_E_b.jpg",
        f"{VAL}/1--F/1_F_c.jpg",
    ]
    assert registry.present_images("val", root=root) == [
        "0--E/0_E_a.jpg",
        "0--E/0_E_b.jpg",
        "1--F/1_F_c.jpg",
    ]
    assert registry.present_images("train", root=root) == ["0--E/0_E_t.jpg"]
    train = registry.dataset_status("widerface_train_images", root=root)
    assert train.summary == "WIDER train images: 1 of 12,880 present, verified"
    d = st.to_dict()
    assert d["kind"] == "images" and d["summary"] == st.summary and len(d["files"]) == 3


def test_image_set_mismatch_and_unlisted_files_are_named(tmp_path, monkeypatch, caplog):
    root = _image_root(tmp_path, monkeypatch)
    (root / VAL / "0--E" / "0_E_b.jpg").write_bytes(b"image B!")  # same size, other bytes
    (root / VAL / "1--F" / "1_F_c.jpg").write_bytes(b"longer image c")  # other size
    (root / VAL / "1--F" / "1_F_new.jpg").write_bytes(b"not in the manifest")
    (root / VAL / "1--F" / "notes.txt").write_text("not an image: ignored")
    (root / VAL / "1--F" / ".hidden.jpg").write_text("hidden: ignored")
    st = registry.dataset_status("widerface_val_images", root=root)
    assert st.state == registry.UNVERIFIED and st.present == 4
    assert "2 differ from the manifest: 0--E/0_E_b.jpg, 1--F/1_F_c.jpg" in st.hint
    assert "1 not in the manifest: 1--F/1_F_new.jpg" in st.hint
    assert st.summary.startswith("WIDER val images: 4 of 3,226 present, present but unverified (")
    by = {f.relpath.rsplit("/", 1)[1]: f for f in st.files}
    assert by["0_E_a.jpg"].state == registry.VERIFIED
    assert by["0_E_b.jpg"].state == registry.MISMATCH
    assert _sha(b"image B!") in by["0_E_b.jpg"].detail and "sha256 expected" in by["0_E_b.jpg"].detail
    assert "size expected 7 bytes" in by["1_F_c.jpg"].detail
    assert by["1_F_new.jpg"].state == registry.UNVERIFIED and "not in the manifest" in by["1_F_new.jpg"].detail
    with caplog.at_level("WARNING", logger="tinylib.data.registry"):
        assert registry.present_images("val", root=root) == ["0--E/0_E_a.jpg"]
    assert "3 of 4 present image(s) not verified" in caplog.text
    assert registry.present_images("val", root=root, verified=False) == [
        "0--E/0_E_a.jpg", "0--E/0_E_b.jpg", "1--F/1_F_c.jpg", "1--F/1_F_new.jpg"
    ]


def test_image_set_without_a_good_manifest_is_unverified(tmp_path, monkeypatch):
    root = _image_root(tmp_path, monkeypatch)
    (root / MANIFEST).write_text("split,image,bytes,sha256,faces\n")  # tampered
    st = registry.dataset_status("widerface_val_images", root=root)
    assert st.state == registry.UNVERIFIED and st.present == 3
    assert "manifest" in st.hint and "bad checksum" in st.hint
    assert registry.present_images("val", root=root) == []
    (root / MANIFEST).unlink()
    st = registry.dataset_status("widerface_val_images", root=root)
    assert st.state == registry.UNVERIFIED and "no manifest" in st.hint
    st = registry.dataset_status("widerface_val_images", root=root, verify=False)
    assert st.state == registry.UNVERIFIED and st.hint == "not checked"
    empty = registry.dataset_status("widerface_val_images", root=tmp_path / "nothing")
    assert empty.state == registry.MISSING and (empty.present, empty.total) == (0, 3226)
    with pytest.raises(ValueError, match="no image set"):
        registry.present_images("test", root=root)
    with pytest.raises(config.DataRootError):
        registry.present_images("val", root=tmp_path / "nothing")


def test_image_digests_cached_and_written_once_per_pass(tmp_path, monkeypatch):
    root = _image_root(tmp_path, monkeypatch)
    writes = []
    real_write = registry.digests.atomic_write_text
    monkeypatch.setattr(  # the digest cache writes through the name in registry.digests
        registry.digests, "atomic_write_text", lambda p, t: writes.append(p) or real_write(p, t)
    )
    assert registry.dataset_status("widerface_val_images", root=root).state == registry.VERIFIED
    assert len(writes) == 2  # the manifest's digest, then all images at once
    cache = json.loads((config.cache_dir("verified") / "digests.json").read_text())
    entry = cache[str((root / VAL / "0--E" / "0_E_a.jpg").resolve())]
    assert entry["sha256"] == _sha(b"image a") and entry["size"] == 7 and "mtime_ns" in entry
    registry.digests._mem_cache.clear()  # a new process: read back from disk
    writes.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry.digests.hashlib, "new", lambda *a, **k: pytest.fail("re-hashed a cached file"))
        st = registry.dataset_status("widerface_val_images", root=root)
    assert st.state == registry.VERIFIED and writes == []
    # a changed file (new size and mtime) is hashed again
    (root / VAL / "0--E" / "0_E_a.jpg").write_bytes(b"image a, edited")
    st = registry.dataset_status("widerface_val_images", root=root)
    assert st.state == registry.UNVERIFIED and "0--E/0_E_a.jpg" in st.hint


def test_read_manifest_names_file_and_line(tmp_path):
    m = tmp_path / "m.csv"
    good = "split,image,bytes,sha256,faces\nval,0--E/a.jpg,3," + "a" * 64 + ",1\n"
    m.write_text(good)
    assert registry.read_manifest(m, "val") == {"0--E/a.jpg": (3, "a" * 64)}
    assert registry.read_manifest(m) == {"val/0--E/a.jpg": (3, "a" * 64)}
    for body, line, what in (
        ("image,bytes\n", 1, "header"),
        (good + "val,0--E/b.jpg,three," + "a" * 64 + ",1\n", 3, "byte count"),
        (good + "val,0--E/b.jpg,3,xyz,1\n", 3, "sha256"),
        (good + "val,0--E/b.jpg,3\n", 3, "5 comma-separated"),
        (good + "val,../b.jpg,3," + "a" * 64 + ",1\n", 3, "relative image path"),
        (good + good.splitlines()[1] + "\n", 3, "listed twice"),
    ):
        m.write_text(body)
        with pytest.raises(ValueError, match=rf"m.csv, line {line}: .*{what}"):
            registry.read_manifest(m)


@pytest.mark.realdata
def test_real_image_sets_and_weights_verified(real_data):
    val = registry.dataset_status("widerface_val_images")
    assert val.summary == "WIDER val images: 374 of 3,226 present, verified"
    train = registry.dataset_status("widerface_train_images")
    assert train.summary == "WIDER train images: 1,239 of 12,880 present, verified"
    keys = registry.present_images("val")
    assert len(keys) == 374 and "0--Parade/0_Parade_marchingband_1_465.jpg" in keys
    assert len(registry.present_images("train")) == 1239
    for name in (
        "widerface_subset_manifest",
        "weights_mobilenet_v1_025_imagenet",
        "weights_retinaface_mnet025",
        "weights_yunet",
    ):
        assert registry.dataset_status(name).state == registry.VERIFIED, name
    registry.digests._mem_cache.clear()
    with pytest.MonkeyPatch.context() as mp:  # second pass: from the cache, no hashing
        mp.setattr(registry.digests.hashlib, "new", lambda *a, **k: pytest.fail("re-hashed a cached file"))
        assert registry.present_images("val") == keys


# --------------------------------------------------------------------------- local server
class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        route = self.routes.get(self.path)
        if route is None:
            self.send_error(404, "no such file")
            return
        body = route["body"]
        self.send_response(route.get("status", 200))
        self.send_header("Content-Type", route.get("ctype", "application/octet-stream"))
        self.send_header("Content-Length", str(route.get("length", len(body))))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if route.get("length", len(body)) != len(body):
            self.close_connection = True  # hang up before the promised length


@pytest.fixture
def server():
    routes: dict = {}
    handler = type("H", (_Handler,), {"routes": routes})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", routes
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _fake(monkeypatch, files=(), archives=(), name="fake") -> Dataset:
    ds = Dataset(
        name=name,
        title="a fake dataset",
        files=tuple(files),
        archives=tuple(archives),
        homepage="http://example.invalid/",
        terms="none",
        downloadable=True,
        how_to_obtain="made by the test",
    )
    monkeypatch.setitem(registry.DATASETS, name, ds)
    return ds


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.rglob("*") if p.name.endswith((".part", ".extract")))


PAYLOAD = bytes(range(256)) * 40


def test_fetch_success(server, tmp_path, monkeypatch):
    base, routes = server
    routes["/d/data.bin"] = {"body": PAYLOAD}
    _fake(
        monkeypatch,
        [
            FileSpec(
                "fake/data.bin", size=len(PAYLOAD), sha256=_sha(PAYLOAD), url=base + "/d/data.bin"
            )
        ],
    )
    paths = registry.fetch("fake", root=tmp_path, progress=False, timeout=5)
    assert paths["fake/data.bin"].read_bytes() == PAYLOAD
    assert registry.dataset_status("fake", root=tmp_path).state == registry.VERIFIED
    assert _leftovers(tmp_path) == []
    routes.clear()  # already verified: a second fetch does not touch the network
    assert registry.fetch("fake", root=tmp_path, progress=False, timeout=5) == paths


def test_fetch_checksum_mismatch_keeps_previous_file(server, tmp_path, monkeypatch):
    base, routes = server
    routes["/d/data.bin"] = {"body": b"tampered" + PAYLOAD}
    expected = _sha(PAYLOAD)
    _fake(monkeypatch, [FileSpec("fake/data.bin", sha256=expected, url=base + "/d/data.bin")])
    with pytest.raises(ChecksumError) as ei:
        registry.fetch("fake", root=tmp_path, progress=False, timeout=5)
    msg = str(ei.value)
    assert "fake/data.bin" in msg and expected in msg and _sha(b"tampered" + PAYLOAD) in msg
    assert not (tmp_path / "fake" / "data.bin").exists()
    assert _leftovers(tmp_path) == []
    # a good file already there survives a forced fetch that fails
    (tmp_path / "fake" / "data.bin").write_bytes(PAYLOAD)
    with pytest.raises(ChecksumError):
        registry.fetch("fake", root=tmp_path, progress=False, timeout=5, force=True)
    assert (tmp_path / "fake" / "data.bin").read_bytes() == PAYLOAD
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "route",
    [
        {"body": b"<html><body>Sign in</body></html>", "ctype": "text/html; charset=utf-8"},
        {
            "body": b"\n  <!DOCTYPE html>\n<html>quota exceeded</html>",
            "ctype": "application/octet-stream",
        },
    ],
    ids=["content-type", "body"],
)
def test_fetch_detects_html_page(server, tmp_path, monkeypatch, route):
    base, routes = server
    routes["/d/data.bin"] = route
    _fake(monkeypatch, [FileSpec("fake/data.bin", url=base + "/d/data.bin")])  # no checksum
    with pytest.raises(DownloadError, match="HTML page") as ei:
        registry.fetch("fake", root=tmp_path, progress=False, timeout=5)
    assert str(tmp_path / "fake" / "data.bin") in str(ei.value)  # where to put it by hand
    assert not (tmp_path / "fake" / "data.bin").exists()
    assert _leftovers(tmp_path) == []


def test_fetch_interrupted_leaves_no_partial_file(server, tmp_path, monkeypatch):
    base, routes = server
    routes["/d/data.bin"] = {"body": PAYLOAD[:3000], "length": len(PAYLOAD)}
    _fake(monkeypatch, [FileSpec("fake/data.bin", sha256=_sha(PAYLOAD), url=base + "/d/data.bin")])
    with pytest.raises(DownloadError, match="interrupted") as ei:
        registry.fetch("fake", root=tmp_path, progress=False, timeout=5)
    assert f"of {len(PAYLOAD)}" in str(ei.value)
    assert not (tmp_path / "fake" / "data.bin").exists()
    assert _leftovers(tmp_path) == []


def test_fetch_offline_names_url_and_destination(tmp_path, monkeypatch):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/data.bin"
    _fake(monkeypatch, [FileSpec("fake/data.bin", url=url)])
    with pytest.raises(DownloadError) as ei:
        registry.fetch("fake", root=tmp_path, progress=False, timeout=5)
    msg = str(ei.value)
    assert url in msg and str(tmp_path / "fake" / "data.bin") in msg and "by hand" in msg
    assert ei.value.url == url


def test_fetch_http_error_then_mirror(server, tmp_path, monkeypatch):
    base, routes = server
    routes["/mirror/data.bin"] = {"body": PAYLOAD}
    spec = FileSpec("fake/data.bin", sha256=_sha(PAYLOAD), url=base + "/gone/data.bin")
    _fake(monkeypatch, [spec])
    with pytest.raises(DownloadError, match="HTTP 404"):
        registry.fetch("fake", root=tmp_path, progress=False, timeout=5)
    spec2 = FileSpec(
        spec.relpath, sha256=spec.sha256, url=spec.url, mirrors=(base + "/mirror/data.bin",)
    )
    _fake(monkeypatch, [spec2])
    assert (
        registry.fetch("fake", root=tmp_path, progress=False, timeout=5)[
            "fake/data.bin"
        ].read_bytes()
        == PAYLOAD
    )


# --------------------------------------------------------------------------- archives
def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _targz(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_fetch_downloads_verifies_and_unpacks_tar(server, tmp_path, monkeypatch):
    base, routes = server
    blob = _targz({"pack/train.bin": b"T" * 100, "pack/names.txt": b"a\nb\n"})
    routes["/pack.tar.gz"] = {"body": blob}
    arc = FileSpec(
        "fake/pack.tar.gz",
        md5=hashlib.md5(blob).hexdigest(),
        url=base + "/pack.tar.gz",
        extract_to="fake/pack",
        strip="pack",
    )
    _fake(
        monkeypatch,
        [
            FileSpec("fake/pack/train.bin", sha256=_sha(b"T" * 100), source=arc.relpath),
            FileSpec("fake/pack/names.txt", source=arc.relpath),
        ],
        [arc],
    )
    paths = registry.fetch("fake", root=tmp_path, progress=False, timeout=5)
    assert paths["fake/pack/names.txt"].read_bytes() == b"a\nb\n"
    assert (tmp_path / "fake/pack.tar.gz").is_file()  # the archive is kept
    st = registry.dataset_status("fake", root=tmp_path)
    assert st.state == registry.UNVERIFIED and st.present == 2  # names.txt has no checksum
    assert _leftovers(tmp_path) == []


def test_fetch_unpacks_hand_placed_archive_and_members(tmp_path, monkeypatch):
    inner = {
        "wider_face_split/a.txt": b"AAA",
        "wider_face_split/b.mat": b"BBB",
        "wider_face_split/c": b"x",
    }
    blob = _zip(inner)
    arc = FileSpec(
        "fake/split.zip",
        sha256=_sha(blob),
        members=(("wider_face_split/a.txt", "fake/a.txt"), ("other_top/b.mat", "fake/mat/b.mat")),
    )
    _fake(
        monkeypatch,
        [
            FileSpec("fake/a.txt", sha256=_sha(b"AAA"), source=arc.relpath),
            FileSpec("fake/mat/b.mat", sha256=_sha(b"BBB"), source=arc.relpath),
        ],
        [arc],
    )
    with pytest.raises(DataMissingError) as ei:  # no URL and nothing placed
        registry.fetch("fake", root=tmp_path, progress=False)
    assert str(tmp_path / "fake" / "split.zip") in str(ei.value)
    st = registry.dataset_status("fake", root=tmp_path)
    assert st.state == registry.MISSING and st.hint == ""
    (tmp_path / "fake").mkdir(exist_ok=True)
    (tmp_path / "fake/split.zip").write_bytes(blob)
    assert "fetch fake" in registry.dataset_status("fake", root=tmp_path).hint
    with pytest.raises(DataMissingError, match="not unpacked"):
        registry.locate("fake", root=tmp_path)
    paths = registry.fetch("fake", root=tmp_path, progress=False)
    assert paths["fake/mat/b.mat"].read_bytes() == b"BBB"  # found by base name
    assert registry.dataset_status("fake", root=tmp_path).state == registry.VERIFIED
    assert not (tmp_path / "fake/c").exists()


def test_unsafe_archive_is_refused_and_nothing_lands(tmp_path, monkeypatch):
    blob = _zip({"pack/ok.txt": b"ok", "../evil.txt": b"evil"})
    arc = FileSpec("fake/pack.zip", sha256=_sha(blob), extract_to="fake/pack", strip="pack")
    _fake(monkeypatch, [FileSpec("fake/pack/ok.txt", source=arc.relpath)], [arc])
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake/pack.zip").write_bytes(blob)
    with pytest.raises(ExtractError, match="unsafe"):
        registry.fetch("fake", root=tmp_path, progress=False)
    assert not (tmp_path / "fake/pack").exists()
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "fake/evil.txt").exists()
    assert _leftovers(tmp_path) == []


def test_extract_merges_into_existing_directory(tmp_path):
    blob = _zip({"WIDER_x/images/e1/a.jpg": b"a", "WIDER_x/images/e2/b.jpg": b"b"})
    (tmp_path / "w").mkdir()
    arc_path = tmp_path / "w/WIDER_x.zip"
    arc_path.write_bytes(blob)
    keep = tmp_path / "w/WIDER_x/notes.txt"
    keep.parent.mkdir()
    keep.write_text("mine")
    spec = FileSpec("w/WIDER_x.zip", extract_to="w/WIDER_x", strip="WIDER_x")
    assert registry.extract(arc_path, spec, root=tmp_path, progress=False) == [
        tmp_path / "w/WIDER_x"
    ]
    assert (tmp_path / "w/WIDER_x/images/e2/b.jpg").read_bytes() == b"b"
    assert keep.read_text() == "mine"
    assert _leftovers(tmp_path) == []
    with pytest.raises(ExtractError, match="zip or tar"):
        registry.extract(keep, spec, root=tmp_path, progress=False)


def test_fetch_downloads_what_it_can_then_names_hand_placed_files(server, tmp_path, monkeypatch):
    base, routes = server
    routes["/d/data.bin"] = {"body": PAYLOAD}
    files = [
        FileSpec("fake/data.bin", sha256=_sha(PAYLOAD), url=base + "/d/data.bin"),
        FileSpec("fake/derived.csv", sha256=_sha(b"a,b\n"), note="DERIVED"),
    ]
    _fake(monkeypatch, files)
    with pytest.raises(DataMissingError) as ei:
        registry.fetch("fake", root=tmp_path, progress=False, timeout=5)
    assert f"{tmp_path / 'fake' / 'derived.csv'}  (DERIVED)" in str(ei.value)
    assert (tmp_path / "fake/data.bin").read_bytes() == PAYLOAD  # the downloadable part is done
    (tmp_path / "fake/derived.csv").write_bytes(b"a,b\n")
    paths = registry.fetch("fake", root=tmp_path, progress=False, timeout=5, force=True)
    assert sorted(paths) == ["fake/data.bin", "fake/derived.csv"]
    assert registry.dataset_status("fake", root=tmp_path).state == registry.VERIFIED
