"""Landing data is written once: ``store.<source>`` holds each load as a generation, ``landed`` and ``raw`` are
views of each partition's latest and promoted generation. A month that fails its suite leaves raw as it was, a
reload is idempotent, each published row is stored once, and a warehouse in a layout from before the store is
refused with a message saying how to rebuild it, untouched."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.engines.duckdb_ingest import WarehouseTooOld, ensure_tables, load, promote
from pipelines.landing.sources import SOURCES
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.run import PipelineError, run_pipeline

MONTH = "2024-02"


def _content(con, table: str, month: str | None = None) -> tuple[int, int]:
    """Rows and a hash of every column of every row (of one month)."""
    where = f" where _period = date '{month}-01'" if month else ""
    return con.execute(f"select count(*), sum(hash(t)) from (select * from {table}{where}) as t").fetchone()


def _stored(con, source: str) -> int:
    return con.execute(f"select count(*) from store.{source}").fetchone()[0]


def _kinds(con) -> set[tuple[str, str, str]]:
    return set(
        con.execute(
            "select schema_name, table_name, 'table' from duckdb_tables() where schema_name in ('landed', 'raw') "
            "union all select schema_name, view_name, 'view' from duckdb_views() "
            "where schema_name in ('landed', 'raw')"
        ).fetchall()
    )


def _set_first_quantity(path: Path, value: str) -> None:
    rows = list(csv.reader(path.open(newline="")))
    rows[1][rows[0].index("quantity")] = value
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def test_each_published_row_is_stored_once(published_sample: Paths):
    with duckdb.connect(str(published_sample.warehouse), read_only=True) as con:
        assert {
            (schema, name, "view") for schema in ("landed", "raw") for name in (s.name for s in SOURCES)
        } <= (_kinds(con))
        assert not {name for _, name, kind in _kinds(con) if kind == "table"} & {s.name for s in SOURCES}
        for source in SOURCES:
            raw = _content(con, f"raw.{source.name}")
            assert raw == _content(con, f"landed.{source.name}")  # every partition promoted: one generation
            assert _stored(con, source.name) == raw[0]
        assert _stored(con, "order_lines") > 0


def test_a_month_that_fails_its_suite_leaves_raw_as_it_was(published_sample: Paths, tmp_path: Path):
    paths = Paths(tmp_path / "data")
    shutil.copytree(published_sample.data_dir, paths.data_dir, symlinks=True)
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        before = {month: _content(con, "raw.order_lines", month) for month in ("2024-01", MONTH, "2024-03")}
    _set_first_quantity(paths.landing / "order_lines" / f"{MONTH}.csv", "0")  # parses; the suite says >= 1
    with pytest.raises(PipelineError, match="quantity"):
        run_pipeline(Settings(data_dir=paths.data_dir), MONTH, MONTH, progress=lambda _: None, live=False)
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert {month: _content(con, "raw.order_lines", month) for month in before} == before
        assert con.execute(
            "select count(*) from landed.order_lines where _period = ? and quantity = 0", [f"{MONTH}-01"]
        ).fetchone() == (1,)  # the failed file stays in quarantine, for its report
        landed = _content(con, "landed.order_lines", MONTH)[0]
        assert _stored(con, "order_lines") == sum(rows for rows, _ in before.values()) + landed


def test_reloading_a_month_is_idempotent(data_paths: Paths):
    data_paths.data_dir.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(data_paths.warehouse)) as con:
        first = load(con, data_paths.landing, "order_lines", MONTH).rows
        assert promote(con, "order_lines", MONTH) == first
        once = con.execute(
            "select * exclude (_loaded_at) from raw.order_lines order by order_id, line_no"
        ).df()
        for _ in range(2):
            assert load(con, data_paths.landing, "order_lines", MONTH).rows == first
            assert _stored(con, "order_lines") == 2 * first  # the promoted load and the one in quarantine
            assert promote(con, "order_lines", MONTH) == first
            assert promote(con, "order_lines", MONTH) == first  # promoting again changes nothing
            again = con.execute(
                "select * exclude (_loaded_at) from raw.order_lines order by order_id, line_no"
            ).df()
            assert again.equals(once)
            assert _stored(con, "order_lines") == first
        assert con.execute("select count(*) from landed._generations").fetchone() == (1,)


# Layouts of warehouses written by earlier versions of cprof, each made from a current one.
EARLIER_LAYOUTS = {
    # before the store: landed and raw as tables of their own
    "store": [
        *(
            statement
            for source in SOURCES
            for schema in ("landed", "raw")
            for statement in (
                f"create table {schema}._old_{source.name} as select * from {schema}.{source.name}",
                f"drop view {schema}.{source.name}",
                f"alter table {schema}._old_{source.name} rename to {source.name}",
            )
        ),
        *(f"drop table store.{source.name}" for source in SOURCES),
        "drop table landed._generations",
    ],
    # before whole months: the record of generations did not say which were validated
    "whole months": [
        "alter table landed._generations drop column validation_run",
        "alter table landed._generations drop column validated",
    ],
    # before returns declared their optional columns
    "optional columns": [
        "drop view landed.returns",
        "drop view raw.returns",
        "drop view validated.returns",
        "alter table store.returns drop column order_date",
    ],
}


@pytest.mark.parametrize("layout", EARLIER_LAYOUTS)
def test_a_warehouse_in_an_earlier_layout_is_refused_untouched(data_paths: Paths, layout: str):
    """cprof no longer upgrades a warehouse written before the store, whole months or optional columns: every
    engine call refuses it with one message naming the file, what is old and how to rebuild it, and changes
    nothing in it."""
    data_paths.data_dir.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(data_paths.warehouse)) as con:
        load(con, data_paths.landing, "returns", MONTH)
        promote(con, "returns", MONTH)
        for statement in EARLIER_LAYOUTS[layout]:
            con.execute(statement)
        before = (
            _kinds(con),
            _content(con, "raw.returns" if layout != "optional columns" else "store.returns"),
        )
    with duckdb.connect(str(data_paths.warehouse)) as con:
        with pytest.raises(WarehouseTooOld) as caught:
            ensure_tables(con)  # what every engine call does first
        message = str(caught.value)
        assert message.startswith(f"{data_paths.warehouse}: this warehouse was written by an earlier version")
        assert f"cprof --data-dir {data_paths.data_dir} run --full-refresh" in message, message
        assert {"store": "raw.returns", "whole months": "no column validated"}.get(
            layout, "store.returns (no column order_date)"
        ) in message, message
        assert "\n" not in message
        with pytest.raises(WarehouseTooOld):
            load(con, data_paths.landing, "returns", MONTH)
        after = _kinds(con), _content(con, "raw.returns" if layout != "optional columns" else "store.returns")
    assert after == before
