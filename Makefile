# The README's two commands: `make demo` and `make test`. Each sets up its own virtualenv first.
SHELL := /bin/bash
PYTHON ?= python3
DEFAULT_AIRFLOW_VERSION := 3.3.2
AIRFLOW_VERSION ?= $(DEFAULT_AIRFLOW_VERSION)
ifeq ($(AIRFLOW_VERSION),$(DEFAULT_AIRFLOW_VERSION))
VENV ?= .venv
else
VENV ?= .venv-airflow-$(AIRFLOW_VERSION)
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-airflow-$(AIRFLOW_VERSION)
PIP := $(BIN)/python -m pip --quiet --quiet --disable-pip-version-check

.PHONY: venv test demo lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test]"
	touch $@

## venv: create the virtualenv with Airflow $(AIRFLOW_VERSION) and the project's test extras
venv: $(STAMP)

## test: run the whole suite (unit, sandbox and end-to-end) against Airflow $(AIRFLOW_VERSION)
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## demo: run the example DAG end to end against a local Fuse sandbox (no account needed)
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

## lint: ruff check and format check
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf .venv .venv-airflow-* .demo .pytest_cache .ruff_cache *.egg-info
