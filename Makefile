# Quick start:  make plan   (set up .venv, print the offline plan of the dev stack)
#               make test   (lint and run every test)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# checkov cannot share .venv (it pins packaging<24; pulumi needs >=26).
CHECKOV_VENV ?= .venv-checkov
STACK ?= dev

.PHONY: setup plan test lint format bench mutate

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt constraints-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt -c constraints-checkov.txt
	touch $@

setup: $(VENV)/.installed

plan: setup
	$(PY) -m plan $(STACK)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m mypy policy
	$(PY) -m plan.schema --check

test: lint $(CHECKOV_VENV)/.installed
	CHECKOV=$(CHECKOV_VENV)/bin/checkov REQUIRE_CHECKOV=1 $(PY) -m pytest -q

format: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: setup
	$(PY) benchmarks/plan_speed.py

# One-line mutants of the code against the tests that cover them (~10 min; not in `test`).
mutate: setup
	$(PY) benchmarks/mutate.py
