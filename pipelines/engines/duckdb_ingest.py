"""Loading landing files into the working warehouse. Plain functions, no Dagster.

A file is first loaded into ``landed.<source>`` (quarantine), validated there, and only then promoted to
``raw.<source>``, which the dbt models read. Its rows are written once, into ``store.<source>``, as a new
generation of their partition; ``landed`` and ``raw`` are views of each partition's latest and promoted
generation, so promotion copies nothing (see GENERATIONS below). Every load and promotion is one transaction:
a monthly file replaces exactly its month (``_period``), a snapshot the whole table. A file that is missing, unreadable or does not parse raises
:class:`LandingError` naming the path (and, where DuckDB reports them, the line and column); the
transaction is rolled back, so the warehouse keeps what it had. Only whole files are loaded: the file parsed
must be the one the run inventoried, before and after it is read, and a month reloaded with far fewer rows than
its promoted load fails unless confirmed (pipelines/landing/inventory.py, docs/landing.md).

Values are parsed exactly (pipelines.landing.parsing): each is read as text and must be written in its column's
declared type (pipelines.landing.sources) before it is cast, so nothing is rounded or reinterpreted on the way in; a value
that is not fails the file naming its line (Parquet: row), column, value and the rule. A landing folder holds
only files the spec names (``<YYYY-MM>.csv``/``.parquet`` per monthly source, ``<snapshot>.csv``/``.parquet`` in
``reference``): any other file fails the run (hidden and editor lock files are ignored and listed). A
header-only month of a source that declares empty months abnormal (order lines, the ledger) fails too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.engines.base import LoadResult, Released, SnapshotRelease
from pipelines.engines.duckdb_tables import in_transaction
from pipelines.engines.sql import ident, literal, qualified
from pipelines.engines.whole_months import Partition, WholeMonths
from pipelines.landing.inventory import (
    ABSENT,
    FileStamp,
    file_sha256,
    file_to_load,
    find_file,
    history_start,
    is_absent,
    landing_inventory,
    landing_path,
    month_start,
    months_in_landing,
    row_drop_error,
    verify_unchanged,
)
from pipelines.landing.parsing import (
    checked_cast,
    csv_lines,
    csv_text_sql,
    describe_offenders,
    offenders_sql,
    parquet_text_sql,
    parquet_types,
)
from pipelines.landing.sources import (
    BY_NAME,
    MONTHLY,
    SNAPSHOTS,
    SOURCES,
    Source,
)
from pipelines.landing.structure import (
    LandingError,
    check_columns,
    check_csv_header,
    check_parquet_file,
    check_scalar_columns,
    csv_problem,
)
from pipelines.lib.settings import Settings

__all__ = [
    "LandingError",
    "LoadResult",
    "clear_awaiting_publication",
    "evaluate_suite",
    "find_file",
    "history_start",
    "landing_inventory",
    "load",
    "mark_validated",
    "months_awaiting_publication",
    "months_in_landing",
    "promote",
    "release_snapshot",
    "release_whole_months",
    "validation_frame",
    "validation_frames",
    "validation_query",
    "whole_months",
]


def _select_sql(source: Source, stored: dict[str, str] | None, present: list[str] | None = None) -> str:
    """A SELECT over the landing file ``$path`` (CSV with the columns ``present`` when ``stored`` is None, else
    Parquet with these column types) that yields the source's columns in their declared types, each value checked
    to be written exactly in its type: otherwise the statement fails (pipelines.landing.parsing)."""
    text = csv_text_sql(source, present) if stored is None else parquet_text_sql(source, stored)
    casts = ", ".join(
        f"{ident(name) if stored and stored.get(name) == kind else checked_cast(ident(name), kind)} as {ident(name)}"
        for name, kind in source.table_columns.items()
    )
    return f"select {casts} from ({text})"


def _inexact_values(
    con: duckdb.DuckDBPyConnection, path: Path, source: Source, present: list[str] | None = None
) -> LandingError | None:
    """After a failed load: the values of the file that are not exactly of their declared type (the first three
    in file order, with their line or row, and how many in all), or None when every value fits."""
    if path.suffix == ".csv":
        con.execute(
            f"create or replace temp table _landing_text as {csv_text_sql(source, present)}",
            {"path": str(path)},
        )
        try:
            offenders = con.execute(offenders_sql("_landing_text", source.table_columns, "rowid")).fetchall()
        finally:
            con.execute("drop table if exists _landing_text")
        lines = csv_lines(path, {row[0] for row in offenders})
        where = {row: f"line {line}" for row, line in lines.items()}
    else:
        relation = f"({parquet_text_sql(source, parquet_types(con, path), row_number=True)})"
        offenders = con.execute(
            offenders_sql(relation, source.table_columns, "file_row_number"), {"path": str(path)}
        ).fetchall()
        where = {row[0]: f"row {row[0] + 1}" for row in offenders}
    if not offenders:
        return None
    return LandingError(path, describe_offenders(offenders, where))


LANDED, RAW, STORE = "landed", "raw", "store"

# Rows are written once. ``store.<source>`` holds every load of every partition, each load tagged with its own
# generation (``_generation``, unique across the warehouse); ``landed._generations`` says which partition
# (source, period; NULL for a snapshot) each generation belongs to, how many rows it has, whether it passed its
# suite (``validated``: NULL until its suite has run; ``validation_run`` the run that said so) and whether it
# was released to raw (``promoted``). ``landed.<source>`` and ``raw.<source>`` are views over the store:
# ``landed`` shows each partition's latest load (quarantine), ``raw`` only its promoted one, and
# ``validated.<source>`` its latest validated one: raw as it will be once every validated month is released.
# So a load is visible in ``landed`` at once and in ``raw`` only once its suite has passed and its month is
# whole (pipelines/engines/whole_months.py): releasing is a small metadata write (plus deleting the superseded
# generation), not a copy; a failed partition leaves ``raw`` as it was.
GENERATIONS = "landed._generations"
GENERATIONS_DDL = (
    f"create table if not exists {GENERATIONS} (generation bigint not null, source varchar not null, "
    "period date, rows bigint not null, promoted boolean not null, validated boolean, validation_run varchar)"
)
VALIDATED = "validated"


def _columns(source: Source) -> dict[str, str]:
    return {**source.table_columns, **source.lineage_columns}


def _ddl(source: Source, schema: str = STORE) -> str:
    body = ", ".join(
        f"{ident(name)} {kind}" for name, kind in {**_columns(source), "_generation": "BIGINT"}.items()
    )
    return f"create table if not exists {qualified(schema, source.name)} ({body})"


def _view_sql(source: Source, schema: str) -> str:
    """``landed.<source>``: each partition's latest generation; ``raw.<source>``: its promoted one;
    ``validated.<source>``: its latest validated one."""
    which = {
        LANDED: "select max(generation) from landed._generations where source = {name} group by period",
        RAW: "select generation from landed._generations where source = {name} and promoted",
        VALIDATED: "select max(generation) from landed._generations where source = {name} and validated "
        "group by period",
    }[schema].format(name=literal(source.name))
    columns = ", ".join(ident(name) for name in _columns(source))
    return (
        f"create or replace view {qualified(schema, source.name)} as select {columns} "
        f"from {qualified(STORE, source.name)} where _generation in ({which})"
    )


# Which file each snapshot in ``landed`` came from, and whether that content has been promoted to ``raw`` (so it
# passed its suite). Written in the same transactions as the tables themselves.
SNAPSHOT_FILES = "landed._snapshot_files"
SNAPSHOT_FILES_DDL = (
    f"create table if not exists {SNAPSHOT_FILES} (source varchar primary key, sha256 varchar not null, "
    "rows bigint not null, loaded_at timestamp not null, promoted_at timestamp)"
)


# The months promoted to ``raw`` whose refresh has not been published yet: written in the promotion's transaction,
# cleared by the run that publishes them (after the swap). A month listed here awaits publication: raw holds data the
# marts and the publication do not reflect yet, because the run that promoted it failed or was killed after.
AWAITING = "landed._awaiting_publication"
AWAITING_DDL = (
    f"create table if not exists {AWAITING} (period date not null, source varchar not null, "
    "promoted_at timestamp not null, rows bigint not null, primary key (period, source))"
)


def _catalog(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
    """(``schema.name``, ``table`` or ``view``) of everything in the landed, raw and store schemas."""
    return set(
        con.execute(
            "select schema_name || '.' || table_name, 'table' from duckdb_tables() "
            "where database_name = current_database() and schema_name in (?, ?, ?, ?) union all "
            "select schema_name || '.' || view_name, 'view' from duckdb_views() "
            "where database_name = current_database() and schema_name in (?, ?, ?, ?)",
            [LANDED, RAW, STORE, VALIDATED] * 2,
        ).fetchall()
    )


class WarehouseTooOld(ValueError):
    """The working warehouse was written by a version of cprof from before the layout this one reads."""


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the store, its records and the landed and raw views that do not exist yet (empty), so rules can
    join against them. A warehouse in an earlier layout raises WarehouseTooOld (nothing is changed)."""
    present = _catalog(con)
    wanted = {(f"{STORE}.{source.name}", "table") for source in SOURCES} | {
        (f"{schema}.{source.name}", "view") for schema in VIEWS for source in SOURCES
    }
    records = {(GENERATIONS, "table"), (SNAPSHOT_FILES, "table"), (AWAITING, "table")}
    _refuse_earlier_layout(con, present)
    if wanted | records <= present:  # one query instead of 40 catalog statements on every call
        return

    def create() -> None:
        for schema in (LANDED, RAW, STORE, VALIDATED):
            con.execute(f"create schema if not exists {schema}")
        con.execute(GENERATIONS_DDL)
        con.execute(SNAPSHOT_FILES_DDL)
        con.execute(AWAITING_DDL)
        for source in SOURCES:
            con.execute(_ddl(source))
            for schema in VIEWS:
                con.execute(_view_sql(source, schema))

    in_transaction(con, create)


VIEWS = (LANDED, RAW, VALIDATED)


def _refuse_earlier_layout(con: duckdb.DuckDBPyConnection, present: set[tuple[str, str]]) -> None:
    """Raise WarehouseTooOld when the warehouse is in a layout from before the store (landed and raw as tables),
    before whole months (a record of generations without ``validated``) or before a source declared its optional
    columns (a store table without them). cprof upgraded such warehouses until issue 29; the landing zone holds
    every row, so the warehouse is rebuilt from it instead."""
    tables = {f"{schema}.{source.name}" for schema in (LANDED, RAW) for source in SOURCES}
    found = sorted(name for name, kind in present if kind == "table" and name in tables)
    if not found and (GENERATIONS, "table") in present:
        columns: dict[str, list[str]] = {}
        for table, column in con.execute(
            "select schema_name || '.' || table_name, column_name from duckdb_columns() "
            "where database_name = current_database() and schema_name in (?, ?) order by column_index",
            [LANDED, STORE],
        ).fetchall():
            columns.setdefault(table, []).append(column)
        if "validated" not in columns.get(GENERATIONS, []):
            found = [f"{GENERATIONS} (no column validated)"]
        for source in SOURCES:
            store = f"{STORE}.{source.name}"
            missing = [c for c in _columns(source) if store in columns and c not in columns[store]]
            found += [f"{store} (no column {', '.join(missing)})"] if missing else []
    if found:
        (path,) = con.execute(
            "select path from duckdb_databases() where database_name = current_database()"
        ).fetchone()
        folder = Path(path).parent
        raise WarehouseTooOld(
            f"{path}: this warehouse was written by an earlier version of cprof (found {'; '.join(found)}), "
            "which this version no longer upgrades. Rebuild it from the landing zone: move the file aside and run "
            f"`cprof --data-dir {folder} run --full-refresh` (or make a new demo directory with `cprof generate`)"
        )


def promoted_snapshot(con: duckdb.DuckDBPyConnection, source_name: str, sha256: str) -> int | None:
    """Rows of the snapshot in ``raw`` when it was promoted from a file with this checksum (and ``landed`` still
    holds that same content), else None."""
    ensure_tables(con)
    row = con.execute(
        f"select rows from {SNAPSHOT_FILES} where source = ? and sha256 = ? and promoted_at is not null",
        [source_name, sha256],
    ).fetchone()
    return None if row is None else int(row[0])


def unchanged_snapshots(
    warehouse: Path, landing: Path, allow_external_links: bool = Settings.allow_external_links
) -> dict[str, datetime]:
    """The reference snapshots whose landing file is the one already validated and promoted, each with when that
    file was loaded (and validated, in the same run): read only, nothing when the warehouse or its record does
    not exist yet, or another process is writing it."""
    if not warehouse.exists():
        return {}
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return promoted_snapshots_loaded_at(con, landing, allow_external_links)
    except duckdb.Error:  # no record yet (read only: no tables made), or another connection holds the file
        return {}


def promoted_snapshots_loaded_at(
    con: duckdb.DuckDBPyConnection, landing: Path, allow_external_links: bool = Settings.allow_external_links
) -> dict[str, datetime]:
    """The snapshots whose landing file has the checksum of the one promoted, and when that file was loaded.
    A snapshot is validated in the run that loads it, and an unchanged file is not loaded again, so this is when
    it was last validated."""
    found = {}
    for source in SNAPSHOTS:
        row = con.execute(
            f"select loaded_at from {SNAPSHOT_FILES} where source = ? and sha256 = ? and promoted_at is not null",
            [
                source.name,
                ABSENT
                if is_absent(landing, source)
                else file_sha256(find_file(landing, source, None, allow_external_links)),
            ],
        ).fetchone()
        if row is not None:
            found[source.name] = row[0]
    return found


def snapshot_promoted(con: duckdb.DuckDBPyConnection, source_name: str) -> bool:
    """True when the snapshot now in ``landed`` is the one in ``raw``: it passed its suite when it was loaded."""
    ensure_tables(con)
    row = con.execute(
        f"select promoted_at is not null from {SNAPSHOT_FILES} where source = ?", [source_name]
    ).fetchone()
    return bool(row and row[0])


_PARTITION = "source = ? and period is not distinct from ?"


def _drop_generations(con: duckdb.DuckDBPyConnection, source: Source, where: str, params: list) -> None:
    """Delete the generations of ``source`` that match ``where`` (on landed._generations), rows and record."""
    doomed = f"select generation from {GENERATIONS} where {where}"
    con.execute(f"delete from {qualified(STORE, source.name)} where _generation in ({doomed})", params)
    con.execute(f"delete from {GENERATIONS} where {where}", params)


def _write_generation(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    period: date | None,
    select_sql: str,
    params: dict,
    also: tuple[str, list] | None = None,
    if_empty: LandingError | None = None,
    check: Callable[[int, int | None], None] | None = None,
) -> int:
    """In one transaction: write the rows of ``select_sql`` (the source's columns and lineage) into the store as
    a new generation of the period (a snapshot: of the whole source), which ``landed`` shows from then on; a
    previous load of the period that was never promoted is deleted (superseded), the promoted one stays what
    ``raw`` shows. Returns how many rows there are. ``also`` is one more statement (and its parameters) for the
    same transaction, given the row count as its last parameter; ``if_empty`` is raised when there are no rows;
    ``check`` is called before the commit with the row count and the rows of the partition's promoted generation
    (None: none), and may raise. On any error the warehouse keeps what it had."""
    ensure_tables(con)

    def work() -> int:
        _drop_generations(con, source, f"{_PARTITION} and not promoted", [source.name, period])
        (generation,) = con.execute(f"select coalesce(max(generation), 0) + 1 from {GENERATIONS}").fetchone()
        rows = con.execute(
            f"insert into {qualified(STORE, source.name)} select *, cast($generation as bigint) from ({select_sql})",
            {**params, "generation": generation},
        ).fetchone()[0]
        if rows == 0 and if_empty is not None:
            raise if_empty
        if check is not None:
            promoted = con.execute(
                f"select rows from {GENERATIONS} where {_PARTITION} and promoted", [source.name, period]
            ).fetchone()
            check(int(rows), None if promoted is None else int(promoted[0]))
        con.execute(
            f"insert into {GENERATIONS} (generation, source, period, rows, promoted) values (?, ?, ?, ?, false)",
            [generation, source.name, period, rows],
        )
        if also is not None:
            con.execute(also[0], [*also[1], rows])
        return int(rows)

    return in_transaction(con, work)


def _explain_duckdb_error(path: Path, exc: duckdb.Error) -> LandingError:
    """Turn DuckDB's reader error into one line: file line, column, the rule broken and the offending line. A
    CSV file is read again with Python's csv module first (pipelines.landing.structure.csv_problem), which names the
    line where a quoted value opens, where DuckDB names the line it was on and quotes the lines after; a file
    DuckDB cannot read at all (a zero-byte or corrupt Parquet file) keeps DuckDB's reason, without the SQL."""
    if path.suffix == ".csv" and path.is_file():
        problem = csv_problem(path)
        if problem:
            return LandingError(path, f"does not parse: {problem}")
    text = str(exc).strip()
    # DuckDB quotes the statement under its message ("LINE 1: select ...", then a caret): never show it.
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not re.match(r"LINE \d+:", line.strip()) and set(line.strip()) != {"^"}
    ]
    if "CSV Error on Line" not in text and lines:  # not the CSV reader's: its first line is the reason
        reason = " ".join(re.sub(r"^[\w ]*Error: ", "", lines[0]).replace(f"'{path}'", "").split())
        kind = "a Parquet file" if path.suffix == ".parquet" else "a landing file"
        return LandingError(path, f"does not parse: not {kind} DuckDB can read: {reason}")
    line_no = re.search(r"CSV Error on Line: (\d+)", text)
    column = re.search(r'converting column "([^"]+)"', text)
    original = next(
        (line[len("Original Line: ") :] for line in lines if line.startswith("Original Line: ")), None
    )
    reason = next(
        (line for line in lines[1:] if not line.startswith(("Original Line", "Possible", "*", "Column "))),
        lines[0] if lines else type(exc).__name__,
    )
    where = ", ".join(
        part
        for part in (
            f"line {line_no.group(1)}" if line_no else "",
            f"column {column.group(1)}" if column else "",
        )
        if part
    )
    message = f"does not parse: {where + ': ' if where else ''}{reason}"
    if original is not None:
        message += f" (the line reads: {original[:200]})"
    return LandingError(path, message)


def empty_month_error(path: Path, source: Source) -> LandingError:
    """A header-only month of a source whose months are never empty (``empty_month_ok`` false)."""
    return LandingError(
        path,
        f"no rows: an empty {source.name} month is not normal (rule: every month has {source.grain}s; "
        "empty_month_ok is false in the landing spec); export the month again",
    )


def load(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    source_name: str,
    month: str | None = None,
    skip_unchanged: bool = False,
    expected: FileStamp | None = None,
    accept_row_drop: bool = False,
    max_row_drop: float = Settings.max_row_drop,
    allow_external_links: bool = Settings.allow_external_links,
) -> LoadResult:
    """Load one landing file into ``landed.<source>`` (quarantine, until its suite passes and it is promoted
    to ``raw``): a month of a monthly source, or a whole snapshot. With ``skip_unchanged``, a snapshot file
    with the checksum of the content already promoted is not loaded again (``unchanged`` in the result).

    Only whole files are loaded: ``expected`` is the file as the run's inventory found it (size, modification
    time, SHA-256; without it, as it is when the load starts), and a file that differs from it before or after
    it was parsed fails, naming it, with nothing of it loaded. A month whose rows fall by more than
    ``max_row_drop`` (the setting) against the generation promoted for it fails too, unless ``accept_row_drop``."""
    source = BY_NAME[source_name]
    if (source.kind == "monthly") != (month is not None):
        raise ValueError(
            f"{source_name} is a {source.kind} source: "
            f"{'a month is required' if month is None else 'it has no months'}"
        )
    period = month_start(month) if month else None
    # an optional snapshot without a file loads as no rows (one the run inventoried and that is gone since is
    # not absent but changed: file_to_load says so)
    if expected is None and is_absent(landing, source):
        return _load_absent(con, landing, source, skip_unchanged)
    file = file_to_load(landing, source, month, expected, allow_external_links)
    path = file.path
    stored, present = None, None
    if path.suffix == ".csv":
        present = check_csv_header(path, source)
    else:
        check_parquet_file(path)
        try:
            stored = parquet_types(con, path)
        except duckdb.Error as exc:
            raise _explain_duckdb_error(path, exc) from exc
        check_columns(path, source, list(stored))
        check_scalar_columns(path, source, stored)
    if skip_unchanged and period is None:
        promoted = promoted_snapshot(con, source_name, file.sha256)
        if promoted is not None:
            return LoadResult(
                source_name, path, month, promoted, file.sha256, file.bytes, file.mtime_ns, unchanged=True
            )
    empty = (
        empty_month_error(path, source) if source.kind == "monthly" and not source.empty_month_ok else None
    )

    def whole(rows: int, promoted: int | None) -> None:
        """Before the commit: the bytes parsed were the file inventoried, and no sharp fall in rows."""
        verify_unchanged(file)
        drop = (
            None
            if accept_row_drop
            else row_drop_error(path, source.name, month, rows, promoted, max_row_drop)
        )
        if drop is not None:
            raise drop

    try:
        rows = _write_generation(
            con,
            source,
            period,
            f"select *, cast($period as date), $source_file, current_timestamp::timestamp"
            f"{', cast($sha256 as varchar)' if source.versioned else ''} from ({_select_sql(source, stored, present)})",
            {"path": str(path), "period": period, "source_file": str(path)}
            | ({"sha256": file.sha256} if source.versioned else {}),
            also=None
            if period is not None
            else (
                f"insert or replace into {SNAPSHOT_FILES} values (?, ?, ?, current_timestamp::timestamp, null)",
                [source_name, file.sha256],
            ),
            if_empty=empty,
            check=whole,
        )
    except duckdb.Error as exc:
        verify_unchanged(file)  # a file cut short or grown while it was read: say so, not how it broke
        try:
            inexact = _inexact_values(con, path, source, present)
        except duckdb.Error:  # the file itself does not parse: DuckDB's reader says where
            inexact = None
        raise (inexact or _explain_duckdb_error(path, exc)) from exc
    return LoadResult(source_name, path, month, rows, file.sha256, file.bytes, file.mtime_ns)


def _load_absent(
    con: duckdb.DuckDBPyConnection, landing: Path, source: Source, skip_unchanged: bool
) -> LoadResult:
    """A snapshot that may be absent (``absent_ok``) and is: loaded as no rows, recorded with the checksum
    ABSENT, so it is validated, released and reused like a file (its removal empties raw)."""
    path = landing_path(landing, source)
    if skip_unchanged and promoted_snapshot(con, source.name, ABSENT) is not None:
        return LoadResult(source.name, path, None, 0, ABSENT, 0, 0, unchanged=True)
    nothing = ", ".join(f"cast(null as {kind}) as {ident(name)}" for name, kind in _columns(source).items())
    rows = _write_generation(
        con,
        source,
        None,
        f"select {nothing} where false",
        {},
        also=(
            f"insert or replace into {SNAPSHOT_FILES} values (?, ?, ?, current_timestamp::timestamp, null)",
            [source.name, ABSENT],
        ),
    )
    return LoadResult(source.name, path, None, rows, ABSENT, 0, 0)


# The months of returns whose order lines a month of order lines brings to raw for the first time: returns
# promoted before their lines, i.e. pre-history returns of a start of history now moved earlier. Their credit
# belongs to their own month, now at the line's price and customer: those months await publication too, and the
# run restates them (pipelines/defs/assets/transform.py).
_RETURNS_FINDING_THEIR_LINES = f"""
insert or replace into {AWAITING}
select returns._period, 'returns', current_timestamp::timestamp, count(*)
from raw.returns as returns
inner join {LANDED}.order_lines as lines
    on lines._period = ? and returns.order_id = lines.order_id and returns.line_no = lines.line_no
where returns._period > ? and not exists (
    select 1 from raw.order_lines as known
    where known.order_id = returns.order_id and known.line_no = returns.line_no
)
group by returns._period
"""


def promote(con: duckdb.DuckDBPyConnection, source_name: str, month: str | None = None) -> int:
    """Make the partition's latest load, validated, what ``raw.<source>`` shows: in one transaction, mark its
    generation validated and promoted and delete the one it supersedes (no rows are copied). A month is recorded,
    in the same transaction, as awaiting publication (see ``months_awaiting_publication``); a month of order lines also records
    the later months of the returns whose lines it brings (pre-history returns until then). Promoting again what
    is promoted changes nothing but these records. The pipeline releases months whole
    (:func:`release_whole_months`) and snapshots with :func:`release_snapshot`; this is their one step."""
    source = BY_NAME[source_name]
    period = month_start(month) if month else None
    ensure_tables(con)
    return in_transaction(con, lambda: _promote(con, source, period))


def _promote(con: duckdb.DuckDBPyConnection, source: Source, period: date | None) -> int:
    """:func:`promote`, inside the caller's transaction."""
    if source.name == "order_lines":
        con.execute(_RETURNS_FINDING_THEIR_LINES, [period, period])
    latest = con.execute(
        f"select generation, rows from {GENERATIONS} where {_PARTITION} order by generation desc limit 1",
        [source.name, period],
    ).fetchone()
    generation, rows = latest if latest is not None else (None, 0)
    # everything older than the latest load: the promoted generation it supersedes
    _drop_generations(
        con, source, f"{_PARTITION} and generation is distinct from ?", [source.name, period, generation]
    )
    con.execute(
        f"update {GENERATIONS} set promoted = true, validated = true where generation = ?", [generation]
    )
    if period is not None:
        con.execute(
            f"insert or replace into {AWAITING} values (?, ?, current_timestamp::timestamp, ?)",
            [period, source.name, rows],
        )
    else:
        con.execute(
            f"update {SNAPSHOT_FILES} set promoted_at = current_timestamp::timestamp where source = ? and rows = ?",
            [source.name, rows],
        )
    return int(rows)


# -- whole months: validated partitions, released to raw a month at a time (pipelines/engines/whole_months.py) --


def _latest_generation(source: Source, period: date | None) -> tuple[str, list]:
    return (
        f"generation = (select max(generation) from {GENERATIONS} where {_PARTITION})",
        [source.name, period],
    )


def mark_validated(
    con: duckdb.DuckDBPyConnection, source_name: str, month: str, passed: bool, run_id: str | None = None
) -> int:
    """Record that the month's latest load passed its suite (``passed``), or failed it, in run ``run_id``;
    returns its rows. A validated load waits, held out of ``raw``, until its month is whole."""
    source = BY_NAME[source_name]
    ensure_tables(con)
    where, params = _latest_generation(source, month_start(month))
    con.execute(
        f"update {GENERATIONS} set validated = ?, validation_run = ? where {where}", [passed, run_id, *params]
    )
    row = con.execute(f"select rows from {GENERATIONS} where {where}", params).fetchone()
    return int(row[0]) if row else 0


_MONTHLY_PARTITIONS = f"""
select latest.source, strftime(latest.period, '%Y-%m'), latest.validated, latest.promoted, partitions.in_raw,
    latest.validation_run, latest.rows
from {GENERATIONS} as latest
inner join (
    select source, period, max(generation) as generation, bool_or(promoted) as in_raw
    from {GENERATIONS} where period is not null group by source, period
) as partitions on latest.generation = partitions.generation
where latest.source in ({", ".join(literal(source.name) for source in MONTHLY)})
"""


def whole_months(con: duckdb.DuckDBPyConnection) -> WholeMonths:
    """Every monthly source's months as the warehouse holds them: what is whole, released, held."""
    ensure_tables(con)
    return WholeMonths(Partition(*row) for row in con.execute(_MONTHLY_PARTITIONS).fetchall())


def release_whole_months(con: duckdb.DuckDBPyConnection) -> list[Released]:
    """Release every month that is whole and may be released (WholeMonths.to_release), in month order, each in
    one transaction: all its monthly sources' latest loads become what ``raw`` shows and the month is recorded
    as awaiting publication. Returns what was released."""
    released = []
    for month in whole_months(con).to_release():
        period = month_start(month)

        def work(period: date = period) -> dict[str, int]:
            rows = {}
            for source in MONTHLY:
                latest = con.execute(
                    f"select promoted, rows from {GENERATIONS} where {_latest_generation(source, period)[0]}",
                    [source.name, period],
                ).fetchone()
                if latest is not None and not latest[0]:
                    rows[source.name] = _promote(con, source, period)
            return rows

        released.append(Released(month, in_transaction(con, work)))
    return released


def release_snapshot(con: duckdb.DuckDBPyConnection, source_name: str) -> SnapshotRelease:
    """Release a validated snapshot to ``raw`` (:func:`promote`). When it changes or removes rows of the release
    before it (added rows restate nothing), every month in ``raw`` is recorded as awaiting publication in the same
    transaction, so this run, or the next if it fails, restates all history with it (unless the source does not
    restate: ``Source.restates``)."""
    source = BY_NAME[source_name]
    ensure_tables(con)

    def work() -> SnapshotRelease:
        previous = con.execute(
            f"select generation from {GENERATIONS} where {_PARTITION} and promoted", [source.name, None]
        ).fetchone()
        latest = con.execute(
            f"select max(generation) from {GENERATIONS} where {_PARTITION}", [source.name, None]
        ).fetchone()[0]
        changed, removed, columns = (0, 0, [])
        if previous is not None and previous[0] != latest:
            changed, removed, columns = _snapshot_differences(con, source, previous[0], latest)
        rows = _promote(con, source, None)
        restated: list[str] = []
        if (changed or removed) and source.restates:
            restated = [
                month
                for (month,) in con.execute(
                    f"insert or replace into {AWAITING} "
                    f"select distinct period, ?, current_timestamp::timestamp, ? from {GENERATIONS} "
                    "where period is not null and promoted returning strftime(period, '%Y-%m')",
                    [source.name, changed + removed],
                ).fetchall()
            ]
        return SnapshotRelease(source.name, rows, changed, removed, columns, sorted(restated))

    return in_transaction(con, work)


def _snapshot_differences(
    con: duckdb.DuckDBPyConnection, source: Source, previous: int, latest: int
) -> tuple[int, int, list[str]]:
    """Of the rows of generation ``previous`` of a snapshot: how many ``latest`` changed (same key, other
    values) and removed, and the columns that changed."""
    table = qualified(STORE, source.name)
    key = list(source.key)
    values = [name for name in source.table_columns if name not in key]
    columns = ", ".join(ident(name) for name in source.table_columns)
    joined = " and ".join(f"old.{ident(name)} = new.{ident(name)}" for name in key)
    counts = ", ".join(
        f"count(*) filter (where new.{ident(key[0])} is not null "
        f"and old.{ident(name)} is distinct from new.{ident(name)})"
        for name in values
    )
    row = con.execute(
        f"with old as (select {columns} from {table} where _generation = $previous "
        f"except select {columns} from {table} where _generation = $latest), "
        f"new as (select {columns} from {table} where _generation = $latest) "
        f"select count(*) filter (where new.{ident(key[0])} is not null), "
        f"count(*) filter (where new.{ident(key[0])} is null){', ' + counts if counts else ''} "
        f"from old left join new on {joined}",
        {"previous": previous, "latest": latest},
    ).fetchone()
    changed, removed, per_column = int(row[0]), int(row[1]), row[2:]
    return changed, removed, [name for name, n in zip(values, per_column, strict=True) if n]


def months_awaiting_publication(warehouse: Path) -> list[str] | None:
    """The months (YYYY-MM, sorted) promoted to ``raw`` by a run that did not publish them (it failed or was
    killed after promoting): the next run refreshes them with its own. Read only: [] when there is no
    warehouse or no record yet, None when another process holds the warehouse for writing."""
    if not warehouse.exists():
        return []
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            rows = con.execute(
                f"select distinct strftime(period, '%Y-%m') from {AWAITING} order by 1"
            ).fetchall()
    except duckdb.CatalogException:  # no record yet: no month is known to await publication
        return []
    except duckdb.IOException:  # a writer holds it (a run): unknown
        return None
    return [month for (month,) in rows]


def clear_awaiting_publication(warehouse: Path, first: date, last: date) -> int:
    """After a successful publication (the swap done): the months first..last it refreshed no longer await it.
    Called by the run that published, which holds the writer lock, so no other promotion comes in between; a
    crash between the swap and this only leaves the months listed, and the next run refreshes them once more."""
    with duckdb.connect(str(warehouse)) as con:
        ensure_tables(con)
        cleared = con.execute(
            f"delete from {AWAITING} where period between ? and ?", [first, last]
        ).fetchone()[0]
    return int(cleared)


def validation_frame(
    con: duckdb.DuckDBPyConnection,
    source_name: str,
    month: str | None = None,
    history_start: str | None = None,
    return_window: int = Settings.return_window_months,
):
    """The landed partition with its violation columns (see data_checks.suites), as a pandas DataFrame.
    ``history_start`` (YYYY-MM): the first month of history, for the returns' rules (default: the first month of
    order lines in raw); ``return_window``: the setting return_window_months."""
    from data_checks.suites import SUITES, frame_parameters

    sql = SUITES[source_name].frame_sql
    return _frame(con, sql, frame_parameters(sql, month, history_start, return_window))


def validation_frames(
    con: duckdb.DuckDBPyConnection,
    source_name: str,
    months: list[str],
    history_start: str | None = None,
    return_window: int = Settings.return_window_months,
):
    """Several months' validation frames in one (one query, one conversion to pandas), each row with its month
    (YYYY-MM) in ``PARTITION_COLUMN``: each month's rows are exactly its :func:`validation_frame`
    (:func:`validation_query`)."""
    return _frame(con, *validation_query(source_name, months, history_start, return_window))


def validation_query(
    source_name: str,
    months: list[str | None],
    history_start: str | None = None,
    return_window: int = Settings.return_window_months,
) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of the months' validation frames, each row with its month (YYYY-MM) in
    ``PARTITION_COLUMN``: the suite's frame query as a ``lateral`` subquery of the months, its ``$period`` each
    month's first day (bound as ``$period_<i>``, ``$month_<i>``: parameter names, never values). DuckDB
    decorrelates it into one query over every month, so what the months share is read once: the returns' lookup of
    their order lines scanned every validated line once per month (a full build's returns suite grew with the
    square of the months). ``[None]``: the snapshot's frame, as it is."""
    from data_checks.suites import PARTITION_COLUMN, SUITES, frame_parameters

    sql = SUITES[source_name].frame_sql
    if months == [None]:
        return sql, frame_parameters(sql, None, history_start, return_window)
    parameters = {
        k: v for k, v in frame_parameters(sql, None, history_start, return_window).items() if k != "period"
    }
    rows = []
    for index, month in enumerate(months):
        rows.append(f"(cast($period_{index} as date), cast($month_{index} as varchar))")
        parameters[f"period_{index}"] = month_start(month)
        parameters[f"month_{index}"] = month
    batch, period, partition = ident(BATCH_RELATION), ident(BATCH_PERIOD_COLUMN), ident(PARTITION_COLUMN)
    frame = PERIOD_PARAMETER.sub(lambda _: f"{batch}.{period}", sql)
    months_relation = f"(values {', '.join(rows)}) as {batch}({period}, {partition})"
    return (
        f"select _cprof_frame.*, {batch}.{partition} from {months_relation}, lateral ({frame}) as _cprof_frame",
        parameters,
    )


def evaluate_suite(
    con: duckdb.DuckDBPyConnection,
    source_name: str,
    months: list[str | None],
    history_start: str | None = None,
    return_window: int = Settings.return_window_months,
):
    """The source's suite evaluated in DuckDB on each of ``months`` (``[None]``: the snapshot) in one pass:
    month to :class:`data_checks.duckdb_evaluation.Evaluation`."""
    from data_checks.duckdb_evaluation import evaluate

    sql, parameters = validation_query(source_name, months, history_start, return_window)
    try:  # as _frame: the catalog is probed only when a table is missing
        return evaluate(con, source_name, sql, parameters, months)
    except duckdb.CatalogException:
        ensure_tables(con)
        return evaluate(con, source_name, sql, parameters, months)


PERIOD_PARAMETER = re.compile(r"\$period\b")
# the months' relation of a batch's validation query: each month's first day (the frames' $period)
BATCH_RELATION, BATCH_PERIOD_COLUMN = "_cprof_batch", "_cprof_batch_period"


def _frame(con: duckdb.DuckDBPyConnection, sql: str, parameters: dict[str, Any]):
    try:  # the partition was loaded, so its tables exist: the catalog is probed only when one does not
        result = con.execute(sql, parameters)  # (the probe took a third of the frame's time, every month)
    except duckdb.CatalogException:
        ensure_tables(con)
        result = con.execute(sql, parameters)
    frame = result.df()
    # GX's pandas range checks are vectorised only for int64/float64 and nanosecond datetimes; DuckDB hands
    # over int32 and microsecond timestamps, which GX would check row by row in Python (1.9 s of the 4.3 s a
    # 584,000-row month of order lines took).
    casts = {name: "int64" for name, kind in frame.dtypes.items() if str(kind) in ("int8", "int16", "int32")}
    casts |= {name: "datetime64[ns]" for name, kind in frame.dtypes.items() if str(kind) == "datetime64[us]"}
    return frame.astype(casts) if casts else frame
