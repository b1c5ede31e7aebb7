"""Training runs are append-only (issue #23): a folder that holds a run is never reset by a
re-run; ``--resume`` needs a checkpoint; ``--overwrite`` moves the old run aside; an
incompatible checkpoint names the setting that differs; stale temporary checkpoint files are
cleaned. Through the shared recipe command line (``python -m tinylib.hr.train``) on a tiny
WIDER-layout world, and the engine underneath."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tinylib import engine
from tinylib.hr import train as hr_train

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "hr_res18_synth_quick.yaml")
TINY = ["--no-progress", "--threads", "1", "--set", "data.source=wider",
        "--set", "model.templates=[[16,20,1],[32,40,1]]", "--set", "model.backbone=mobilenet_v1_025",
        "--set", "train.epochs=1", "--set", "train.batch_size=2", "--set", "train.max_steps_per_epoch=2",
        "--set", "data.crop=64", "--set", "train.warmup_steps=0", "--set", "eval=null"]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: restores the thread count


@pytest.fixture(scope="module")
def world(tiny_wider_world):
    return tiny_wider_world


@pytest.fixture
def data(world, monkeypatch):
    monkeypatch.setenv("TINYLIB_DATA", str(world))
    return world


@pytest.fixture(scope="module")
def finished_run(world, tmp_path_factory):
    """A finished one-epoch run (last.pt, history.csv) to copy from."""
    out = tmp_path_factory.mktemp("runs") / "first"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYLIB_DATA", str(world))
        assert hr_train.main([CONFIG, "--out", str(out), *TINY]) == 0
    return out


def _copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_rerun_without_resume_is_refused_and_the_run_is_kept(data, finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path / "run")
    before = _snapshot(run)
    capsys.readouterr()
    assert hr_train.main([CONFIG, "--out", str(run), *TINY]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "--overwrite" in err and str(run) in err
    assert "Traceback" not in err
    assert _snapshot(run) == before  # last.pt and history.csv untouched
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 0


def test_resume_without_a_checkpoint_is_an_error(data, tmp_path, capsys):
    missing = tmp_path / "typo"
    assert hr_train.main([CONFIG, "--out", str(missing), "--resume", *TINY]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint" in err and str(missing / "last.pt") in err and "does not exist" in err
    assert not missing.exists()  # nothing was trained from scratch there
    half = tmp_path / "half"
    half.mkdir()
    (half / "history.csv").write_text("epoch,step,loss\n")
    assert hr_train.main([CONFIG, "--out", str(half), "--resume", *TINY]) == 2
    assert "holds ['history.csv'] but no last.pt" in capsys.readouterr().err
    assert sorted(p.name for p in half.iterdir()) == ["history.csv"]


def test_resume_and_overwrite_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        hr_train.main([CONFIG, "--out", str(tmp_path), "--resume", "--overwrite"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_overwrite_moves_the_old_run_aside(data, finished_run, tmp_path, capsys):
    run = _copy_run(finished_run, tmp_path / "run")
    before = _snapshot(run)
    (run / "notes.txt").write_text("mine")  # not a run file: stays where it is
    assert hr_train.main([CONFIG, "--out", str(run), "--overwrite", *TINY]) == 0
    (aside,) = sorted(run.glob("replaced-*"))
    assert _snapshot(aside) == before  # the whole old run, byte for byte
    assert (run / "last.pt").is_file() and (run / "history.csv").is_file()
    assert (run / "notes.txt").read_text() == "mine"
    capsys.readouterr()
    with pytest.raises(SystemExit):
        hr_train.main(["--help"])
    assert "moved to <out>/replaced-<time>/" in " ".join(capsys.readouterr().out.split())


def test_incompatible_checkpoint_names_the_differing_setting(data, tmp_path, capsys):
    run = tmp_path / "run"  # a one-step ResNet-18 run, resumed as a ResNet-34 one
    resnet = [*TINY, "--set", "model.backbone=resnet", "--set", "train.max_steps_per_epoch=1",
              "--set", "train.batch_size=1"]
    assert hr_train.main([CONFIG, "--out", str(run), *resnet]) == 0
    before = _snapshot(run)
    capsys.readouterr()
    rc = hr_train.main([CONFIG, "--out", str(run), "--resume", *resnet, "--set", "model.depth=34",
                        "--set", "train.epochs=2"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "does not fit this model" in err and "model.depth: 18 (checkpoint) -> 34 (now)" in err
    assert "Traceback" not in err and "--overwrite" in err
    assert _snapshot(run) == before


def test_stale_temporary_checkpoints_are_cleaned(data, finished_run, tmp_path):
    run = _copy_run(finished_run, tmp_path / "run")
    stale = run / ".last.pt.k3j9x1.tmp"  # what a killed atomic write leaves (tinylib.io)
    stale.write_bytes(b"\0" * 1000)
    assert hr_train.main([CONFIG, "--out", str(run), "--resume", *TINY]) == 0
    assert not stale.exists()
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 0  # finished: no steps
    fresh = tmp_path / "fresh"  # a run killed before its first checkpoint starts anew
    fresh.mkdir()
    (fresh / ".last.pt.a1b2c3.tmp").write_bytes(b"\0")
    assert hr_train.main([CONFIG, "--out", str(fresh), *TINY]) == 0
    assert sorted(p.name for p in fresh.iterdir()) == ["history.csv", "last.pt"]


def test_the_schedulers_resume_rule_fits(data, finished_run, tmp_path):
    """tools/_schedule.py appends --resume only when last.pt exists: an unfinished run (no
    weights yet) resumes and finishes; a folder without last.pt starts without it."""
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import _schedule
    finally:
        sys.path.remove(str(REPO / "tools"))
    run = _copy_run(finished_run, tmp_path / "run")
    cmd = [sys.executable, "-m", "tinylib.hr.train", CONFIG, "--out", str(run), *TINY,
           "--export", str(run / "weights.pt")]
    failed = _schedule.run_tasks([{"name": "hr", "cmd": cmd, "done": run / "weights.pt",
                                   "after": [], "resume": run / "last.pt"}], tmp_path / "logs")
    assert failed == [], (tmp_path / "logs" / "hr.log").read_text()
    assert (run / "weights.pt").is_file()


# ------------------------------------------------------------------------ the engine itself


class _Tiny(nn.Module):
    def __init__(self, width=2):
        super().__init__()
        self.lin = nn.Linear(3, width)
        self.config = {"width": width}

    def forward(self, x, targets):
        return {"loss_sq": (self.lin(x) ** 2).mean()}


def _data():
    return [np.float32([i, 1, 2]) for i in range(4)]


def _collate(batch):
    return torch.from_numpy(np.stack(batch)), None


def test_engine_refuses_an_existing_run_and_a_missing_checkpoint(tmp_path):
    cfg = {"epochs": 1, "batch_size": 2, "out_dir": str(tmp_path / "r"), "amp": "off"}
    engine.train(_Tiny(), _data(), collate_fn=_collate, config=cfg, device="cpu", progress=False)
    ckpt = (tmp_path / "r" / "last.pt").read_bytes()
    with pytest.raises(engine.RunExistsError, match=r"--resume.*--overwrite"):
        engine.train(_Tiny(), _data(), collate_fn=_collate, config=cfg, device="cpu", progress=False)
    assert (tmp_path / "r" / "last.pt").read_bytes() == ckpt
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        engine.train(_Tiny(), _data(), collate_fn=_collate, device="cpu", progress=False,
                     config={**cfg, "out_dir": str(tmp_path / "none")}, resume=True)
    with pytest.raises(engine.IncompatibleCheckpointError, match=r"model.width: 2 \(checkpoint\) -> 5"):
        engine.train(_Tiny(5), _data(), collate_fn=_collate, config={**cfg, "epochs": 2},
                     device="cpu", progress=False, resume=True)
    hist = engine.train(_Tiny(), _data(), collate_fn=_collate, config=cfg, device="cpu",
                        progress=False, overwrite=True)
    assert len(hist) == 2 and len(list((tmp_path / "r").glob("replaced-*/last.pt"))) == 1
