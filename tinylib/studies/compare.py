"""Comparing two conditions of a :func:`~tinylib.studies.run_studies` table: the verdict in
one sentence (:func:`describe_gain`: sign against the paper, inside or outside the seed
spread) and the scorecard claims as data (:func:`comparison_claims`, :func:`gain_claim`):
dicts of the arguments of :func:`tinylib.scorecard.record`, which the notebooks record::

    for claim in studies.comparison_claims("study.context.small", table, "tight", "loose", ...):
        scorecard.record(**claim)

The paper's numbers come from :mod:`tinylib.papers` by key unless given.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import pandas as pd

from .. import papers
from ..scorecard import FROM_TABLE
from .scenes import StudyData

__all__ = ["describe_gain", "gain_claim", "comparison_claims", "paper_value"]


def paper_value(key: str, given=FROM_TABLE):
    """``given``, or when it is :data:`~tinylib.scorecard.FROM_TABLE` the paper's value of
    ``key`` in :mod:`tinylib.papers` (``None`` when the paper has no number for it)."""
    if given is not FROM_TABLE:
        return given
    claim = papers.find(key)
    return None if claim is None else claim.value


def _gain_stats(table: pd.DataFrame, base: str, other: str) -> dict:
    rows = table.set_index("condition")
    a, b = rows.loc[base], rows.loc[other]
    gain = 100 * (float(b["ap_mean"]) - float(a["ap_mean"]))
    na, nb = len(a["ap_per_seed"]), len(b["ap_per_seed"])
    sa, sb = 100 * float(a["ap_std"]), 100 * float(b["ap_std"])
    se = math.sqrt(sa ** 2 / na + sb ** 2 / nb)
    n = min(na, nb)
    return {"gain": gain, "std": (sa, sb), "se": se, "n": n, "outside": n >= 2 and abs(gain) > 2 * se}


def describe_gain(table: pd.DataFrame, base: str, other: str, paper_gain: float | None = None) -> str:
    """One honest sentence comparing two conditions of a :func:`run_studies` table: the AP
    difference in points, the seed spread, whether it agrees in sign with the paper, and
    plainly whether the gain is **outside the seed spread**.

    The rule: the gain is outside the seed spread when it exceeds twice its standard error,
    ``|gain| > 2 * sqrt(std_a^2 / n_a + std_b^2 / n_b)`` (``std``: the sample standard
    deviation of window AP over the ``n`` seeds of each condition; each seed draws its own
    training windows and initialisation, on a fixed test set) — roughly a 95 % two-sided
    test, sharper with more seeds. With one seed there is no spread and the sentence says so."""
    st = _gain_stats(table, base, other)
    gain, (sa, sb), se, n = st["gain"], st["std"], st["se"], st["n"]
    text = (f"{other} - {base} = {gain:+.1f} AP points (seed std {sb:.1f} / {sa:.1f} over {n} seeds, "
            f"standard error of the gain {se:.1f})")
    if paper_gain is not None:
        same = np.sign(gain) == np.sign(paper_gain) and gain != 0
        text += f"; paper {paper_gain:+.1f}: {'same sign' if same else 'NOT the same sign'}"
    if n < 2:
        text += "; one seed only: no seed spread to judge the gain against"
    elif st["outside"]:
        text += f"; OUTSIDE the seed spread (|gain| > 2 x s.e. = {2 * se:.1f}): a real difference at this budget"
    else:
        text += f"; INSIDE the seed spread (|gain| <= 2 x s.e. = {2 * se:.1f}): not distinguishable from seed noise"
    return text


def _data_note(data, table) -> str:
    return "" if data is None else data.note(table)


def gain_claim(key: str, table: pd.DataFrame, base: str, other: str, *, paper=FROM_TABLE,
               claim: str = "", note: str = "", data: StudyData | None = None) -> dict:
    """The scorecard claim ``key`` = the AP gain (points) of ``other`` over ``base``, as the
    keyword arguments of :func:`tinylib.scorecard.record`: :func:`describe_gain` as the
    note, followed by ``note`` and where the data came from (``data``: the
    :class:`StudyData` of the run). ``paper`` may be a number or a text (e.g. ``"~0"``).
    Window AP is not the paper's WIDER AP and synthetic scenes are not real faces, so no
    tolerance is set: recorded, the status is always "not comparable". ``paper`` defaults to
    the value of ``key`` in :mod:`tinylib.papers`."""
    paper = paper_value(key, paper)
    paper_gain = float(paper) if isinstance(paper, Real) else None
    text = " ".join(t for t in (describe_gain(table, base, other, paper_gain) + ".", note,
                                _data_note(data, table)) if t)
    gain = _gain_stats(table, base, other)["gain"]
    return {"key": key, "claim": claim or f"gain of {other} over {base}", "paper": paper,
            "ours": round(gain, 1), "unit": "AP points", "note": text}


def comparison_claims(prefix: str, table: pd.DataFrame, base: str, other: str, *,
                      paper_base=FROM_TABLE, paper_other=FROM_TABLE, paper_gain=FROM_TABLE,
                      claim: str = "", note: str = "", data: StudyData | None = None) -> list[dict]:
    """The scorecard claims ``{prefix}.{base}``, ``{prefix}.{other}`` (window AP, %) and
    ``{prefix}.gain`` (AP points, :func:`gain_claim`), each as the keyword arguments of
    :func:`tinylib.scorecard.record`. Window AP is not the paper's WIDER AP, so no tolerance
    is set (status "not comparable", and all the more on synthetic data); the notes say
    whether the sign of the effect agrees and whether the gain is outside the seed spread
    (:func:`describe_gain`), then ``note``, then which data the numbers come from (``data``:
    the :class:`StudyData` of the run, :meth:`StudyData.note`). The paper's values default
    to those of the keys in :mod:`tinylib.papers` (``None`` where the paper has none)."""
    paper_base = paper_value(f"{prefix}.{base}", paper_base)
    paper_other = paper_value(f"{prefix}.{other}", paper_other)
    rows = table.set_index("condition")
    metric = "window AP (ours) vs WIDER-style AP (paper)"
    tail = " ".join(t for t in (note, _data_note(data, table)) if t)
    out = []
    for name, paper in ((base, paper_base), (other, paper_other)):
        r = rows.loc[name]
        out.append({
            "key": f"{prefix}.{name}", "claim": f"{claim}: {name}", "paper": paper,
            "ours": round(100 * float(r["ap_mean"]), 1), "unit": "AP %",
            "note": f"{metric}; ±{100 * float(r['ap_std']):.1f} over seeds {r['ap_per_seed']}; "
                    f"template {r['template_hw']}, window {r['window_hw']}, RF {r['effective_rf_hw']}. "
                    f"{tail}".strip()})
    out.append(gain_claim(f"{prefix}.gain", table, base, other, paper=paper_gain,
                          claim=f"{claim}: gain of {other} over {base}", note=note, data=data))
    return out
