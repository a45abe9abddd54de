"""Publish assets: the marts copied where BI tools read them (a separate DuckDB file and Parquet per mart)."""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from pipelines.publish import publish
from pipelines.resources import DataDir

PROFITABILITY_MARTS = (
    "customer_profitability",
    "customer_cost_to_serve",
    "activity_costs",
    "cost_center_capacity",
    "company_reconciliation",
    "whale_curve",
    "costing_comparison",
)


@asset(
    key=AssetKey(["published", "marts"]),
    group_name="publish",
    deps=[AssetKey(["marts", name]) for name in PROFITABILITY_MARTS],
    kinds={"duckdb", "parquet"},
    description="Every mart of the working warehouse, published to published/cprof.duckdb (schema marts) and "
    "published/parquet/<mart>.parquet, swapped in atomically.",
)
def published_marts(context: AssetExecutionContext, data_dir: DataDir) -> MaterializeResult:
    paths = data_dir.paths
    publication = publish(paths.warehouse, paths.published)
    context.log.info(f"published {len(publication.row_counts)} marts to {publication.database}")
    return MaterializeResult(
        metadata={
            "database": MetadataValue.path(str(publication.database)),
            "parquet": MetadataValue.path(str(publication.parquet)),
            "row_counts": MetadataValue.json(publication.row_counts),
        }
    )
