"""Benchmark: fit the BG/NBD and Gamma-Gamma models (pipelines.domain.clv) on simulated customers.

    python -m bench.clv_fit [--customers 200000] [--seed 1] [--repeat 3] [--lifetimes] [--load N]

--customers, --seed  the simulated customers: CDNOW's estimates, recency and T in whole days (T up to 730), as in
                     the customer summary, so identical customers collapse.
--repeat K           each timing of our two fits is the median of K fits.
--lifetimes          also time lifetimes 0.11.3 (BetaGeoFitter and GammaGammaFitter, no penalty) on the same
                     customers, in a subprocess of its own virtualenv, bench/.lifetimes-venv (gitignored), which
                     is created on first use with pip and the pins of LIFETIMES_PINS (lifetimes needs an older
                     numpy, scipy and pandas than the project; about a minute); prints its seconds, how many times
                     faster ours are (the goal: 10x) and how far apart the estimates are.
--load N             also time our fits while N busy processes (2 keeps both cores of this machine busy) run,
                     and print the idle time, the loaded time and their ratio (the goal: at most 1.5).
Lifetimes and the idle timing run before the load starts. The last line repeats the figures as key=value pairs
for scripts: clv_customers, clv_fit_seconds (idle), lifetimes_fit_seconds, lifetimes_speedup,
clv_fit_loaded_seconds, clv_load_ratio (the last four with their options only).
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from pipelines.domain.clv import fit_bg_nbd, fit_gamma_gamma

# CDNOW estimates of Fader, Hardie & Lee (2005): BG/NBD per week (alpha converted to days), Gamma-Gamma.
BG_NBD_TRUTH = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}
GAMMA_GAMMA_TRUTH = {"p": 6.25, "q": 3.74, "v": 15.44}
MAX_DAYS = 730
# What lifetimes 0.11.3 (2020) runs with on Python 3.11: the last pandas 1.x, a numpy and scipy of its time.
LIFETIMES_PINS = (
    "lifetimes==0.11.3",
    "numpy==1.23.5",
    "pandas==1.5.3",
    "scipy==1.10.1",
    "autograd==1.5",
    "dill==0.4.1",
)
LIFETIMES_VENV = Path(__file__).resolve().parent / ".lifetimes-venv"
LIFETIMES_SCRIPT = Path(__file__).resolve().parent / "lifetimes_fit.py"


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


def fit_both(customers: tuple[np.ndarray, ...]) -> tuple[float, float, dict[str, float], dict[str, float]]:
    """Our two fits: (BG/NBD seconds, Gamma-Gamma seconds, BG/NBD estimates, Gamma-Gamma estimates)."""
    frequency, recency, T, monetary_value = customers
    started = time.perf_counter()
    bg_nbd = fit_bg_nbd(frequency, recency, T)
    bg_nbd_done = time.perf_counter()
    gamma_gamma = fit_gamma_gamma(frequency, monetary_value)
    return bg_nbd_done - started, time.perf_counter() - bg_nbd_done, bg_nbd, gamma_gamma


def median_seconds(customers: tuple[np.ndarray, ...], repeat: int) -> float:
    """The median time of both our fits over ``repeat`` runs."""
    return statistics.median(sum(fit_both(customers)[:2]) for _ in range(repeat))


def lifetimes_python() -> Path:
    """The Python of bench/.lifetimes-venv, created (or re-created when its pins changed) with LIFETIMES_PINS."""
    python = LIFETIMES_VENV / "bin" / "python"
    stamp = LIFETIMES_VENV / ".installed"
    wanted = "\n".join(LIFETIMES_PINS)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"== creating {LIFETIMES_VENV} with {' '.join(LIFETIMES_PINS)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(LIFETIMES_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *LIFETIMES_PINS], check=True)
    stamp.write_text(wanted)
    return python


def fit_lifetimes(customers: tuple[np.ndarray, ...]) -> dict:
    """lifetimes' two fits on the same customers, in its own virtualenv: seconds and estimates."""
    python = lifetimes_python()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "customers.npz"
        frequency, recency, T, monetary_value = customers
        np.savez(path, frequency=frequency, recency=recency, T=T, monetary_value=monetary_value)
        done = subprocess.run(
            [str(python), str(LIFETIMES_SCRIPT), str(path)], check=True, capture_output=True, text=True
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def busy(processes: int) -> Iterator[None]:
    """``processes`` Python processes spinning on a core each for the duration of the block."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        time.sleep(1.0)  # let them get going
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def main() -> None:
    """Simulate, fit, compare; print timings and estimates."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--customers", type=int, default=200_000, help="simulated customers (default 200000)")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="our fits timed as the median of this many")
    parser.add_argument(
        "--lifetimes", action="store_true", help="also time lifetimes 0.11.3 on the same data"
    )
    parser.add_argument("--load", type=int, default=0, metavar="N", help="also time under N busy processes")
    args = parser.parse_args()

    start = time.perf_counter()
    customers = simulate(args.customers, args.seed)
    simulated = time.perf_counter()
    bg_seconds, gg_seconds, bg_nbd, gamma_gamma = fit_both(customers)
    repeat = int((customers[0] > 0).sum())
    print(f"simulate        {simulated - start:6.2f} s  ({args.customers} customers, {repeat} repeat)")
    print(f"fit_bg_nbd      {bg_seconds:6.2f} s  {_compare(bg_nbd, BG_NBD_TRUTH)}")
    print(f"fit_gamma_gamma {gg_seconds:6.2f} s  {_compare(gamma_gamma, GAMMA_GAMMA_TRUTH)}")
    idle = median_seconds(customers, args.repeat)
    print(f"ours, both fits {idle:6.2f} s  (idle, median of {args.repeat})")
    figures = {"clv_customers": args.customers, "clv_fit_seconds": f"{idle:.3f}"}

    if args.lifetimes:
        theirs = fit_lifetimes(customers)
        total = theirs["bg_nbd_seconds"] + theirs["gamma_gamma_seconds"]
        gap = max(
            abs(theirs[model][k] / ours[k] - 1)
            for model, ours in (("bg_nbd", bg_nbd), ("gamma_gamma", gamma_gamma))
            for k in ours
        )
        print(
            f"lifetimes 0.11.3 {total:5.2f} s  (BetaGeoFitter {theirs['bg_nbd_seconds']:.2f} s, GammaGammaFitter "
            f"{theirs['gamma_gamma_seconds']:.2f} s): ours {total / idle:.1f}x faster (goal 10x); estimates "
            f"within {gap:.1e} of ours"
        )
        figures |= {"lifetimes_fit_seconds": f"{total:.3f}", "lifetimes_speedup": f"{total / idle:.1f}"}

    if args.load:
        with busy(args.load):
            loaded = median_seconds(customers, args.repeat)
        print(
            f"ours under load {loaded:6.2f} s  ({args.load} busy processes): {loaded / idle:.2f}x the idle "
            f"{idle:.2f} s (goal at most 1.5x)"
        )
        figures |= {"clv_fit_loaded_seconds": f"{loaded:.3f}", "clv_load_ratio": f"{loaded / idle:.2f}"}
    print(" ".join(f"{key}={value}" for key, value in figures.items()))


def _compare(estimates: dict[str, float], truth: dict[str, float]) -> str:
    """Estimates next to the simulated truth."""
    return "  ".join(f"{name}={estimates[name]:.4g} (true {truth[name]:.4g})" for name in truth)


if __name__ == "__main__":
    main()
