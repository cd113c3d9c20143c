# Quick start:  make plan   (set up .venv, print the offline plan of the dev stack)
#               make test   (lint and run every test)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# checkov cannot share .venv (it pins packaging<24; pulumi needs >=26).
CHECKOV_VENV ?= .venv-checkov
STACK ?= dev
# AIPerf (the benchmark client) in its own venv too: its pins clash with ours
# (rich 14, pillow 12). The same pins build the benchmark image.
AIPERF_VENV ?= .venv-aiperf
AIPERF_PINS := docker/benchmark/requirements-aiperf.txt docker/benchmark/constraints-aiperf.txt

.PHONY: setup plan test lint format bench aiperf

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt constraints-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt -c constraints-checkov.txt
	touch $@

$(AIPERF_VENV)/.installed: $(AIPERF_PINS)
	$(PYTHON) -m venv $(AIPERF_VENV)
	$(AIPERF_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r docker/benchmark/requirements-aiperf.txt -c docker/benchmark/constraints-aiperf.txt
	touch $@

aiperf: $(AIPERF_VENV)/.installed

setup: $(VENV)/.installed

plan: setup
	$(PY) -m plan $(STACK)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m plan.schema --check

test: lint $(CHECKOV_VENV)/.installed $(AIPERF_VENV)/.installed
	CHECKOV=$(CHECKOV_VENV)/bin/checkov REQUIRE_CHECKOV=1 AIPERF_VENV=$(AIPERF_VENV) REQUIRE_AIPERF=1 $(PY) -m pytest -q

format: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: setup
	$(PY) benchmarks/plan_speed.py
