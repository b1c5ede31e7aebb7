"""CPU speed of Faster R-CNN-FPN per backbone at the CPU recipe's sizes (issue #11).

    .venv/bin/python benchmarks/frcnn_speed.py [--threads 2] [--size 480x640] [--reps 5]

Inference images/s on one 640x480 image (the recipe's test-time settings: FPN 64, box head 256,
1,000 proposals), and training steps/s (batch 4 crops of 256 px). Prints one row per backbone;
chapter 08 quotes these beside the parameters and FLOPs.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from tinylib.frcnn.detect import throughput
from tinylib.frcnn.train import build_model, load_config


def train_steps_per_s(model, reps: int, crop: int = 256, batch: int = 4) -> float:
    model.train()
    g = torch.Generator().manual_seed(0)
    imgs = [torch.rand(3, crop, crop, generator=g) for _ in range(batch)]
    tgt = [{"boxes": torch.tensor([[10.0, 10, 30, 34], [100, 60, 112, 75]]),
            "labels": torch.ones(2, dtype=torch.int64), "ignore_boxes": torch.zeros(0, 4)}] * batch
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    times = []
    for k in range(reps + 1):
        t0 = time.perf_counter()
        loss = sum(model(imgs, tgt).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if k:
            times.append(time.perf_counter() - t0)
    return 1.0 / float(pd.Series(times).median())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", default="480x640", help="HxW of the test image")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--backbones", default="resnet50,bh_resnet50")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.split("x"))
    rows = []
    for bb in args.backbones.split(","):
        torch.manual_seed(0)
        model = build_model(load_config(f"configs/frcnn_{bb}_wider_cpu.yaml")["model"])
        rows.append({"backbone": bb, "threads": args.threads, f"images_per_s_{h}x{w}":
                     round(throughput(model, (h, w), reps=args.reps), 3),
                     "train_steps_per_s": round(train_steps_per_s(model, args.reps), 3)})
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
