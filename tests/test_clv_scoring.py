"""Scoring customers with the fitted CLV models: the arithmetic of revenue and profit CLV, the defection flag,
the holdout calibration on a simulated BG/NBD population, months whose models are not identified, and the
sample's published fits."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey

from pipelines.domain.clv import discounted_expected_orders, expected_spend, fit_bg_nbd, fit_gamma_gamma
from pipelines.domain.clv_scoring import (
    DAYS_PER_MONTH,
    MODEL_COLUMNS,
    ClvSettings,
    cents_per_unit,
    holdout_calibration,
    score_month,
)
from pipelines.run import dagster_instance

TRUTH = {"r": 0.9, "alpha": 30.0, "a": 0.6, "b": 9.0}  # days, as the sample generator uses


def simulate(customers: int, observe_days: int, seed: int) -> pd.DataFrame:
    """Purchase days of a BG/NBD population over ``observe_days`` (first purchase on day 0 for everyone)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUTH["r"], 1 / TRUTH["alpha"], customers)
    p = rng.beta(TRUTH["a"], TRUTH["b"], customers)
    rows = []
    for customer in range(customers):
        day, alive = 0.0, True
        days = [0]
        while alive:
            day += rng.exponential(1 / lam[customer])
            if day >= observe_days:
                break
            days.append(int(day))
            alive = rng.random() >= p[customer]
        rows.append(sorted(set(days)))
    return rows


def summary_as_of(purchase_days: list[list[int]], as_of: int, period: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    records = []
    for i, days in enumerate(purchase_days):
        seen = [d for d in days if d <= as_of]
        repeat_values = rng.gamma(4.0, 25.0, len(seen) - 1)
        records.append(
            {
                "period": pd.Timestamp(period),
                "customer_id": f"C{i:05d}",
                "frequency": len(seen) - 1,
                "recency": seen[-1] - seen[0],
                "t": as_of,
                "monetary_value": float(repeat_values.mean()) if len(seen) > 1 else 0.0,
                "profit_t12m": float(rng.normal(500, 800)),
                "net_revenue_t12m": 1000.0 if i % 7 else 0.0,
                "gross_margin_t12m": 300.0 if i % 7 else 0.0,
                "cost_to_serve_t12m": 50.0,
                "purchase_days_t12m": 5 if i % 11 else 0,
            }
        )
    return pd.DataFrame(records)


@pytest.fixture(scope="module")
def population() -> list[list[int]]:
    return simulate(4000, 730, seed=3)


def test_profit_clv_is_discounted_orders_times_margin_on_spend_less_cost_to_serve(population):
    summary = _with_gamma_gamma_spend(summary_as_of(population, 540, "2025-06-01", seed=4), seed=4)
    settings = ClvSettings()
    scored, fit = score_month(summary, settings)
    x, t_x, T, m = (summary[c].to_numpy(float) for c in ("frequency", "recency", "t", "monetary_value"))
    discounted = discounted_expected_orders(fit.bg_nbd, x, t_x, T, 12, DAYS_PER_MONTH, 0.10, 12)
    spend = expected_spend(fit.gamma_gamma, x, m)
    assert np.allclose(scored.expected_spend_per_order, spend)
    assert np.allclose(scored.clv_revenue, discounted * spend)
    # A customer with revenue and purchase days: own rates (300 / 1000 margin, 50 / 5 cost per purchase day).
    own = (summary.net_revenue_t12m > 0) & (summary.purchase_days_t12m > 0)
    expected = discounted * (spend * 0.3 - 10.0)
    assert np.allclose(scored.clv_profit[own], expected[own])
    # Without revenue or purchase days in the window, the company's rates stand in.
    company_margin = summary.gross_margin_t12m.sum() / summary.net_revenue_t12m.sum()
    # the company's cost per purchase day, rounded half away from zero to the cent like every money figure
    exact = Decimal(str(round(summary.cost_to_serve_t12m.sum(), 2))) / int(summary.purchase_days_t12m.sum())
    company_cost = float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    neither = (summary.net_revenue_t12m == 0) & (summary.purchase_days_t12m == 0)
    assert neither.any()
    assert np.allclose(
        scored.clv_profit[neither], (discounted * (spend * company_margin - company_cost))[neither]
    )
    assert ((scored.p_alive >= 0) & (scored.p_alive <= 1)).all()
    assert (scored.p_alive[summary.frequency == 0] == 1).all()
    assert (scored.expected_orders >= 0).all()


def test_defection_prone_means_high_past_profit_and_low_p_alive(population):
    summary = _with_gamma_gamma_spend(summary_as_of(population, 540, "2025-06-01", seed=5), seed=5)
    settings = ClvSettings(p_alive_threshold=0.5, high_profit_quantile=0.8)
    scored, _ = score_month(summary, settings)
    high = (summary.profit_t12m > 0) & (summary.profit_t12m >= summary.profit_t12m.quantile(0.8))
    assert (scored.defection_prone == (high & (scored.p_alive < 0.5))).all()
    assert 0 < scored.defection_prone.sum() < high.sum()
    stricter, _ = score_month(summary, ClvSettings(p_alive_threshold=0.2))
    assert stricter.defection_prone.sum() < scored.defection_prone.sum()


def test_holdout_calibration_predicts_the_holdout_of_a_bg_nbd_population(population):
    calibration = summary_as_of(population, 365, "2024-12-01", seed=6)
    final = summary_as_of(population, 729, "2025-12-01", seed=6)
    report = holdout_calibration(calibration, final)
    assert report["customers"] == 4000 and report["holdout_days"] == 364
    assert 0.9 < report["aggregate_ratio"] < 1.1, report
    assert report["mean_absolute_error"] > 0


def test_longer_horizon_and_lower_discount_rate_raise_clv(population):
    summary = _with_gamma_gamma_spend(summary_as_of(population, 540, "2025-06-01", seed=7), seed=7)
    base, _ = score_month(summary, ClvSettings())
    longer, _ = score_month(summary, ClvSettings(horizon_months=24))
    cheaper, _ = score_month(summary, ClvSettings(annual_discount_rate=0.0))
    assert longer.clv_revenue.sum() > base.clv_revenue.sum()
    assert cheaper.clv_revenue.sum() > base.clv_revenue.sum()


def test_fits_match_the_models_fitted_directly(population):
    summary = _with_gamma_gamma_spend(summary_as_of(population, 540, "2025-06-01", seed=8), seed=8)
    _, fit = score_month(summary, ClvSettings())
    x, t_x, T, m = (summary[c].to_numpy(float) for c in ("frequency", "recency", "t", "monetary_value"))
    assert fit.bg_nbd == fit_bg_nbd(x, t_x, T)
    assert fit.gamma_gamma == fit_gamma_gamma(x, m)
    for name, value in TRUTH.items():  # 4,000 customers over 18 months: in the neighbourhood of the truth
        assert abs(fit.bg_nbd[name] / value - 1) < 0.35, (name, fit.bg_nbd)


def _with_gamma_gamma_spend(summary: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The summary with mean repeat spends from a Gamma-Gamma population (spend rates differ between customers,
    so q and v are identified; summary_as_of's spends share one rate, which lets q and v run off together)."""
    rng = np.random.default_rng(seed)
    x = summary["frequency"].to_numpy(float)
    rate = rng.gamma(3.5, 1 / 50.0, len(x))
    spend = np.zeros(len(x))
    spend[x > 0] = rng.gamma(2.0 * x[x > 0], 1 / rate[x > 0]) / x[x > 0]
    return summary.assign(monetary_value=spend)


def test_a_month_scores_the_same_whatever_was_scored_before(population):
    """A month's fit and scores are a function of its summary: scoring the month before first changes nothing."""
    before, after = (
        _with_gamma_gamma_spend(summary_as_of(population, days, period, seed=9), seed=days)
        for days, period in ((510, "2025-05-01"), (540, "2025-06-01"))
    )
    alone, alone_fit = score_month(after, ClvSettings())
    score_month(before, ClvSettings())
    again, again_fit = score_month(after, ClvSettings())
    assert (alone_fit.bg_nbd, alone_fit.gamma_gamma) == (again_fit.bg_nbd, again_fit.gamma_gamma)
    pd.testing.assert_frame_equal(alone, again)
    assert alone_fit.status == "fitted" and alone_fit.seconds > 0


def test_a_month_whose_models_are_not_identified_is_published_with_null_model_figures(population):
    """Nobody seen to drop out (every repeat buyer's last purchase at the month end): BG/NBD is not identified.
    The month keeps every customer, with the summary's and the trailing figures, fit_status not_fitted and NULL
    model columns; the fit says why."""
    summary = _with_gamma_gamma_spend(summary_as_of(population, 540, "2025-06-01", seed=8), seed=8)
    summary["recency"] = np.where(summary["frequency"] > 0, summary["t"], 0)
    scored, fit = score_month(summary, ClvSettings())
    assert fit.status == "not_fitted" and "BG/NBD" in fit.reason
    assert (fit.bg_nbd_log_likelihood, fit.population_mean_spend) == (None, None)
    assert len(scored) == len(summary) and (scored["fit_status"] == "not_fitted").all()
    assert scored[list(MODEL_COLUMNS)].isna().all().all()
    assert scored["profit_t12m"].tolist() == summary["profit_t12m"].tolist()
    assert scored[["frequency", "recency", "t"]].notna().all().all()


def test_cost_to_serve_per_order_rounds_exact_half_cents_away_from_zero():
    """100.01 over 2 purchase days is 50.005, published 50.01 (a float quotient, 50.00499..., rounds to 50.00)."""
    amounts = pd.Series([100.01, -100.01, 0.03, 250.0, 7.0])
    days = pd.Series([2, 2, 2, 0, 3])
    got = cents_per_unit(amounts, days, fallback=12.34)
    assert got.tolist() == [50.01, -50.01, 0.02, 12.34, 2.33]


def test_the_published_fits_of_the_sample_are_each_months_best_optimum(published_sample):
    """On the sample's real summaries every published fit of marts.clv_fits is the fit of that month's summary
    alone, for both models, one row per as-of month of customer_clv, none missing."""
    with duckdb.connect(str(published_sample.warehouse), read_only=True) as con:
        stored = con.execute("select * from marts.clv_fits order by period").df()
        scored = [
            row[0]
            for row in con.execute("select distinct period from marts.customer_clv order by 1").fetchall()
        ]
        summaries = con.execute(
            "select * from intermediate.int_clv_summary_by_as_of_month order by period, customer_id"
        ).df()
    assert [p.date() for p in stored["period"]] == scored == sorted({p.date() for p in summaries["period"]})
    fitted = stored[stored["fit_status"] == "fitted"]
    assert len(fitted) >= 2
    for _, row in fitted.iterrows():
        month = summaries[summaries["period"] == row["period"]]
        x, t_x, T, m = (month[c].to_numpy(float) for c in ("frequency", "recency", "t", "monetary_value"))
        for params, prefix in ((fit_bg_nbd(x, t_x, T), "bg_nbd_"), (fit_gamma_gamma(x, m), "gamma_gamma_")):
            assert {k: row[prefix + k] for k in params} == params, (row["period"], prefix)
    event = dagster_instance(published_sample).get_latest_materialization_event(
        AssetKey(["marts", "customer_clv"])
    )
    metadata = event.asset_materialization.metadata
    assert metadata["months_scored"].value == len(scored)
    assert metadata["months_fitted"].value == len(fitted)
    assert 0 < metadata["fit_seconds"].value < 60
