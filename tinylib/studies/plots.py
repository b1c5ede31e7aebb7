"""Figures of the studies: window AP per condition, ours beside the paper's (chapters 04, 05)."""

from __future__ import annotations

from numbers import Real

import pandas as pd

from .compare import paper_value

__all__ = ["ap_bars", "PAPER_STYLE", "ERRORBAR_COLOUR"]

#: the paper's values: orange diamonds, never the black of the error bars
PAPER_STYLE = dict(marker="D", s=46, color="tab:orange", edgecolor="k", linewidths=0.6, zorder=4)
ERRORBAR_COLOUR = "0.25"
BAR_COLOURS = ("#bbb", "#37c", "#9c3", "#c73")


def ap_bars(tables: dict[str, pd.DataFrame], *, paper_prefix: str | None = None, ax=None,
            title: str = "", ylabel: str = "window AP (%)", ylim=(50, 100)):
    """Window AP of each condition of each :func:`~tinylib.studies.run_studies` table
    (``tables``: group label, e.g. ``"small"``, -> table), groups side by side: ours as bars
    (mean over seeds, in %) with the seed standard deviation as dark grey error bars, and --
    with ``paper_prefix`` -- the paper's value of ``{paper_prefix}.{group}.{condition}``
    (:mod:`tinylib.papers`, where it has a number) as an orange diamond, named "paper" in the
    legend. The axis starts at ``ylim[0]`` (said in the y label). Returns the axes."""
    import matplotlib.pyplot as plt  # matplotlib only when drawing (heavy import)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
    ticks, labels, paper_drawn = [], [], False
    x0 = 0
    for group, table in tables.items():
        xs = [x0 + j for j in range(len(table))]
        ax.bar(xs, 100 * table["ap_mean"], yerr=100 * table["ap_std"], capsize=3,
               color=[BAR_COLOURS[j % len(BAR_COLOURS)] for j in range(len(table))],
               error_kw=dict(ecolor=ERRORBAR_COLOUR, elinewidth=1.2))
        for x, cond in zip(xs, table["condition"]):
            ticks.append(x)
            labels.append(f"{group}\n{cond}")
            value = paper_value(f"{paper_prefix}.{group}.{cond}") if paper_prefix else None
            if isinstance(value, Real):
                ax.scatter([x], [value], **PAPER_STYLE)
                paper_drawn = True
        x0 += len(table) + 1
    ax.set_xticks(ticks, labels, fontsize=8)
    ax.set_ylim(*ylim)
    ax.set_ylabel(f"{ylabel} (axis starts at {ylim[0]})" if ylim[0] else ylabel)
    ax.set_title(title, fontsize=9)
    handles = [Patch(facecolor=BAR_COLOURS[0], edgecolor="none", label="ours: mean over seeds"),
               Line2D([], [], color=ERRORBAR_COLOUR, marker="_", ms=8, lw=1.2, label="ours: ± seed std")]
    if paper_drawn:
        handles.append(Line2D([], [], ls="", marker=PAPER_STYLE["marker"], color=PAPER_STYLE["color"],
                              markeredgecolor="k", label="paper"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return ax
