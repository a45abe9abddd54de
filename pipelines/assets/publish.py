"""Publish assets: the marts made available to BI tools, only after everything upstream passed.

The asset runs at the end of the transform job: dbt failures (models, data tests, unit tests, conservation
tests) and failed landing suites upstream mean it does not run, and the previous publication stays as it was.
"""

from datetime import date

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from pipelines.publish import publish
from pipelines.report import write_report
from pipelines.resources import DataDir

PUBLISHED_MARTS = (
    "customer_profitability",
    "customer_cost_to_serve",
    "activity_costs",
    "cost_center_capacity",
    "company_reconciliation",
    "whale_curve",
    "costing_comparison",
    "customer_clv",
    "customer_retention",
    "customer_satisfaction",
    "satisfaction_drivers",
    "customer_scorecard",
    "incentive_attainment",
)
FIRST_PERIOD_TAG = "cprof/first_period"
LAST_PERIOD_TAG = "cprof/last_period"


def _period(tag: str | None) -> date | None:
    return date.fromisoformat(f"{tag}-01") if tag else None


@asset(
    key=AssetKey(["published", "marts"]),
    group_name="publish",
    deps=[AssetKey(["marts", name]) for name in PUBLISHED_MARTS],
    kinds={"duckdb", "parquet"},
    description="Every mart, published as a new release (published/releases/<run>/: cprof.duckdb with schema "
    "marts and marts.publish_log, Parquet per mart) and made current by an atomic swap of published/current; "
    "then the HTML report of it, report/index.html.",
)
def published_marts(context: AssetExecutionContext, data_dir: DataDir) -> MaterializeResult:
    paths = data_dir.paths
    tags = context.run.tags
    publication = publish(
        paths.warehouse,
        paths.published,
        run_id=context.run.run_id,
        first_period=_period(tags.get(FIRST_PERIOD_TAG)),
        last_period=_period(tags.get(LAST_PERIOD_TAG)),
    )
    report = write_report(publication.database, paths.report)
    context.log.info(
        f"published {len(publication.row_counts)} marts as {publication.release}; report {report}"
    )
    return MaterializeResult(
        metadata={
            "release": MetadataValue.path(str(publication.release)),
            "report": MetadataValue.path(str(report)),
            "database": MetadataValue.path(str(publication.database)),
            "row_counts": MetadataValue.json(publication.row_counts),
            "checksums": MetadataValue.json(publication.checksums),
        }
    )
