"""What a `satisfaction` lever is worth (issue 30, items 4 and 7): marts.scenario_customer_value. The rating
changes and the index they make, written out here; on the demo (24 months, a fitted link) an auditor's
recomputation of the scenario's trailing index from the survey's answers, the retention probability from the
published terms and profit CLV scaled by it, and every moved customer moved in the fitted direction; on the small
sample (3 months, no link) the index moves, retention and CLV are NULL and the run says why."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from pipelines.defs.assets.scenario_value import (
    changed_ratings,
    monthly_index,
    scenario_satisfaction,
    value_rows,
)
from pipelines.domain.satisfaction_retention import FITTED, INDEX_TERM, INTERCEPT, RetentionFit

JAN, FEB = pd.Timestamp("2025-01-01"), pd.Timestamp("2025-02-01")


def _means() -> pd.DataFrame:
    """Two customers (segments a and b), two months, two attributes (Q1 weight 0.75, Q2 0.25)."""
    rows = [
        (month, customer, segment, question, score, weight)
        for month in (JAN, FEB)
        for customer, segment in (("C1", "a"), ("C2", "b"))
        for question, score, weight in (("Q1", 9.5, 0.75), ("Q2", 4.0, 0.25))
    ]
    return pd.DataFrame(
        rows, columns=["period", "customer_id", "segment", "question_id", "mean_score", "importance_weight"]
    )


def _changes(*rows: tuple) -> pd.DataFrame:
    """`satisfaction` changes: (target_name, target_scope, operation, value, first, last)."""
    return pd.DataFrame(
        [
            {
                "target_name": name,
                "target_scope": scope,
                "scope_kind": "all" if scope is None else "segment",
                "operation": operation,
                "value": Decimal(value),
                "first_period": first,
                "last_period": last,
            }
            for name, scope, operation, value, first, last in rows
        ]
    )


def test_changes_apply_to_their_attribute_months_and_segment_broadest_first_kept_within_1_and_10():
    means = _means()
    # the segment's change (set) after the attribute's (add), whatever the order of the rows
    score = changed_ratings(
        means,
        _changes(
            ("Q1", "b", "set", "2", JAN, FEB),
            ("Q1", None, "add", "1", FEB, FEB),
            ("Q2", None, "multiply", "0", JAN, JAN),
        ),
    )
    expected = {
        (JAN, "C1", "Q1"): 9.5,  # the add is February's
        (FEB, "C1", "Q1"): 10.0,  # 9.5 + 1 kept within 10
        (JAN, "C2", "Q1"): 2.0,
        (FEB, "C2", "Q1"): 2.0,  # set after the add, the narrower scope last
        (JAN, "C1", "Q2"): 1.0,  # 4 x 0 kept within 1
        (JAN, "C2", "Q2"): 1.0,
        (FEB, "C1", "Q2"): 4.0,
        (FEB, "C2", "Q2"): 4.0,
    }
    got = dict(zip(means[["period", "customer_id", "question_id"]].itertuples(index=False, name=None), score))
    assert got == expected


def test_the_index_is_the_weighted_mean_rating_on_0_to_100_and_an_untouched_month_keeps_actuals_exactly():
    means = _means()
    index = monthly_index(means, means.mean_score.to_numpy())
    # (0.75 x 8.5 / 9 + 0.25 x 3 / 9) / 1 x 100
    assert index.loc[(JAN, "C1")] == pytest.approx(100 * (0.75 * 8.5 + 0.25 * 3) / 9)
    # an attribute without a weight counts in neither sum, as in customer_satisfaction
    unweighted = means.assign(importance_weight=np.where(means.question_id == "Q2", np.nan, 0.75))
    assert monthly_index(unweighted, means.mean_score.to_numpy()).loc[(JAN, "C1")] == pytest.approx(
        100 * 8.5 / 9
    )
    satisfaction = pd.DataFrame(
        {
            "period": [JAN, JAN, FEB, FEB],
            "customer_id": ["C1", "C2", "C1", "C2"],
            "segment": ["a", "b", "a", "b"],
            "responses": [1, 1, 1, 1],
            # actual's index as the SQL model rounded it: kept to the last bit where nothing moves
            "satisfaction_index": [80.12345678901234, 61.1, 80.2, 61.2],
        }
    )
    moved = scenario_satisfaction(satisfaction, means, _changes(("Q2", "b", "add", "2", FEB, FEB)))
    assert moved.satisfaction_index.tolist()[:3] == [80.12345678901234, 61.1, 80.2]
    assert moved.satisfaction_index.iloc[3] == pytest.approx(61.2 + 100 * 0.25 * 2 / 9)
    assert list(moved.columns) == list(satisfaction.columns)
    assert (
        scenario_satisfaction(satisfaction, means, _changes(("Q2", "b", "add", "0", FEB, FEB)))
        is satisfaction
    )


@pytest.mark.parametrize("slope", [0.3, -0.3])
def test_a_lever_moves_retention_and_profit_clv_in_the_direction_of_the_fitted_link(slope: float):
    """A fit whose index term is negative moves retention the other way: the direction is the fit's, not ours."""
    fit = RetentionFit(
        status=FITTED,
        reason=None,
        customers=100,
        retained=60,
        baseline_segment="a",
        terms=(INTERCEPT, INDEX_TERM),
        coefficients=(0.1, slope),
        std_errors=(0.1, 0.1),
        log_likelihood=-60.0,
    )
    actual = pd.DataFrame(
        {"customer_id": ["C1", "C2", "C3"], "segment": ["a"] * 3, "index": [50.0, 60.0, 70.0]}
    )
    moved = actual.assign(index=[55.0, 60.0, 70.0])
    clv = pd.Series({"C1": 100.0, "C2": 200.0, "C3": -50.0})
    rows = value_rows("s", date(2025, 1, 1), actual, moved, clv, date(2024, 1, 1), fit)
    p = expit(0.1 + slope * np.array([50.0, 60.0, 70.0]) / 10)
    p_moved = expit(0.1 + slope * 5.5)
    assert rows.retention_probability_actual.tolist() == pytest.approx(p.tolist())
    assert np.sign(rows.retention_change.iloc[0]) == np.sign(slope)
    assert rows.retention_change.iloc[1:].tolist() == [0.0, 0.0]
    expected = Decimal(str(100 * p_moved / p[0])).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert Decimal(str(rows.clv_profit.iloc[0])) == expected
    assert rows.clv_profit.iloc[1:].tolist() == [200.0, -50.0]
    assert rows.clv_profit_change.tolist() == pytest.approx([float(expected) - 100, 0.0, 0.0])


def test_without_a_fitted_link_the_index_moves_and_retention_and_clv_are_not_computed():
    actual = pd.DataFrame({"customer_id": ["C1", "C2"], "segment": ["a", "a"], "index": [50.0, 60.0]})
    moved = actual.assign(index=[55.0, 60.0])
    rows = value_rows("s", date(2025, 1, 1), actual, moved, pd.Series({"C1": 10.0, "C2": 20.0}), None, None)
    assert rows.satisfaction_index_change.tolist() == [5.0, 0.0]
    assert rows.retention_probability.isna().all() and rows.fit_period.isna().all()
    assert np.isnan(rows.clv_profit.iloc[0]) and rows.clv_profit.iloc[1] == 20.0


# --- the small sample: 3 months, no link ------------------------------------------------------------------------


def test_on_a_history_without_a_fitted_link_the_run_says_so_and_publishes_the_index_alone(sample_run):
    with duckdb.connect(str(sample_run.paths.published / "current" / "cprof.duckdb"), read_only=True) as con:
        moved = con.execute(
            "select count(*), bool_and(segment = 'small_business'), bool_and(satisfaction_index_change > 0), "
            "bool_and(retention_probability is null), bool_and(clv_profit is null) "
            "from marts.scenario_customer_value where scenario = 'better_support' and satisfaction_index_change <> 0"
        ).fetchone()
        others = con.execute(
            "select count(*) from marts.scenario_customer_value where scenario <> 'better_support' "
            "and (satisfaction_index_change <> 0 or clv_profit is distinct from clv_profit_actual)"
        ).fetchone()[0]
    assert moved[0] > 0 and moved[1:] == (True, True, True, True)
    assert others == 0
    assert any(
        "scenario_customer_value: no fitted satisfaction-retention link" in line
        for line in sample_run.progress
    ), sample_run.progress


# --- the demo: 24 months, the link fitted ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_value(demo_published) -> pd.DataFrame:
    with duckdb.connect(str(demo_published.published / "current" / "cprof.duckdb"), read_only=True) as con:
        return con.execute(
            "select * from marts.scenario_customer_value order by scenario, period, customer_id"
        ).df()


def test_better_support_moves_only_small_businesses_index_up_and_retention_the_fitted_way(
    demo_published, demo_value
):
    with duckdb.connect(str(demo_published.published / "current" / "cprof.duckdb"), read_only=True) as con:
        (slope,) = con.execute(
            "select coefficient from marts.satisfaction_retention_fit where term = ? and period = "
            "(select max(period) from marts.satisfaction_retention_fit where fit_status = 'fitted' and window_complete)",
            [INDEX_TERM],
        ).fetchone()
    support = demo_value[demo_value.scenario == "better_support"]
    moved = support[support.satisfaction_index_change != 0]
    assert len(moved) > 100 and set(moved.segment) == {"small_business"}
    assert (moved.satisfaction_index_change > 0).all()
    assert (np.sign(moved.retention_change) == np.sign(slope)).all()
    valued = moved[moved.clv_profit_actual.notna()]
    assert len(valued) > 0
    # profit CLV moves with retention (a loss-making customer's CLV falls as retention rises); a change
    # under half a cent rounds to none
    change, direction = (
        valued.clv_profit_change.astype(float),
        np.sign(valued.clv_profit_actual.astype(float) * slope),
    )
    assert (np.sign(change) * direction >= 0).all() and (change != 0).sum() > len(valued) / 2
    # every other scenario, and every customer the lever does not move, is actual exactly
    actual = demo_value[demo_value.scenario == "actual"].drop(columns="scenario").reset_index(drop=True)
    for scenario, rows in demo_value.groupby("scenario"):
        rows = rows.drop(columns="scenario").reset_index(drop=True)
        if scenario != "better_support":
            pd.testing.assert_frame_equal(rows, actual)
    still = support[support.satisfaction_index_change == 0]
    assert (still.retention_change == 0).all()
    assert still.clv_profit.astype(float).equals(still.clv_profit_actual.astype(float))


def test_the_scenario_figures_recompute_from_the_survey_the_published_fit_and_clv(demo_published, demo_value):
    """An auditor's recomputation in SQL of the latest scenario month: each small business's support ratings
    + 1.5 (within 10) from the first scenario month, the monthly index with the published weights, its trailing
    response-weighted mean; then the logistic of the published terms, and profit CLV scaled."""
    support = demo_value[demo_value.scenario == "better_support"]
    latest = support.period.max()
    with duckdb.connect(str(demo_published.warehouse), read_only=True) as con:
        audited = (
            con.execute(
                """
            with first_month as (
                select min(period) as first_period from intermediate.int_scenario_months
            ),
            means as (
                select r.period, r.customer_id, r.question_id, avg(r.score) as mean_score
                from staging.stg_survey__responses r
                join staging.stg_survey__questions q on q.question_id = r.question_id and q.kind = 'attribute'
                group by all
            ),
            rated as (
                select m.period, m.customer_id, w.importance_weight,
                    case when m.question_id = 'ATTR_SUPPORT_QUALITY' and c.segment = 'small_business'
                        and m.period >= f.first_period then least(m.mean_score + 1.5, 10) else m.mean_score end
                        as rating
                from means m
                join staging.stg_crm__customers c using (customer_id)
                cross join first_month f
                left join marts.satisfaction_drivers w on w.period = m.period and w.question_id = m.question_id
            ),
            monthly as (
                select period, customer_id,
                    100 * sum(importance_weight * (rating - 1) / 9) / nullif(sum(importance_weight), 0) as idx
                from rated group by all
            ),
            windowed as (
                select m.customer_id,
                    sum(m.idx * s.responses) / sum(s.responses) as idx
                from monthly m
                join marts.customer_satisfaction s using (period, customer_id)
                where m.period > cast(? as date) - interval 12 month and m.period <= cast(? as date)
                    and s.satisfaction_index is not null
                group by all
            )
            select customer_id, idx from windowed
            """,
                [latest, latest],
            )
            .df()
            .set_index("customer_id")
        )
    rows = support[support.period == latest].set_index("customer_id")
    assert rows.satisfaction_index.to_numpy() == pytest.approx(
        audited.idx.reindex(rows.index).to_numpy(), abs=1e-9
    )
    with duckdb.connect(str(demo_published.published / "current" / "cprof.duckdb"), read_only=True) as con:
        terms = dict(
            con.execute(
                "select term, coefficient from marts.satisfaction_retention_fit where period = ?",
                [rows.fit_period.iloc[0]],
            ).fetchall()
        )
    segment_term = rows.segment.map(lambda s: terms.get(f"segment:{s}", 0.0)).to_numpy()
    for column, index in (
        ("retention_probability", rows.satisfaction_index),
        ("retention_probability_actual", rows.satisfaction_index_actual),
    ):
        expected = expit(terms[INTERCEPT] + terms[INDEX_TERM] * index.to_numpy() / 10 + segment_term)
        assert rows[column].to_numpy() == pytest.approx(expected, abs=1e-11)
    valued = rows[rows.clv_profit_actual.notna() & (rows.satisfaction_index_change != 0)]
    for actual, p_s, p_a, published in zip(
        valued.clv_profit_actual,
        valued.retention_probability,
        valued.retention_probability_actual,
        valued.clv_profit,
    ):
        exact = Decimal(actual) * Decimal(p_s) / Decimal(p_a)
        assert abs(Decimal(published) - exact) <= Decimal("0.005") + Decimal("1e-6"), (actual, published)
