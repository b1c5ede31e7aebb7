from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path

import nbformat
import numpy as np
import pytest

from tinylib import papers, scorecard

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture
def build(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYLIB_BUILD", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    "paper, ours, tol, rel, status",
    [
        (99, 99, 0, None, "reproduced"),
        (99, 100, 0, None, "differs"),
        (32.8, 33.5, None, 0.05, "reproduced"),
        (32.8, 40.0, None, 0.05, "differs"),
        (0.93, 0.925, 0.01, None, "reproduced"),
        (None, 1.0, 0.1, None, "not comparable"),
        (1.0, None, 0.1, None, "not comparable"),
        (1.0, float("nan"), 0.1, None, "not comparable"),
        (1.0, 1.0, None, None, "not comparable"),
        ("~800 of ~1000", 640, 0.1, None, "not comparable"),
    ],
)
def test_status_rule(paper, ours, tol, rel, status):
    assert scorecard.decide_status(paper, ours, tol, rel) == status


def test_record_and_collect(build, monkeypatch):
    monkeypatch.setenv("TINYLIB_NOTEBOOK", "01_object_scales")
    c = scorecard.record("scales.wider.share_le20", claim="share <= 20 px", paper=0.56,
                         ours=np.float32(0.57), unit="fraction", rel_tolerance=0.05)
    assert c.status == "reproduced" and "paper says" in c._repr_markdown_()
    # re-running the cell replaces the claim with the same key
    scorecard.record("scales.wider.share_le20", paper=0.56, ours=0.7, rel_tolerance=0.05)
    monkeypatch.setenv("TINYLIB_NOTEBOOK", "03_receptive_fields")
    scorecard.record("rf.resnet50_caffe.res3", paper=99, ours=99, unit="px", tolerance=0, note="exact")
    rows = scorecard.collect(build)
    assert [r["key"] for r in rows] == ["scales.wider.share_le20", "rf.resnet50_caffe.res3"]
    data = json.loads((build / "scorecard.json").read_text())
    assert data == rows
    assert set(data[0]) == {"notebook", "key", "claim", "paper", "ours", "unit", "status", "note",
                            "source_kind"}
    assert data[0]["status"] == "differs" and data[0]["ours"] == 0.7
    assert data[1] == {"notebook": "03_receptive_fields", "key": "rf.resnet50_caffe.res3",
                       "claim": "receptive field of res3, Caffe ResNet-50",  # from tinylib.papers
                       "paper": 99, "ours": 99, "unit": "px",
                       "status": "reproduced", "note": "exact", "source_kind": None}
    md = (build / "scorecard.md").read_text()
    assert "| `rf.resnet50_caffe.res3` |" in md and "1 reproduced, 1 differs" in md


def test_same_key_from_two_notebooks_is_an_error(build):
    scorecard.record("a.b", paper=1, ours=1, tolerance=0, notebook="x")
    scorecard.record("a.b", paper=1, ours=1, tolerance=0, notebook="y")
    with pytest.raises(ValueError, match="a.b"):
        scorecard.collect(build)


def test_bad_key_and_corrupt_part(build):
    with pytest.raises(ValueError):
        scorecard.record("has space", paper=1, ours=1)
    (build / "scorecard").mkdir(exist_ok=True)
    (build / "scorecard" / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        scorecard.collect(build)


def test_reset_forgets_one_notebook(build):
    scorecard.record("k.one", paper=1, ours=1, tolerance=0, notebook="nb1")
    scorecard.record("k.two", paper=1, ours=1, tolerance=0, notebook="nb2")
    scorecard.reset("nb1")
    assert [r["key"] for r in scorecard.load_parts()] == ["k.two"]
    assert list(scorecard.table()["key"]) == ["k.two"]


# --- scorecard keys recorded by the notebooks, collected statically ---------------------
#
# A key is the first argument of ``record(...)`` / ``record_gain(...)`` / ``gain_claim(...)``
# (and of ``record_comparison`` / ``comparison_claims(prefix, table, base, other)``, which
# record ``prefix.{base,other,gain}``; ``tinylib.studies``).
# Literal strings are taken as they are; f-strings become glob patterns in which ``*`` is one
# placeholder, standing for a value without dots, unless the placeholder's name is bound to
# literal strings or f-strings (``prefix = "a" if REAL else "b"``, ``for key, ... in
# [("a.b", ...)]``, ``for m in ["x", "y"]``) -- then each binding is an alternative (and ``*``
# too if the name is also bound to something else). Names are looked up in the cell first,
# then in the whole notebook.


def _cells(nb_path: Path) -> list[ast.Module]:
    out = []
    for cell in nbformat.read(nb_path, 4).cells:
        if cell.cell_type == "code":
            lines = [ln for ln in cell.source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
            out.append(ast.parse("\n".join(lines)))
    return out


def _patterns(node, env) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value.replace("*", "?")]
    if isinstance(node, ast.IfExp):
        return _patterns(node.body, env) + _patterns(node.orelse, env)
    if isinstance(node, ast.Name):
        return env(node.id)
    if isinstance(node, ast.JoinedStr):
        out = [""]
        for part in node.values:
            alts = [part.value] if isinstance(part, ast.Constant) else (
                env(part.value.id) if isinstance(part.value, ast.Name) else ["*"])
            out = [o + a for o in out for a in alts]
        return out
    return ["*"]


def _bindings(tree: ast.Module, env) -> dict[str, list[str]]:
    """Names bound in ``tree`` and their key patterns (names they use resolved by ``env``)."""
    found: dict[str, set[str]] = {}

    def bind(target, value):  # value None: not a literal, the name may hold anything
        if isinstance(target, ast.Name):
            found.setdefault(target.id, set()).update(["*"] if value is None else _patterns(value, env))
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                bind(t, None)

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                bind(t, node.value)
        elif isinstance(node, (ast.For, ast.comprehension)):
            if not isinstance(node.iter, (ast.List, ast.Tuple)):
                bind(node.target, None)
                continue
            for elt in node.iter.elts:
                if isinstance(node.target, ast.Tuple) and isinstance(elt, ast.Tuple):
                    for t, v in zip(node.target.elts, elt.elts):
                        bind(t, v)
                else:
                    bind(node.target, elt)
    return {k: sorted(v) for k, v in found.items()}


@cache
def _table_claims() -> dict[str, frozenset[str]]:
    """The keys a notebook records as ``record(**row, table=T)`` from a shipped table, which
    the static scan cannot read: made here by the same claim functions on the same tables."""
    from tinylib import measured, studies
    from tinylib.compare import gan_rescoring as G
    from tinylib.compare import wider_subset as C

    def keys(rows):
        return {r["key"] for r in rows}

    def frame(name):
        return measured.read_table(name).frame

    s3 = studies.read_section3()
    return {
        "04_receptive_fields": frozenset(keys(studies.section3_claims(s3, effects=("context", "foveal")))),
        "05_resolution": frozenset(keys(studies.section3_claims(s3, effects=("resolution",)))),
        "07_hr_detector": frozenset(keys(C.subset_claims(frame("wider_subset_detectors")))
                                    | keys(C.ablation_claims(frame("hr_ablation")))
                                    | keys(C.calibration_claims(frame("hr_calibration_sweep")))),
        "09_gan_detector": frozenset(keys(G.subset_claims(frame("gan_wider_subset")))
                                     | keys(G.sr_claims(frame("gan_sr")))
                                     | keys(G.ablation_claims(frame("gan_wider_ablation")))),
    }


def _records_from_tables(cells: list[ast.Module]) -> bool:
    """Whether a cell calls ``record(**row, table=...)``."""
    return any(isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", "")) == "record"
               and any(k.arg is None for k in n.keywords) and any(k.arg == "table" for k in n.keywords)
               for tree in cells for n in ast.walk(tree))


def test_table_claims_are_listed_for_every_notebook_that_records_them():
    listed = set(_table_claims())
    recording = {p.stem for p in NOTEBOOKS if _records_from_tables(_cells(p))}
    assert recording == listed, "list the claim functions of each record(**row, table=...) in _table_claims"
    assert all(_table_claims().values())


def notebook_keys(nb_path: Path) -> set[str]:
    """Glob patterns of every scorecard key ``nb_path`` can record."""
    cells = _cells(nb_path)
    everywhere: dict[str, set[str]] = {}
    for tree in cells:
        for k, v in _bindings(tree, lambda name: ["*"]).items():
            everywhere.setdefault(k, set()).update(v)

    def global_env(name):
        return sorted(everywhere.get(name, {"*"}))

    keys = set()
    for tree in cells:
        local = _bindings(tree, global_env)

        def env(name, local=local):
            return local.get(name) or global_env(name)

        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args:
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name in ("record", "record_gain", "gain_claim"):
                    keys.update(_patterns(node.args[0], env))
                elif name in ("record_comparison", "comparison_claims"):
                    conds = [c for a in node.args[2:4] for c in _patterns(a, env)] + ["gain"]
                    keys.update(f"{p}.{c}" for p in _patterns(node.args[0], env) for c in conds)
    if _records_from_tables(cells):
        keys |= _table_claims().get(nb_path.stem, frozenset())
    return keys


def globs_intersect(a: str, b: str) -> bool:
    """Whether some key matches both patterns (``*``: any run of characters other than ``.``)."""

    @cache
    def f(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            if f(i + 1, j) or (j < len(b) and b[j] not in ".*" and f(i, j + 1)):
                return True
        if j < len(b) and b[j] == "*":
            if f(i, j + 1) or (i < len(a) and a[i] not in ".*" and f(i + 1, j)):
                return True
        return i < len(a) and j < len(b) and a[i] == b[j] != "*" and f(i + 1, j + 1)

    return f(0, 0)


@pytest.mark.parametrize("a, b, hit", [
    ("a.b", "a.b", True), ("a.*", "a.b", True), ("a.*", "a.b.c", False), ("*.x", "a.*", True),
    ("eval.peers.*.synthetic.*", "eval.peers.*.wider_subset.*", False),
    ("hr.*.easy", "hr.synthetic.*", True), ("x*y.z", "xay.*", True), ("x*y.z", "xab.*", False),
])
def test_globs_intersect(a, b, hit):
    assert globs_intersect(a, b) is hit and globs_intersect(b, a) is hit


def test_notebook_keys_are_collected():
    keys = {p.stem: notebook_keys(p) for p in NOTEBOOKS}
    assert {"data.widerface.train.images", "data.fddb.faces"} <= keys["01_datasets"]
    assert {"hr.wider_subset.*", "hr.synthetic.*", "hr.selfie.faces_found"} <= keys["07_hr_detector"]
    assert "bh.table4.*.gflops" in keys["08_bottom_heavy"]
    for nb, pats in keys.items():
        assert "*" not in pats, f"{nb}: a record(...) key that cannot be read statically"


def test_no_scorecard_key_is_recorded_by_two_notebooks():
    keys = {p.stem: notebook_keys(p) for p in NOTEBOOKS}
    clashes = [(n1, k1, n2, k2) for i, (n1, ks1) in enumerate(keys.items())
               for n2, ks2 in list(keys.items())[i + 1:] for k1 in ks1 for k2 in ks2
               if globs_intersect(k1, k2)]
    assert not clashes, f"scorecard keys used by two notebooks: {clashes}"


def test_every_paper_claim_is_recorded_somewhere():
    """A claim no notebook records is stale -- except reference values printed beside ours."""
    # reference values printed beside ours: Table 2's other rows (chapter 06), Fig. 5's res5 pair
    # (the Section 3 protocol does not run it: its windows do not fit the CPU budget)
    reference_only = re.compile(r"scales\.tinyperson\..*|data\.widerface\.test\.images|eval\.table2\..*"
                                r"|study\.foveal\.small\.drop_res5")
    patterns = set().union(*(notebook_keys(p) for p in NOTEBOOKS))
    stale = [k for k in papers.CLAIMS if not reference_only.fullmatch(k)
             and not any(globs_intersect(k, p) for p in patterns)]
    assert not stale, f"paper claims no notebook records: {stale}"
