# Pet Portal developer entry points. `make run` starts everything locally; `make test` is what CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.8
ARGS ?=

# Installable packages, editable; a directory without a pyproject.toml (yet) is skipped.
PACKAGE_DIRS := shared/schemas shared/runtime services/identity services/pets services/messaging \
	services/todo services/sync services/notify services/gateway
PYPROJECTS := $(wildcard $(addsuffix /pyproject.toml,$(PACKAGE_DIRS)))
STAMP := $(VENV)/.petportal-installed

.PHONY: help venv run test lint typecheck bench lock schemas clean-data

help:
	@echo "make venv | run [ARGS=--infra-only] | test | lint | typecheck | bench | lock | schemas | clean-data"

venv: $(STAMP)

$(UV):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)

# Re-installs only when requirements.txt or a pyproject.toml changed (or appeared).
$(STAMP): requirements.txt $(PYPROJECTS) | $(UV)
	$(UV) pip sync --python $(PY) requirements.txt
	$(UV) pip install --python $(PY) --no-deps $(patsubst %/pyproject.toml,-e %,$(PYPROJECTS))
	@touch $@

run: venv
	$(PY) devtools/run.py $(ARGS)

test: venv lint typecheck
	$(PY) devtools/run_tests.py $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy --strict shared/schemas/petportal_schemas shared/runtime/petportal_runtime

bench: venv
	$(PY) -m bench $(ARGS)

lock: | $(UV)
	$(UV) pip compile requirements.in -o requirements.txt --no-header --no-annotate

schemas: venv
	$(PY) -m petportal_schemas.export

# Stops a PostgreSQL left running on .data/pg (e.g. after a crashed `make run`) before deleting.
clean-data:
	@if [ -f .data/pg/postmaster.pid ] && [ -x $(PY) ]; then \
		$(PY) -c 'from pathlib import Path; from petportal_runtime.devinfra import LocalPostgres; LocalPostgres(Path(".data/pg")).stop()' || true; \
	fi
	rm -rf .data
