"""Derived importance of satisfaction attributes, and the importance-performance grid. Plain numpy.

Why relative weights (Johnson 2000, "A heuristic method for estimating the relative weight of predictor
variables in multiple regression", Multivariate Behavioral Research 35(1)): survey attributes are correlated
(a happy customer rates everything higher), which makes regression coefficients unstable and their squares
no decomposition of R^2. Relative weights regress the outcome on the orthogonal counterpart of the
attributes and map the explained variance back to each attribute: the weights add up to R^2 exactly, need
one eigen-decomposition (Shapley decomposition of R^2 gives nearly the same numbers but costs 2^k
regressions), and are normalised here to sum to 1.
"""

from __future__ import annotations

import numpy as np

IPA_QUADRANTS = {
    (True, False): "concentrate_here",  # high importance, low performance
    (True, True): "keep_up_the_good_work",
    (False, False): "low_priority",
    (False, True): "possible_overkill",  # low importance, high performance
}


def relative_weights(attributes: np.ndarray, overall: np.ndarray) -> tuple[np.ndarray, float]:
    """Johnson's relative weights of each attribute (columns of ``attributes``) in explaining ``overall``.

    Returns the weights normalised to sum to 1 and the R^2 they decompose.
    """
    x = np.asarray(attributes, dtype=float)
    y = np.asarray(overall, dtype=float)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"attributes must be a (responses x attributes) matrix matching overall, got {x.shape}"
        )
    if x.shape[0] <= x.shape[1] + 1:
        raise ValueError(f"{x.shape[0]} complete responses are too few for {x.shape[1]} attributes")
    if np.any(x.std(axis=0) == 0) or y.std() == 0:
        raise ValueError("an attribute or the overall score does not vary: its importance cannot be derived")
    corr = np.corrcoef(np.column_stack([x, y]), rowvar=False)
    r_xx, r_xy = corr[:-1, :-1], corr[:-1, -1]
    eigenvalues, eigenvectors = np.linalg.eigh(r_xx)
    eigenvalues = np.clip(eigenvalues, 1e-12, None)
    root = eigenvectors @ np.diag(np.sqrt(eigenvalues)) @ eigenvectors.T  # R_xx^(1/2), symmetric
    beta = np.linalg.solve(root, r_xy)  # the outcome regressed on the orthogonal counterparts
    raw = (root**2) @ (beta**2)
    r_squared = float(raw.sum())
    return raw / r_squared, r_squared


def ipa_quadrant(importance: np.ndarray, performance: np.ndarray) -> list[str]:
    """Martilla & James (1977): each attribute against the mean importance and the mean performance."""
    importance, performance = np.asarray(importance, float), np.asarray(performance, float)
    high_importance = importance >= importance.mean()
    high_performance = performance >= performance.mean()
    return [IPA_QUADRANTS[bool(i), bool(p)] for i, p in zip(high_importance, high_performance, strict=True)]
