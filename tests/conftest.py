"""Shared test fixtures.

* Every test session writes its build outputs and caches to a temporary directory, never
  into the user's ``build/`` or ``~/.cache``.
* ``real_data`` gives the data root holding the real annotation files, or skips the test
  saying why (CI points ``TINYLIB_DATA`` at ``../shared/data``). The root is the library's
  own answer, :func:`tinylib.config.dataset_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
