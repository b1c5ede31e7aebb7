"""The workbook's scorecard: every reproduced claim, "paper says / we get", in one table.

The papers' numbers live in one table, :mod:`tinylib.papers`, keyed like the scorecard rows.
A notebook records its number under that key and says which data it came from::

    from tinylib import scorecard
    src = sources.choose(sources.WIDER_ANNOTATIONS, what="WIDER FACE annotations")
    scorecard.record("scales.wider.abs_size_mean", 32.79, source=src)

``record`` takes the paper's value, tolerance, claim text and unit from the table (any of
them given explicitly wins; ``paper=`` may also be another key's
:class:`~tinylib.papers.PaperClaim`), and decides comparability from ``source``: a
:class:`tinylib.data.sources.Source` (or anything with a ``kind``, e.g. a
``studies.StudyData``), the kind itself (``"real"``, ``"synthetic"``, ``"missing"``), a
sequence of them (real only if all are), or None (default: the number needs no data, e.g.
FLOPs). On synthetic or missing data the row is *not comparable* whatever the tolerance, and
its note says why. The old explicit form still works::

    scorecard.record("rf.resnet50_caffe.res3", claim="receptive field of res3 (px)",
                     paper=99, ours=rf, unit="px", tolerance=0)

Each call writes (atomically) into ``build/scorecard/<notebook>.json`` — the notebook name
comes from ``TINYLIB_NOTEBOOK``, which ``make run`` and the notebook tests set, else
``interactive`` — and returns a :class:`Claim` that renders as a one-row table in Jupyter.
Re-running a cell replaces the claim with the same key. ``collect()`` (run by ``make run``)
merges all parts into ``build/scorecard.json`` and ``build/scorecard.md``.

Claims about long runs come from shipped tables. Keys matching :data:`MEASURED_CLAIMS`
(the HR detector and its peers on the WIDER val subset, GAN, toolbox, bottom-heavy
detection, the Section 3 studies) are numbers about runs far longer than any notebook makes:
``record`` refuses them unless they come with ``table=`` (a
:class:`tinylib.measured.Table`, whose provenance goes into the note) or are a live run's
sample, ``sample=N`` — then the key gets ``.sample`` appended, the row is "not comparable"
and its note says it is a sample of N images at this tier, never the claim::

    t = measured.read_table("wider_subset_detectors")
    scorecard.record("hr.wider_subset.hard", 0.53, table=t, note="test half")
    scorecard.record("hr.wider_subset.hard", 0.80, sample=8, source=src)  # -> ...hard.sample

Status rule: ``reproduced`` when both numbers are finite and ``|ours - paper| <= tolerance``
(absolute) or ``<= rel_tolerance * |paper|``; ``differs`` otherwise; ``not comparable`` when
either side is missing or not a number, when no tolerance is given, or when the data source
is not real.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
from dataclasses import asdict, dataclass
from numbers import Real
from pathlib import Path

from .config import build_dir
from .io import atomic_write_text as _atomic_write_text
from .papers import PaperClaim
from .papers import find as _find_claim

STATUSES = ("reproduced", "differs", "not comparable")
SAMPLE_SUFFIX = ".sample"
#: claims about long runs: recorded only from a shipped table (``table=``) or as a sample
MEASURED_CLAIMS = (
    "hr.wider_subset.*", "eval.peers.*.wider_subset.*", "gan.wider_subset.*", "gan.sr.*",
    "gan.ablation.*", "toolbox.*", "bh.det.*", "bh.pretrain.*", "bh.tinyperson.*", "study.*",
)


def is_measured_claim(key: str) -> bool:
    """True for a key that only a shipped table may carry (see :data:`MEASURED_CLAIMS`)."""
    return not key.endswith(SAMPLE_SUFFIX) and any(
        fnmatch.fnmatchcase(key, pat) for pat in MEASURED_CLAIMS)
FIELDS = ("notebook", "key", "claim", "paper", "ours", "unit", "status", "note", "source_kind")


@dataclass
class Claim:
    notebook: str
    key: str
    claim: str
    paper: object
    ours: object
    unit: str
    status: str
    note: str
    tolerance: float | None = None
    rel_tolerance: float | None = None
    source_kind: str | None = None  # "real" / "synthetic" / "missing"; None: needs no data

    def as_row(self) -> dict:
        return {k: getattr(self, k) for k in FIELDS}

    def _repr_markdown_(self) -> str:
        return _markdown_table([self.as_row()], with_notebook=False)

    def __str__(self) -> str:
        return (
            f"{self.key}: paper {_fmt(self.paper)} / ours {_fmt(self.ours)} {self.unit} "
            f"-> {self.status}"
        )


def _number(value) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Real):
        return float(value)
    try:  # numpy / torch scalars
        return float(value.item())
    except (AttributeError, TypeError, ValueError):
        return None


def _plain(value):
    """JSON-friendly version of a value (numpy/torch scalars become Python numbers)."""
    num = _number(value)
    if num is not None:
        if isinstance(value, Real) and not isinstance(value, float) and float(num).is_integer():
            return int(num)
        return num if math.isfinite(num) else None
    if value is None or isinstance(value, (str, bool)):
        return value
    return str(value)


def decide_status(paper, ours, tolerance=None, rel_tolerance=None) -> str:
    p, o = _number(paper), _number(ours)
    if p is None or o is None or not math.isfinite(p) or not math.isfinite(o):
        return "not comparable"
    if tolerance is None and rel_tolerance is None:
        return "not comparable"
    allowed = 0.0
    if tolerance is not None:
        allowed = max(allowed, float(tolerance))
    if rel_tolerance is not None:
        allowed = max(allowed, float(rel_tolerance) * abs(p))
    return "reproduced" if abs(o - p) <= allowed + 1e-12 else "differs"


def current_notebook() -> str:
    return os.environ.get("TINYLIB_NOTEBOOK", "interactive")


def parts_dir() -> Path:
    return build_dir("scorecard")


def _load_part(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a valid scorecard part ({exc})") from exc
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of claims")
    return data


class _FromTable:
    """Default of :func:`record` arguments: take the value from :mod:`tinylib.papers`."""

    def __repr__(self) -> str:
        return "<from tinylib.papers>"


FROM_TABLE = _FromTable()
KINDS = ("real", "synthetic", "missing")


def _kind_of(item) -> str:
    kind = item if isinstance(item, str) else getattr(item, "kind", None)
    if kind is None and hasattr(item, "is_real"):
        kind = "real" if item.is_real else "synthetic"
    if kind not in KINDS:
        raise ValueError(f"source must be a data source or one of {KINDS}, got {item!r}")
    return kind


def _what(item) -> str:
    what = getattr(item, "what", None) or getattr(getattr(item, "source", None), "what", None)
    return what or "data"


def source_kind(source) -> str | None:
    """``"real"``, ``"synthetic"`` or ``"missing"`` for ``source`` (see :func:`record`); a
    sequence is as weak as its weakest member; None for None (no data involved)."""
    if source is None:
        return None
    items = list(source) if isinstance(source, (list, tuple)) else [source]
    kinds = {_kind_of(item) for item in items}
    return next(k for k in ("missing", "synthetic", "real") if k in kinds)


def source_note(source) -> str:
    """Why a row on ``source`` is not comparable ("" when the source is real or None)."""
    kind = source_kind(source)
    if kind in (None, "real"):
        return ""
    items = list(source) if isinstance(source, (list, tuple)) else [source]
    item = next(i for i in items if _kind_of(i) == kind)
    if kind == "synthetic":
        return f"synthetic world (real {_what(item)} absent)"
    return f"{_what(item)} not in the data root (set TINYLIB_DATA): skipped, not comparable"


def record(
    key: str,
    ours=None,
    *,
    source=None,
    paper=FROM_TABLE,
    unit=FROM_TABLE,
    note: str = "",
    claim=FROM_TABLE,
    tolerance=FROM_TABLE,
    rel_tolerance=FROM_TABLE,
    notebook: str | None = None,
    table=None,
    sample: int | None = None,
) -> Claim:
    """Record one claim (see the module docstring); returns it for display.

    ``paper``, ``unit``, ``claim``, ``tolerance`` and ``rel_tolerance`` default to the entry
    of :mod:`tinylib.papers` under ``key`` (or to the :class:`~tinylib.papers.PaperClaim`
    passed as ``paper``); without an entry, to nothing. The two tolerances go together: give
    either and the table's are not used. ``source`` says which data ``ours``
    was measured on: unless it is real (or None), the status is "not comparable" and the
    note starts with :func:`source_note` (on missing data it replaces ``note``). Without an
    explicit ``note`` the table's note on the paper value is used when the data is real.

    ``table`` (a :class:`tinylib.measured.Table`) marks ``ours`` as read from a shipped
    measured table: its provenance is appended to the note, and the source defaults to what
    the table records (``source_kind`` in its provenance, else real). ``sample=N`` marks a
    live run on N images: the key becomes ``KEY.sample``, the row is not comparable. A key
    of :data:`MEASURED_CLAIMS` needs one of the two (``ValueError`` otherwise)."""
    if not key or any(ch.isspace() for ch in key):
        raise ValueError(f"scorecard key must be a non-empty string without spaces, got {key!r}")
    if table is not None and sample is not None:
        raise ValueError(f"{key}: a row is either read from a table or a live sample, not both")
    entry = paper if isinstance(paper, PaperClaim) else _find_claim(key)
    if sample is not None:
        from .config import tier

        key = key if key.endswith(SAMPLE_SUFFIX) else key + SAMPLE_SUFFIX
        claim = (entry.claim if entry is not None and claim is FROM_TABLE else
                 ("" if claim is FROM_TABLE else claim))
        claim = f"{claim or key} (live sample)"
        tolerance = rel_tolerance = None
        note = (f"live sample: {int(sample)} images, {tier()} tier — a demo, not the claim "
                f"(the claim is `{key[: -len(SAMPLE_SUFFIX)]}`, from its shipped table)"
                + (f"; {note}" if note else ""))
    elif table is not None:
        if source is None:
            source = table.provenance.get("source_kind", "real")
        note = f"{note}; {table.describe()}" if note else table.describe()
    elif is_measured_claim(key):
        raise ValueError(
            f"{key}: a claim about a long run is recorded from its shipped table "
            f"(table=tinylib.measured.read_table(NAME)) or as a live sample (sample=N images), "
            f"never from a live notebook run")

    def pick(given, field, default=None):
        if given is not FROM_TABLE and not isinstance(given, PaperClaim):
            return given
        return getattr(entry, field) if entry is not None else default

    paper = pick(paper, "value")
    if tolerance is FROM_TABLE and rel_tolerance is FROM_TABLE:
        tolerance, rel_tolerance = pick(tolerance, "tolerance"), pick(rel_tolerance, "rel_tolerance")
    else:  # one given explicitly: the table's pair is not used
        tolerance = None if tolerance is FROM_TABLE else tolerance
        rel_tolerance = None if rel_tolerance is FROM_TABLE else rel_tolerance
    kind = source_kind(source)
    if sample is not None:
        pass  # a sample is never compared
    elif kind in (None, "real"):
        note = note or (entry.note if entry is not None else "")
    else:  # synthetic or missing data: shown, never compared
        tolerance = rel_tolerance = None
        why = source_note(source)
        note = why if kind == "missing" or not note else f"{why}; {note}"
    nb = notebook or current_notebook()
    item = Claim(
        notebook=nb,
        key=key,
        claim=pick(claim, "claim", "") or key,
        paper=_plain(paper),
        ours=_plain(ours),
        unit=pick(unit, "unit", ""),
        status=("not comparable" if sample is not None
                else decide_status(paper, ours, tolerance, rel_tolerance)),
        note=note,
        tolerance=tolerance,
        rel_tolerance=rel_tolerance,
        source_kind=kind,
    )
    path = parts_dir() / f"{nb}.json"
    rows = _load_part(path) if path.exists() else []
    rows = [r for r in rows if r.get("key") != key] + [asdict(item)]
    _atomic_write_text(path, json.dumps(rows, indent=1) + "\n")
    return item


def reset(notebook: str | None = None) -> None:
    """Forget the claims of one notebook (``make run`` does this before executing it)."""
    path = parts_dir() / f"{notebook or current_notebook()}.json"
    path.unlink(missing_ok=True)


def load_parts(directory: Path | None = None) -> list[dict]:
    directory = directory or parts_dir()
    rows: list[dict] = []
    for path in sorted(Path(directory).glob("*.json")):
        rows.extend(_load_part(path))
    return rows


def collect(out_dir: Path | None = None, parts: Path | None = None) -> list[dict]:
    """Merge all recorded claims into ``scorecard.json`` and ``scorecard.md`` in ``out_dir``."""
    out_dir = Path(out_dir) if out_dir else build_dir()
    rows = [{k: r.get(k) for k in FIELDS} for r in load_parts(parts)]
    keys = [r["key"] for r in rows]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ValueError(f"scorecard keys recorded by more than one notebook: {dupes}")
    rows.sort(key=lambda r: (r["notebook"], r["key"]))
    _atomic_write_text(out_dir / "scorecard.json", json.dumps(rows, indent=1) + "\n")
    _atomic_write_text(out_dir / "scorecard.md", to_markdown(rows))
    return rows


def _fmt(value) -> str:
    num = _number(value)
    if num is None:
        return "—" if value is None else str(value)
    if float(num).is_integer() and abs(num) < 1e12:
        return str(int(num))
    return f"{num:.4g}"


def _markdown_table(rows: list[dict], with_notebook: bool = True) -> str:
    cols = ["key", "claim", "paper says", "we get", "unit", "status", "note"]
    if with_notebook:
        cols.insert(0, "notebook")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = {
            "notebook": r.get("notebook", ""),
            "key": f"`{r['key']}`",
            "claim": r.get("claim", ""),
            "paper says": _fmt(r.get("paper")),
            "we get": _fmt(r.get("ours")),
            "unit": r.get("unit", ""),
            "status": r.get("status", ""),
            "note": r.get("note", ""),
        }
        lines.append(
            "| " + " | ".join(str(cells[c]).replace("|", "\\|").replace("\n", " ") for c in cols) + " |"
        )
    return "\n".join(lines) + "\n"


def to_markdown(rows: list[dict]) -> str:
    counts = {s: sum(r.get("status") == s for r in rows) for s in STATUSES}
    head = (
        "# tinylib scorecard — paper says / we get\n\n"
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + f" ({len(rows)} claims)\n\n"
    )
    return head + _markdown_table(rows)


def table(notebook: str | None = None):
    """The recorded claims as a pandas DataFrame (all notebooks, or one)."""
    import pandas as pd

    rows = [{k: r.get(k) for k in FIELDS} for r in load_parts()]
    if notebook:
        rows = [r for r in rows if r["notebook"] == notebook]
    return pd.DataFrame(rows, columns=list(FIELDS))
