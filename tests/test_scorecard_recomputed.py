"""The demo's customer scorecard, incentive attainment and retention, recomputed from the published marts and the
reference targets by independent code (Python sets, fractions and decimals; none of the dbt SQL): every row, every
column, equal to what is published.

Retention is recomputed from the published cost-to-serve (a customer is active in a month with an ``orders``
driver volume) and dim_customers' acquisition dates; the scorecard from customer_profitability (trailing
profit and revenue), customer_satisfaction (NPS and the satisfaction index), customer_clv (mean profit CLV) and
that retention; the rules are docs/DESIGN.md's: a figure is scored only when whole (its window inside history,
its CLV month fitted), a trend only between whole figures of consecutive months, a weight only on its own target.

Where the SQL computes in double precision (ratios), the same IEEE operations are done here on the same exact
inputs, and the double is cast to DECIMAL(_, 4) as DuckDB casts it (the value times 10^4, rounded half away from
zero); exact means (rounded_mean) are exact fractions rounded half away from zero.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

import duckdb
import pytest

from pipelines.lib.config import Paths
from pipelines.publication.publish import current_database

TRAILING_12 = {
    "customer_profit_t12m",
    "pct_unprofitable_customers",
    "unprofitable_revenue_share",
    "nps",
    "satisfaction_index",
}
METRICS = [*sorted(TRAILING_12), "retention_rate", "new_customers", "mean_profit_clv"]
# Rates and averages: a segment without its own target is held to the company's.
INTENSIVE = set(METRICS) - {"customer_profit_t12m", "new_customers"}
GREEN, AMBER, RED, NOT_SCORED = "green", "amber", "red", "not_scored"


def month_number(period: date) -> int:
    return period.year * 12 + period.month - 1


def as_decimal_4(value: float | None) -> Decimal | None:
    """A DOUBLE cast to DECIMAL(_, 4) as DuckDB casts it: value x 10^4 in double precision, rounded half away
    from zero."""
    if value is None:
        return None
    scaled = value * 10000.0
    whole = math.floor(abs(scaled))
    rounded = whole + (1 if abs(scaled) - whole >= 0.5 else 0)
    return Decimal(-rounded if scaled < 0 else rounded).scaleb(-4)


def half_away(value: Fraction, places: int = 4) -> Decimal:
    """An exact value rounded half away from zero to ``places`` decimals."""
    scaled = abs(value) * 10**places
    rounded = math.floor(scaled) + (1 if scaled - math.floor(scaled) >= Fraction(1, 2) else 0)
    return Decimal(-rounded if value < 0 else rounded).scaleb(-places)


@dataclass
class Publication:
    """The published rows the recomputation reads, and what it is compared with."""

    con: duckdb.DuckDBPyConnection

    def rows(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def published(demo_published: Paths):
    with duckdb.connect(str(current_database(demo_published.published)), read_only=True) as con:
        yield Publication(con)


@pytest.fixture(scope="module")
def targets(demo_published: Paths) -> dict[tuple[str, str], dict]:
    with (demo_published.landing / "reference" / "scorecard_targets.csv").open(newline="") as handle:
        return {
            (row["metric"], row["segment"]): {
                "target": Decimal(row["target"]),
                "direction": row["direction"],
                "tolerance": Decimal(row["amber_tolerance"] or "0"),
                "owner": row["owner"],
                "weight": Decimal(row["incentive_weight"] or "0"),
            }
            for row in csv.DictReader(handle)
        }


@pytest.fixture(scope="module")
def history(published: Publication) -> list[date]:
    """The months in the warehouse, as published: every month has customer rows."""
    return [
        p for (p,) in published.rows("select distinct period from marts.customer_profitability order by 1")
    ]


def months_held(history: list[date], period: date, length: int) -> int:
    """Months of history in the ``length`` months to ``period``."""
    last = month_number(period)
    return sum(1 for p in history if last - length < month_number(p) <= last)


@pytest.fixture(scope="module")
def segment_of(published: Publication) -> dict[str, str]:
    return dict(published.rows("select customer_id, segment from marts.dim_customers"))


def in_segment(customers: set[str], segment: str, segment_of: dict[str, str]) -> set[str]:
    return customers if segment == "all" else {c for c in customers if segment_of[c] == segment}


@pytest.fixture(scope="module")
def retention(published: Publication, history: list[date], segment_of: dict[str, str]) -> dict:
    """customer_retention recomputed: (period, segment) -> its row."""
    active = defaultdict(set)  # month number -> customers with an order
    for period, customer in published.rows(
        "select distinct period, customer_id from marts.customer_cost_to_serve "
        "where driver = 'orders' and driver_volume > 0"
    ):
        active[month_number(period)].add(customer)
    first_order = {}
    for month in sorted(active):
        for customer in active[month]:
            first_order.setdefault(customer, month)
    start = history[0]
    acquired_in_history = {
        c
        for c, acquired in published.rows("select customer_id, acquired_date from marts.dim_customers")
        if acquired >= start
    }
    segments = sorted(set(segment_of.values()))
    result = {}
    for period in history:
        last = month_number(period)
        now = set().union(*(active[m] for m in range(last - 11, last + 1)))
        before = set().union(*(active[m] for m in range(last - 23, last - 11)))
        new = {c for c in acquired_in_history if first_order.get(c) == last}
        window, prior = (
            months_held(history, period, 12),
            months_held(history, period, 24) - months_held(history, period, 12),
        )
        for segment in [*segments, "all"]:
            n_now, n_before, n_both = (
                len(in_segment(group, segment, segment_of)) for group in (now, before, now & before)
            )
            result[(period, segment)] = (
                n_now,
                n_before,
                n_both,
                len(in_segment(new, segment, segment_of)),
                len(in_segment(before - now, segment, segment_of)),
                as_decimal_4(n_both / n_before) if n_before else None,
                window,
                prior,
                window == 12 and prior == 12,
            )
    return result


def test_retention_equals_its_recomputation(published: Publication, retention: dict):
    rows = published.rows(
        "select period, segment, active_customers, prior_active_customers, retained_customers, new_customers, "
        "churned_customers, retention_rate, window_months, prior_window_months, window_complete "
        "from marts.customer_retention"
    )
    assert {(r[0], r[1]): tuple(r[2:]) for r in rows} == retention and len(rows) == len(retention)
    # the first month's customers are not all acquisitions: the CRM dates most before the start of history
    first = min(period for period, _ in retention)
    new_first, active_first = retention[(first, "all")][3], retention[(first, "all")][0]
    assert 0 < new_first < active_first / 4, (new_first, active_first)


def trailing_actuals(published: Publication, history: list[date], segment_of: dict[str, str]) -> dict:
    """(period, segment, metric) -> the actual as a double or an exact value, for the trailing-12 metrics."""
    profit = defaultdict(lambda: [Decimal(0), Decimal(0)])  # (month, customer) -> [profit, revenue]
    for period, customer, abc, revenue in published.rows(
        "select period, customer_id, abc_profit, net_revenue from marts.customer_profitability"
    ):
        profit[(month_number(period), customer)] = [abc, revenue]
    satisfaction = defaultdict(list)  # month -> (customer, segment, responses, nps, index)
    for period, customer, segment, responses, nps, index in published.rows(
        "select period, customer_id, segment, responses, nps, satisfaction_index from marts.customer_satisfaction"
    ):
        satisfaction[month_number(period)].append((customer, segment, responses, nps, index))
    actuals = {}
    for period in history:
        last = month_number(period)
        window = range(last - 11, last + 1)
        totals = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for (month, customer), (abc, revenue) in profit.items():
            if month in window:
                totals[customer][0] += abc
                totals[customer][1] += revenue
        answers = [row for month in window for row in satisfaction[month]]
        for segment in [*sorted(set(segment_of.values())), "all"]:
            mine = {c: t for c, t in totals.items() if segment == "all" or segment_of[c] == segment}
            revenue = sum((t[1] for t in mine.values()), Decimal(0))
            losing = [t for t in mine.values() if t[0] < 0]
            lost_revenue = sum((t[1] for t in losing), Decimal(0))
            actuals[(period, segment, "customer_profit_t12m")] = float(
                sum((t[0] for t in mine.values()), Decimal(0))
            )
            actuals[(period, segment, "pct_unprofitable_customers")] = (
                half_away(Fraction(len(losing), len(mine))) if mine else None
            )
            actuals[(period, segment, "unprofitable_revenue_share")] = (
                float(lost_revenue) / float(revenue) if revenue else None
            )
            rated = [a for a in answers if segment == "all" or a[1] == segment]
            # per customer-month, nps = 100 x (promoters - detractors) / responses
            net = sum(round(nps * responses / 100) for _, _, responses, nps, _ in rated)
            count = sum(responses for _, _, responses, _, _ in rated)
            actuals[(period, segment, "nps")] = float(100 * net) / count if count else None
            indexed = [(responses, index) for _, _, responses, _, index in rated if index is not None]
            weight = sum(responses for responses, _ in indexed)
            actuals[(period, segment, "satisfaction_index")] = (
                math.fsum(index * responses for responses, index in indexed) / weight if weight else None
            )
    return actuals


def clv_actuals(published: Publication, history: list[date], segment_of: dict[str, str]) -> tuple[dict, dict]:
    """Mean profit CLV per (period, segment) (exact, rounded half away from zero), and per month whether its
    models were fitted (absent: the month is missing from customer_clv)."""
    rows = published.rows("select period, customer_id, clv_profit, fit_status from marts.customer_clv")
    fitted: dict[date, bool] = {}
    values = defaultdict(list)
    for period, customer, clv_profit, status in rows:
        fitted[period] = fitted.get(period, True) and status == "fitted"
        for segment in (segment_of[customer], "all"):
            if clv_profit is not None:
                values[(period, segment)].append(clv_profit)
    means = {key: half_away(Fraction(sum(v)) / len(v)) for key, v in values.items()}
    return means, fitted


def expected_scorecard(published, history, segment_of, retention, targets) -> dict:
    trailing = trailing_actuals(published, history, segment_of)
    clv_means, clv_fitted = clv_actuals(published, history, segment_of)
    segments = [*sorted(set(segment_of.values())), "all"]
    rows = {}
    for period in history:
        for segment in segments:
            kept = retention[(period, segment)]
            for metric in METRICS:
                if metric in TRAILING_12:
                    raw = trailing[(period, segment, metric)]
                    window = months_held(history, period, 12)
                    complete = window == 12
                elif metric == "retention_rate":
                    raw, window, complete = kept[5], kept[6] + kept[7], kept[8]
                elif metric == "new_customers":
                    raw, window, complete = kept[3], None, True
                else:
                    raw, window, complete = clv_means.get((period, segment)), None, True
                if isinstance(raw, float):
                    actual = as_decimal_4(raw)
                else:
                    actual = None if raw is None else Decimal(raw).quantize(Decimal("0.0001"))
                own = targets.get((metric, segment))
                company = targets.get((metric, "all")) if segment == "all" or metric in INTENSIVE else None
                goal = own or company
                if not complete:
                    reason = "partial_window"
                elif metric == "mean_profit_clv" and period not in clv_fitted:
                    reason = "clv_missing"
                elif metric == "mean_profit_clv" and not clv_fitted[period]:
                    reason = "clv_not_fitted"
                elif actual is None:
                    reason = "no_value"
                elif goal is None:
                    reason = "no_target"
                else:
                    reason = None
                target = goal["target"] if goal else None
                if reason:
                    status = NOT_SCORED
                else:
                    higher = goal["direction"] == "higher"
                    tolerance = goal["tolerance"]
                    if (actual >= target) if higher else (actual <= target):
                        status = GREEN
                    elif (actual >= target - tolerance) if higher else (actual <= target + tolerance):
                        status = AMBER
                    else:
                        status = RED
                rows[(period, segment, metric)] = {
                    "actual": actual,
                    "target": target,
                    "variance": None if actual is None or target is None else actual - target,
                    "status": status,
                    "owner": goal["owner"] if goal else None,
                    "incentive_weight": own["weight"] if own else Decimal(0),
                    "direction": goal["direction"] if goal else None,
                    "status_reason": reason,
                    "window_months": window,
                    "window_complete": complete,
                    "whole": actual is not None and complete,
                }
    for (period, segment, metric), row in rows.items():
        before = rows.get((_month_before(period), segment, metric))
        if row["whole"] and before and before["whole"]:
            row["trend"] = (
                "up"
                if row["actual"] > before["actual"]
                else "down"
                if row["actual"] < before["actual"]
                else "flat"
            )
        else:
            row["trend"] = None
    return rows


def _month_before(period: date) -> date:
    return date(period.year - (period.month == 1), (period.month - 2) % 12 + 1, 1)


COLUMNS = [
    "actual",
    "target",
    "variance",
    "status",
    "trend",
    "owner",
    "incentive_weight",
    "direction",
    "status_reason",
    "window_months",
    "window_complete",
]


@pytest.fixture(scope="module")
def scorecard(published, history, segment_of, retention, targets) -> dict:
    return expected_scorecard(published, history, segment_of, retention, targets)


def test_every_scorecard_row_equals_its_recomputation(published: Publication, scorecard: dict):
    rows = published.rows(
        f"select period, segment, metric, {', '.join(COLUMNS)} from marts.customer_scorecard"
    )
    got = {(r[0], r[1], r[2]): dict(zip(COLUMNS, r[3:], strict=True)) for r in rows}
    assert len(got) == len(rows) and set(got) == set(scorecard)
    wrong = {
        key: {c: (got[key][c], want[c]) for c in COLUMNS if got[key][c] != want[c]}
        for key, want in scorecard.items()
        if any(got[key][c] != want[c] for c in COLUMNS)
    }
    assert not wrong, dict(list(wrong.items())[:10])
    # the demo exercises the rules: partial windows, scored months of every colour, trends of both kinds
    statuses = {row["status"] for row in scorecard.values()}
    reasons = {row["status_reason"] for row in scorecard.values()}
    assert {GREEN, AMBER, RED, NOT_SCORED} <= statuses and {"partial_window", "no_target"} <= reasons
    assert {row["trend"] for row in scorecard.values()} >= {"up", "down", None}


def test_incentive_attainment_equals_its_recomputation(published: Publication, scorecard: dict):
    owners = defaultdict(lambda: [Decimal(0), Decimal(0), Decimal(0)])  # attained, total, not scored
    for (period, segment, _), row in scorecard.items():
        if segment == "all" and row["owner"] is not None:
            sums = owners[(period, row["owner"])]
            sums[0] += row["incentive_weight"] if row["status"] == GREEN else 0
            sums[1] += row["incentive_weight"]
            sums[2] += row["incentive_weight"] if row["status"] == NOT_SCORED else 0
    expected = {
        key: (attained, total, as_decimal_4(float(attained) / float(total)) if total else None, unscored)
        for key, (attained, total, unscored) in owners.items()
    }
    rows = published.rows(
        "select period, owner, attained_weight, total_weight, attainment, not_scored_weight "
        "from marts.incentive_attainment"
    )
    assert {(r[0], r[1]): tuple(r[2:]) for r in rows} == expected and len(rows) == len(expected)
    # an owner's total weight is the same every month: a metric not scored stays in it
    assert all(
        len({t for (_, o), (_, t, _, _) in expected.items() if o == owner}) == 1 for _, owner in expected
    )


def test_trailing_marts_say_how_much_history_their_windows_hold(published: Publication, history: list[date]):
    """The whale curve, the satisfaction drivers and the profit levers' trailing window: each month's window
    holds the months of history counted here, and is complete exactly when it holds 12 (from the 12th month of
    history on)."""
    expected = {
        period: (months_held(history, period, 12), months_held(history, period, 12) == 12)
        for period in history
    }
    trailing = {
        "whale_curve": "true",
        "satisfaction_drivers": "true",
        "customer_profit_levers": "time_window = 't12m'",
    }
    for table, where in trailing.items():
        rows = published.rows(
            f"select distinct period, window_months, window_complete from marts.{table} where {where}"
        )
        assert len(rows) == len({row[0] for row in rows}), table  # one window per month
        assert {row[0]: row[1:] for row in rows} == {p: expected[p] for p, *_ in rows}, table
    assert sorted(window for window, _ in expected.values())[:12] == list(range(1, 13))
