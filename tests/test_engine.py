"""The generic training loop: resume, non-finite loss, AMP on CPU, learning-rate groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from tinylib import engine


class ToyDataset(torch.utils.data.Dataset):
    """Random images whose 'augmentation' draws from the per-sample rng (seed, epoch, i)."""

    def __init__(self, n=12, seed=0):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        img = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        return img, {"y": np.float32(img.mean() / 255.0), "image_id": str(i)}


def toy_collate(batch):
    x = torch.stack([torch.from_numpy(im).permute(2, 0, 1).float() / 255 for im, _ in batch])
    return x, [{"y": torch.tensor(t["y"])} for _, t in batch]


class ToyModel(nn.Module):
    def __init__(self, nan_at_call=None):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(4, 1)
        self.nan_at_call = nan_at_call
        self.calls = 0
        self.seen_dtype = None
        self.config = {"kind": "toy"}

    def param_groups(self, lr_mult=None, weight_decay=0.0):
        mult = {"body": 0.1, "head": 1.0, **(lr_mult or {})}
        return [{"params": list(self.body.parameters()), "lr_mult": mult["body"]},
                {"params": list(self.head.parameters()), "lr_mult": mult["head"]}]

    def forward(self, images, targets):
        self.calls += 1
        f = self.body(images)
        self.seen_dtype = f.dtype
        pred = self.head(f.mean(dim=(2, 3))).squeeze(1)
        y = torch.stack([t["y"] for t in targets])
        noise = torch.rand(()) * 1e-3  # uses the torch RNG: must be reproducible on resume
        loss = ((pred.float() - y) ** 2).mean() + noise
        if self.nan_at_call is not None and self.calls >= self.nan_at_call:
            loss = loss * float("nan")
        return {"loss_mse": loss, "loss_zero": pred.float().sum() * 0}


def _cfg(tmp_path, **kw):
    base = dict(epochs=3, lr=0.05, batch_size=4, seed=3, out_dir=str(tmp_path), amp="off",
                warmup_steps=2, lr_milestones=[2])
    base.update(kw)
    return base


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_history_and_lr_groups(tmp_path):
    torch.manual_seed(0)
    model = ToyModel()
    hist = engine.train(model, ToyDataset(), collate_fn=toy_collate, config=_cfg(tmp_path),
                        device="cpu", progress=False)
    assert isinstance(hist, pd.DataFrame)
    assert list(hist.columns[:5]) == ["epoch", "step", "loss", "loss_mse", "loss_zero"]
    assert len(hist) == 9 and hist["epoch"].tolist() == [1] * 3 + [2] * 3 + [3] * 3
    # the lr each step used: warm-up (1/2, then 1), x0.1 from epoch index 2 (the 3rd epoch)
    assert np.allclose(hist["lr"], [0.025] + [0.05] * 5 + [0.005] * 3)
    opt = engine.make_optimizer(model, engine.TrainConfig(lr=1.0))
    assert [g["lr"] for g in opt.param_groups] == [0.1, 1.0]
    state = engine.load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 2 and state["step"] == 9
    assert set(state) >= {"model", "optimizer", "scheduler", "scaler", "epoch", "config"}
    assert state["config"]["model"] == {"kind": "toy"}
    assert state["config"]["train"]["lr"] == 0.05


def test_resume_gives_identical_next_steps(tmp_path):
    torch.manual_seed(0)
    full = ToyModel()
    init = {k: v.clone() for k, v in full.state_dict().items()}
    h_full = engine.train(full, ToyDataset(), collate_fn=toy_collate,
                          config=_cfg(tmp_path / "a"), device="cpu", progress=False)

    part = ToyModel()
    part.load_state_dict(init)
    engine.train(part, ToyDataset(), collate_fn=toy_collate,
                 config=_cfg(tmp_path / "b", epochs=1), device="cpu", progress=False)
    resumed = ToyModel()  # fresh weights: everything must come from the checkpoint
    h_res = engine.train(resumed, ToyDataset(), collate_fn=toy_collate,
                         config=_cfg(tmp_path / "b"), device="cpu", progress=False, resume=True)
    assert torch.equal(_params(full), _params(resumed))
    cols = ["epoch", "step", "loss", "lr"]
    pd.testing.assert_frame_equal(h_full[cols], h_res[cols])


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = ToyModel(nan_at_call=5)  # epoch 1 = calls 1..3 is fine, epoch 2 breaks
    with pytest.raises(engine.NonFiniteLossError, match=r"epoch 2, step 5.*last good checkpoint"):
        engine.train(model, ToyDataset(), collate_fn=toy_collate, config=_cfg(tmp_path),
                     device="cpu", progress=False)
    state = engine.load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_amp_bfloat16_on_cpu(tmp_path):
    torch.manual_seed(0)
    model = ToyModel()
    hist = engine.train(model, ToyDataset(), collate_fn=toy_collate,
                        config=_cfg(tmp_path, epochs=1, amp="bf16"), device="cpu",
                        progress=False)
    assert model.seen_dtype == torch.bfloat16
    assert np.isfinite(hist["loss"]).all()
    assert engine.resolve_amp("auto", torch.device("cpu")) is None
    with pytest.raises(ValueError, match="bf16"):
        engine.resolve_amp("fp16", torch.device("cpu"))


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="unknown training settings.*'lrr'"):
        engine.TrainConfig.from_dict({"lrr": 1})
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        engine.load_checkpoint("/nonexistent/last.pt")


def test_resume_follows_the_resumed_recipes_schedule(tmp_path, caplog):
    """A run resumed with earlier milestones follows them (the checkpoint's scheduler state
    carries the old schedule), and equals a run made with the new schedule from the start
    while the two schedules agree."""
    torch.manual_seed(0)
    model = ToyModel()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    new = dict(epochs=3, lr_milestones=[2])
    h_new = engine.train(model, ToyDataset(), collate_fn=toy_collate,
                         config=_cfg(tmp_path / "new", **new), device="cpu", progress=False)
    part = ToyModel()
    part.load_state_dict(init)
    engine.train(part, ToyDataset(), collate_fn=toy_collate,
                 config=_cfg(tmp_path / "old", epochs=1, lr_milestones=[5]), device="cpu",
                 progress=False)
    resumed = ToyModel()
    resumed.load_state_dict(init)
    with caplog.at_level("WARNING", logger="tinylib.engine"):
        h_res = engine.train(resumed, ToyDataset(), collate_fn=toy_collate,
                             config=_cfg(tmp_path / "old", **new), device="cpu", progress=False,
                             resume=True)
    assert "learning-rate schedule" in caplog.text
    assert h_res["lr"].tolist() == pytest.approx(h_new["lr"].tolist())
    assert torch.allclose(_params(resumed), _params(model), atol=1e-6)


def test_cosine_schedule_and_dataset_order():
    """``lr_schedule="cosine"`` decays each step from lr to 0 over all steps (after an
    optional warm-up); ``shuffle=False`` reads the samples in dataset order."""
    fn = engine.WarmupCosine(0, 10)
    assert fn(0) == 1.0 and fn(5) == pytest.approx(0.5) and fn(10) == pytest.approx(0.0) and fn(12) == 0.0
    assert engine.WarmupCosine(4, 10)(0) == pytest.approx(0.25 * fn(0))

    class Ordered(ToyDataset):
        seen: list = []

        def __getitem__(self, i):
            self.seen.append(i)
            return super().__getitem__(i)

    ds = Ordered(n=6)
    hist = engine.train(ToyModel(), ds, collate_fn=toy_collate, progress=False, device="cpu",
                        config={"epochs": 2, "batch_size": 2, "lr": 0.1, "optimizer": "adamw",
                                "lr_schedule": "cosine", "shuffle": False})
    assert ds.seen == [0, 1, 2, 3, 4, 5] * 2
    lrs = hist["lr"].tolist()
    assert lrs[0] == pytest.approx(0.1)  # the largest group rate (head, lr_mult 1) at step 0
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    with pytest.raises(ValueError, match="lr_schedule"):
        engine.train(ToyModel(), ds, collate_fn=toy_collate, progress=False, device="cpu",
                     config={"epochs": 1, "lr_schedule": "linear"})
