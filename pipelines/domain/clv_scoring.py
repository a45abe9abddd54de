"""Scoring customers with the CLV models, as of each month end. Plain functions on pandas, no Dagster.

Input: ``intermediate.int_clv_summary_by_as_of_month`` (frequency, recency, t in days; monetary value; the
trailing-12-month ABC figures). For each as-of month both models are fitted on that month's summary, then:

* ``p_alive``, ``expected_orders`` over the horizon and ``expected_spend_per_order`` (Gamma-Gamma);
* ``clv_revenue`` = discounted expected orders x expected spend per order;
* ``clv_profit`` = discounted expected orders x (expected spend x the customer's gross margin rate - the
  customer's cost-to-serve per order), both rates over the trailing 12 months (company rates where the
  customer has no revenue or no purchase days in that window);
* ``defection_prone``: a customer in the top of past profit (trailing 12 months) whose P(alive) fell below
  the threshold.

One unit throughout: the transaction is the **purchase day** (a day with at least one order), the unit
BG/NBD counts (frequency = repeat purchase days). "Order" in the published names (``expected_orders``,
``expected_spend_per_order``, ``cost_to_serve_per_order``) means that transaction: expected purchase days,
spend per purchase day, and cost-to-serve per purchase day (trailing cost-to-serve / trailing purchase days).
Two orders of a customer on one day are one transaction, whose spend and cost are the day's."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.domain.clv import (
    discounted_expected_orders,
    expected_orders,
    expected_spend,
    fit_bg_nbd,
    fit_gamma_gamma,
    one_blas_thread,
    p_alive,
)

DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class ClvSettings:
    horizon_months: int = 12
    annual_discount_rate: float = 0.10
    p_alive_threshold: float = 0.5
    high_profit_quantile: float = 0.8  # "high past profit": at or above this quantile of profit_t12m
    holdout_months: int = 6


@dataclass(frozen=True)
class Fit:
    """One as-of month's fitted parameters; ``seconds``: how long the two fits took (not part of the result)."""

    period: object
    bg_nbd: dict[str, float]
    gamma_gamma: dict[str, float]
    seconds: float = 0.0


def _ratio(numerator: pd.Series, denominator: pd.Series, fallback: float) -> np.ndarray:
    num, den = numerator.to_numpy(float), denominator.to_numpy(float)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), fallback)


def score_month(
    summary: pd.DataFrame, settings: ClvSettings, start: Fit | None = None
) -> tuple[pd.DataFrame, Fit]:
    """Fit both models on one as-of month's summary and score every customer in it.

    ``start``: a fit to warm-start both models from (the previous as-of month's), else a cold start; the optimum
    is the same to 1e-6 either way. BLAS runs on one thread throughout (pipelines/domain/clv.py,
    ``one_blas_thread``)."""
    with one_blas_thread():
        return _score_month(summary, settings, start)


def _score_month(summary: pd.DataFrame, settings: ClvSettings, start: Fit | None) -> tuple[pd.DataFrame, Fit]:
    x = summary["frequency"].to_numpy(float)
    t_x = summary["recency"].to_numpy(float)
    T = summary["t"].to_numpy(float)
    m = summary["monetary_value"].to_numpy(float)
    began = time.perf_counter()
    bg = fit_bg_nbd(x, t_x, T, start=None if start is None else start.bg_nbd)
    gg = fit_gamma_gamma(x, m, start=None if start is None else start.gamma_gamma)
    seconds = time.perf_counter() - began
    horizon_days = settings.horizon_months * DAYS_PER_MONTH
    discounted = discounted_expected_orders(
        bg, x, t_x, T, settings.horizon_months, DAYS_PER_MONTH, settings.annual_discount_rate, 12
    )
    spend = expected_spend(gg, x, m)
    revenue, margin = summary["net_revenue_t12m"].astype(float), summary["gross_margin_t12m"].astype(float)
    # Cost-to-serve per transaction, in the unit the models count: per purchase day, not per order.
    cost, days = summary["cost_to_serve_t12m"].astype(float), summary["purchase_days_t12m"].astype(float)
    company_margin_rate = margin.sum() / revenue.sum() if revenue.sum() > 0 else 0.0
    company_cost_per_day = cost.sum() / days.sum() if days.sum() > 0 else 0.0
    margin_rate = _ratio(margin, revenue, company_margin_rate)
    cost_per_day = _ratio(cost, days, company_cost_per_day)
    alive = p_alive(bg, x, t_x, T)
    profit = summary["profit_t12m"].astype(float)
    high_profit = (profit > 0) & (profit >= profit.quantile(settings.high_profit_quantile))
    scored = pd.DataFrame(
        {
            "period": summary["period"].to_numpy(),
            "customer_id": summary["customer_id"].to_numpy(),
            "frequency": summary["frequency"].to_numpy(),
            "recency": summary["recency"].to_numpy(),
            "t": summary["t"].to_numpy(),
            "p_alive": alive,
            "expected_orders": expected_orders(bg, horizon_days, x, t_x, T),
            "expected_spend_per_order": spend,
            "clv_revenue": discounted * spend,
            "clv_profit": discounted * (spend * margin_rate - cost_per_day),
            "defection_prone": (high_profit & (alive < settings.p_alive_threshold)).to_numpy(),
            "profit_t12m": profit.to_numpy(),
            "gross_margin_rate": margin_rate,
            "cost_to_serve_per_order": cost_per_day,
        }
    )
    return scored, Fit(summary["period"].iloc[0], bg, gg, seconds)


def holdout_calibration(calibration: pd.DataFrame, final: pd.DataFrame) -> dict[str, float | str]:
    """Fit on the summary as of the calibration month end, predict the repeat purchases of the holdout window
    (up to the final month end) and compare with what happened: the aggregate ratio predicted / actual and the
    mean absolute error per customer, over the customers known at calibration."""
    calibration = calibration.set_index("customer_id")
    final = final.set_index("customer_id").reindex(calibration.index)
    x = calibration["frequency"].to_numpy(float)
    t_x = calibration["recency"].to_numpy(float)
    T = calibration["t"].to_numpy(float)
    bg = fit_bg_nbd(x, t_x, T)
    holdout_days = float((final["t"] - calibration["t"]).iloc[0])
    predicted = expected_orders(bg, holdout_days, x, t_x, T)
    actual = (final["frequency"] - calibration["frequency"]).to_numpy(float)
    return {
        "customers": len(actual),
        "holdout_days": holdout_days,
        "predicted_purchases": round(float(predicted.sum()), 1),
        "actual_purchases": float(actual.sum()),
        "aggregate_ratio": round(float(predicted.sum() / actual.sum()), 4)
        if actual.sum() > 0
        else float("nan"),
        "mean_absolute_error": round(float(np.abs(predicted - actual).mean()), 4),
    }
