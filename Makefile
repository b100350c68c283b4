# One command each: `make study` sets up and runs the default study, `make test` sets up and
# runs the tests. Both create .venv on first use and reinstall when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Snakemake's --cores: all of the machine's (more only oversubscribes one-thread train jobs:
# bench/README.md, 239 s with --cores 8 against 194 s with --cores 2 on 2 cores).
CORES ?= all

.PHONY: setup study test lint bench perf clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

study: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" snakemake --cores $(CORES)

test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" python -m pytest

lint: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" python -m pytest tests/workflow/test_lint.py

bench: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" python bench/study_wall.py

# The study against the plain loop, throughput, peak fraction, imports, dry run, no-op rerun,
# memory: bench/perf.py runs the five benchmarks of bench/README.md in one table.
perf: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" python bench/perf.py

clean:
	rm -rf results logs checkpoints .snakemake
