"""Benchmark: HR detector inference speed (images/s at 1280x720) for ResNet-18/50/101,
beside MTCNN (facenet-pytorch) on the same images.

    python benchmarks/hr_infer.py                    # CPU, 3 images, pyramid up to 1x
    python benchmarks/hr_infer.py --upsample         # include the 2x level (as the paper)
    python benchmarks/hr_infer.py --device cuda --images 20 --depths 18 50 101

The paper reports 3.1 FPS at 720p for HR-ResNet101 on a Titan X GPU (Sec. 5). The networks
here are untrained (the network's speed does not depend on the weights; their face scores
are pushed down so that decoding and NMS see few candidates, as with a trained model); the
pyramid is the detector's own (octaves chosen from the template sizes). Images are synthetic scenes (tinylib.data.synthetic), so
the benchmark needs no data files; with ``TINYLIB_DATA`` set the paper's templates are
used, otherwise 25 templates of the same sizes are made up.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _templates():
    from tinylib.hr.templates import Templates, hr_template_set

    try:
        return hr_template_set()
    except (FileNotFoundError, OSError):
        h = np.geomspace(22, 228, 25)
        return Templates(np.stack([0.78 * h, h], 1), np.ones(25))


def _images(n: int, w: int = 1280, h: int = 720) -> list[np.ndarray]:
    from tinylib.data.synthetic import render_scene

    out = []
    for i in range(n):
        img = render_scene(np.random.default_rng(i), w, h)
        out.append(img[0] if isinstance(img, tuple) else img)
    return out


def _time(fn, images, warmup: int = 1) -> float:
    for im in images[:warmup]:
        fn(im)
    t0 = time.perf_counter()
    for im in images:
        fn(im)
    return len(images) / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=3)
    p.add_argument("--depths", type=int, nargs="+", default=[18, 50, 101])
    p.add_argument("--device", default="cpu")
    p.add_argument("--upsample", action="store_true", help="include the 2x level")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-mtcnn", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from tinylib.hr.detect import Detector
    from tinylib.hr.model import build_hr

    images = _images(args.images)
    tpl = _templates()
    print(f"{len(images)} images of 1280x720 on {args.device} "
          f"({torch.get_num_threads()} threads), 2x level {'on' if args.upsample else 'off'}")
    rows = []
    for depth in args.depths:
        torch.manual_seed(0)
        model = build_hr(tpl, depth, pretrained=False, use_res5=depth != 18)
        with torch.no_grad():  # untrained scores sit near 0.5 everywhere; push them down so
            # decoding + NMS handle a trained detector's few candidates, not every location
            model.score_res3.bias[: model.num_templates] -= 8.0
        det = Detector(model, device=args.device, upsample=args.upsample,
                       score_threshold=0.5, candidate_threshold=0.5, top_k=1000)
        scales = det.scales_for(720, 1280)
        with torch.inference_mode():
            ips = _time(det.detect, images)
        rows.append((f"HR-ResNet{depth}", ips))
        print(f"HR-ResNet{depth:<4d} {ips:7.3f} images/s  (levels {scales})", flush=True)
    if not args.no_mtcnn:
        from tinylib import peers

        reason = peers.available().get("mtcnn")
        if reason:
            print(f"MTCNN unavailable: {reason}")
        else:
            mt = peers.get("mtcnn")
            ips = _time(mt.detect, images)
            rows.append(("MTCNN", ips))
            print(f"MTCNN          {ips:7.3f} images/s  (min face 20 px)", flush=True)
    if len(rows) > 1 and rows[-1][0] == "MTCNN":
        for name, ips in rows[:-1]:
            print(f"{name}: {ips / rows[-1][1]:.2f}x the speed of MTCNN")
    print("paper: HR-ResNet101 3.1 images/s at 720p on a Titan X (GPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
