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
    NotIdentified,
    bg_nbd_log_likelihood,
    discounted_expected_orders,
    expected_orders,
    expected_spend,
    fit_bg_nbd,
    fit_gamma_gamma,
    gamma_gamma_log_likelihood,
    one_blas_thread,
    p_alive,
    population_mean_spend,
)

DAYS_PER_MONTH = 365.25 / 12
FITTED, NOT_FITTED = "fitted", "not_fitted"
# The columns the models give: NULL for every customer of a month whose models could not be fitted.
MODEL_COLUMNS = (
    "p_alive",
    "expected_orders",
    "expected_spend_per_order",
    "clv_revenue",
    "clv_profit",
    "defection_prone",
)


@dataclass(frozen=True)
class ClvSettings:
    horizon_months: int = 12
    annual_discount_rate: float = 0.10
    p_alive_threshold: float = 0.5
    high_profit_quantile: float = 0.8  # "high past profit": at or above this quantile of profit_t12m
    holdout_months: int = 6


@dataclass(frozen=True)
class Fit:
    """One as-of month's models: ``status`` FITTED with both models' maximum-likelihood parameters, their total
    log-likelihoods and the population mean spend (and its rule, clv.population_mean_spend), or NOT_FITTED with the
    ``reason`` and whatever was fitted before the failure. ``seconds``: how long the fits took."""

    period: object
    status: str
    reason: str = ""
    bg_nbd: dict[str, float] | None = None
    gamma_gamma: dict[str, float] | None = None
    bg_nbd_log_likelihood: float | None = None
    gamma_gamma_log_likelihood: float | None = None
    population_mean_spend: float | None = None
    population_mean_rule: str | None = None
    customers: int = 0
    repeat_customers: int = 0
    seconds: float = 0.0


def _ratio(numerator: pd.Series, denominator: pd.Series, fallback: float) -> np.ndarray:
    num, den = numerator.to_numpy(float), denominator.to_numpy(float)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), fallback)


def cents_per_unit(amount: pd.Series, units: pd.Series, fallback: float) -> np.ndarray:
    """``amount`` (money with two decimals) per unit, rounded half away from zero to the cent in exact integer
    arithmetic (a float quotient puts an exact half cent either side of it: 100.01 / 2 = 50.004999...), as money
    is rounded everywhere; ``fallback`` (already rounded) where there are no units. In units of currency."""
    cents = np.rint(amount.to_numpy(float) * 100).astype(np.int64)
    count = units.to_numpy(np.int64)
    whole = np.where(count > 0, count, 1)
    quotient, remainder = np.divmod(np.abs(cents), whole)
    rounded = np.sign(cents) * (quotient + (2 * remainder >= whole))
    return np.where(count > 0, rounded / 100, fallback)


def score_month(summary: pd.DataFrame, settings: ClvSettings) -> tuple[pd.DataFrame, Fit]:
    """Fit both models on one as-of month's summary and score every customer in it.

    Each model's fit is the best of its fixed starts (pipelines/domain/clv.py), so a month's figures depend on its
    summary alone, however the months are built. A month whose models cannot be fitted (too few customers, no
    repeat purchases) or are not identified by its data (a maximum on the edge of the parameter space, as in the
    first month of history) is still scored: every customer with the summary's columns, ``fit_status``
    NOT_FITTED and the model columns (MODEL_COLUMNS) NULL; the Fit says why. BLAS runs on one thread throughout."""
    with one_blas_thread():
        return _score_month(summary, settings)


def _score_month(summary: pd.DataFrame, settings: ClvSettings) -> tuple[pd.DataFrame, Fit]:
    x = summary["frequency"].to_numpy(float)
    t_x = summary["recency"].to_numpy(float)
    T = summary["t"].to_numpy(float)
    m = summary["monetary_value"].to_numpy(float)
    period = summary["period"].iloc[0]
    counts = {"customers": len(x), "repeat_customers": int((x > 0).sum())}
    revenue, margin = summary["net_revenue_t12m"].astype(float), summary["gross_margin_t12m"].astype(float)
    # Cost-to-serve per transaction, in the unit the models count: per purchase day, not per order.
    cost, days = summary["cost_to_serve_t12m"], summary["purchase_days_t12m"]
    company_margin_rate = margin.sum() / revenue.sum() if revenue.sum() > 0 else 0.0
    company_cost_per_day = cents_per_unit(
        pd.Series([cost.astype(float).sum()]), pd.Series([int(days.sum())]), 0.0
    )[0]
    margin_rate = _ratio(margin, revenue, company_margin_rate)
    cost_per_day = cents_per_unit(cost.astype(float), days, company_cost_per_day)
    profit = summary["profit_t12m"].astype(float)
    scored = pd.DataFrame(
        {
            "period": summary["period"].to_numpy(),
            "customer_id": summary["customer_id"].to_numpy(),
            "frequency": summary["frequency"].to_numpy(),
            "recency": summary["recency"].to_numpy(),
            "t": summary["t"].to_numpy(),
            **{column: np.nan for column in MODEL_COLUMNS},
            "profit_t12m": profit.to_numpy(),
            "gross_margin_rate": margin_rate,
            "cost_to_serve_per_order": cost_per_day,
            "fit_status": NOT_FITTED,
        }
    )
    began = time.perf_counter()
    bg = gg = None
    try:
        bg = fit_bg_nbd(x, t_x, T)
        gg = fit_gamma_gamma(x, m)
        population = population_mean_spend(gg, x, m)
        spend = expected_spend(gg, x, m, population.value)
        discounted = discounted_expected_orders(
            bg, x, t_x, T, settings.horizon_months, DAYS_PER_MONTH, settings.annual_discount_rate, 12
        )
        alive = p_alive(bg, x, t_x, T)
        orders = expected_orders(bg, settings.horizon_months * DAYS_PER_MONTH, x, t_x, T)
    except (ValueError, NotIdentified, FloatingPointError) as exc:
        reason = str(exc).splitlines()[0]
        seconds = time.perf_counter() - began
        return scored, Fit(period, NOT_FITTED, reason, bg, gg, seconds=seconds, **counts)
    seconds = time.perf_counter() - began
    high_profit = (profit > 0) & (profit >= profit.quantile(settings.high_profit_quantile))
    scored["p_alive"] = alive
    scored["expected_orders"] = orders
    scored["expected_spend_per_order"] = spend
    scored["clv_revenue"] = discounted * spend
    scored["clv_profit"] = discounted * (spend * margin_rate - cost_per_day)
    scored["defection_prone"] = (high_profit & (alive < settings.p_alive_threshold)).to_numpy()
    scored["fit_status"] = FITTED
    fit = Fit(
        period,
        FITTED,
        bg_nbd=bg,
        gamma_gamma=gg,
        bg_nbd_log_likelihood=float(bg_nbd_log_likelihood(bg, x, t_x, T).sum()),
        gamma_gamma_log_likelihood=float(gamma_gamma_log_likelihood(gg, x, m).sum()),
        population_mean_spend=population.value,
        population_mean_rule=population.rule,
        seconds=seconds,
        **counts,
    )
    return scored, fit


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
