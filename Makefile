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
PIP_FLAGS := --quiet --quiet --disable-pip-version-check
PIP := $(BIN)/python -m pip $(PIP_FLAGS)

# Every environment a make target builds installs from a committed constraints file: one per tested
# Airflow version and Python (constraints/airflow-<airflow>-python-<python>.txt), and one for the
# deployment topology (constraints/deployment-python-<python>.txt). A fresh clone on any later day
# resolves the same versions of everything, pip and setuptools included; `make constraints`
# regenerates them (after `make test-latest` has tried the newest releases).
# The project is built without build isolation, so its build backend comes from the constraints too.
TESTED_AIRFLOW_VERSIONS := 3.1.8 $(DEFAULT_AIRFLOW_VERSION)
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
CONSTRAINTS := constraints/airflow-$(AIRFLOW_VERSION)-python-$(PYTHON_VERSION).txt
DEPLOY_CONSTRAINTS := constraints/deployment-python-$(PYTHON_VERSION).txt
# What the build and the suite need beside the project's own extras, in every constrained environment.
BUILD_TOOLS := pip "setuptools>=77" build twine

WHEEL_VENV := .venv-wheel-$(AIRFLOW_VERSION)
DEPLOY_VENV := .venv-deployment
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed
DEPLOY_PIP := $(DEPLOY_VENV)/bin/python -m pip --quiet --quiet --disable-pip-version-check

.PHONY: venv test test-future test-latest test-wheel test-deployment dist demo lint format clean constraints

# setuptools leaves its scratch metadata (*.egg-info) in the checkout. A Python started here with the
# checkout on sys.path (pytest, python -m airflow) would then see the distribution twice, and Airflow
# records "Plugin 'fuse_results' already registered" as an import error: it goes at once.
EGG_INFO := airflow_provider_fuse.egg-info

$(STAMP): pyproject.toml $(CONSTRAINTS)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -c $(CONSTRAINTS) $(BUILD_TOOLS)
	$(PIP) install -c $(CONSTRAINTS) --no-build-isolation "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test]"
	rm -rf $(EGG_INFO)
	touch $@

constraints/%.txt:
	@echo "There is no $@: this Python ($(PYTHON_VERSION)) or Airflow version has no committed" >&2
	@echo "constraints. Use a Python with a file in constraints/ (PYTHON=python3.11), or generate" >&2
	@echo "one with: make constraints PYTHON=$(PYTHON)" >&2
	@exit 1

## venv: create the virtualenv with Airflow $(AIRFLOW_VERSION) and the project's test extras
venv: $(STAMP)

# The suite runs on one pytest-xdist worker per CPU (each end-to-end worker with its own AIRFLOW_HOME
# and sandbox ports); worksteal evens out the few long cases. PYTEST_WORKERS= (empty) runs it in one
# process without xdist.
PYTEST_WORKERS ?= auto
PARALLEL := $(if $(PYTEST_WORKERS),-n $(PYTEST_WORKERS) --dist worksteal)

## test: run the whole suite (unit, sandbox and end-to-end) against Airflow $(AIRFLOW_VERSION)
test: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) $(PYTEST_ARGS)

## test-future: run the unit tests again with the clock moved a year (366 days) ahead, ticking, so a
## test that takes a fixed date for "now" fails the day it is written (tests/conftest.py moves it)
test-future: $(STAMP)
	FUSE_TEST_CLOCK_OFFSET_DAYS=366 $(BIN)/python -m pytest -m "not e2e" $(PARALLEL) $(PYTEST_ARGS)

## test-latest: the whole suite in a fresh virtualenv with no constraints: the newest releases of
## everything, as `pip install airflow-provider-fuse` gives a user today. Not in CI's gate: run it
## before `make constraints`, and fix what it finds first (CONTRIBUTING.md)
LATEST_VENV := .venv-latest-$(AIRFLOW_VERSION)
test-latest:
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip $(PIP_FLAGS) install --upgrade pip
	$(LATEST_VENV)/bin/python -m pip $(PIP_FLAGS) install --upgrade "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test]"
	rm -rf $(EGG_INFO)
	$(LATEST_VENV)/bin/python -m pip list --format=freeze > $(LATEST_VENV)/resolved.txt
	@echo "test-latest resolved: $$(grep -ciE '^(uvicorn|fastapi|starlette|httpx|requests|sqlalchemy)==' $(LATEST_VENV)/resolved.txt) key packages; full list in $(LATEST_VENV)/resolved.txt"
	$(LATEST_VENV)/bin/python -m pytest $(PARALLEL) $(PYTEST_ARGS)

## constraints: regenerate constraints/ for this Python: for each tested Airflow version, and for the
## deployment topology, resolve the newest versions in a scratch virtualenv and freeze them.
## A maintainer runs it (after make test-latest passes) and commits the result
constraints:
	mkdir -p constraints
	set -e; for version in $(TESTED_AIRFLOW_VERSIONS); do \
		$(MAKE) --no-print-directory constraints/.generated-airflow-$$version-python-$(PYTHON_VERSION) \
			FREEZE_VENV=.venv-constraints-$$version FREEZE_AIRFLOW=$$version; \
	done
	$(MAKE) --no-print-directory constraints/.generated-deployment-python-$(PYTHON_VERSION) \
		FREEZE_VENV=.venv-constraints-deployment
	rm -rf $(EGG_INFO) build

CONSTRAINTS_HEADER = \
	echo "\# Generated by \`make constraints\` on $$(date -u +%Y-%m-%d) with Python $(PYTHON_VERSION); do not edit by hand."; \
	echo "\# $(1). make installs from this file, so every later day resolves the same versions."

# The constraints of one Airflow version: the project's test extras with that Airflow, under the
# upper bounds in constraints/bounds/airflow-<version>.txt where that file exists (newer releases
# known to break that Airflow, each with its reason).
constraints/.generated-airflow-%:
	rm -rf $(FREEZE_VENV)
	$(PYTHON) -m venv $(FREEZE_VENV)
	$(FREEZE_VENV)/bin/python -m pip $(PIP_FLAGS) install --upgrade $(BUILD_TOOLS)
	$(FREEZE_VENV)/bin/python -m pip $(PIP_FLAGS) install --no-build-isolation \
		$(if $(wildcard constraints/bounds/airflow-$(FREEZE_AIRFLOW).txt),-c constraints/bounds/airflow-$(FREEZE_AIRFLOW).txt) \
		"apache-airflow==$(FREEZE_AIRFLOW)" -e ".[dev]"
	{ $(call CONSTRAINTS_HEADER,apache-airflow==$(FREEZE_AIRFLOW) and airflow-provider-fuse[dev]); \
		$(FREEZE_VENV)/bin/python -m pip freeze --all --exclude-editable | grep -viE '^airflow[-_]provider[-_]fuse( @|==)'; \
	} > constraints/airflow-$*.txt
	rm -rf $(FREEZE_VENV)

# The constraints of the deployment topology: scripts/deployment-requirements.txt and the wheel's own
# requirements with its sandbox extra.
constraints/.generated-deployment-%:
	rm -rf $(FREEZE_VENV)
	$(PYTHON) -m venv $(FREEZE_VENV)
	$(FREEZE_VENV)/bin/python -m pip $(PIP_FLAGS) install --upgrade $(BUILD_TOOLS)
	$(FREEZE_VENV)/bin/python -m pip $(PIP_FLAGS) install --no-build-isolation \
		-r scripts/deployment-requirements.txt ".[sandbox]"
	{ $(call CONSTRAINTS_HEADER,scripts/deployment-requirements.txt and airflow-provider-fuse[sandbox]); \
		$(FREEZE_VENV)/bin/python -m pip freeze --all | grep -viE '^airflow[-_]provider[-_]fuse( @|==)'; \
	} > constraints/deployment-$*.txt
	rm -rf $(FREEZE_VENV)

## dist: build the sdist and the wheel into dist/ and check them with twine
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --no-isolation --outdir dist . >/dev/null
	rm -rf $(EGG_INFO) build
	$(BIN)/python -m twine check --strict dist/*

## test-wheel: install the built wheel (not the source tree) into a clean virtualenv with only
## Airflow, and run the whole suite against it from a directory outside the source tree (with
## pyproject.toml beside it for pytest's settings: markers, and warnings as errors)
test-wheel: dist
	rm -rf $(WHEEL_VENV)
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip $(PIP_FLAGS) install -c $(CONSTRAINTS) pip
	$(WHEEL_VENV)/bin/python -m pip $(PIP_FLAGS) install -c $(CONSTRAINTS) \
		"apache-airflow==$(AIRFLOW_VERSION)" "$$(ls dist/*.whl)[test]"
	suite=$$(mktemp -d) && cp -r tests example_dags docs scripts constraints Makefile README.md pyproject.toml "$$suite"/ && cd "$$suite" && \
		FUSE_TEST_INSTALLED_WHEEL=1 $(abspath $(WHEEL_VENV))/bin/python -m pytest -p no:cacheprovider \
		tests $(PARALLEL) $(PYTEST_ARGS); status=$$?; rm -rf "$$suite"; exit $$status

$(DEPLOY_STAMP): scripts/deployment-requirements.txt $(DEPLOY_CONSTRAINTS)
	rm -rf $(DEPLOY_VENV)
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_PIP) install -c $(DEPLOY_CONSTRAINTS) pip
	$(DEPLOY_PIP) install -c $(DEPLOY_CONSTRAINTS) -r scripts/deployment-requirements.txt
	touch $@

## test-deployment: run the examples on the real topology on this machine (Postgres, Redis, moto's S3,
## api-server, scheduler, dag-processor, triggerer, two Celery workers with private /tmp), with the
## built wheel installed, and check every run through the REST API (scripts/deployment.py; as root it
## installs the apt packages it lacks)
test-deployment: dist $(DEPLOY_STAMP)
	$(DEPLOY_PIP) uninstall --yes airflow-provider-fuse
	$(DEPLOY_PIP) install -c $(DEPLOY_CONSTRAINTS) "$$(ls dist/*.whl)[sandbox]"
	$(DEPLOY_VENV)/bin/python scripts/deployment.py $(DEPLOYMENT_ARGS)

## demo: run the example DAG end to end against a local Fuse sandbox (no account needed)
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

## lint: ruff check, ruff format check, mypy --strict on the package
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf .venv .venv-airflow-* .venv-wheel-* .venv-latest-* .venv-constraints-* .venv-deployment .deployment .demo .pytest_cache .ruff_cache *.egg-info dist build
