# tinylib workbook. The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tinylib-setup
NOTEBOOKS ?= $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
QUICK ?= 1
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

## run: execute every notebook headless (quick mode unless QUICK=0), write build/
run: setup
	$(PY) -m tinylib.notebooks run $(if $(filter 0,$(QUICK)),--full,) --out build $(NOTEBOOKS)

## test: ruff + pytest (notebooks included, quick mode)
test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check tinylib tests benchmarks tools

lab: setup
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
