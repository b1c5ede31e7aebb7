from __future__ import annotations

import pytest

from tinylib.data import sources


def test_real_root_is_chosen_when_complete(monkeypatch, tmp_path):
    (tmp_path / "imagenet").mkdir()
    for rel in sources.IMAGENET_BOXES:
        (tmp_path / rel).write_text("x")
    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path))
    src = sources.choose(sources.IMAGENET_BOXES, what="ImageNet boxes", fallback=None)
    assert src.is_real and src.available and src.root == tmp_path.resolve()
    assert "real files" in str(src)


def test_missing_without_fallback_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path))
    src = sources.choose(sources.HR_TEMPLATES, what="HR templates", fallback=None)
    assert not src.available and src.kind == "missing"
    assert src.missing == sources.HR_TEMPLATES
    assert "RefBox_N25.mat" in str(src) and "skipping" in str(src)


def test_missing_data_root_does_not_crash(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path / "nowhere"))
    assert sources.choose(sources.PR_CURVES, fallback=None).kind == "missing"


def test_synthetic_fallback_has_the_wider_layout(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path))
    monkeypatch.setenv("TINYLIB_QUICK", "1")
    src = sources.choose(sources.WIDER_ANNOTATIONS + sources.WIDER_EVAL, what="WIDER FACE")
    assert src.kind == "synthetic" and "SYNTHETIC" in str(src)
    assert sources.missing_files(sources.WIDER_ANNOTATIONS + sources.WIDER_EVAL, src.root) == ()


def test_bad_fallback(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path))
    with pytest.raises(ValueError, match="fallback"):
        sources.choose(sources.SELFIE, fallback="zeros")
