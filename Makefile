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

WHEEL_VENV := .venv-wheel-$(AIRFLOW_VERSION)
DEPLOY_VENV := .venv-deployment
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed
DEPLOY_PIP := $(DEPLOY_VENV)/bin/python -m pip --quiet --quiet --disable-pip-version-check

.PHONY: venv test test-future test-wheel test-deployment dist demo lint format clean

# setuptools leaves its scratch metadata (*.egg-info) in the checkout. A Python started here with the
# checkout on sys.path (pytest, python -m airflow) would then see the distribution twice, and Airflow
# records "Plugin 'fuse_results' already registered" as an import error: it goes at once.
EGG_INFO := airflow_provider_fuse.egg-info

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test]"
	rm -rf $(EGG_INFO)
	touch $@

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

## dist: build the sdist and the wheel into dist/ and check them with twine
dist: $(STAMP)
	$(PIP) install build twine
	rm -rf dist
	$(BIN)/python -m build --outdir dist . >/dev/null
	rm -rf $(EGG_INFO) build
	$(BIN)/python -m twine check --strict dist/*

## test-wheel: install the built wheel (not the source tree) into a clean virtualenv with only
## Airflow, and run the whole suite against it from a directory outside the source tree (with
## pyproject.toml beside it for pytest's settings: markers, and warnings as errors)
test-wheel: dist
	rm -rf $(WHEEL_VENV)
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip --quiet --quiet --disable-pip-version-check install \
		"apache-airflow==$(AIRFLOW_VERSION)" "$$(ls dist/*.whl)[test]"
	suite=$$(mktemp -d) && cp -r tests example_dags docs scripts README.md pyproject.toml "$$suite"/ && cd "$$suite" && \
		FUSE_TEST_INSTALLED_WHEEL=1 $(abspath $(WHEEL_VENV))/bin/python -m pytest -p no:cacheprovider \
		tests $(PARALLEL) $(PYTEST_ARGS); status=$$?; rm -rf "$$suite"; exit $$status

$(DEPLOY_STAMP): scripts/deployment-requirements.txt
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_PIP) install --upgrade pip
	$(DEPLOY_PIP) install -r scripts/deployment-requirements.txt
	touch $@

## test-deployment: run the examples on the real topology on this machine (Postgres, Redis, moto's S3,
## api-server, scheduler, dag-processor, triggerer, two Celery workers with private /tmp), with the
## built wheel installed, and check every run through the REST API (scripts/deployment.py; as root it
## installs the apt packages it lacks)
test-deployment: dist $(DEPLOY_STAMP)
	$(DEPLOY_PIP) uninstall --yes airflow-provider-fuse
	$(DEPLOY_PIP) install "$$(ls dist/*.whl)[sandbox]"
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
	rm -rf .venv .venv-airflow-* .venv-wheel-* .venv-deployment .deployment .demo .pytest_cache .ruff_cache *.egg-info dist build
