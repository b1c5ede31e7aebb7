"""The survey's small-object toolbox, measured (issue #13, chapter 10): each technique switched
on alone against one baseline detector, with one budget and two seeds, on the real WIDER photos.

The detector and budget are ``configs/toolbox_frcnn_cpu.yaml``: one trained detector to start
from -- chapter 08's best, Faster R-CNN-FPN over ResNet-50 at x0.25 width from the WIDER-32
tiny-image pre-training, 2,500 steps (:data:`START_RECIPE`; its AP is in ``bh_wider_runs``) --
then 500 more steps of 4 crops of 256 px on the 1,239 real WIDER train photos, the baseline as
it was trained, each technique with the technique switched on; the seeds (0, 1) are those of
the 500 steps. Training every run from the backbone for 1,000 steps gave a baseline far too
weak to measure anything on, and 2,500 steps each did not fit two CPU cores. A technique that adds parameters
(the SSH module; the single level's RPN head for 20 anchors) starts them fresh in the 500 steps,
where the rest of the detector is trained: the table says so. :data:`TECHNIQUES` holds, per
technique, the recipe overrides that switch it on (:func:`variant_recipe`), the survey's claim
(``../shared/papers/003_...``), and its kind:

* ``train`` -- changes only the training data or losses (copy-paste + oversampling, Scale
  Match, S3FD-style anchor matching, SNIP ranges): the detector and its inference are the
  baseline's;
* ``model`` -- changes the network (one stride-8 level instead of the pyramid, the SSH context
  module): training *and* inference cost change;
* ``test`` -- test-time pyramid and flipping on the baseline's own weights (no training).

Scores (:func:`collect_toolbox`): ``train`` and ``model`` runs on the whole **WIDER val subset
(374 images)**, official protocol + ``le20`` (hard faces of at most 20 px); ``test`` settings on
an evenly spread 100 of those images, against the baseline's plain 1x pass on the same images
(``tta_1x``), because a 0.5x/1x/2x+flip pass costs 10.5 plain passes.

Costs: ``train_cost`` is the run's seconds per training step over the baseline's (same
machine, runs two at a time; ~10% noise); ``test_cost`` is seconds per val image over the
baseline's. ``cost_ratio`` is the cost the technique adds where it acts: ``train_cost`` for a
``train`` technique, ``test_cost`` for ``model`` and ``test`` ones (they are paid at every
inference).

:func:`toolbox_table` is the chapter's table: per technique, mean AP over seeds, the gain over
the baseline and whether it lies outside the seed spread (the rule of
:func:`tinylib.compare.bottom_heavy.outside_spread`), the costs and the survey's claim;
:func:`verdict_table` puts it in words, one line per technique. The measured table ships as
``tinylib/weights/toolbox_runs.csv`` (``tools/train_toolbox.py`` writes it) beside its
provenance, and :func:`load_toolbox` reads both through :mod:`tinylib.measured`. It is
*legacy*: measured before the tuning/test split of the val subset existed, on the whole subset
(tuning half included), which its provenance says.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .. import measured
from ..boxes import sqrt_area
from ..engine.runs import read_metrics, tta_result_path
from ..papers import SURVEY_CLAIMS
from .bottom_heavy import METRICS, outside_spread

__all__ = ["TECHNIQUES", "RESULT_FILE", "RESULT_TABLE", "BASE_RECIPE", "START_RECIPE", "variant_recipe",
           "tta_result_path", "sample_stats", "binned_share", "collect_toolbox", "headline_half", "toolbox_table",
           "verdict_table", "fmt_gain", "gains_text", "load_toolbox"]

#: the baseline recipe of every toolbox run (500 steps on from the start detector)
BASE_RECIPE = "configs/toolbox_frcnn_cpu.yaml"
#: the start detector's recipe (chapter 08's, from the WIDER-32 backbone, seed 0)
START_RECIPE = "configs/frcnn_resnet50_wider_cpu.yaml"
#: the shipped table of measured runs
RESULT_FILE = "toolbox_runs.csv"
#: its :mod:`tinylib.measured` name
RESULT_TABLE = RESULT_FILE.removesuffix(".csv")
#: evenly spread val images the test-time settings are scored on
TTA_IMAGES = 100

#: technique -> label, kind (train | model | test), recipe overrides (train/model) or test-time
#: setting (a :data:`tinylib.engine.tta.TTA_SETTINGS` name) and the issue's item; the survey's
#: claim for each is :data:`tinylib.papers.SURVEY_CLAIMS` (scorecard keys ``toolbox.<technique>.*``)
TECHNIQUES: dict[str, dict] = {
    "copy_paste": {
        "label": "copy-paste + oversampling", "kind": "train", "item": 1,
        "overrides": {"data": {"copy_paste": {"count": [1, 3], "sizes": [6.0, 20.0], "p": 0.5},
                               "oversample": 1.0}}},
    "scale_match": {
        "label": "Scale Match to TinyPerson's sizes (18 +- 17 px)", "kind": "train", "item": 2,
        "overrides": {"data": {"scale_match": {"mean": 18.0, "std": 17.4}}}},
    "anchor_matching": {
        "label": "S3FD scale-compensation anchor matching", "kind": "train", "item": 3,
        "overrides": {"model": {"rpn_matching": "s3fd"}}},
    "snip": {
        "label": "SNIP valid ranges per scale", "kind": "train", "item": 4,
        "overrides": {"data": {"snip": {0.5: [16.0, 256.0], 1.0: [6.0, 256.0], 2.0: [6.0, 128.0]}}}},
    "single_level": {
        "label": "one stride-8 level (no pyramid)", "kind": "model", "item": 5,
        "overrides": {"model": {"levels": "single"}}},
    "ssh_context": {
        "label": "SSH context module", "kind": "model", "item": 5,
        "overrides": {"model": {"context_module": "ssh"}}},
    "tta_flip": {"label": "test: 1x + flip", "kind": "test", "item": 6, "tta": "1x+flip"},
    "tta_1x2x": {"label": "test: 1x + 2x", "kind": "test", "item": 6, "tta": "1x+2x"},
    "tta_pyramid": {"label": "test: 0.5x / 1x / 2x", "kind": "test", "item": 6, "tta": "0.5x/1x/2x"},
    "tta_pyramid_flip": {"label": "test: 0.5x / 1x / 2x + flip", "kind": "test", "item": 6,
                         "tta": "0.5x/1x/2x+flip"},
}


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def variant_recipe(base: dict, technique: str) -> dict:
    """The baseline recipe ``base`` with ``technique``'s overrides merged in (``baseline`` and
    ``test`` techniques: the baseline itself), named ``<base name>_<technique>``."""
    if technique != "baseline" and technique not in TECHNIQUES:
        raise KeyError(f"unknown technique {technique!r}; known: baseline, {', '.join(TECHNIQUES)}")
    over = TECHNIQUES.get(technique, {}).get("overrides", {})
    out = _merge(base, over)
    out["name"] = f"{base.get('name', 'toolbox')}_{technique}"
    return out


def sample_stats(dataset, n: int = 100) -> dict:
    """What a training set's samples hold (a recipe's crops, :func:`tinylib.frcnn.train.build_train_set`),
    over its first ``n`` samples: ``crops``, per crop ``faces`` (kept), ``ignored`` and
    ``pasted`` boxes, and over the kept faces their ``median_px`` size (``sqrt(w h)``) and
    ``share_le20`` -- how a technique changes the training distribution."""
    kept, ignored, pasted = [], 0, 0
    n = min(int(n), len(dataset))
    for i in range(n):
        _, t = dataset[i]
        ign = np.asarray(t.get("ignore", np.zeros(len(t["boxes"]), bool)), bool)
        kept.append(sqrt_area(np.asarray(t["boxes"], np.float64).reshape(-1, 4))[~ign])
        ignored += int(ign.sum())
        pasted += int(np.asarray(t.get("pasted", []), bool).sum())
    sizes = np.concatenate(kept) if kept else np.zeros(0)
    return {"crops": n, "faces": len(sizes) / max(n, 1), "ignored": ignored / max(n, 1),
            "pasted": pasted / max(n, 1), "median_px": float(np.median(sizes)) if len(sizes) else float("nan"),
            "share_le20": float((sizes <= 20).mean()) if len(sizes) else float("nan")}


def binned_share(share: pd.Series, faces: pd.Series, lo: float = 0.0, hi: float = float("inf")) -> float:
    """The share over all faces of ``lo <= size < hi`` px of a per-bin share (e.g. the anchor
    recall of :func:`tinylib.analysis.anchors.recall_by_size`, whose bins are labelled
    ``"8-12"`` / ``">64"``): the bins whose lower edge lies in ``[lo, hi)``, weighted by their
    ``faces``; NaN when they hold no face."""
    lower = np.array([float(str(b).lstrip(">").split("-")[0]) for b in share.index])
    n = np.asarray(faces.reindex(share.index), np.float64)
    sel = (lower >= lo) & (lower < hi) & (n > 0)
    if not sel.any():
        return float("nan")
    return float((np.asarray(share, np.float64)[sel] * n[sel]).sum() / n[sel].sum())


def _seconds_per_step(run: Path) -> float:
    h = pd.read_csv(run / "history.csv", usecols=["step", "seconds"])
    d = np.diff(h["seconds"].to_numpy())
    d = d[d > 0]  # a resumed run restarts its clock
    return float(np.median(d)) if len(d) else float("nan")


def _rows(d: dict, **extra) -> list[dict]:
    """A scoring's rows: the photos it was scored on (``half`` ``"all"``) and, when the file
    has them, each half of the tuning/test split apart (``"tuning"``, ``"test"``)."""
    per_image = float(d["eval_seconds"]) / int(d["images"])
    out = [{**extra, "half": "all", "images": int(d["images"]), **{m: float(d[m]) for m in METRICS},
            "seconds_per_image": per_image}]
    for half, v in d.get("halves", {}).items():
        out.append({**extra, "half": half, "images": int(v["images"]), **{m: float(v[m]) for m in METRICS},
                    "seconds_per_image": per_image})
    return out


def collect_toolbox(out_dir) -> pd.DataFrame:
    """Rows per scoring in ``out_dir`` (``tools/train_toolbox.py``'s run folders
    ``<technique>_s<seed>``): ``technique, seed, half, images, easy, medium, hard, le20,
    seconds_per_image, seconds_per_step, reference`` -- ``half``: ``all`` (every photo scored:
    the whole subset, or the test-time settings' evenly spread sample) and ``tuning`` /
    ``test`` (those photos of each half of the split); ``reference`` names the baseline
    scoring it is compared with (``baseline``: the baseline's full scoring; ``tta_1x``: its
    plain pass on the test-time settings' images)."""
    rows = []
    for m in sorted(Path(out_dir).glob("*_s*/metrics.json")):
        tech, _, seed = m.parent.name.rpartition("_s")
        if not seed.isdigit() or (tech != "baseline" and tech not in TECHNIQUES):
            continue
        rows += _rows(read_metrics(m), technique=tech, seed=int(seed),
                      seconds_per_step=_seconds_per_step(m.parent), reference="baseline")
    by_setting = {t["tta"]: name for name, t in TECHNIQUES.items() if t["kind"] == "test"}
    for f in sorted(Path(out_dir).glob("baseline_s*/tta_*.json")):
        d = read_metrics(f)
        tech = "tta_1x" if d["tta"] == "1x" else by_setting.get(d["tta"])
        if tech is None:
            continue
        rows += _rows(d, technique=tech, seed=int(f.parent.name.rpartition("_s")[2]),
                      seconds_per_step=float("nan"), reference="tta_1x")
    cols = ["technique", "seed", "half", "images", *METRICS, "seconds_per_image", "seconds_per_step", "reference"]
    return pd.DataFrame(rows, columns=cols)


def headline_half(runs) -> str | None:
    """The half a runs table's verdicts are read on: ``"test"`` when it has test-half rows,
    else ``None`` (a legacy table without the column: every row is on the whole subset)."""
    runs = getattr(runs, "frame", runs)
    if "half" in runs.columns and (runs["half"] == "test").any():
        return "test"
    return None


def toolbox_table(runs: pd.DataFrame, metrics=METRICS, half: str | None = "headline") -> pd.DataFrame:
    """The chapter's table (module doc), one row per technique of :data:`TECHNIQUES` that has
    runs, in their order: ``technique, label, kind, seeds, <m>`` (mean over seeds),
    ``<m>_gain`` (minus the reference's mean over the same seeds), ``<m>_spread`` (the larger
    max - min over seeds of the two), ``<m>_outside`` (the gain lies outside it),
    ``<m>_verdict`` (``win`` / ``loss`` outside the spread, else ``inside the spread``),
    ``train_cost, test_cost, cost_ratio, images, survey``. ``runs`` may be the
    :class:`tinylib.measured.Table` of :func:`load_toolbox` (its ``frame`` is used). ``half``:
    which rows of a table with a ``half`` column (``"headline"``: :func:`headline_half`, the
    test half; ``"all"``, ``"tuning"``, ``"test"``); a legacy table has one row per scoring."""
    runs = getattr(runs, "frame", runs)
    if half == "headline":
        half = headline_half(runs)
    if "half" in runs.columns:
        runs = runs[runs["half"] == (half or "all")]
    if runs.empty:
        raise ValueError("no toolbox runs to tabulate")
    ref_rows = {name: runs[runs["technique"] == name].set_index("seed") for name in ("baseline", "tta_1x")}
    rows = []
    for name, t in TECHNIQUES.items():
        r = runs[runs["technique"] == name].set_index("seed")
        ref = ref_rows["tta_1x" if t["kind"] == "test" else "baseline"]
        seeds = sorted(set(r.index) & set(ref.index))
        if not seeds:
            continue
        a, b = r.loc[seeds], ref.loc[seeds]
        row = {"technique": name, "label": t["label"], "kind": t["kind"], "seeds": len(seeds)}
        for m in metrics:
            gain = float(a[m].mean() - b[m].mean())
            spread = float(max(np.ptp(a[m].to_numpy()), np.ptp(b[m].to_numpy())))
            out = outside_spread(gain, spread, len(seeds))
            row.update({m: float(a[m].mean()), f"{m}_gain": gain, f"{m}_spread": spread, f"{m}_outside": out,
                        f"{m}_verdict": ("win" if gain > 0 else "loss") if out else "inside the spread"})
        test_cost = float(a["seconds_per_image"].mean() / b["seconds_per_image"].mean())
        train_cost = (float(a["seconds_per_step"].mean() / b["seconds_per_step"].mean())
                      if t["kind"] != "test" else 1.0)
        row.update({"train_cost": train_cost, "test_cost": test_cost,
                    "cost_ratio": train_cost if t["kind"] == "train" else test_cost,
                    "images": int(a["images"].iloc[0]), "survey": SURVEY_CLAIMS[name][1]})
        rows.append(row)
    return pd.DataFrame(rows)


def fmt_gain(x: float, digits: int = 3) -> str:
    """A gain as text: ``+0.045`` / ``\u22120.056`` (a true minus) / ``0.000`` (no ``-0.000``)."""
    x = round(float(x), digits) + 0.0
    return f"{'+' if x > 0 else chr(0x2212) if x < 0 else ''}{abs(x):.{digits}f}"


def gains_text(table: pd.DataFrame, technique: str, metrics=("hard", "le20")) -> str:
    """``"hard +0.045, ≤ 20 px +0.050"``: a technique's gains in :func:`toolbox_table`."""
    row = table.set_index("technique").loc[technique]
    return ", ".join(f"{'≤ 20 px' if m == 'le20' else m} {fmt_gain(row[f'{m}_gain'])}" for m in metrics)


def verdict_table(table: pd.DataFrame, metrics=("hard", "le20")) -> pd.DataFrame:
    """:func:`toolbox_table` in words, one row per technique (index: its label): the survey's
    claim, per metric the gain as a signed number, the verdict (``win`` / ``loss`` outside the
    seed spread, ``no win (inside the spread)``), the cost (``1.05x train`` / ``5.6x test``:
    where the technique pays) and the images it was scored on."""
    rows = {}
    for _, r in table.iterrows():
        row = {"the survey says": r["survey"]}
        for m in metrics:
            row[f"{m} gain"] = fmt_gain(r[f"{m}_gain"])
            row[f"{m} verdict"] = {"win": "win", "loss": "loss"}.get(r[f"{m}_verdict"], "no win (inside the spread)")
        where = "train" if r["kind"] == "train" else "test"
        row["cost"] = f"{float(r['cost_ratio']):.2f}x {where}"
        row["images"] = int(r["images"])
        rows[r["label"]] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def load_toolbox(directory=None) -> measured.Table:
    """The shipped runs table (:data:`RESULT_TABLE`) with its provenance, a
    :class:`tinylib.measured.Table` (``.frame``: one row per scoring), from ``directory``
    (default: the folder named by ``TINYLIB_TOOLBOX_RESULTS`` -- e.g. a GPU run's, written by
    ``tools/train_toolbox.py --to DIR`` with its provenance -- else ``tinylib/weights``)."""
    directory = directory or os.environ.get("TINYLIB_TOOLBOX_RESULTS") or None
    try:
        return measured.read_table(RESULT_TABLE, directory)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc} (tools/train_toolbox.py writes it)") from None
