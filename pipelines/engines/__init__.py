"""The warehouse engines behind one seam (``pipelines/engines/base.py``): DuckDB, the embedded default, and Spark.

One setting picks the engine and, with it, the dbt target: ``CPROF_ENGINE`` (``duckdb`` unless set; ``spark``
needs the ``spark`` extra and Java 17, ``make install-spark``). Assets get their :class:`Warehouse` from the
Dagster resource (``pipelines/defs/resources.py``), which asks :func:`open_warehouse` here; nothing else imports
an engine module.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from pipelines.lib.settings import choice, memory_size, setting

if TYPE_CHECKING:
    from datetime import date, datetime
    from pathlib import Path

    from pipelines.engines.base import Warehouse
    from pipelines.lib.config import Paths

ENGINE_ENV = "CPROF_ENGINE"
ENGINES = ("duckdb", "spark")
ENGINE = setting(ENGINE_ENV, choice(*ENGINES), f"one of {', '.join(ENGINES)}", "duckdb")
# The dbt target each engine builds the models with (dbt_project/profiles.yml): on Spark, dbt connects to the
# Thrift server the run's Spark session starts (the `spark` target, Spark in dbt's process, serves dbt alone).
DBT_TARGETS = {"duckdb": "local", "spark": "spark_thrift"}
DBT_TARGET_ENV = "CPROF_DBT_TARGET"


class UnknownEngine(ValueError):
    pass


def engine_name(value: str | None = None) -> str:
    """The engine chosen: ``value``, else ``$CPROF_ENGINE``, else duckdb."""
    name = (value or ENGINE.get()).strip().lower()
    if name not in ENGINES:
        raise UnknownEngine(f"{ENGINE_ENV}={name!r}: the engines are {', '.join(ENGINES)}")
    return name


def dbt_target(engine: str | None = None) -> str:
    return DBT_TARGETS[engine_name(engine)]


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
        """Raise WarehouseInUse (pipelines/lib/lock.py), one line naming the process, when another process holds
        the working warehouse's files open so that a run could not write them."""
        ...

    # The run's bookkeeping, read and written outside a session (before a run, and after its publication swap).
    def months_awaiting_publication(self) -> list[str] | None:
        """Months promoted to ``raw`` by a run that did not publish them (None: unknown, a writer holds it)."""
        ...

    def unchanged_snapshots(self, landing: Path) -> dict[str, datetime]:
        """Reference snapshots whose landing file is the one already validated and promoted, and when that file
        was loaded and validated."""
        ...

    def clear_awaiting_publication(self, first: date, last: date) -> int:
        """After a publication: the months first..last no longer await it."""
        ...


def open_runtime(paths: Paths, engine: str | None = None, **options: object) -> Runtime:
    """The runtime of ``engine`` (default: ``$CPROF_ENGINE``) on the data directory ``paths``."""
    name = engine_name(engine)
    if name == "spark":
        from pipelines.engines.spark_warehouse import SparkRuntime

        return SparkRuntime(paths, **options)
    from pipelines.engines.duckdb_warehouse import DuckDBRuntime

    return DuckDBRuntime(paths.warehouse, duckdb_settings(paths))


MEMORY_LIMIT_ENV = "CPROF_DUCKDB_MEMORY_LIMIT"
MEMORY_LIMIT = setting(
    MEMORY_LIMIT_ENV,
    memory_size,
    "a memory size DuckDB takes: a number and a unit (4GB, 512MB, 2GiB) or a percentage",
    "4GB",
)


def duckdb_settings(paths: Paths) -> dict[str, object]:
    """DuckDB settings of every connection to the working warehouse (dbt's profile sets the same): a memory
    limit (``$CPROF_DUCKDB_MEMORY_LIMIT``, default 4GB) past which DuckDB spills to ``<data>/duckdb_tmp``, and
    no insertion-order guarantee, which lets large inserts stream."""
    return {
        "memory_limit": MEMORY_LIMIT.get(),
        "temp_directory": str(paths.data_dir / "duckdb_tmp"),
        "preserve_insertion_order": False,
    }
