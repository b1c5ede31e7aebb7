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


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world)})
    torch.set_num_threads(1)
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
