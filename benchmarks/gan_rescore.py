"""Benchmark: the GAN re-scorer's throughput (generator x4 + refinement + discriminator) per
proposal crop, for the CPU recipe and for the paper's sizes (Table 1 + ResNet-50).

    python benchmarks/gan_rescore.py [--crops 600] [--threads 2]

Goal: the CPU recipe re-scores the ~150 proposals of one photo in under 1 s on 2 cores (the
paper crops 600 regions per photo on a GPU). The paper-size model is timed on a few crops only
and its per-photo time extrapolated.
"""

from __future__ import annotations

import argparse
import time

import torch

from tinylib.config import REPO_DIR
from tinylib.engine.recipe import load_config
from tinylib.gan.detector import GANDetector


def crops_per_second(model: GANDetector, n: int, batch: int = 256) -> float:
    x = torch.rand(n, 3, model.config["lr_size"], model.config["lr_size"]) * 255
    model.score_crops(x[:8])  # warm-up
    t = time.perf_counter()
    model.score_crops(x, batch_size=batch)
    return n / (time.perf_counter() - t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=int, default=600)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cpu = GANDetector({**load_config(REPO_DIR / "configs" / "gan_wider_cpu.yaml")["model"],
                       "discriminator": {"trunk": "mnet025", "pretrained": False}})
    paper = GANDetector({"discriminator": {"trunk": "resnet50", "pretrained": False}})
    for name, model, n in (("CPU recipe", cpu, args.crops), ("paper sizes", paper, 32)):
        r = crops_per_second(model, n)
        print(f"{name}: {r:,.0f} crops/s on {args.threads} threads -> 150 proposals in "
              f"{150 / r:.2f} s, 600 in {600 / r:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
