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


def test_wider_images_need_the_image_folders_too(monkeypatch, tmp_path):
    assert set(sources.WIDER_ANNOTATIONS) < set(sources.WIDER_IMAGES)
    assert {"widerface/WIDER_train/images", "widerface/WIDER_val/images"} < set(sources.WIDER_IMAGES)
    for rel in sources.WIDER_ANNOTATIONS:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path))
    src = sources.choose(sources.WIDER_IMAGES, fallback=None)
    assert src.kind == "missing" and src.missing == ("widerface/WIDER_train/images", "widerface/WIDER_val/images")
    for rel in src.missing:
        (tmp_path / rel).mkdir(parents=True)
    assert sources.choose(sources.WIDER_IMAGES, fallback=None).is_real


def test_the_real_wider_images_are_found(real_data):
    src = sources.choose(sources.WIDER_IMAGES, what="WIDER FACE images", fallback=None)
    if not src.is_real:
        pytest.skip(f"real WIDER images not under TINYLIB_DATA: {src}")
    assert src.root == real_data.resolve()


def test_choose_by_registry_name_checks_the_registry_files(monkeypatch, tmp_path):
    from tinylib.data import registry

    monkeypatch.setenv("TINYLIB_DATA", str(tmp_path))
    src = sources.choose("widerface_eval", fallback=None)
    assert src.kind == "missing" and src.missing == registry.files_of("widerface_eval")
    assert src.what == registry.get("widerface_eval").title
    for rel in registry.files_of("widerface_eval"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    assert sources.choose("widerface_eval", what="eval", fallback=None).is_real
    # several names, or names mixed with paths, ask for all of them
    both = sources.choose(("widerface_eval", "demo/selfie.jpg"), fallback=None)
    assert both.missing == ("demo/selfie.jpg",)
    assert sources.required_files(("widerface_eval", "widerface_eval")) == sources.WIDER_EVAL
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        sources.choose("nope", fallback=None)


def test_the_named_parts_are_files_the_registry_lists():
    from tinylib.data import registry

    parts = (sources.WIDER_ANNOTATIONS + sources.WIDER_IMAGES + sources.WIDER_EVAL
             + sources.IMAGENET_BOXES + sources.HR_TEMPLATES + sources.PR_CURVES
             + sources.SELFIE + sources.FDDB + sources.WIDER_SAMPLES[1:])
    assert all(registry.spec_for(rel) is not None for rel in parts)
    assert sources.WIDER_ANNOTATIONS == (
        "widerface/wider_face_train_bbx_gt.txt", "widerface/wider_face_val_bbx_gt.txt"
    )
    assert len(sources.FDDB) == 10 and len(sources.WIDER_EVAL) == 4
    assert sources.HR_TEMPLATES == ("tinyfaces_hr/RefBox_N25.mat", "tinyfaces_hr/RefBox_N25_scaled.mat")
