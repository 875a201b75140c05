# persona: two commands do all the set-up on a fresh machine with Python 3.11+.
#   make demo   creates .venv, installs persona, runs the end-to-end demo
#   make test   installs the test extras, runs ruff, mypy (strict) and the whole suite
#   make docs   installs the docs extras, builds the documentation site into site/
#   make notebook  re-runs docs/notebooks/*.ipynb in place, so the committed copies show outputs
#   make mutation  installs mutmut, mutation-tests the trust-critical modules (slow; not in test)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.persona-installed
TSTAMP := $(VENV)/.persona-test-installed

.PHONY: demo test lint types bench docs notebook mutation clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $@

$(TSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,demo]'
	touch $@ $(STAMP)

demo: $(STAMP)
	$(BIN)/persona demo

lint: $(TSTAMP)
	$(BIN)/ruff check src tests benchmarks tools

types: $(TSTAMP)
	$(BIN)/mypy

test: $(TSTAMP) lint types
	$(BIN)/python -m pytest

bench: $(TSTAMP)
	$(BIN)/python benchmarks/run_all.py

docs: | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[docs]'
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

notebook: $(TSTAMP)
	$(BIN)/python tools/execute_notebook.py

# TARGETS=bounding runs one target (names in tools/mutation.py); report in build/mutation/
mutation: $(TSTAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,demo,mutation]'
	$(BIN)/python tools/mutation.py $(TARGETS)

clean:
	rm -rf $(VENV) build dist site src/*.egg-info .pytest_cache .ruff_cache
