"""The tuning half and the test half of the WIDER val subset — fixed once, shipped.

The data bundle holds 374 of WIDER FACE's 3,226 val photos (the "WIDER val subset"). Every
choice the workbook makes on real photos (post-processing, thresholds, weight mixes, epochs,
GAN fusion, toolbox settings) is made on the **tuning** half; every headline number is
reported on the **test** half, with the tuning-half number beside it. A number measured on
the photos it was tuned on is optimistic; the split keeps the two apart.

The rule (:func:`assign_halves`), applied once to the bundle's manifest and shipped as
``tinylib/data/wider_val_split.csv`` (``image,event,half``; :data:`SPLIT_FILE`):

* stratified by event: within each event the photos are ordered by the SHA-256 of their file
  name (``"0--Parade/0_Parade_marchingband_1_410"``, no extension) and dealt alternately to
  test and tuning, so each event is split in half (an odd event gives its extra photo to the
  half that has fewer so far, test first);
* nothing about the photos' content, faces or any detector's result enters the rule.

``load_split()`` reads the shipped file (a malformed line raises naming file and line);
``halves(keys)`` splits any list of image keys; a test recomputes the rule from the file's
own keys and checks it equals what is shipped.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from ..io import atomic_write_text
from ..measured import image_list_hash  # noqa: F401  (re-exported: which photos)

SPLIT_FILE = Path(__file__).resolve().parent / "wider_val_split.csv"
HALVES = ("tuning", "test")
HEADER = "image,event,half"


def _key(image: str) -> str:
    """``"event/stem"`` from ``"event/stem.jpg"`` or ``"event/stem"``."""
    image = image.strip().replace("\\", "/")
    return image[:-4] if image.lower().endswith(".jpg") else image


def event_of(key: str) -> str:
    return _key(key).split("/", 1)[0]


def _rank(key: str) -> str:
    return hashlib.sha256(_key(key).encode("utf-8")).hexdigest()


def assign_halves(keys: Iterable[str]) -> dict[str, str]:
    """``{key: "tuning"|"test"}`` by the rule of the module docstring (input order ignored)."""
    by_event: dict[str, list[str]] = defaultdict(list)
    for k in {_key(k) for k in keys}:
        by_event[event_of(k)].append(k)
    out: dict[str, str] = {}
    counts = {"test": 0, "tuning": 0}
    for event in sorted(by_event):
        ordered = sorted(by_event[event], key=_rank)
        n = len(ordered)
        # an odd event's extra photo goes to the half with fewer so far (test on a tie)
        first = "test" if counts["test"] <= counts["tuning"] else "tuning"
        second = "tuning" if first == "test" else "test"
        for i, k in enumerate(ordered):
            out[k] = first if i % 2 == 0 else second
        counts[first] += (n + 1) // 2
        counts[second] += n // 2
    return out


def format_split(assignment: dict[str, str]) -> str:
    rows = [HEADER] + [f"{k},{event_of(k)},{h}" for k, h in sorted(assignment.items())]
    return "\n".join(rows) + "\n"


def write_split(keys: Iterable[str], path: str | os.PathLike = SPLIT_FILE) -> Path:
    """Apply the rule to ``keys`` and write the list (atomically)."""
    return atomic_write_text(path, format_split(assign_halves(keys)))


def load_split(path: str | os.PathLike = SPLIT_FILE) -> dict[str, str]:
    """The shipped split as ``{"event/stem": "tuning"|"test"}``."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != HEADER:
        raise ValueError(f"{path}, line 1: expected the header {HEADER!r}, "
                         f"got {lines[0] if lines else ''!r}")
    out: dict[str, str] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 3:
            raise ValueError(f"{path}, line {lineno}: expected 3 fields ({HEADER}), "
                             f"found {len(cells)}: {line!r}")
        key, event, half = cells
        if half not in HALVES:
            raise ValueError(f"{path}, line {lineno}: half {half!r}, expected one of "
                             f"{', '.join(HALVES)}")
        if event != event_of(key):
            raise ValueError(f"{path}, line {lineno}: event {event!r} does not match the image "
                             f"{key!r}")
        if key in out:
            raise ValueError(f"{path}, line {lineno}: image {key!r} listed twice")
        out[_key(key)] = half
    return out


def halves(keys: Iterable[str], split: dict[str, str] | None = None) -> dict[str, list[str]]:
    """``{"tuning": [...], "test": [...]}``: ``keys`` (order kept) by the shipped split.

    Raises ``KeyError`` naming the images the split does not list (a photo outside the WIDER
    val subset has no half: measure it as "unseen", not as either half)."""
    split = load_split() if split is None else split
    keys = list(keys)
    missing = [k for k in keys if _key(k) not in split]
    if missing:
        raise KeyError(f"{len(missing)} image(s) not in the WIDER val subset split "
                       f"{SPLIT_FILE.name}, e.g. {missing[0]!r}")
    return {h: [k for k in keys if split[_key(k)] == h] for h in HALVES}


def half_keys(half: str, keys: Iterable[str] | None = None) -> list[str]:
    """The keys of one half (``"tuning"``/``"test"``), of ``keys`` or of the whole split."""
    if half not in HALVES:
        raise ValueError(f"half {half!r}: expected one of {', '.join(HALVES)}")
    split = load_split()
    keys = sorted(split) if keys is None else keys
    return halves(keys, split)[half]
