"""Prose rendered from measurements: no measured number is ever typed into a chapter.

A chapter's "we get" sentences are built in a code cell from the shipped tables
(:mod:`tinylib.measured`) or from the cell's own live result, so text and numbers cannot
drift apart::

    from tinylib.prose import md
    md("On the test half the HR detector gets hard AP **{hr:.3f}** against MTCNN's {mtcnn:.3f} "
       "({n} photos; tuning half {hr_tun:.3f}).", hr=..., mtcnn=..., n=..., hr_tun=...)

``md`` formats with :meth:`str.format` and returns an IPython ``Markdown`` object (a plain
``str`` outside IPython), so the last line of a cell displays it. ``signed`` and ``verdict``
phrase a difference and its relation to a seed spread in words.

The test ``tests/test_notebook_prose.py`` reads every markdown cell of every chapter and fails
on a number that is neither a paper value (:mod:`tinylib.papers`) nor a constant of the
text: a year, a figure/table/section/equation number, or a constant the notebook declares in
its metadata (``metadata.tinylib.text_constants``: template sizes, image counts of the data
bundle, the paper's settings) — never a measured number.
"""

from __future__ import annotations

import math


class _Text(str):
    """A str that Jupyter renders as Markdown when IPython is not importable."""

    def _repr_markdown_(self) -> str:
        return str(self)


def md(template: str, /, **values):
    """``template.format(**values)`` as Markdown for display."""
    text = template.format(**values)
    try:
        from IPython.display import Markdown
    except ImportError:  # pragma: no cover - the notebooks extra installs IPython
        return _Text(text)
    return Markdown(text)


def signed(x: float, digits: int = 3) -> str:
    """``+0.012`` / ``−0.030`` (a true minus sign), ``n/a`` for NaN or None."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    s = f"{abs(float(x)):.{digits}f}"
    return ("+" if x >= 0 else "\u2212") + s


def verdict(gain: float, spread: float) -> str:
    """``"outside the seed spread"`` when ``|gain| > spread``, else ``"inside the seed spread"``."""
    if gain is None or spread is None or math.isnan(gain) or math.isnan(spread):
        return "not judged (no spread)"
    return "outside the seed spread" if abs(gain) > spread else "inside the seed spread"


def sign_word(x: float, up: str = "helps", down: str = "hurts") -> str:
    return up if x > 0 else down if x < 0 else "changes nothing"


# ------------------------------------------------------------------ the markdown-number check
_STRIP = [
    r"```.*?```",                     # fenced code
    r"`[^`]*`",                       # inline code
    r"\$\$.*?\$\$", r"\$[^$]*\$",     # LaTeX
    r"https?://\S+",                  # addresses
    r"\]\([^)]*\)",                   # link targets
    r"<[^>]+>",                       # HTML tags
]
_REF = (r"(?:Fig(?:ure)?s?\.?|Tables?|Sec(?:tion)?s?\.?|Eqs?\.?|Eq(?:uation)?s?|chapters?|"
        r"notebooks?|§|Appendix|exercises?|Exercise|Step|step|Stage|stage|issue|#)")
_NUMBER = r"(?<![\w.\-/])(?<!\w-)[-+\u2212]?\d[\d,]*(?:\.\d+)?(?![\w.]*\d)"


def _paper_values() -> set[float]:
    """Every number written in :mod:`tinylib.papers` (claims, tables, notes)."""
    import ast
    from pathlib import Path

    from . import papers

    tree = ast.parse(Path(papers.__file__).read_text(encoding="utf-8"))
    vals: set[float] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
                vals.add(round(float(node.value), 6))
            elif isinstance(node.value, str):
                for m in __import__("re").findall(r"\d+(?:\.\d+)?", node.value):
                    vals.add(round(float(m), 6))
    return vals


def numbers_in_markdown(text: str) -> list[tuple[str, str]]:
    """``(number, context)`` of every number in markdown ``text`` that is not a reference
    (Fig. 4, Table 1, chapter 07, ...), a year, a scale or size (``2x``, ``25x20``), inside
    code, LaTeX or a link."""
    import re

    t = text
    for pat in _STRIP:
        t = re.sub(pat, " ", t, flags=re.S)
    t = re.sub(_REF + r"\s*\d+(?:[.\-\u2013]\d+)*[a-z]?(?:\s*(?:,|and|&|-|\u2013)\s*\d+[a-z]?)*",
               " ", t)
    t = re.sub(r"^\s*#+\s*\d+\s*[\u2014\-:.]", " ", t, flags=re.M)      # "# 07 — title"
    t = re.sub(r"\d+(?:\.\d+)?\s*[x\u00d7]\s*\d+(?:\.\d+)?", " ", t)     # 25x20, 250 x 200
    t = re.sub(r"(?<![\w.])\d+(?:\.\d+)?x(?![a-z])", " ", t)             # 2x, 0.5x
    out = []
    for m in re.finditer(_NUMBER, t):
        ctx = t[max(0, m.start() - 30): m.end() + 30].replace("\n", " ")
        out.append((m.group(0), ctx))
    return out


def _value(token: str) -> float:
    return float(token.replace(",", "").replace("\u2212", "-"))


def undeclared_numbers(notebook, paper_values: set[float] | None = None) -> list[str]:
    """Every number in the markdown cells of ``notebook`` (a path) that is neither a paper
    value, nor a small count (0–10), nor a year, nor declared in the notebook's
    ``metadata.tinylib.text_constants``: one line ``"cell N: NUMBER in '...context...'"``
    each (cells counted from 1, as Jupyter shows them)."""
    import json
    from pathlib import Path

    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    declared = {round(float(v), 6) for v in
                nb.get("metadata", {}).get("tinylib", {}).get("text_constants", [])}
    papers = _paper_values() if paper_values is None else paper_values
    bad = []
    for i, cell in enumerate(nb["cells"], start=1):
        if cell["cell_type"] != "markdown":
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for token, ctx in numbers_in_markdown(src):
            v = _value(token)
            a = round(abs(v), 6)
            if (a in papers or round(v, 6) in papers or a in declared
                    or (a.is_integer() and a <= 10) or (a.is_integer() and 1900 <= a <= 2030)):
                continue
            bad.append(f"cell {i}: {token} in '{ctx.strip()}'")
    return bad
