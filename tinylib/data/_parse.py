"""Shared helpers for the annotation parsers: reading text files line by line, the
:class:`AnnotationError` they raise, and robust access to MATLAB cell arrays.

Every parser reports bad input as ``AnnotationError`` naming the file, the 1-based line
number, the offending text and what was expected.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.io

__all__ = [
    "AnnotationError",
    "read_text_lines",
    "mat_cells",
    "mat_string",
    "mat_array",
    "load_mat",
]


class AnnotationError(ValueError):
    """An annotation file is malformed. ``.path``, ``.line`` (1-based or None), ``.text``."""

    def __init__(self, path, line: int | None, text: str | None, expected: str):
        self.path = str(path)
        self.line = line
        self.text = text
        self.expected = expected
        where = self.path if line is None else f"{self.path}, line {line}"
        got = "" if text is None else f": got {text!r}"
        super().__init__(f"{where}: expected {expected}{got}")


def read_text_lines(path: str | os.PathLike) -> list[str]:
    """All lines of a text file with line endings removed (LF, CRLF or CR).

    Trailing whitespace is *not* stripped here (callers decide). A missing file raises
    ``FileNotFoundError`` naming it; undecodable bytes raise ``AnnotationError`` with the
    line number."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"annotation file not found: {path}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        bad = raw[max(0, exc.start - 20) : exc.start + 20]
        raise AnnotationError(path, line, bad.decode("utf-8", "replace"), "UTF-8 text") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    # splitlines() would also split on form feeds etc.; only LF / CRLF / CR are line ends.
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def parse_int_rows(path, rows: list[list[str]], line_numbers, ncols: int, what: str) -> np.ndarray:
    """Integer matrix ``(len(rows), ncols)`` from pre-split rows; errors name file and line."""
    if not rows:
        return np.zeros((0, ncols), dtype=np.int64)
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    bad = np.flatnonzero(lengths != ncols)
    if bad.size:
        i = int(bad[0])
        raise AnnotationError(path, int(line_numbers[i]), " ".join(rows[i]), what)
    flat = [tok for r in rows for tok in r]
    try:
        return np.array(flat, dtype=np.int64).reshape(-1, ncols)
    except (ValueError, OverflowError):
        for i, r in enumerate(rows):
            for tok in r:
                try:
                    int(tok)
                except ValueError:
                    raise AnnotationError(path, int(line_numbers[i]), " ".join(r), what) from None
        raise


def parse_float_rows(path, rows: list[list[str]], line_numbers, ncols, what: str) -> np.ndarray:
    """Float matrix from pre-split rows; ``ncols`` an int or a tuple of allowed counts (the
    result has ``min(ncols)`` columns)."""
    allowed = (ncols,) if isinstance(ncols, int) else tuple(ncols)
    keep = min(allowed)
    if not rows:
        return np.zeros((0, keep), dtype=np.float64)
    out = np.empty((len(rows), keep), dtype=np.float64)
    for i, r in enumerate(rows):
        if len(r) not in allowed:
            raise AnnotationError(path, int(line_numbers[i]), " ".join(r), what)
        try:
            out[i] = [float(t) for t in r[:keep]]
        except ValueError:
            raise AnnotationError(path, int(line_numbers[i]), " ".join(r), what) from None
        if not np.all(np.isfinite(out[i])):
            raise AnnotationError(path, int(line_numbers[i]), " ".join(r), what)
    return out


# --------------------------------------------------------------------------- MATLAB cells
def load_mat(path: str | os.PathLike) -> dict:
    """``scipy.io.loadmat`` with a clear error for missing or v7.3 (HDF5) files."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"MAT file not found: {path}")
    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError as exc:  # v7.3
        raise AnnotationError(path, None, str(exc), "a MATLAB v5 MAT file (not v7.3/HDF5)") from None
    except Exception as exc:  # scipy raises various errors on corrupt files
        raise AnnotationError(path, None, f"{type(exc).__name__}: {exc}", "a readable MAT file") from None


def mat_cells(value) -> list:
    """The elements of a MATLAB cell array (any shape, as loadmat or savemat leave it).

    A non-object (numeric or char) array is returned as a one-element list when it is a
    single value, else as the list of its elements."""
    arr = np.asarray(value)
    if arr.dtype == object:
        return list(arr.ravel(order="F"))
    if arr.dtype.kind in "US":
        return [str(s) for s in arr.ravel(order="F")]
    return [arr]


def mat_string(value) -> str:
    """A MATLAB char array / cell holding one string -> ``str`` (trailing pad spaces removed)."""
    if isinstance(value, (str, np.str_)):
        return str(value).rstrip()
    if isinstance(value, bytes):
        return value.decode("utf-8").rstrip()
    arr = np.asarray(value)
    if arr.dtype == object:
        if arr.size != 1:
            raise ValueError(f"expected a single string, got a cell array of shape {arr.shape}")
        return mat_string(arr.ravel()[0])
    if arr.dtype.kind in "US":
        if arr.size == 1:
            return str(arr.ravel()[0]).rstrip()
        # a char matrix of single characters
        return "".join(str(c) for c in arr.ravel()).rstrip()
    raise ValueError(f"expected a string, got an array of dtype {arr.dtype}")


def mat_array(value, dtype=np.float64) -> np.ndarray:
    """A numeric MATLAB array (possibly wrapped in a 1x1 cell) as a NumPy array."""
    arr = np.asarray(value)
    while arr.dtype == object and arr.size == 1:
        arr = np.asarray(arr.ravel()[0])
    if arr.dtype == object:
        if arr.size == 0:
            return np.zeros((0,), dtype=dtype)
        raise ValueError(f"expected a numeric array, got a cell array of shape {arr.shape}")
    return arr.astype(dtype, copy=False)
