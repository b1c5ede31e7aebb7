"""A 2-process DDP (gloo, localhost, CPU) run of the training loop, bounded in time."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join(rank: int, world: int, port: int) -> None:
    """torchrun's environment for one of ``world`` local processes, one thread each."""
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world)})
    torch.set_num_threads(1)


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    _join(rank, world, port)
    import torch.distributed as dist
    from test_engine import ToyDataset, ToyModel, toy_collate

    from tinylib import engine

    torch.manual_seed(0)  # same initial weights on both ranks (DDP also broadcasts them)
    model = ToyModel()
    try:
        hist = engine.train(model, ToyDataset(n=16), collate_fn=toy_collate,
                            config={"epochs": 2, "lr": 0.05, "batch_size": 2, "seed": 1,
                                    "out_dir": out_dir, "amp": "off"},
                            device="cpu", progress=False)
        torch.save({"params": torch.cat([p.detach().flatten() for p in model.parameters()]),
                    "steps": len(hist), "loss": hist["loss"].tolist()},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_two_process_gloo_ddp(tmp_path):
    world = 2
    mp.start_processes(_worker, args=(world, _free_port(), str(tmp_path)), nprocs=world,
                       join=True, start_method="spawn")
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    # 16 samples / 2 ranks / batch 2 = 4 steps per epoch, 2 epochs
    assert r0["steps"] == r1["steps"] == 8
    assert torch.equal(r0["params"], r1["params"])  # gradients were all-reduced
    assert r0["loss"] == r1["loss"]  # logged losses are averaged across processes
    # the main process alone wrote the checkpoint, atomically (no temporary left over)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["last.pt", "rank0.pt", "rank1.pt"]
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and state["step"] == 8


def _gan_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    """The GAN's two phases (two optimisers) under DDP: find_unused_parameters is set by the
    engine because the "d" phase leaves the generator out of its graph."""
    _join(rank, world, port)
    import torch.distributed as dist
    from test_gan import TINY, crop_set

    from tinylib import engine
    from tinylib.gan.detector import CropDataset, GANDetector, collate

    torch.manual_seed(0)
    model = GANDetector(TINY)
    try:
        hist = engine.train(model, CropDataset(crop_set(8)), collate_fn=collate,
                            config={"epochs": 1, "lr": 1e-3, "optimizer": "adamw", "batch_size": 2,
                                    "seed": 1, "out_dir": out_dir, "amp": "off"},
                            device="cpu", progress=False)
        torch.save({"params": torch.cat([p.detach().flatten() for p in model.parameters()]),
                    "steps": len(hist), "cols": sorted(hist.columns)},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_two_process_ddp_with_two_optimisers(tmp_path):
    mp.start_processes(_gan_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True,
                       start_method="spawn")
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["steps"] == r1["steps"] == 2  # 8 crops / 2 ranks / batch 2
    assert torch.equal(r0["params"], r1["params"])
    assert "loss_d" in r0["cols"] and "loss_g" in r0["cols"]
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["phases"] == ["d", "g"] and set(state["optimizer"]) == {"d", "g"}
