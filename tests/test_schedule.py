"""The run tools' task scheduler (tools/_schedule.py): order by inputs, skip what is done, a
failure fails what waits on it and never stops the workers, log names safe for any task name."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def schedule():
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import _schedule
    finally:
        sys.path.remove(str(REPO / "tools"))
    return _schedule


def _task(name, done: Path, after=(), code="pass"):
    return {"name": name, "done": done, "after": list(after),
            "cmd": [sys.executable, "-c", f"{code}\nopen({str(done)!r}, 'w').write('ok')"]}


def test_tasks_run_in_dependency_order_and_failures_propagate(schedule, tmp_path):
    order = tmp_path / "order.txt"
    log = f"open({str(order)!r}, 'a').write"
    todo = [
        _task("second", tmp_path / "b", after=["first"], code=f"{log}('b')"),
        _task("first", tmp_path / "a", code=f"{log}('a')"),
        _task("tta 0.5x/1x/2x+flip", tmp_path / "c", after=["second"], code=f"{log}('c')"),
        {"name": "broken", "done": tmp_path / "never", "after": [], "cmd": [str(tmp_path / "no-such-program")]},
        _task("after broken", tmp_path / "d", after=["broken"]),
        _task("exits 1", tmp_path / "e", code="raise SystemExit(1)"),
    ]
    (tmp_path / "skipped").write_text("done before")
    todo.append({"name": "done already", "done": tmp_path / "skipped", "after": [], "cmd": ["false"]})
    failed = schedule.run_tasks(todo, tmp_path / "logs", workers=2)
    assert order.read_text() == "abc"
    assert sorted(failed) == ["after broken", "broken", "exits 1"]
    assert (tmp_path / "logs" / schedule.log_name("tta 0.5x/1x/2x+flip")).is_file()
    assert schedule.log_name("tta 0.5x/1x/2x+flip") == "tta_0.5x_1x_2x+flip.log"
    assert (tmp_path / "skipped").read_text() == "done before"
