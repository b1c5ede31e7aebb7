"""The one weights schema (tinylib.engine.weights): round trips per family, fp16, every older
file still loading to the same tensors, the errors, atomic writes.

The Faster R-CNN run weights are looked for under ``$TINYLIB_RUNS/bh/*/weights.pt`` (default:
the repository's ``runs/``); without them those cases skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tinylib.engine import weights as W
from tinylib.frcnn import detect as frcnn_detect
from tinylib.frcnn.model import build_frcnn
from tinylib.gan import detector as gan_detector
from tinylib.hr import detect as hr_detect
from tinylib.hr.model import build_hr

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "tinylib" / "weights"
RUNS = Path(os.environ.get("TINYLIB_RUNS", REPO / "runs"))
FRCNN_RUNS = sorted((RUNS / "bh").glob("*/weights.pt"))

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest


def _tiny(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if family == "hr":
        model = build_hr([[16, 16, 1.0], [40, 40, 1.0]], backbone="mobilenet_v1_025", pretrained=False)
    elif family == "frcnn":
        model = build_frcnn("bh_resnet50", backbone_width=8, fpn_channels=8, representation_size=24,
                            rpn_pre_nms_test=50, rpn_post_nms_test=20)
    else:
        model = gan_detector.GANDetector({
            "lr_size": 8, "discriminator": {"trunk": "mnet025", "pretrained": False},
            "generator": {"width": 8, "up_width": 8, "blocks": 1, "refine_width": 8, "refine_up_width": 8}})
    with torch.no_grad():  # non-trivial buffers (BatchNorm statistics) round-trip too
        for buf in model.buffers():
            if buf.is_floating_point():
                buf.uniform_(0.5, 1.5)
    return model.eval()


WRAPPERS = {"hr": (hr_detect.save_weights, hr_detect.load_detector),
            "frcnn": (frcnn_detect.save_weights, frcnn_detect.load_detector),
            "gan": (gan_detector.save_weights, gan_detector.load_gan)}
FAMILIES = sorted(WRAPPERS)


@pytest.fixture(scope="module")
def models():
    return {f: _tiny(f) for f in FAMILIES}


def _assert_same_state(got: dict, want: dict):
    assert list(got) == list(want)
    for k, v in want.items():
        assert got[k].dtype == v.dtype and torch.equal(got[k], v), k


# ------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("half", [True, False], ids=["fp16", "fp32"])
@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_per_family(models, tmp_path, family, half):
    model = models[family]
    path = W.save(model, tmp_path / "w.pt", family=family, half=half, meta={"recipe": "r", "steps": 3})
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert sorted(raw) == ["config", "family", "format", "meta", "model"]
    assert raw["format"] == W.FORMAT and raw["family"] == family
    assert raw["meta"] == {"recipe": "r", "steps": 3, "precision": "float16" if half else "float32"}
    floats = {v.dtype for v in raw["model"].values() if v.is_floating_point()}
    assert floats == {torch.float16 if half else torch.float32}
    back = W.load(path)  # the family comes from the file
    assert type(back) is type(model) and not back.training
    assert back.config == model.config
    want = {k: (v.half().float() if half and v.is_floating_point() else v)
            for k, v in model.state_dict().items()}
    _assert_same_state(back.state_dict(), want)
    rec = W.read(path, family=family)
    assert (rec.family, rec.layout, rec.meta["steps"]) == (family, W.FORMAT, 3)


@pytest.mark.parametrize("family", FAMILIES)
def test_detector_wrappers_are_the_same_schema(models, tmp_path, family):
    save, load = WRAPPERS[family]
    model = models[family]
    a = save(model, tmp_path / "a.pt", meta={"note": "x"})  # fp16 by default, the GAN too
    b = W.save(model, tmp_path / "b.pt", family=family)
    ra, rb = W.read(a), W.read(b)
    assert (ra.family, ra.layout, ra.config) == (rb.family, rb.layout, rb.config)
    _assert_same_state(ra.state, rb.state)
    assert ra.meta == {"note": "x", "precision": "float16"}
    _assert_same_state(load(b).state_dict(), W.load(a).state_dict())
    full = save(model, tmp_path / "full.pt", half=False)
    _assert_same_state(load(full).state_dict(), model.state_dict())
    assert full.stat().st_size > 1.7 * a.stat().st_size  # fp16 halves the tensors


def test_training_checkpoint_family_from_its_model_config(models, tmp_path):
    """A tinylib.engine ``last.pt`` (model config under config['model']) loads with or
    without family=; the family comes from the registered ``recognise``."""
    for family in FAMILIES:
        model = models[family]
        ckpt = {"model": model.state_dict(), "optimizer": {}, "epoch": 0,
                "config": {"model": dict(model.config), "epochs": 1}}
        torch.save(ckpt, tmp_path / f"{family}.pt")
        assert W.read(tmp_path / f"{family}.pt").layout == "training checkpoint"
        _assert_same_state(W.load(tmp_path / f"{family}.pt").state_dict(), model.state_dict())
        _assert_same_state(WRAPPERS[family][1](tmp_path / f"{family}.pt").state_dict(), model.state_dict())
    with pytest.raises(ValueError, match=r"hr\.pt holds HR weights \(family 'hr'\), not GAN"):
        gan_detector.load_gan(tmp_path / "hr.pt")
    torch.save({"model": {}, "config": {"model": {"something": 1}}}, tmp_path / "odd.pt")
    with pytest.raises(ValueError, match="odd.pt: a training checkpoint whose family cannot be told.*family="):
        W.load(tmp_path / "odd.pt")


# ------------------------------------------------------------------------ older files
def _old_state(path: Path) -> tuple[str, dict]:
    """The old loaders' path, inline: torch.load, the old key names, floats to float32."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    family = {"tinylib.hr/1": "hr", "tinylib.frcnn/1": "frcnn"}.get(obj.get("format"), "gan")
    state = obj["model"] if family != "gan" else obj["state_dict"]
    return family, {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


LEGACY = [SHIPPED / "hr_mnet025_wider.pt", SHIPPED / "hr_res18_synth.pt", *FRCNN_RUNS]


def test_the_older_gan_layout_loads_unchanged(models, tmp_path):
    """The first shipped GAN file's layout, ``{config, state_dict, meta}`` (fp16, no format):
    re-made from a small model, since the shipped gan_wider.pt is now in the one schema."""
    model = models["gan"]
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    path = tmp_path / "old_gan.pt"
    torch.save({"config": dict(model.config), "state_dict": state, "meta": {}}, path)
    family, want = _old_state(path)
    assert family == "gan" and W.read(path).family == "gan" and W.read(path).layout != W.FORMAT
    for loaded in (W.load(path), gan_detector.load_gan(path)):
        _assert_same_state(loaded.state_dict(), want)


def test_the_shipped_gan_is_in_the_one_schema():
    rec = W.read(SHIPPED / "gan_wider.pt")
    assert rec.family == "gan" and rec.layout == W.FORMAT
    assert gan_detector.load_gan(SHIPPED / "gan_wider.pt").config["generator"]["skip"] is True


@pytest.mark.parametrize("path", LEGACY, ids=lambda p: "/".join(p.parts[-2:]))
def test_every_older_file_loads_unchanged(path):
    before = path.read_bytes()
    family, want = _old_state(path)
    rec = W.read(path)
    assert rec.family == family and rec.layout != W.FORMAT
    for model in (W.load(path), WRAPPERS[family][1](path)):
        assert not model.training
        _assert_same_state(model.state_dict(), want)
    assert path.read_bytes() == before  # read only, never rewritten


def test_the_frcnn_run_weights_are_looked_for():
    if not FRCNN_RUNS:
        pytest.skip(f"no Faster R-CNN run weights under {RUNS / 'bh'} (set TINYLIB_RUNS)")
    assert all(W.read(p).family == "frcnn" for p in FRCNN_RUNS[:1])


# ----------------------------------------------------------------------------- errors
def test_clear_errors_name_the_file(models, tmp_path):
    with pytest.raises(FileNotFoundError, match="GAN weights not found: .*none.pt"):
        gan_detector.load_gan(tmp_path / "none.pt")
    (tmp_path / "text.pt").write_text("these are not weights\n")
    with pytest.raises(ValueError, match=r"text.pt: not a PyTorch checkpoint \(a text file starting "
                                         r"'these are not weights'\); expected a PyTorch checkpoint"):
        W.load(tmp_path / "text.pt")
    good = W.save(models["gan"], tmp_path / "good.pt", family="gan")
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[:2000])
    with pytest.raises(ValueError, match="cut.pt: cannot read the checkpoint.*truncated or corrupt"):
        W.load(tmp_path / "cut.pt")
    with pytest.raises(ValueError, match="is a folder"):
        W.load(tmp_path)
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(W.WeightsError, match=r"other.pt: not a tinylib checkpoint .*\['something'\]"):
        W.load(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: not a tinylib GAN checkpoint"):
        gan_detector.load_gan(tmp_path / "other.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="list.pt: not a tinylib checkpoint .a list"):
        W.load(tmp_path / "list.pt")


def test_unknown_family_and_format(models, tmp_path):
    obj = {"format": W.FORMAT, "family": "yolo", "config": {}, "model": {}, "meta": {}}
    torch.save(obj, tmp_path / "yolo.pt")
    assert W.read(tmp_path / "yolo.pt").family == "yolo"  # readable, not loadable
    with pytest.raises(ValueError, match=r"unknown weights family 'yolo' \(registered: frcnn, gan, hr\)"):
        W.load(tmp_path / "yolo.pt")
    with pytest.raises(ValueError, match="unknown weights family 'yolo'"):
        W.save(models["gan"], tmp_path / "x.pt", family="yolo")
    assert not (tmp_path / "x.pt").exists()
    torch.save({**obj, "format": "tinylib-weights/9"}, tmp_path / "new.pt")
    with pytest.raises(ValueError, match="new.pt: unknown weights format 'tinylib-weights/9'"):
        W.load(tmp_path / "new.pt")


def test_family_mismatch(models, tmp_path):
    hr = hr_detect.save_weights(models["hr"], tmp_path / "hr.pt")
    with pytest.raises(ValueError, match=r"hr.pt holds HR weights \(family 'hr'\), not Faster R-CNN"):
        W.load(hr, family="frcnn")
    with pytest.raises(ValueError, match="holds HR weights"):
        gan_detector.load_gan(hr)
    with pytest.raises(ValueError, match=r"gan_wider.pt holds GAN weights \(family 'gan'\), not HR"):
        hr_detect.load_detector(SHIPPED / "gan_wider.pt")  # a legacy layout's family is known too


def test_a_config_or_state_that_does_not_fit_names_the_file(models, tmp_path):
    path = W.save(models["hr"], tmp_path / "w.pt", family="hr")
    obj = torch.load(path, weights_only=True)
    torch.save({**obj, "config": {"depth": 18}}, tmp_path / "noconf.pt")
    with pytest.raises(ValueError, match="noconf.pt: checkpoint config has no templates"):
        W.load(tmp_path / "noconf.pt")
    obj["model"].pop(next(iter(obj["model"])))
    torch.save(obj, tmp_path / "edited.pt")
    with pytest.raises(ValueError, match="edited.pt: the weights do not fit the model"):
        hr_detect.load_detector(tmp_path / "edited.pt")


def test_register_family_refuses_a_second_builder():
    fam = W.families()["gan"]
    assert W.register_family("gan", fam.build, recognise=fam.recognise, label=fam.label,
                             saver=fam.saver).build is fam.build  # a reload re-registers
    with pytest.raises(ValueError, match="'gan' is already registered by tinylib.gan.detector"):
        W.register_family("gan", lambda cfg: None)
    assert W.families()["gan"].build is fam.build


# ------------------------------------------------------------------------------ atomic
def test_a_failed_write_leaves_the_old_file_and_no_partial_one(models, tmp_path, monkeypatch):
    path = W.save(models["gan"], tmp_path / "w.pt", family="gan", meta={"n": 1})
    before = path.read_bytes()

    def broken(obj, f, *a, **k):
        Path(f).write_bytes(b"PK\x03\x04half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        W.save(models["gan"], path, family="gan", meta={"n": 2})
    with pytest.raises(OSError, match="disk full"):
        gan_detector.save_weights(models["gan"], tmp_path / "new.pt")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pt"]
    assert path.read_bytes() == before and W.read(path).meta["n"] == 1
