"""Publishing the marts where BI tools read them: write, then swap in atomically. Plain functions, no Dagster.

Layout under ``published/``::

    current -> releases/<run>          the publication BI tools read (a symlink, replaced atomically)
    releases/<run>/cprof.duckdb        schema marts: every mart, marts.publish_log and marts.publish_period_log
    releases/<run>/parquet/<table>/period=<YYYY-MM-DD>/data_0.parquet   a table with a period column
    releases/<run>/parquet/<table>.parquet                              a table without (and the two logs)

A release is written in full in a hidden ``.building-<run>`` folder (its DuckDB file is ``*.partial`` until
complete), renamed into ``releases/``, and only then made current by replacing the ``current`` symlink with
``os.replace``: one atomic step. A reader that opened the old file keeps a consistent snapshot; one that opens
after the swap sees the new one; a process killed at any point leaves ``current`` as it was. Readers never
touch the pipeline's working warehouse. The two previous releases are kept for readers still holding them.

The DuckDB file is written in storage version ``v1.1.0`` (storage format 64), whatever DuckDB writes it, so
that the BI tools in use (their drivers bundle DuckDB 1.1 to 1.4) open it: DuckDB 2.0 writes format 999 by
default, which no 1.x release reads. Every table and column carries its description as a comment, and each
Parquet file its table's description as key-value metadata.

A refresh (``changed_from``) costs the periods it replaced, not the history: the release starts as a copy of
the current one, only the replaced periods are written and checksummed (``publish_period_log`` carries every
other period's row count and hash sum), and the other periods' Parquet folders are hard links to the current
release's files, which no release ever changes once written.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from pipelines.engines.base import MartsSource
from pipelines.engines.duckdb_tables import replace_rows
from pipelines.engines.sql import ident, literal, qualified
from pipelines.publication.keys import (
    DIMENSION_PREFIX,
    PUBLISH_LOG_KEY,
    PUBLISH_PERIOD_LOG_KEY,
    TableKeys,
    creation_order,
    table_keys,
)

DATABASE = "cprof.duckdb"
PARQUET_DIR = "parquet"
CURRENT = "current"
RELEASES = "releases"
KEEP_PREVIOUS = 2
PAUSE_ENV = "CPROF_PAUSE_AT"  # fault injection for tests: pause at a named point of publishing
LOGS = ("publish_log", "publish_period_log")
# The most rows of a table published with its keys as DuckDB constraints (a dimension always is). DuckDB holds a
# key's index in memory: at 10 million order lines customer_profit_levers has 13.7 million rows under a 7-column
# key, and writing it with its constraints exhausted the publication's 4 GB (bench, 2026-12-07).
ENFORCED_KEY_ROWS = 2_000_000
# A refresh patches a table with an enforced key only while the rows it replaces stay under a tenth of the table
# (or under INDEXED_PATCH_ROWS); beyond that the table is written whole. Deleting a row from a keyed table costs
# DuckDB about eight times what inserting it does (its index): at 1M order lines, replacing one month of 12 in
# scenario_whale_curve (224,352 of 1,992,744 rows) took 7.1 s, writing the table whole 6.9 s, replacing every
# month 61 s; a scenario run's publication took 115 s (bench, 2026-12-07).
INDEXED_PATCH_SHARE = 10
INDEXED_PATCH_ROWS = 10_000

# Per period of a table: its row count and the sum of its rows' hashes (see period_sums).
PeriodSums = dict[date, tuple[int, int]]

# The oldest DuckDB release the publication is written for. DuckDB 1.1 reads storage format 64 (0.10 to 1.1
# write it); 1.2 to 1.5 wrote formats 65 to 68 and 2.0 writes 999, none of which an older release reads.
# ``STORAGE_VERSION 'v1.1.0'`` writes format 64 and lets the writer use what DuckDB 1.1 understands.
PUBLISHED_STORAGE_VERSION = "v1.1.0"
PUBLISHED_STORAGE_FORMAT = 64


class PublicationFormatError(Exception):
    """The DuckDB in use could not write the publication in the storage format the BI tools read."""


@dataclass(frozen=True)
class TableDoc:
    """What a published table is, and each of its columns: shown by BI tools as table and column comments."""

    description: str
    columns: Mapping[str, str] = field(default_factory=dict)


PUBLISH_LOG_DOC = TableDoc(
    "One row per publication and published table: the run that published it, the period range it covered, "
    "the table's row count and a checksum of its content. Equal checksums mean equal content.",
    {
        "run_id": "Dagster run that published the release.",
        "published_at": "When the release was published (UTC).",
        "first_period": "First period (first day of the month) the run refreshed.",
        "last_period": "Last period (first day of the month) the run refreshed.",
        "table_name": "Published table in schema marts.",
        "row_count": "Rows of the table in this release.",
        "checksum": "Row count and an order-independent sum of the rows' hashes (row_count:hex sum).",
    },
)

PUBLISH_LOG_DDL = """
create table marts.publish_log (
    run_id varchar not null,
    published_at timestamp not null,
    first_period date,
    last_period date,
    table_name varchar not null,
    row_count bigint not null,
    checksum varchar not null
)
"""


PUBLISH_PERIOD_LOG_DOC = TableDoc(
    "One row per publication, published table with periods and period: the period's row count and checksum. "
    "A table's checksum in publish_log is the sum of its periods' here; a refresh recomputes only the periods "
    "it replaced and carries the others' from the release before.",
    {
        "run_id": "Dagster run that published the release.",
        "published_at": "When the release was published (UTC); the same as in publish_log.",
        "table_name": "Published table in schema marts that has a period column.",
        "period": "Period (first day of the month) of the table's rows.",
        "row_count": "Rows of the table in this period in this release.",
        "checksum": "The period's row count and an order-independent sum of its rows' hashes (row_count:hex sum).",
    },
)

PUBLISH_PERIOD_LOG_DDL = """
create table marts.publish_period_log (
    run_id varchar not null,
    published_at timestamp not null,
    table_name varchar not null,
    period date not null,
    row_count bigint not null,
    checksum varchar not null
)
"""


@dataclass(frozen=True)
class Publication:
    run_id: str
    release: Path
    database: Path
    parquet: Path
    row_counts: dict[str, int]
    checksums: dict[str, str]
    # The release was the current one patched (only the changed periods and dimension rows rewritten), not
    # written whole.
    patched: bool = False
    # Per table with periods: period -> its row count and hash sum (as marts.publish_period_log has them).
    period_sums: dict[str, PeriodSums] = field(default_factory=dict)
    # Per table patched: the periods kept from the previous release (their Parquet files hard links to its, unless
    # its folder of the table lacked one: then the table's Parquet was written whole).
    kept_periods: dict[str, set[date]] = field(default_factory=dict)
    # Why a refresh (changed_from) was written whole; empty when it was patched.
    reason: str = ""


def current_database(published: Path) -> Path:
    """The DuckDB file BI tools read: ``published/current/cprof.duckdb``."""
    return published / CURRENT / DATABASE


def parquet_source(parquet: Path, table: str) -> str:
    """What to give ``read_parquet`` for a published table's Parquet: ``parquet/<table>/**/*.parquet`` (read with
    ``hive_partitioning = true``; every file holds its period column too) for a table with periods,
    ``parquet/<table>.parquet`` for one without."""
    folder = parquet / table
    return str(folder / "**" / "*.parquet") if folder.is_dir() else str(parquet / f"{table}.parquet")


def storage_format(database: Path) -> int:
    """The storage format number in a DuckDB file's header (bytes 12-19 after the magic ``DUCK``)."""
    with open(database, "rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[8:12] != b"DUCK":
        raise PublicationFormatError(f"{database} is not a DuckDB database file")
    return struct.unpack("<Q", header[12:20])[0]


def table_checksum(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, str]:
    """Row count and an order-independent checksum of a table's content (the sum of its rows' hashes). Each row
    is hashed as the struct of all its columns, named one by one: a table alias would be shadowed by a column of
    the same name (``customer_clv`` has a column ``t``), and the sum would hash that column alone."""
    columns = [column[0] for column in con.execute(f"select * from {table} limit 0").description]
    row = ", ".join(ident(column) for column in columns)
    count, total = con.execute(
        f"select count(*), coalesce(sum(hash(struct_pack({row}))), 0) from {table}"
    ).fetchone()
    return int(count), f"{count}:{int(total):x}"


def _pause(point: str, published: Path) -> None:
    if os.environ.get(PAUSE_ENV) == point:
        (published / f".paused-{point}").touch()
        time.sleep(3600)


def publish(
    warehouse: MartsSource,
    published: Path,
    run_id: str | None = None,
    first_period: date | None = None,
    last_period: date | None = None,
    changed_from: date | None = None,
    docs: Mapping[str, TableDoc] | None = None,
    extras: Callable[[Path], object] | None = None,
    memory_limit: str | None = None,
    primary_keys: Mapping[str, tuple[str, ...]] | None = None,
    currency: str | None = None,
    incremental: Collection[str] = (),
    enforced_key_rows: int = ENFORCED_KEY_ROWS,
    indexed_patch_rows: int = INDEXED_PATCH_ROWS,
) -> Publication:
    """Publish every mart of ``warehouse`` (a session of either engine) as a new release and make it current.

    With ``changed_from`` (the first period the run rebuilt), the release starts as a copy of the current one
    and only the periods from ``changed_from`` on are replaced in the marts keyed by period: those periods are
    checksummed in the warehouse and in the release, every earlier period's checksum is carried from the
    current release's ``publish_period_log``, and the earlier periods' Parquet folders are hard links to the
    current release's files. A table whose replaced periods then differ from the warehouse's (row count or
    checksum), or that cannot be patched, is written whole; a current release without a period log (written
    by older code), with other keys, or whose period log disagrees with its publish log or with its tables'
    row counts per period, is not patched: the release is written whole. Either way every table written
    equals the warehouse's. ``docs`` (table name to its description) become the comments of the published
    tables and columns and the Parquet files' key-value metadata.

    ``primary_keys`` (table name to its key columns, :func:`pipelines.publication.keys.declared_primary_keys`)
    become each table's ``PRIMARY KEY``, with ``FOREIGN KEY`` constraints to the dimensions it names
    (:mod:`pipelines.publication.keys`); a repeated key or a code without its dimension row fails the
    publication, naming the table. A current release with other keys is not patched. ``currency`` (the ISO
    code of every amount) goes into every Parquet file's key-value metadata.

    ``extras``, when given, is called with the release folder while it is still being built, its
    ``cprof.duckdb`` complete: it writes more files into the release (the HTML report). If it raises, nothing
    is published and ``current`` stays as it was. ``memory_limit``: DuckDB's while it builds the release (the
    setting ``duckdb_memory_limit``; None: DuckDB's own default)."""
    tables = warehouse.marts()
    if not tables:
        raise ValueError(
            f"the {warehouse.engine} warehouse has no tables in schema marts: run the dbt build first"
        )
    run_id = run_id or uuid.uuid4().hex
    releases = published / RELEASES
    releases.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(releases)
    building = releases / f".building-{run_id}"
    shutil.rmtree(building, ignore_errors=True)
    (building / PARQUET_DIR).mkdir(parents=True)
    partial = building / f"{DATABASE}.partial"
    previous = current_database(published)
    previous_release = previous.resolve().parent if previous.exists() else None
    reason = "" if changed_from is not None else "a full refresh (no changed_from)"
    try:
        # Spill where a file database would (beside it), not in the working directory.
        spill = {"temp_directory": str(building / f"{DATABASE}.tmp")}
        if memory_limit is not None:
            spill["memory_limit"] = memory_limit
        with duckdb.connect(":memory:", config=spill) as con:
            with warehouse.marts_in(con) as source:
                missing = set(tables) - set(source)
                if missing:
                    raise ValueError(f"marts {sorted(missing)} are not readable from the warehouse")
                described = {table: _describe(con, source[table]) for table in tables}
                # DuckDB holds a key's index in memory: a large fact table is published without constraints
                # (its key stated in its comment, and tested by dbt), so the publication's memory stays bounded.
                unenforced = (
                    {
                        t
                        for t in tables
                        if not t.startswith(DIMENSION_PREFIX)
                        and con.execute(f"select count(*) from {source[t]}").fetchone()[0] > enforced_key_rows
                    }
                    if primary_keys is not None
                    else set()
                )
                keys = (
                    table_keys(
                        primary_keys, {t: [name for name, _ in described[t]] for t in tables}, unenforced
                    )
                    if primary_keys is not None
                    else {}
                )
                periodic = {t for t in tables if ("period", "DATE") in described[t]}
                carried: dict[str, PeriodSums] | None = None
                if changed_from is not None and not reason:
                    if previous_release is None:
                        reason = "no current release"
                    elif storage_format(previous) != PUBLISHED_STORAGE_FORMAT:
                        # Written in another storage format (by an older version of this code): the copy would
                        # keep it.
                        reason = f"the current release is in storage format {storage_format(previous)}"
                    else:
                        carried, reason = _carried_periods(con, previous, _expected_keys(keys), changed_from)
                patching = carried is not None
                release = _Release(
                    con,
                    partial,
                    tables,
                    described,
                    keys,
                    source,
                    published,
                    set(periodic),
                    set(incremental),
                    changed_from,
                    indexed_patch_rows,
                )
                if patching:
                    try:
                        release.write(previous, carried)
                    except duckdb.Error as error:
                        # The patch could not be applied (a changed dimension row still referenced, say):
                        # write the release afresh, which reports a real key error with its table.
                        patching = False
                        reason = f"the patch failed: {error}"
                        release.discard()
                        release.write(None, {})
                else:
                    release.write(None, {})
            counts = {table: release.checksums[table][0] for table in tables}
            checksums = {table: release.checksums[table][1] for table in tables}
            kept = release.kept
            logs = [
                ("publish_log", PUBLISH_LOG_DDL, PUBLISH_LOG_KEY),
                ("publish_period_log", PUBLISH_PERIOD_LOG_DDL, PUBLISH_PERIOD_LOG_KEY),
            ]
            for name, ddl, key in logs:
                if name not in kept:
                    con.execute(ddl if not keys else _with_primary_key(ddl, key))
            if previous_release is not None and any(name not in kept for name, _, _ in logs):
                # The logs' history, when the release was written whole.
                con.execute(f"attach {literal(previous)} as previous (read_only)")
                present = _tables(con, "marts", "previous")
                for name, _, _ in logs:
                    if name not in kept and name in present:
                        con.execute(f"insert into marts.{name} select * from previous.marts.{name}")
                con.execute("detach previous")
            if first_period is None or last_period is None:
                first_period, last_period = con.execute(
                    "select min(period), max(period) from marts.customer_profitability"
                ).fetchone()
            published_at = datetime.now(UTC).replace(tzinfo=None)
            con.executemany(
                "insert into marts.publish_log values (?, ?, ?, ?, ?, ?, ?)",
                [
                    [run_id, published_at, first_period, last_period, t, counts[t], checksums[t]]
                    for t in tables
                ],
            )
            # One statement (executemany would run one insert per row: seconds for a thousand periods).
            period_rows = [
                (t, period, count, _checksum_text(count, total))
                for t in sorted(release.sums)
                for period, (count, total) in sorted(release.sums[t].items())
            ]
            if period_rows:
                con.execute(
                    "insert into marts.publish_period_log select ?, ?, unnest(?), unnest(?), unnest(?), unnest(?)",
                    [run_id, published_at, *(list(column) for column in zip(*period_rows, strict=True))],
                )
            all_docs = {
                **(docs or {}),
                "publish_log": PUBLISH_LOG_DOC,
                "publish_period_log": PUBLISH_PERIOD_LOG_DOC,
            }
            for table in sorted(unenforced):
                doc = all_docs.get(table, TableDoc(""))
                all_docs[table] = TableDoc(
                    f"{doc.description} Key: ({', '.join(primary_keys[table])}), tested by dbt; not a constraint "
                    f"in this file: the table has more than {enforced_key_rows:,} rows, and DuckDB holds a "
                    "key's index in memory.".strip(),
                    doc.columns,
                )
            _comment(con, all_docs)
            parquet = building / PARQUET_DIR
            for table in [*tables, "publish_log", "publish_period_log"]:
                options = _kv_metadata(all_docs.get(table), currency)
                if table in release.sums:
                    linked_from = previous_release / PARQUET_DIR if patching and previous_release else None
                    _write_periods(
                        con,
                        table,
                        parquet,
                        options,
                        release.sums[table],
                        release.replaced[table],
                        linked_from,
                    )
                else:
                    target = literal(parquet / f"{table}.parquet")
                    con.execute(f"copy marts.{ident(table)} to {target} (format parquet{options})")
            con.execute("checkpoint")
            con.execute("use memory")
            con.execute("detach release")
        found = storage_format(partial)
        if found != PUBLISHED_STORAGE_FORMAT:
            raise PublicationFormatError(
                f"{partial} was written in storage format {found}, not {PUBLISHED_STORAGE_FORMAT} "
                f"(DuckDB {PUBLISHED_STORAGE_VERSION}), which the BI tools read; nothing was published. "
                f"DuckDB {duckdb.__version__} may no longer write it: pin an older duckdb."
            )
        shutil.rmtree(building / f"{DATABASE}.tmp", ignore_errors=True)
        os.replace(partial, building / DATABASE)
        if extras is not None:
            extras(building)
        release_dir = releases / run_id
        shutil.rmtree(release_dir, ignore_errors=True)
        os.replace(building, release_dir)
        _pause("before_swap", published)
        _point_current_at(published, release_dir)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    _prune(published)
    return Publication(
        run_id,
        release_dir,
        release_dir / DATABASE,
        release_dir / PARQUET_DIR,
        counts,
        checksums,
        patching,
        {t: dict(sums) for t, sums in release.sums.items()},
        {t: replaced[1] for t, replaced in release.replaced.items() if replaced is not None and patching},
        "" if patching else reason,
    )


class PublicationKeyError(ValueError):
    """A published table's rows break its primary or foreign key: nothing was published."""


@dataclass(frozen=True)
class Periods:
    """Which periods of a table: a condition on ``period`` and its parameters, bound, never spliced into the
    SQL (the periods come from the data)."""

    sql: str
    params: tuple[date, ...] = ()

    @classmethod
    def every(cls) -> Periods:
        return cls("true")

    @classmethod
    def from_(cls, first: date) -> Periods:
        return cls("period >= ?", (first,))

    @classmethod
    def these(cls, periods: Collection[date]) -> Periods:
        ordered = tuple(sorted(periods))
        return cls(f"period in ({', '.join('?' for _ in ordered)})", ordered) if ordered else cls("false")


@dataclass
class _Release:
    """The release's DuckDB file being written: attached as ``release``, the current catalog. What it
    wrote: ``checksums`` (table -> row count and checksum text), ``sums`` (table with periods -> its periods'
    row counts and hash sums) and ``replaced`` (table with periods -> the periods written and those kept, None
    for a table written whole)."""

    con: duckdb.DuckDBPyConnection
    partial: Path
    tables: list[str]
    described: Mapping[str, list[tuple[str, str]]]
    keys: Mapping[str, TableKeys]
    source: Mapping[str, str]
    published: Path
    periodic: set[str]
    incremental: set[str]
    changed_from: date | None
    indexed_patch_rows: int = INDEXED_PATCH_ROWS
    kept: set[str] = field(default_factory=set)
    checksums: dict[str, tuple[int, str]] = field(default_factory=dict)
    sums: dict[str, PeriodSums] = field(default_factory=dict)
    replaced: dict[str, tuple[Periods, set[date]] | None] = field(default_factory=dict)

    def discard(self) -> None:
        self.con.execute("use memory")
        self.con.execute("detach release")
        self.partial.unlink(missing_ok=True)
        self.kept = set()

    def write(self, previous: Path | None, carried: Mapping[str, PeriodSums]) -> None:
        """Every table, created with its keys in an order that creates a dimension before what references it;
        with the ``previous`` release (and its periods before ``changed_from``, ``carried``), a copy of
        ``previous`` patched instead."""
        con = self.con
        self.checksums, self.sums, self.replaced = {}, {}, {}
        if previous is not None:
            shutil.copyfile(previous, self.partial)
        con.execute(
            f"attach {literal(self.partial)} as release (storage_version {literal(PUBLISHED_STORAGE_VERSION)})"
        )
        con.execute("use release")
        con.execute("create schema if not exists marts")
        self.kept = _tables(con, "marts") if previous is not None else set()
        order = creation_order(self.keys) if self.keys else list(self.tables)
        order = [table for table in order if table in self.tables]
        # A stale table (a mart no longer built) is referenced by none: a release where one was has other keys
        # and is not patched.
        for table in sorted(self.kept - {*self.tables, *LOGS}):
            con.execute(f"drop table marts.{ident(table)}")
        synced: list[str] = []
        for table in order:
            if table in self.periodic and table in self.kept:
                if table not in carried or not self._patch(table, carried[table]):
                    con.execute(f"drop table marts.{ident(table)}")
                    self._create(table)
            elif table not in self.kept:
                self._create(table)
            else:
                # A table without periods (a dimension): checksummed whole, as it is small.
                wanted = table_checksum(con, self.source[table])
                self.checksums[table] = wanted
                if table_checksum(con, f"marts.{ident(table)}") == wanted:
                    pass
                elif not self.keys or not self.keys[table].primary_key:
                    con.execute(f"drop table marts.{ident(table)}")
                    self._create(table)
                else:
                    # Its new and changed rows now, its removed ones once nothing references them (below).
                    self._upsert(table)
                    synced.append(table)
            _pause("building", self.published)
        for table in reversed(synced):
            key = self.keys[table].primary_key if table in self.keys else ()
            if not key:
                raise duckdb.InvalidInputException(f"marts.{table} has no key to remove rows by")
            match = " and ".join(f"s.{ident(c)} = t.{ident(c)}" for c in key)
            con.execute(
                f"delete from marts.{ident(table)} as t "
                f"where not exists (select 1 from {self.source[table]} as s where {match})"
            )
            if table_checksum(con, f"marts.{ident(table)}") != self.checksums[table]:
                raise duckdb.InvalidInputException(
                    f"marts.{table} differs from the warehouse's after patching"
                )

    def _upsert(self, table: str) -> None:
        """Insert the warehouse's rows of ``table`` whose key the release lacks, and update the others' columns
        in place. DuckDB refuses to replace a row, or to change a column with a foreign key, while another
        table references the row: that error makes the release be written whole instead."""
        key = self.keys[table].primary_key
        target, source = f"marts.{ident(table)}", self.source[table]
        match = " and ".join(f"s.{ident(c)} = t.{ident(c)}" for c in key)
        self.con.execute(
            f"insert into {target} select * from {source} as s "
            f"where not exists (select 1 from {target} as t where {match})"
        )
        # DuckDB rewrites a row whose foreign-key column an update sets, even to the same value, which a
        # referenced row refuses: those columns only when one changed (then the release is written whole).
        referencing = {c for fk in self.keys[table].foreign_keys for c in fk.columns}
        columns = [name for name, _ in self.described[table] if name not in key]
        fixed = [c for c in columns if c in referencing]
        plain = [c for c in columns if c not in referencing]

        def differs(names: list[str]) -> str:
            return " or ".join(f"t.{ident(c)} is distinct from s.{ident(c)}" for c in names)

        if fixed:
            (changed,) = self.con.execute(
                f"select count(*) from {target} as t join {source} as s on {match} where {differs(fixed)}"
            ).fetchone()
            if changed:
                raise duckdb.ConstraintException(f"{changed} rows of {target} change a foreign key")
        if plain:
            assignments = ", ".join(f"{ident(c)} = s.{ident(c)}" for c in plain)
            self.con.execute(
                f"update {target} as t set {assignments} from {source} as s where {match} and ({differs(plain)})"
            )

    def _create(self, table: str) -> None:
        con = self.con
        if not self.keys:
            con.execute(f"create or replace table marts.{ident(table)} as select * from {self.source[table]}")
        else:
            con.execute(_table_ddl(table, self.described[table], self.keys[table]))
            try:
                con.execute(f"insert into marts.{ident(table)} select * from {self.source[table]}")
            except duckdb.ConstraintException as error:
                raise PublicationKeyError(
                    f"marts.{table} breaks its keys ({_key_text(self.keys[table])}); nothing was published: "
                    f"{error}"
                ) from error
        target = f"marts.{ident(table)}"
        if table in self.periodic:
            columns = [name for name, _ in self.described[table]]
            wanted = period_sums(con, self.source[table], columns)
            found = period_sums(con, target, columns)
            if found != wanted:
                raise ValueError(
                    f"marts.{table} was written with {_total(found)}, the warehouse has {_total(wanted)}"
                )
            if None in found:
                # Rows without a period: published like a table without periods (one file, no period log).
                self.periodic.discard(table)
            else:
                self.sums[table] = found
                self.replaced[table] = None
            self.checksums[table] = _total(found)
            return
        wanted, found = table_checksum(con, self.source[table]), table_checksum(con, target)
        if found != wanted:
            raise ValueError(f"marts.{table} was written with {found}, the warehouse has {wanted}")
        self.checksums[table] = found

    def _patch(self, table: str, carried: PeriodSums) -> bool:
        """Replace the periods of the copied ``marts.<table>`` that the warehouse may have changed: from
        ``changed_from`` on in a table the run refreshes by period (``incremental``), else those whose row count
        or checksum differs from the current release's (``carried``, its period log), found in one scan of the
        warehouse's table. True when the replaced periods then equal the warehouse's."""
        con = self.con
        columns = [name for name, _ in self.described[table]]
        target, source = f"marts.{ident(table)}", self.source[table]
        if table in self.incremental and self.changed_from is not None:
            if self._cheaper_whole(table, carried, {p for p in carried if p >= self.changed_from}):
                return False
            condition = Periods.from_(self.changed_from)
            wanted = period_sums(con, source, columns, condition)
            sums = {**{p: s for p, s in carried.items() if p < self.changed_from}, **wanted}
        else:
            sums = period_sums(con, source, columns)
            if None in sums:
                return False
            changed = sorted(p for p in {*sums, *carried} if sums.get(p) != carried.get(p))
            if self._cheaper_whole(table, carried, set(changed)):
                return False
            condition = Periods.these(changed)
            wanted = {p: sums[p] for p in changed if p in sums}
        if condition.sql != "false":
            try:
                replace_rows(
                    con,
                    target,
                    None,
                    condition.sql,
                    condition.params,
                    f"select * from {source} where {condition.sql}",
                    condition.params,
                )
            except duckdb.Error:
                return False
            if period_sums(con, target, columns, condition) != wanted:
                return False
        self.sums[table] = sums
        self.checksums[table] = _total(sums)
        self.replaced[table] = (condition, {p for p in sums if p not in wanted})
        return True

    def _cheaper_whole(self, table: str, carried: PeriodSums, replaced: set[date]) -> bool:
        """Whether writing ``table`` whole costs less than replacing the release's rows of ``replaced``: a table
        with an enforced key whose replaced rows are more than INDEXED_PATCH_ROWS and a tenth of it."""
        if not self.keys or table not in self.keys or not self.keys[table].primary_key:
            return False
        deleted = sum(carried[p][0] for p in replaced if p in carried)
        total = sum(count for count, _ in carried.values())
        return deleted > self.indexed_patch_rows and deleted * INDEXED_PATCH_SHARE > total


def period_sums(
    con: duckdb.DuckDBPyConnection, relation: str, columns: list[str], condition: Periods | None = None
) -> PeriodSums:
    """Per period of ``relation`` (those ``condition`` selects): its row count and the sum of its rows'
    hashes, as :func:`table_checksum` hashes them, in one scan. The sums are additive: a table's checksum is
    its periods' (:func:`_total`)."""
    row = ", ".join(ident(column) for column in columns)
    where = f" where {condition.sql}" if condition else ""
    rows = con.execute(
        f"select period, count(*), coalesce(sum(hash(struct_pack({row}))), 0) from {relation}{where} group by period",
        list(condition.params) if condition else [],
    ).fetchall()
    return {period: (int(count), int(total)) for period, count, total in rows}


def _checksum_text(count: int, total: int) -> str:
    return f"{count}:{total:x}"


def _total(sums: Mapping[date | None, tuple[int, int]]) -> tuple[int, str]:
    """A table's row count and checksum (as :func:`table_checksum` gives them) from its periods'."""
    count = sum(n for n, _ in sums.values())
    return count, _checksum_text(count, sum(total for _, total in sums.values()))


def _carried_periods(
    con: duckdb.DuckDBPyConnection, previous: Path, expected_keys: Mapping[str, tuple], changed_from: date
) -> tuple[dict[str, PeriodSums] | None, str]:
    """The current release's period log of its last publication (table -> period -> row count and hash sum),
    read on ``con``; None, with the reason, when the release is to be written whole: other keys, no period log
    (written by older code), or a period log that disagrees with the publish log's table checksums or with
    the tables' row counts per period (a release changed after it was written, or a bug)."""
    con.execute(f"attach {literal(previous)} as previous (read_only)")
    try:
        present = _tables(con, "marts", "previous")
        if not {"publish_log", "publish_period_log"} <= present:
            return None, "the current release has no period log (written by older code)"
        if _declared_keys(con, "previous") != expected_keys:
            return None, "the current release has other keys"
        (latest,) = con.execute("select max(published_at) from previous.marts.publish_log").fetchone()
        logged = dict(
            con.execute(
                "select table_name, checksum from previous.marts.publish_log where published_at = ?", [latest]
            ).fetchall()
        )
        carried: dict[str, PeriodSums] = {}
        for table, period, count, checksum in con.execute(
            "select table_name, period, row_count, checksum from previous.marts.publish_period_log "
            "where published_at = ?",
            [latest],
        ).fetchall():
            counted, _, total = checksum.partition(":")
            if counted != str(count):
                return (
                    None,
                    f"the current release's period log of {table} has {count} rows and checksum {checksum}",
                )
            carried.setdefault(table, {})[period] = (count, int(total, 16))
        for table, sums in carried.items():
            if table not in present or _total(sums)[1] != logged.get(table):
                return None, f"the current release's period log of {table} disagrees with its publish log"
            counts = dict(
                con.execute(
                    f"select period, count(*) from previous.marts.{ident(table)} group by period"
                ).fetchall()
            )
            if counts != {period: count for period, (count, _) in sums.items()}:
                return None, f"the current release's period log of {table} disagrees with its rows per period"
        return carried, ""
    finally:
        con.execute("detach previous")


def _write_periods(
    con: duckdb.DuckDBPyConnection,
    table: str,
    parquet: Path,
    options: str,
    sums: PeriodSums,
    replaced: tuple[Periods, set[date]] | None,
    previous: Path | None,
) -> None:
    """``parquet/<table>/period=<YYYY-MM-DD>/data_0.parquet``, hive-style, each file holding its period column
    too: the periods ``replaced`` names (SQL, and the periods kept) written, the kept ones hard links to the
    files of the ``previous`` release's folder (copies where linking fails). Without ``replaced``, or when the
    previous release lacks a kept period's folder, the table is written whole. An empty table is one file
    ``parquet/<table>/<table>.parquet`` with its columns and no rows."""
    folder = parquet / table
    condition = Periods.every()
    if replaced is not None and previous is not None:
        condition, kept = replaced
        found: dict[date, Path] = {}
        if (previous / table).is_dir():
            for old in (previous / table).iterdir():
                if old.is_dir() and old.name.startswith("period="):
                    try:
                        found[date.fromisoformat(old.name.removeprefix("period="))] = old
                    except ValueError:
                        continue
        if kept <= set(found):
            folder.mkdir()
            for period in kept:
                _link_folder(found[period], folder / found[period].name)
        else:
            condition = Periods.every()
    if condition.sql == "true":
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
    if not sum(count for count, _ in sums.values()):
        con.execute(
            f"copy marts.{ident(table)} to {literal(folder / f'{table}.parquet')} (format parquet{options})"
        )
        return
    if condition.sql == "false":
        return
    staging = parquet / f".{table}.new"
    con.execute(
        f"copy (select * from marts.{ident(table)} where {condition.sql}) to {literal(staging)} "
        f"(format parquet, partition_by (period), write_partition_columns true{options})",
        list(condition.params),
    )
    if staging.is_dir():
        for written in staging.iterdir():
            os.replace(written, folder / written.name)
        staging.rmdir()


def _link_folder(source: Path, target: Path) -> None:
    """``target`` holding hard links to ``source``'s files (a release is never changed once written, so the
    two share them safely); a copy where the file system refuses the link."""
    target.mkdir()
    for file in source.iterdir():
        try:
            os.link(file, target / file.name)
        except OSError:
            shutil.copy2(file, target / file.name)


def _describe(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    """A relation's columns and their DuckDB types, in order."""
    return [(name, kind) for name, kind, *_ in con.execute(f"describe select * from {relation}").fetchall()]


def _table_ddl(table: str, columns: list[tuple[str, str]], keys: TableKeys) -> str:
    parts = [f"{ident(name)} {kind}" for name, kind in columns]
    if keys.primary_key:
        parts.append(f"primary key ({', '.join(ident(c) for c in keys.primary_key)})")
    for fk in keys.foreign_keys:
        parts.append(
            f"foreign key ({', '.join(ident(c) for c in fk.columns)}) "
            f"references marts.{ident(fk.table)} ({', '.join(ident(c) for c in fk.to_columns)})"
        )
    return f"create table marts.{ident(table)} (\n    " + ",\n    ".join(parts) + "\n)"


def _with_primary_key(ddl: str, key: tuple[str, ...]) -> str:
    head, _, _ = ddl.rstrip().rpartition(")")
    return f"{head.rstrip()},\n    primary key ({', '.join(ident(c) for c in key)})\n)"


def _key_text(keys: TableKeys) -> str:
    text = f"primary key ({', '.join(keys.primary_key)})"
    for fk in keys.foreign_keys:
        text += f", {', '.join(fk.columns)} in {fk.table}"
    return text


def _expected_keys(keys: Mapping[str, TableKeys]) -> dict[str, tuple]:
    """The constraints :func:`_declared_keys` reads back from a release written with ``keys``."""
    expected = {
        table: (table_key.primary_key, frozenset((fk.columns, fk.table) for fk in table_key.foreign_keys))
        for table, table_key in keys.items()
        if table_key.primary_key or table_key.foreign_keys  # a table without constraints is not listed
    }
    if keys:
        expected["publish_log"] = (PUBLISH_LOG_KEY, frozenset())
        expected["publish_period_log"] = (PUBLISH_PERIOD_LOG_KEY, frozenset())
    return expected


def _declared_keys(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, tuple]:
    """The primary and foreign keys of the tables in schema marts of a published file attached as ``catalog``
    (tables without any are left out), as :func:`_expected_keys` gives them."""
    rows = con.execute(
        "select table_name, constraint_type, constraint_column_names, referenced_table "
        "from duckdb_constraints() where database_name = ? and schema_name = 'marts' "
        "and constraint_type in ('PRIMARY KEY', 'FOREIGN KEY')",
        [catalog],
    ).fetchall()
    primary: dict[str, tuple[str, ...]] = {}
    foreign: dict[str, set] = {}
    for table, kind, columns, referenced in rows:
        if kind == "PRIMARY KEY":
            primary[table] = tuple(columns)
        else:
            foreign.setdefault(table, set()).add((tuple(columns), referenced))
    return {
        table: (primary.get(table, ()), frozenset(foreign.get(table, ()))) for table in {*primary, *foreign}
    }


def _comment(con: duckdb.DuckDBPyConnection, docs: Mapping[str, TableDoc]) -> None:
    """Table and column comments from ``docs``; a table or column without a description gets none (NULL)."""
    for table in _tables(con, "marts"):
        doc = docs.get(table)
        text = literal(doc.description) if doc else "null"
        con.execute(f"comment on table {qualified('marts', table)} is {text}")
        for column in _columns(con, table):
            described = doc.columns.get(column) if doc else None
            text = literal(described) if described else "null"
            con.execute(f"comment on column {qualified('marts', table, column)} is {text}")


def _kv_metadata(doc: TableDoc | None, currency: str | None = None) -> str:
    """The ``KV_METADATA`` option of a Parquet ``COPY``: the table's description and its columns', and the
    currency of its amounts."""
    pairs = {"currency": currency} if currency else {}
    if doc is not None:
        pairs.update({"description": doc.description, "column_descriptions": json.dumps(dict(doc.columns))})
    if not pairs:
        return ""
    return ", kv_metadata {" + ", ".join(f"{k}: {literal(v)}" for k, v in pairs.items()) + "}"


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns where table_catalog = current_database() "
            "and table_schema = 'marts' and table_name = ? order by ordinal_position",
            [table],
        ).fetchall()
    ]


def _tables(con: duckdb.DuckDBPyConnection, schema: str, catalog: str | None = None) -> set[str]:
    return {
        name
        for (name,) in con.execute(
            "select table_name from information_schema.tables where table_catalog = coalesce(?, current_database()) "
            "and table_schema = ?",
            [catalog, schema],
        ).fetchall()
    }


def _point_current_at(published: Path, release: Path) -> None:
    link = published / f".{CURRENT}-{uuid.uuid4().hex[:8]}"
    os.symlink(Path(RELEASES) / release.name, link)
    os.replace(link, published / CURRENT)


def _remove_abandoned_builds(releases: Path) -> None:
    for folder in releases.glob(".building-*"):
        shutil.rmtree(folder, ignore_errors=True)


def _prune(published: Path) -> None:
    """Keep the current release and the previous few; readers may still hold those."""
    current = (published / CURRENT).resolve()
    releases = sorted(
        (p for p in (published / RELEASES).iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    keep = {current, *releases[: KEEP_PREVIOUS + 1]}
    for release in releases:
        if release.resolve() not in keep:
            shutil.rmtree(release, ignore_errors=True)
    for link in published.glob(f".{CURRENT}-*"):
        link.unlink(missing_ok=True)
