"""Row counts of the marts per partition, as Dagster's ``dagster/row_count`` of each partition: what the asset
catalogue shows of every monthly asset."""

from __future__ import annotations

from dagster import AssetExecutionContext, AssetKey, MetadataValue

from pipelines.defs.partitions import partition_key, run_months
from pipelines.defs.resources import WarehouseResource
from pipelines.engines.base import PeriodWindow
from pipelines.landing.inventory import month_start


def row_counts(warehouse: WarehouseResource, tables: list[tuple[str, str]], months: list[str]) -> dict:
    """Rows per (schema, table): per month of ``months`` for a table keyed by period, else the whole table's
    count (a dimension, a configuration view). One query per table, after dbt has closed the warehouse."""
    counts: dict[tuple[str, str], int | dict[str, int]] = {}
    window = PeriodWindow(month_start(months[0]), month_start(months[-1]))
    with warehouse.session() as wh:
        for schema, table in tables:
            relation = f"{schema}.{table}"
            columns = wh.columns(relation)
            if not columns:
                continue
            if "period" in columns:
                found = {str(p)[:7]: n for p, n in wh.count_by(relation, "period", window.filters()).items()}
                counts[schema, table] = {m: found.get(m, 0) for m in months}
            else:
                counts[schema, table] = wh.count(relation)
    return counts


def add_row_counts(
    context: AssetExecutionContext, warehouse: WarehouseResource, keys: list[AssetKey]
) -> None:
    """The rows of each asset of ``keys`` (a table marts/<name>), per partition of the run, as each
    partition's ``dagster/row_count``: for the Python marts, whose one materialization covers the run's range
    (a count for the whole range would show as every month's). Call it with the warehouse closed."""
    months = run_months(context)
    tables = [tuple(key.path) for key in keys if len(key.path) == 2]
    counts = row_counts(warehouse, tables, months) if tables and months else {}
    for key in keys:
        add_row_count(context, key, counts.get(tuple(key.path)))


def add_row_count(context: AssetExecutionContext, key: AssetKey, found: int | dict[str, int] | None) -> None:
    if isinstance(found, dict):
        for month, rows in found.items():
            context.add_asset_metadata(
                {"dagster/row_count": MetadataValue.int(rows)},
                asset_key=key,
                partition_key=partition_key(month),
            )
    elif found is not None:
        context.add_asset_metadata({"dagster/row_count": MetadataValue.int(found)}, asset_key=key)
