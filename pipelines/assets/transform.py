"""Transform assets: every dbt model is an asset and every dbt test an asset check.

The models share the monthly partitions of the ingest assets. A run for a month or a range of months passes
the range to dbt in the environment (CPROF_PERIOD_FROM, CPROF_PERIOD_TO); the incremental models replace exactly the periods the
range can change (see dbt_project/macros/refresh_window.sql). The run tag ``cprof/full_refresh`` rebuilds
every model whole (``dbt build --full-refresh``), as needed after a change of the reference configuration.
"""

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
from dagster import AssetExecutionContext, MetadataValue, Output
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from pipelines.config import DATA_DIR_ENV
from pipelines.dbt import dbt_project, ensure_manifest
from pipelines.ingest import awaiting_after
from pipelines.partitions import FULL_REFRESH_TAG, monthly_partitions, partition_key, run_months, single_run
from pipelines.resources import DataDir
from pipelines.sql import qualified


class Translator(DagsterDbtTranslator):
    """Groups dbt models by their layer folder (staging, intermediate, marts)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props.get("resource_type") == "model" and len(fqn) > 2:
            return fqn[1]
        return super().get_group_name(dbt_resource_props)


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def dbt_build_args(full_refresh: bool = False) -> list[str]:
    """``dbt build`` of the models and their data tests. The unit tests check the SQL, not the data: they
    run in the test suite (tests/test_costing.py), not in every refresh."""
    return ["build", "--exclude-resource-type", "unit_test", *(["--full-refresh"] if full_refresh else [])]


def dbt_period_environment(months: list[str], through: str | None = None) -> dict[str, str]:
    """The months first..last of a run, as dbt's models read them (macros/refresh_window.sql); ``through``: a
    later last month the refresh reaches (pipelines.ingest.awaiting_after)."""
    last = max(months[-1], through or months[-1])
    return {"CPROF_PERIOD_FROM": f"{months[0]}-01", "CPROF_PERIOD_TO": f"{last}-01"}


@dbt_assets(
    manifest=ensure_manifest(),
    project=dbt_project,
    dagster_dbt_translator=Translator(),
    partitions_def=monthly_partitions,
    backfill_policy=single_run,
)
def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, data_dir: DataDir):
    paths = data_dir.paths
    paths.logs.mkdir(parents=True, exist_ok=True)
    months = run_months(context)
    args = dbt_build_args(context.run.tags.get(FULL_REFRESH_TAG) == "true")
    # Months after the range awaiting publication (returns whose lines the range brought) are restated too.
    through = awaiting_after(paths.warehouse, months[-1])
    periods = dbt_period_environment(months, through)
    context.log.info(
        f"dbt {' '.join(args)} for {months[0]} to {months[-1]} ({periods})"
        + (f"; through {through}, which awaits publication" if through else "")
    )
    # dbt's profile reads the warehouse location, and the models the run's months, from the environment.
    environment = {DATA_DIR_ENV: str(paths.data_dir), "DBT_LOG_PATH": str(paths.logs / "dbt"), **periods}
    with _environment(**environment):
        yield from with_row_counts(
            context, dbt.cli(args, context=context, target_path=paths.dbt_target).stream(), paths.warehouse, months
        )


def row_counts(warehouse: Path, tables: list[tuple[str, str]], months: list[str]) -> dict:
    """Rows per (schema, table): per month of ``months`` for a table keyed by period, else the whole table's
    count (a dimension, a configuration view). One query per table, after dbt has closed the warehouse."""
    counts: dict[tuple[str, str], int | dict[str, int]] = {}
    periods = [f"{m}-01" for m in months]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        columns = {
            (schema, table): names
            for schema, table, names in con.execute(
                "select table_schema, table_name, list(column_name) from information_schema.columns "
                "group by all"
            ).fetchall()
        }
        for schema, table in tables:
            if (schema, table) not in columns:
                continue
            relation = qualified(schema, table)
            if "period" in columns[schema, table]:
                found = dict(
                    con.execute(
                        f"select strftime(period, '%Y-%m'), count(*) from {relation} "
                        "where period between ?::date and ?::date group by 1",
                        [periods[0], periods[-1]],
                    ).fetchall()
                )
                counts[schema, table] = {m: found.get(m, 0) for m in months}
            else:
                counts[schema, table] = con.execute(f"select count(*) from {relation}").fetchone()[0]
    return counts


def with_row_counts(
    context: AssetExecutionContext, events: Iterable[Any], warehouse: Path, months: list[str]
) -> Iterator[Any]:
    """dbt's events, each model's materialization carrying its row count per partition (``dagster/row_count``:
    that month's rows of a table keyed by period, else the table's). The counts are read once dbt has finished
    (DuckDB admits no reader beside dbt's writer), so the events are passed on then; on a failed build, the
    events dbt produced are passed on and its error raised."""
    collected, error = [], None
    try:
        collected.extend(events)
    except Exception as exc:  # noqa: BLE001 - re-raised below, after the events that precede it
        error = exc
    keys = {
        event.output_name: context.asset_key_for_output(event.output_name)
        for event in collected
        if isinstance(event, Output)
    }
    tables = [tuple(key.path) for key in keys.values() if len(key.path) == 2]
    counts = row_counts(warehouse, tables, months) if tables and warehouse.exists() else {}
    for event in collected:
        if isinstance(event, Output):
            key = keys[event.output_name]
            found = counts.get(tuple(key.path))
            if isinstance(found, dict):
                for month, rows in found.items():
                    context.add_asset_metadata(
                        {"dagster/row_count": MetadataValue.int(rows)},
                        asset_key=key,
                        partition_key=partition_key(month),
                    )
            elif found is not None:
                context.add_asset_metadata({"dagster/row_count": MetadataValue.int(found)}, asset_key=key)
        yield event
    if error is not None:
        raise error
