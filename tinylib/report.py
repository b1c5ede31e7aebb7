"""The results report: the scorecard of a build, chapter by chapter (the last notebook,
``99_results``, only calls this module).

* :func:`load` -- the rows of the current build: the scorecard parts the notebooks wrote
  under ``build/scorecard/`` (:func:`tinylib.scorecard.load_parts`; during ``make run`` the
  results chapter runs before ``scorecard.collect``), else ``build/scorecard.json``, else --
  nothing recorded yet -- the small :data:`EXAMPLE_ROWS` shipped here, flagged as an example.
* :func:`frame` -- the rows as a table with the chapter, the data the number was measured on
  (``kind``: ``"real"`` -- real data or none needed --, ``"synthetic"`` -- a synthetic
  stand-in --, ``"missing"``), the allowed difference and the relative deviation.
* :func:`counts` -- reproduced / differs / not comparable per chapter and in total; live
  samples (keys ending ``.sample``: a notebook's quick/cpu run, never a claim) are counted apart
  and never as reproduced or differs.
* :func:`verdicts` -- one line per finding: finding -> paper -> ours -> verdict -> chapter.
* :func:`differences` -- the rows that differ, as a sentence per chapter (the results chapter's
  "we get" is rendered from it, so it cannot contradict the rows).
* :func:`plot` -- paper vs ours for one kind of data: the relative deviation
  ``ours / paper - 1`` of every row on a symmetric-log axis, the paper's tolerance as a band
  around 0 (``paper +- tolerance``, or ``+- rel_tolerance * |paper|``), rows grouped by chapter.
* :func:`table`, :func:`tables_html`, :func:`samples_html`, :func:`summary` -- the rows and the
  counts as tables and text, for the notebook to display (claims and samples apart).

Nothing here records scorecard rows.
"""

from __future__ import annotations

import html
import json
import logging
import math
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd

from . import papers, scorecard
from .config import build_dir

log = logging.getLogger(__name__)

__all__ = ["Results", "EXAMPLE_ROWS", "KIND_LABELS", "load", "row_kind", "is_sample", "frame", "counts",
           "verdict_of", "verdicts", "differences", "plot", "table", "tables_html", "samples_html",
           "summary", "chapter_of"]

STATUSES = scorecard.STATUSES
STATUS_COLOURS = {"reproduced": "tab:green", "differs": "tab:red", "not comparable": "tab:grey"}
KIND_LABELS = {
    "real": "measured on real data (or needing none)",
    "synthetic": "synthetic stand-ins (never compared with the paper)",
    "missing": "data missing (no value)",
}
LINTHRESH = 0.01  # the symmetric-log axis is linear within +-1 % of the paper's value

#: A small made-up scorecard in the format of the parts (``build/scorecard/<notebook>.json``),
#: shown by the results chapter when nothing has been recorded yet. EXAMPLE values, not results.
EXAMPLE_ROWS: list[dict] = [
    {"notebook": "01_datasets", "key": "data.widerface.val.images", "claim": "WIDER FACE val images",
     "paper": 3226, "ours": 3226, "unit": "count", "status": "reproduced", "note": "example",
     "tolerance": 0, "rel_tolerance": None},
    {"notebook": "01_datasets", "key": "data.fddb.faces", "claim": "FDDB faces",
     "paper": 5171, "ours": None, "unit": "count", "status": "not comparable",
     "note": "FDDB annotations not in the data root (set TINYLIB_DATA): skipped, not comparable",
     "tolerance": None, "rel_tolerance": None},
    {"notebook": "02_object_scales", "key": "scales.wider.abs_size_mean",
     "claim": "WIDER FACE absolute size sqrt(wh), mean", "paper": 32.8, "ours": 32.79, "unit": "px",
     "status": "reproduced", "note": "example", "tolerance": 0.1, "rel_tolerance": None},
    {"notebook": "02_object_scales", "key": "scales.imagenet.share_40_140",
     "claim": "share of ImageNet categories of 40-140 px at 224", "paper": 0.8, "ours": 0.9,
     "unit": "fraction", "status": "reproduced", "note": "example", "tolerance": 0.15,
     "rel_tolerance": None},
    {"notebook": "04_receptive_fields", "key": "rf.resnet50_caffe.res4",
     "claim": "receptive field of res4, Caffe ResNet-50", "paper": 291, "ours": 291, "unit": "px",
     "status": "reproduced", "note": "example", "tolerance": 0, "rel_tolerance": None},
    {"notebook": "04_receptive_fields", "key": "rf.resnet50_torchvision.res4",
     "claim": "receptive field of res4, torchvision ResNet-50", "paper": 291, "ours": 267,
     "unit": "px", "status": "differs", "note": "example", "tolerance": 0, "rel_tolerance": None},
    {"notebook": "04_receptive_fields", "key": "study.context.small.gain",
     "claim": "Fig. 4, 25x20 faces: gain of loose over tight", "paper": 18.9, "ours": -3.1,
     "unit": "AP points", "status": "not comparable",
     "note": "example. Data: synthetic world (rendered scenes, no real faces) — not comparable.",
     "tolerance": None, "rel_tolerance": None},
    {"notebook": "05_resolution", "key": "study.resolution.large.gain",
     "claim": "Fig. 7, large faces: gain of 0.5x over 1x", "paper": 5.6, "ours": 6.7,
     "unit": "AP points", "status": "not comparable",
     "note": "example. Data: real WIDER faces (window AP, not WIDER AP).",
     "tolerance": None, "rel_tolerance": None},
    {"notebook": "07_hr_detector", "key": "hr.synthetic.hard", "claim": "HR detector AP, hard",
     "paper": 0.823, "ours": 0.41, "unit": "AP", "status": "not comparable",
     "note": "synthetic world (real WIDER FACE images absent); example", "tolerance": None,
     "rel_tolerance": None},
    {"notebook": "08_bottom_heavy", "key": "bh.table4.bh_resnet50.gflops",
     "claim": "BH-ResNet50 GFLOPs at 640x512", "paper": 27.12, "ours": 27.115, "unit": "GFLOPs",
     "status": "reproduced", "note": "example", "tolerance": None, "rel_tolerance": 0.02},
    {"notebook": "08_bottom_heavy", "key": "bh.table4.hrnet32.gflops",
     "claim": "HRNet32 GFLOPs at 640x512", "paper": 51.93, "ours": 49.5, "unit": "GFLOPs",
     "status": "differs", "note": "example", "tolerance": None, "rel_tolerance": 0.02},
]


@dataclass
class Results:
    """Scorecard rows and where they came from (``origin``); ``example`` when they are
    :data:`EXAMPLE_ROWS` because nothing was recorded."""

    rows: list[dict]
    origin: str
    example: bool = False
    build: Path | None = None

    @property
    def frame(self) -> pd.DataFrame:
        return frame(self.rows)


def _read_json_rows(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ValueError(f"{path}: expected a JSON list of scorecard rows (objects)")
    for i, r in enumerate(data):
        if "key" not in r or "status" not in r:
            raise ValueError(f"{path}: row {i} has no 'key' or 'status'")
    return data


def _dedupe(rows: list[dict]) -> list[dict]:
    """A key recorded interactively (``TINYLIB_NOTEBOOK`` unset) and by its chapter: keep the
    chapter's row."""
    named = {r["key"] for r in rows if r.get("notebook") != "interactive"}
    out = [r for r in rows if r.get("notebook") != "interactive" or r["key"] not in named]
    keys = [r["key"] for r in out]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        log.warning("scorecard keys recorded by more than one notebook: %s", dupes)
    return out


def load(build: str | Path | None = None) -> Results:
    """The scorecard rows of the build in ``build`` (default :func:`tinylib.config.build_dir`,
    i.e. ``TINYLIB_BUILD``): the parts under ``scorecard/`` if any, else ``scorecard.json``,
    else :data:`EXAMPLE_ROWS` (``example=True``)."""
    base = Path(build) if build is not None else build_dir(create=False)
    parts = base / "scorecard"
    if parts.is_dir() and any(parts.glob("*.json")):
        rows = _dedupe(scorecard.load_parts(parts))
        if rows:
            return Results(rows, f"the scorecard parts of this build ({parts})", build=base)
    collected = base / "scorecard.json"
    if collected.is_file():
        rows = _dedupe(_read_json_rows(collected))
        if rows:
            return Results(rows, f"the collected scorecard {collected}", build=base)
    return Results([dict(r) for r in EXAMPLE_ROWS], f"EXAMPLE rows (nothing recorded under {base})",
                   example=True, build=base)


def _number(value) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Real):
        value = float(value)
        return value if math.isfinite(value) else None
    return None


def row_kind(row: dict) -> str:
    """Which data a row's number was measured on: ``"real"`` (real data, or a number that
    needs none, e.g. FLOPs), ``"synthetic"`` or ``"missing"``. A row that names its source
    kind (``source_kind`` or ``source``) says it; otherwise its note does, as
    :func:`tinylib.scorecard.source_note` and :meth:`tinylib.studies.StudyData.note` write it."""
    for field in ("source_kind", "source"):
        if row.get(field) in scorecard.KINDS:
            return row[field]
    note = str(row.get("note") or "")
    if note.startswith("synthetic world") or "Data: synthetic world" in note:
        return "synthetic"
    if "not in the data root" in note:
        return "missing"
    return "real"


def is_sample(key: str) -> bool:
    """A live sample's row (``KEY.sample``, :func:`tinylib.scorecard.record` with ``sample=``):
    a demo of a notebook's quick/cpu run, shown apart, never counted as a claim."""
    return str(key).endswith(scorecard.SAMPLE_SUFFIX)


def chapter_of(notebook: str) -> str:
    """``"02_object_scales"`` -> ``"02 object scales"``."""
    return str(notebook or "?").replace("_", " ")


def _allowed(row: dict, paper: float | None) -> float | None:
    """The allowed |ours - paper| of a comparable row (None when it has no tolerance)."""
    if row.get("status") not in ("reproduced", "differs") or paper is None:
        return None
    if "tolerance" in row or "rel_tolerance" in row:  # a part: the tolerances it was judged by
        tol, rel = row.get("tolerance"), row.get("rel_tolerance")
    else:  # the collected scorecard.json does not carry them: the paper table's
        entry = papers.find(row["key"])
        tol, rel = (entry.tolerance, entry.rel_tolerance) if entry is not None else (None, None)
    if tol is None and rel is None:
        return None
    return max(float(tol or 0.0), float(rel or 0.0) * abs(paper))


COLUMNS = ["notebook", "chapter", "key", "claim", "paper", "ours", "unit", "status", "kind", "note",
           "allowed", "deviation", "band", "sample"]


def frame(rows: list[dict]) -> pd.DataFrame:
    """One row per claim, sorted by chapter then key, with ``chapter``, ``kind``
    (:func:`row_kind`), ``allowed`` (the tolerance in the row's unit, NaN if none),
    ``deviation`` = ``ours / paper - 1``, ``band`` = ``allowed / |paper|`` (NaN where
    undefined: a text, a missing value or a paper value of 0) and ``sample`` (:func:`is_sample`)."""
    out = []
    for r in rows:
        p, o = _number(r.get("paper")), _number(r.get("ours"))
        allowed = _allowed(r, p)
        rel_ok = p is not None and p != 0
        out.append({
            "notebook": r.get("notebook", ""), "chapter": chapter_of(r.get("notebook", "")),
            "key": r["key"], "claim": r.get("claim") or r["key"], "paper": r.get("paper"),
            "ours": r.get("ours"), "unit": r.get("unit") or "", "status": r.get("status", ""),
            "kind": row_kind(r), "note": r.get("note") or "",
            "allowed": np.nan if allowed is None else allowed,
            "deviation": o / p - 1 if rel_ok and o is not None else np.nan,
            "band": allowed / abs(p) if rel_ok and allowed is not None else np.nan,
            "sample": is_sample(r["key"]),
        })
    df = pd.DataFrame(out, columns=COLUMNS)
    df["sample"] = df["sample"].astype(bool)
    return df.sort_values(["notebook", "key"], kind="stable").reset_index(drop=True)


SAMPLES_COLUMN = "live samples (not counted)"


def _claims(df: pd.DataFrame) -> pd.DataFrame:
    return df[~df["sample"]] if "sample" in df else df


def counts(df: pd.DataFrame, example: bool = False) -> pd.DataFrame:
    """Reproduced / differs / not comparable per chapter and in total (last row ``"total"``),
    over the claims (``rows``), with how many of them are synthetic stand-ins and how many
    lack their data; live samples (:func:`is_sample`) are not claims: counted apart in their
    own column, never under a status (``example``: the index says the rows are an example)."""
    cols = [*STATUSES, "rows", "synthetic stand-ins", "data missing", SAMPLES_COLUMN]

    def one(g: pd.DataFrame) -> dict:
        samples = g["sample"] if "sample" in g else pd.Series(False, index=g.index)
        claims = g[~samples]
        c = {s: int((claims["status"] == s).sum()) for s in STATUSES}
        c["rows"] = len(claims)
        c["synthetic stand-ins"] = int((claims["kind"] == "synthetic").sum())
        c["data missing"] = int((claims["kind"] == "missing").sum())
        c[SAMPLES_COLUMN] = int(samples.sum())
        return c

    table = {ch: one(g) for ch, g in df.groupby("chapter", sort=True)}
    table["total"] = one(df)
    out = pd.DataFrame.from_dict(table, orient="index", columns=cols)
    out.index.name = "chapter (EXAMPLE rows, not results)" if example else "chapter"
    return out


def _fmt(value) -> str:
    num = _number(value)
    if num is None:
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        return "—" if missing else str(value)
    if float(num).is_integer() and abs(num) < 1e12:
        return f"{int(num):,}"
    return f"{num:.4g}"


def _band_text(row) -> str:
    if not np.isfinite(row["allowed"]):
        return ""
    if row["allowed"] == 0:
        return "exact"
    return f"± {_fmt(row['allowed'])}"


def deviation_ticks(lim: float, per_side: int = 4) -> list[float]:
    """Ticks of :func:`plot`'s deviation axis up to ``lim``: 0 and, on each side, 1 %, 3 %,
    10 %, ... -- or, when that gives more than ``per_side`` a side, the powers of ten only, so
    that the labels stay readable however far a row lies from the paper."""
    steps = [s for s in (0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000) if s <= lim]
    if len(steps) > per_side:
        steps = [s for s in steps if s in (0.01, 0.1, 1, 10, 100, 1000)]
    return [-s for s in steps[::-1]] + [0.0] + steps


def _deviation_label(v: float) -> str:
    return f"{v:+.0%}".replace("-", "\u2212") if v else "0"


def plottable(df: pd.DataFrame) -> pd.Series:
    """Rows :func:`plot` can draw: numeric paper (not 0) and ours."""
    return df["deviation"].notna()


def plot(df: pd.DataFrame, kind: str = "real", *, title: str | None = None, example: bool = False):
    """Paper vs ours for the rows of one ``kind`` of data (see :func:`frame`): one line per
    claim, grouped by chapter; x = ``ours / paper - 1`` on a symmetric-log axis (linear within
    +-1 %), so that counts, pixels, AP and GFLOPs share one axis. The paper is the line at 0,
    its tolerance the band around it (a tick where the tolerance is 0: exact), ours a dot in
    the colour of the status (hollow grey: not comparable). The right margin prints
    ``paper -> ours unit``. Rows with a text or zero paper value or no value of ours are left
    out and counted below the axis. Returns the figure."""
    import matplotlib.pyplot as plt  # matplotlib only when drawing (heavy import)
    from matplotlib.lines import Line2D
    from matplotlib.transforms import blended_transform_factory

    if kind not in KIND_LABELS:
        raise ValueError(f"kind must be one of {list(KIND_LABELS)}, got {kind!r}")
    df = _claims(df)  # live samples are not claims: never drawn against the paper
    sub = df[df["kind"] == kind]
    draw = sub[plottable(sub)]
    left_out = len(sub) - len(draw)
    n_ch = draw["chapter"].nunique()
    height = 1.6 + 0.24 * (len(draw) + n_ch)
    fig, ax = plt.subplots(figsize=(10, height), layout="constrained")
    title = title or f"Paper vs ours: {KIND_LABELS[kind]}"
    if example:
        title = f"EXAMPLE scorecard (not results) — {title}"
    if draw.empty:
        ax.set_title(title, fontsize=10, loc="left")
        ax.text(0.5, 0.5, f"no rows to draw ({len(sub)} in the table)", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    right = blended_transform_factory(ax.transAxes, ax.transData)
    y, ticks, labels = 0, [], []
    for chapter, g in draw.groupby("chapter", sort=True):
        ax.text(0.0, y, f" {chapter}", transform=right, fontsize=9, fontweight="bold", va="center")
        ax.axhline(y - 0.6, color="0.85", lw=0.8)
        y += 1
        for _, r in g.iterrows():
            colour = STATUS_COLOURS.get(r["status"], "tab:grey")
            if np.isfinite(r["band"]):
                if r["band"] > 0:
                    ax.plot([-r["band"], r["band"]], [y, y], color=colour, alpha=0.3, lw=7,
                            solid_capstyle="butt")
                else:
                    ax.plot([0], [y], marker="|", color=colour, ms=12, mew=2.5, zorder=3)
            comparable = r["status"] in ("reproduced", "differs")
            ax.plot([r["deviation"]], [y], "o", ms=6, color=colour,
                    mfc=colour if comparable else "none", mew=1.5)
            ax.text(1.01, y, f"{_fmt(r['paper'])} → {_fmt(r['ours'])} {r['unit']}", transform=right,
                    fontsize=7, va="center", clip_on=False)
            ticks.append(y)
            labels.append(r["key"])
            y += 1
    ax.axvline(0, color="navy", lw=1.2)
    ax.set_xscale("symlog", linthresh=LINTHRESH, linscale=0.5)
    span = np.nanmax(np.abs(np.r_[draw["deviation"].to_numpy(), draw["band"].fillna(0).to_numpy()]))
    lim = max(0.05, 1.5 * span)
    ax.set_xlim(-lim, lim)
    ax.set_xticks(deviation_ticks(lim))
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: _deviation_label(v)))
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.tick_params(axis="x", labelsize=8, labelrotation=45)
    for t in ax.get_xticklabels():  # rotated labels anchored at their tick, never overlapping
        t.set_horizontalalignment("right")
        t.set_rotation_mode("anchor")
    ax.set_yticks(ticks, labels, fontsize=7)
    ax.set_ylim(y - 0.4, -0.6)
    ax.set_xlabel("ours / paper − 1 (symmetric log scale, linear within ±1 %)"
                  + (f"; {left_out} rows with a text or zero paper value or no value of ours: "
                     "table only" if left_out else ""), fontsize=8)
    handles = [Line2D([], [], color="navy", lw=1.2, label="paper")]
    if draw["band"].gt(0).any():
        handles.append(Line2D([], [], color="tab:grey", alpha=0.3, lw=7, label="paper ± tolerance"))
    if draw["band"].eq(0).any():
        handles.append(Line2D([], [], ls="", marker="|", ms=10, mew=2.5, color="tab:grey",
                              label="tolerance 0 (exact)"))
    handles += [Line2D([], [], ls="", marker="o", color=c, mfc=c if s != "not comparable" else "none",
                       label=f"ours: {s}") for s, c in STATUS_COLOURS.items() if (draw["status"] == s).any()]
    fig.legend(handles=handles, fontsize=7, loc="outside lower center", ncol=len(handles), frameon=False)
    ax.set_title(title, fontsize=10, loc="left")
    return fig


def table(df: pd.DataFrame, kind: str | None = None, chapter: str | None = None,
          samples: bool = False) -> pd.DataFrame:
    """The claims (of one ``kind``, one ``chapter``) as a display table: chapter, key, claim,
    paper, ours, unit, tolerance, status, data, note; ``samples=True``: the live samples
    instead (:func:`is_sample`), never mixed with the claims."""
    sub = df[df["sample"] == bool(samples)] if "sample" in df else df
    if kind is not None:
        sub = sub[sub["kind"] == kind]
    if chapter is not None:
        sub = sub[sub["chapter"] == chapter]
    return pd.DataFrame({
        "chapter": sub["chapter"], "key": sub["key"], "claim": sub["claim"],
        "paper": [_fmt(v) for v in sub["paper"]], "ours": [_fmt(v) for v in sub["ours"]],
        "unit": sub["unit"], "tolerance": [_band_text(r) for _, r in sub.iterrows()],
        "status": sub["status"], "data": sub["kind"], "note": sub["note"],
    }).reset_index(drop=True)


def tables_html(df: pd.DataFrame, kind: str | None = None, example: bool = False,
                samples: bool = False) -> str:
    """:func:`table` as HTML, one heading and one table per chapter, every cell in full
    (no truncated notes), the status coloured; ``example``: a banner says the rows are an
    example; ``samples``: the live samples instead of the claims (:func:`samples_html`)."""
    parts = ["<p><b>EXAMPLE scorecard: made-up rows, not results.</b></p>"] if example else []
    for chapter, _ in df.groupby("chapter", sort=True):
        t = table(df, kind=kind, chapter=chapter, samples=samples).drop(columns=["chapter"])
        if t.empty:
            continue
        head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
        body = []
        for _, r in t.iterrows():
            cells = []
            for c in t.columns:
                style = ""
                if c == "status":
                    style = f' style="color:{STATUS_COLOURS.get(r[c], "black").replace("tab:", "")}"'
                text = f"<code>{html.escape(str(r[c]))}</code>" if c == "key" else html.escape(str(r[c]))
                cells.append(f'<td{style}>{text}</td>')
            body.append("<tr>" + "".join(cells) + "</tr>")
        parts.append(f"<h4>{html.escape(chapter)}</h4>\n<table>\n<thead><tr>{head}</tr></thead>\n"
                     f"<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>")
    if not any(p.startswith("<h4>") for p in parts):
        parts.append("<p>(no rows)</p>")
    return "\n".join(parts)


def samples_html(df: pd.DataFrame) -> str:
    """The live samples (:func:`is_sample`) as HTML, one table per chapter, under a banner that
    says what they are: a notebook's own quick/cpu run on a few images, a demo beside the claim
    (which comes from a shipped table), never compared with the paper and never counted."""
    n = int(df["sample"].sum()) if "sample" in df else 0
    head = ("<p><b>Live samples, not claims</b>: each is a chapter's own run at this tier on a few "
            f"images ({n} rows), shown beside the claim it illustrates (the key without "
            "<code>.sample</code>, read from a shipped table). They are never compared with the "
            "paper and never counted as reproduced or differs.</p>")
    if not n:
        return head + "<p>(no live samples in this build)</p>"
    return head + tables_html(df, samples=True)


def verdict_of(row) -> str:
    """A claim's verdict in words: ``reproduced``, ``differs``, or why it is not comparable
    (a synthetic stand-in, missing data, a qualitative claim, no value of ours, or no
    tolerance: shown beside the paper's number, e.g. a subset beside the full set); a live
    sample says so."""
    if bool(row.get("sample", False)) or is_sample(row.get("key", "")):
        return "live sample (not a claim)"
    status = row.get("status", "")
    if status in ("reproduced", "differs"):
        return status
    if row.get("kind") == "synthetic":
        return "not comparable: synthetic stand-in"
    if row.get("kind") == "missing":
        return "not comparable: data missing"
    if _number(row.get("paper")) is None:
        return "not comparable: the paper gives no number"
    if _number(row.get("ours")) is None:
        return "not comparable: no value of ours"
    return "not comparable: shown beside (different setting, no tolerance)"


def _with_unit(value, unit: str) -> str:
    text = _fmt(value)
    return f"{text} {unit}".strip() if _number(value) is not None and unit else text


def verdicts(df: pd.DataFrame) -> pd.DataFrame:
    """One row per finding (a claim of the scorecard; live samples left out): ``finding``
    (the claim), ``paper``, ``ours`` (with the unit), ``verdict`` (:func:`verdict_of`),
    ``chapter`` and the scorecard ``key``, in chapter order."""
    sub = _claims(df)
    rows = [{"finding": r["claim"], "paper": _with_unit(r["paper"], r["unit"]),
             "ours": _with_unit(r["ours"], r["unit"]), "verdict": verdict_of(r),
             "chapter": r["chapter"], "key": r["key"]} for _, r in sub.iterrows()]
    return pd.DataFrame(rows, columns=["finding", "paper", "ours", "verdict", "chapter", "key"])


def differences(df: pd.DataFrame) -> str:
    """The claims that differ from the paper, as Markdown: one bullet per chapter listing each
    row ``key: paper -> ours``; or a sentence that none does. Rendered from the rows, so the
    results chapter's text says what the scorecard says."""
    sub = _claims(df)
    sub = sub[sub["status"] == "differs"]
    if sub.empty:
        return "No claim of this build differs from the paper beyond its tolerance."
    lines = [f"{len(sub)} claims differ from the paper beyond its tolerance; each chapter's own "
             "*We get* says why:"]
    for chapter, g in sub.groupby("chapter", sort=True):
        items = "; ".join(f"`{r['key']}` {_fmt(r['paper'])} → {_fmt(r['ours'])}" for _, r in g.iterrows())
        lines.append(f"* **{chapter}**: {items}")
    return "\n".join(lines)


def summary(results: Results) -> str:
    """A Markdown paragraph: where the rows come from and their counts; when nothing has been
    recorded, that there is nothing yet and how to make it."""
    c = counts(results.frame).loc["total"]
    tally = (f"**{c['rows']} claims: {c['reproduced']} reproduced, {c['differs']} differ, "
             f"{c['not comparable']} not comparable** ({c['synthetic stand-ins']} synthetic "
             f"stand-ins, {c['data missing']} without their data)")
    if c[SAMPLES_COLUMN]:
        tally += (f"; besides them {c[SAMPLES_COLUMN]} live samples (a chapter's own run on a few "
                  "images, not claims, not counted)")
    if results.example:
        return ("**Nothing recorded yet.** No chapter has written its scorecard rows in this "
                f"build ({results.build}): run `make run` "
                "(it executes every chapter, records the rows and then this report), or run a "
                "chapter in Jupyter, then rerun this notebook.\n\n"
                "Until then the report below shows an **EXAMPLE scorecard** shipped with the "
                "library (`tinylib.report.EXAMPLE_ROWS`): made-up rows that show how to read the "
                f"report, **not results** — {tally}.")
    return f"Rows from {results.origin}: {tally}."
