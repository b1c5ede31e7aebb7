"""Reading the shipped Section 3 table (``studies_section3``, made by ``tools/run_studies.py``
with the protocol of :mod:`tinylib.studies.section3`): the gains and their verdicts
(:func:`section3_gains`), the scorecard claims (:func:`section3_claims`, recorded with
``scorecard.record(**claim, table=t)``) and the figures in the paper's layouts, the paper's
values beside ours (:func:`fig4_context`, :func:`fig5_foveal`, :func:`fig7_resolution`,
:func:`plot_curves`)::

    from tinylib import scorecard, studies
    t = studies.read_section3()                      # measured.Table (frame + provenance)
    studies.section3_gains(t.frame)                   # one row per init x effect x size
    for claim in studies.section3_claims(t):
        scorecard.record(**claim, table=t)
    studies.fig4_context(t.frame)

A gain is **outside the seed spread** when |gain| > 2 x its standard error
sqrt(s_a^2/n_a + s_b^2/n_b) over the seeds (the rule of
:func:`tinylib.studies.compare.describe_gain`). Headline numbers are the test half of the
WIDER val subset (column ``ap``); the tuning half (``ap_tuning``) is beside them and chose
the best loose stage of the context study.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import pandas as pd

from .. import measured, papers
from .section3 import CURVES, FACES, OTHER_RES, TABLE, tight_stage

__all__ = ["read_section3", "read_section3_curves", "section3_gains", "section3_claims", "sample_claims",
           "section3_summary", "fig4_context", "fig5_foveal", "fig7_resolution", "plot_curves",
           "COLUMNS", "INIT_STYLE"]

#: the columns the shipped table must have
COLUMNS = ("init", "effect", "size", "face", "condition", "layers", "resolution", "rf",
           "rf_image", "window", "seed", "ap", "ap_tuning", "train_ap", "n_train_pos",
           "n_test_pos", "n_test_neg", "n_tuning_pos", "test_positives", "data")
INIT_STYLE = {"imagenet": dict(color="#1f5fb4", ls="-", marker="o", label="ImageNet init (fine-tuned)"),
              "scratch": dict(color="#c0522b", ls="--", marker="s", label="from scratch")}
PAPER_STYLE = dict(marker="D", s=46, color="tab:orange", edgecolor="k", linewidths=0.6, zorder=5)


def read_section3(directory=None) -> measured.Table:
    """The shipped table (``tinylib/weights/studies_section3.csv`` + provenance); raises
    ``FileNotFoundError`` saying how to make it when it is absent, ``ValueError`` when a
    column is missing."""
    t = measured.read_table(TABLE, directory)
    missing = [c for c in COLUMNS if c not in t.frame.columns]
    if missing:
        raise ValueError(f"{t.path}: the Section 3 table lacks the columns {missing}")
    return t


def read_section3_curves(directory=None) -> measured.Table:
    return measured.read_table(CURVES, directory)


def _stats(frame: pd.DataFrame, init, effect, size, cond, col="ap") -> dict:
    sel = frame[(frame["init"] == init) & (frame["effect"] == effect) & (frame["size"] == size)
                & (frame["condition"] == cond)]
    if sel.empty:
        raise KeyError(f"no rows for init={init}, effect={effect}, size={size}, condition={cond}")
    v = 100 * sel[col].to_numpy(float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "n": len(v), "values": v, "train": float(100 * sel["train_ap"].mean()),
            "row": sel.iloc[0]}


def _gain(a: dict, b: dict) -> dict:
    gain = b["mean"] - a["mean"]
    se = math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])
    n = min(a["n"], b["n"])
    return {"gain": gain, "se": se, "n": n, "outside": bool(n >= 2 and abs(gain) > 2 * se)}


def _verdict(gain: float, se: float, outside: bool, n: int, paper) -> tuple[str, object]:
    same = None
    if isinstance(paper, Real):
        same = bool(np.sign(gain) == np.sign(paper) and gain != 0)
    spread = ("outside the seed spread" if outside else "inside the seed spread") if n >= 2 \
        else "one seed: no spread"
    sign = "" if same is None else ("same sign as the paper" if same else "OPPOSITE sign to the paper")
    text = f"{gain:+.1f} AP points (2 x s.e. {2 * se:.1f}, {n} seeds): {spread}"
    return text + (f"; {sign}" if sign else ""), same


def _paper(key: str):
    c = papers.find(key)
    return None if c is None else c.value


def section3_gains(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per init x effect x size (and the over-context row of the small context
    study): ``key`` (the scorecard key of the gain), ``base``/``other`` (conditions),
    ``base_ap``/``other_ap`` (test half, mean over seeds, %), ``gain`` (points), ``se``,
    ``outside`` (the seed spread), ``gain_tuning``, ``paper``, ``same_sign``, ``verdict``,
    train APs of both (over-fitting) and, for context, ``best_loose`` (chosen on the tuning
    half)."""
    rows = []
    for init in [i for i in ("imagenet", "scratch") if i in set(frame["init"])]:
        suffix = "" if init == "imagenet" else ".scratch"
        for size in [s for s in ("small", "large") if s in set(frame["size"])]:
            pairs = []
            ctx = frame[(frame["init"] == init) & (frame["effect"] == "context") & (frame["size"] == size)]
            if not ctx.empty:
                tight = tight_stage(size)
                rf_t = int(ctx.loc[ctx["condition"] == tight, "rf_image"].iloc[0])
                loose = [c for c in pd.unique(ctx["condition"])
                         if int(ctx.loc[ctx["condition"] == c, "rf_image"].iloc[0]) > rf_t]
                tune = {c: _stats(frame, init, "context", size, c, "ap_tuning")["mean"] for c in loose}
                best = max(loose, key=lambda c: tune[c])  # chosen on the tuning half
                pairs.append(("context", "gain", tight, best, {"best_loose": best}))
                if size == "small" and {"s4", "s5"} <= set(ctx["condition"]):
                    pairs.append(("context", "overcontext", "s4", "s5", {}))
            if not frame[(frame["init"] == init) & (frame["effect"] == "foveal") & (frame["size"] == size)].empty:
                pairs.append(("foveal", "drop", "s4", "s2+s3+s4", {}))
            if not frame[(frame["init"] == init) & (frame["effect"] == "resolution") & (frame["size"] == size)].empty:
                pairs.append(("resolution", "gain", "1x", f"{OTHER_RES[size]:g}x", {}))
            for effect, what, base, other, extra in pairs:
                a, b = (_stats(frame, init, effect, size, c) for c in (base, other))
                at, bt = (_stats(frame, init, effect, size, c, "ap_tuning") for c in (base, other))
                g = _gain(a, b)
                key = f"study.{effect}.{size}.{what}"
                paper = _paper(key)
                text, same = _verdict(g["gain"], g["se"], g["outside"], g["n"], paper)
                rows.append({
                    "init": init, "effect": effect, "size": size, "face": "x".join(map(str, FACES[size])),
                    "key": key + suffix, "base": base, "other": other,
                    "base_ap": a["mean"], "other_ap": b["mean"], "base_std": a["std"], "other_std": b["std"],
                    "gain": g["gain"], "se": g["se"], "outside": g["outside"], "n_seeds": g["n"],
                    "gain_tuning": bt["mean"] - at["mean"],
                    "base_train_ap": a["train"], "other_train_ap": b["train"],
                    "paper": paper, "same_sign": same, "verdict": text,
                    "n_train_pos": int(a["row"]["n_train_pos"]), "n_test_pos": int(a["row"]["n_test_pos"]),
                    "n_test_neg": int(a["row"]["n_test_neg"]), "test_positives": a["row"]["test_positives"],
                    "data": a["row"]["data"], "best_loose": extra.get("best_loose", "")})
    return pd.DataFrame(rows)


_INIT_NOTE = {"imagenet": "init: ImageNet MobileNetV1 x0.25 (data bundle), fine-tuned (s1-s2 frozen, "
                          "s3 at 0.1x, BatchNorm frozen)",
              "scratch": "init: from scratch (same MobileNetV1 x0.25, random weights, all trained)"}
_WHAT = {("context", "gain"): ("tight", "best_loose", "context: tight RF vs the best loose RF"),
         ("context", "overcontext"): ("s4", "s5", "context beyond 300 px: s5 (RF 315) vs s4 (RF 219)"),
         ("foveal", "drop"): ("last_only", "foveal", "foveal: s2+s3+s4 vs s4 only"),
         ("resolution", "gain"): ("1x", None, "template resolution")}


def _note(r: pd.Series, extra: str = "") -> str:
    data = ("real WIDER faces" if r["data"] == "real" else f"{r['data']} scenes (not real faces)")
    counts = (f"{r['n_train_pos']} train positives (every usable face of the WIDER_train photos); "
              f"test half of the WIDER val subset: {r['n_test_pos']} positives + {r['n_test_neg']} "
              f"negatives ({r['test_positives']}); window AP, not WIDER AP")
    return (f"{_INIT_NOTE[r['init']]}; {data}, {r['face']} faces; {counts}. {extra}"
            f"Verdict: {r['verdict']} (tuning half: {r['gain_tuning']:+.1f}).")


def section3_claims(table, effects=("context", "foveal", "resolution")) -> list[dict]:
    """The scorecard claims ``study.{context,foveal,resolution}.{small,large}.*`` of the
    table (a :class:`tinylib.measured.Table` or its frame), as keyword arguments of
    :func:`tinylib.scorecard.record` — record each with ``table=`` the table. ImageNet init =
    the headline keys, scratch = the same keys ending ``.scratch``. Each note names the
    init, the data, the counts and the verdict. No tolerance: window AP is not WIDER AP.
    ``effects``: only these studies' claims (chapter 04 records context and foveal, 05
    resolution)."""
    frame = table.frame if hasattr(table, "frame") else table
    out = []
    gains = section3_gains(frame)
    for _, r in gains[gains["effect"].isin(effects)].iterrows():
        suffix = "" if r["init"] == "imagenet" else ".scratch"
        base_key = r["key"][: -len(suffix)] if suffix else r["key"]
        prefix = base_key.rsplit(".", 1)[0]
        base_name, other_name, what = _WHAT[(r["effect"], base_key.rsplit(".", 1)[1])]
        other_name = other_name or r["other"]
        extra = ""
        if r["effect"] == "context" and base_key.endswith(".gain"):
            extra = (f"Tight = {r['base']} (RF about the face), best loose = {r['other']} (chosen on "
                     "the tuning half). ")
        if base_key.endswith("overcontext"):
            extra = (f"Train AP {r['base_train_ap']:.1f} -> {r['other_train_ap']:.1f} vs test "
                     f"{r['base_ap']:.1f} -> {r['other_ap']:.1f} (over-fitting check). ")
        for name, cond, ap, std in ((base_name, r["base"], r["base_ap"], r["base_std"]),
                                    (other_name, r["other"], r["other_ap"], r["other_std"])):
            if base_key.endswith("overcontext"):
                continue
            key = f"{prefix}.{name}"
            out.append({"key": key + suffix, "ours": round(ap, 1), "unit": "AP %",
                        "claim": f"{what}, {r['face']}: {cond} ({r['init']} init)",
                        "paper": _paper(key), "tolerance": None, "rel_tolerance": None,
                        "note": f"±{std:.1f} over {r['n_seeds']} seeds (test half). " + _note(r, extra)})
        out.append({"key": r["key"], "ours": round(float(r["gain"]), 1), "unit": "AP points",
                    "claim": f"{what}, {r['face']}: gain of {r['other']} over {r['base']} ({r['init']} init)",
                    "paper": r["paper"], "tolerance": None, "rel_tolerance": None,
                    "note": _note(r, extra)})
    return out


def sample_claims(sample: pd.DataFrame, pairs) -> list[dict]:
    """The scorecard rows of a chapter's live sample (:func:`tinylib.studies.live_sample`):
    for each ``(key, base, other)`` of ``pairs`` (e.g. ``("study.context.small.gain", "s2",
    "s4")``) the gain of ``other`` over ``base`` in window-AP points, per init (scratch:
    ``KEY.scratch``), as keyword arguments of :func:`tinylib.scorecard.record` with
    ``sample=`` (the test photos; the test positives for a sample without that column) and ``source=`` (real or synthetic) set, so that the row
    is ``KEY.sample``, never the claim. Pairs whose conditions the sample lacks are skipped."""
    from ..config import tier

    out = []
    for init, d in sample.groupby("init", sort=False):
        suffix = "" if init == "imagenet" else ".scratch"
        for key, base, other in pairs:
            s = d[d["size"] == key.split(".")[2]].set_index("condition")
            if base not in s.index or other not in s.index:
                continue
            r = s.loc[base]
            data = "real WIDER faces" if r["data"] == "real" else f"{r['data']} scenes"
            absent = (init == "imagenet" and "imagenet_loaded" in s.columns
                      and not bool(s["imagenet_loaded"].all()))
            init_txt = f"{init} init" + (" (ImageNet weights absent: random weights)" if absent else "")
            out.append({"key": key + suffix, "ours": round(float(s.at[other, "ap"] - s.at[base, "ap"]), 1),
                        "unit": "AP points", "source": r["data"],
                        "sample": int(r["n_test_images"] if "n_test_images" in s.columns else r["n_test_pos"]),
                        "note": f"live sample at the {tier()} tier: {other} vs {base}, {init_txt}, "
                                f"{int(r['steps'])} steps, {int(r['seeds'])} seeds, {int(r['n_train_pos'])} "
                                f"train / {int(r['n_test_pos'])} test positives ({data}); window AP. "
                                "The claim is the shipped table's (studies_section3)."})
    return out


def section3_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """The gains as a compact table for a chapter: effect, face, init, ours (test), tuning,
    paper, sign, seed spread."""
    g = section3_gains(frame)
    return pd.DataFrame({
        "effect": g["effect"] + " " + g["key"].str.split(".").str[3].str.replace("gain", "").str.strip(),
        "face": g["face"], "init": g["init"], "compared": g["other"] + " vs " + g["base"],
        "ours (test)": g["gain"].round(1), "ours (tuning)": g["gain_tuning"].round(1),
        "paper": g["paper"], "same sign": g["same_sign"],
        "outside seed spread": g["outside"]})


# ------------------------------------------------------------------------------ figures
def _axes(n, ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(1, n, figsize=figsize, layout="constrained")
    return np.atleast_1d(ax)


def fig4_context(frame: pd.DataFrame, ax=None):
    """Fig. 4's layout: AP against the receptive field of the stage the template reads (log
    scale, image pixels), one panel per face size, both inits (test half: mean ± seed std;
    train AP faint, the over-fitting check), the face's extent and the tight stage marked,
    the paper's gain beside ours in each panel's title."""
    axes = _axes(2, ax, (10, 3.8))
    gains = section3_gains(frame)
    for a, size in zip(axes, ("small", "large")):
        ctx = frame[(frame["effect"] == "context") & (frame["size"] == size)]
        if ctx.empty:
            continue
        for init in ("imagenet", "scratch"):
            d = ctx[ctx["init"] == init]
            if d.empty:
                continue
            st = INIT_STYLE[init]
            m = d.groupby("rf_image").agg(ap=("ap", "mean"), sd=("ap", "std"), tr=("train_ap", "mean"))
            a.errorbar(m.index, 100 * m["ap"], yerr=100 * m["sd"].fillna(0), capsize=3,
                       color=st["color"], ls=st["ls"], marker=st["marker"], label=f"{st['label']}: test")
            a.plot(m.index, 100 * m["tr"], color=st["color"], ls=":", alpha=0.5, marker=".",
                   label=f"{st['label']}: train")
        h, w = FACES[size]
        a.axvline(math.sqrt(h * w), color="g", lw=1.5, alpha=0.6, label="face extent")
        names = ctx.drop_duplicates("rf_image").set_index("rf_image")["condition"]
        a.set_xscale("log")
        a.set_xticks(list(names.index), [f"{c}\n{rf}" for rf, c in names.items()], fontsize=8)
        a.minorticks_off()
        a.set_xlabel("receptive field of the stage read (px)")
        a.set_ylabel("window AP (%), test half")
        title = f"{h}x{w} faces"
        for init in ("imagenet", "scratch"):
            r = gains[(gains["init"] == init) & (gains["size"] == size) & (gains["key"].str.contains("context")
                                                                           & gains["key"].str.contains(".gain"))]
            if len(r):
                r = r.iloc[0]
                title += f"\n{init}: best loose ({r['other']}) - tight ({r['base']}) = {r['gain']:+.1f}"
        paper = _paper(f"study.context.{size}.gain")
        if isinstance(paper, Real):
            title += f"; paper {paper:+.1f}"
        a.set_title(title, fontsize=8)
    axes[0].legend(fontsize=7, loc="lower right")
    return axes


def _pair_bars(frame, effect, conds_by_size, paper_keys, ax, title, ylabel="window AP (%), test half"):
    axes = _axes(1, ax, (8, 3.6))
    a = axes[0]
    x, ticks, labels, paper_drawn = 0, [], [], False
    for size, conds in conds_by_size.items():
        for init in ("imagenet", "scratch"):
            d = frame[(frame["effect"] == effect) & (frame["size"] == size) & (frame["init"] == init)]
            if d.empty:
                continue
            st = INIT_STYLE[init]
            for j, c in enumerate(conds):
                v = 100 * d.loc[d["condition"] == c, "ap"]
                a.bar(x, v.mean(), yerr=v.std(), capsize=3, color=st["color"],
                      alpha=0.45 if j == 0 else 0.9, edgecolor="k", linewidth=0.5,
                      error_kw=dict(ecolor="0.25", elinewidth=1.2))
                ticks.append(x)
                labels.append(f"{c}\n{init}")
                if init == "imagenet":
                    p = _paper(paper_keys[size][j])
                    if isinstance(p, Real):
                        a.scatter([x], [p], **PAPER_STYLE)
                        paper_drawn = True
                x += 1
            x += 0.5
        a.text(x - 2.75, 101, "x".join(map(str, FACES[size])), fontsize=8, ha="center")
        x += 1
    a.set_xticks(ticks, labels, fontsize=7)
    a.set_ylim(0, 105)
    a.set_ylabel(ylabel)
    a.set_title(title, fontsize=9)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(color=INIT_STYLE[i]["color"], label=INIT_STYLE[i]["label"]) for i in INIT_STYLE]
    handles.append(Line2D([], [], color="0.25", marker="_", ms=8, lw=1.2, label="± seed std"))
    if paper_drawn:
        handles.append(Line2D([], [], ls="", marker="D", color="tab:orange", markeredgecolor="k",
                              label="paper (WIDER-style AP)"))
    a.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return axes


def fig5_foveal(frame: pd.DataFrame, ax=None):
    """Fig. 5's layout: the foveal template (s2+s3+s4, the paper's res4+res3+res2) beside the
    same RF without its high-resolution parts (s4 only, the paper's res4), per face size and
    init; the paper's AP as orange diamonds."""
    conds = {s: ("s4", "s2+s3+s4") for s in ("small", "large")}
    keys = {s: (f"study.foveal.{s}.last_only", f"study.foveal.{s}.foveal") for s in conds}
    return _pair_bars(frame, "foveal", conds, keys, ax,
                      "Fig. 5: foveal descriptor (s2+s3+s4) vs s4 only (RF 219 px)")


def fig7_resolution(frame: pd.DataFrame, ax=None):
    """Fig. 7's layout: 25x20 faces at 1x vs 2x, 250x200 faces at 1x vs 0.5x (the template
    s2+s3+s4), per init; the paper's AP as orange diamonds."""
    conds = {"small": ("1x", "2x"), "large": ("1x", "0.5x")}
    keys = {s: tuple(f"study.resolution.{s}.{c}" for c in cs) for s, cs in conds.items()}
    return _pair_bars(frame, "resolution", conds, keys, ax,
                      "Fig. 7: template resolution (same faces, same network)")


def plot_curves(curves: pd.DataFrame, ax=None):
    """Training curves: running AP of the training scores (mean over seeds) per condition,
    and train AP of seed 0 (dots), one panel per size x init — has train AP plateaued?"""
    axes = _axes(4, ax, (14, 3.2))
    panels = [(s, i) for s in ("small", "large") for i in ("imagenet", "scratch")]
    for a, (size, init) in zip(axes, panels):
        d = curves[(curves["size"] == size) & (curves["init"] == init)]
        for cond, g in d.groupby("condition", sort=False):
            m = g.groupby("step")["running_ap"].mean().rolling(5, min_periods=1).mean()
            line, = a.plot(m.index, 100 * m.to_numpy(), lw=1, label=cond)
            t = g.dropna(subset=["train_ap"])
            a.plot(t["step"], 100 * t["train_ap"], "o", ms=3, color=line.get_color())
        a.set_title(f"{'x'.join(map(str, FACES[size]))}, {init}", fontsize=8)
        a.set_xlabel("step")
        a.set_ylim(40, 101)
    axes[0].set_ylabel("train AP (%)")
    axes[0].legend(fontsize=6)
    return axes
