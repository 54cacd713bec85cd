# IRMS: `make run` and `make test` do all set-up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
STAMP := $(VENV)/.installed
# npm rewrites this on every install: node_modules is stale when the lock file is newer.
NODE_STAMP := node_modules/.package-lock.json
# Install mysqlclient only when the database is MySQL/MariaDB.
NEEDS_MYSQL := $(if $(filter mysql%,$(DATABASE_URL)),yes,)


.PHONY: mariadb-up
.PHONY: run test e2e lint migrations-check fuzz bench bench-smoke load drill-db drill-smtp drill-cluster screenshots audit venv mysql-deps clean help
.PHONY: node-deps check-html check-schema check-a11y checks

help:
	@echo "make run    - serve IRMS with demo data at http://127.0.0.1:8000 (SQLite)"
	@echo "make test   - run the whole test suite (DATABASE_URL=mysql://... for MariaDB)"
	@echo "make lint   - ruff;  make migrations-check - models and migrations agree"
	@echo "make e2e    - browser journeys only;  make fuzz - schemathesis against the API"
	@echo "make bench  - benchmark at 100 and 100,000 incidents;  make load - load drill"
	@echo "make screenshots - regenerate docs/screenshots;  make audit - pip-audit"
	@echo "make drill-db / drill-smtp - database / mail-server outage under load"
	@echo "make drill-cluster - (root) HAProxy, 2 app + 2 worker hosts in network namespaces, hosts killed under load"
	@echo "make check-html / check-schema / check-a11y - Nu HTML Checker / Redocly + Spectral / axe-core"

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP) $(if $(NEEDS_MYSQL),mysql-deps)

mysql-deps: $(STAMP)
	@$(PYTHON) -c "import MySQLdb" 2>/dev/null || { \
	  pkg-config --exists mysqlclient 2>/dev/null || pkg-config --exists libmariadb 2>/dev/null || { \
	    echo "MySQL client headers missing: run 'sudo apt-get install pkg-config libmariadb-dev' (or default-libmysqlclient-dev) and retry."; exit 1; }; \
	  $(PYTHON) -m pip install --quiet -r requirements-mysql.txt; }

run: venv
	DEBUG=$${DEBUG:-true} $(PYTHON) manage.py migrate --no-input
	DEBUG=$${DEBUG:-true} $(PYTHON) manage.py seed_demo --if-empty
	@echo "Starting the mail worker beside the web server (Ctrl-C stops both)."
	@trap 'kill 0' INT TERM EXIT; \
	  DEBUG=$${DEBUG:-true} $(PYTHON) manage.py mail_worker --no-startup-delay --interval 1 --no-reload & \
	  DEBUG=$${DEBUG:-true} $(PYTHON) manage.py runserver 127.0.0.1:8000

# The outside checkers (package.json): installed when npm is there; without it their
# tests are skipped outside CI (irms_site/tests/checkers.py).
node-deps:
	@if ! command -v npm >/dev/null; then \
	  echo "npm missing: the HTML, schema and accessibility checks will be skipped (apt-get install npm)"; \
	elif [ ! -f $(NODE_STAMP) ] || [ package-lock.json -nt $(NODE_STAMP) ]; then \
	  npm ci --no-audit --no-fund; \
	fi

test: venv node-deps
	$(PYTHON) -m pytest -n $${PYTEST_WORKERS:-2} $(PYTEST_ARGS)

# Each check alone, failing (not skipping) when its tool is missing. `make test` runs them too.
CHECK := IRMS_REQUIRE_CHECKERS=true $(PYTHON) -m pytest -p no:xdist

check-html: venv node-deps
	$(CHECK) irms_site/tests/test_html_validity.py $(PYTEST_ARGS)

check-schema: venv node-deps
	$(CHECK) irms_site/tests/test_openapi_lint.py $(PYTEST_ARGS)

check-a11y: venv node-deps
	$(CHECK) irms_site/tests/e2e/test_accessibility.py $(PYTEST_ARGS)

checks: check-html check-schema check-a11y

e2e: venv node-deps
	$(PYTHON) -m pytest -p no:xdist -m e2e irms_site/tests/e2e $(PYTEST_ARGS)

screenshots: venv
	$(PYTHON) -m pytest -p no:xdist -m screenshots irms_site/tests/e2e/test_screenshots.py

fuzz: venv
	bash .ci/fuzz

audit: venv
	$(BIN)/pip install --quiet pip-audit==2.10.1
	$(BIN)/pip-audit --strict -r requirements.txt -r requirements-mysql.txt

mariadb-up:
	@mariadb-admin --host=127.0.0.1 --user=root ping >/dev/null 2>&1 || { \
	  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd; \
	  for _ in $$(seq 1 60); do mariadb-admin --host=127.0.0.1 --user=root ping >/dev/null 2>&1 && break; sleep 1; done; }

bench: venv mysql-deps mariadb-up
	$(PYTHON) bench/run.py $(BENCH_ARGS)

bench-smoke: venv mysql-deps mariadb-up
	$(PYTHON) bench/run.py --smoke

load: venv mysql-deps mariadb-up
	$(PYTHON) bench/load/run_load.py $(LOAD_ARGS)

drill-db: venv mysql-deps mariadb-up
	$(PYTHON) bench/load/drills.py db-outage $(DRILL_ARGS)

drill-smtp: venv mysql-deps mariadb-up
	$(PYTHON) bench/load/drills.py smtp-outage $(DRILL_ARGS)

# Its own mariadbd and redis-server inside its namespaces: the machine's are not used.
drill-cluster: venv mysql-deps
	$(PYTHON) bench/drill_cluster.py $(DRILL_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

migrations-check: venv
	DEBUG=true $(PYTHON) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) node_modules staticfiles .pytest_cache
