"""Resources, configured once from the data directory (``$CPROF_DATA_DIR`` unless told otherwise)."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from dagster_duckdb import DuckDBResource

from pipelines.config import Paths
from pipelines.dbt import dbt_resource


class DataDir(ConfigurableResource):
    """The data directory: landing zone, warehouse, publications, logs."""

    path: str

    @property
    def paths(self) -> Paths:
        return Paths(Path(self.path))


def resources_for(paths: Paths) -> dict[str, object]:
    return {
        "data_dir": DataDir(path=str(paths.data_dir)),
        "warehouse": DuckDBResource(database=str(paths.warehouse)),
        "dbt": dbt_resource(),
    }
