"""Customer lifetime value: the BG/NBD purchase model and the Gamma-Gamma spend model.

Both models are fitted by maximum likelihood on the per-customer summary: ``frequency`` (number of
REPEAT purchases x), ``recency`` (time of the last purchase t_x, measured from the first purchase, 0 if
x = 0), ``T`` (time from the first purchase to the end of the observation) and ``monetary_value`` (mean
value of the repeat purchases). Any time unit works as long as it is the same for all inputs.

Why the models are written here instead of imported: ``lifetimes`` has been archived since 2020 and is
partly broken on pandas 3; ``pymc-marketing`` needs Python >= 3.12 and brings PyMC/PyTensor. The models
are small, so they are implemented on numpy/scipy only, with analytic gradients.

References:

- P. S. Fader, B. G. S. Hardie, K. L. Lee (2005), "Counting your customers the easy way: an alternative to
  the Pareto/NBD model", Marketing Science 24(2), 275-284 (BG/NBD likelihood; conditional expectation
  eq. 10).
- P. S. Fader, B. G. S. Hardie, K. L. Lee (2008), "Computing P(alive) using the BG/NBD model", note.
- P. S. Fader, B. G. S. Hardie, K. L. Lee (2005), "RFM and CLV: using iso-value curves for customer base
  analysis", Journal of Marketing Research 42(4), 415-430 (Gamma-Gamma spend model).
- P. S. Fader, B. G. S. Hardie (2013), "The Gamma-Gamma Model of Monetary Value", note.

Numerical notes: likelihoods are evaluated in log space (gammaln, betaln, logaddexp). Eq. 10 needs the
Gauss hypergeometric function at z = t / (alpha + T + t), which tends to 1 for long horizons; there
scipy's ``hyp2f1(r + x, b + x; a + b + x - 1; z)`` overflows for heavy buyers (x of a few hundred). The
Euler transformation 2F1(A, B; C; z) = (1 - z)^(C-A-B) 2F1(C-A, C-B; C; z) turns it into
2F1(a + b - 1 - r, a - 1; a + b + x - 1; z), whose first two parameters do not grow with x; that form is
used and checked to be finite. Its removable singularities (a = 1; r - a a whole number, where scipy's
hyp2f1 returns NaN for large x) are bridged by interpolation. Against numerical integration over the
posterior of (lambda, p) it agreed to a relative 1e-7 on 3,000 random cases up to x = 300 and t = 10 years.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1
from threadpoolctl import threadpool_limits

BG_NBD_PARAMS = ("r", "alpha", "a", "b")
GAMMA_GAMMA_PARAMS = ("p", "q", "v")
MIN_CUSTOMERS = 10
# The starts every fit searches from (_minimise keeps the best optimum): the first is the default, which also sets
# the search range. BG/NBD: (r, a, b), alpha = r / (the observed repeat purchase rate); Gamma-Gamma: (p, q), v such
# that the population mean p v / (q - 1) is the observed mean spend. Spread over the shapes customer bases take
# (CDNOW's estimates, r 0.24, a 0.79, b 2.43 and p 6.25, q 3.74, lie between them), so that one start reaching a
# flat region or a local optimum does not decide the fit; on the demo's 24 months all three reach the same optimum
# wherever the month identifies one.
BG_NBD_STARTS = ((1.0, 1.0, 1.0), (0.25, 0.25, 4.0), (4.0, 4.0, 16.0))
GAMMA_GAMMA_STARTS = ((2.0, 2.0), (0.5, 1.5), (6.0, 4.0))
# Log-parameters are searched within +-ln(1e8) of their default (cold) starting values; an optimum on that bound
# means the data do not identify the parameter (e.g. b -> infinity when nobody seems to drop out).
_LOG_SEARCH_RANGE = np.log(1e8)
# Distance from the removable singularities of eq. 10 below which it is interpolated (_alive_expected_orders).
_NEAR_SINGULAR = 1e-4
# The polish after each search (_minimise): Newton steps on the analytic gradient, the Hessian from its forward
# differences at _HESSIAN_STEP in each log-parameter, at most _POLISH_STEPS of them; L-BFGS-B with tight
# tolerances first where they stall. scipy's default L-BFGS-B tolerances, which the search keeps, stop up to 1e-2
# apart in a weakly identified parameter from different starts (tight ones still 2e-6 apart on a hundred
# customers); Newton's steps go to where the gradient vanishes to rounding, so starts that reach the same optimum
# agree to 1e-6 (tests/test_clv.py), in about 15 more evaluations of the likelihood.
_POLISH_FUNCTION_TOLERANCE = 1e-15
_POLISH_GRADIENT = 1e-10
_HESSIAN_STEP = 1e-5
_POLISH_STEPS = 8
# Identification (_curvature): the Hessian of the mean negative log-likelihood per customer, in log-parameters, by
# central differences of the analytic gradient at _CURVATURE_STEP (accurate to about 1e-9). An optimum is identified
# when its smallest eigenvalue exceeds _MIN_CURVATURE, a hundred times that accuracy: along every direction the
# likelihood falls away from the optimum. Where it does not, the maximum lies on the edge of the parameter space (the
# demo's first month: a -> 0, nobody is seen to drop out after one month, and b is then free) and the estimates are
# whatever point of a flat ridge the search stopped on. Measured on the demo: 1e-12 to 3e-9 in its first month,
# 1.4e-5 in its second (the weakest of the identified months), 5e-4 to 2e-2 after.
_CURVATURE_STEP = 1e-4
_MIN_CURVATURE = 1e-7
# And the likelihood must fall away from it at a distance (_rise_along): along the flattest direction, 1 to 8
# log-units both ways, nowhere higher by more than _RIDGE_TOLERANCE (relative, per customer). Around a maximum
# that clears _MIN_CURVATURE it is lower by at least 5e-8 at 1 log-unit; on the small sample's first month, whose
# Gamma-Gamma ridge rises towards p -> infinity, higher by 2e-8 to 8e-8 (rounding: about 1e-15).
_RIDGE_DISTANCES = (1.0, 2.0, 4.0, 8.0)
_RIDGE_TOLERANCE = 1e-10
# A maximum is where the gradient vanishes: polished optima reach 1e-10 or less (the demo's flat first month 2e-8).
# A larger gradient at the best point means the optimiser stopped on rounding noise while the likelihood still
# rises towards the edge of the parameter space (identical spends: p -> infinity).
_MAX_GRADIENT = 1e-6
# Which searches' optima are polished (_contenders): within 1e-6 (relative) of the lowest objective, and one of
# those whose log-parameters agree to 1e-2 (where scipy's default tolerances leave starts reaching one optimum).
_CONTENDING = 1e-6
_SAME_OPTIMUM = 1e-2


# ---------------------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------------------


def _as_array(name: str, values: ArrayLike) -> np.ndarray:
    """A one-dimensional float array of finite, non-negative values, or a ValueError naming ``name``."""
    try:
        array = np.atleast_1d(np.asarray(values, dtype=float))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    _raise_at_first(name, array, ~np.isfinite(array), "is not finite")
    _raise_at_first(name, array, array < 0, "is negative")
    return array


def _raise_at_first(name: str, array: np.ndarray, bad: np.ndarray, problem: str) -> None:
    """Raise a ValueError naming the first index where ``bad`` holds."""
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}[{i}] = {array[i]:g} {problem}")


def _check_lengths(**arrays: np.ndarray) -> None:
    """All arrays have the same length."""
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"inputs differ in length: {lengths}")


def _validate_rft(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (frequency, recency, T) arrays."""
    x = _as_array("frequency", frequency)
    t_x = _as_array("recency", recency)
    T_ = _as_array("T", T)
    _check_lengths(frequency=x, recency=t_x, T=T_)
    _raise_at_first("frequency", x, x != np.round(x), "is not a whole number of repeat purchases")
    if (t_x > T_).any():
        i = int(np.argmax(t_x > T_))
        raise ValueError(f"recency[{i}] = {t_x[i]:g} is greater than T[{i}] = {T_[i]:g}")
    _raise_at_first(
        "recency",
        t_x,
        (x == 0) & (t_x > 0),
        "is positive for a customer without repeat purchases (must be 0)",
    )
    return x, t_x, T_


def _validate_fm(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated (frequency, monetary_value) arrays."""
    x = _as_array("frequency", frequency)
    m = _as_array("monetary_value", monetary_value)
    _check_lengths(frequency=x, monetary_value=m)
    _raise_at_first("frequency", x, x != np.round(x), "is not a whole number of repeat purchases")
    _raise_at_first(
        "monetary_value", m, (x > 0) & (m == 0), "must be positive for a customer with repeat purchases"
    )
    return x, m


def _require_customers(count: int, what: str) -> None:
    """At least MIN_CUSTOMERS customers to fit on."""
    if count < MIN_CUSTOMERS:
        raise ValueError(f"{what} needs at least {MIN_CUSTOMERS} customers, got {count}")


def _params(params: Mapping[str, float], names: tuple[str, ...]) -> np.ndarray:
    """The named parameters as an array, checked to be present, finite and positive."""
    missing = [name for name in names if name not in params]
    if missing:
        raise ValueError(f"params lacks {missing}; expected the keys {list(names)}")
    values = np.array([params[name] for name in names], dtype=float)
    for name, value in zip(names, values, strict=True):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"parameter {name} = {value:g} must be finite and positive")
    return values


# ---------------------------------------------------------------------------------------------------------
# Collapsing identical customers
# ---------------------------------------------------------------------------------------------------------


def _group(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Collapse identical rows: (index of each group's first row, group of every row, rows per group).

    Columns are combined one at a time into a compact integer key (faster than ``np.unique(axis=0)``, which
    sorts rows as byte strings); the key is renumbered after each column so it cannot overflow.
    """
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        values, codes = np.unique(column, return_inverse=True)
        _, first, key, counts = np.unique(
            key * len(values) + codes, return_index=True, return_inverse=True, return_counts=True
        )
    return first, key, counts


@dataclass(frozen=True)
class _Factor:
    """A column of the collapsed rows stored as its unique values and, per row, the index into them."""

    values: np.ndarray
    index: np.ndarray

    @classmethod
    def of(cls, column: np.ndarray) -> "_Factor":
        """Factorise a column."""
        values, index = np.unique(column, return_inverse=True)
        return cls(values, index)


@dataclass(frozen=True)
class _BgNbdData:
    """Customers collapsed to unique (x, t_x, T) rows, each column factorised.

    Terms that depend on one column only (gammaln and digamma of x, logs of alpha + T) are computed once
    per unique value, which makes a million customers with whole-day recency and T cheap.
    """

    counts: np.ndarray  # customers per row
    inverse: np.ndarray  # row of every customer
    x: _Factor
    x_counts: np.ndarray  # customers per unique frequency
    recency: _Factor
    T: _Factor

    @classmethod
    def of(cls, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> "_BgNbdData":
        """Collapse validated (frequency, recency, T) arrays."""
        first, inverse, counts = _group(x, t_x, T)
        x_factor = _Factor.of(x[first])
        x_counts = np.bincount(x_factor.index, weights=counts, minlength=len(x_factor.values))
        return cls(counts, inverse, x_factor, x_counts, _Factor.of(t_x[first]), _Factor.of(T[first]))


@dataclass(frozen=True)
class _GammaGammaData:
    """Repeat customers with the sums of the likelihood that do not depend on the parameters."""

    x: np.ndarray
    xm: np.ndarray  # x * monetary value: total repeat spend
    x_values: np.ndarray
    x_counts: np.ndarray
    sum_x_log_xm: float
    sum_log_m: float

    @classmethod
    def of(cls, x: np.ndarray, m: np.ndarray) -> "_GammaGammaData":
        """Keep the repeat customers of validated (frequency, monetary_value) arrays."""
        repeat = x > 0
        x, m = x[repeat], m[repeat]
        x_values, x_counts = np.unique(x, return_counts=True)
        xm = x * m
        return cls(x, xm, x_values, x_counts, float(x @ np.log(xm)), float(np.log(m).sum()))


# ---------------------------------------------------------------------------------------------------------
# BG/NBD
# ---------------------------------------------------------------------------------------------------------


def _bg_nbd_log_terms(params: np.ndarray, data: _BgNbdData) -> tuple[np.ndarray, ...]:
    """Per row: the logs of the two likelihood terms, log(alpha + T) and log(alpha + t_x).

    The terms are "still alive at T" and "dropped out right after the purchase at t_x" (-inf for x = 0).
    """
    r, alpha, a, b = params
    x = data.x.values
    base = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    alive = base + betaln(a, b + x)
    dropped = np.full_like(x, -np.inf)
    repeat = x > 0
    dropped[repeat] = base[repeat] + betaln(a + 1, b + x[repeat] - 1)
    shape = (r + x)[data.x.index]
    log_T = np.log(alpha + data.T.values)[data.T.index]
    log_t = np.log(alpha + data.recency.values)[data.recency.index]
    return alive[data.x.index] - shape * log_T, dropped[data.x.index] - shape * log_t, log_T, log_t


def _bg_nbd_objective(log_params: np.ndarray, data: _BgNbdData) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood per customer and its gradient with respect to the log-parameters."""
    params = np.exp(log_params)
    r, alpha, a, b = params
    alive, dropped, log_T, log_t = _bg_nbd_log_terms(params, data)
    log_lik = np.logaddexp(alive, dropped)
    n = data.counts.sum()
    # Share of each row's likelihood in each term, times the customers in the row.
    w_alive = data.counts * np.exp(alive - log_lik)
    w_dropped = data.counts * np.exp(dropped - log_lik)

    x, n_x = data.x.values, data.x_counts
    repeat = x > 0
    shape = (r + x)[data.x.index]
    d_r = n_x @ (digamma(r + x) - digamma(r) + np.log(alpha)) - w_alive @ log_T - w_dropped @ log_t
    inv_T = (1.0 / (alpha + data.T.values))[data.T.index]
    inv_t = (1.0 / (alpha + data.recency.values))[data.recency.index]
    d_alpha = n * r / alpha - (shape * w_alive) @ inv_T - (shape * w_dropped) @ inv_t
    # Derivatives of each term's log with respect to a and b, per unique frequency.
    common = digamma(a + b) - digamma(a + b + x)
    alive_a = common
    alive_b = common + digamma(b + x) - digamma(b)
    dropped_a = np.where(repeat, common + digamma(a + 1) - digamma(a), 0.0)
    dropped_b = np.zeros_like(x)
    dropped_b[repeat] = common[repeat] + digamma(b + x[repeat] - 1) - digamma(b)
    dropped_per_x = np.bincount(data.x.index, weights=w_dropped, minlength=len(x))
    alive_per_x = n_x - dropped_per_x
    d_a = alive_per_x @ alive_a + dropped_per_x @ dropped_a
    d_b = alive_per_x @ alive_b + dropped_per_x @ dropped_b

    gradient = np.array([d_r, d_alpha, d_a, d_b]) * params
    return -float(data.counts @ log_lik) / n, -gradient / n


def bg_nbd_log_likelihood(
    params: Mapping[str, float], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """BG/NBD log-likelihood of every customer (Fader, Hardie & Lee 2005)."""
    values = _params(params, BG_NBD_PARAMS)
    data = _BgNbdData.of(*_validate_rft(frequency, recency, T))
    alive, dropped, _, _ = _bg_nbd_log_terms(values, data)
    return np.logaddexp(alive, dropped)[data.inverse]


class NotIdentified(RuntimeError):
    """The month's data do not identify the model: no start converged, a parameter ran to the edge of the search
    range, or the likelihood is flat along some direction at its best optimum (a maximum on the edge of the
    parameter space). The message names the model, the point reached and why."""


def fit_bg_nbd(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> dict[str, float]:
    """Maximum-likelihood BG/NBD parameters ``{r, alpha, a, b}`` (alpha in the time unit of the inputs).

    The search runs from each of three fixed starts (:data:`BG_NBD_STARTS`, alpha scaled to the data) and keeps
    the highest likelihood, so the result is a function of the data alone: the same whatever was fitted before.

    Raises :class:`NotIdentified` (a RuntimeError) if no start converges, a parameter runs off to 1e8 times (or
    1e-8 times) its default starting value, or the best optimum is not a strict maximum (:func:`_minimise`):
    without evidence of dropout (one month of history) a -> 0 and b is free; without evidence of heterogeneity
    in dropout a and b grow together without bound. ValueError for data that cannot be fitted at all.
    """
    x, t_x, T_ = _validate_rft(frequency, recency, T)
    _require_customers(len(x), "fit_bg_nbd")
    if x.sum() == 0:
        raise ValueError("no customer has repeat purchases (frequency is 0 everywhere): nothing to fit")
    if T_.sum() == 0:
        raise ValueError("T is 0 for every customer: there is no observation time to fit on")
    data = _BgNbdData.of(x, t_x, T_)
    # alpha = r / (observed repeat purchase rate) puts each start on the scale of the time unit.
    rate = x.sum() / T_.sum()
    starts = [np.log([r, r / rate, a, b]) for r, a, b in BG_NBD_STARTS]
    same_day = int(((x > 0) & (t_x == 0)).sum())
    hint = (
        f"; {same_day} customer(s) have repeat purchases at recency 0, which lets the likelihood grow "
        "without bound as alpha -> 0: measure recency and T in a finer time unit"
        if same_day
        else ""
    )
    log_params = _minimise(lambda p: _bg_nbd_objective(p, data), starts, "BG/NBD", BG_NBD_PARAMS, hint)
    return dict(zip(BG_NBD_PARAMS, np.exp(log_params).tolist(), strict=True))


def _log_odds_dropped(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """log P(dropped out) - log P(alive) given the history; -inf for x = 0."""
    r, alpha, a, b = params
    log_odds = np.full_like(x, -np.inf)
    repeat = x > 0
    xr = x[repeat]
    log_odds[repeat] = (
        np.log(a) - np.log(b + xr - 1) + (r + xr) * (np.log(alpha + T[repeat]) - np.log(alpha + t_x[repeat]))
    )
    return log_odds


def p_alive(
    params: Mapping[str, float], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """Probability that each customer is still active at T; exactly 1 without repeat purchases.

    Bayes' rule on the two likelihood terms (Fader, Hardie & Lee 2008).
    """
    values = _params(params, BG_NBD_PARAMS)
    x, t_x, T_ = _validate_rft(frequency, recency, T)
    return expit(-_log_odds_dropped(values, x, t_x, T_))


def _alive_expected_orders(params: np.ndarray, t: float, x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Expected purchases in (T, T + t] of a customer known to be alive at T (eq. 10 without P(alive)).

    Two removable singularities are bridged by linear interpolation between points _NEAR_SINGULAR away
    on either side: a = 1 (eq. 10 is 0/0 there) and r - a a whole number (then c - a - b of the
    hypergeometric function is a whole number, where scipy's hyp2f1 returns NaN for large x).
    """
    r, a = params[0], params[2]
    if abs(a - 1) < _NEAR_SINGULAR:
        return _interpolate(params, 2, 1.0, t, x, T)
    whole = round(r - a)
    if abs(r - a - whole) < _NEAR_SINGULAR:
        return _interpolate(params, 0, a + whole, t, x, T)
    return _alive_expected_orders_formula(params, t, x, T)


def _interpolate(
    params: np.ndarray, which: int, centre: float, t: float, x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """_alive_expected_orders_formula interpolated in params[which] between centre -+ _NEAR_SINGULAR."""
    low, high = params.copy(), params.copy()
    low[which], high[which] = centre - _NEAR_SINGULAR, centre + _NEAR_SINGULAR
    weight = (params[which] - low[which]) / (high[which] - low[which])
    below = _alive_expected_orders_formula(low, t, x, T)
    above = _alive_expected_orders_formula(high, t, x, T)
    return (1 - weight) * below + weight * above


def _alive_expected_orders_formula(params: np.ndarray, t: float, x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Eq. 10 without P(alive), with the Euler-transformed hypergeometric function (module docstring).

    (a + b + x - 1) / (a - 1) * [1 - ((alpha + T) / (alpha + T + t))^(a - 1) 2F1(a + b - 1 - r, a - 1;
    a + b + x - 1; t / (alpha + T + t))].
    """
    r, alpha, a, b = params
    c = a + b + x - 1
    log_one_minus_z = np.log(alpha + T) - np.log(alpha + T + t)
    z = t / (alpha + T + t)
    tail = np.exp((a - 1) * log_one_minus_z) * hyp2f1(a + b - 1 - r, a - 1, c, z)
    return c / (a - 1) * (1 - tail)


def expected_orders(
    params: Mapping[str, float], t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """Expected number of purchases of each customer in (T, T + t] given the history (eq. 10).

    ``t`` is a single non-negative horizon in the time unit of the inputs. Raises FloatingPointError if
    scipy's hypergeometric function returns a non-finite value (not seen over realistic ranges).
    """
    values = _params(params, BG_NBD_PARAMS)
    x, t_x, T_ = _validate_rft(frequency, recency, T)
    if not (np.isscalar(t) and np.isfinite(t) and t >= 0):
        raise ValueError(f"t = {t!r} must be a single finite, non-negative number")
    return _weighted_expected_orders(values, np.array([float(t)]), np.ones(1), x, t_x, T_)


def discounted_expected_orders(
    params: Mapping[str, float],
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    horizon: int,
    period_length: float,
    annual_discount_rate: float,
    periods_per_year: float,
) -> np.ndarray:
    """Expected purchases over ``horizon`` periods, each period's purchases discounted to T.

    Sum over k = 1..horizon of [E(k L) - E((k-1) L)] / (1 + annual_discount_rate) ** (k / periods_per_year)
    with L = period_length and E = :func:`expected_orders`; e.g. days as time unit, period_length 30.4375,
    horizon 12 and periods_per_year 12 for one year in months, discounted at the end of each month.
    """
    values = _params(params, BG_NBD_PARAMS)
    x, t_x, T_ = _validate_rft(frequency, recency, T)
    if not (isinstance(horizon, int | np.integer) and horizon >= 1):
        raise ValueError(f"horizon = {horizon!r} must be a positive whole number of periods")
    for name, value in (("period_length", period_length), ("periods_per_year", periods_per_year)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} = {value!r} must be finite and positive")
    if not (np.isfinite(annual_discount_rate) and annual_discount_rate >= 0):
        raise ValueError(f"annual_discount_rate = {annual_discount_rate!r} must be finite and non-negative")
    k = np.arange(1, horizon + 1)
    discount = (1.0 + annual_discount_rate) ** (-k / periods_per_year)
    return _weighted_expected_orders(values, k * float(period_length), discount, x, t_x, T_)


def _weighted_expected_orders(
    params: np.ndarray,
    horizons: np.ndarray,
    weights: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """Sum over k of weights[k] * (purchases expected in (T + horizons[k - 1], T + horizons[k]]).

    The period before the first horizon starts at T.

    P(alive) is common to all periods and the alive part depends on (x, T) only, so the sum is formed once
    per unique (x, T) and then multiplied by each customer's P(alive).
    """
    first, inverse, _ = _group(x, T)
    cumulative = [np.zeros(len(first))]
    cumulative += [_alive_expected_orders(params, float(h), x[first], T[first]) for h in horizons]
    alive = weights @ np.diff(cumulative, axis=0)
    # Rounding can make the result a hair below 0 for tiny horizons; the exact value is >= 0.
    result = np.maximum(alive[inverse] * expit(-_log_odds_dropped(params, x, t_x, T)), 0.0)
    bad = ~np.isfinite(result)
    if bad.any():
        i = int(np.argmax(bad))
        raise FloatingPointError(
            f"expected purchases are not finite for customer {i} (frequency {x[i]:g}, T {T[i]:g}) with "
            f"params {dict(zip(BG_NBD_PARAMS, params.tolist(), strict=True))}: scipy's hyp2f1 failed"
        )
    return result


# ---------------------------------------------------------------------------------------------------------
# Gamma-Gamma
# ---------------------------------------------------------------------------------------------------------


def _gamma_gamma_objective(log_params: np.ndarray, data: _GammaGammaData) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood per repeat customer and its gradient with respect to log-parameters."""
    params = np.exp(log_params)
    p, q, v = params
    n = len(data.x)
    px = p * data.x_values
    log_total = np.log(data.xm + v)  # log(x m + v) per customer
    inverse_total = 1.0 / (data.xm + v)
    x_log_total = data.x @ log_total
    sum_log_total = log_total.sum()
    log_lik = (
        data.x_counts @ (gammaln(px + q) - gammaln(px))
        - n * gammaln(q)
        + n * q * np.log(v)
        + p * data.sum_x_log_xm
        - data.sum_log_m
        - p * x_log_total
        - q * sum_log_total
    )
    d_p = data.x_counts @ (data.x_values * (digamma(px + q) - digamma(px))) + data.sum_x_log_xm - x_log_total
    d_q = data.x_counts @ digamma(px + q) - n * digamma(q) + n * np.log(v) - sum_log_total
    d_v = n * q / v - p * (data.x @ inverse_total) - q * inverse_total.sum()
    gradient = np.array([d_p, d_q, d_v]) * params
    return -float(log_lik) / n, -gradient / n


def gamma_gamma_log_likelihood(
    params: Mapping[str, float], frequency: ArrayLike, monetary_value: ArrayLike
) -> np.ndarray:
    """Gamma-Gamma log-likelihood of every customer's mean repeat spend; 0 for customers without repeats."""
    p, q, v = _params(params, GAMMA_GAMMA_PARAMS)
    x, m = _validate_fm(frequency, monetary_value)
    result = np.zeros_like(x)
    repeat = x > 0
    x, m = x[repeat], m[repeat]
    px = p * x
    result[repeat] = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(x * m + v)
    )
    return result


def fit_gamma_gamma(frequency: ArrayLike, monetary_value: ArrayLike) -> dict[str, float]:
    """Maximum-likelihood Gamma-Gamma parameters ``{p, q, v}`` from customers with repeat purchases.

    ``monetary_value`` is the mean value of each customer's repeat purchases; customers with frequency 0
    are ignored. The model assumes spend per order is independent of purchase frequency. The search runs from
    each of three fixed starts (:data:`GAMMA_GAMMA_STARTS`, v scaled to the data) and keeps the highest
    likelihood; :class:`NotIdentified` as for :func:`fit_bg_nbd`.
    """
    x, m = _validate_fm(frequency, monetary_value)
    data = _GammaGammaData.of(x, m)
    _require_customers(len(data.x), "fit_gamma_gamma (customers with repeat purchases)")
    # v such that the population mean order value p v / (q - 1) is the observed mean repeat spend.
    mean = data.xm.sum() / data.x.sum()
    starts = [np.log([p, q, mean * (q - 1) / p]) for p, q in GAMMA_GAMMA_STARTS]
    log_params = _minimise(
        lambda p: _gamma_gamma_objective(p, data), starts, "Gamma-Gamma", GAMMA_GAMMA_PARAMS
    )
    return dict(zip(GAMMA_GAMMA_PARAMS, np.exp(log_params).tolist(), strict=True))


# The population mean spend per order (what a customer without repeat purchases is expected to spend): the model's
# p v / (q - 1) when q > MODEL_MEAN_MIN_Q, else the observed mean of the repeat customers' mean spends.
MODEL_MEAN_MIN_Q = 2.0


@dataclass(frozen=True)
class PopulationMean:
    """The population mean spend per order and the rule that gave it: ``model`` (p v / (q - 1)) or ``observed``
    (the mean over repeat customers of their mean spend)."""

    value: float
    rule: str


def population_mean_spend(
    params: Mapping[str, float], frequency: ArrayLike, monetary_value: ArrayLike
) -> PopulationMean:
    """The mean spend per order of the population, for customers whose own spend the model has not seen.

    Gamma-Gamma's mean is p v / (q - 1) (Fader & Hardie 2013): spend per order is Gamma(p, nu) and nu is
    Gamma(q, v), so the population's mean spend p / nu has mean p v / (q - 1) when q > 1 and variance
    p^2 v^2 / ((q - 1)^2 (q - 2)) when q > 2. Below q = 2 the fitted population has no finite variance of mean
    spend: its mean is carried by a tail beyond the data, and it explodes as q -> 1 (the demo's 2024-11, q = 1.003,
    gave 179,341 against 43-45k either side, where the repeat customers' mean spend is 3,300). There the model's
    mean is not used: the observed mean of the repeat customers' mean spends is, which estimates the same quantity
    without the model (E(m | x) = p v / (q - 1) for every x under the model) and stays within the data. Where
    q > 2 (CDNOW: 3.74) the model's mean is kept, so the published CDNOW figures are reproduced.
    """
    p, q, v = _params(params, GAMMA_GAMMA_PARAMS)
    x, m = _validate_fm(frequency, monetary_value)
    if q > MODEL_MEAN_MIN_Q:
        return PopulationMean(p * v / (q - 1), "model")
    repeat = x > 0
    if not repeat.any():
        raise ValueError("population_mean_spend needs customers with repeat purchases when q <= 2")
    return PopulationMean(float(m[repeat].mean()), "observed")


def expected_spend(
    params: Mapping[str, float],
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    population_mean: float | None = None,
) -> np.ndarray:
    """Expected value of each customer's future orders, E(M | x, m) (Fader & Hardie 2013).

    For a customer with repeat purchases, the posterior mean p (v + x m) / (p x + q - 1): for q > 1 a weighted
    mean of the population mean v p / (q - 1) and the customer's own mean m, with weight p x / (p x + q - 1) on m;
    it needs p x + q > 1. For x = 0, the population mean: ``population_mean`` when given (see
    :func:`population_mean_spend`), else the model's v p / (q - 1), which needs q > 1.
    """
    p, q, v = _params(params, GAMMA_GAMMA_PARAMS)
    x, m = _validate_fm(frequency, monetary_value)
    repeat = x > 0
    if population_mean is None and (~repeat).any():
        if q <= 1:
            raise ValueError(
                f"expected_spend needs q > 1 (the mean spend is infinite otherwise), got q = {q:g}"
            )
        population_mean = p * v / (q - 1)
    if (p * x[repeat] + q <= 1).any():
        raise ValueError(
            f"expected_spend needs p x + q > 1 for every repeat customer, got p = {p:g}, q = {q:g}"
        )
    result = np.full_like(x, np.nan if population_mean is None else float(population_mean))
    result[repeat] = p * (v + x[repeat] * m[repeat]) / (p * x[repeat] + q - 1)
    return result


# ---------------------------------------------------------------------------------------------------------
# Optimisation
# ---------------------------------------------------------------------------------------------------------


def one_blas_thread() -> threadpool_limits:
    """A context in which numpy's BLAS uses one thread (restored on exit).

    The fits' dot products are of 10^4-10^6 elements: spread over threads they gain nothing on an idle machine and
    lose 10-50x when the other cores are busy (each thread waits for a core). Scoped to the block, not a process
    setting, so the rest of a run keeps its threads; one thread also makes the sums' rounding the same on every
    machine, whatever its number of cores.
    """
    return threadpool_limits(limits=1, user_api="blas")


def _minimise(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    starts: list[np.ndarray],
    model: str,
    names: tuple[str, ...],
    hint: str = "",
) -> np.ndarray:
    """The best optimum, over log-parameters, of L-BFGS-B with the analytic gradient from each of ``starts``,
    the contending ones polished (:func:`_contenders`, :func:`_polish`); :class:`NotIdentified` unless it is a
    strict maximum inside the search range.

    The search range is +-ln(1e8) around the first start (the default one) for every start. The best optimum is
    the lowest objective among the starts that converged (the first of equals): it does not depend on anything but
    the data. It is identified when it lies inside the range, the gradient vanishes there (below _MAX_GRADIENT)
    and the likelihood falls away from it in every direction (:func:`_curvature` above _MIN_CURVATURE). BLAS runs
    on one thread (:func:`one_blas_thread`).
    The objective is a mean per customer, so the tolerances mean the same for any number of customers; they leave
    an optimisation error far below the sampling error of the estimates.
    """
    bounds = [(s - _LOG_SEARCH_RANGE, s + _LOG_SEARCH_RANGE) for s in starts[0]]
    searched = []
    failures = []
    with one_blas_thread():
        for start in starts:
            result = minimize(
                objective, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 1000}
            )
            if result.success:
                searched.append(result)
            else:
                reached = dict(zip(names, np.exp(result.x).round(8).tolist(), strict=True))
                failures.append(f"{result.message} (after {result.nit} iterations, at {reached})")
        if not searched:
            raise NotIdentified(f"{model} fit did not converge from any start: {'; '.join(failures)}{hint}")
        found = [(objective(x)[0], x) for x in (_polish(objective, r, bounds) for r in _contenders(searched))]
        best = min(found, key=lambda candidate: candidate[0])[1]
        at = dict(zip(names, [float(f"{v:.6g}") for v in np.exp(best)], strict=True))
        for name, value, (low, high) in zip(names, best, bounds, strict=True):
            if min(value - low, high - value) < 1e-6:
                raise NotIdentified(
                    f"{model} fit did not converge: {name} ran to {np.exp(value):g}, the edge of the search "
                    f"range, so the data do not identify it{hint}"
                )
        value, slope = objective(best)
        gradient = float(np.abs(slope).max())
        if gradient > _MAX_GRADIENT:
            raise NotIdentified(
                f"{model} has no maximum inside the parameter space for these data: the likelihood still "
                f"rises at the best point reached {at} (gradient {gradient:.2g} per customer){hint}"
            )
        curvature, flattest = _curvature(objective, best)
        rise = _rise_along(objective, best, value, flattest, bounds) if curvature > _MIN_CURVATURE else None
    if curvature <= _MIN_CURVATURE:
        raise NotIdentified(
            f"{model} is not identified by these data: the likelihood is flat along a direction of its "
            f"parameters at its best optimum {at} (smallest curvature {curvature:.2g} per customer, at most "
            f"{_MIN_CURVATURE:g}): its maximum lies on the edge of the parameter space{hint}"
        )
    if rise is not None:
        gain, distance = rise
        raise NotIdentified(
            f"{model} is not identified by these data: the likelihood still rises from its best point reached "
            f"{at} along its flattest direction ({gain:.2g} per customer higher {distance:g} log-units away): its "
            f"maximum lies on the edge of the parameter space{hint}"
        )
    return best


def _rise_along(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    base: float,
    direction: np.ndarray,
    bounds: list[tuple[float, float]],
) -> tuple[float, float] | None:
    """Where the likelihood is higher than at ``x`` (the objective ``base``) along ``direction`` (both ways, _RIDGE_DISTANCES log-units,
    inside the search range) by more than _RIDGE_TOLERANCE per customer: (how much, how far), the first found;
    None when it is lower everywhere there, as around a maximum.

    The curvature at ``x`` is a local, finite-difference figure: on a ridge that rises towards the edge of the
    parameter space (Gamma-Gamma's p -> infinity with p v fixed, on a few repeat customers) it can clear
    _MIN_CURVATURE on one machine's rounding and not on another's. The likelihood a few log-units away cannot: it is
    higher by orders of magnitude more than rounding where the ridge rises, and lower by at least half the curvature
    times the distance squared around a maximum."""
    low, high = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    for distance in _RIDGE_DISTANCES:
        for sign in (1.0, -1.0):
            point = np.clip(x + sign * distance * direction, low, high)
            gain = base - objective(point)[0]
            if gain > _RIDGE_TOLERANCE * max(1.0, abs(base)):
                return float(gain), float(sign * distance)
    return None


def _contenders(searched: list) -> list:
    """The searches' optima worth polishing: those within _CONTENDING of the lowest objective (L-BFGS-B stops
    within about 2e-9 of its optimum's value relative, and a polish gains no more), one per optimum (the lowest of
    those whose log-parameters are within _SAME_OPTIMUM of each other), in the order of the starts. Starts that
    reach one optimum, as on any data that identify the model, cost one polish."""
    lowest = min(float(r.fun) for r in searched)
    kept: list = []
    for result in searched:
        if float(result.fun) > lowest + _CONTENDING * max(1.0, abs(lowest)):
            continue
        twin = next((i for i, k in enumerate(kept) if np.abs(k.x - result.x).max() < _SAME_OPTIMUM), None)
        if twin is None:
            kept.append(result)
        elif float(result.fun) < float(kept[twin].fun):
            kept[twin] = result
    return kept


def _curvature(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]], x: np.ndarray
) -> tuple[float, np.ndarray]:
    """The smallest eigenvalue of the objective's Hessian at ``x``, from central differences of its gradient, and
    its eigenvector (the flattest direction)."""
    hessian = np.empty((len(x), len(x)))
    for i in range(len(x)):
        step = np.zeros(len(x))
        step[i] = _CURVATURE_STEP
        hessian[:, i] = (objective(x + step)[1] - objective(x - step)[1]) / (2 * _CURVATURE_STEP)
    values, vectors = np.linalg.eigh((hessian + hessian.T) / 2)
    return float(values[0]), vectors[:, 0]


def _polish(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]], found, bounds: list[tuple[float, float]]
) -> np.ndarray:
    """From L-BFGS-B's optimum ``found``: Newton steps (:func:`_newton`); where they leave a gradient above
    _POLISH_GRADIENT (the Hessian is not positive definite there, far from the optimum), L-BFGS-B with tight
    tolerances (:func:`_tight`) and Newton steps again. A likelihood that keeps rising towards the edge of the range
    (a parameter the data do not identify) is not chased further than the search went."""
    x, gradient = _newton(objective, np.asarray(found.x, dtype=float), bounds)
    if np.abs(gradient).max() > _POLISH_GRADIENT:
        x, _ = _newton(objective, _tight(objective, x, bounds), bounds)
    return x


def _newton(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    bounds: list[tuple[float, float]],
) -> tuple[np.ndarray, np.ndarray]:
    """Newton steps from ``x`` with the Hessian from forward differences of the analytic gradient (_HESSIAN_STEP),
    each taken while the Hessian is positive definite, the step stays inside the search range, the largest
    gradient component shrinks and the objective gets no worse than rounding (1e-12 relative); at most
    _POLISH_STEPS, stopping after a step below 1e-10. Returns the point reached and its gradient."""
    value, gradient = objective(x)
    low, high = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    for _ in range(_POLISH_STEPS):
        hessian = np.empty((len(x), len(x)))
        for i in range(len(x)):
            shifted = x.copy()
            shifted[i] += _HESSIAN_STEP
            hessian[:, i] = (objective(shifted)[1] - gradient) / _HESSIAN_STEP
        hessian = (hessian + hessian.T) / 2
        if np.linalg.eigvalsh(hessian).min() <= 0:
            break
        step = -np.linalg.solve(hessian, gradient)
        candidate = x + step
        if ((candidate - low) < 1e-6).any() or ((high - candidate) < 1e-6).any():
            break
        new_value, new_gradient = objective(candidate)
        if not (
            new_value <= value + 1e-12 * abs(value) and np.abs(new_gradient).max() < np.abs(gradient).max()
        ):
            break
        x, value, gradient = candidate, new_value, new_gradient
        if np.abs(step).max() < 1e-10:
            break
    return x, gradient


def _tight(objective, x: np.ndarray, bounds: list[tuple[float, float]]) -> np.ndarray:
    """L-BFGS-B again from ``x`` with the polish's tolerances: its optimum when it converged inside the search
    range at least as low, else ``x``."""
    options = {"maxiter": 1000, "ftol": _POLISH_FUNCTION_TOLERANCE, "gtol": _POLISH_GRADIENT}
    tight = minimize(objective, x, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    inside = all(min(v - low, high - v) >= 1e-6 for v, (low, high) in zip(tight.x, bounds, strict=True))
    converged = tight.success or str(tight.message).startswith("ABNORMAL")
    return tight.x if converged and inside and tight.fun <= objective(x)[0] else x
