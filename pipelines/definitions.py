"""The Dagster code location: ``workspace.yaml`` and ``dagster dev`` load ``defs`` from here.

``build_definitions`` builds the assets, checks, jobs, schedules and sensors for any :class:`Settings` (their data
directory among them; ``cprof`` and the tests use it): the monthly partitions every partitioned asset shares are
built there, from the settings (pipelines/defs/partitions.py: ``partitions_of``), and handed to the factories of
the assets, checks and the landing sensor. ``defs`` is Dagster's lazy entry point (``@dagster.definitions``): the
loader calls it when it loads the code location, and only then are the settings of that process's environment
(``CPROF_DATA_DIR``, or ``data/`` under the project, ...) read, once. Importing this module, or any module of the
project, reads no setting and no data.

Every monthly asset runs a range of months in one run. ``refresh`` is the job the monthly-close schedule, the
landing sensor, ``cprof run`` and ``cprof backfill`` run: ingest and check the reference snapshots and the
months, dbt build, CLV, satisfaction drivers, the dbt models that read those Python marts (customer
satisfaction, scorecard, incentive attainment), the satisfaction-retention link, publish.
"""

from __future__ import annotations

import os

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    Definitions,
    ScheduleDefinition,
    define_asset_job,
    definitions,
    executor,
    in_process_executor,
)

from pipelines.defs.alerts import failure_alert_sensor
from pipelines.defs.assets.clv import customer_clv, customer_clv_holdout
from pipelines.defs.assets.ingest import ingest_assets, ingest_checks
from pipelines.defs.assets.publish import (
    PUBLISH_DEADLINE_CRON,
    PUBLISHED_MARTS_KEY,
    SCENARIOS_JOB,
    published_marts,
    published_on_time,
)
from pipelines.defs.assets.satisfaction import satisfaction
from pipelines.defs.assets.satisfaction_retention import satisfaction_retention
from pipelines.defs.assets.scenario_value import scenario_value
from pipelines.defs.assets.transform import SCENARIOS_GROUP, dbt_models, satisfaction_and_scorecard_models
from pipelines.defs.automation import landing_sensor, monthly_close_schedule
from pipelines.defs.partitions import partitions_of
from pipelines.defs.resources import resources_for
from pipelines.landing.sources import SNAPSHOTS
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.runtime.instance import plan_ranges_in_one_event
from pipelines.runtime.monitoring import LockedInProcessExecutor

REFRESH_DESCRIPTION = (
    "Refresh a month or a range of months: load, check and promote the reference snapshots and the months' "
    "files, dbt build (incremental: the range and the trailing periods it reaches), CLV, satisfaction, "
    "scorecard, then publish every mart."
)


def _refresh_job(without_snapshots: frozenset[str] = frozenset()):
    """The refresh job; ``without_snapshots`` leaves those reference snapshots' ingest assets out (cprof does
    so for snapshots whose files are the ones already validated and promoted)."""
    left_out = AssetSelection.assets(
        *([layer, name] for name in sorted(without_snapshots) for layer in ("landed", "raw"))
    )
    return define_asset_job(
        "refresh",
        selection=AssetSelection.all() - AssetSelection.checks(published_on_time) - left_out,
        description=REFRESH_DESCRIPTION,
    )


SCENARIOS_DESCRIPTION = (
    "What if: load, check and promote the scenarios file (landing/reference/scenarios.csv), rebuild the scenario "
    "marts (group scenarios) against the marts as published, and publish them with the release, its actual marts "
    "unchanged. Refuses to publish while months await publication (run refresh first). On demand, or after the "
    "monthly refresh, which rebuilds them too."
)


def _scenarios_job(without_snapshots: frozenset[str] = frozenset()):
    """The scenarios job (``cprof scenario``); ``without_snapshots`` as for refresh (the scenarios file left out
    when it is the one already validated and promoted)."""
    snapshot = [] if "scenarios" in without_snapshots else [["landed", "scenarios"], ["raw", "scenarios"]]
    return define_asset_job(
        SCENARIOS_JOB,
        selection=(
            # the staging view between the file and the models: selected, so the models wait for the file
            AssetSelection.assets(
                *snapshot,
                ["staging", "stg_config__scenarios"],
                ["marts", "dim_scenarios"],
                PUBLISHED_MARTS_KEY,
            )
            | AssetSelection.groups(SCENARIOS_GROUP)
        )
        - AssetSelection.checks(published_on_time),
        description=SCENARIOS_DESCRIPTION,
    )


ingest_reference_job = define_asset_job(
    "ingest_reference",
    selection=AssetSelection.assets(*([layer, s.name] for s in SNAPSHOTS for layer in ("landed", "raw"))),
    description="Load, validate and promote the reference snapshots only.",
)

freshness_job = define_asset_job(
    "check_freshness",
    selection=AssetSelection.checks(published_on_time),
    description="Is the publication of the last complete month there? (runs at the deadline, and on demand)",
)
freshness_schedule = ScheduleDefinition(
    name="published_marts_freshness",
    job=freshness_job,
    cron_schedule=PUBLISH_DEADLINE_CRON,
    default_status=DefaultScheduleStatus.STOPPED,
    description="At the publication deadline (09:00 UTC on the 3rd), check that last month's marts were published.",
)


def locked_in_process_executor(data_paths: Paths):
    """Dagster's in-process executor (one process: DuckDB allows one writer per file, so steps must not run in
    parallel processes), holding the data directory's writer lock for the run (pipelines/runtime/monitoring.py)."""

    @executor(name="in_process", config_schema=in_process_executor.config_schema)
    def _executor(init_context):
        inner = in_process_executor.executor_creation_fn(init_context)
        return LockedInProcessExecutor(data_paths.data_dir, inner)

    return _executor


def build_definitions(
    settings: Settings, defer_docs: bool = False, without_snapshots: frozenset[str] = frozenset()
) -> Definitions:
    """Everything of the code location, bound to ``settings``; its monthly partitions from their first_month /
    last_month, else the span of history recorded in their data directory (read here, not at import)."""
    monthly = partitions_of(settings)
    refresh = _refresh_job(without_snapshots)
    return Definitions(
        assets=[
            *ingest_assets(monthly, settings.engine),
            dbt_models(monthly, settings.engine),
            customer_clv(monthly, settings.engine),
            satisfaction(monthly, settings.engine),
            satisfaction_and_scorecard_models(monthly, settings.engine),
            satisfaction_retention(monthly, settings.engine),
            scenario_value(monthly, settings.engine),
            published_marts(monthly),
        ],
        asset_checks=[*ingest_checks(monthly), customer_clv_holdout, published_on_time],
        jobs=[refresh, _scenarios_job(without_snapshots), ingest_reference_job, freshness_job],
        schedules=[monthly_close_schedule(refresh), freshness_schedule],
        sensors=[landing_sensor(monthly), failure_alert_sensor(settings)],
        resources=resources_for(settings, defer_docs),
        executor=locked_in_process_executor(settings.paths),
    )


@definitions
def defs() -> Definitions:
    """The code location as the webserver, the daemon and ``dagster`` commands load it: the settings of this
    process's environment, read once, now (a bad CPROF_ setting fails the load with one line naming it)."""
    plan_ranges_in_one_event()
    return build_definitions(Settings.from_environ(os.environ))
