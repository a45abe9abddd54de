"""The warehouse seam: what the assets read and write, whatever engine holds the tables.

Two engines implement :class:`Warehouse`: DuckDB (``pipelines/engines/duckdb_warehouse.py``, the embedded default,
one file) and Spark (``pipelines/engines/spark_warehouse.py``). ``CPROF_ENGINE`` picks one, and with it the dbt
target (``pipelines/engines/__init__.py``). Assets and domain code never import an engine: they get a
:class:`Warehouse` from the Dagster resource and speak in tables (``schema.name``), columns, bound filters and
pandas frames. Anything that needs SQL of its own belongs in a dbt model, which is portable by dispatch.

A warehouse plays three roles, each an interface of its own: :class:`Tables` (what the Python assets read and
write), :class:`Intake` (landing files through quarantine and validation into ``raw``) and :class:`MartsSource`
(what the publication reads). :class:`Warehouse` is the three together, plus ``close``.

Every table the Python assets write is keyed by ``period`` (the first day of a month) and written one way,
:meth:`Warehouse.replace_periods`: the periods of a window are replaced by new rows, all or nothing, so a failed
write leaves the table as it was (DuckDB: one transaction; Spark: one ``insert overwrite`` of the partitions).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pipelines.lib.settings import Settings

if TYPE_CHECKING:  # the publication is a DuckDB file whatever the engine; only its writer holds a connection
    import duckdb
    import pandas as pd

    from pipelines.engines.whole_months import WholeMonths
    from pipelines.landing.inventory import FileStamp

Operator = Literal["=", "<", "<=", ">", ">=", "in"]
OPERATORS = ("=", "<", "<=", ">", ">=", "in")


@dataclass(frozen=True)
class Filter:
    """``column <op> value``: the value is always bound, never SQL text; ``in`` takes a sequence."""

    column: str
    op: Operator
    value: Any


@dataclass(frozen=True)
class PeriodWindow:
    """The periods from ``first`` to ``last`` (first days of months), either end open when None; unbounded both
    ways means every period (the table is rebuilt whole)."""

    first: date | None = None
    last: date | None = None

    @property
    def everything(self) -> bool:
        return self.first is None and self.last is None

    def filters(self, column: str = "period") -> list[Filter]:
        found = []
        if self.first is not None:
            found.append(Filter(column, ">=", self.first))
        if self.last is not None:
            found.append(Filter(column, "<=", self.last))
        return found


@dataclass(frozen=True)
class CopyRows:
    """Among the frames of :meth:`Warehouse.replace_periods`: the rows staged before it whose ``column`` is ``of``,
    staged again with ``column`` set to ``value``; the engine copies them, so rows that repeat (a scenario
    without changes has actual's) cross from pandas once. Both values are bound."""

    column: str
    of: Any
    value: Any

    def query(
        self, table: str, columns: Sequence[Column], quote: Callable[[str], str], source: str
    ) -> tuple[str, list[Any]]:
        """The select (DuckDB's SQL) of the copy from ``source``, rows of ``columns`` (names quoted by ``quote``),
        and its parameters: ``column`` bound as ``value``, cast to its declared type and under its name, the
        others as they are, of the rows whose ``column`` is ``of``."""
        names = [c.name for c in columns]
        if self.column not in names:
            raise ValueError(
                f"{table}: rows copied by {self.column!r}, which is not one of its columns {names}"
            )
        selected = ", ".join(
            f"cast(? as {c.type}) as {quote(c.name)}" if c.name == self.column else quote(c.name)
            for c in columns
        )
        return f"select {selected} from {source} where {quote(self.column)} = ?", [self.value, self.of]


@dataclass(frozen=True)
class Column:
    """A column of a table the Python assets write, in a portable type: ``date``, ``varchar``, ``integer``,
    ``double``, ``boolean`` or ``decimal(p, s)``."""

    name: str
    type: str
    nullable: bool = True


@dataclass(frozen=True)
class LoadResult:
    """One landing file (a month, or a snapshot) loaded into quarantine (``landed.<source>``)."""

    source: str
    path: Path
    period: str | None  # YYYY-MM, or None for a snapshot
    rows: int
    sha256: str
    bytes: int
    mtime_ns: int = 0
    unchanged: bool = False  # a snapshot whose file is the one already validated and promoted: not reloaded


@dataclass(frozen=True)
class Released:
    """A whole month released to ``raw``: the rows of each monthly source whose latest load became raw's."""

    month: str  # YYYY-MM
    rows: dict[str, int]


@dataclass(frozen=True)
class SnapshotRelease:
    """A reference snapshot released to ``raw``, and what it restates: when it changes or removes rows of the
    release before it (a new row restates nothing), every month in ``raw`` awaits publication again."""

    source: str
    rows: int
    changed: int = 0  # rows of the previous release with the same key and other values
    removed: int = 0  # rows of the previous release whose key is gone
    columns: list[str] = field(default_factory=list)  # the columns that changed
    restated: list[str] = field(default_factory=list)  # YYYY-MM, sorted: the months recorded as awaiting

    def sentence(self, file: str) -> str | None:
        """What a run says of it (``file``: the landing file), or None when it restates nothing."""
        if not self.restated:
            return None
        parts = []
        if self.changed:
            parts.append(f"changed {self.changed} existing row(s) ({', '.join(self.columns)})")
        if self.removed:
            parts.append(f"removed {self.removed} row(s)")
        span = self.restated[0] if len(self.restated) == 1 else f"{self.restated[0]}..{self.restated[-1]}"
        return f"{file} {' and '.join(parts)}: restating {span}"


class Tables(ABC):
    """The warehouse's tables as the Python assets use them: read with filters, and one write of a table keyed
    by period. No SQL of ours crosses this seam, only table names, columns and filters."""

    @abstractmethod
    def exists(self, table: str) -> bool:
        """Whether ``schema.name`` exists."""

    @abstractmethod
    def read(
        self,
        table: str,
        columns: Sequence[str] | None = None,
        where: Sequence[Filter] = (),
        order_by: Sequence[str] = (),
    ) -> pd.DataFrame:
        """Rows of ``table`` (the ``columns`` given, else all) that pass every filter, as a pandas frame."""

    @abstractmethod
    def distinct(self, table: str, column: str, where: Sequence[Filter] = ()) -> list[Any]:
        """The distinct values of ``column`` among the rows that pass every filter, in order."""

    @abstractmethod
    def count(self, table: str, where: Sequence[Filter] = ()) -> int:
        """How many rows of ``table`` pass every filter."""

    @abstractmethod
    def count_by(self, table: str, column: str, where: Sequence[Filter] = ()) -> dict[Any, int]:
        """Rows per value of ``column`` among the rows that pass every filter."""

    @abstractmethod
    def columns(self, table: str) -> list[str]:
        """The column names of ``table``, in order ([] when it does not exist)."""

    @abstractmethod
    def preview(self, sql: str, limit: int) -> pd.DataFrame:
        """The first ``limit`` rows of a query dbt compiled for this engine (a failed data test's: the rows that
        break it), read after the build to say which keys fail. Never SQL of our own, nor values from data."""

    # the one write of a table keyed by period
    @abstractmethod
    def replace_periods(
        self,
        table: str,
        columns: Sequence[Column],
        frames: Iterable[pd.DataFrame | CopyRows],
        window: PeriodWindow,
    ) -> int:
        """Replace the rows of ``table`` whose ``period`` is in ``window`` by the rows of ``frames`` (each with
        exactly ``columns``, in order, or a :class:`CopyRows` of rows staged before it; consumed one at a time, so
        a caller can produce them month by month), all or nothing. The table is created when missing, and rebuilt
        whole when ``window`` is unbounded. Returns the number of rows written."""


class Intake(ABC):
    """Landing files on their way to ``raw``: parsed into ``landed`` (quarantine), validated, and released a
    whole month (or a snapshot) at a time."""

    @abstractmethod
    def load(
        self,
        landing: Path,
        source: str,
        month: str | None,
        reuse_unchanged: bool,
        expected: FileStamp | None = None,
        accept_row_drop: bool = False,
        max_row_drop: float = Settings.max_row_drop,
        allow_external_links: bool = Settings.allow_external_links,
    ) -> LoadResult:
        """Parse a landing file exactly (pipelines.landing.parsing) into ``landed.<source>``, replacing that
        month (or the snapshot); a file that does not parse raises LandingError and changes nothing. Only the
        file ``expected`` (as the run's inventory found it) is loaded: one that changed before or while it was
        parsed raises LandingError naming it; so does a month with far fewer rows than its promoted load
        (``max_row_drop``, the setting) unless ``accept_row_drop``. A landing file linked from outside the data
        directory is refused unless ``allow_external_links`` (the setting)."""

    @abstractmethod
    def validation_frame(
        self,
        source: str,
        month: str | None,
        history_start: str | None = None,
        return_window: int = Settings.return_window_months,
    ) -> Any:
        """What the source's Great Expectations suite validates for that partition: a pandas frame on DuckDB,
        a Spark DataFrame on Spark (data_checks.gx_run runs the suite with the matching execution engine).
        ``history_start`` (YYYY-MM): the start of history, and ``return_window`` (months, the setting
        return_window_months), for the returns' pre-history rule."""

    @abstractmethod
    def validation_frames(
        self,
        source: str,
        months: list[str],
        history_start: str | None = None,
        return_window: int = Settings.return_window_months,
    ) -> Any:
        """Several months' validation frames as one frame of the same kind, each row with its month (YYYY-MM) in
        ``data_checks.suites.PARTITION_COLUMN``: each month's rows are exactly its :meth:`validation_frame`.
        The input checks validate a few months in one Great Expectations validation this way
        (data_checks.gx_run.LandingValidator.validate_months)."""

    # Whether the warehouse evaluates a landing suite where the data is (:meth:`evaluate_suite`); if not, GX's
    # execution engine validates its frames.
    evaluates_suites: bool = False

    def evaluate_suite(
        self,
        source: str,
        months: list[str | None],
        history_start: str | None = None,
        return_window: int = Settings.return_window_months,
    ) -> dict[str | None, Any]:
        """The source's suite evaluated in the warehouse on each of ``months`` (``[None]``: the snapshot), in
        one pass: month to its ``data_checks.duckdb_evaluation.Evaluation``. Only where
        :attr:`evaluates_suites`."""
        raise NotImplementedError(f"the {self.engine} warehouse leaves the suites to Great Expectations")

    @abstractmethod
    def mark_validated(self, source: str, month: str, passed: bool, run_id: str | None) -> int:
        """Record whether the month's latest load of ``source`` passed its suite, in run ``run_id``; returns its
        rows. A validated month is held out of ``raw`` until it is whole (pipelines/engines/whole_months.py)."""

    def mark_validated_months(self, source: str, passed: Mapping[str, bool], run_id: str | None) -> None:
        """:meth:`mark_validated` of each month (to whether it passed), all or none recorded."""
        for month, success in passed.items():
            self.mark_validated(source, month, success, run_id)

    @abstractmethod
    def whole_months(self) -> WholeMonths:
        """What the warehouse holds of every monthly source's months: which are whole, released, held."""

    @abstractmethod
    def release_whole_months(self) -> list[Released]:
        """Release to ``raw`` every month that is whole and may be released, all its sources at once, and record
        it as awaiting publication; returns what was released. Nothing is copied: DuckDB marks the stored
        generations promoted, Spark points raw's partitions at them."""

    @abstractmethod
    def release_snapshot(self, source: str) -> SnapshotRelease:
        """Make a validated snapshot what ``raw`` shows; when it changes or removes rows of the previous release,
        record every month in ``raw`` as awaiting publication (restated by this run or the next)."""

    @abstractmethod
    def snapshot_promoted(self, source: str) -> bool:
        """Whether the snapshot in ``landed`` is the file already validated and promoted."""


class MartsSource(ABC):
    """What the publication reads: the marts, made readable in the publication writer's DuckDB connection."""

    engine: str  # "duckdb" or "spark"

    @abstractmethod
    def marts(self) -> list[str]:
        """The tables of schema ``marts``: what gets published."""

    @abstractmethod
    def marts_in(self, con: duckdb.DuckDBPyConnection) -> AbstractContextManager[dict[str, str]]:
        """Make every mart readable in ``con`` (the publication writer's DuckDB connection) for the duration of
        the block: a mapping of table name to a relation ``con`` can select from (columns in the mart's order)."""


class Warehouse(Tables, Intake, MartsSource):
    """An open session on the working warehouse (see the module's docstring): its three roles, each an interface
    of its own, so that a caller can say which one it needs (the publication: ``MartsSource``)."""

    def close(self) -> None:
        """Release what the session holds (connections, temporary files)."""


def where_sql(filters: Sequence[Filter], quote) -> tuple[str, list[Any]]:
    """A SQL predicate of ``filters`` with ``?`` placeholders and its parameters; ``quote`` quotes identifiers.
    For engines whose Python API binds ``?`` parameters (DuckDB); Spark binds named parameters."""
    clauses, params = [], []
    for f in filters:
        if f.op not in OPERATORS:
            raise ValueError(f"unknown operator {f.op!r} in a filter on {f.column}")
        if f.op == "in":
            values = list(f.value)
            if not values:
                clauses.append("false")
                continue
            clauses.append(f"{quote(f.column)} in ({', '.join('?' for _ in values)})")
            params.extend(values)
        else:
            clauses.append(f"{quote(f.column)} {f.op} ?")
            params.append(f.value)
    return " and ".join(clauses) or "true", params
