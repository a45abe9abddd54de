"""Resources, configured once from the data directory (``$CPROF_DATA_DIR`` unless told otherwise)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from pipelines.defs.dbt import dbt_resource
from pipelines.domain.clv_scoring import ClvSettings
from pipelines.engines import DBT_TARGET_ENV, Runtime, dbt_target, engine_name, open_runtime
from pipelines.engines.base import Warehouse
from pipelines.landing.inventory import FileKey, FileStamp, run_files, take_inventory
from pipelines.lib.config import Paths


class WarehouseResource(ConfigurableResource):
    """The working warehouse, on the engine ``CPROF_ENGINE`` picks (pipelines/engines/): steps take a session
    with ``session()`` and read and write through it. The engine's runtime lives as long as the run's process
    (one Spark per run, started on first use and stopped when the run ends); a DuckDB session is a connection to
    the file, opened for the step and always closed after it, even when the step fails."""

    data_dir: str
    engine: str = "duckdb"

    _runtime: Runtime | None = PrivateAttr(default=None)

    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = open_runtime(Paths(Path(self.data_dir)), self.engine)
        return self._runtime

    @contextmanager
    def session(self) -> Iterator[Warehouse]:
        with self.runtime().session() as warehouse:
            yield warehouse

    def dbt_environment(self) -> dict[str, str]:
        return {DBT_TARGET_ENV: dbt_target(self.engine), **self.runtime().dbt_environment()}

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None


class DataDir(ConfigurableResource):
    """The data directory: landing zone, warehouse, publications, logs; and the run's inventory of its landing
    files, taken once per run (kept with the run's id: the resource lives as long as the run's process)."""

    path: str

    _inventory: tuple[str, dict[FileKey, FileStamp]] | None = PrivateAttr(default=None)

    @property
    def paths(self) -> Paths:
        return Paths(Path(self.path))

    def run_inventory(
        self, run_id: str, months: list[str], say: Callable[[str], None] | None = None
    ) -> dict[FileKey, FileStamp]:
        """The size, modification time and SHA-256 of every landing file of the run (the snapshots, and every
        monthly source's file of ``months``), taken by the first step that loads a file, before anything is
        loaded (pipelines.landing.inventory.take_inventory: a file still being written fails it, named). Each
        load then reads only the file inventoried."""
        if self._inventory is None or self._inventory[0] != run_id:
            landing = self.paths.landing
            self._inventory = (run_id, take_inventory(run_files(landing, months), say=say))
        return self._inventory[1]


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


def resources_for(paths: Paths, defer_docs: bool = False, engine: str | None = None) -> dict[str, object]:
    return {
        "clv": ClvConfig(),
        "data_dir": DataDir(path=str(paths.data_dir)),
        "checks": LandingChecks(defer_docs=defer_docs),
        "warehouse": WarehouseResource(data_dir=str(paths.data_dir), engine=engine_name(engine)),
        "dbt": dbt_resource(),
    }
