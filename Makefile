# Two commands on a fresh machine: `make demo` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK_BUILD := requirements/build.in
LOCK_BASE := requirements/base.txt
LOCK_DEV := requirements/dev.txt
LOCK_SPARK := requirements/spark.txt
PIP_INSTALL = $(BIN)/python -m pip install --quiet --disable-pip-version-check
# pip's warnings about this machine's configuration left out, its failures kept (with `set -o pipefail`).
PIP_QUIET := 2>&1 | { grep -v "^WARNING: Location" || true; }
# The locked pip's entry (its line and hashes) of a lock: installed first, as the pip a new venv brings (23.2
# with Python 3.11.7) refuses a hashed lock holding a dependency with extras (`sqlglot[rs]`).
LOCKED_PIP := awk '/^pip==/ {found = 1} found {print; if ($$0 !~ /\\$$/) exit}'
export DO_NOT_TRACK := 1
export DAGSTER_DISABLE_TELEMETRY := 1
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS := true
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: install install-spark lock demo test test-system test-spark dev docs lint clean

install: $(STAMP)

# The environment is the lock (requirements/, `make lock`), hash-checked, and nothing else: the venv is created
# afresh whenever the lock or pyproject.toml changes, so no package the lock dropped stays behind. pip's
# resolver only checks the pinned set; the project goes in editable with --no-deps, built by the locked
# setuptools (--no-build-isolation), so nothing is resolved or fetched beyond the lock.
$(STAMP): pyproject.toml $(LOCK_DEV)
	@echo "== creating $(VENV) with $(PYTHON) and installing $(LOCK_DEV) (a few minutes the first time)"
	@rm -rf $(VENV) && $(PYTHON) -m venv $(VENV)
	@set -o pipefail; $(LOCKED_PIP) $(LOCK_DEV) | $(PIP_INSTALL) --require-hashes --no-deps -r /dev/stdin $(PIP_QUIET)
	@set -o pipefail; $(PIP_INSTALL) --require-hashes --requirement $(LOCK_DEV) $(PIP_QUIET)
	@set -o pipefail; $(PIP_INSTALL) --no-deps --no-build-isolation --editable . $(PIP_QUIET)
	@$(BIN)/python -c "import pipelines, dagster, dagster_dbt, dbt, duckdb, pandas, great_expectations" \
		|| { echo "install failed: see pip's messages above"; exit 1; }
	@touch $(STAMP)

# The spark extra (pyspark, dbt-spark) from its lock, and Java 17, which Spark needs: from apt only when `java`
# is missing. The spark lock holds the dev lock's versions, so this only adds packages.
SPARK_STAMP := $(VENV)/.installed-spark

install-spark: $(SPARK_STAMP)

$(SPARK_STAMP): $(STAMP) $(LOCK_SPARK)
	@command -v java >/dev/null || { echo "== installing Java 17 for Spark (apt-get)"; \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless; }
	@echo "== installing the spark extra (pyspark, dbt-spark) from $(LOCK_SPARK)"
	@set -o pipefail; $(PIP_INSTALL) --require-hashes --requirement $(LOCK_SPARK) $(PIP_QUIET)
	@$(BIN)/python -c "import pyspark, dbt.adapters.spark" || { echo "install failed: see pip's messages above"; exit 1; }
	@touch $(SPARK_STAMP)

# Re-resolve the lock from pyproject.toml and requirements/build.in, for every platform (--universal), keeping
# the locked versions that still fit (UPGRADE=1: the newest everywhere; UPGRADE_PACKAGE=name: that one). Each
# file is resolved within the one before, so the dev and spark locks agree with the base one. uv does it, in a
# venv of its own under $(VENV); nothing is installed: `make install` does that. docs/DEVELOPING.md.
UV_VERSION := 0.13.9
UV := $(VENV)/uv/bin/uv
LOCK_ARGS := --universal --python-version 3.11 --generate-hashes --quiet --custom-compile-command "make lock" \
	$(if $(UPGRADE),--upgrade) $(if $(UPGRADE_PACKAGE),--upgrade-package $(UPGRADE_PACKAGE))

lock:
	@test -x $(UV) || { set -o pipefail; $(PYTHON) -m venv $(VENV)/uv && \
		$(VENV)/uv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)" $(PIP_QUIET); }
	@start=$$EPOCHREALTIME; \
	$(UV) pip compile pyproject.toml $(LOCK_BUILD) $(LOCK_ARGS) -o $(LOCK_BASE) && \
	$(UV) pip compile pyproject.toml $(LOCK_BUILD) --extra dev -c $(LOCK_BASE) $(LOCK_ARGS) -o $(LOCK_DEV) && \
	$(UV) pip compile pyproject.toml $(LOCK_BUILD) --extra dev --extra spark -c $(LOCK_DEV) $(LOCK_ARGS) \
		-o $(LOCK_SPARK) && \
	$(VENV)/uv/bin/python -c 'import sys, time; print(f"== lock re-resolved in {time.time() - float(sys.argv[1]):.1f} s")' \
		$$start

demo: install
	$(BIN)/cprof generate
	$(BIN)/cprof run

# Three tiers (docs/DEVELOPING.md): `test`, every capability end to end on small samples, no Java needed;
# `test-system`, what kills processes or runs the daemon, the webserver, a browser or an older DuckDB;
# `test-spark`, each Spark module in its own pytest process (one JVM and one metastore per process).
FAST := -m "not system and not spark"
SPARK_MODULES := tests/test_spark_ingest.py tests/test_spark_pipeline.py tests/test_dbt_spark.py

# The fast tier in two processes (pytest-xdist), one per core; each session sample is built once for both
# (tests/conftest.py). worksteal: each process starts on its half of the tests, module by module, and the one
# that runs out takes half of what the other has left, so both end together.
test: install
	$(BIN)/python -m pytest $(FAST) -n 2 --dist worksteal --durations=25

test-system: install
	$(BIN)/python -m pytest -m "system and not spark" --durations=10

test-spark: install install-spark
	@set -e; for module in $(SPARK_MODULES); do $(BIN)/python -m pytest $$module --durations=5; done

DATA := $(or $(CPROF_DATA_DIR),$(CURDIR)/data)
DEV_PORT ?= 3000
DOCS_PORT ?= 8080

# The Dagster UI and the daemon (schedules, sensors, run queue), as `dagster dev` runs them (which Dagster 1.13
# marks superseded by `dg dev`, a separate package); Ctrl-C stops both.
dev: install
	@$(BIN)/python -m pipelines.runtime.instance "$(DATA)/dagster_home" >/dev/null
	@export DAGSTER_HOME="$(DATA)/dagster_home"; \
	$(BIN)/dagster-daemon run -w workspace.yaml & daemon=$$!; \
	trap 'kill $$daemon 2>/dev/null; wait $$daemon' EXIT INT TERM; \
	echo "== Dagster UI on http://127.0.0.1:$(DEV_PORT) (Ctrl-C stops it and the daemon)"; \
	$(BIN)/dagster-webserver -w workspace.yaml -h 127.0.0.1 -p $(DEV_PORT)

# dbt docs as one offline file (dbt docs generate --static): the models, the Python marts (as sources), the
# publication and the report (as exposures), served on 127.0.0.1. With the warehouse of `make demo`, the
# catalog holds every table's columns and row counts; without it, the documented columns only.
docs: install
	@mkdir -p "$(DATA)/dbt_docs"
	cd dbt_project && CPROF_DATA_DIR="$(DATA)" DBT_LOG_PATH="$(DATA)/logs/dbt" ../$(BIN)/dbt docs generate --static \
		--profiles-dir . --target-path "$(DATA)/dbt_docs" $(if $(wildcard $(DATA)/warehouse.duckdb),,--empty-catalog)
	@echo "== dbt docs: $(DATA)/dbt_docs/static_index.html (one file, works offline), served on http://127.0.0.1:$(DOCS_PORT)/static_index.html"
	$(BIN)/python -m http.server $(DOCS_PORT) --bind 127.0.0.1 --directory "$(DATA)/dbt_docs"

lint: install
	$(BIN)/ruff check pipelines tests bench data_checks tools

clean:
	rm -rf data dbt_project/target dbt_project/logs .pytest_cache
