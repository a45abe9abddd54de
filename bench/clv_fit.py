"""Benchmark: fit the BG/NBD and Gamma-Gamma models (pipelines.domain.clv) on simulated customers.

Run as ``python -m bench.clv_fit --customers 1000000 --seed 1``. Recency and T are whole days (T up to
730), as in the customer summary, so identical customers collapse. Prints the seconds per step and a final
``key=value`` line for scripts.
"""

import argparse
import time

import numpy as np

from pipelines.domain.clv import fit_bg_nbd, fit_gamma_gamma

# CDNOW estimates of Fader, Hardie & Lee (2005): BG/NBD per week (alpha converted to days), Gamma-Gamma.
BG_NBD_TRUTH = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}
GAMMA_GAMMA_TRUTH = {"p": 6.25, "q": 3.74, "v": 15.44}
MAX_DAYS = 730


def simulate(customers: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Simulated (frequency, recency, T, monetary_value), recency and T in whole days."""
    rng = np.random.default_rng(seed)
    r, alpha, a, b = BG_NBD_TRUTH.values()
    T = rng.integers(1, MAX_DAYS + 1, customers).astype(float)
    purchases = rng.poisson(rng.gamma(r, 1 / alpha, customers) * T)
    # Dropout after each repeat purchase with probability p: the last repeat purchase is geometric.
    frequency = np.minimum(purchases, rng.geometric(rng.beta(a, b, customers)))
    repeat = frequency > 0
    recency = np.zeros(customers)
    # The x-th of n uniform purchase times on [0, T] is T * Beta(x, n - x + 1); whole days elapsed.
    recency[repeat] = np.floor(
        T[repeat] * rng.beta(frequency[repeat], purchases[repeat] - frequency[repeat] + 1)
    )
    p, q, v = GAMMA_GAMMA_TRUTH.values()
    nu = rng.gamma(q, 1 / v, customers)
    monetary_value = np.zeros(customers)
    monetary_value[repeat] = rng.gamma(p * frequency[repeat], 1 / nu[repeat]) / frequency[repeat]
    return frequency.astype(float), recency, T, monetary_value


def main() -> None:
    """Simulate, fit both models and print timings and estimates."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    start = time.perf_counter()
    frequency, recency, T, monetary_value = simulate(args.customers, args.seed)
    simulated = time.perf_counter()
    bg_nbd = fit_bg_nbd(frequency, recency, T)
    bg_nbd_fitted = time.perf_counter()
    gamma_gamma = fit_gamma_gamma(frequency, monetary_value)
    gamma_gamma_fitted = time.perf_counter()

    repeat = int((frequency > 0).sum())
    print(f"simulate        {simulated - start:6.2f} s  ({args.customers} customers, {repeat} repeat)")
    print(f"fit_bg_nbd      {bg_nbd_fitted - simulated:6.2f} s  {_compare(bg_nbd, BG_NBD_TRUTH)}")
    gamma_gamma_seconds = gamma_gamma_fitted - bg_nbd_fitted
    print(f"fit_gamma_gamma {gamma_gamma_seconds:6.2f} s  {_compare(gamma_gamma, GAMMA_GAMMA_TRUTH)}")
    print(f"clv_customers={args.customers} clv_fit_seconds={gamma_gamma_fitted - simulated:.2f}")


def _compare(estimates: dict[str, float], truth: dict[str, float]) -> str:
    """Estimates next to the simulated truth."""
    return "  ".join(f"{name}={estimates[name]:.4g} (true {truth[name]:.4g})" for name in truth)


if __name__ == "__main__":
    main()
