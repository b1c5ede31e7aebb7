"""The task scheduler of the run tools (``tools/train_frcnn_wider.py``, ``tools/train_toolbox.py``):
subprocess tasks on ``workers`` threads, each taking the first task whose inputs are done.

A task is a dict: ``name``, ``cmd`` (argv), ``done`` (the file whose existence means done),
``after`` (names of the tasks it needs), and optionally ``resume`` (a checkpoint: when it exists,
``--resume`` is appended) and ``prepare`` (a callable ``cmd -> cmd`` run under the lock just
before the start, for inputs that are costly to compute once). A task whose ``done`` exists is
skipped; a failed task fails everything that waits on it. Logs: ``<logs>/<task>.log``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path


def log_name(task: str) -> str:
    """A task's log file name: its name with anything but letters, digits and ``.+-`` as ``_``
    (a ``/`` in a name -- ``tta 0.5x/1x/2x`` -- is not a folder)."""
    return re.sub(r"[^A-Za-z0-9.+-]", "_", task) + ".log"


def run_tasks(todo: list[dict], logs: Path, workers: int = 2, env: dict | None = None) -> list[str]:
    """Run ``todo`` (module doc); returns the names of the tasks that failed."""
    logs.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    state = {t["name"]: ("done" if Path(t["done"]).is_file() else "todo") for t in todo}
    failed: list[str] = []

    def pick():
        with lock:
            for t in todo:
                if state[t["name"]] == "todo" and all(state.get(a) == "done" for a in t["after"]):
                    state[t["name"]] = "running"
                    return t
            return None

    def fail(name):
        state[name] = "failed"
        failed.append(name)
        for tt in todo:
            if name in tt["after"] and state[tt["name"]] == "todo":
                fail(tt["name"])

    def worker():
        while True:
            t = pick()
            if t is None:
                with lock:
                    if not any(v in ("todo", "running") for v in state.values()):
                        return
                time.sleep(5)
                continue
            cmd = list(t["cmd"])
            if t.get("prepare") is not None:
                with lock:
                    cmd = t["prepare"](cmd)
            if t.get("resume") is not None and Path(t["resume"]).is_file():
                cmd.append("--resume")
            log = logs / log_name(t["name"])
            print(f"{time.strftime('%H:%M:%S')} start {t['name']}", flush=True)
            try:
                with open(log, "a") as fh:
                    rc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
            except OSError as exc:  # the task fails, the worker goes on
                print(f"{t['name']}: {exc}", flush=True)
                rc = -1
            ok = rc == 0 and Path(t["done"]).is_file()
            with lock:
                if ok:
                    state[t["name"]] = "done"
                else:
                    fail(t["name"])
            print(f"{time.strftime('%H:%M:%S')} {'done' if ok else f'FAILED (rc {rc}, see {log})'} {t['name']}",
                  flush=True)

    threads = [threading.Thread(target=worker) for _ in range(max(1, int(workers)))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return failed


def exit_status(failed: list[str]) -> int:
    """A run tool's exit status: 0, or 1 after naming the failed tasks on stderr."""
    if failed:
        print(f"failed: {failed} (their logs say why; re-run the tool to retry them)", file=sys.stderr)
        return 1
    return 0
