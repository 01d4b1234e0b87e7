# The commands a person types. `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: run test lint format bench setup check-prereqs stop clean-data shell

run: setup ## Set up, start embedded Postgres + Redis, migrate, seed the demo, serve web + worker + beat
	@$(PY) -m crm.devservices run

test: setup ## Set up, then run the whole test suite (embedded services unless DATABASE_URL/REDIS_URL are set)
	@$(PY) -m crm.devservices test -- $(PYTEST_ARGS)

bench: setup ## Seed large data with COPY and print the benchmark table
	@$(PY) -m crm.devservices exec -- $(PY) -m bench $(BENCH_ARGS)

lint: setup ## ruff check, ruff format --check, djLint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/djlint --lint templates */templates

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

stop: ## Stop embedded Postgres and Redis left running
	@$(PY) -m crm.devservices stop

shell: setup
	@$(PY) -m crm.devservices exec -- $(PY) manage.py shell

check-prereqs:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Rapport needs Python 3.11+; '$(PYTHON)' was not found (set PYTHON=/path/to/python3.11)."; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Rapport needs Python 3.11 or newer; $(PYTHON) is " + sys.version.split()[0] + " (set PYTHON=/path/to/python3.11).")'
	@command -v npm >/dev/null 2>&1 || { echo "Rapport needs Node.js (with npm) to install its front-end packages; install Node.js 18+ and retry."; exit 1; }

setup: check-prereqs $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

node_modules/.installed: package.json package-lock.json
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@
