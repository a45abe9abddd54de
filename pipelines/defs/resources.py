"""Resources, configured once from the data directory (``$CPROF_DATA_DIR`` unless told otherwise)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster import ConfigurableResource
from dagster_duckdb import DuckDBResource

from pipelines.defs.dbt import dbt_resource
from pipelines.domain.clv_scoring import ClvSettings
from pipelines.lib.config import Paths


class Warehouse(DuckDBResource):
    """The working warehouse. dagster-duckdb's resource closes its connection only when the work succeeds; a
    failing asset would leave the file open (and locked) for the rest of the process. This one always closes."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        connection = duckdb.connect(self.database, read_only=False, config=self.connection_config)
        try:
            yield connection
        finally:
            connection.close()


class DataDir(ConfigurableResource):
    """The data directory: landing zone, warehouse, publications, logs."""

    path: str

    @property
    def paths(self) -> Paths:
        return Paths(Path(self.path))


class LandingChecks(ConfigurableResource):
    """How the landing suites run: ``defer_docs`` renders Data Docs once per run instead of per check."""

    defer_docs: bool = False


class ClvConfig(ConfigurableResource):
    """CLV configuration: horizon, discount rate, defection threshold and the holdout of the calibration check."""

    horizon_months: int = 12
    annual_discount_rate: float = 0.10
    p_alive_threshold: float = 0.5
    high_profit_quantile: float = 0.8
    holdout_months: int = 6

    def settings(self) -> ClvSettings:
        return ClvSettings(
            horizon_months=self.horizon_months,
            annual_discount_rate=self.annual_discount_rate,
            p_alive_threshold=self.p_alive_threshold,
            high_profit_quantile=self.high_profit_quantile,
            holdout_months=self.holdout_months,
        )


MEMORY_LIMIT_ENV = "CPROF_DUCKDB_MEMORY_LIMIT"


def duckdb_settings(paths: Paths) -> dict[str, object]:
    """DuckDB settings of every connection to the working warehouse (dbt's profile sets the same): a memory
    limit (``$CPROF_DUCKDB_MEMORY_LIMIT``, default 4GB) past which DuckDB spills to ``<data>/duckdb_tmp``, and
    no insertion-order guarantee, which lets large inserts stream."""
    return {
        "memory_limit": os.environ.get(MEMORY_LIMIT_ENV) or "4GB",
        "temp_directory": str(paths.data_dir / "duckdb_tmp"),
        "preserve_insertion_order": False,
    }


def resources_for(paths: Paths, defer_docs: bool = False) -> dict[str, object]:
    return {
        "clv": ClvConfig(),
        "data_dir": DataDir(path=str(paths.data_dir)),
        "checks": LandingChecks(defer_docs=defer_docs),
        "warehouse": Warehouse(database=str(paths.warehouse), connection_config=duckdb_settings(paths)),
        "dbt": dbt_resource(),
    }
