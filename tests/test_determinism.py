"""Training is deterministic on CPU for a given seed (issue #23): two fresh runs of one recipe
give the same loss curve whatever the caller's random state (also in another process), and a
run interrupted after its first epoch and resumed gives the curve of an uninterrupted one.

The cause of the old difference at step 1: the HR recipe built its model (the initial
weights) from torch's global generator, which each process seeds at random and the caller
advances; the engine only seeds each epoch's data, targets and sampling."""

from __future__ import annotations

import functools
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tinylib import engine
from tinylib.engine.recipe import apply_overrides, load_config
from tinylib.hr import train as hr_train

REPO = Path(__file__).resolve().parents[1]
OVERRIDES = ["data.source=wider", "model.templates=[[16,20,1],[32,40,1]]", "train.epochs=2",
             "train.batch_size=2", "train.max_steps_per_epoch=2", "data.crop=64",
             "train.warmup_steps=0", "train.lr=0.003", "model.backbone=mobilenet_v1_025"]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: restores the thread count


@pytest.fixture(scope="module")
def world(tiny_wider_world):
    return tiny_wider_world


@pytest.fixture
def recipe(world, monkeypatch):
    monkeypatch.setenv("TINYLIB_DATA", str(world))
    cfg = apply_overrides(load_config(REPO / "configs" / "hr_res18_synth_quick.yaml"), OVERRIDES)
    cfg.pop("eval")
    return cfg


def _disturb_global_rng(seed):
    """What a caller (a notebook, an earlier test) may have done to the global generators."""
    torch.manual_seed(seed)
    torch.rand(seed + 1)
    np.random.seed(seed)  # noqa: NPY002
    random.seed(seed)


def _params(model):
    return torch.cat([p.detach().flatten().float() for p in model.state_dict().values()])


def test_two_fresh_runs_of_one_seed_agree(recipe, world, tmp_path):
    _disturb_global_rng(1)
    m1, h1 = hr_train.run(recipe, out_dir=tmp_path / "a", progress=False)
    _disturb_global_rng(2)
    m2, h2 = hr_train.run(recipe, out_dir=tmp_path / "b", progress=False)
    assert len(h1) == 4
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-5, atol=1e-7)
    assert torch.allclose(_params(m1), _params(m2), rtol=1e-5, atol=1e-7)
    # a fresh process (its own random seed for torch's generator) gives the same first steps
    code = ("import json, sys, torch; from tinylib.hr import train as t; torch.set_num_threads(1); "
            "cfg = json.loads(sys.argv[1]); "
            "cfg['train']['epochs'] = 1; _, h = t.run(cfg, progress=False); "
            "print(json.dumps(h['loss'].tolist()))")
    env = {**os.environ, "TINYLIB_DATA": str(world)}
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(recipe)], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    other = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(other, h1["loss"][:2], rtol=1e-4, atol=1e-6)


class _Killed(Exception):
    pass


def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(recipe, tmp_path, monkeypatch):
    _disturb_global_rng(3)
    full_model, full = hr_train.run(recipe, out_dir=tmp_path / "full", progress=False)

    def kill_in_epoch_2(row):
        if row["epoch"] == 2:  # after the first step of epoch 2: its checkpoint never comes
            raise _Killed

    _disturb_global_rng(4)
    original = engine.train
    monkeypatch.setattr(engine, "train", functools.partial(original, on_step=kill_in_epoch_2))
    with pytest.raises(_Killed):
        hr_train.run(recipe, out_dir=tmp_path / "cut", progress=False)
    monkeypatch.setattr(engine, "train", original)
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["epoch"] == 0
    _disturb_global_rng(5)
    res_model, resumed = hr_train.run(recipe, out_dir=tmp_path / "cut", resume=True, progress=False)
    assert resumed["step"].tolist() == full["step"].tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(resumed["loss"], full["loss"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(resumed["lr"], full["lr"])
    assert torch.allclose(_params(res_model), _params(full_model), rtol=1e-5, atol=1e-7)
