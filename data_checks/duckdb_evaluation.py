"""Evaluating a landing suite's expectations inside DuckDB, in one aggregate pass over several months.

Great Expectations 1.24 has no DuckDB execution engine (a native one is an open pull request upstream,
great_expectations#12084) and its SQL engine fails on DuckDB, so on DuckDB the suites ran on GX's pandas engine:
most of the input checks' time went into converting each month to pandas. This module is the seam that replaces
that conversion for the partitions that pass. It reads the same expectation configurations GX's suites are built
from (:func:`data_checks.suites.rules_for`) and evaluates each, with GX's semantics, as an aggregate of the
suite's validation frame grouped by month: the frame never leaves DuckDB.

What it gives per partition is what the outcome of GX's pandas engine says of it: the rows, how many expectations
were evaluated, and each failed one with its unexpected count (a column's values) or its observed value (the
table's row count, its columns). The validator (data_checks/gx_run.py) publishes a partition that passed with
this; a partition that failed is validated again by GX itself, month by month, so its message, samples, lines in
the file and Data Docs page are GX's own. ``tests/test_duckdb_evaluation.py`` proves the two engines agree on
every suite, on the demo's months and on the whole bad-input corpus.

When GX ships a DuckDB engine, :func:`evaluate` is the one place to hand to it (the setting ``checks_engine``:
``duckdb`` here, ``pandas`` for GX's pandas engine on every partition).

GX's semantics, as its pandas engine applies them (great_expectations 1.24):

* ``ExpectColumnValuesToNotBeNull``: the nulls are unexpected.
* ``ExpectColumnValuesToBeNull``: the values that are not null are unexpected.
* ``ExpectColumnValuesToBeBetween``, ``...ToBeInSet``, ``...ToMatchRegex``: nulls are ignored; a value below
  ``min_value`` or above ``max_value`` (both inclusive, either may be absent), not in ``value_set``, or in which
  ``regex`` matches nowhere (a search, not a full match) is unexpected.
* ``ExpectColumnValuesToBeUnique``: every row whose (non-null) value occurs more than once is unexpected.
* ``ExpectCompoundColumnsToBeUnique``: every row whose combination of the columns occurs more than once, rows
  with all of them null ignored (GX's ``ignore_row_if='all_values_are_missing'``).
* ``ExpectTableRowCountToBeBetween``, ``ExpectTableColumnsToMatchOrderedList``: observed the row count, the
  columns in order.

A suite with any other expectation, or with arguments not listed here (``mostly``, ``strict_min``, ...), is not
evaluated here (:func:`supports` is False): GX's engine validates it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from data_checks.outcomes import ExpectationFailure
from data_checks.suites import PARTITION_COLUMN, rules_for
from pipelines.engines.sql import ident

# Each supported expectation, with the arguments it may have.
_ARGUMENTS = {
    "ExpectColumnValuesToNotBeNull": {"column"},
    "ExpectColumnValuesToBeNull": {"column"},
    "ExpectColumnValuesToBeBetween": {"column", "min_value", "max_value"},
    "ExpectColumnValuesToBeInSet": {"column", "value_set"},
    "ExpectColumnValuesToMatchRegex": {"column", "regex"},
    "ExpectColumnValuesToBeUnique": {"column"},
    "ExpectCompoundColumnsToBeUnique": {"column_list"},
    "ExpectTableRowCountToBeBetween": {"min_value", "max_value"},
    "ExpectTableColumnsToMatchOrderedList": {"column_list"},
}


@dataclass(frozen=True)
class Evaluation:
    """What a suite found in one partition: its rows, the expectations evaluated, the failed ones (their
    unexpected count or observed value; no samples: a failed partition is validated again by GX)."""

    rows: int
    evaluated: int
    failures: list[ExpectationFailure] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.failures


class FrameMismatch(ValueError):
    """The frame lacks a column the suite names: GX's engine reports that (an exception per expectation)."""


def supports(source: str) -> bool:
    """Whether every expectation of ``source``'s suite is one this module evaluates with GX's semantics."""
    return all(name in _ARGUMENTS and set(kwargs) <= _ARGUMENTS[name] for name, kwargs in rules_for(source))


def result_order(source: str) -> list[int]:
    """The suite's expectations (their indexes in ``rules_for``) in the order GX's results list them, and so
    its messages: the table's expectations, then those of several columns, then each column's, the columns in
    the order the suite first names them; in the suite's order within each."""
    rules = rules_for(source)
    columns = list(dict.fromkeys(kwargs["column"] for _, kwargs in rules if "column" in kwargs))

    def place(index: int) -> tuple[int, int, int]:
        name, kwargs = rules[index]
        if "column" in kwargs:
            return (2, columns.index(kwargs["column"]), index)
        if name.startswith("ExpectTable"):
            return (0, 0, index)
        return (1, 0, index)

    return sorted(range(len(rules)), key=place)


def gx_type(name: str) -> str:
    """GX's snake-case type of an expectation class (``ExpectColumnValuesToBeNull`` ->
    ``expect_column_values_to_be_null``), as its results name it."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def evaluate(
    con: duckdb.DuckDBPyConnection,
    source: str,
    frame_sql: str,
    parameters: dict[str, Any],
    months: Sequence[str | None],
) -> dict[str | None, Evaluation]:
    """Evaluate ``source``'s suite on each of ``months`` in one query. ``frame_sql`` (bound by ``parameters``) is
    the months' validation frames, with each row's month in ``PARTITION_COLUMN`` when ``months`` are months, or
    the snapshot's frame (``months`` is ``[None]``)."""
    rules = rules_for(source)
    if not supports(source):
        raise ValueError(f"the {source} suite has expectations only Great Expectations evaluates")
    columns = [d[0] for d in con.execute(f"select * from ({frame_sql}) limit 0", parameters).description]
    frame_columns = [c for c in columns if c != PARTITION_COLUMN]
    named = {c for _, kwargs in rules for c in [kwargs.get("column"), *kwargs.get("column_list", ())] if c}
    if named - set(frame_columns):
        raise FrameMismatch(
            f"the {source} frame lacks {sorted(named - set(frame_columns))}: Great Expectations reports it"
        )
    partition = ident(PARTITION_COLUMN) if PARTITION_COLUMN in columns else "cast(null as varchar)"
    values = dict(parameters)
    aggregates: list[str] = []
    uniques: list[tuple[int, list[str]]] = []
    for index, (name, kwargs) in enumerate(rules):
        condition = _unexpected(index, name, kwargs, values)
        if condition is not None:
            aggregates.append(f"count(*) filter (where {condition}) as r{index}")
        elif name in ("ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique"):
            uniques.append((index, [kwargs["column"]] if "column" in kwargs else list(kwargs["column_list"])))
    ctes = [
        f"frame as ({frame_sql})",
        f"counted as (select {partition} as _month, count(*) as _rows"
        + "".join(f", {a}" for a in aggregates)
        + " from frame group by all)",
    ]
    for index, key in uniques:
        names = ", ".join(ident(c) for c in key)
        present = " or ".join(f"{ident(c)} is not null" for c in key)
        ctes.append(
            f"u{index} as (select _month, sum(n) as r{index} from (select {partition} as _month, {names}, "
            f"count(*) as n from frame where {present} group by all having count(*) > 1) group by _month)"
        )
    joined = "".join(  # a snapshot's _month is null
        f" left join u{index} on u{index}._month is not distinct from counted._month" for index, _ in uniques
    )
    picked = "".join(f", coalesce(u{index}.r{index}, 0)" for index, _ in uniques)
    found = con.execute(
        f"with {', '.join(ctes)} select counted.*{picked} from counted{joined}", values
    ).fetchall()
    names = ["_month", "_rows", *(a.rsplit(" as ", 1)[1] for a in aggregates), *(f"r{i}" for i, _ in uniques)]
    by_month = {row[0]: dict(zip(names, row, strict=True)) for row in found}
    evaluations = {}
    for month in months:
        counts = by_month.get(month, {"_rows": 0})
        rows = int(counts["_rows"])
        failures = []
        for index in result_order(source):
            name, kwargs = rules[index]
            failure = _failure(name, kwargs, rows, int(counts.get(f"r{index}") or 0), frame_columns)
            if failure is not None:
                failures.append(failure)
        evaluations[month] = Evaluation(rows, len(rules), failures)
    return evaluations


def _unexpected(index: int, name: str, kwargs: dict[str, Any], values: dict[str, Any]) -> str | None:
    """The SQL condition of a row unexpected by a column-map expectation (its bounds, set and pattern bound as
    parameters ``$e<index>_...``), or None for the other expectations."""
    column = ident(kwargs["column"]) if "column" in kwargs else None
    if name == "ExpectColumnValuesToNotBeNull":
        return f"{column} is null"
    if name == "ExpectColumnValuesToBeNull":
        return f"{column} is not null"
    if name == "ExpectColumnValuesToBeBetween":
        outside = []
        for bound, operator in (("min_value", "<"), ("max_value", ">")):
            if kwargs.get(bound) is not None:
                values[f"e{index}_{bound}"] = kwargs[bound]
                outside.append(f"{column} {operator} $e{index}_{bound}")
        return " or ".join(outside) if outside else "false"
    if name == "ExpectColumnValuesToBeInSet":
        members = []
        for position, member in enumerate(kwargs["value_set"]):
            values[f"e{index}_{position}"] = member
            members.append(f"$e{index}_{position}")
        if not members:  # GX: nothing is in an empty set, so every value is unexpected (a null never is)
            return f"{column} is not null"
        return f"{column} is not null and {column} not in ({', '.join(members)})"
    if name == "ExpectColumnValuesToMatchRegex":
        values[f"e{index}_regex"] = kwargs["regex"]
        return f"{column} is not null and not regexp_matches(cast({column} as varchar), $e{index}_regex)"
    return None


def _failure(
    name: str, kwargs: dict[str, Any], rows: int, unexpected: int, frame_columns: list[str]
) -> ExpectationFailure | None:
    """The failure GX reports for a partition of ``rows`` rows, ``unexpected`` of them unexpected; None if the
    expectation holds."""
    expectation = gx_type(name)
    if name == "ExpectTableRowCountToBeBetween":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        if (low is None or rows >= low) and (high is None or rows <= high):
            return None
        return ExpectationFailure(expectation, None, None, [], observed=rows)
    if name == "ExpectTableColumnsToMatchOrderedList":
        if frame_columns == list(kwargs["column_list"]):
            return None
        return ExpectationFailure(expectation, None, None, [], observed=frame_columns)
    if not unexpected:
        return None
    column = kwargs.get("column") or kwargs.get("column_list")
    return ExpectationFailure(expectation, str(column), unexpected, [])
