"""What the scorecard, the incentives, the report and the run summary do with a figure that is not whole, planted
through the real model inputs and rebuilt by the real dbt models: a CLV month whose models were not fitted
(``customer_clv.fit_status = 'not_fitted'``, its model columns NULL) and a CLV month missing altogether; and a
segment without an unprofitable customer, whose share of revenue from unprofitable customers is 0, scored."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, materialize

from pipelines.defs.assets.transform import satisfaction_and_scorecard_models
from pipelines.defs.partitions import partitions_of
from pipelines.defs.resources import resources_for
from pipelines.domain.clv_scoring import MODEL_COLUMNS
from pipelines.engines.duckdb_warehouse import DuckDBWarehouse
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.publication.publish import publish
from pipelines.publication.report import report_path, write_release_report
from pipelines.run import RunSummary
from pipelines.summary import print_summary
from tests.browser import open_page

SCORECARD_MODELS = [AssetKey(["marts", "customer_scorecard"]), AssetKey(["marts", "incentive_attainment"])]
NOT_FITTED, MISSING = date(2024, 2, 1), date(2024, 3, 1)


def _copy(sample: Paths, tmp_path: Path) -> Paths:
    paths = Paths(tmp_path / "data")
    paths.data_dir.mkdir()
    shutil.copy(sample.warehouse, paths.warehouse)
    shutil.copytree(sample.landing, paths.landing)
    return paths


def _rebuild_scorecard(paths: Paths) -> None:
    """The scorecard models of every month (they reach all later months), from the warehouse's marts."""
    assert materialize(
        [satisfaction_and_scorecard_models(partitions_of(Settings(data_dir=paths.data_dir)))],
        partition_key="2024-01-01",
        resources=resources_for(Settings(data_dir=paths.data_dir)),
        selection=SCORECARD_MODELS,
    ).success


def _rows(database: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def planted(published_sample: Paths, tmp_path_factory) -> tuple[Paths, Path, list, list]:
    """A copy of the sample with one CLV month not fitted and one missing, its scorecard models rebuilt and
    published (the release); with the scorecard's rows and the owners' weights from before."""
    paths = _copy(published_sample, tmp_path_factory.mktemp("not_scored"))
    before_rows = _rows(
        paths.warehouse, "select period, segment, metric from marts.customer_scorecard order by all"
    )
    before_weights = _rows(
        paths.warehouse, "select period, owner, total_weight from marts.incentive_attainment order by all"
    )
    with duckdb.connect(str(paths.warehouse)) as con:
        nulls = ", ".join(f"{column} = null" for column in MODEL_COLUMNS)
        planted = con.execute(
            f"update marts.customer_clv set fit_status = 'not_fitted', {nulls} where period = ?", [NOT_FITTED]
        ).fetchone()[0]
        missing = con.execute("delete from marts.customer_clv where period = ?", [MISSING]).fetchone()[0]
    assert planted > 0 and missing > 0
    _rebuild_scorecard(paths)
    # published with its report, which the run summary and the page read
    release = publish(
        DuckDBWarehouse(paths.warehouse), paths.published, run_id="planted", extras=write_release_report
    ).release
    return paths, release, before_rows, before_weights


def test_a_clv_month_not_fitted_or_missing_is_not_scored_and_changes_no_weight(planted, capsys):
    paths, _, before_rows, before_weights = planted
    # no row lost, no weight changed
    assert _rows(
        paths.warehouse, "select period, segment, metric from marts.customer_scorecard order by all"
    ) == (before_rows)
    assert (
        _rows(
            paths.warehouse, "select period, owner, total_weight from marts.incentive_attainment order by all"
        )
        == before_weights
    )
    clv_rows = _rows(
        paths.warehouse,
        "select period, segment, actual, status, status_reason, trend from marts.customer_scorecard "
        "where metric = 'mean_profit_clv' and period >= ? order by period, segment",
        [NOT_FITTED],
    )
    segments = len({row[1] for row in clv_rows})
    assert segments >= 4
    assert {row[2:] for row in clv_rows if row[0] == NOT_FITTED} == {
        (None, "not_scored", "clv_not_fitted", None)
    }
    assert {row[2:] for row in clv_rows if row[0] == MISSING} == {(None, "not_scored", "clv_missing", None)}
    # the CLV weight is not scored, and stays in the owner's total
    clv_owner, clv_weight = _rows(
        paths.warehouse,
        "select owner, incentive_weight from marts.customer_scorecard "
        "where metric = 'mean_profit_clv' and segment = 'all' and period = ?",
        [NOT_FITTED],
    )[0]
    assert clv_weight > 0
    unscored = _rows(
        paths.warehouse,
        "select a.period, a.not_scored_weight, (select sum(incentive_weight) from marts.customer_scorecard s "
        "where s.period = a.period and s.owner = a.owner and s.segment = 'all' and s.status = 'not_scored') "
        "from marts.incentive_attainment as a where a.owner = ? and a.period >= ? order by 1",
        [clv_owner, NOT_FITTED],
    )
    assert [(p, weight) for p, weight, _ in unscored] == [(p, total) for p, _, total in unscored]
    assert all(weight >= clv_weight for _, weight, _ in unscored)

    # the run summary says the month was not fitted
    print_summary(paths, RunSummary(months=["2024-01", "2024-02", "2024-03"]))
    out = capsys.readouterr().out
    assert "Customer lifetime value as of 2024-02: not fitted" in out
    assert "not scored mean_profit_clv" in out and "(no CLV for the month)" in out


@pytest.mark.system
def test_the_report_shows_a_clv_month_not_fitted_or_missing_as_not_scored(planted):
    release = planted[1]
    with open_page(report_path(release)) as session:
        page = session.page
        shown = {}
        for month in (NOT_FITTED, MISSING):
            page.select_option("#month", label=f"{month:%b %Y}")
            page.wait_for_selector(f'body[data-month="{month:%Y-%m}"]', state="attached")
            shown[month] = (
                page.text_content("#clv-lead"),
                page.text_content('#scorecard-table tr[data-metric="mean_profit_clv"] [data-field="status"]'),
            )
        assert session.errors == []
    assert "were not fitted as of Feb 2024" in shown[NOT_FITTED][0] and shown[NOT_FITTED][1] == "not fitted"
    assert shown[MISSING][1] == "no CLV"


def test_a_segment_without_an_unprofitable_customer_has_a_share_of_zero_and_its_status(
    demo_published: Paths, tmp_path: Path
):
    """The demo with every enterprise customer-month made profitable (abs of its ABC profit): the segment's
    share of revenue from unprofitable customers, and its share of unprofitable customers, are 0, every month,
    and green (the company's targets) wherever the window is complete."""
    paths = _copy(demo_published, tmp_path)
    with duckdb.connect(str(paths.warehouse)) as con:
        flipped = con.execute(
            "update marts.customer_profitability set abc_profit = abs(abc_profit) "
            "where segment = 'enterprise' and abc_profit < 0"
        ).fetchone()[0]
    assert flipped > 0
    _rebuild_scorecard(paths)
    rows = _rows(
        paths.warehouse,
        "select metric, period, actual, status, status_reason, window_complete from marts.customer_scorecard "
        "where segment = 'enterprise' and metric in ('unprofitable_revenue_share', 'pct_unprofitable_customers') "
        "order by all",
    )
    months = len(_rows(paths.warehouse, "select distinct period from marts.customer_profitability"))
    assert len(rows) == 2 * months
    assert {row[2] for row in rows} == {Decimal(0)}
    assert {(row[3], row[4]) for row in rows if row[5]} == {("green", None)}
    assert {(row[3], row[4]) for row in rows if not row[5]} == {("not_scored", "partial_window")}
    assert sum(1 for row in rows if row[5]) == 2 * (months - 11)
