"""Shared test fixtures.

* Every test session writes its build outputs and caches to a temporary directory, never
  into the user's ``build/`` or ``~/.cache``.
* ``real_data`` gives the data root holding the real annotation files, or skips the test
  saying why (CI points ``TINYLIB_DATA`` at ``../shared/data``). The root is the library's
  own answer, :func:`tinylib.config.dataset_dir`.
* ``one_thread`` runs a test on one torch thread and restores the count afterwards (the
  command lines' ``--threads`` set it globally too); ``tiny_wider_world`` is a six-image
  synthetic world in the WIDER layout, built once per session, for training-run tests.
* ``toy_submission``: a two-image ground truth behind ``tinylib-eval`` and its predictions
  written to ``tmp_path/pred``, ``(gt, preds)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tinylib import config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _isolated_outputs(tmp_path_factory):
    base = tmp_path_factory.mktemp("tinylib")
    old = {k: os.environ.get(k) for k in ("TINYLIB_BUILD", "TINYLIB_CACHE")}
    os.environ["TINYLIB_BUILD"] = str(base / "build")
    # Keep a cache the CI run already set (warm synthetic worlds), else a private one.
    os.environ.setdefault("TINYLIB_CACHE", str(base / "cache"))
    yield base
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _real_root() -> Path | None:
    """The data root (``TINYLIB_DATA``, else the repository's ``data/``) if it holds the
    real WIDER FACE folder, else None."""
    if config.dataset_dir("widerface", must_exist=False).is_dir():
        return config.dataset_dir(must_exist=False)
    return None


@pytest.fixture
def real_data(monkeypatch) -> Path:
    """The real data root (TINYLIB_DATA), or skip with the reason."""
    root = _real_root()
    if root is None:
        pytest.skip(
            "real annotation files not found: set TINYLIB_DATA to the shared data directory "
            "(CI uses ../shared/data)"
        )
    monkeypatch.setenv("TINYLIB_DATA", str(root))
    return root


def real_file(relpath: str) -> Path:
    """Path of a real data file or skip (for use inside tests)."""
    root = _real_root()
    if root is None or not (root / relpath).exists():
        pytest.skip(f"{relpath} not under TINYLIB_DATA (set it to the shared data directory)")
    return root / relpath


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_wider_world() -> Path:
    from tinylib.data.synthetic import make_world

    return make_world(6, 0, image_size=(96, 80))


def toy_gt():
    from tinylib.eval import widerface as W

    return W.SimpleEvalGT(boxes={"0--E/a": np.array([[0, 0, 10, 10], [40, 40, 12, 12]]),
                                 "0--E/b": np.array([[5, 5, 20, 20]])})


@pytest.fixture
def toy_eval_gt():
    return toy_gt()


@pytest.fixture
def toy_submission(tmp_path, monkeypatch):
    from tinylib.eval import cli
    from tinylib.eval import widerface as W

    gt = toy_gt()
    monkeypatch.setattr(cli, "_load_gt", lambda _d: gt)
    preds = {"0--E/a": np.array([[0, 0, 10, 10, 0.9], [100, 100, 5, 5, 0.2]]),
             "0--E/b": np.array([[5, 5, 20, 20, 0.7]])}
    W.write_predictions(preds, tmp_path / "pred")
    return gt, preds

