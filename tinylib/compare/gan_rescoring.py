"""The GAN detector against its own proposals, as the chapter records it: the scorecard rows of
the shipped tables (:mod:`tinylib.measured`) that ``tools/eval_gan_wider.py`` measures with
:mod:`tinylib.gan.evaluate`.

* :func:`subset_rows` -- which row of ``gan_wider_subset`` each claim family reads (the HR
  proposals alone; the best re-scored and fused variant on the tuning half);
* :func:`subset_claims` -- ``gan.wider_subset.<family>.<setting>``: the test half, the tuning
  half in the note;
* :func:`sr_claims` -- ``gan.sr.<measure>.<kind>`` of ``gan_sr`` (super-resolution quality on
  held-apart faces);
* :func:`ablation_claims` -- ``gan.ablation.<name>.hard`` of the legacy ``gan_wider_ablation``.

Each row is the arguments of ``scorecard.record`` as a dict (the chapter records them).
"""

from __future__ import annotations

import pandas as pd

from ..eval import widerface as W

__all__ = ["FAMILIES", "SR_CLAIMS", "subset_rows", "subset_claims", "sr_claims", "ablation_claims"]

#: the claim families of ``gan_wider_subset``: the row label each starts with (after ``MODEL: ``)
FAMILIES = ("proposals", "rescored", "fused")


def _tuning_hard(frame: pd.DataFrame, row: str) -> float:
    h = frame[(frame["row"] == row) & (frame["half"] == "tuning")]["hard"]
    return float(h.iloc[0]) if len(h) else float("-inf")


def subset_rows(frame: pd.DataFrame, model: str = "GAN") -> dict[str, str]:
    """Which row of ``gan_wider_subset`` (columns ``row, half, ..., chosen``) each claim
    family reads: ``"proposals"`` the HR proposals alone; ``"rescored"`` / ``"fused"`` the
    variant of ``model`` in that family (with or without box regression) with the best
    tuning-half hard AP -- a choice made on the tuning half only. A family the table lacks is
    left out."""
    rows = list(dict.fromkeys(frame["row"]))
    out = {}
    for fam in FAMILIES:
        cands = [r for r in rows if (r.startswith("proposals") if fam == "proposals"
                                     else r.startswith(f"{model}: {fam}"))]
        if cands:
            out[fam] = max(cands, key=lambda r: (_tuning_hard(frame, r), -cands.index(r)))
    return out


def subset_claims(frame: pd.DataFrame, model: str = "GAN") -> list[dict]:
    """The scorecard rows ``gan.wider_subset.<family>.<setting>`` of ``gan_wider_subset``:
    ``{"key", "ours", "claim", "note"}`` with ``ours`` the test half's AP and the tuning
    half's beside it in the note, the variant read (:func:`subset_rows`) and the one the
    table marks ``chosen`` (picked on the tuning half among all variants)."""
    chosen = frame[frame["chosen"].astype(str).str.lower().isin(("true", "1"))]["row"]
    chosen = chosen.iloc[0] if len(chosen) else "none"
    out = []
    for fam, row in subset_rows(frame, model).items():
        r = frame[frame["row"] == row].set_index("half")
        n = {h: int(r.loc[h, "images"]) for h in r.index}
        for s in W.SETTINGS:
            tun = float(r.loc["tuning", s]) if "tuning" in r.index else float("nan")
            out.append({
                "key": f"gan.wider_subset.{fam}.{s}", "ours": round(float(r.loc["test", s]), 3),
                "claim": f"{row} AP, {s}",
                "note": (f"ours: '{row}' on the WIDER val subset, test half ({n.get('test')} images); "
                         f"tuning half ({n.get('tuning')} images) {tun:.3f}; variant picked on the "
                         f"tuning half (overall choice: '{chosen}'); CPU-scale GAN; paper: full "
                         "WIDER val — not comparable")})
    return out


#: the columns of ``gan_sr`` the scorecard records, and their rounding
SR_CLAIMS = {"psnr": 2, "ssim": 3, "psnr_rgb": 2, "delta_e": 2}


def sr_claims(frame: pd.DataFrame, model: str = "GAN") -> list[dict]:
    """The scorecard rows ``gan.sr.<measure>.<kind>`` of ``gan_sr`` (columns ``kind``,
    optional ``model``, and any of :data:`SR_CLAIMS`: ``psnr``, ``ssim`` on luma,
    ``psnr_rgb``, ``delta_e``), for ``model``'s rows."""
    f = frame[frame["model"] == model] if "model" in frame else frame
    return [{"key": f"gan.sr.{q}.{r['kind']}", "ours": round(float(r[q]), nd)}
            for _, r in f.iterrows() for q, nd in SR_CLAIMS.items() if q in f and pd.notna(r[q])]


def ablation_claims(frame: pd.DataFrame) -> list[dict]:
    """The scorecard rows ``gan.ablation.<name>.hard`` of the legacy ``gan_wider_ablation``
    (first column the name, ``hard``, ``eval_set``): measured before the split, on photos of
    the whole subset (tuning half included) -- the note says so."""
    name = frame.columns[0]
    return [{"key": f"gan.ablation.{r[name]}.hard", "ours": round(float(r["hard"]), 3),
             "note": (f"ours: {r.get('eval_set', 'WIDER val subset')}, measured before the "
                      "tuning/test split (photos of the whole subset, tuning half included), "
                      "2 x 250 steps, re-scored; paper: MB-FCN proposals, full WIDER val — "
                      "not comparable")}
            for _, r in frame.iterrows()]
