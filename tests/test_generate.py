"""The sample generator: deterministic for a seed, the landing layout, and data with the intended shape."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import numpy as np
import pytest

from pipelines.landing.inventory import find_file
from pipelines.landing.sources import MONTHLY, SNAPSHOTS
from pipelines.sample.generate import ACTIVITIES, BG_NBD_TRUTH, GenerateConfig, generate, landing_checksum
from tests.conftest import SMALL


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path, small_landing: Path):
    again = tmp_path / "again"
    generate(SMALL, again)
    assert landing_checksum(again) == landing_checksum(small_landing)
    other = tmp_path / "other"
    generate(GenerateConfig(customers=SMALL.customers, months=SMALL.months, start=SMALL.start, seed=8), other)
    assert landing_checksum(other) != landing_checksum(small_landing)


def test_layout_and_columns_match_the_landing_spec(small_landing: Path):
    con = duckdb.connect()
    for source in SNAPSHOTS:
        path = find_file(small_landing, source)
        assert path == small_landing / "reference" / f"{source.name}.csv"
        assert con.execute(f"select * from read_csv('{path}') limit 0").fetchdf().columns.tolist() == list(
            source.columns
        )
    for source in MONTHLY:
        files = sorted(p.name for p in (small_landing / source.name).iterdir())
        assert files == ["2024-01.csv", "2024-02.csv", "2024-03.csv"], source.name
        header = (small_landing / source.name / "2024-02.csv").read_text().splitlines()[0]
        assert header.split(",") == list(source.columns)


def _all(landing: Path, source: str):
    return f"read_csv('{landing}/{source}/*.csv', filename = true)"


@pytest.fixture(scope="module")
def blocked_landing(tmp_path_factory) -> Path:
    """SMALL drawn 25 customers at a time: five blocks appended to the same files."""
    landing = tmp_path_factory.mktemp("blocked") / "landing"
    generate(dataclasses.replace(SMALL, block_customers=25), landing)
    return landing


@pytest.fixture(params=["small_landing", "blocked_landing"])
def any_landing(request) -> Path:
    return request.getfixturevalue(request.param)


def test_blocks_continue_the_identifiers_and_write_one_header_per_file(
    blocked_landing: Path, small_landing: Path
):
    con = duckdb.connect()
    for path in blocked_landing.rglob("*.csv"):
        text = path.read_text().splitlines()
        assert text.count(text[0]) == 1, path  # the header, once
    customers = con.execute(
        f"select count(*), count(distinct customer_id), max(customer_id) from read_csv('{blocked_landing}/reference/customers.csv')"
    ).fetchone()
    assert customers == (SMALL.customers, SMALL.customers, f"C{SMALL.customers:06d}")
    for source, key in [
        ("order_lines", "(order_id, line_no)"),
        ("returns", "return_id"),
        ("support_tickets", "ticket_id"),
        ("sales_visits", "visit_id"),
        ("survey_responses", "(response_id, question_id)"),
    ]:
        rows, distinct = con.execute(
            f"select count(*), count(distinct {key}) from {_all(blocked_landing, source)}"
        ).fetchone()
        assert rows == distinct > 0, source
    orders = con.execute(
        f"select count(distinct order_id), max(order_id) from {_all(blocked_landing, 'order_lines')}"
    ).fetchone()
    assert orders[1] == f"O{orders[0]:09d}"  # numbered on across blocks, no gaps
    # Five independent streams: not the one-block sample, but the same kind of sample.
    assert landing_checksum(blocked_landing) != landing_checksum(small_landing)


def test_one_block_is_the_whole_sample(tmp_path: Path, small_landing: Path):
    generate(dataclasses.replace(SMALL, block_customers=SMALL.customers), tmp_path / "landing")
    assert landing_checksum(tmp_path / "landing") == landing_checksum(small_landing)


def test_every_event_lies_in_the_month_of_its_file(any_landing: Path):
    landing = any_landing
    con = duckdb.connect()
    for source, column in [
        ("order_lines", "order_date"),
        ("returns", "return_date"),
        ("support_tickets", "opened_at"),
        ("sales_visits", "visit_date"),
        ("survey_responses", "responded_at"),
    ]:
        bad = con.execute(
            f"select count(*) from {_all(landing, source)} "
            f"where strftime({column}, '%Y-%m') <> regexp_extract(filename, '(\\d{{4}}-\\d{{2}})\\.csv$', 1)"
        ).fetchone()[0]
        assert bad == 0, source
    periods = con.execute(
        f"select count(*) from {_all(landing, 'gl_costs')} "
        "where period <> regexp_extract(filename, '(\\d{4}-\\d{2})\\.csv$', 1)"
    ).fetchone()[0]
    assert periods == 0


def test_referential_integrity_and_ranges(any_landing: Path):
    landing = any_landing
    con = duckdb.connect()
    ref = landing / "reference"
    lines = _all(landing, "order_lines")
    assert (
        con.execute(
            f"select count(*) from {lines} l anti join read_csv('{ref}/customers.csv') c using (customer_id)"
        ).fetchone()[0]
        == 0
    )
    assert (
        con.execute(
            f"select count(*) from {lines} l anti join read_csv('{ref}/products.csv') p using (product_id)"
        ).fetchone()[0]
        == 0
    )
    # A return never exceeds what its line ordered, and comes after the order.
    over = con.execute(
        f"select count(*) from {_all(landing, 'returns')} r join {lines} l using (order_id, line_no) "
        "where r.quantity > l.quantity or r.return_date < l.order_date"
    ).fetchone()[0]
    assert over == 0
    assert (
        con.execute(
            f"select count(*) from {lines} where quantity <= 0 or unit_price < 0 or discount_amount < 0 "
            "or discount_amount > quantity * unit_price"
        ).fetchone()[0]
        == 0
    )
    assert (
        con.execute(f"select count(*) - count(distinct (order_id, line_no)) from {lines}").fetchone()[0] == 0
    )
    scores = con.execute(
        f"select min(score), max(score) from {_all(landing, 'survey_responses')} where question_id <> 'NPS'"
    ).fetchone()
    assert 1 <= scores[0] and scores[1] <= 10


def test_reference_configuration_is_consistent(small_landing: Path):
    con = duckdb.connect()
    ref = small_landing / "reference"
    centres = con.execute(f"select * from read_csv('{ref}/cost_centers.csv')").fetchdf()
    activities = con.execute(f"select * from read_csv('{ref}/activities.csv')").fetchdf()
    assert set(activities.cost_center) <= set(centres.cost_center)
    shares = activities[activities.method == "share"].groupby("cost_center")["share"].sum()
    assert np.allclose(shares.values, 1.0)
    time_centres = set(activities[activities.method == "time"].cost_center)
    assert (
        centres.set_index("cost_center").loc[sorted(time_centres), "practical_capacity_minutes"].notna().all()
    )
    assert (~centres.customer_driven).sum() >= 1  # business-sustaining centres exist
    ledger_centres = con.execute(
        f"select distinct cost_center from {_all(small_landing, 'gl_costs')}"
    ).fetchdf()
    assert set(ledger_centres.cost_center) == set(centres.cost_center)
    assert len(activities) == len(ACTIVITIES)


@pytest.fixture(scope="module")
def larger(tmp_path_factory) -> Path:
    landing = tmp_path_factory.mktemp("larger") / "landing"
    generate(GenerateConfig(customers=4000, months=24, seed=11), landing)
    return landing


def test_customer_revenue_is_heavy_tailed_and_some_big_customers_cost_a_lot(larger: Path):
    con = duckdb.connect()
    revenue = con.execute(
        f"select customer_id, sum(quantity * unit_price - discount_amount) as revenue, "
        f"count(distinct order_id) as orders, avg(case when ship_mode = 'express' then 1 else 0 end) as express "
        f"from {_all(larger, 'order_lines')} group by 1 order by revenue desc"
    ).fetchdf()
    top_decile = revenue.head(len(revenue) // 10)
    assert top_decile.revenue.sum() / revenue.revenue.sum() > 0.5  # a whale curve needs whales
    # A minority of the biggest customers ship mostly express: costly to serve despite their revenue.
    assert 0.05 < (top_decile.express > 0.4).mean() < 0.5


def test_purchase_counts_follow_the_bg_nbd_process(larger: Path):
    """Customers never alive long enough to buy again are rarer than the BG/NBD mixture implies at T=0,
    and the mean number of repeat purchases over the window is in line with the true parameters."""
    con = duckdb.connect()
    summary = con.execute(
        f"""with orders as (select customer_id, order_date from {_all(larger, "order_lines")} group by all)
        select count(*) - 1 as repeats, date_diff('day', min(order_date), date '2026-01-01') as t
        from orders group by customer_id"""
    ).fetchdf()
    r, alpha, a, b = (BG_NBD_TRUTH[k] for k in ("r", "alpha", "a", "b"))
    t = summary.t.to_numpy(dtype=float)
    # E[X(t)] of the BG/NBD model via its closed form with the Gauss hypergeometric function.
    from scipy.special import hyp2f1

    z = t / (alpha + t)
    expected = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))
    ratio = summary.repeats.mean() / expected.mean()
    assert 0.85 < ratio < 1.15, ratio


def test_survey_overall_score_is_driven_by_the_attributes(larger: Path):
    from pipelines.sample.generate import SURVEY_ATTRIBUTES, SURVEY_TRUTH

    con = duckdb.connect()
    wide = con.execute(
        f"pivot (select response_id, question_id, score from {_all(larger, 'survey_responses')}) "
        "on question_id using first(score)"
    ).fetchdf()
    attributes = [f"ATTR_{a.upper()}" for a in SURVEY_ATTRIBUTES]
    correlations = [np.corrcoef(wide[c], wide["OVERALL"])[0, 1] for c in attributes]
    truth = [SURVEY_TRUTH[a] for a in SURVEY_ATTRIBUTES]
    # Attributes with more weight correlate more with the overall score.
    assert np.argsort(correlations).tolist() == np.argsort(truth).tolist()


@pytest.mark.parametrize("bad", [{"customers": 0}, {"start": "2024-13"}, {"months": 0}])
def test_bad_parameters_are_refused(tmp_path: Path, bad):
    config = GenerateConfig(**{"customers": 50, "months": 2, **bad})
    with pytest.raises(ValueError):
        generate(config, tmp_path / "landing")
