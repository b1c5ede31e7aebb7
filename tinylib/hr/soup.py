"""Weight averaging ("model soup") of HR detector checkpoints along one training run.

``python -m tinylib.hr.soup OUT IN1 IN2 [...] [--alpha A ...]`` writes the element-wise
weighted mean of the inputs' tensors (fp16, :func:`~tinylib.hr.detect.save_weights`).

Why it is here: the real-photo HR detector is trained in two stages (stage 1, the paper's
recipe; stage 2, a warm restart with the RPN best-window rule that teaches the tiny
templates more). Stage 2 gains hard AP and loses easy AP; the uniform average of the two
end points keeps most of both, at no training or inference cost. That is weight averaging
of models fine-tuned from one another (Izmailov et al. 2018, SWA; Wortsman et al. 2022,
"model soups"): it works because both points lie in one basin of the loss, so it is only
allowed here for checkpoints of one architecture and config. Batch-norm running statistics
are averaged like the weights; integer buffers (``num_batches_tracked``) come from the
first input.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tinylib.hr.detect import load_detector, save_weights
from tinylib.hr.model import HRDetector

log = logging.getLogger(__name__)


def average_weights(paths, alphas=None) -> HRDetector:
    """An :class:`~tinylib.hr.model.HRDetector` whose floating-point tensors are the
    ``alphas``-weighted mean of those of the checkpoints at ``paths`` (uniform when None;
    ``alphas`` are normalised to sum to 1). Every checkpoint must have the same model config
    (architecture, templates) -- a :class:`ValueError` names the first that differs."""
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise ValueError(f"average_weights needs at least two checkpoints, got {len(paths)}")
    if alphas is None:
        alphas = [1.0] * len(paths)
    alphas = [float(a) for a in alphas]
    if len(alphas) != len(paths):
        raise ValueError(f"{len(alphas)} alphas for {len(paths)} checkpoints")
    if any(a < 0 for a in alphas) or sum(alphas) <= 0:
        raise ValueError(f"alphas must be non-negative with a positive sum, got {alphas}")
    total = sum(alphas)
    models = [load_detector(p) for p in paths]
    first = models[0]
    for p, m in zip(paths[1:], models[1:]):
        if dict(m.config) != dict(first.config):
            diff = sorted(k for k in set(m.config) | set(first.config)
                          if m.config.get(k) != first.config.get(k))
            raise ValueError(f"{p}: model config differs from {paths[0]} in {diff}; "
                             "only checkpoints of one architecture can be averaged")
    states = [m.state_dict() for m in models]
    mean = {}
    for k, v in states[0].items():
        if v.is_floating_point():
            mean[k] = sum(s[k].float() * (a / total) for s, a in zip(states, alphas)).to(v.dtype)
        else:
            mean[k] = v.clone()
    first.load_state_dict(mean)
    return first.eval()


def write_history(inputs, out) -> Path | None:
    """Stack the per-epoch training histories of the averaged checkpoints (the CSV beside
    each, :func:`tinylib.engine.recipe.history_path`) into the one beside ``out``, with a
    ``stage`` column (1, 2, ... in input order); None when an input has no history."""
    import pandas as pd

    from tinylib.engine.recipe import history_path
    from tinylib.io import atomic_write_text

    paths = [history_path(p) for p in inputs]
    if not all(p.is_file() for p in paths):
        return None
    frames = [pd.read_csv(p).assign(stage=i + 1) for i, p in enumerate(paths)]
    target = history_path(out)
    atomic_write_text(target, pd.concat(frames, ignore_index=True).to_csv(index=False))
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tinylib.hr.soup",
                                description=__doc__.split("\n")[0])
    p.add_argument("out", help="where to write the averaged fp16 weights")
    p.add_argument("inputs", nargs="+", help="HR checkpoints (weights files or training checkpoints)")
    p.add_argument("--alpha", type=float, action="append", default=None,
                   help="weight of each input, in order (default: uniform)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        model = average_weights(args.inputs, args.alpha)
    except (FileNotFoundError, ValueError) as exc:
        print(f"tinylib.hr.soup: {exc}", file=sys.stderr)
        return 2
    alphas = args.alpha or [1.0] * len(args.inputs)
    save_weights(model, args.out, meta={"average_of": [str(x) for x in args.inputs],
                                        "alphas": [a / sum(alphas) for a in alphas]})
    write_history(args.inputs, args.out)
    log.info("wrote %s (mean of %d checkpoints)", args.out, len(args.inputs))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
