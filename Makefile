# Two commands on a fresh machine: `make demo` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DO_NOT_TRACK := 1
export DAGSTER_DISABLE_TELEMETRY := 1
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS := true
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: install install-spark demo test dev docs lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo "== creating $(VENV) with $(PYTHON) and installing (a few minutes the first time)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	@$(BIN)/python -m pip install --quiet --editable ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
	@$(BIN)/python -c "import pipelines, dagster, dagster_dbt, dbt, duckdb, pandas, great_expectations" \
		|| { echo "install failed: see pip's messages above"; exit 1; }
	@touch $(STAMP)

# The spark extra (pyspark, dbt-spark) and Java 17, which Spark needs: from apt only when `java` is missing.
SPARK_STAMP := $(VENV)/.installed-spark

install-spark: $(SPARK_STAMP)

$(SPARK_STAMP): $(STAMP)
	@command -v java >/dev/null || { echo "== installing Java 17 for Spark (apt-get)"; \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
		$$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless; }
	@echo "== installing the spark extra (pyspark, dbt-spark)"
	@$(BIN)/python -m pip install --quiet --editable ".[dev,spark]" 2>&1 | grep -v "^WARNING: Location" || true
	@$(BIN)/python -c "import pyspark, dbt.adapters.spark" || { echo "install failed: see pip's messages above"; exit 1; }
	@touch $(SPARK_STAMP)

demo: install
	$(BIN)/cprof generate
	$(BIN)/cprof run

# Each Spark test module runs in its own pytest process (one JVM and one metastore per process).
test: install install-spark
	$(BIN)/python -m pytest -m "not spark" --durations=25
	$(BIN)/python -m pytest tests/test_spark_ingest.py --durations=5
	$(BIN)/python -m pytest tests/test_spark_pipeline.py --durations=5

DATA := $(or $(CPROF_DATA_DIR),$(CURDIR)/data)
DEV_PORT ?= 3000
DOCS_PORT ?= 8080

# The Dagster UI and the daemon (schedules, sensors, run queue), as `dagster dev` runs them (which Dagster 1.13
# marks superseded by `dg dev`, a separate package); Ctrl-C stops both.
dev: install
	@$(BIN)/python -c "from pipelines.lib.config import paths, write_dagster_yaml; write_dagster_yaml(paths().dagster_home)"
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
