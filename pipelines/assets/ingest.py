"""Ingest assets: one per landing source, loading its files into ``raw.<source>`` of the working warehouse.

Monthly sources are partitioned by month and replace exactly their month on reload; snapshots load whole.
The work is done by :func:`pipelines.ingest.load`; these assets only wire it to Dagster.
"""

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, MaterializeResult, MetadataValue, asset
from dagster_duckdb import DuckDBResource

from pipelines.ingest import LoadResult, load
from pipelines.partitions import month_of_key, monthly_partitions
from pipelines.resources import DataDir
from pipelines.sources import SOURCES, Source


def _metadata(result: LoadResult) -> dict[str, object]:
    return {
        "file": MetadataValue.path(str(result.path)),
        "rows": MetadataValue.int(result.rows),
        "sha256": MetadataValue.text(result.sha256),
        "bytes": MetadataValue.int(result.bytes),
        "dagster/row_count": MetadataValue.int(result.rows),
    }


def _ingest_asset(source: Source) -> AssetsDefinition:
    @asset(
        key=AssetKey(["raw", source.name]),
        group_name="ingest",
        partitions_def=monthly_partitions if source.kind == "monthly" else None,
        description=f"{source.description} Loaded from landing/"
        + (f"{source.name}/<YYYY-MM>.csv" if source.kind == "monthly" else f"reference/{source.name}.csv")
        + f" into {source.raw_table}.",
        kinds={"duckdb"},
        metadata={"grain": source.grain, "key": ", ".join(source.key), "table": source.raw_table},
    )
    def _asset(
        context: AssetExecutionContext, data_dir: DataDir, warehouse: DuckDBResource
    ) -> MaterializeResult:
        month = month_of_key(context.partition_key) if source.kind == "monthly" else None
        data_dir.paths.data_dir.mkdir(parents=True, exist_ok=True)
        with warehouse.get_connection() as con:
            result = load(con, data_dir.paths.landing, source.name, month)
        context.log.info(f"{source.name} {month or 'snapshot'}: {result.rows} rows from {result.path}")
        return MaterializeResult(metadata=_metadata(result))

    return _asset


ingest_assets: list[AssetsDefinition] = [_ingest_asset(source) for source in SOURCES]
