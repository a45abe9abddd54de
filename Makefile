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

.PHONY: install install-spark demo test dev lint clean

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

test: install install-spark
	$(BIN)/python -m pytest

dev: install
	@$(BIN)/python -c "from pipelines.config import paths, write_dagster_yaml; write_dagster_yaml(paths().dagster_home)"
	DAGSTER_HOME=$(CURDIR)/data/dagster_home $(BIN)/dagster dev -w workspace.yaml

lint: install
	$(BIN)/ruff check pipelines tests bench

clean:
	rm -rf data dbt_project/target dbt_project/logs .pytest_cache
