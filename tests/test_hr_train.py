"""The training recipe layer: configs, overrides, the paper's input sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tinylib.engine.recipe import apply_overrides, load_config
from tinylib.hr.train import PaperSampling, main, resolve_templates

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["hr_res18_synth_quick", "hr_res101_wider", "hr_mnet025_wider_cpu",
                                  "hr_res18_wider_cpu", "hr_mnet025_wider_cpu_stage2",
                                  "hr_mnet025_wider_noctx_cpu"])
def test_shipped_configs_parse(name):
    from tinylib.engine import TrainConfig

    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert cfg["name"] == name
    tc = TrainConfig.from_dict(cfg["train"])  # every train key is a known setting
    assert tc.momentum == 0.9 or tc.optimizer == "adamw"
    assert cfg["data"]["scales"] == [0.5, 1.0, 2.0]


def test_paper_recipe_values():
    cfg = load_config(REPO / "configs" / "hr_res101_wider.yaml")
    t = cfg["train"]
    assert (t["lr"], t["momentum"], t["weight_decay"], t["batch_size"], t["epochs"]) == (
        1e-4, 0.9, 5e-4, 20, 50)
    assert t["lr_mult"]["res3"] == 0.1 and t["lr_mult"]["res2"] == 0.01
    assert cfg["data"]["crop"] == 500 and cfg["model"]["depth"] == 101


def test_overrides_and_bad_configs(tmp_path):
    cfg = {"name": "x", "train": {"epochs": 3}}
    new = apply_overrides(cfg, ["train.epochs=1", "model.depth=50", "data.scales=[1, 2]"])
    assert new["train"]["epochs"] == 1 and new["model"]["depth"] == 50
    assert new["data"]["scales"] == [1, 2] and cfg["train"]["epochs"] == 3
    with pytest.raises(ValueError, match="section.key=value"):
        apply_overrides(cfg, ["epochs"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("trian: {epochs: 1}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown sections \['trian'\]"):
        load_config(bad)
    assert main([str(tmp_path / "missing.yaml")]) == 2
    t = resolve_templates([[10, 12, 1], [20, 24, 2]])
    assert t.a == [0] and t.b == [1]


def _scene():
    img = np.zeros((100, 160, 3), np.uint8)
    img[20:40, 30:46] = 255  # a 16x20 bright "face"
    return img, {"boxes": np.array([[30, 20, 46, 40]], np.float32),
                 "ignore": np.array([False]), "image_id": "e/x"}


@pytest.mark.parametrize("seed", range(6))
def test_paper_sampling_keeps_boxes_on_their_pixels(seed):
    tf = PaperSampling(scales=(0.5, 1.0, 2.0), crop=64, flip=True, min_visible=0.5)
    img, tgt = _scene()
    out, t = tf(img, tgt, np.random.default_rng(seed))
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    x1, y1, x2, y2 = t["valid"]
    assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 64
    # padding holds the RGB mean
    if y2 < 64:
        assert np.allclose(out[y2:, :, 0], 124)
    for bx1, by1, bx2, by2 in t["boxes"]:
        assert x1 - 1e-3 <= bx1 < bx2 <= x2 + 1e-3
        inner = out[int(np.ceil(by1)) + 1:int(by2) - 1, int(np.ceil(bx1)) + 1:int(bx2) - 1]
        if inner.size:
            assert inner.mean() > 200  # the box sits on the bright face
    again, t2 = tf(img, tgt, np.random.default_rng(seed))
    assert np.array_equal(again, out) and np.array_equal(t2["boxes"], t["boxes"])


def test_paper_sampling_small_image_is_padded_and_cut_faces_ignored():
    tf = PaperSampling(scales=(1.0,), crop=500, flip=False)
    img, tgt = _scene()
    out, t = tf(img, tgt, np.random.default_rng(0))
    x1, y1, x2, y2 = t["valid"]
    assert (x2 - x1, y2 - y1) == (160, 100)
    assert np.allclose(t["boxes"][0], [30 + x1, 20 + y1, 46 + x1, 40 + y1])
    tf2 = PaperSampling(scales=(1.0,), crop=36, flip=False)
    for s in range(20):  # whenever the crop cuts the face below half, it becomes ignore
        out, t = tf2(img, tgt, np.random.default_rng(s))
        if len(t["boxes"]):
            b = t["boxes"][0]
            frac = (b[2] - b[0]) * (b[3] - b[1]) / (16 * 20)
            assert t["ignore"][0] == (frac < 0.5)


class _InMemory:
    """Four tiny scenes, one of them without any face."""

    def __init__(self, transform):
        self.transform, self.epoch = transform, 0
        rng = np.random.default_rng(0)
        self.items = []
        for k in range(4):
            img = rng.integers(0, 80, (64, 64, 3), dtype=np.uint8)
            boxes = np.zeros((0, 4), np.float32)
            if k:
                img[12:52, 16:48] = 220
                boxes = np.array([[16, 12, 48, 52]], np.float32)
            self.items.append((img, {"boxes": boxes, "ignore": np.zeros(len(boxes), bool),
                                     "image_id": f"e/{k}"}))

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        img, t = self.items[i]
        return self.transform(img, t, np.random.default_rng([0, self.epoch, i]))


def test_hr_model_through_the_engine(tmp_path):
    import torch

    from tinylib import engine
    from tinylib.hr.model import build_hr, collate
    from tinylib.hr.templates import Templates

    torch.manual_seed(0)
    model = build_hr(Templates(np.array([[32.0, 40], [16, 20]]), np.array([1.0, 2.0])), 18,
                     pretrained=False, balance_classes=True)
    ds = _InMemory(PaperSampling(scales=(1.0,), crop=64))
    hist = engine.train(model, ds, collate_fn=collate, device="cpu", progress=False,
                        config={"epochs": 2, "batch_size": 2, "optimizer": "adamw", "lr": 1e-3,
                                "out_dir": str(tmp_path), "amp": "off"})
    assert len(hist) == 4 and np.isfinite(hist["loss"]).all()
    assert {"loss_cls", "loss_reg"} <= set(hist.columns)
    state = engine.load_checkpoint(tmp_path / "last.pt")
    assert state["config"]["model"]["depth"] == 18  # enough to rebuild it for inference
    from tinylib.hr.detect import load_detector

    assert load_detector(tmp_path / "last.pt").num_templates == 2


@pytest.mark.timeout(300)
def test_full_recipe_runs_one_step_on_wider_layout_data(tmp_path, monkeypatch):
    """The GPU recipe (ResNet-101, caffe-style, res5, SGD with per-layer lr, WIDER_train images
    under the data root) runs on CPU: one step on a WIDER-layout root (the synthetic world),
    with the templates clustered from its faces because RefBox_N25 is not there."""
    from tinylib.data.synthetic import quick_world
    from tinylib.hr.train import run

    monkeypatch.setenv("TINYLIB_QUICK", "1")
    monkeypatch.setenv("TINYLIB_DATA", str(quick_world()))
    cfg = load_config(REPO / "configs" / "hr_res101_wider.yaml")
    assert cfg["data"]["source"] == "wider"
    cfg = apply_overrides(cfg, ["train.epochs=1", "train.max_steps_per_epoch=1",
                                "train.batch_size=1", "train.num_workers=0", "data.crop=96",
                                "model.pretrained=false"])
    cfg.pop("eval", None)
    model, hist = run(cfg, out_dir=tmp_path, progress=False)
    assert len(hist) == 1 and np.isfinite(hist["loss"]).all()
    assert model.config["depth"] == 101 and (tmp_path / "last.pt").is_file()


@pytest.mark.realdata
@pytest.mark.timeout(600)
def test_real_photo_recipe_trains_and_resumes_on_cpu(tmp_path, real_data):
    """The shipped real-photo recipe (ImageNet MobileNet x0.25, real WIDER train photos) runs
    on CPU, checkpoints, resumes where it stopped and exports fp16 weights with their
    per-epoch history -- what tools/train_hr_wider.sh does in chunks."""
    import torch

    from tinylib.engine.recipe import history_path
    from tinylib.hr.detect import load_detector
    from tinylib.hr.train import run

    cfg = apply_overrides(load_config(REPO / "configs" / "hr_mnet025_wider_cpu.yaml"), [
        "train.epochs=1", "train.max_steps_per_epoch=2", "train.batch_size=2",
        "train.num_workers=0", "data.crop=160"])
    cfg.pop("eval")
    _, first = run(cfg, out_dir=tmp_path, progress=False)
    assert len(first) == 2 and torch.load(tmp_path / "last.pt", weights_only=False)["epoch"] == 0
    cfg = apply_overrides(cfg, ["train.epochs=2"])
    model, hist = run(cfg, out_dir=tmp_path, resume=True, progress=False,
                      export=tmp_path / "w.pt")
    assert hist["step"].tolist() == [1, 2, 3, 4] and hist["epoch"].tolist() == [1, 1, 2, 2]
    assert first["loss"].tolist() == pytest.approx(hist["loss"].tolist()[:2])
    back = load_detector(tmp_path / "w.pt")
    assert back.config["backbone"] == "mobilenet_v1_025" and (tmp_path / "w.pt").stat().st_size < 10e6
    assert len(pd.read_csv(history_path(tmp_path / "w.pt"))) == 2
