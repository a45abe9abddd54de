"""Publish assets: the marts made available to BI tools, only after everything upstream passed.

The asset runs at the end of the transform job: dbt failures (models, data tests, unit tests, conservation
tests) and failed landing suites upstream mean it does not run, and the previous publication stays as it was.
A publication holds every period in the warehouse, whatever range the run refreshed: re-running a month or a
range publishes the same tables, with the same checksums in marts.publish_log.
"""

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset,
    asset_check,
)

from pipelines.defs.assets.ingest import held_months
from pipelines.defs.dbt import ensure_manifest
from pipelines.defs.partitions import (
    FULL_REFRESH_TAG,
    refresh_range,
    shift_month,
    single_run,
)
from pipelines.defs.resources import DataDir, ReportConfig, WarehouseResource
from pipelines.landing.inventory import month_start
from pipelines.publication.descriptions import published_docs
from pipelines.publication.keys import declared_primary_keys, period_incremental_marts
from pipelines.publication.publish import current_database, publish
from pipelines.publication.report import report_path, write_release_report

SCENARIO_MARTS = (
    "scenario_customer_profitability",
    "scenario_activity_costs",
    "scenario_cost_center_capacity",
    "scenario_whale_curve",
    "scenario_comparison",
    "scenario_summary",
    "scenario_customer_value",
)
PUBLISHED_MARTS = (
    "customer_profitability",
    "customer_cost_to_serve",
    "activity_costs",
    "cost_center_capacity",
    "company_reconciliation",
    "whale_curve",
    "costing_comparison",
    "customer_profit_levers",
    "customer_clv",
    "clv_fits",
    "customer_retention",
    "customer_satisfaction",
    "satisfaction_drivers",
    "satisfaction_retention_fit",
    "customer_scorecard",
    "incentive_attainment",
    "prehistory_returns",
    # the what-if scenarios (docs/DESIGN.md, Scenarios): with the release, so every scenario is computed from,
    # and compared with, the very marts published beside it
    *SCENARIO_MARTS,
)
# Dimension and label tables (dbt models in marts/dimensions), published with the marts for BI joins.
PUBLISHED_DIMENSIONS = (
    "dim_customers",
    "dim_cost_centers",
    "dim_activities",
    "dim_scorecard_metrics",
    "dim_scorecard_owners",
    "dim_scenarios",
    "dim_segments",
    "dim_regions",
    "dim_matrix_quadrants",
    "dim_ipa_quadrants",
    "dim_drivers",
    "publication_info",
    # the metric catalogue of the semantic layer (docs/metrics.md)
    "dim_metrics",
)
# The monthly close runs at 06:00 UTC on the 3rd; the publication of the month before is due by 09:00.
PUBLISH_DEADLINE_DAY = 3
PUBLISH_DEADLINE_HOUR = 9
PUBLISH_DEADLINE_CRON = f"0 {PUBLISH_DEADLINE_HOUR} {PUBLISH_DEADLINE_DAY} * *"
PUBLISHED_MARTS_KEY = AssetKey(["published", "marts"])
# The job that publishes new scenario marts beside the release's actual marts (pipelines/definitions.py).
SCENARIOS_JOB = "scenarios"


def published_marts(monthly: PartitionsDefinition) -> AssetsDefinition:
    """published/marts, on ``monthly``."""

    @asset(
        key=PUBLISHED_MARTS_KEY,
        group_name="publish",
        deps=[AssetKey(["marts", name]) for name in (*PUBLISHED_MARTS, *PUBLISHED_DIMENSIONS)],
        partitions_def=monthly,
        backfill_policy=single_run,
        kinds={"duckdb", "parquet"},
        description="Every mart, published as a new release (published/releases/<run>/: cprof.duckdb with schema "
        "marts, marts.publish_log and marts.publish_period_log, Parquet per mart partitioned by period) and made "
        "current by an atomic swap of published/current; "
        "with the HTML report of it inside the release (report/index.html).",
    )
    def _published_marts(
        context: AssetExecutionContext, data_dir: DataDir, warehouse: WarehouseResource, report: ReportConfig
    ) -> MaterializeResult:
        paths = data_dir.paths
        # The run rebuilt its months and every month awaiting publication (pipelines.defs.partitions.refresh_range):
        # only the periods from the first of them on can differ from the current publication.
        refresh = refresh_range(context, warehouse)
        if context.job_name == SCENARIOS_JOB and refresh.awaiting:
            # The scenarios job rebuilds no actual mart: publishing now would clear months it did not rebuild.
            raise Failure(
                description=f"months {', '.join(refresh.awaiting)} await publication (a failed run, or a "
                "restatement): the scenarios job publishes only beside actual marts already published. Run the "
                "refresh job (cprof run) first; it publishes the scenarios too."
            )
        full = context.run.tags.get(FULL_REFRESH_TAG) == "true"
        changed_from = None if full else month_start(refresh.first)
        # The descriptions dbt docs shows become the published comments, the keys dbt infers from the key tests
        # the primary keys (pipelines/publication/keys.py): from the manifest
        # of this run's dbt build, else the project's.
        manifest = paths.dbt_target / "manifest.json"
        manifest = manifest if manifest.exists() else ensure_manifest()
        with warehouse.session() as wh:
            held = held_months(wh, data_dir)
            publication = publish(
                wh,
                paths.published,
                run_id=context.run.run_id,
                changed_from=changed_from,
                docs=published_docs(manifest),
                extras=lambda release: write_release_report(release, report.bounds),
                memory_limit=warehouse.duckdb_memory_limit,
                primary_keys=declared_primary_keys(manifest),
                currency=warehouse.currency,
                incremental=period_incremental_marts(manifest),
            )
        # Published: the months rebuilt no longer await publication. After the swap, by this run (which holds the
        # writer lock); a crash in between leaves them listed, and the next run refreshes them once more.
        warehouse.runtime().clear_awaiting_publication(month_start(refresh.first), month_start(refresh.last))
        page = report_path(publication.release)
        context.log.info(
            f"published {len(publication.row_counts)} marts as {publication.release} "
            f"({'the current release patched' if publication.patched else 'written whole'}"
            f"{': ' + publication.reason if publication.reason else ''}); report {page}"
        )
        if refresh.also:
            context.log.info(refresh.sentence())
        for (
            line
        ) in held:  # a month whose latest load did not pass is not in this publication, or is as before
            context.log.warning(line)
        return MaterializeResult(
            metadata={
                "release": MetadataValue.path(str(publication.release)),
                "refreshed_months": f"{refresh.first} to {refresh.last}",
                # the months awaiting publication it published, its own or not: the landing sensor counts them
                # as published by this run (pipelines/defs/automation.py)
                "restated_months": MetadataValue.json(list(refresh.awaiting)),
                "held": MetadataValue.json(held),
                "report": MetadataValue.path(str(page)),
                "database": MetadataValue.path(str(publication.database)),
                "row_counts": MetadataValue.json(publication.row_counts),
                "checksums": MetadataValue.json(publication.checksums),
                "patched": publication.patched,
            }
        )

    return _published_marts


def due_month(now: datetime) -> date:
    """The last month whose publication is due at ``now``: the month before the most recent deadline (09:00 UTC
    on the 3rd; the monthly close runs at 06:00)."""
    deadline_passed = (now.day, now.hour) >= (PUBLISH_DEADLINE_DAY, PUBLISH_DEADLINE_HOUR)
    return shift_month(now.date(), -1 if deadline_passed else -2)


def publication_freshness(published: Path, now: datetime) -> tuple[bool, str, dict[str, object]]:
    """Whether the current publication holds the month due at ``now``; a sentence saying so; its figures."""
    due = due_month(now)
    database = current_database(published)
    if not database.exists():
        return (
            False,
            f"nothing is published at {database}; {due:%Y-%m} was due",
            {"due_month": f"{due:%Y-%m}"},
        )
    with duckdb.connect(str(database), read_only=True) as con:
        last, published_at = con.execute(
            "select max(last_period), max(published_at) from marts.publish_log"
        ).fetchone()
    fresh = last is not None and last >= due
    sentence = (
        f"published through {last:%Y-%m} (at {published_at:%Y-%m-%d %H:%M} UTC); {due:%Y-%m} was due by "
        f"the {PUBLISH_DEADLINE_DAY}rd, {PUBLISH_DEADLINE_HOUR:02d}:00 UTC"
    )
    return fresh, sentence, {"due_month": f"{due:%Y-%m}", "published_through": f"{last:%Y-%m}"}


@asset_check(
    asset=PUBLISHED_MARTS_KEY,
    name="published_on_time",
    # Blocking: a late publication fails the check's step after its evaluation is recorded, so the
    # check_freshness run fails and the run-failure sensor (pipelines/defs/alerts.py) tells someone.
    blocking=True,
    description="The publication BI tools read holds the last month whose close is due (by 09:00 UTC on the 3rd "
    "of the month after). Runs on the published_marts_freshness schedule and on demand, not in refresh runs; "
    "when it fails, so does its run.",
)
def published_on_time(context: AssetCheckExecutionContext, data_dir: DataDir) -> AssetCheckResult:
    fresh, sentence, metadata = publication_freshness(data_dir.paths.published, datetime.now(UTC))
    return AssetCheckResult(passed=fresh, description=sentence, metadata=metadata)
