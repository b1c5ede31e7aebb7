from __future__ import annotations

import numpy as np
import pytest

from tinylib import io


def test_atomic_text_and_bytes(tmp_path):
    p = io.atomic_write_text(tmp_path / "sub" / "a.txt", "hello")
    assert p.read_text() == "hello"
    io.atomic_write_bytes(p, b"bye")
    assert p.read_bytes() == b"bye"
    assert [f.name for f in p.parent.iterdir()] == ["a.txt"]


def test_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "result.npz"
    io.atomic_save(p, lambda t: np.savez(t, x=np.arange(3)), suffix=".npz")
    before = p.read_bytes()

    def broken(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        io.atomic_save(p, broken)
    assert p.read_bytes() == before
    assert sorted(f.name for f in tmp_path.iterdir()) == ["result.npz"]
    with np.load(p) as z:
        assert z["x"].tolist() == [0, 1, 2]
