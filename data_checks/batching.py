"""Which months of a source are validated together, in one run of Great Expectations.

GX spends 0.1-0.4 s on a validation whatever its size (222 validations in a 37-month build), so consecutive
months are validated together, up to the setting ``gx_batch_rows`` (``CPROF_GX_BATCH_ROWS``) rows at a time, when every expectation of the suite
holds of each month whenever it holds of their union (:func:`batch_minimum_rows`). The validator
(data_checks/gx_run.py) validates a failed batch again month by month.
"""

from __future__ import annotations

from data_checks.suites import rules_for

# Expectations that hold of every month of a frame of several months whenever they hold of the whole: a test of
# each value on its own (without ``mostly``), a key unique in the whole (so in each part), the columns and their
# order (the same in each part). A row count's minimum holds of each month only when that month has that many
# rows (batch_minimum_rows). A suite with any other expectation is validated one month at a time.
_HOLD_IN_EACH_PART = {
    "ExpectColumnValuesToNotBeNull",
    "ExpectColumnValuesToBeNull",
    "ExpectColumnValuesToBeBetween",
    "ExpectColumnValuesToBeInSet",
    "ExpectColumnValuesToMatchRegex",
    "ExpectColumnValuesToBeUnique",
    "ExpectCompoundColumnsToBeUnique",
    "ExpectTableColumnsToMatchOrderedList",
}


def batch_minimum_rows(source: str) -> int | None:
    """The fewest rows a month must have to be validated with others (the suite's row-count minimum, else 0);
    None when the suite has an expectation that may hold of several months together and fail for one of them,
    so that its months are validated one at a time."""
    minimum = 0
    for name, kwargs in rules_for(source):
        if kwargs.get("mostly") is not None:
            return None
        if name == "ExpectTableRowCountToBeBetween" and kwargs.get("max_value") is None:
            minimum = max(minimum, int(kwargs.get("min_value") or 0))
        elif name not in _HOLD_IN_EACH_PART:
            return None
    return minimum


def plan_batches(months: list[str], rows: dict[str, int], budget: int, minimum: int) -> list[list[str]]:
    """Consecutive months in batches of at most ``budget`` rows; a month with more rows, or fewer than
    ``minimum``, is a batch of its own (validated alone, as before batching)."""
    batches: list[list[str]] = []
    current: list[str] = []
    total = 0
    for month in months:
        count = rows.get(month, 0)
        alone = count > budget or count < minimum
        if current and (alone or total + count > budget):
            batches.append(current)
            current, total = [], 0
        if alone:
            batches.append([month])
            continue
        current.append(month)
        total += count
    if current:
        batches.append(current)
    return batches
