"""Exact parsing: a landing value is loaded only when it is written exactly in its column's declared type.

DuckDB's casts are generous: ``'2.5'`` becomes the INTEGER 3, ``'1e3'``, ``'0x10'`` and ``'1_000'`` become 1000,
16 and 1000, ``'134.124999'`` becomes the DECIMAL(18,2) 134.12, and a Parquet double 8.4 becomes 8. Each would
then pass the range checks with a value nobody wrote. So every value is first read as text and must match its
type's pattern (below) before it is cast; a value that does not, or that the cast then refuses (a 30 February, an
amount beyond the precision), fails the whole file with its line (CSV; Parquet: row), column, value and the rule.

The checks are one vectorised DuckDB expression per column inside the load's own INSERT (no second pass over
the file); only when it fails is the file read again to name the first offenders and count them.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.engines.sql import ident, literal
from pipelines.landing.sources import Source

__all__ = [
    "TypeRule",
    "checked_cast",
    "csv_lines",
    "csv_text_sql",
    "describe_offenders",
    "offenders_sql",
    "parquet_text_sql",
    "parquet_types",
    "rule_for",
]


@dataclass(frozen=True)
class TypeRule:
    kind: str  # the declared DuckDB type, e.g. DECIMAL(18,2)
    pattern: str  # RE2, matched against the whole text of a value
    words: str  # the rule, for a person


_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def rule_for(kind: str) -> TypeRule | None:
    """The rule of a declared column type; None for text (VARCHAR), which takes any value."""
    kind = kind.upper().replace(" ", "")
    if kind in ("INTEGER", "BIGINT", "SMALLINT"):
        return TypeRule(
            kind,
            r"[+-]?[0-9]+",
            f"a whole number: digits with an optional sign, within {kind}'s range (no decimal point, exponent, "
            "hexadecimal or digit separators)",
        )
    decimal = _DECIMAL.fullmatch(kind)
    if decimal:
        precision, scale = int(decimal.group(1)), int(decimal.group(2))
        if scale == 0:
            pattern = r"[+-]?[0-9]+(\.0*)?"
        else:  # zeros beyond the scale change nothing and are accepted: 134.1200 is 134.12
            pattern = rf"[+-]?([0-9]+(\.[0-9]{{0,{scale}}}0*)?|\.[0-9]{{1,{scale}}}0*)"
        return TypeRule(
            kind,
            pattern,
            f"a decimal number with at most {scale} decimal places and {precision - scale} digits "
            "before the point (no exponent or digit separators); it is not rounded",
        )
    if kind == "DATE":
        return TypeRule(kind, r"[0-9]{4}-[0-9]{2}-[0-9]{2}", "an ISO date, YYYY-MM-DD, of a day that exists")
    if kind == "TIMESTAMP":
        return TypeRule(
            kind,
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?",
            "an ISO timestamp, YYYY-MM-DD HH:MM:SS (or a T for the space), optionally with up to 6 decimals of a "
            "second, without a time zone",
        )
    if kind == "BOOLEAN":
        return TypeRule(kind, r"(?i)(true|false)", "true or false")
    if kind == "VARCHAR":
        return None
    raise ValueError(f"no exact-parsing rule for the declared type {kind}")


def _matches(expression: str, rule: TypeRule) -> str:
    return f"regexp_full_match({expression}, {literal(rule.pattern)})"


def checked_cast(expression: str, kind: str) -> str:
    """SQL: ``expression`` (text) cast to ``kind``, or an error when the text does not match the type's rule.
    NULL stays NULL (the suites check what must be present)."""
    rule = rule_for(kind)
    if rule is None:
        return expression
    return (
        f"case when {expression} is null or {_matches(expression, rule)} then cast({expression} as {kind}) "
        f"else error('cprof: not an exact ' || {literal(kind)} || ': ' || {expression}) end"
    )


def offenders_sql(relation: str, columns: dict[str, str], position: str, limit: int = 3) -> str:
    """SQL: the first ``limit`` values of ``relation`` (text columns) that do not fit their declared type, in file
    order of ``position``, as (position, column, value, kind), with the total count in a last column."""
    parts = []
    for name, kind in columns.items():
        rule = rule_for(kind)
        if rule is None:
            continue
        column = ident(name)
        parts.append(
            f"select {position} as position, {literal(name)} as column_name, {column} as value, "
            f"{literal(kind)} as kind from {relation} where {column} is not null and not "
            f"({_matches(column, rule)} and try_cast({column} as {kind}) is not null)"
        )
    if not parts:
        return "select null as position, null as column_name, null as value, null as kind, 0 as total limit 0"
    return (
        f"select *, count(*) over () as total from ({' union all '.join(parts)}) "
        f"order by position, column_name limit {int(limit)}"
    )


def csv_lines(path: Path, rows: set[int]) -> dict[int, int]:
    """The line of the file on which each data row (0-based, in file order, as DuckDB reads them: blank lines
    skipped) begins; the header is line 1, and a quoted value spanning lines moves every later row down."""
    found: dict[int, int] = {}
    if not rows:
        return found
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        start, row = reader.line_num + 1, -1
        for record in reader:
            if record:
                row += 1
                if row in rows:
                    found[row] = start
                    if len(found) == len(rows):
                        break
            start = reader.line_num + 1
    return found


def describe_offenders(offenders: list[tuple], where: dict[int, str]) -> str:
    """The message of a file whose values do not fit: how many, then one line per offender shown."""
    total = offenders[0][4]
    values = f"{total} values are" if total != 1 else "1 value is"
    shown = f" (the first {len(offenders)}):" if total > len(offenders) else ":"
    lines = [f"{values} not written exactly in the column's declared type, so nothing was loaded{shown}"]
    for position, column, value, kind, _ in offenders:
        text = value if len(value) <= 80 else value[:77] + "..."
        rule = rule_for(kind)
        lines.append(
            f"  {where[position]}, column {column}, value {text!r}: expected {kind}, "
            f"{rule.words if rule else 'text'}"
        )
    return "\n".join(lines)


# -- a landing file read as text, every value as written (DuckDB, whatever the engine) ---------------------


def csv_text_sql(source: Source, present: list[str] | None = None) -> str:
    """A SELECT over the CSV file ``$path`` that yields the source's columns as text, exactly as written; the file
    has the columns ``present`` (default: the required ones), and an optional column it lacks is NULL."""
    present = present or list(source.columns)
    columns = ", ".join(f"{literal(name)}: 'VARCHAR'" for name in present)
    return (
        f"select {_with_absent_as_null(source, present)} from read_csv($path, header = true, auto_detect = false, "
        "delim = ',', quote = '\"', escape = '\"', strict_mode = true, null_padding = false, "
        f"columns = {{{columns}}})"
    )


def _with_absent_as_null(source: Source, present: list[str] | set[str]) -> str:
    """The select list of every table column of ``source``, NULL (text) for an optional column not ``present``."""
    return ", ".join(
        ident(name) if name in present else f"cast(null as varchar) as {ident(name)}"
        for name in source.table_columns
    )


_FLOATS = ("FLOAT", "DOUBLE", "REAL")


def parquet_types(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    """The DuckDB type of each column of a Parquet file."""
    return dict(
        con.execute(
            "select column_name, column_type from (describe select * from read_parquet(?))", [str(path)]
        ).fetchall()
    )


def parquet_text_sql(source: Source, stored: dict[str, str], row_number: bool = False) -> str:
    """A SELECT over the Parquet file ``$path`` that yields the source's columns as text, except those already
    stored in their declared type (``stored``: the file's column types), which stay as they are unless
    ``row_number`` (then everything is text, with the row's position). A double becomes its shortest exact
    decimal: 8.0 fits an INTEGER column (the trailing ``.0`` dropped), 8.4 does not."""
    expressions = ["file_row_number"] if row_number else []
    for name, kind in source.table_columns.items():
        column = ident(name)
        if name not in stored:  # an optional column the file does not have
            text = "cast(null as varchar)"
        elif stored.get(name) == kind and not row_number:
            text = column
        elif stored.get(name) in _FLOATS and kind in ("INTEGER", "BIGINT"):
            text = f"regexp_replace(cast({column} as varchar), '\\.0$', '')"
        else:
            text = f"cast({column} as varchar)"
        expressions.append(f"{text} as {column}")
    options = ", file_row_number = true" if row_number else ""
    return f"select {', '.join(expressions)} from read_parquet($path{options})"
