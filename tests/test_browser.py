"""The threshold explorers in a real browser: JupyterLab (from this venv) driven by headless
Chromium through selenium.

For each chapter with an explorer (07 HR detector, 06 evaluation), in quick mode: open the
notebook, Run > Run All Cells, wait for every cell and an idle kernel, then

* move the score slider with the keyboard (arrow keys on the focused handle) and require
  the drawn image (its ``src``) and the detection-count line to change within
  ``REDRAW_S`` seconds (07 also unticks "B templates": the count must change);
* require no "Error displaying widget" on the page, no description cut short, the static
  snapshot hidden while the live widget is there, and no SEVERE entry in the browser's
  console log;
* save the notebook, reopen a copy without running it (what a student sees the next day,
  widget state not saved) and require the snapshot image to be shown;
* save screenshots to ``build/browser/<notebook>.png`` and ``<notebook>_reopened.png``.

Needs Debian's ``chromium`` and ``chromium-driver`` (skips with the install command without
them). About 6 minutes on 2 loaded CPU cores, nearly all of it the notebooks' own cells
(07's Run All about 3.5 minutes with a cold detection cache, 06's about 1.5); a slider move
redraws in about a second. ``TINYLIB_BROWSER_NOTEBOOKS`` (comma-separated paths) runs other
notebooks; the screenshots go to the repository's ``build/browser/`` (for people to look at),
not to the test session's temporary build folder.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
INSTALL = "sudo apt-get install -y chromium chromium-driver"
SHOTS = REPO / "build" / "browser"
# the chapters with an explorer; TINYLIB_BROWSER_NOTEBOOKS (comma-separated paths) overrides
NOTEBOOKS = [Path(p) for p in os.environ.get("TINYLIB_BROWSER_NOTEBOOKS", "").split(",") if p] or [
    REPO / "notebooks" / "07_hr_detector.ipynb", REPO / "notebooks" / "06_evaluation.ipynb"]
RUN_S = int(os.environ.get("TINYLIB_BROWSER_RUN_TIMEOUT", "900"))  # Run All, per notebook
REDRAW_S = 20  # a slider move must redraw within this
START_S = 90  # the server must answer within this


def _require_browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not found; install them with: {INSTALL}")
    pytest.importorskip("selenium", reason="selenium missing: pip install -e '.[dev]'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


# ------------------------------------------------------------------------------ server
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a free port, its root a temp folder holding copies of the
    chapters; private config/settings/runtime folders (no user settings leak in, no news
    pop-up). Yields ``(base_url, token, root)``; shut down at teardown."""
    _require_browser()
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    for path in NOTEBOOKS:
        shutil.copy(path, root)
    settings = base / "settings"
    _write_json(settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
                {"fetchNews": "false", "checkForUpdates": False})
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, TINYLIB_QUICK="1", JUPYTER_CONFIG_DIR=str(base / "config"),
               JUPYTER_DATA_DIR=str(base / "data"), JUPYTER_RUNTIME_DIR=str(base / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"), IPYTHONDIR=str(base / "ipython"))
    env.pop("TINYLIB_NOTEBOOK", None)  # TINYLIB_DATA is passed through when set
    log = open(base / "lab.log", "w")  # noqa: SIM115 (closed at teardown)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers/CI often run as root
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({proc.returncode}): {(base / 'lab.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not answer on {url} within {START_S} s") from None
                time.sleep(0.5)
        yield url, token, root
    finally:
        try:  # the server stops its kernels on the way out
            req = urllib.request.Request(f"{url}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(req, timeout=10).close()
            proc.wait(timeout=30)
        except Exception:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its kernels
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def driver(lab):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1100", "--hide-scrollbars"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_script_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()


# ------------------------------------------------------------------------------ helpers
_CELLS_JS = """
const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!w || !w.content || !w.sessionContext || !w.context.isReady) return null;
const cells = w.content.widgets.filter(c => c.model.type === 'code');
const errors = [];
for (const c of cells) for (const o of c.model.outputs.toJSON())
  if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue);
const k = w.sessionContext.session && w.sessionContext.session.kernel;
return {path: w.context.path, n: cells.length,
        done: cells.filter(c => c.model.executionCount !== null).length,
        running: cells.filter(c => (c.node.querySelector('.jp-InputPrompt') || {}).textContent
                                   && c.node.querySelector('.jp-InputPrompt').textContent.includes('*')).length,
        kernel: k ? k.status : null, errors: errors};
"""


def _wait(what: str, timeout: float, poll, interval: float = 0.5):
    """Call ``poll()`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = poll()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def _open(driver, lab, path: str):
    url, token, _ = lab
    driver.get(f"{url}/lab/tree/{path}?reset&token={token}")  # reset: no tabs of earlier tests
    _wait(f"{path} open in JupyterLab", 120,
          lambda: (driver.execute_script(_CELLS_JS) or {}).get("path") == path)
    driver.execute_script("window.jupyterapp.shell.collapseLeft();")  # room for the notebook


def _menu(driver, top: str, item: str):
    """Click a menu-bar entry and then an item of its menu (Run > Run All Cells)."""
    from selenium.webdriver.common.by import By

    bar = _wait(f"menu {top!r}", 30, lambda: [e for e in driver.find_elements(
        By.CSS_SELECTOR, ".lm-MenuBar-itemLabel") if e.text.strip() == top])
    bar[0].click()
    entry = _wait(f"menu item {item!r}", 10, lambda: [e for e in driver.find_elements(
        By.CSS_SELECTOR, ".lm-Menu-itemLabel") if e.text.strip() == item and e.is_displayed()])
    entry[0].click()


def _run_all(driver, path: str):
    _wait("a kernel", 120, lambda: (driver.execute_script(_CELLS_JS) or {}).get("kernel") in ("idle", "busy"))
    _menu(driver, "Run", "Run All Cells")

    def finished():
        st = driver.execute_script(_CELLS_JS)
        if st and st["errors"]:
            pytest.fail(f"{path}: a cell failed in JupyterLab: {st['errors'][0]}")
        ok = st and st["done"] == st["n"] and not st["running"] and st["kernel"] == "idle"
        return st if ok else None

    time.sleep(2)  # let the kernel go busy first
    return _wait(f"{path}: all cells run and the kernel idle", RUN_S, finished, interval=2)


def _severe(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _panel(driver):
    """The current notebook's node (other tabs stay in the page, hidden)."""
    return driver.execute_script("return window.jupyterapp.shell.currentWidget.node;")


def _explorer(driver):
    from selenium.webdriver.common.by import By

    def sliders():  # the explorers with sliders (chapter 07 also has a photo-upload one)
        return [b for b in _panel(driver).find_elements(By.CSS_SELECTOR, ".tinylib-live")
                if b.find_elements(By.CSS_SELECTOR, ".widget-slider")]

    boxes = _wait("the live explorer widget (.tinylib-live with sliders)", 60, sliders)
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", boxes[-1])
    return boxes[-1]  # each chapter has one: its last


def _view_state(box) -> tuple[str, str]:
    """(image src, status text) of an explorer."""
    from selenium.webdriver.common.by import By

    img = box.find_element(By.CSS_SELECTOR, ".widget-image")
    status = [e.text for e in box.find_elements(By.CSS_SELECTOR, ".widget-html") if "detections" in e.text]
    assert status, "no detection-count line in the explorer"
    return img.get_attribute("src"), status[0]


def _slider(box, label: str):
    """The slider whose description starts with ``label``: (handle, readout)."""
    from selenium.webdriver.common.by import By

    for s in box.find_elements(By.CSS_SELECTOR, ".widget-slider"):
        if s.find_element(By.CSS_SELECTOR, ".widget-label").text.startswith(label):
            return (s.find_element(By.CSS_SELECTOR, ".noUi-handle"),
                    s.find_element(By.CSS_SELECTOR, ".widget-readout"))
    raise AssertionError(f"no slider labelled {label!r}")


def _changes(box, before, what: str):
    def changed():
        now = _view_state(box)
        return now if now[0] != before[0] and now[1] != before[1] else None

    return _wait(f"{what}: the image and the detection count to change", REDRAW_S, changed, 0.25)


def _labels(driver, box) -> dict[str, bool]:
    """Every visible description/label of the explorer -> True when its text is cut."""
    return dict(driver.execute_script("""
      return [...arguments[0].querySelectorAll('.widget-label, .widget-label-basic span')]
        .filter(e => e.offsetParent !== null && e.textContent.trim())
        .map(e => [e.textContent.trim(), e.scrollWidth > e.clientWidth + 1]);""", box))


def _shot(driver, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


# ------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("name", [p.stem for p in NOTEBOOKS])
def test_explorer_in_jupyterlab(lab, driver, name):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _, _, root = lab
    driver.get_log("browser")  # start from an empty console log
    t0 = time.monotonic()
    _open(driver, lab, f"{name}.ipynb")
    _run_all(driver, f"{name}.ipynb")
    run_s = time.monotonic() - t0
    box = _explorer(driver)
    before = _view_state(box)
    assert before[0], "the explorer's image has no src"

    handle, readout = _slider(box, "score")
    old = readout.text
    handle.click()
    t_move = time.monotonic()
    key = Keys.ARROW_LEFT if float(old) > 0.5 else Keys.ARROW_RIGHT  # 07's opens near the top
    for _ in range(20):  # keyboard: 20 steps on the focused handle, away from the nearer end
        handle.send_keys(key)
    after = _changes(box, before, "score slider moved")
    redraw_s = time.monotonic() - t_move
    assert readout.text != old, "the readout did not follow the slider"
    if name.startswith("07"):
        use_b = [c for c in box.find_elements(By.CSS_SELECTOR, ".widget-checkbox")
                 if c.text.startswith("B templates")]
        assert use_b, "no 'B templates' checkbox"
        use_b[0].find_element(By.TAG_NAME, "input").click()
        _changes(box, after, "B templates unticked")
        assert "pyramid levels:" in _labels(driver, box)
    else:  # 06: pre-NMS candidates, so the NMS slider has something to suppress
        nms, _ = _slider(box, "NMS")
        nms.click()
        for _ in range(4):  # 0.30 -> 0.50
            nms.send_keys(Keys.ARROW_RIGHT)
        _changes(box, after, "NMS slider moved")

    assert "Error displaying widget" not in driver.find_element(By.TAG_NAME, "body").text
    labels = _labels(driver, box)
    assert any(t.startswith("score") for t in labels), f"no slider description found: {labels}"
    assert not any(labels.values()), f"labels cut short: {[t for t, cut in labels.items() if cut]}"
    snapshots = _panel(driver).find_elements(By.CSS_SELECTOR, ".tinylib-static")
    assert snapshots and not any(s.is_displayed() for s in snapshots), \
        "the static snapshot should be hidden while the live explorer is shown"
    _shot(driver, name)
    severe = _severe(driver)
    assert not severe, "SEVERE in the browser console:\n" + "\n".join(severe)

    # save, then reopen a copy without running it: the snapshot must show
    driver.execute_script("return window.jupyterapp.commands.execute('docmanager:save');")
    _wait("the notebook saved", 60, lambda: driver.execute_script(
        "return !window.jupyterapp.shell.currentWidget.context.model.dirty;"))
    shutil.copy(root / f"{name}.ipynb", root / f"{name}_reopened.ipynb")
    _open(driver, lab, f"{name}_reopened.ipynb")
    img = _wait("the snapshot image of the reopened notebook", 60, lambda: [
        e for e in _panel(driver).find_elements(By.CSS_SELECTOR, ".tinylib-static img")
        if e.is_displayed() and driver.execute_script("return arguments[0].naturalWidth;", e) > 100])
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", img[-1])
    assert not _panel(driver).find_elements(By.CSS_SELECTOR, ".tinylib-live")
    # once the widget manager has given up on the model, its error line becomes our hint
    errors = _wait("the widget renderer's verdict on the missing model", 120, lambda: driver.execute_script("""
      return [...arguments[0].querySelectorAll('.jp-OutputArea-output.jupyter-widgets')]
        .filter(e => e.textContent.includes('model not found'))
        .map(e => [getComputedStyle(e).fontSize, getComputedStyle(e, '::after').content]);""",
                                                                                    _panel(driver)))
    assert all(size == "0px" and "run the cell" in hint for size, hint in errors), errors
    _shot(driver, f"{name}_reopened")
    print(f"{name}: Run All {run_s:.0f} s, slider redraw {redraw_s:.1f} s")
