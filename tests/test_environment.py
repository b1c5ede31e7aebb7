"""environment.yml installs the same packages as pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert conda_python == ["python=3.11"]
    assert project["requires-python"].startswith(">=3.11")
    pinned = {_name(r): r.replace(" ", "") for r in pip_section if not r.startswith("-e")}
    wanted = {_name(r): r.replace(" ", "") for r in project["dependencies"]}
    assert pinned == wanted, "environment.yml and pyproject.toml [project.dependencies] differ"
    assert any(r.startswith("-e .[") for r in pip_section), "environment.yml must install tinylib itself"


def test_torch_pair_is_pinned():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.14.1" in deps and "torchvision==0.29.1" in deps
