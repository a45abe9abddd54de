"""Schedules and sensors: the monthly close, and the landing-zone sensor that refreshes a month when its files
are complete or one of them was corrected, or when its last refresh failed.

Both decide from what was published, as the Dagster instance records it (pipelines/defs/month_state.py), so loads
from ``cprof`` and from the UI count alike, not from the first step of a run; which runs that calls for, with the
retry limit and wait, is pipelines/defs/refresh_requests.py. Neither reads the warehouse (a run may be writing it,
and even a reader would keep a starting run out): the warehouse's own record of months awaiting publication
(``landed._awaiting_publication``) is what every run, however launched, adds to the months it rebuilds. A month
still missing files is reported by name and left alone. A reference snapshot changed on disk is reported: the next
run of any month loads it and, when it changes or removes rows, restates every month with it. The monthly close
requests the previous month (the run adds the months awaiting publication).
"""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import (
    DefaultSensorStatus,
    MonthlyPartitionsDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    schedule,
    sensor,
)

from pipelines.defs.month_state import REFRESH_JOB
from pipelines.defs.partitions import shift_month
from pipelines.defs.refresh_requests import RETRY_LIMIT, refresh_request, refresh_requests
from pipelines.defs.resources import DataDir
from pipelines.landing.history import record_landing_history

# The monthly close runs at 06:00 UTC on the 3rd, when the ledger of the previous month has closed; the
# published marts are due by 09:00 (pipelines.defs.assets.publish.PUBLISH_DEADLINE_CRON).


LANDING_SENSOR = "landing_sensor"


def landing_sensor(partitions: MonthlyPartitionsDefinition) -> SensorDefinition:
    """The landing sensor of the code location whose monthly partitions are ``partitions``."""

    @sensor(
        name=LANDING_SENSOR,
        job_name=REFRESH_JOB,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.STOPPED,
        description="Watches the landing zone and the publications: when a month's complete set of files has "
        "arrived, one of its files was replaced by a corrected one (by content: SHA-256), or its last refresh "
        "failed, refreshes that month (and the trailing views it feeds; one run for months due apart only by "
        f"published, unchanged ones); a failing month is attempted at most {RETRY_LIMIT} times, with a "
        "growing wait, then reported. Reports the files a month is still waiting for.",
    )
    def _landing_sensor(context: SensorEvaluationContext, data_dir: DataDir):
        # The landing zone's span, recorded for the next load of the code location (its partitions read it).
        record_landing_history(data_dir.paths.data_dir, allow_external_links=data_dir.allow_external_links)
        requests, waiting = refresh_requests(
            context.instance,
            data_dir.paths.landing,
            partitions,
            first_month=data_dir.first_month,
            retry_backoff=data_dir.retry_backoff_seconds,
            allow_external_links=data_dir.allow_external_links,
        )
        for line in waiting:
            context.log.info(line)
        if requests:
            return SensorResult(run_requests=requests)
        blocked = any(line.startswith("nothing loaded until") for line in waiting)
        return SkipReason(
            (
                "the landing zone has files that break its spec"
                if blocked
                else "nothing to request now"
                if waiting
                else "every complete month is published and unchanged"
            )
            + ("; " + "; ".join(waiting) if waiting else "")
        )

    return _landing_sensor


def monthly_close_schedule(refresh_job):
    @schedule(
        job=refresh_job,
        name="monthly_close",
        cron_schedule="0 6 3 * *",
        execution_timezone="UTC",
        description="Monthly close: at 06:00 UTC on the 3rd, after the ledger has closed, refresh the previous "
        "month (ingest, check, dbt build, CLV, satisfaction, scorecard, publish); the run rebuilds and publishes "
        "every month awaiting publication with it (released to raw by a run that did not publish it).",
    )
    def _monthly_close(context: ScheduleEvaluationContext):
        scheduled = context.scheduled_execution_time or datetime.now(UTC)
        # The run rebuilds and publishes the months awaiting publication with it (partitions.refresh_range).
        return refresh_request([f"{shift_month(scheduled.date().replace(day=1), -1):%Y-%m}"])

    return _monthly_close
