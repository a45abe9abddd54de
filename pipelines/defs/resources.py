"""Resources, configured once from the :class:`Settings` a process read at its start (pipelines/lib/settings.py):
each holds the settings its steps need, as typed fields (the run's configuration in Dagster's UI)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from pipelines.defs.dbt import dbt_resource
from pipelines.domain.clv_scoring import ClvSettings
from pipelines.engines import DBT_TARGET_ENV, Runtime, dbt_target, open_runtime
from pipelines.engines.base import Warehouse
from pipelines.landing.inventory import FileKey, FileStamp, run_files, take_inventory
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.publication.report import Bounds

# The settings the warehouse's engine and its dbt build read besides the data directory: fields of both Settings
# and WarehouseResource, of the same names, copied one way in ``of`` and back in ``settings``. The currency is
# dbt's (marts.publication_info) and the publication's.
_ENGINE_SETTINGS = (
    "engine",
    "duckdb_memory_limit",
    "spark_master",
    "spark_thrift",
    "spark_driver_memory",
    "currency",
)


class WarehouseResource(ConfigurableResource):
    """The working warehouse, on the engine the settings pick (pipelines/engines/): steps take a session with
    ``session()`` and read and write through it. The engine's runtime lives as long as the run's process (one
    Spark per run, started on first use and stopped when the run ends); a DuckDB session is a connection to the
    file, opened for the step and always closed after it, even when the step fails."""

    data_dir: str
    engine: str = Settings.engine
    duckdb_memory_limit: str = Settings.duckdb_memory_limit
    spark_master: str | None = Settings.spark_master
    spark_thrift: str | None = Settings.spark_thrift
    spark_driver_memory: str = Settings.spark_driver_memory
    currency: str = Settings.currency

    _runtime: Runtime | None = PrivateAttr(default=None)

    @classmethod
    def of(cls, settings: Settings) -> WarehouseResource:
        return cls(
            data_dir=str(settings.data_dir), **{name: getattr(settings, name) for name in _ENGINE_SETTINGS}
        )

    def settings(self) -> Settings:
        """The warehouse's settings (the others at their defaults: the engine reads only these)."""
        return Settings(
            data_dir=Path(self.data_dir), **{name: getattr(self, name) for name in _ENGINE_SETTINGS}
        )

    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = open_runtime(self.settings())
        return self._runtime

    @contextmanager
    def session(self) -> Iterator[Warehouse]:
        with self.runtime().session() as warehouse:
            yield warehouse

    def dbt_environment(self) -> dict[str, str]:
        """dbt's own environment: the settings its profile reads, the target, and where the engine listens."""
        return {
            **self.settings().dbt_environment(),
            DBT_TARGET_ENV: dbt_target(self.engine),
            **self.runtime().dbt_environment(),
        }

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None


class DataDir(ConfigurableResource):
    """The data directory: landing zone, warehouse, publications, logs, with the settings of how its landing
    zone is taken in and watched; and the run's inventory of its landing files, taken once per run (kept with
    the run's id: the resource lives as long as the run's process)."""

    path: str
    first_month: str | None = Settings.first_month
    allow_external_links: bool = Settings.allow_external_links
    landing_quiet_seconds: float = Settings.landing_quiet_seconds
    max_row_drop: float = Settings.max_row_drop
    retry_backoff_seconds: float = Settings.retry_backoff_seconds

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
            files = run_files(landing, months, self.allow_external_links)
            self._inventory = (run_id, take_inventory(files, self.landing_quiet_seconds, say=say))
        return self._inventory[1]


class LandingChecks(ConfigurableResource):
    """How the landing suites run: ``defer_docs`` renders Data Docs once per run instead of per check; the
    settings of the input checks."""

    defer_docs: bool = False
    gx_batch_rows: int = Settings.gx_batch_rows
    engine: str = Settings.checks_engine
    return_window_months: int = Settings.return_window_months


class ReportConfig(ConfigurableResource):
    """How much of a publication its HTML report holds (pipelines/publication/report)."""

    months: int = Settings.report_months
    customers: int = Settings.report_customers

    @property
    def bounds(self) -> Bounds:
        return Bounds(self.months, self.customers)


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


def resources_for(settings: Settings, defer_docs: bool = False) -> dict[str, object]:
    return {
        "clv": ClvConfig(),
        "data_dir": DataDir(
            path=str(settings.data_dir),
            first_month=settings.first_month,
            allow_external_links=settings.allow_external_links,
            landing_quiet_seconds=settings.landing_quiet_seconds,
            max_row_drop=settings.max_row_drop,
            retry_backoff_seconds=settings.retry_backoff_seconds,
        ),
        "checks": LandingChecks(
            defer_docs=defer_docs,
            gx_batch_rows=settings.gx_batch_rows,
            engine=settings.checks_engine,
            return_window_months=settings.return_window_months,
        ),
        "report": ReportConfig(months=settings.report_months, customers=settings.report_customers),
        "warehouse": WarehouseResource.of(settings),
        "dbt": dbt_resource(),
    }
