"""Where a landing file holds given rows: the CSV line or the Parquet row of each key, for the input checks'
messages (a sample offending value is shown with the line to open the file at).

Great Expectations reports each sample offending row by its key columns (``unexpected_index_column_names``);
this reads the file once more, only when a check failed, and finds the rows with those keys (a key repeated in
the file, the failure of a uniqueness rule, has all its lines). DuckDB reads the file (in memory, not the
warehouse), whatever engine loaded it, so both engines name the same lines.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from pipelines.engines.sql import ident
from pipelines.landing.parsing import csv_lines, csv_text_sql, parquet_text_sql, parquet_types
from pipelines.landing.sources import BY_NAME
from pipelines.landing.structure import check_csv_header

Key = tuple[Any, ...]


def _text(value: Any) -> str | None:
    """A key value as the text it is compared by (a whole number without its type's decorations)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def row_positions(path: Path, source_name: str, keys: list[Key]) -> dict[Key, list[str]]:
    """For each key (the values of the source's key columns, in order), where the file's rows with that key are:
    ``line N`` (CSV; the header is line 1, a quoted value spanning lines moves the later lines down) or ``row N``
    (Parquet, from 1), in file order. A key the file does not hold is left out."""
    source = BY_NAME[source_name]
    wanted = sorted({tuple(_text(v) for v in key) for key in keys}, key=str)
    if not wanted or not path.is_file():
        return {}
    columns = list(source.key)
    # The file's key values as text, whole numbers normalised (+7 and 7 are the same line number).
    normalised = ", ".join(
        f"{ident(name)} as k{i}"
        if source.table_columns[name] == "VARCHAR"
        else f"cast(try_cast({ident(name)} as {source.table_columns[name]}) as varchar) as k{i}"
        for i, name in enumerate(columns)
    )
    with duckdb.connect() as con:
        if path.suffix == ".csv":
            rows = f"select row_number() over () - 1 as position, * from ({csv_text_sql(source, check_csv_header(path, source))})"
        else:
            rows = f"select file_row_number as position, * from ({parquet_text_sql(source, parquet_types(con, path), row_number=True)})"
        con.register(
            "_wanted", pd.DataFrame(wanted, columns=[f"k{i}" for i in range(len(columns))], dtype=object)
        )
        matched = con.execute(
            f"select position, {', '.join(f'f.k{i}' for i in range(len(columns)))} "
            f"from (select position, {normalised} from ({rows})) as f join _wanted as w on "
            + " and ".join(f"f.k{i} is not distinct from w.k{i}" for i in range(len(columns)))
            + " order by position",
            {"path": str(path)},
        ).fetchall()
    if path.suffix == ".csv":
        lines = csv_lines(path, {row[0] for row in matched})
        where = {row[0]: f"line {lines[row[0]]}" for row in matched if row[0] in lines}
    else:
        where = {row[0]: f"row {row[0] + 1}" for row in matched}
    found: dict[Key, list[str]] = {}
    for position, *values in matched:
        if position in where:
            found.setdefault(tuple(values), []).append(where[position])
    return {key: found[tuple(_text(v) for v in key)] for key in keys if tuple(_text(v) for v in key) in found}
