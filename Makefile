# Catalyst Portal — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?= -n 2 --dist loadgroup

.PHONY: fuzz run test check lint typecheck migrations-check bench assets install install-dev worker beat clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet .
	rm -rf build *.egg-info
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet ".[dev]"
	rm -rf build *.egg-info
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
# The IaC editor (CodeMirror 6 and its YAML, lint, merge and JSON-Schema packages from npm),
# bundled once at set-up into build/static/ (served like static/; never a CDN) by package.json's
# `build` script, the same command the container image runs (Containerfile).
EDITOR_BUNDLE := build/static/marketplace/editor.js
$(EDITOR_BUNDLE): node_modules/.package-lock.json marketplace/assets/editor.js package.json
	npm run --silent build

assets: node_modules/.package-lock.json $(EDITOR_BUNDLE)

run: install assets
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	DEBUG=$${DEBUG:-true} $(PY) manage.py serve --host $(HOST) --port $(PORT)

test: install-dev assets
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install-dev
	$(VENV)/bin/mypy .

migrations-check: install-dev
	$(PY) manage.py makemigrations --check --dry-run

check: lint typecheck migrations-check test

# schemathesis over /api/schema/: every operation, positive and negative, fixed seed
fuzz: install-dev
	FUZZ=1 $(PY) -m pytest tests/api/test_schema_fuzz.py -p no:randomly -q

bench: install-dev
	$(PY) -m bench

worker: install
	$(VENV)/bin/celery -A catalyst_portal worker --loglevel=INFO --concurrency=2

beat: install
	$(VENV)/bin/celery -A catalyst_portal beat --loglevel=INFO

clean:
	rm -rf var/ node_modules/ $(VENV)
