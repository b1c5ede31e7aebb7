"""Benchmark: detector speed and peak memory on 1024-px photos, the HR detector's pyramid
keeping its 2x level, beside every peer, in the same run, as ratios.

    python benchmarks/hr_infer.py                     # shipped HR + every available peer
    python benchmarks/hr_infer.py --images 10 --threads 2
    python benchmarks/hr_infer.py --depths 18 50 101  # also untrained HR-ResNets (speed only)
    python benchmarks/hr_infer.py --device cuda

Images: real WIDER val photos of the data root when present (1024 px wide, about 700 tall,
evenly spread over the events), else synthetic 1024x683 scenes. Each detector runs in its
own child process, so its peak resident memory (``ru_maxrss``) is its own: the number
includes the Python interpreter and libraries (~0.3-0.5 GB), the same for every row.
The shipped HR detector (``tinylib/weights/hr_mnet025_wider.pt``) runs its own pyramid with
``max_side=2100``: 0.25x ... 1x and the 2x level (2048 px). ``--depths`` adds untrained
HR-ResNets of the same head (their speed does not depend on the weights; their scores are
pushed down so decoding and NMS see a trained detector's few candidates).
The paper reports 3.1 FPS at 720p for HR-ResNet101 on a Titan X GPU (Sec. 5).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch


def _images(n: int) -> tuple[list[np.ndarray], str]:
    # tinylib is imported inside the child process that runs one detector, only the parts
    # that detector needs, so each row's peak memory (ru_maxrss) is its own
    from tinylib.data import sources
    from tinylib.data.images import read_image

    src = sources.choose(("widerface/WIDER_val/images",) + sources.WIDER_EVAL,
                         what="WIDER val photos", fallback=None)
    if src.available:
        from tinylib.compare.wider_subset import subset_images
        from tinylib.data.widerface import load_eval_gt

        paths = subset_images(load_eval_gt(src.root), src.root, n=n)
        return [read_image(p) for p in paths.values()], f"{n} real WIDER val photos"
    from tinylib.data.synthetic import render_scene

    out = []
    for i in range(n):
        img = render_scene(np.random.default_rng(i), 1024, 683)
        out.append(img[0] if isinstance(img, tuple) else img)
    return out, f"{n} synthetic 1024x683 scenes"


def _detector(name: str, device: str):
    """``(detect(image) -> boxes, description)`` for ``hr``, ``hr_res<depth>`` or a peer."""
    # tinylib parts are imported here, in the child process running this detector (_images)
    if name == "hr":
        from tinylib.hr.detect import DEFAULT_WEIGHTS, Detector, load_detector

        det = Detector(load_detector(DEFAULT_WEIGHTS), device=device, max_side=2100)
        return det.detect, f"shipped {DEFAULT_WEIGHTS.name}", det
    if name.startswith("hr_res"):
        from tinylib.hr.detect import Detector
        from tinylib.hr.model import build_hr
        from tinylib.hr.templates import hr_template_set

        depth = int(name[len("hr_res"):])
        torch.manual_seed(0)
        model = build_hr(hr_template_set(), depth, pretrained=False, use_res5=depth != 18)
        with torch.no_grad():
            model.score_res3.bias[: model.num_templates] -= 8.0
        det = Detector(model, device=device, max_side=2100, candidate_threshold=0.5, top_k=1000)
        return det.detect, f"untrained HR-ResNet{depth}", det
    from tinylib import peers

    p = peers.get(name)
    return p.detect, "peer at 1x", None


def run_one(name: str, n: int, device: str, threads: int | None) -> dict:
    if threads:
        torch.set_num_threads(threads)
    images, what = _images(n)
    detect, desc, det = _detector(name, device)
    detect(images[0])  # warm-up
    with torch.inference_mode():
        t0 = time.perf_counter()
        for im in images:
            detect(im)
        ips = len(images) / (time.perf_counter() - t0)
    levels = det.scales_for(*images[0].shape[:2]) if det is not None else None
    return {"name": name, "desc": desc, "ips": ips, "levels": levels, "images": what,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--depths", type=int, nargs="*", default=[])
    p.add_argument("--peers", nargs="*", default=None, help="default: every available peer")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child process mode
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.images, args.device, args.threads)))
        return 0
    from tinylib import peers  # the parent imports only what lists the peers

    names = ["hr", *[f"hr_res{d}" for d in args.depths]]
    names += args.peers if args.peers is not None else [n for n, r in peers.available().items() if r is None]
    rows = []
    for name in names:
        cmd = [sys.executable, __file__, "--one", name, "--images", str(args.images), "--device", args.device]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print(f"{name}: failed\n{res.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(row)
        lv = f"  levels {row['levels']}" if row["levels"] else ""
        print(f"{name:12s} {row['ips']:7.3f} images/s  peak {row['peak_mb']:6.0f} MB  ({row['desc']}){lv}",
              flush=True)
    if rows and rows[0]["name"] == "hr":
        print(f"on {rows[0]['images']}, {args.device}, {torch.get_num_threads() if not args.threads else args.threads} threads;"
              " speed relative to the shipped HR detector (with its 2x level):")
        for row in rows[1:]:
            print(f"  {row['name']:12s} {row['ips'] / rows[0]['ips']:6.2f}x")
    print("paper: HR-ResNet101 3.1 images/s at 720p on a Titan X (GPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
