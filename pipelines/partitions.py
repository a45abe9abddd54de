"""The one monthly partitions definition shared by every partitioned asset."""

from __future__ import annotations

import os

from dagster import MonthlyPartitionsDefinition

FIRST_MONTH_ENV = "CPROF_FIRST_MONTH"
DEFAULT_FIRST_MONTH = "2020-01"

monthly_partitions = MonthlyPartitionsDefinition(
    start_date=f"{os.environ.get(FIRST_MONTH_ENV) or DEFAULT_FIRST_MONTH}-01", end_offset=0
)


def partition_key(month: str) -> str:
    """Dagster's key for a YYYY-MM month."""
    return f"{month}-01"


def month_of_key(key: str) -> str:
    return key[:7]
