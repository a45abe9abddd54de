"""The satisfaction-retention link: a logistic regression of a customer staying active on the satisfaction index
and segment, fitted by maximum likelihood, and the retention probability it implies. Plain numpy and scipy.

The model (docs/DESIGN.md, "Satisfaction and retention"): for customer i,
logit P(active in the next 12 months) = b0 + b1 x index_i / 10 + sum over segments s (but the baseline) of c_s x
[segment_i = s]. The baseline is the first segment in sort order, so the terms of a month do not depend on its
data's order. An association in the data, not a proven cause.

Why Newton-Raphson on the exact Hessian (statsmodels is not a dependency): the log-likelihood of a logistic
regression is concave, and with the canonical link the observed information X'WX is also the expected one, so
the iteration that maximises it gives the standard errors at the same time (the inverse of that matrix at the
optimum). It converges in a handful of steps wherever a finite maximum exists. Where none does (an outcome that
does not vary, a segment or an index that separates stayers from leavers), the coefficients run off towards
infinity: such data are refused before fitting when the reason can be named, and a fit whose steps have not
settled is never returned as fitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit, log_expit
from scipy.stats import norm

from pipelines.domain.clv import one_blas_thread

FITTED, NOT_FITTED = "fitted", "not_fitted"
INTERCEPT = "intercept"
INDEX_TERM = "satisfaction_index_per_10"
SEGMENT_TERM_PREFIX = "segment:"
# The index coefficient is per 10 points of the 0-100 index: a change a survey can show, and a coefficient of order 1.
INDEX_UNIT = 10.0
MIN_CUSTOMERS = 10
CONFIDENCE = 0.95
_Z = float(norm.ppf(0.5 + CONFIDENCE / 2))  # 1.959963984540054
# Newton's iteration stops when no coefficient moves by more than _STEP_TOLERANCE: a finite maximum is reached to
# rounding within ten steps from the start below. Along a separating direction every step moves a coefficient by
# about one unit for ever (the likelihood keeps rising towards 0), so such a fit never settles; _MAX_STEPS bounds it.
_STEP_TOLERANCE = 1e-10
_MAX_STEPS = 100
# Fitted probabilities this close to 0 or 1 at a "maximum" mean the likelihood is still climbing towards an edge:
# exp(-30) ~ 1e-13, far beyond what 12 months of a customer base can show.
_MAX_LINEAR_PREDICTOR = 30.0


def segment_term(segment: str) -> str:
    """The name of a segment's term (its log-odds against the baseline segment)."""
    return f"{SEGMENT_TERM_PREFIX}{segment}"


@dataclass(frozen=True)
class RetentionFit:
    """One fit: ``status`` FITTED with its terms' coefficients and standard errors (the inverse observed
    information) and its log-likelihood, or NOT_FITTED with ``reason`` and no estimates. ``terms`` are the
    intercept, the index per 10 points and one term per segment but the baseline, in that order."""

    status: str
    reason: str | None
    customers: int
    retained: int
    baseline_segment: str | None
    terms: tuple[str, ...]
    coefficients: tuple[float, ...] | None = None
    std_errors: tuple[float, ...] | None = None
    log_likelihood: float | None = None

    @property
    def segments(self) -> tuple[str, ...]:
        """The segments the fit knows: the baseline and those with a term."""
        named = tuple(t[len(SEGMENT_TERM_PREFIX) :] for t in self.terms if t.startswith(SEGMENT_TERM_PREFIX))
        return ((self.baseline_segment,) if self.baseline_segment is not None else ()) + named

    def intervals(self) -> tuple[tuple[float, float], ...]:
        """The Wald interval of each coefficient at CONFIDENCE: coefficient -+ z x standard error."""
        self._require_fitted()
        return tuple(
            (c - _Z * s, c + _Z * s) for c, s in zip(self.coefficients, self.std_errors, strict=True)
        )

    def coefficient(self, term: str) -> float:
        """The coefficient of ``term``."""
        self._require_fitted()
        if term not in self.terms:
            raise ValueError(f"the fit has no term {term!r}; its terms are {list(self.terms)}")
        return self.coefficients[self.terms.index(term)]

    def _require_fitted(self) -> None:
        if self.status != FITTED:
            raise ValueError(f"the satisfaction-retention link was not fitted: {self.reason}")

    @classmethod
    def from_published(cls, rows: Mapping[str, ArrayLike]) -> RetentionFit:
        """The fit of one as-of month from its rows of marts.satisfaction_retention_fit (a frame or a mapping of
        columns: term, coefficient, std_error, fit_status, reason, customers, retained_customers,
        baseline_segment, log_likelihood), so that a scenario computes with exactly what was published."""
        terms = [str(t) for t in np.asarray(rows["term"], dtype=object)]
        if not terms:
            raise ValueError("no rows: the as-of month has no satisfaction-retention fit")

        def one(column: str):
            values = list(dict.fromkeys(np.asarray(rows[column], dtype=object).tolist()))
            if len(values) != 1:
                raise ValueError(f"the rows hold several values of {column} ({values}): pass one as-of month")
            return values[0]

        status = one("fit_status")
        fitted = status == FITTED
        return cls(
            status=status,
            reason=None if fitted else one("reason"),
            customers=int(one("customers")),
            retained=int(one("retained_customers")),
            baseline_segment=one("baseline_segment"),
            terms=tuple(terms),
            coefficients=tuple(float(v) for v in np.asarray(rows["coefficient"], float)) if fitted else None,
            std_errors=tuple(float(v) for v in np.asarray(rows["std_error"], float)) if fitted else None,
            log_likelihood=float(one("log_likelihood")) if fitted else None,
        )


def _validated(
    index: ArrayLike, segment: ArrayLike, retained: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index, segment, retained) as arrays of one length: an index in 0..100, a segment, a 0/1 outcome."""
    x = np.atleast_1d(np.asarray(index, dtype=float))
    s = np.atleast_1d(np.asarray(segment, dtype=object))
    y = np.atleast_1d(np.asarray(retained))
    if not (x.ndim == s.ndim == y.ndim == 1) or not (len(x) == len(s) == len(y)):
        raise ValueError(f"index, segment and retained differ in shape: {x.shape}, {s.shape}, {y.shape}")
    bad = ~np.isfinite(x) | (x < 0) | (x > 100)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"index[{i}] = {x[i]:g} is not a satisfaction index (a number in 0..100)")
    missing = np.array([not isinstance(v, str) for v in s], dtype=bool)
    if missing.any():
        i = int(np.argmax(missing))
        raise ValueError(f"segment[{i}] = {s[i]!r} is not a segment name")
    outcome = np.isin(y, (0, 1, True, False))
    if not outcome.all():
        i = int(np.argmax(~outcome))
        raise ValueError(f"retained[{i}] = {y[i]} is not 0 or 1")
    return x, s.astype(str), y.astype(float)


def _design(index: np.ndarray, segment: np.ndarray, baseline: str, others: list[str]) -> np.ndarray:
    """Columns: 1, index / INDEX_UNIT, then one 0/1 column per segment of ``others``."""
    return np.column_stack(
        [np.ones(len(index)), index / INDEX_UNIT, *[(segment == s).astype(float) for s in others]]
    )


def log_likelihood(coefficients: ArrayLike, design: np.ndarray, retained: np.ndarray) -> float:
    """Bernoulli log-likelihood of ``retained`` under logit P = design @ coefficients."""
    eta = design @ np.asarray(coefficients, dtype=float)
    return float(retained @ log_expit(eta) + (1 - retained) @ log_expit(-eta))


def fit_retention(index: ArrayLike, segment: ArrayLike, retained: ArrayLike) -> RetentionFit:
    """The maximum-likelihood fit of logit P(retained) on the index (per 10 points) and segment dummies.

    NOT_FITTED (never an error, never a fit that has not converged) with the reason when: fewer than MIN_CUSTOMERS
    customers; the outcome does not vary (everybody or nobody stayed); the index does not vary; a segment's
    customers all stayed or all left (quasi-complete separation: its coefficient has no finite maximum); or the
    iteration does not settle at a finite maximum (the index separates stayers from leavers). ValueError for input
    that is not an index, a segment and a 0/1 outcome.
    """
    x, s, y = _validated(index, segment, retained)
    n, events = len(y), int(y.sum())
    segments = sorted(set(s.tolist()))
    baseline = segments[0] if segments else None
    others = segments[1:]
    terms = (INTERCEPT, INDEX_TERM, *[segment_term(v) for v in others])

    def not_fitted(reason: str) -> RetentionFit:
        return RetentionFit(NOT_FITTED, reason, n, events, baseline, terms)

    if n < MIN_CUSTOMERS:
        return not_fitted(f"{n} customer(s): fewer than the {MIN_CUSTOMERS} a fit needs")
    if events in (0, n):
        who = "every customer" if events else "no customer"
        return not_fitted(f"{who} of the {n} stayed active: the outcome does not vary")
    if np.ptp(x) == 0:
        return not_fitted(f"the satisfaction index is {x[0]:g} for every customer: it does not vary")
    for name in segments:
        inside = y[s == name]
        if inside.min() == inside.max():
            who = "all" if inside[0] else "none"
            return not_fitted(
                f"segment {name}: {who} of its {len(inside)} customer(s) stayed active (quasi-complete "
                "separation: the segment's coefficient has no finite maximum)"
            )
    design = _design(x, s, baseline, others)
    with one_blas_thread():
        found = _newton(design, y)
    if isinstance(found, str):
        return not_fitted(found)
    beta, information = found
    covariance = np.linalg.inv(information)
    std_errors = np.sqrt(np.diag(covariance))
    return RetentionFit(
        FITTED,
        None,
        n,
        events,
        baseline,
        terms,
        tuple(beta.tolist()),
        tuple(std_errors.tolist()),
        log_likelihood(beta, design, y),
    )


def _newton(design: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | str:
    """(coefficients, observed information) at the maximum of the likelihood, or why there is none.

    Starts from the intercept at the observed log-odds and the other coefficients at 0; each step is halved
    until the likelihood does not fall (the full Newton step is taken wherever it rises, which is every step
    near the maximum)."""
    mean = y.mean()
    beta = np.zeros(design.shape[1])
    beta[0] = np.log(mean / (1 - mean))
    current = log_likelihood(beta, design, y)
    for _ in range(_MAX_STEPS):
        p = expit(design @ beta)
        score = design.T @ (y - p)
        information = design.T @ (design * (p * (1 - p))[:, None])
        try:
            step = np.linalg.solve(information, score)
        except np.linalg.LinAlgError:
            if np.max(np.abs(design @ beta)) > _MAX_LINEAR_PREDICTOR:
                # the coefficients were running off: every probability has rounded to 0 or 1, so the information is
                # exactly zero; how many steps that takes depends on the machine's rounding, not on the data
                break
            return (
                "the information matrix is singular: the terms are collinear or the likelihood has no maximum"
            )
        for _ in range(30):
            candidate = log_likelihood(beta + step, design, y)
            if candidate >= current - 1e-12 * abs(current):
                break
            step = step / 2
        beta, current = beta + step, candidate
        if np.max(np.abs(step)) < _STEP_TOLERANCE:
            if np.max(np.abs(design @ beta)) > _MAX_LINEAR_PREDICTOR:
                break
            p = expit(design @ beta)
            return beta, design.T @ (design * (p * (1 - p))[:, None])
    return (
        f"no finite maximum within {_MAX_STEPS} Newton steps: the coefficients run off (the index separates "
        "the customers who stayed active from those who did not)"
    )


def retention_probability(fit: RetentionFit, index: ArrayLike, segment: ArrayLike) -> np.ndarray:
    """P(active in the next 12 months) of customers of ``segment`` with satisfaction ``index`` under a fitted link.
    ``segment`` is one name for all, or one per index. ValueError for a fit that is NOT_FITTED, an index outside
    0..100 or a segment the fit does not know (it had no customer of it)."""
    fit._require_fitted()
    x = np.atleast_1d(np.asarray(index, dtype=float))
    s = np.broadcast_to(np.asarray(segment, dtype=object), x.shape)
    x, s, _ = _validated(x, s, np.zeros(len(x)))
    unknown = sorted(set(s.tolist()) - set(fit.segments))
    if unknown:
        raise ValueError(f"the fit has no segment {unknown}; it knows {list(fit.segments)}")
    coefficients = np.array(fit.coefficients)
    others = list(fit.segments[1:])
    return expit(_design(x, s, fit.baseline_segment, others) @ coefficients)


def retention_change(
    fit: RetentionFit, index: ArrayLike, segment: ArrayLike, index_change: ArrayLike
) -> np.ndarray:
    """The change in P(active in the next 12 months) when each customer's index moves by ``index_change`` points
    (the new index kept within 0..100, as the index is), under a fitted link: what a scenario's `satisfaction`
    lever does to retention once it has moved the index."""
    x = np.atleast_1d(np.asarray(index, dtype=float))
    moved = np.clip(x + np.broadcast_to(np.asarray(index_change, dtype=float), x.shape), 0.0, 100.0)
    return retention_probability(fit, moved, segment) - retention_probability(fit, x, segment)
