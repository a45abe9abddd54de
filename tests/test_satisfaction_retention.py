"""The satisfaction-retention link (issue 30, item 4): the logistic fit, its uncertainty, the cases it refuses, the
retention probability a scenario computes with, and the table the demo publishes.

The demo's sample draws each customer's dropout independently of the survey (pipelines/sample/generate.py: p_drop
from a Beta, survey levels from a Normal; demanding customers rate delivery and support lower and buy more often).
So the demo's link is whatever association those draws leave: the tests check how it is fitted and published, not
its sign.
"""

from __future__ import annotations

import shutil
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import expit

from pipelines.defs.assets.satisfaction_retention import FIT_COLUMNS, as_of_months, customers_of, fit_rows
from pipelines.domain.satisfaction_retention import (
    FITTED,
    INDEX_TERM,
    INTERCEPT,
    NOT_FITTED,
    RetentionFit,
    fit_retention,
    log_likelihood,
    retention_change,
    retention_probability,
    segment_term,
)
from pipelines.engines.base import PeriodWindow

TRUE = {INTERCEPT: -1.0, INDEX_TERM: 0.4, "segment:b": 0.5, "segment:c": -0.7}


def simulated(n: int, seed: int, truth: dict[str, float] = TRUE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index, segment, retained) drawn from a known logistic link (segments a, b, c; a the baseline)."""
    rng = np.random.default_rng(seed)
    index = rng.uniform(10, 95, n)
    segment = rng.choice(np.array(["a", "b", "c"], dtype=object), n, p=[0.2, 0.3, 0.5])
    eta = (
        truth[INTERCEPT]
        + truth[INDEX_TERM] * index / 10
        + np.where(segment == "b", truth["segment:b"], 0.0)
        + np.where(segment == "c", truth["segment:c"], 0.0)
    )
    return index, segment, rng.random(n) < expit(eta)


def design_of(index: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """The model's design matrix written out here: 1, index / 10, [segment b], [segment c]."""
    return np.column_stack([np.ones(len(index)), index / 10, segment == "b", segment == "c"]).astype(float)


def test_the_fit_recovers_the_coefficients_it_was_simulated_with_within_their_standard_errors():
    fit = fit_retention(*simulated(20_000, seed=7))
    assert fit.status == FITTED and fit.reason is None
    assert fit.terms == (INTERCEPT, INDEX_TERM, "segment:b", "segment:c") and fit.baseline_segment == "a"
    for term, true in TRUE.items():
        i = fit.terms.index(term)
        assert abs(fit.coefficients[i] - true) < 3 * fit.std_errors[i], (term, fit.coefficients[i], true)
        low, high = fit.intervals()[i]
        assert low < fit.coefficients[i] < high
        assert high - low == pytest.approx(2 * 1.959963984540054 * fit.std_errors[i])
    # the standard errors are those of 20,000 customers: small, not degenerate
    assert all(0.005 < se < 0.2 for se in fit.std_errors)


def test_over_many_samples_the_intervals_cover_the_true_coefficient_about_95_percent_of_the_time():
    """The uncertainty is honest: 200 samples of 800 customers, the index coefficient's 95% interval covers 0.4
    in 95% of them, give or take the binomial noise of 200 draws (sd 1.5 points)."""
    covered = 0
    for seed in range(200):
        fit = fit_retention(*simulated(800, seed=1000 + seed))
        low, high = fit.intervals()[fit.terms.index(INDEX_TERM)]
        covered += low <= TRUE[INDEX_TERM] <= high
    assert 0.9 <= covered / 200 <= 0.99


def test_the_fit_is_the_maximum_of_the_likelihood_and_its_errors_the_inverse_observed_information():
    index, segment, retained = simulated(3_000, seed=11)
    fit = fit_retention(index, segment, retained)
    X, y = design_of(index, segment), retained.astype(float)
    beta = np.array(fit.coefficients)
    # the score equations hold at the estimate: X'(y - p) = 0
    assert np.max(np.abs(X.T @ (y - expit(X @ beta)))) < 1e-8

    # scipy's optimiser on the likelihood written out here reaches the same point and the same likelihood
    def negative(b):
        eta = X @ b
        return -float(y @ eta - np.logaddexp(0, eta).sum())

    reference = minimize(negative, np.zeros(4), method="BFGS", options={"gtol": 1e-9})
    assert np.allclose(reference.x, beta, atol=1e-5)
    assert fit.log_likelihood == pytest.approx(-reference.fun, abs=1e-8)
    assert fit.log_likelihood == pytest.approx(log_likelihood(beta, X, y))
    # the observed information by central differences of the likelihood, inverted: the published errors
    h = 1e-4
    hessian = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            e_i, e_j = np.eye(4)[i] * h, np.eye(4)[j] * h
            hessian[i, j] = (
                negative(beta + e_i + e_j)
                - negative(beta + e_i - e_j)
                - negative(beta - e_i + e_j)
                + negative(beta - e_i - e_j)
            ) / (4 * h * h)
    assert np.allclose(np.sqrt(np.diag(np.linalg.inv(hessian))), fit.std_errors, rtol=1e-4)


def test_the_fit_does_not_depend_on_the_order_of_the_customers():
    index, segment, retained = simulated(2_000, seed=3)
    order = np.random.default_rng(0).permutation(len(index))
    fit, shuffled = (
        fit_retention(index, segment, retained),
        fit_retention(index[order], segment[order], retained[order]),
    )
    assert shuffled.terms == fit.terms and np.allclose(shuffled.coefficients, fit.coefficients, atol=1e-10)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("all_retained", "every customer of the 500 stayed active: the outcome does not vary"),
        ("none_retained", "no customer of the 500 stayed active: the outcome does not vary"),
        ("one_customer", "1 customer(s): fewer than the 10 a fit needs"),
        ("no_customer", "0 customer(s): fewer than the 10 a fit needs"),
        ("one_index", "the satisfaction index is 70 for every customer: it does not vary"),
        ("segment_all_stay", "segment b: all of its"),
        ("separation", "no finite maximum within 100 Newton steps"),
        ("quasi_separation", "no finite maximum within 100 Newton steps"),
    ],
)
def test_data_without_a_finite_maximum_are_not_fitted_and_say_why(case: str, expected: str):
    index, segment, retained = simulated(500, seed=5)
    if case == "all_retained":
        retained = np.ones(500, dtype=bool)
    elif case == "none_retained":
        retained = np.zeros(500, dtype=bool)
    elif case == "one_customer":
        index, segment, retained = index[:1], segment[:1], retained[:1]
    elif case == "no_customer":
        index, segment, retained = index[:0], segment[:0], retained[:0]
    elif case == "one_index":
        index = np.full(500, 70.0)
    elif case == "segment_all_stay":
        retained = retained | (segment == "b")
    elif case == "separation":  # above 50 everybody stays, below nobody: the index separates them
        retained = index > 50
    elif case == "quasi_separation":  # at 50 exactly both; otherwise separated
        index = np.round(index)
        retained = (index > 50) | ((index == 50) & (np.arange(500) % 2 == 0))
    fit = fit_retention(index, segment, retained)
    assert fit.status == NOT_FITTED and expected in fit.reason
    assert fit.coefficients is None and fit.std_errors is None and fit.log_likelihood is None
    assert fit.customers == len(index) and fit.retained == int(np.sum(retained))
    with pytest.raises(ValueError, match="was not fitted"):
        retention_probability(fit, 60, "a")
    # its published rows: every term, no estimate, the reason
    rows = fit_rows(date(2024, 12, 1), fit, 12)
    assert rows.coefficient.isna().all() and rows.std_error.isna().all() and (rows.reason == fit.reason).all()


@pytest.mark.parametrize(
    "index, segment, retained, message",
    [
        ([50, 120], ["a", "a"], [1, 0], r"index\[1\] = 120 is not a satisfaction index"),
        ([50, np.nan], ["a", "a"], [1, 0], r"index\[1\] = nan is not a satisfaction index"),
        ([50, 60], ["a", None], [1, 0], r"segment\[1\] = None is not a segment name"),
        ([50, 60], ["a", "a"], [1, 2], r"retained\[1\] = 2 is not 0 or 1"),
        ([50, 60], ["a"], [1, 0], "differ in shape"),
    ],
)
def test_input_that_is_not_an_index_a_segment_and_an_outcome_is_refused_naming_the_position(
    index, segment, retained, message
):
    with pytest.raises(ValueError, match=message):
        fit_retention(index, np.array(segment, dtype=object), retained)


@pytest.fixture(scope="module")
def fitted() -> RetentionFit:
    return fit_retention(*simulated(5_000, seed=21))


def test_the_retention_probability_is_the_logistic_of_the_published_terms(fitted: RetentionFit):
    c = dict(zip(fitted.terms, fitted.coefficients, strict=True))
    index = np.array([0.0, 35.5, 80.0, 100.0])
    segment = np.array(["a", "b", "c", "b"], dtype=object)
    by_hand = expit(
        c[INTERCEPT]
        + c[INDEX_TERM] * index / 10
        + np.array([0, c["segment:b"], c["segment:c"], c["segment:b"]])
    )
    assert np.allclose(retention_probability(fitted, index, segment), by_hand, rtol=1e-14)
    # one segment for every index
    assert np.allclose(
        retention_probability(fitted, index, "c"),
        expit(c[INTERCEPT] + c[INDEX_TERM] * index / 10 + c["segment:c"]),
    )
    with pytest.raises(ValueError, match=r"no segment \['z'\]; it knows \['a', 'b', 'c'\]"):
        retention_probability(fitted, [50], "z")
    with pytest.raises(ValueError, match="is not a satisfaction index"):
        retention_probability(fitted, [101], "a")


def test_a_change_in_the_index_moves_retention_in_the_fitted_direction(fitted: RetentionFit):
    index = np.array([20.0, 50.0, 98.0])
    up = retention_change(fitted, index, "b", 5.0)
    assert fitted.coefficient(INDEX_TERM) > 0 and (up > 0).all()
    assert np.allclose(
        up,
        retention_probability(fitted, np.minimum(index + 5, 100), "b")
        - retention_probability(fitted, index, "b"),
    )
    # kept within the index's range: +5 from 98 is +2
    assert up[2] == pytest.approx(
        retention_probability(fitted, [100.0], "b")[0] - retention_probability(fitted, [98.0], "b")[0]
    )
    assert (retention_change(fitted, index, "b", 0.0) == 0).all()
    assert (retention_change(fitted, index, "b", -5.0) < 0).all()
    # a link of the other sign moves it the other way
    negative = fit_retention(*simulated(5_000, seed=22, truth={**TRUE, INDEX_TERM: -0.4}))
    assert negative.coefficient(INDEX_TERM) < 0 and (retention_change(negative, index, "b", 5.0) < 0).all()


def test_a_scenario_computes_with_exactly_what_was_published(fitted: RetentionFit):
    rows = fit_rows(date(2024, 12, 1), fitted, 12)
    assert list(rows.columns) == [c.name for c in FIT_COLUMNS]
    assert list(rows.term) == list(fitted.terms)
    assert rows.segment.isna().tolist() == [True, True, False, False] and list(rows.segment[2:]) == ["b", "c"]
    again = RetentionFit.from_published(rows)
    index = np.linspace(0, 100, 11)
    # the published figures are rounded to 12 decimals (bit-stable checksums): the probabilities agree to that
    assert np.allclose(
        retention_probability(again, index, "c"), retention_probability(fitted, index, "c"), atol=1e-11
    )
    two_months = pd.concat([rows, fit_rows(date(2025, 1, 1), fitted, 12)])
    with pytest.raises(ValueError, match="pass one as-of month"):
        RetentionFit.from_published(two_months.assign(log_likelihood=[1.0] * 4 + [2.0] * 4))


def test_the_customers_of_an_as_of_month_are_the_active_ones_with_an_index_and_their_outcome_the_next_12_months():
    month = lambda text: pd.Timestamp(f"{text}-01")
    satisfaction = pd.DataFrame(
        [
            # customer, month, responses, index
            ("A", month("2024-03"), 1, 60.0),
            ("A", month("2024-11"), 3, 80.0),  # A's index: (60 + 3 x 80) / 4 = 75
            ("B", month("2024-12"), 1, 40.0),
            ("C", month("2024-06"), 1, 90.0),  # no order in the window: not in the fit
            ("D", month("2023-12"), 1, 50.0),  # index before the window only: not in the fit
            ("E", month("2025-01"), 1, 50.0),  # index after the as-of month only: not in the fit
            ("F", month("2024-05"), 1, None),  # no index (no attribute answered): not in the fit
        ],
        columns=["customer_id", "period", "responses", "satisfaction_index"],
    ).assign(segment=lambda f: f.customer_id.map({"A": "x", "B": "y"}).fillna("z"))
    active = pd.DataFrame(
        [
            ("A", month("2024-01")),
            ("A", month("2025-12")),  # the 12th month after: retained
            ("B", month("2024-12")),
            ("B", month("2026-01")),  # the 13th month after: not retained
            ("C", month("2023-12")),
            ("C", month("2025-02")),
            ("D", month("2024-02")),
            ("E", month("2024-02")),
            ("F", month("2024-02")),
            ("F", month("2025-02")),
        ],
        columns=["customer_id", "period"],
    )
    found = customers_of(satisfaction, active, date(2024, 12, 1))
    assert found.to_dict("list") == {
        "customer_id": ["A", "B"],
        "segment": ["x", "y"],
        "index": [75.0, 40.0],
        "retained": [True, False],
    }


def test_the_as_of_months_are_those_with_12_months_after_them_within_the_window():
    history = [date(2024, m, 1) for m in range(1, 13)] + [date(2025, m, 1) for m in range(1, 4)]
    assert as_of_months(history, PeriodWindow()) == [date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)]
    assert as_of_months(history, PeriodWindow(date(2024, 2, 1), None)) == [date(2024, 2, 1), date(2024, 3, 1)]
    assert as_of_months(history[:12], PeriodWindow()) == []


# --- the published table: the small sample (3 months) and the demo (24 months) --------------------------------------


def test_a_history_shorter_than_13_months_publishes_the_table_empty_and_says_why(sample_run):
    with duckdb.connect(str(sample_run.paths.published / "current" / "cprof.duckdb"), read_only=True) as con:
        rows = con.execute("select count(*) from marts.satisfaction_retention_fit").fetchone()[0]
        logged = con.execute(
            "select row_count from marts.publish_log where table_name = 'satisfaction_retention_fit'"
        ).fetchall()
        comment = con.execute(
            "select comment from duckdb_tables() where schema_name = 'marts' and table_name = 'satisfaction_retention_fit'"
        ).fetchone()[0]
    assert rows == 0 and logged == [(0,)] and "not a proven cause" in comment
    assert any(
        "satisfaction_retention_fit: no month has the 12 months after it in the warehouse (3 month(s) of history)"
        in line
        for line in sample_run.progress
    ), sample_run.progress


@pytest.fixture(scope="module")
def demo(demo_published):
    with duckdb.connect(str(demo_published.published / "current" / "cprof.duckdb"), read_only=True) as con:
        published = con.execute("select * from marts.satisfaction_retention_fit order by period, term").df()
        history = [
            p
            for (p,) in con.execute(
                "select distinct period from marts.customer_profitability order by 1"
            ).fetchall()
        ]
    with duckdb.connect(str(demo_published.warehouse), read_only=True) as con:
        # an auditor's selection, in SQL: per as-of month the customers with an order in the trailing 12 months
        # and an index in them (response-weighted), and whether they ordered in the 12 months after
        audited = con.execute(
            """
            with months as (select distinct period from marts.customer_profitability),
            as_of as (
                select m.period from months m
                where m.period + interval 12 month in (select period from months)
            ),
            orders as (
                select distinct customer_id, period
                from intermediate.int_drivers_aggregated_to_customer_month where driver = 'orders'
            ),
            indexed as (
                select a.period, s.customer_id, any_value(s.segment) as segment,
                    sum(s.satisfaction_index * s.responses) / sum(s.responses) as idx
                from as_of a join marts.customer_satisfaction s
                    on s.period > a.period - interval 12 month and s.period <= a.period
                where s.satisfaction_index is not null
                group by a.period, s.customer_id
            )
            select i.period, i.customer_id, i.segment, i.idx,
                exists (select 1 from orders o where o.customer_id = i.customer_id
                        and o.period > i.period and o.period <= i.period + interval 12 month) as retained
            from indexed i
            where exists (select 1 from orders o where o.customer_id = i.customer_id
                          and o.period > i.period - interval 12 month and o.period <= i.period)
            order by i.period, i.customer_id
            """
        ).df()
    return published, history, audited


def test_the_demo_publishes_one_row_per_term_of_every_as_of_month_with_12_months_after_it(demo):
    published, history, _ = demo
    assert len(history) == 24
    expected_months = history[:12]  # the 24-month demo: its first 12 months have their next 12 in the release
    assert sorted(set(published.period.dt.date)) == expected_months
    assert not published.duplicated(["period", "term"]).any()
    terms = [INTERCEPT, INDEX_TERM, segment_term("mid_market"), segment_term("small_business")]
    for _, month in published.groupby("period"):
        assert sorted(month.term) == sorted(terms)
        assert (month.baseline_segment == "enterprise").all()
        assert month[["fit_status", "customers", "retained_customers", "log_likelihood"]].nunique().max() == 1
    assert list(published.groupby("period").window_months.first()) == list(range(1, 13))
    assert published.window_complete.tolist() == (published.window_months == 12).tolist()
    fitted = published[published.fit_status == FITTED]
    not_fitted = published[published.fit_status != FITTED]
    assert (not_fitted.reason.notna()).all() and fitted.reason.isna().all()
    assert fitted[["coefficient", "std_error", "ci_low", "ci_high"]].notna().all().all()
    assert ((fitted.ci_low < fitted.coefficient) & (fitted.coefficient < fitted.ci_high)).all()


def test_every_published_fit_is_the_fit_of_an_independent_selection_of_its_customers(demo):
    published, _, audited = demo
    assert set(audited.period.dt.date) == set(published.period.dt.date)
    for period, customers in audited.groupby("period"):
        refit = fit_retention(
            customers.idx.to_numpy(), customers.segment.to_numpy(object), customers.retained.to_numpy()
        )
        rows = published[published.period == period].set_index("term")
        assert (
            rows.customers.iloc[0] == len(customers)
            and rows.retained_customers.iloc[0] == customers.retained.sum()
        )
        assert rows.fit_status.iloc[0] == refit.status
        if refit.status == FITTED:
            for term, coefficient, se in zip(refit.terms, refit.coefficients, refit.std_errors, strict=True):
                assert rows.coefficient[term] == pytest.approx(coefficient, abs=1e-9), (period, term)
                assert rows.std_error[term] == pytest.approx(se, abs=1e-9), (period, term)


def test_a_one_month_rerun_rebuilds_the_as_of_months_it_reaches_as_the_full_build_did(
    demo_published, tmp_path
):
    """A month M reaches the fits of the 12 as-of months before it (their outcome) and the 11 after it (their
    trailing window): rerunning 2025-06 rewrites the as-of months 2024-06..2024-12 of the demo, exactly as the full
    build wrote them, and keeps 2024-01..05."""
    from pipelines.lib.config import Paths
    from pipelines.lib.settings import Settings
    from pipelines.run import run_pipeline

    paths = Paths(tmp_path / "data")
    shutil.copytree(demo_published.data_dir, paths.data_dir, symlinks=True)
    query = "select * from marts.satisfaction_retention_fit order by period, term"
    with duckdb.connect(str(paths.warehouse)) as con:
        full = con.execute(query).df()
        con.execute("update marts.satisfaction_retention_fit set customers = -1")  # a sentinel
    run_pipeline(Settings(data_dir=paths.data_dir), "2025-06", "2025-06", progress=lambda _: None)
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        after = con.execute(query).df()
    rewritten = after[after.customers != -1]
    assert sorted({f"{p:%Y-%m}" for p in rewritten.period}) == [f"2024-{m:02d}" for m in range(6, 13)]
    assert len(after) == len(full)
    pd.testing.assert_frame_equal(
        rewritten.reset_index(drop=True),
        full[full.period.isin(rewritten.period)].reset_index(drop=True),
    )
