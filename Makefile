# Set-up and everyday commands. Each target creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: run test check pytest bench bench-quick profile clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[lab]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.run-installed

## run: install Junction with JupyterLab and ipykernel, then serve the current directory
run: $(VENV)/.run-installed
	$(BIN)/junction $(ARGS)

## check: ruff and mypy, as CI runs them
check: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# Node projects the tests drive: JupyterLab's client library and playwright-core for chromium.
NODE_STAMPS := tests/browser/node_modules/.installed tests/clients/node/node_modules/.installed tests/oidc/node_modules/.installed tests/jupyterhub/node_modules/.installed tests/uploads/node/node_modules/.installed

%/node_modules/.installed: %/package-lock.json
	cd $* && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## pytest: the test suite alone, in two worker processes (most of its time is spent waiting
## on kernels, browsers and servers); TEST_WORKERS=0 runs it in this process. The schemathesis
## cases are made at collection in a way pytest-xdist's workers do not run: they run after.
TEST_WORKERS ?= 2
SERIAL_TESTS := tests/contract/test_schemathesis.py
pytest: $(VENV)/.dev-installed $(NODE_STAMPS)
ifeq ($(TEST_WORKERS),0)
	$(BIN)/python -m pytest $(ARGS)
else
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --ignore=$(SERIAL_TESTS) $(ARGS)
	$(BIN)/python -m pytest $(SERIAL_TESTS) $(ARGS)
endif

## test: install the dev extras and run the whole suite (lint, types, tests)
test: check pytest

## bench: the full benchmark against jupyter_server and jupyverse; bench-quick: under 3 minutes
bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench $(ARGS)

bench-quick: $(VENV)/.dev-installed
	$(BIN)/python -m bench --quick $(ARGS)

# A py-spy flame graph of Junction under load: build/profile/$(SCENARIO).svg
# (status, contents, listing, kernels; stream or fanout: kernel output over the v1 WebSocket).
SCENARIO ?= status
profile: $(VENV)/.dev-installed
	$(BIN)/python -m bench.profile $(SCENARIO) $(ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
