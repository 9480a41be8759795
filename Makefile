# Every target installs what it needs into .venv first, so each works on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# pytest-xdist: four workers on this project's 2 cores (much of a test's wall time is spent
# waiting on its own servers and subprocesses: two workers left the cores half idle), tests
# handed out as workers free up (worksteal): 114 s against 185 s with two workers by file.
# `make test PYTEST_ARGS=` runs serially.
PYTEST_ARGS ?= -n 4 --dist worksteal --durations=25

.PHONY: install run test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/livesim serve --config config/livesim.toml $(ARGS)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python benchmarks/import_bench.py
	$(BIN)/python benchmarks/fanout_bench.py --quick

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
