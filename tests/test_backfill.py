"""Start anywhere, backfill backwards: a first load whose first month has returns of older orders publishes them
as pre-history returns; loading the older months afterwards publishes exactly what loading everything in order
does (checksums of every published table)."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.defs.partitions import range_tags
from pipelines.engines.duckdb_ingest import months_awaiting_publication
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.publication.publish import current_database
from pipelines.run import PipelineError, run_pipeline
from pipelines.summary import prehistory_lines
from tests.conftest import SMALL
from tests.test_orchestration import _published_checksums

OLDER = SMALL.start  # 2024-01: the month the first load does not have


def _published(paths: Paths, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(current_database(paths.published)), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _prehistory(sample: Paths) -> list[tuple]:
    """The returns of the sample's second month whose lines were ordered in its first: (return_id, order_date,
    customer_id, unit_price, unit_cost, credit), from the sample loaded whole."""
    with duckdb.connect(str(sample.warehouse), read_only=True) as con:
        return con.execute(
            "select r.return_id, l.order_date, l.customer_id, l.unit_price, p.unit_cost, r.quantity * l.unit_price "
            "from raw.returns as r join raw.order_lines as l using (order_id, line_no) "
            "join raw.products as p using (product_id) "
            "where l._period = ? and r._period > ? order by r.return_id",
            [f"{OLDER}-01", f"{OLDER}-01"],
        ).fetchall()


def _export_line_of_first(returns: Path, line: tuple) -> None:
    """The returns file gives the line of ``line``'s return (order date, customer, price, cost), empty for the
    other returns."""
    rows = [row.split(",") for row in returns.read_text().splitlines()]
    rows[0] += ["order_date", "customer_id", "unit_price", "unit_cost"]
    for row in rows[1:]:
        row += [str(value) for value in line[1:5]] if row[0] == line[0] else ["", "", "", ""]
    returns.write_text("\n".join(",".join(row) for row in rows) + "\n")


def test_start_mid_stream_then_backfill_backwards_publishes_what_loading_in_order_does(
    published_sample: Paths, small_landing: Path, tmp_path: Path
):
    prehistory = _prehistory(published_sample)
    assert len(prehistory) >= 2, "the sample has returns of its first month's lines in later months"
    paths = Paths(tmp_path / "data")
    shutil.copytree(small_landing, paths.landing)
    held_back = tmp_path / "archive"
    for file in sorted(paths.landing.glob(f"*/{OLDER}.csv")):
        (held_back / file.parent.name).mkdir(parents=True)
        file.rename(held_back / file.parent.name / file.name)
    priced = prehistory[0]  # the source system exports this one's line with it; the others it does not
    returns_file = paths.landing / "returns" / f"{_month_of(paths, priced[0])}.csv"
    _export_line_of_first(returns_file, priced)

    # 1. The first load starts at 2024-02: its returns of January's lines are pre-history, published, not errors.
    said: list[str] = []
    run_pipeline(Settings(data_dir=paths.data_dir), progress=said.append)
    listed = _published(
        paths,
        "select return_id, is_priced, returns_credit, unknown from marts.prehistory_returns order by return_id",
    )
    assert [row[0] for row in listed] == [row[0] for row in prehistory]
    assert listed[0] == (priced[0], True, priced[5], "product_id")
    assert all(
        not is_priced
        and credit is None
        and unknown == "order_date, customer_id, unit_price, unit_cost, product_id"
        for _, is_priced, credit, unknown in listed[1:]
    )
    # The priced one is in its customer's margin at its line's price; the unpriced ones in nobody's.
    unpriced_credit = sum((row[5] for row in prehistory[1:]), Decimal(0))
    by_month = "select period, sum(returns_credit) from marts.customer_profitability group by 1 order by 1"
    full = dict(_published(published_sample, by_month))
    first = dict(_published(paths, by_month))
    assert (
        sum(first.values()) == sum(v for k, v in full.items() if k.isoformat()[:7] > OLDER) - unpriced_credit
    )
    with duckdb.connect(str(current_database(paths.published)), read_only=True) as con:
        summary = prehistory_lines(con)
    assert summary[0].startswith(f"  pre-history returns: {len(prehistory)} in "), summary
    assert f"{len(prehistory) - 1} unpriced" in summary[-1], summary

    # 2. The older month is found later: land it and backfill it. Everything it reaches is restated.
    shutil.copytree(held_back, paths.landing, dirs_exist_ok=True)
    run_pipeline(Settings(data_dir=paths.data_dir), OLDER, OLDER, progress=said.append)
    assert _published(paths, "select count(*) from marts.prehistory_returns") == [(0,)]
    # the months of those returns, restated, were published
    assert months_awaiting_publication(paths.warehouse) == []
    assert _published_checksums(paths) == _published_checksums(
        published_sample
    )  # every table, as the one run over all months


def _month_of(paths: Paths, return_id: str) -> str:
    """The month of the returns file holding ``return_id``."""
    for file in sorted((paths.landing / "returns").glob("*.csv")):
        if f"\n{return_id}," in file.read_text():
            return file.stem
    raise AssertionError(f"{return_id} in no returns file")


def test_an_undated_return_of_an_unknown_line_after_the_return_window_is_an_error(data_paths: Paths):
    """Past the return window of the start of history, a line the warehouse does not have cannot be older than
    history: the run stops at the returns suite, as for any unknown line."""
    returns = data_paths.landing / "returns" / "2024-02.csv"
    rows = [row.split(",") for row in returns.read_text().splitlines()]
    rows[1][1] = "O999999999"
    returns.write_text("\n".join(",".join(row) for row in rows) + "\n")
    with pytest.raises(PipelineError) as caught:
        run_pipeline(Settings(data_dir=data_paths.data_dir, return_window_months=1), progress=lambda _: None)
    assert "_unknown_order_line: 1 unexpected (e.g. O999999999 line" in str(caught.value)
    assert "history from 2024-01" in str(caught.value)


def test_the_sensor_reports_older_months_it_has_never_seen_and_requests_the_rest(small_landing: Path):
    """Older months landed after the code location loaded (its partitions begin at 2024-02) are reported with
    what to do, not requested (their partitions do not exist yet) and not an error; the months of the
    partitions are requested as one run. Months before a declared start of history are reported as such."""
    from dagster import DagsterInstance

    from pipelines.defs.partitions import monthly_partitions_for
    from pipelines.defs.refresh_requests import refresh_requests

    from_february = monthly_partitions_for("2024-02", None)
    with DagsterInstance.ephemeral() as instance:
        requests, said = refresh_requests(instance, small_landing, from_february)
        assert [r.tags for r in requests] == [range_tags("2024-02", "2024-03")]
        assert any(
            line.startswith("2024-01..2024-01: older months landed, before the partitions (from 2024-02)")
            and "`cprof backfill --from 2024-01 --to 2024-01`" in line
            for line in said
        ), said
        _, said = refresh_requests(instance, small_landing, from_february, first_month="2024-02")
        assert any(
            line.startswith("2024-01..2024-01: before the start of history ($CPROF_FIRST_MONTH=2024-02)")
            for line in said
        ), said


def test_a_range_run_into_an_empty_warehouse_may_start_after_the_first_landed_month(
    published_sample: Paths, data_paths: Paths
):
    """`cprof run --from 2024-02` with January in the landing zone but not loaded: January's lines are before
    the first month loaded, so their returns are pre-history returns, not unknown lines."""
    run_pipeline(Settings(data_dir=data_paths.data_dir), "2024-02", "2024-03", progress=lambda _: None)
    listed = _published(data_paths, "select return_id from marts.prehistory_returns order by 1")
    assert [row[0] for row in listed] == [row[0] for row in _prehistory(published_sample)]
