# Quick start:  make plan     (.venv with the program's requirements; the offline plan of the dev stack)
#               make test     (the test toolchain too; lint and run every test)
#               make clients  (the chat client and benchmark report, also into a .venv that `pulumi up` made)
# Needs Python 3.11 or later: make plan PYTHON=python3.12
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_INSTALL = -m pip install --disable-pip-version-check
# checkov cannot share .venv (it pins packaging<24; pulumi needs >=26).
CHECKOV_VENV ?= .venv-checkov
STACK ?= dev
# The GKE CRD schemas live beside the repository (../shared/reference/crds); where
# ../shared exists their tests must run, not skip (tests/workloads/test_manifest_schemas.py).
REQUIRE_CRDS ?= $(if $(wildcard ../shared),1,)
# AIPerf (the benchmark client) in its own venv too: its pins clash with ours
# (rich 14, pillow 12). The same pins build the benchmark image.
AIPERF_VENV ?= .venv-aiperf
AIPERF_PINS := docker/benchmark/requirements-aiperf.txt docker/benchmark/constraints-aiperf.txt

.PHONY: setup clients dev python-version plan test lint format bench aiperf mutate

python-version:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "make: this project needs Python 3.11 or later; $(PYTHON) is $$($(PYTHON) --version 2>&1)." >&2; \
	  echo "make: name another interpreter, e.g. make $(MAKECMDGOALS) PYTHON=python3.12" >&2; \
	  exit 1; }

# The program alone: what `pulumi up` installs, and all `make plan` needs.
$(VENV)/.installed: requirements.txt constraints.txt | python-version
	$(PYTHON) -m venv $(VENV)
	$(PY) $(PIP_INSTALL) -r requirements.txt
	touch $@

$(VENV)/.installed-clients: requirements-clients.txt constraints.txt $(VENV)/.installed
	$(PY) $(PIP_INSTALL) -r requirements-clients.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements-clients.txt $(VENV)/.installed
	$(PY) $(PIP_INSTALL) -r requirements-dev.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt constraints-checkov.txt | python-version
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python $(PIP_INSTALL) -r requirements-checkov.txt
	touch $@

$(AIPERF_VENV)/.installed: $(AIPERF_PINS)
	$(PYTHON) -m venv $(AIPERF_VENV)
	$(AIPERF_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r docker/benchmark/requirements-aiperf.txt -c docker/benchmark/constraints-aiperf.txt
	touch $@

aiperf: $(AIPERF_VENV)/.installed

setup: $(VENV)/.installed
clients: $(VENV)/.installed-clients
dev: $(VENV)/.installed-dev

plan: setup
	$(PY) -m plan $(STACK)

lint: dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m mypy policy
	$(PY) -m plan.schema --check

# PYTHONDONTWRITEBYTECODE is emptied for the tests: each worker and each
# `python -m ...` a test starts then reuses the compiled project modules and
# pytest's rewritten test modules (__pycache__, ignored by git) instead of
# compiling them again.
test: lint $(CHECKOV_VENV)/.installed $(AIPERF_VENV)/.installed
	PYTHONDONTWRITEBYTECODE= CHECKOV=$(CHECKOV_VENV)/bin/checkov REQUIRE_CHECKOV=1 AIPERF_VENV=$(AIPERF_VENV) REQUIRE_AIPERF=1 REQUIRE_CRDS=$(REQUIRE_CRDS) $(PY) -m pytest -q -n auto

format: dev
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: setup
	$(PY) benchmarks/plan_speed.py

# One-line mutants of the code against the tests that cover them (~10 min; not in `test`).
mutate: setup
	$(PY) benchmarks/mutate.py
