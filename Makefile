# leadchat: `make run` serves the product, `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_USER ?= demo
DEMO_PASSWORD ?= leadchat-demo
PYTEST_ARGS ?=
# The suite runs on every core with pytest-xdist, each test file on one worker (module fixtures
# such as a started gunicorn run once). `make test PYTEST_XDIST=` runs it in one process.
PYTEST_XDIST ?= -n auto --dist loadfile

.PHONY: run test lint format bench check install install-dev clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The embedded run: SQLite under var/, the scripted agent, console email, no settings needed.
# It writes a git-ignored .env for local development once (DEBUG=true and a generated
# SECRET_KEY; an existing .env is never touched), so the README's `python manage.py ...` commands
# work in this checkout afterwards too. PUBLIC_BASE_URL, when unset, follows HOST and PORT
# (LEADCHAT_RUN_URL): the admin's embed code and the links in webhooks and emails point here.
run: export DEBUG ?= true
# Its system check warnings (an empty QA_NOTIFY_EMAILS, leadchat.W002) print at migrate and
# again when the server starts; the steps between skip the checks so they print only there.
run: export LEADCHAT_RUN_URL = http://$(HOST):$(PORT)
run: $(VENV)/.installed .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_roles --skip-checks >/dev/null
	LEADCHAT_PASSWORD='$(DEMO_PASSWORD)' $(PY) manage.py createuser $(DEMO_USER) --role admin --exists-ok --skip-checks
	$(PY) manage.py seed_demo --origin http://$(HOST):$(PORT) --skip-checks
	@echo ""
	@echo "  leadchat is starting on http://$(HOST):$(PORT)/"
	@echo "  Sign in as '$(DEMO_USER)' with password '$(DEMO_PASSWORD)'."
	@echo "  Dashboard: http://$(HOST):$(PORT)/dashboard/   QA console: http://$(HOST):$(PORT)/admin/"
	@echo "  Demo landing page with the widget: http://$(HOST):$(PORT)/demo/"
	@echo ""
	HOST=$(HOST) PORT=$(PORT) PY=$(PY) scripts/run_dev.sh

.env:
	@printf '%s\n' \
	  '# Written by `make run` for local development. Git-ignored: never commit it, never use' \
	  '# it in production. Every variable is explained in .env.example.' \
	  'DEBUG=true' \
	  "SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
	  '# Who gets an email when a QA reviewer flags an issue (comma separated); until it is set' \
	  '# make run warns (leadchat.W002) that flagged issues send nothing:' \
	  '# QA_NOTIFY_EMAILS=qa-team@example.com' > $@.tmp
	@chmod 600 $@.tmp && mv $@.tmp $@
	@echo "Wrote .env for local development (DEBUG=true, a generated SECRET_KEY)."

test: $(VENV)/.installed-dev
	$(PY) -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

# mypy's settings (strict on services, selectors, backends and the delivery worker) are in
# pyproject.toml; its cache is .mypy_cache/.
lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check: export DEBUG ?= true
check: $(VENV)/.installed-dev
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py check

# Benchmarks on PostgreSQL (DATABASE_URL; refuses SQLite). Seeds and then drops its own
# <database>_bench database, never yours; writes bench/results.md. Small run:
# make bench BENCH_ARGS='--sessions 5000'
BENCH_ARGS ?=
bench: $(VENV)/.installed-dev
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var/staticfiles
