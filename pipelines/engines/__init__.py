"""The warehouse engines behind one seam (``pipelines/engines/base.py``): DuckDB, the embedded default, and Spark.

One setting picks the engine and, with it, the dbt target: ``engine`` (``CPROF_ENGINE``) (``duckdb`` unless set; ``spark``
needs the ``spark`` extra and Java 17, ``make install-spark``). Assets get their :class:`Warehouse` from the
Dagster resource (``pipelines/defs/resources.py``), which asks :func:`open_warehouse` here; nothing else imports
an engine module.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from pipelines.lib.settings import ENGINES

if TYPE_CHECKING:
    from datetime import date, datetime
    from pathlib import Path

    from pipelines.engines.base import Warehouse
    from pipelines.lib.settings import Settings

__all__ = ["DBT_TARGETS", "DBT_TARGET_ENV", "ENGINES", "Runtime", "dbt_target", "open_runtime"]
# The dbt target each engine builds the models with (dbt_project/profiles.yml): on Spark, dbt connects to the
# Thrift server the run's Spark session starts (the `spark` target, Spark in dbt's process, serves dbt alone).
DBT_TARGETS = {"duckdb": "local", "spark": "spark_thrift"}
DBT_TARGET_ENV = "CPROF_DBT_TARGET"


def dbt_target(engine: str) -> str:
    """The dbt target ``engine`` (one of ENGINES) builds the models with."""
    return DBT_TARGETS[engine]


class Runtime(Protocol):
    """An engine for the length of a run: hands out warehouse sessions and says how dbt reaches it.

    DuckDB starts nothing (each session is a connection to the file). Spark starts one session (and a Thrift
    server in it, for dbt) on first use and stops it at :meth:`close`: one Spark per run, not per step."""

    engine: str

    def session(self) -> AbstractContextManager[Warehouse]: ...

    def dbt_environment(self) -> dict[str, str]:
        """Environment for dbt's process: the target (``CPROF_DBT_TARGET``) and where the engine listens."""
        ...

    def close(self) -> None: ...

    def check_writable(self) -> None:
        """Raise WarehouseInUse (pipelines/runtime/lock.py), one line naming the process, when another process holds
        the working warehouse's files open so that a run could not write them."""
        ...

    # The run's bookkeeping, read and written outside a session (before a run, and after its publication swap).
    def months_awaiting_publication(self) -> list[str] | None:
        """Months promoted to ``raw`` by a run that did not publish them (None: unknown, a writer holds it)."""
        ...

    def unchanged_snapshots(self, landing: Path, allow_external_links: bool = False) -> dict[str, datetime]:
        """Reference snapshots whose landing file is the one already validated and promoted, and when that file
        was loaded and validated (``allow_external_links``: the setting)."""
        ...

    def clear_awaiting_publication(self, first: date, last: date) -> int:
        """After a publication: the months first..last no longer await it."""
        ...


def open_runtime(settings: Settings) -> Runtime:
    """The runtime of the engine ``settings`` picks, on their data directory."""
    if settings.engine == "spark":
        from pipelines.engines.spark_warehouse import SparkRuntime

        return SparkRuntime(settings)
    from pipelines.engines.duckdb_warehouse import DuckDBRuntime

    return DuckDBRuntime(settings.paths.warehouse, duckdb_settings(settings))


def duckdb_settings(settings: Settings) -> dict[str, object]:
    """DuckDB settings of every connection to the working warehouse (dbt's profile sets the same): a memory
    limit (``duckdb_memory_limit``, default 4GB) past which DuckDB spills to ``<data>/duckdb_tmp``, and no
    insertion-order guarantee, which lets large inserts stream."""
    return {
        "memory_limit": settings.duckdb_memory_limit,
        "temp_directory": str(settings.paths.duckdb_spill),
        "preserve_insertion_order": False,
    }
