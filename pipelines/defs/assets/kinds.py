"""The kinds an asset shows in Dagster (its icons and the ``kind:`` selection): where its table lives.

A table of the working warehouse is in the run's engine (``engine``, ``CPROF_ENGINE``: ``duckdb`` or ``spark``);
the publication is a DuckDB file and Parquet whatever the engine (pipelines/defs/assets/publish.py says so).
"""

from __future__ import annotations

import dataclasses

from pipelines.lib.settings import ENGINES, Settings

# The engine of a definition built without settings (a test's single asset): Settings' own default.
DEFAULT_ENGINE: str = next(field.default for field in dataclasses.fields(Settings) if field.name == "engine")


def warehouse_kinds(engine: str, *more: str) -> set[str]:
    """The kinds of an asset written to the working warehouse of ``engine`` (one of ENGINES), with ``more``."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")
    return {engine, *more}
