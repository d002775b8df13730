# Portfolio: `make run` sets everything up and starts it; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# flock (util-linux) serialises concurrent installs into one venv (several checkouts'
# `make test` at once); macOS has none and installs without it.
LOCK := $(if $(shell command -v flock),flock .venv.lock,)

.PHONY: run test lint types format bench install clean-data lock audit

# Dependencies are installed from requirements.lock (pinned, with hashes: `make lock`
# after editing pyproject.toml), then the project itself without its dependencies.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Portfolio needs Python 3.11+: make PYTHON=python3.11 ..."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(LOCK) $(PY) -m pip install --quiet --upgrade pip
	$(LOCK) $(PY) -m pip install --quiet --require-hashes -r requirements.lock
	$(LOCK) $(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# htmx is pinned in package.json / package-lock.json and installed from the npm registry.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch node_modules/.installed

install: $(STAMP) node_modules/.installed

## Start web (127.0.0.1:8000), a Celery worker and Celery beat, on embedded PostgreSQL
## and Redis unless DATABASE_URL / REDIS_URL are set. Ctrl-C stops everything.
run: install
	$(PY) bin/run.py

## The whole suite against PostgreSQL and Redis on 127.0.0.1 (or embedded ones).
test: install
	$(PY) bin/test.py $(ARGS)

# What mypy checks: the pure rules (strictly enough to keep them Django-free and exact), and
# each app's services, selectors, views and tasks with the modules they lean on (issue 17.5).
# The modules these import are read for their types only (follow_imports = "silent"): a
# module's own errors count once it is listed here.
TYPED := prioritization/rules triage/health.py triage/labels.py engagement/rules.py \
	config/api.py config/context_processors.py config/throttles.py \
	integrations/gitlab.py integrations/selectors.py integrations/services.py \
	integrations/tasks.py \
	portfolio/api_tokens.py portfolio/auth.py portfolio/charts.py \
	portfolio/datacache.py portfolio/history.py portfolio/htmx.py portfolio/roles.py \
	portfolio/selectors.py portfolio/services.py portfolio/sync \
	portfolio/sync_views.py portfolio/tasks.py portfolio/token_views.py \
	portfolio/writeback.py portfolio/writeback_views.py \
	prioritization/api.py prioritization/charts.py prioritization/receivers.py \
	prioritization/selectors.py prioritization/services.py prioritization/tasks.py \
	prioritization/views.py \
	triage/api.py triage/forms.py triage/mirror.py triage/selectors.py \
	triage/services triage/tasks.py triage/views.py \
	engagement/cadence.py engagement/emails.py engagement/selectors.py \
	engagement/services engagement/tasks.py engagement/views.py \
	usage/api.py usage/charts.py usage/panels.py usage/selectors.py usage/services.py \
	usage/tasks.py usage/views.py \
	notifications/preferences.py notifications/producer.py notifications/selectors.py \
	notifications/services.py notifications/tasks.py notifications/views.py \
	workspace/forms.py workspace/inbox.py workspace/search.py workspace/selectors.py \
	workspace/services.py workspace/views.py \
	ui/bulk.py ui/bulk_views.py ui/charts.py ui/forms.py ui/glance.py ui/panels.py \
	ui/selectors.py ui/views.py
# mypy's django-stubs plugin loads config.settings: as for `make test`, a throwaway
# SECRET_KEY, production settings and no `.env` (whatever `make run` wrote there).
MYPY := SECRET_KEY=mypy-only DEBUG=0 PORTFOLIO_ENV_FILE= $(VENV)/bin/mypy

# bandit over the application code; each reviewed false positive is waived inline with its
# reason (`# nosec B608 # identifiers come from code, ...`).
BANDIT := config integrations portfolio prioritization triage engagement notifications workspace usage ui bin

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MYPY) $(TYPED)
	$(VENV)/bin/bandit -q -r $(BANDIT) -x '*/migrations/*'

## mypy alone, over the same paths as `make lint` (the pre-commit hook runs this).
types: install
	$(MYPY) $(TYPED)

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) bin/test.py --bench

clean-data:
	rm -rf .data

## Re-pin every dependency (with hashes, for every platform) after editing pyproject.toml.
lock: $(STAMP)
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --extra embedded --generate-hashes \
		--universal --python-version 3.11 --quiet -o requirements.lock

## pip-audit over requirements.lock; says plainly when its service cannot be reached.
audit: install
	$(PY) bin/audit.py
