"""BG/NBD and Gamma-Gamma models (pipelines.domain.clv) against simulated customers and independent formulas."""

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import check_grad
from scipy.special import beta, betaln, gamma, hyp2f1

from pipelines.domain import clv

# Time unit: weeks. True parameters chosen so that all four are well identified by the sample below; with
# the paper's CDNOW values (r 0.24, alpha 4.41, a 0.79, b 2.43) the standard error of b is 8-11 % at 10,000
# customers, so a 10 % tolerance would fail for many seeds.
BG_NBD_TRUTH = {"r": 1.0, "alpha": 8.0, "a": 1.2, "b": 4.8}
GAMMA_GAMMA_TRUTH = {"p": 2.0, "q": 3.5, "v": 50.0}
# Even so, at 10,000 customers the standard errors (inverse observed information) are ~5.7 % for b and
# ~5.4 % for v: 10 % is under 2 standard errors (2 of 20 seeds failed). At 50,000 customers they are 2.6 %
# and 2.4 % (all others lower), so 10 % is ~4 standard errors and the test does not hinge on the seed.
RECOVERY_CUSTOMERS = 50_000
RECOVERY_TOLERANCE = 0.10


def simulate_bg_nbd(
    params: dict[str, float], T: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """(frequency, recency, T) of customers following the BG/NBD process over observation lengths T.

    lambda ~ Gamma(shape r, rate alpha) and p ~ Beta(a, b) per customer; purchases form a Poisson process
    with rate lambda while the customer is alive; after each repeat purchase the customer drops out with
    probability p. Given n Poisson events in [0, T] and dropout after the d-th (d ~ Geometric(p)), the
    customer makes x = min(n, d) repeat purchases, the last at the x-th of n uniform times.
    """
    n = len(T)
    rate = rng.gamma(params["r"], 1 / params["alpha"], n)
    dropout = rng.beta(params["a"], params["b"], n)
    events = rng.poisson(rate * T)
    frequency = np.minimum(events, rng.geometric(dropout))
    recency = np.zeros(n)
    repeat = frequency > 0
    recency[repeat] = T[repeat] * rng.beta(frequency[repeat], events[repeat] - frequency[repeat] + 1)
    return frequency.astype(float), recency, T


def simulate_gamma_gamma(
    params: dict[str, float], frequency: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Mean value of each customer's repeat purchases; 0 for customers without any.

    nu ~ Gamma(shape q, rate v) per customer, each purchase value ~ Gamma(shape p, rate nu); the sum of x
    purchases is Gamma(shape p x, rate nu).
    """
    nu = rng.gamma(params["q"], 1 / params["v"], len(frequency))
    monetary_value = np.zeros(len(frequency))
    repeat = frequency > 0
    x = frequency[repeat]
    monetary_value[repeat] = rng.gamma(params["p"] * x, 1 / nu[repeat]) / x
    return monetary_value


@pytest.fixture(scope="module")
def customers() -> dict[str, np.ndarray]:
    """Simulated customers observed for 2 to 3 years (in weeks), with the mean value of repeat purchases."""
    rng = np.random.default_rng(1)
    T = rng.uniform(104, 156, RECOVERY_CUSTOMERS)
    frequency, recency, T = simulate_bg_nbd(BG_NBD_TRUTH, T, rng)
    monetary_value = simulate_gamma_gamma(GAMMA_GAMMA_TRUTH, frequency, rng)
    return {"frequency": frequency, "recency": recency, "T": T, "monetary_value": monetary_value}


@pytest.fixture(scope="module")
def bg_nbd_fit(customers) -> dict[str, float]:
    """BG/NBD estimates on the simulated customers."""
    return clv.fit_bg_nbd(customers["frequency"], customers["recency"], customers["T"])


@pytest.fixture(scope="module")
def gamma_gamma_fit(customers) -> dict[str, float]:
    """Gamma-Gamma estimates on the simulated customers."""
    return clv.fit_gamma_gamma(customers["frequency"], customers["monetary_value"])


def _history(customers: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frequency, recency, T) of the simulated customers."""
    return customers["frequency"], customers["recency"], customers["T"]


# --- 1, 2 and 7: estimates ---------------------------------------------------------------------------------


def test_bg_nbd_recovers_the_simulated_parameters(bg_nbd_fit):
    assert bg_nbd_fit == pytest.approx(BG_NBD_TRUTH, rel=RECOVERY_TOLERANCE)


def test_gamma_gamma_recovers_the_simulated_parameters(gamma_gamma_fit, customers):
    assert (customers["frequency"] == 0).any(), "the sample should include customers the model ignores"
    assert gamma_gamma_fit == pytest.approx(GAMMA_GAMMA_TRUTH, rel=RECOVERY_TOLERANCE)


def test_both_models_recover_within_ten_percent_from_ten_thousand_customers():
    """The issue's requirement as stated: 10,000 customers, every estimate within 10 % of the truth. At this
    size the standard errors of b and v are about 5.5 %, so 10 % is under two standard errors and about one
    seed in ten misses it (measured over 20 seeds); seed 0, the first tried, passes (b at -9.9 %). The tests
    above use 50,000 customers, where 10 % is about four standard errors."""
    rng = np.random.default_rng(0)
    T = rng.uniform(104, 156, 10_000)
    frequency, recency, T = simulate_bg_nbd(BG_NBD_TRUTH, T, rng)
    monetary_value = simulate_gamma_gamma(GAMMA_GAMMA_TRUTH, frequency, rng)
    assert clv.fit_bg_nbd(frequency, recency, T) == pytest.approx(BG_NBD_TRUTH, rel=0.10)
    assert clv.fit_gamma_gamma(frequency, monetary_value) == pytest.approx(GAMMA_GAMMA_TRUTH, rel=0.10)


def test_fits_return_exactly_the_parameter_keys(bg_nbd_fit, gamma_gamma_fit):
    assert set(bg_nbd_fit) == {"r", "alpha", "a", "b"}
    assert set(gamma_gamma_fit) == {"p", "q", "v"}
    assert all(type(value) is float for value in [*bg_nbd_fit.values(), *gamma_gamma_fit.values()])


def test_bg_nbd_optimum_is_at_least_as_likely_as_the_truth(bg_nbd_fit, customers):
    at_fit = clv.bg_nbd_log_likelihood(bg_nbd_fit, *_history(customers)).sum()
    at_truth = clv.bg_nbd_log_likelihood(BG_NBD_TRUTH, *_history(customers)).sum()
    assert at_fit >= at_truth
    # ... and it is a maximum: moving any parameter by 1 % lowers the likelihood.
    for name in BG_NBD_TRUTH:
        for factor in (0.99, 1.01):
            moved = {**bg_nbd_fit, name: bg_nbd_fit[name] * factor}
            assert clv.bg_nbd_log_likelihood(moved, *_history(customers)).sum() < at_fit


def test_gamma_gamma_optimum_is_at_least_as_likely_as_the_truth(gamma_gamma_fit, customers):
    data = customers["frequency"], customers["monetary_value"]
    at_fit = clv.gamma_gamma_log_likelihood(gamma_gamma_fit, *data).sum()
    assert at_fit >= clv.gamma_gamma_log_likelihood(GAMMA_GAMMA_TRUTH, *data).sum()
    for name in GAMMA_GAMMA_TRUTH:
        for factor in (0.99, 1.01):
            moved = {**gamma_gamma_fit, name: gamma_gamma_fit[name] * factor}
            assert clv.gamma_gamma_log_likelihood(moved, *data).sum() < at_fit


def test_fit_does_not_depend_on_the_time_unit():
    """The same customers in days and in weeks give the same r, a, b and alpha scaled by 7."""
    rng = np.random.default_rng(5)
    frequency, recency, T = simulate_bg_nbd(BG_NBD_TRUTH, rng.uniform(104, 156, 5000), rng)
    weeks = clv.fit_bg_nbd(frequency, recency, T)
    days = clv.fit_bg_nbd(frequency, recency * 7, T * 7)
    assert {**days, "alpha": days["alpha"] / 7} == pytest.approx(weeks, rel=1e-3)


# --- likelihood formulas -----------------------------------------------------------------------------------


def test_bg_nbd_log_likelihood_matches_the_paper_formula():
    """The likelihood written literally (no logs), for histories small enough not to overflow."""
    r, alpha, a, b = BG_NBD_TRUTH.values()
    x = np.array([0, 1, 1, 3, 7, 7, 0])
    t_x = np.array([0.0, 5.0, 0.0, 20.0, 30.0, 30.0, 0.0])
    T = np.array([10.0, 40.0, 2.0, 20.0, 52.0, 52.0, 0.0])
    common = gamma(r + x) * alpha**r / gamma(r)
    expected = beta(a, b + x) / beta(a, b) * common / (alpha + T) ** (r + x) + np.where(
        x > 0, beta(a + 1, b + x - 1) / beta(a, b) * common / (alpha + t_x) ** (r + x), 0.0
    )
    got = clv.bg_nbd_log_likelihood(BG_NBD_TRUTH, x, t_x, T)
    np.testing.assert_allclose(got, np.log(expected), rtol=1e-12, atol=1e-14)


def test_gamma_gamma_log_likelihood_is_the_density_of_the_mean():
    """The likelihood is the density of the mean of x purchase values: it integrates to 1 (x = 3), and for
    x = 1 it is the compound-gamma (beta-prime) density of a single value."""
    p, q, v = GAMMA_GAMMA_TRUTH.values()
    mass, _ = quad(
        lambda m: np.exp(clv.gamma_gamma_log_likelihood(GAMMA_GAMMA_TRUTH, [3], [m])[0]), 0, np.inf
    )
    assert mass == pytest.approx(1.0, rel=1e-8)
    m = 42.0
    # Compound gamma: z | nu ~ Gamma(p, nu), nu ~ Gamma(q, v) gives a beta-prime density in z / v.
    density = (m / v) ** (p - 1) * (1 + m / v) ** (-p - q) / (v * beta(p, q))
    assert clv.gamma_gamma_log_likelihood(GAMMA_GAMMA_TRUTH, [1], [m])[0] == pytest.approx(np.log(density))
    assert clv.gamma_gamma_log_likelihood(GAMMA_GAMMA_TRUTH, [0, 2], [0.0, m])[0] == 0.0


# --- 6: analytic gradients ---------------------------------------------------------------------------------


def _central_differences(f, point: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Gradient of f at point by central differences (more accurate than forward differences)."""
    steps = np.eye(len(point)) * step
    return np.array([(f(point + h) - f(point - h)) / (2 * step) for h in steps])


@pytest.mark.parametrize("at", [[1.0, 8.0, 1.2, 4.8], [0.3, 2.0, 0.5, 0.9], [4.0, 60.0, 3.0, 20.0]])
def test_bg_nbd_gradient_matches_finite_differences(customers, at):
    data = clv._BgNbdData.of(*_history(customers))
    point = np.log(at)
    numeric = _central_differences(lambda p: clv._bg_nbd_objective(p, data)[0], point)
    np.testing.assert_allclose(clv._bg_nbd_objective(point, data)[1], numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("at", [[2.0, 3.5, 50.0], [0.5, 1.2, 5.0], [20.0, 10.0, 500.0]])
def test_gamma_gamma_gradient_matches_finite_differences(customers, at):
    data = clv._GammaGammaData.of(customers["frequency"], customers["monetary_value"])
    point = np.log(at)
    numeric = _central_differences(lambda p: clv._gamma_gamma_objective(p, data)[0], point)
    np.testing.assert_allclose(clv._gamma_gamma_objective(point, data)[1], numeric, rtol=1e-6, atol=1e-7)


def test_gradient_check_agrees_with_scipy_check_grad(customers):
    """scipy's forward-difference check_grad, looser because forward differences are less accurate."""
    data = clv._BgNbdData.of(*_history(customers))
    error = check_grad(
        lambda p: clv._bg_nbd_objective(p, data)[0],
        lambda p: clv._bg_nbd_objective(p, data)[1],
        np.log([0.5, 5.0, 0.8, 3.0]),
    )
    assert error < 1e-5


def test_collapsing_identical_customers_keeps_the_likelihood():
    """Whole-week data collapse to few rows; the weighted objective equals the plain per-customer mean."""
    rng = np.random.default_rng(11)
    frequency, recency, T = simulate_bg_nbd(BG_NBD_TRUTH, rng.integers(1, 53, 20_000).astype(float), rng)
    recency = np.floor(recency)
    data = clv._BgNbdData.of(frequency, recency, T)
    assert len(data.counts) < len(frequency) / 3
    per_customer = clv.bg_nbd_log_likelihood(BG_NBD_TRUTH, frequency, recency, T)
    objective, _ = clv._bg_nbd_objective(np.log(list(BG_NBD_TRUTH.values())), data)
    assert objective == pytest.approx(-per_customer.mean(), rel=1e-12)


# --- 3: P(alive) -------------------------------------------------------------------------------------------


def test_p_alive_is_one_without_repeat_purchases():
    got = clv.p_alive(BG_NBD_TRUTH, [0, 0, 0], [0, 0, 0], [0.0, 10.0, 500.0])
    assert np.all(got == 1.0)


def test_p_alive_rises_with_recency():
    recency = np.linspace(0, 52, 53)
    for frequency in (1, 4, 15):
        got = clv.p_alive(BG_NBD_TRUTH, np.full(53, frequency), recency, np.full(53, 52.0))
        assert np.all((got > 0) & (got < 1))
        assert np.all(np.diff(got) > 0)


def test_p_alive_matches_bayes_rule_on_the_likelihood_terms():
    r, alpha, a, b = BG_NBD_TRUTH.values()
    x, t_x, T = 3, 10.0, 40.0
    alive = betaln(a, b + x) - (r + x) * np.log(alpha + T)
    dropped = betaln(a + 1, b + x - 1) - (r + x) * np.log(alpha + t_x)
    expected = 1 / (1 + np.exp(dropped - alive))
    assert clv.p_alive(BG_NBD_TRUTH, [x], [t_x], [T])[0] == pytest.approx(expected, rel=1e-12)


# --- 4: expected purchases ---------------------------------------------------------------------------------

HISTORIES = {  # (frequency, recency, T) in weeks: new, lapsed, regular and very heavy customers
    "frequency": np.array([0, 0, 1, 2, 5, 10, 30, 100, 300, 300]),
    "recency": np.array([0, 0, 1, 50, 40, 100, 104, 150, 20, 155]),
    "T": np.array([0, 104, 52, 52, 52, 104, 104, 156, 156, 156]),
}


def test_expected_orders_is_zero_at_zero_and_increasing():
    horizons = np.r_[0.0, np.geomspace(0.01, 520, 40)]
    values = np.array([clv.expected_orders(BG_NBD_TRUTH, t, **HISTORIES) for t in horizons])
    assert np.all(np.isfinite(values))
    assert np.all(values[0] == 0)
    assert np.all(np.diff(values, axis=0) > 0)


@pytest.mark.parametrize(
    "params",
    [
        {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426},  # CDNOW, per day
        {"r": 2.0, "alpha": 4.0, "a": 0.8, "b": 8.0},
        {"r": 5.0, "alpha": 2.0, "a": 6.0, "b": 30.0},  # r - a whole: degenerate case of hyp2f1
        {"r": 0.5, "alpha": 100.0, "a": 0.3, "b": 0.5},  # a + b < 1
        {"r": 1.0, "alpha": 10.0, "a": 1.0, "b": 3.0},  # a = 1: eq. 10 is 0/0
    ],
)
def test_expected_orders_is_finite_and_non_negative_over_realistic_ranges(params):
    """Up to 10 years ahead for histories up to 4 years and 1000 repeat purchases (time unit: days)."""
    T = np.repeat([0.0, 1.0, 30.0, 365.0, 1460.0], 4)
    frequency = np.tile([0.0, 1.0, 100.0, 1000.0], 5)
    recency = np.where(frequency > 0, T / 2, 0.0)
    previous = np.zeros(len(T))
    for t in np.geomspace(1, 3650, 25):
        values = clv.expected_orders(params, t, frequency, recency, T)
        assert np.all(np.isfinite(values))
        assert np.all(values >= previous)
        previous = values


def _alive_expected_orders_by_integration(params: dict[str, float], t: float, x: int, T: float) -> float:
    """E[(1 - exp(-lambda p t)) / p] over the posterior lambda ~ Gamma(r + x, alpha + T), p ~ Beta(a, b + x).

    Integrating lambda out gives (1 - (1 + p t / (alpha + T))^-(r + x)) / p, integrated here against the
    Beta density numerically: a check of eq. 10 independent of the hypergeometric function.
    """
    r, alpha, a, b = params.values()
    shape, u = r + x, t / (alpha + T)

    def integrand(p: float) -> float:
        return -np.expm1(-shape * np.log1p(p * u)) / p if p > 0 else shape * u

    value, _ = quad(integrand, 0, 1, weight="alg", wvar=(a - 1, b + x - 1), epsabs=0, epsrel=1e-12)
    return value / np.exp(betaln(a, b + x))


@pytest.mark.parametrize("params", [BG_NBD_TRUTH, {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}])
@pytest.mark.parametrize(
    ("x", "t_x", "T", "t"), [(0, 0, 0, 52), (0, 0, 78, 26), (2, 30, 52, 52), (20, 90, 104, 10)]
)
def test_expected_orders_matches_numerical_integration(params, x, t_x, T, t):
    expected = (
        _alive_expected_orders_by_integration(params, t, x, T) * clv.p_alive(params, [x], [t_x], [T])[0]
    )
    assert clv.expected_orders(params, t, [x], [t_x], [T])[0] == pytest.approx(expected, rel=1e-8)


def test_expected_orders_matches_the_paper_form_of_eq_10():
    """Where scipy evaluates the paper's hypergeometric form without overflow the two forms agree."""
    r, alpha, a, b = BG_NBD_TRUTH.values()
    x, t_x, T, t = 4, 30.0, 52.0, 26.0
    z = t / (alpha + T + t)
    bracket = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
    alive = (a + b + x - 1) / (a - 1) * bracket
    expected = alive * clv.p_alive(BG_NBD_TRUTH, [x], [t_x], [T])[0]
    assert clv.expected_orders(BG_NBD_TRUTH, t, [x], [t_x], [T])[0] == pytest.approx(expected, rel=1e-10)


def test_expected_orders_of_new_customers_matches_simulation():
    """For a customer just acquired (x = t_x = T = 0), eq. 10 is the mean number of repeat purchases."""
    rng = np.random.default_rng(3)
    t, n = 52.0, 200_000
    frequency, _, _ = simulate_bg_nbd(BG_NBD_TRUTH, np.full(n, t), rng)
    expected = clv.expected_orders(BG_NBD_TRUTH, t, [0], [0], [0])[0]
    assert abs(frequency.mean() - expected) < 4 * frequency.std() / np.sqrt(n)


def test_expected_orders_is_small_for_long_silent_customers():
    got = clv.expected_orders(BG_NBD_TRUTH, 52.0, [0, 0], [0, 0], [0.0, 5200.0])
    assert got[1] < 0.02 * got[0]
    assert got[1] < 0.1


def test_discounting_lowers_expected_orders_and_vanishes_at_rate_zero():
    args = {"horizon": 12, "period_length": 30.4375 / 7, "periods_per_year": 12}
    total = clv.expected_orders(BG_NBD_TRUTH, 12 * args["period_length"], **HISTORIES)
    undiscounted = clv.discounted_expected_orders(BG_NBD_TRUTH, **HISTORIES, annual_discount_rate=0.0, **args)
    discounted = clv.discounted_expected_orders(BG_NBD_TRUTH, **HISTORIES, annual_discount_rate=0.1, **args)
    np.testing.assert_allclose(undiscounted, total, rtol=1e-10)
    assert np.all(discounted < total)
    # Purchases are spread over the year, so the discount is less than a full year's.
    assert np.all(discounted > total / 1.1)


def test_each_period_is_discounted_at_its_end():
    history = {"frequency": [3], "recency": [20.0], "T": [40.0]}
    one, two = (clv.expected_orders(BG_NBD_TRUTH, t, **history)[0] for t in (4.0, 8.0))
    got = clv.discounted_expected_orders(
        BG_NBD_TRUTH, **history, horizon=2, period_length=4.0, annual_discount_rate=0.2, periods_per_year=13
    )
    assert got[0] == pytest.approx(one / 1.2 ** (1 / 13) + (two - one) / 1.2 ** (2 / 13), rel=1e-12)


# --- Gamma-Gamma expected spend ----------------------------------------------------------------------------


def test_expected_spend_weighs_the_customer_mean_against_the_population_mean():
    p, q, v = GAMMA_GAMMA_TRUTH.values()
    population = p * v / (q - 1)
    got = clv.expected_spend(GAMMA_GAMMA_TRUTH, [0, 1, 10, 1000], [0.0, 100.0, 100.0, 100.0])
    assert got[0] == pytest.approx(population)
    weight = p / (p + q - 1)
    assert got[1] == pytest.approx((1 - weight) * population + weight * 100.0)
    assert population < got[1] < got[2] < got[3] < 100.0
    assert got[3] == pytest.approx(100.0, rel=1e-2)


def test_expected_spend_needs_q_above_one_for_the_model_population_mean():
    with pytest.raises(ValueError, match="q > 1"):
        clv.expected_spend({"p": 2.0, "q": 0.9, "v": 10.0}, [0, 1], [0.0, 5.0])
    with pytest.raises(ValueError, match="p x \\+ q > 1 for every repeat customer"):
        clv.expected_spend({"p": 0.05, "q": 0.9, "v": 10.0}, [1], [5.0])


def test_a_customer_without_repeat_purchases_gets_the_population_mean_given():
    got = clv.expected_spend(GAMMA_GAMMA_TRUTH, [0, 2], [0.0, 80.0], population_mean=123.45)
    assert got[0] == 123.45
    p, q, v = GAMMA_GAMMA_TRUTH.values()
    assert got[1] == pytest.approx(p * (v + 2 * 80.0) / (2 * p + q - 1), rel=1e-15)


@pytest.mark.parametrize("q", [1.003, 1.5, 2.0])
def test_the_population_mean_is_the_observed_mean_spend_where_q_is_at_most_two(q):
    """Below q = 2 the fitted population's mean spend has no finite variance: its mean, p v / (q - 1), is carried
    by a tail beyond the data (the demo's q = 1.003 gave 179,341 where repeat customers spend 3,300 on average)."""
    params = {"p": 2.0, "q": q, "v": 300.0}
    found = clv.population_mean_spend(params, [0, 1, 3, 0], [0.0, 100.0, 500.0, 0.0])
    assert (found.value, found.rule) == (300.0, "observed")


def test_the_population_mean_is_the_model_mean_where_q_is_above_two():
    p, q, v = GAMMA_GAMMA_TRUTH.values()
    found = clv.population_mean_spend(GAMMA_GAMMA_TRUTH, [0, 1, 3], [0.0, 100.0, 500.0])
    assert (found.value, found.rule) == (pytest.approx(p * v / (q - 1), rel=1e-15), "model")


# --- 5: input validation -----------------------------------------------------------------------------------

GOOD = {"frequency": [0, 1, 2], "recency": [0.0, 3.0, 5.0], "T": [4.0, 6.0, 5.0]}
BAD_HISTORIES = [
    ({"frequency": [0, -1, 2]}, r"frequency\[1\] = -1 is negative"),
    ({"recency": [0.0, -3.0, 5.0]}, r"recency\[1\] = -3 is negative"),
    ({"T": [4.0, 6.0, np.nan]}, r"T\[2\] = nan is not finite"),
    ({"T": [4.0, np.inf, 5.0]}, r"T\[1\] = inf is not finite"),
    ({"recency": [0.0, 7.0, 5.0]}, r"recency\[1\] = 7 is greater than T\[1\] = 6"),
    ({"frequency": [0, 1.5, 2]}, r"frequency\[1\] = 1.5 is not a whole number"),
    ({"recency": [1.0, 3.0, 5.0]}, r"recency\[0\] = 1 is positive for a customer without repeat purchases"),
    ({"T": [4.0, 6.0]}, r"inputs differ in length: \{'frequency': 3, 'recency': 3, 'T': 2\}"),
    ({"frequency": ["0", "one", "2"]}, r"frequency must be numeric"),
]


@pytest.mark.parametrize(("change", "message"), BAD_HISTORIES)
@pytest.mark.parametrize(
    "call",
    [
        lambda h: clv.fit_bg_nbd(**h),
        lambda h: clv.bg_nbd_log_likelihood(BG_NBD_TRUTH, **h),
        lambda h: clv.p_alive(BG_NBD_TRUTH, **h),
        lambda h: clv.expected_orders(BG_NBD_TRUTH, 1.0, **h),
        lambda h: clv.discounted_expected_orders(
            BG_NBD_TRUTH, **h, horizon=2, period_length=1.0, annual_discount_rate=0.1, periods_per_year=52
        ),
    ],
    ids=["fit_bg_nbd", "bg_nbd_log_likelihood", "p_alive", "expected_orders", "discounted_expected_orders"],
)
def test_bad_histories_are_rejected_with_a_clear_message(call, change, message):
    with pytest.raises(ValueError, match=message):
        call({**GOOD, **change})


@pytest.mark.parametrize(
    ("frequency", "monetary_value", "message"),
    [
        ([0, 1, 2], [0.0, -5.0, 3.0], r"monetary_value\[1\] = -5 is negative"),
        (
            [0, 1, 2],
            [0.0, 5.0, 0.0],
            r"monetary_value\[2\] = 0 must be positive for a customer with repeat purchases",
        ),
        ([0, 1, 2.5], [0.0, 5.0, 3.0], r"frequency\[2\] = 2.5 is not a whole number"),
        ([0, 1], [0.0, 5.0, 3.0], r"inputs differ in length"),
        ([0, 1, 2], [np.nan, 5.0, 3.0], r"monetary_value\[0\] = nan is not finite"),
    ],
)
@pytest.mark.parametrize(
    "call",
    [
        clv.fit_gamma_gamma,
        lambda x, m: clv.gamma_gamma_log_likelihood(GAMMA_GAMMA_TRUTH, x, m),
        lambda x, m: clv.expected_spend(GAMMA_GAMMA_TRUTH, x, m),
    ],
    ids=["fit_gamma_gamma", "gamma_gamma_log_likelihood", "expected_spend"],
)
def test_bad_spend_is_rejected_with_a_clear_message(call, frequency, monetary_value, message):
    with pytest.raises(ValueError, match=message):
        call(frequency, monetary_value)


def test_fits_need_enough_customers():
    with pytest.raises(ValueError, match="at least 10 customers, got 9"):
        clv.fit_bg_nbd([1] * 9, [1.0] * 9, [2.0] * 9)
    with pytest.raises(ValueError, match=r"repeat purchases\) needs at least 10 customers, got 3"):
        clv.fit_gamma_gamma([0] * 20 + [1] * 3, [0.0] * 20 + [5.0] * 3)
    with pytest.raises(ValueError, match="no customer has repeat purchases"):
        clv.fit_bg_nbd([0] * 20, [0.0] * 20, [5.0] * 20)


def test_bad_parameters_and_horizons_are_rejected():
    with pytest.raises(ValueError, match=r"params lacks \['b'\]"):
        clv.p_alive({"r": 1.0, "alpha": 1.0, "a": 1.0}, [1], [1.0], [2.0])
    with pytest.raises(ValueError, match="parameter alpha = -1 must be finite and positive"):
        clv.p_alive({**BG_NBD_TRUTH, "alpha": -1.0}, [1], [1.0], [2.0])
    with pytest.raises(ValueError, match="t = -1.0 must be a single finite, non-negative number"):
        clv.expected_orders(BG_NBD_TRUTH, -1.0, [1], [1.0], [2.0])
    with pytest.raises(ValueError, match="horizon = 0 must be a positive whole number"):
        clv.discounted_expected_orders(BG_NBD_TRUTH, [1], [1.0], [2.0], 0, 1.0, 0.1, 12)


def test_identical_spends_have_no_maximum_and_raise_not_identified():
    """Identical spend for everyone: no variation within or between customers, so the likelihood rises without
    bound (p, q -> infinity); the optimiser stops on rounding noise or at the edge of its search range (which one
    depends on the machine's rounding: both were seen), and neither is published as a fit."""
    with pytest.raises(
        clv.NotIdentified,
        match="Gamma-Gamma (has no maximum inside the parameter space|fit did not converge: [pqv] ran to .*, the "
        "edge of the search range)",
    ):
        clv.fit_gamma_gamma([1] * 50, [5.0] * 50)
    assert issubclass(clv.NotIdentified, RuntimeError)


# The small sample's first month (tests/conftest.py): 15 repeat customers, whose Gamma-Gamma likelihood rises along
# a ridge towards p -> infinity (p v fixed). Its local curvature there is 1e-12..1e-6 depending on where the search
# stops and on the machine's rounding; on one machine it cleared _MIN_CURVATURE and the month was published fitted.
RIDGE_FREQUENCY = [5, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 2, 1]
RIDGE_SPEND = [2800.35, 976.07, 942.21, 388.22, 10002.96, 984.93, 2831.86, 1443.0, 210.27, 1786.64, 118.37,
               361.99, 17261.34, 127.53, 454.14]  # fmt: skip


def test_a_likelihood_rising_along_a_ridge_is_not_a_fit_whatever_the_local_curvature():
    with pytest.raises(clv.NotIdentified, match="Gamma-Gamma is not identified by these data"):
        clv.fit_gamma_gamma(RIDGE_FREQUENCY, RIDGE_SPEND)
    # the point the search stopped at on that machine: the likelihood is higher further along the ridge
    data = clv._GammaGammaData.of(*clv._validate_fm(RIDGE_FREQUENCY, RIDGE_SPEND))

    def objective(p):
        return clv._gamma_gamma_objective(p, data)

    stopped = np.log([2.58381461e05, 7.62208427e-01, 1.30885651e-03])
    wide = [(v - 20.0, v + 20.0) for v in stopped]
    _, flattest = clv._curvature(objective, stopped)
    rise = clv._rise_along(objective, stopped, objective(stopped)[0], flattest, wide)
    assert rise is not None and rise[0] > 1e-8
    # around a maximum the likelihood is lower at a distance, whatever the direction
    rng = np.random.default_rng(0)
    frequency = rng.integers(1, 8, 2_000)
    spend = simulate_gamma_gamma(GAMMA_GAMMA_TRUTH, frequency, rng)
    fitted = clv.fit_gamma_gamma(frequency, spend)
    best = np.log([fitted[name] for name in clv.GAMMA_GAMMA_PARAMS])
    data = clv._GammaGammaData.of(*clv._validate_fm(frequency, spend))
    for direction in (*np.eye(3), clv._curvature(objective, best)[1]):
        bounds = [(v - 20.0, v + 20.0) for v in best]
        assert clv._rise_along(objective, best, objective(best)[0], direction, bounds) is None


# --- the best of several starts, and what the data do not identify -------------------------------------------


def _relative_gap(a: dict[str, float], b: dict[str, float]) -> float:
    return max(abs(a[name] / b[name] - 1) for name in a)


def _first_month(rng: np.random.Generator, customers: int = 400) -> tuple[np.ndarray, ...]:
    """A first month of history (days): customers seen for up to 31 days, purchase rates Gamma-distributed, every
    repeat buyer's last purchase in the last tenth of their observation, so nobody is seen to drop out (the demo's
    2024-01: a -> 0 and b free)."""
    T = rng.uniform(1, 31, customers)
    x = rng.poisson(rng.gamma(1.0, 1 / 20, customers) * T).astype(float)
    return x, np.where(x > 0, T * rng.uniform(0.9, 1.0, customers), 0.0), T


def test_a_first_month_that_shows_no_dropout_is_not_identified():
    """Flat (the likelihood does not fall away along a and b) or still rising towards a -> 0: either way the
    month's data identify no BG/NBD maximum, and the fit says so rather than returning a point of the ridge."""
    for seed in range(5):
        x, t_x, T = _first_month(np.random.default_rng(seed))
        with pytest.raises(clv.NotIdentified, match="BG/NBD (is not identified|has no maximum)"):
            clv.fit_bg_nbd(x, t_x, T)


def test_every_start_reaches_the_optimum_of_identified_data(customers, bg_nbd_fit, gamma_gamma_fit):
    """Each start alone lands where the fit does (to 1e-6): on data that identify the models, the extra starts
    change no figure; they only guard against a start that ends on a flat region or a poorer optimum."""
    bg_data = clv._BgNbdData.of(*_history(customers))
    rate = customers["frequency"].sum() / customers["T"].sum()
    for r, a, b in clv.BG_NBD_STARTS:
        start = np.log([r, r / rate, a, b])
        alone = clv._minimise(
            lambda p: clv._bg_nbd_objective(p, bg_data), [start], "BG/NBD", clv.BG_NBD_PARAMS
        )
        assert _relative_gap(dict(zip(clv.BG_NBD_PARAMS, np.exp(alone))), bg_nbd_fit) < 1e-6
    gg_data = clv._GammaGammaData.of(customers["frequency"], customers["monetary_value"])
    mean = gg_data.xm.sum() / gg_data.x.sum()
    for p, q in clv.GAMMA_GAMMA_STARTS:
        start = np.log([p, q, mean * (q - 1) / p])
        alone = clv._minimise(
            lambda v: clv._gamma_gamma_objective(v, gg_data), [start], "Gamma-Gamma", clv.GAMMA_GAMMA_PARAMS
        )
        assert _relative_gap(dict(zip(clv.GAMMA_GAMMA_PARAMS, np.exp(alone))), gamma_gamma_fit) < 1e-6


def test_a_start_on_a_degenerate_fit_does_not_decide_the_next_month():
    """The demo's bug: each month's fit started from the month before, and from the first month's degenerate
    point (a -> 0, b 3,791) the next eight months never left it. Started from that point, the search still
    returns the best optimum of all its starts, the one the month's own data give from the default start."""
    rng = np.random.default_rng(11)
    x1, t1, T1 = _first_month(rng)
    with pytest.raises(clv.NotIdentified):
        clv.fit_bg_nbd(x1, t1, T1)
    degenerate = np.log([1.55, 47.9, 5.9e-7, 3791.0])  # the demo's 2024-01 (days)
    x, t_x, T = simulate_bg_nbd({"r": 1.0, "alpha": 30.0, "a": 0.6, "b": 9.0}, rng.uniform(31, 90, 800), rng)
    data = clv._BgNbdData.of(x, t_x, T)
    objective = lambda p: clv._bg_nbd_objective(p, data)
    cold = np.log([1.0, T.sum() / x.sum(), 1.0, 1.0])
    stuck = clv._newton(
        objective, degenerate, [(c - clv._LOG_SEARCH_RANGE, c + clv._LOG_SEARCH_RANGE) for c in cold]
    )
    best = clv._minimise(objective, [cold, degenerate], "BG/NBD", clv.BG_NBD_PARAMS)
    fit = clv.fit_bg_nbd(x, t_x, T)
    assert _relative_gap(dict(zip(clv.BG_NBD_PARAMS, np.exp(best))), fit) < 1e-6
    assert objective(best)[0] < objective(stuck[0])[0] - 1e-3, "the degenerate start is a poorer point"


def test_the_gamma_gamma_fit_of_a_month_does_not_depend_on_the_month_before():
    """The 300-customer sample's bug: a degenerate Gamma-Gamma month carried into the next ones until a start at
    q < 1 skipped a month. Fitted from the degenerate month's point or not, a month's fit is the same."""
    rng = np.random.default_rng(5)
    with pytest.raises(clv.NotIdentified):
        clv.fit_gamma_gamma([1] * 50, [5.0] * 50)
    x = rng.integers(1, 6, 600).astype(float)
    m = simulate_gamma_gamma(GAMMA_GAMMA_TRUTH, x, rng)
    data = clv._GammaGammaData.of(x, m)
    objective = lambda p: clv._gamma_gamma_objective(p, data)
    mean = data.xm.sum() / data.x.sum()
    cold = np.log([2.0, 2.0, mean / 2.0])
    degenerate = np.log([3.4e7, 6.2e7, 9.07])  # where identical spends leave the search
    below_one = np.log([2.0, 0.8, mean * 0.2])  # q < 1: where the sample's carried start skipped 2025-09
    best = clv._minimise(objective, [degenerate, below_one, cold], "Gamma-Gamma", clv.GAMMA_GAMMA_PARAMS)
    assert _relative_gap(dict(zip(clv.GAMMA_GAMMA_PARAMS, np.exp(best))), clv.fit_gamma_gamma(x, m)) < 1e-6


def test_the_optimiser_runs_with_one_blas_thread_and_restores_the_threads_after():
    """Inside the fit every BLAS library numpy loaded runs one thread; the caller's setting is back afterwards."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    seen = []

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        seen.append(blas_threads())
        shift = log_params - np.log([2.0, 3.0])
        return float(shift @ shift), 2 * shift

    with threadpool_limits(limits=2, user_api="blas"):
        assert blas_threads() == {2}, "numpy is expected to bring a BLAS library threadpoolctl controls"
        result = clv._minimise(objective, [np.zeros(2)], "test", ("a", "b"))
        after = blas_threads()
    assert np.allclose(np.exp(result), [2.0, 3.0])
    assert seen and all(threads == {1} for threads in seen)
    assert after == {2}


# --- the published CDNOW figures -----------------------------------------------------------------------------

LIFETIMES_WHEEL = "lifetimes==0.11.3"  # ships the CDNOW summaries Fader, Hardie & Lee fitted (datasets/)


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory) -> dict[str, np.ndarray]:
    """CDNOW's 2,357 customers (weeks) and the 946 repeat customers' mean spend, read from the lifetimes wheel as
    the package registry serves it (pip download; nothing of lifetimes is installed or imported)."""
    import subprocess
    import sys
    import zipfile

    import pandas as pd

    folder = tmp_path_factory.mktemp("lifetimes")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(folder), LIFETIMES_WHEEL],
        check=True,
        capture_output=True,
    )
    (wheel,) = folder.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        summary = pd.read_csv(archive.open("lifetimes/datasets/cdnow_customers_summary.csv"))
        spend = pd.read_csv(archive.open("lifetimes/datasets/cdnow_customers_summary_with_transactions.csv"))
    return {
        "frequency": summary["frequency"].to_numpy(float),
        "recency": summary["recency"].to_numpy(float),
        "T": summary["T"].to_numpy(float),
        "x": spend["x"].to_numpy(float),
        "m": spend["zbar"].to_numpy(float),
    }


def test_cdnow_estimates_of_fader_hardie_and_lee_are_reproduced(cdnow):
    """BG/NBD (Fader, Hardie & Lee 2005, per week): r 0.243, alpha 4.414, a 0.793, b 2.426; Gamma-Gamma (Fader &
    Hardie 2013): p 6.25, q 3.74, gamma 15.44. Well identified, so the best of the starts is the published fit,
    and q > 2 keeps the model's population mean p v / (q - 1)."""
    bg = clv.fit_bg_nbd(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert {k: round(v, 3) for k, v in bg.items()} == {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    gg = clv.fit_gamma_gamma(cdnow["x"], cdnow["m"])
    assert {k: round(v, 2) for k, v in gg.items()} == {"p": 6.25, "q": 3.74, "v": 15.45}
    assert abs(gg["v"] - 15.44) < 0.01  # the note prints 15.44, lifetimes 15.45: the estimate is 15.448
    population = clv.population_mean_spend(gg, cdnow["x"], cdnow["m"])
    assert population.rule == "model"
    assert population.value == pytest.approx(gg["p"] * gg["v"] / (gg["q"] - 1), rel=1e-15)
    # lifetimes' README: the mean conditional expected average profit of the 2,357 customers, 35.2529588256
    spend = clv.expected_spend(gg, cdnow["x"], cdnow["m"], population.value)
    assert spend.mean() == pytest.approx(35.2529588256, abs=1e-6)
