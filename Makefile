# tinylib workbook. The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tinylib-setup
NOTEBOOKS ?= $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
TIER ?= quick
PYTEST_ARGS ?= -n 2

.PHONY: setup run test lint lab strip check-notebooks bench clean

# Set-up is idempotent: it reinstalls only when pyproject.toml changed.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev,peers]'
	# facenet-pytorch (MTCNN peer) pins an old torch: install it without its dependencies.
	$(PY) -m pip install --quiet --no-deps 'facenet-pytorch==2.6.0'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

setup: $(STAMP)

## run: execute every notebook headless at TIER (quick: CI, seconds a chapter; cpu: a laptop,
## minutes a chapter; full: the paper's scale on a GPU machine), write build/
run: setup
	$(PY) -m tinylib.notebooks run --tier $(TIER) --out build $(NOTEBOOKS)

## test: ruff + pytest (notebooks included, quick mode)
test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check tinylib tests benchmarks tools

lab: setup  ## JupyterLab at the default tier: cpu without CUDA (minutes a chapter), full with it
	$(VENV)/bin/jupyter lab notebooks/

strip: setup
	$(PY) -m tinylib.notebooks strip

check-notebooks: setup
	$(PY) -m tinylib.notebooks check

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

## assignments: release the nbgrader assignments to build/course/ and autograde the
## instructor's solutions as a demo submission (prints the score table)
.PHONY: assignments
assignments: setup
	$(PY) -m tinylib.course demo

## reproduce: re-make one shipped measured table with the command its provenance records
## (make reproduce NAME=wider_subset_detectors); `python -m tinylib.measured list` lists them
.PHONY: reproduce
reproduce: setup
	@test -n "$(NAME)" || { echo "usage: make reproduce NAME=<table>; tables:"; $(PY) -m tinylib.measured list; exit 2; }
	$(PY) -m tinylib.measured reproduce $(NAME)
