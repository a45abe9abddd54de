"""Deterministic sample data for the landing zone.

Everything is drawn with numpy in whole arrays (no per-row Python) and written by DuckDB, which formats
identifiers, dates and decimals. What the sample contains, and why:

* **Purchase timing is a BG/NBD process** (Fader, Hardie & Lee 2005). Customer i buys at acquisition
  (day ``t0``) and then as a Poisson process with rate ``lambda_i ~ Gamma(r, alpha)`` while alive; after each
  repeat purchase it drops out with probability ``p_i ~ Beta(a, b)``. The true parameters are in
  :data:`BG_NBD_TRUTH` (time unit: days), so a CLV model has something true to recover.
* **Heavy-tailed sizes**: lines per order and quantities scale with a log-normal size factor by segment.
* **Costly customers**: a minority ("demanding") of mostly high-volume customers order often in small
  orders, ship express, return a lot, call support for long and get many sales visits; under activity-based
  costing many of them lose money.
* **Survey answers** with known drivers: the overall score is a linear function of the attribute ratings
  plus noise; :data:`SURVEY_TRUTH` holds each attribute's true share of explained variance.
* **Ledger costs consistent with activity volumes**: time-driven centres cost their practical capacity at a
  capacity cost rate (sized so that most months leave some capacity unused), share centres cost in
  proportion to their drivers, plus business-sustaining centres (facilities, general administration).

The reference configuration (cost centres, activities, survey questions, scorecard targets) is written
with the sample because capacities and targets are sized to it.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from data_checks.suites import MAX_HANDLING_MINUTES
from pipelines.engines.sql import literal
from pipelines.landing.sources import MONTHLY

BG_NBD_TRUTH = {"r": 0.9, "alpha": 30.0, "a": 0.6, "b": 9.0}  # lambda per day ~ Gamma(shape r, rate alpha)
SURVEY_ATTRIBUTES = (
    "product_quality",
    "delivery_reliability",
    "price_value",
    "support_quality",
    "ease_of_ordering",
)
SURVEY_TRUTH = dict(zip(SURVEY_ATTRIBUTES, (0.35, 0.25, 0.20, 0.12, 0.08), strict=True))
SEGMENTS = ("enterprise", "mid_market", "small_business")
REGIONS = ("north", "south", "east", "west", "international")
CATEGORIES = ("fasteners", "tools", "safety", "electrical", "plumbing", "packaging", "cleaning", "office")
CHANNELS = ("web", "edi", "phone", "field")
SHIP_MODES = ("standard", "express")
RETURN_REASONS = ("damaged", "wrong_item", "not_needed", "late_delivery", "quality")
TICKET_CHANNELS = ("phone", "email", "chat")

# Cost-centre and activity configuration of the sample. Capacity rates are money per minute.
TIME_CENTRES = {"order_desk": 0.75, "warehouse": 0.55, "customer_service": 0.85, "field_sales": 1.60}
ACTIVITIES = (
    # activity, cost_center, driver, method, unit_minutes, share
    ("enter_order", "order_desk", "orders", "time", 12.0, None),
    ("enter_order_line", "order_desk", "order_lines", "time", 2.0, None),
    ("process_return", "order_desk", "returns", "time", 25.0, None),
    ("pick_and_pack", "warehouse", "order_lines", "time", 5.0, None),
    ("dispatch_express", "warehouse", "express_orders", "time", 45.0, None),
    ("resolve_ticket", "customer_service", "support_minutes", "time", 1.0, None),
    ("visit_customer", "field_sales", "visit_minutes", "time", 1.5, None),
    ("invoice_orders", "billing", "orders", "share", None, 0.60),
    ("credit_returns", "billing", "returns", "share", None, 0.25),
    ("rush_billing", "billing", "express_orders", "share", None, 0.15),
)
SHARE_CENTRE_UNIT_COST = {"orders": 1.50, "returns": 6.00, "express_orders": 2.50}  # drives billing's ledger
SUSTAINING = {"facilities": 0.020, "general_admin": 0.025}  # monthly cost as a share of mean net revenue
ACCOUNTS = (("salaries", 0.68), ("benefits", 0.14), ("systems", 0.11), ("supplies", 0.07))


@dataclass(frozen=True)
class GenerateConfig:
    customers: int = 2000
    months: int = 24
    start: str = "2024-01"
    seed: int = 42
    products: int = 400
    block_customers: int = 50_000  # customers drawn and written at a time: bounds the generator's memory


@dataclass
class GenerateResult:
    landing: Path
    months: list[str]
    row_counts: dict[str, int]
    seconds: float


def _month_starts(start: str, months: int) -> list[date]:
    year, month = (int(part) for part in start.split("-"))
    out = []
    for i in range(months + 1):
        y, m = divmod(month - 1 + i, 12)
        out.append(date(year + y, m + 1, 1))
    return out


def _parse_start(start: str) -> None:
    try:
        year, month = (int(part) for part in start.split("-"))
        date(year, month, 1)
    except ValueError as exc:
        raise ValueError(f"--start must be YYYY-MM, got {start!r}") from exc


def generate(
    config: GenerateConfig,
    landing: Path,
    progress: Callable[[str], None] = lambda message: None,
) -> GenerateResult:
    """Write a complete landing zone for ``config`` under ``landing`` (replacing what was there).

    Customers are drawn and written ``config.block_customers`` at a time, so memory is bounded by the block,
    not the sample: each block's rows are appended to the month files. The first block draws from the seed's
    generator, each later block from its own (seed, block) stream, so a sample that fits in one block is the
    same as it always was. The ledger is sized from the driver volumes summed over all blocks.
    """
    _parse_start(config.start)
    if config.customers < 10 or config.months < 1 or config.products < 10 or config.block_customers < 10:
        raise ValueError("need at least 10 customers, 1 month, 10 products and blocks of 10 customers")
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    calendar = _Calendar.of(config.start, config.months)
    products = _Products.draw(rng, config.products)
    m = config.months

    if landing.exists():
        shutil.rmtree(landing)
    for source in MONTHLY:
        (landing / source.name).mkdir(parents=True)
    (landing / "reference").mkdir(parents=True)
    writer = _LandingWriter(landing, calendar.labels)
    writer.write(
        "products",
        pd.DataFrame(
            {
                "i": np.arange(config.products),
                "cat": products.category,
                "lp": products.list_cents,
                "uc": products.cost_cents,
            }
        ),
        f"""select printf('P%05d', i + 1) as product_id, {_lookup(CATEGORIES)}[cat + 1] as category,
                   (lp / 100)::decimal(18,2) as list_price, (uc / 100)::decimal(18,2) as unit_cost
            from frame order by i""",
        None,
    )

    vol: dict[str, np.ndarray] = {}  # driver volumes by month, summed over the blocks
    net_cents_total = 0
    ids = _Ids()
    blocks = -(-config.customers // config.block_customers)
    question_ids = ("NPS", "OVERALL") + tuple(f"ATTR_{a.upper()}" for a in SURVEY_ATTRIBUTES)
    for block in range(blocks):
        first = block * config.block_customers
        n = min(config.block_customers, config.customers - first)
        block_rng = rng if block == 0 else np.random.default_rng([config.seed, block])
        drawn = _draw_block(block_rng, n, ids, calendar, products, question_ids)
        progress(
            f"block {block + 1}/{blocks}: customers {first + 1:,}-{first + n:,}, "
            f"{drawn.order_lines:,} order lines"
        )
        for name, frame in drawn.frames.items():
            writer.write(
                name,
                frame,
                _SELECT[name](calendar.origin_sql, question_ids),
                None if name == "customers" else "mon",
            )
        for driver, volume in drawn.volumes.items():
            vol[driver] = vol.get(driver, 0) + volume
        net_cents_total += drawn.net_cents
        del drawn

    # --- the ledger, from the driver volumes of all customers -------------------------------------------
    used = {c: np.zeros(m) for c in TIME_CENTRES}
    for _, centre, driver, method, unit_minutes, _ in ACTIVITIES:
        if method == "time":
            used[centre] += vol[driver] * unit_minutes
    # Practical capacity: room for all but the busiest months, so most months leave capacity unused.
    capacity = {c: int(max(np.ceil(np.quantile(u, 0.9) / 0.92 / 100.0) * 100, 100)) for c, u in used.items()}
    mean_month_revenue = net_cents_total / 100.0 / m
    centre_cost = {c: capacity[c] * rate * rng.normal(1.0, 0.015, m) for c, rate in TIME_CENTRES.items()}
    centre_cost["billing"] = (
        sum(vol[d] * u for d, u in SHARE_CENTRE_UNIT_COST.items()) * rng.normal(1.0, 0.03, m) + 400
    )
    for centre, share in SUSTAINING.items():
        centre_cost[centre] = mean_month_revenue * share * rng.normal(1.0, 0.02, m)

    # Each centre's monthly cost split over accounts, to the cent, summing exactly.
    centres = list(centre_cost)
    cents = np.array([np.round(centre_cost[c] * 100) for c in centres]).astype(np.int64)  # centres x months
    shares = np.array([s for _, s in ACCOUNTS])
    split = np.floor(cents[:, :, None] * shares[None, None, :]).astype(np.int64)
    split[:, :, 0] += cents - split.sum(axis=2)
    gi, mi, ai = np.meshgrid(np.arange(len(centres)), np.arange(m), np.arange(len(ACCOUNTS)), indexing="ij")
    writer.write(
        "gl_costs",
        pd.DataFrame({"ci": gi.ravel(), "mon": mi.ravel(), "ai": ai.ravel(), "amt": split.ravel()}),
        f"""select {_lookup(tuple(calendar.labels))}[mon + 1] as period, {_lookup(tuple(centres))}[ci + 1] as cost_center,
                   {_lookup(tuple(a for a, _ in ACCOUNTS))}[ai + 1] as account, (amt / 100)::decimal(18,2) as amount, mon
            from frame order by mon, ci, ai""",
        "mon",
    )
    writer.close()

    _write_reference_config(
        landing / "reference", capacity, question_ids, mean_month_revenue, config.customers, m
    )
    elapsed = time.perf_counter() - started
    return GenerateResult(landing=landing, months=calendar.labels, row_counts=writer.counts, seconds=elapsed)


@dataclass(frozen=True)
class _Calendar:
    labels: list[str]
    month_start_days: np.ndarray  # day numbers of each month's first day, and of the day after the window
    horizon: int  # days in the window
    origin_sql: str

    @classmethod
    def of(cls, start: str, months: int) -> _Calendar:
        month_starts = _month_starts(start, months)
        origin = np.datetime64(month_starts[0], "D")
        days = np.array([(np.datetime64(d, "D") - origin).astype(int) for d in month_starts])
        return cls(
            labels=[d.strftime("%Y-%m") for d in month_starts[:-1]],
            month_start_days=days,
            horizon=int(days[-1]),
            origin_sql=f"date '{month_starts[0].isoformat()}'",
        )

    @property
    def months(self) -> int:
        return len(self.labels)

    def month_of(self, day: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.month_start_days, day, side="right") - 1


@dataclass(frozen=True)
class _Products:
    list_cents: np.ndarray
    cost_cents: np.ndarray
    category: np.ndarray
    popularity: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, n_prod: int) -> _Products:
        list_cents = np.clip(
            np.round(np.exp(rng.normal(np.log(35.0), 0.9, n_prod)) * 100), 150, 500_000
        ).astype(np.int64)
        cost_cents = np.round(list_cents * rng.uniform(0.52, 0.74, n_prod)).astype(np.int64)
        category = rng.integers(0, len(CATEGORIES), n_prod)
        popularity = 1.0 / np.arange(1, n_prod + 1) ** 0.8
        popularity = rng.permutation(popularity / popularity.sum())
        return cls(list_cents, cost_cents, category, popularity)


@dataclass
class _Ids:
    """The next zero-based number of each identifier, carried from block to block."""

    customers: int = 0
    orders: int = 0
    returns: int = 0
    tickets: int = 0
    visits: int = 0
    responses: int = 0


@dataclass
class _Block:
    frames: dict[str, pd.DataFrame]
    volumes: dict[str, np.ndarray]
    net_cents: int
    order_lines: int


def _draw_block(
    rng: np.random.Generator,
    n: int,
    ids: _Ids,
    calendar: _Calendar,
    products: _Products,
    question_ids: tuple[str, ...],
) -> _Block:
    """Draw ``n`` customers and everything they do; identifiers continue from ``ids``, which is advanced."""
    horizon, month_of, m = calendar.horizon, calendar.month_of, calendar.months
    month_start_days = calendar.month_start_days
    n_prod = products.list_cents.size
    # --- customers -----------------------------------------------------------------------------
    segment = rng.choice(3, n, p=[0.08, 0.27, 0.65])
    region = rng.choice(len(REGIONS), n, p=[0.25, 0.22, 0.2, 0.2, 0.13])
    size = np.exp(rng.normal(0.0, 0.8, n)) * np.array([6.0, 2.5, 1.0])[segment]
    lam = rng.gamma(BG_NBD_TRUTH["r"], 1.0 / BG_NBD_TRUTH["alpha"], n)  # purchases per day while alive
    p_drop = rng.beta(BG_NBD_TRUTH["a"], BG_NBD_TRUTH["b"], n)
    # A third of the base is already a customer when the window opens (first order in the first 45 days);
    # the rest are acquired evenly over the window.
    early = rng.random(n) < 0.35
    t0 = np.where(early, rng.integers(0, min(45, horizon), n), rng.integers(0, horizon, n))
    value_rank = (lam * size).argsort().argsort() / n
    demanding = rng.random(n) < np.where(value_rank > 0.8, 0.35, 0.05)

    # --- orders: BG/NBD purchase process ---------------------------------------------------------
    window = (horizon - t0).astype(float)  # days observed after the first purchase
    repeat_alive = rng.geometric(p_drop)  # repeat purchases made before dropping out
    poisson_count = rng.poisson(lam * window)
    repeats = np.minimum(repeat_alive, poisson_count)
    # The first k of n uniform order statistics on (0, window): S_j / (S_k + Gamma(n + 1 - k)), S = cumsum(Exp(1)).
    owner = np.repeat(np.arange(n), repeats)
    gaps = rng.exponential(1.0, owner.size)
    csum = np.cumsum(gaps)
    first_of = np.concatenate([[0], np.cumsum(repeats)[:-1]])
    before = np.concatenate([[0.0], csum])[first_of]  # cumulative sum before each customer's block
    within = csum - np.repeat(before, repeats)
    s_k = np.zeros(n)
    has = repeats > 0
    s_k[has] = within[np.cumsum(repeats)[has] - 1]
    tail = rng.gamma(np.maximum(poisson_count + 1 - repeats, 1), 1.0)
    total = s_k + tail
    repeat_day = t0[owner] + np.floor(window[owner] * within / total[owner]).astype(np.int64)
    order_customer = np.concatenate([np.arange(n), owner])
    order_day = np.concatenate([t0, repeat_day]).astype(np.int64)
    order_day = np.minimum(order_day, horizon - 1)
    sort = np.lexsort((order_customer, order_day))
    order_customer, order_day = order_customer[sort], order_day[sort]
    n_orders = order_customer.size

    oc = order_customer
    express_p = np.where(demanding, 0.60, 0.04)[oc]
    order_express = rng.random(n_orders) < express_p
    channel_p = np.array([[0.25, 0.55, 0.10, 0.10], [0.45, 0.25, 0.20, 0.10], [0.70, 0.02, 0.25, 0.03]])[
        segment[oc]
    ]
    channel_p = np.where(demanding[oc, None], np.array([0.15, 0.05, 0.45, 0.35]), channel_p)
    order_channel = (rng.random(n_orders)[:, None] > np.cumsum(channel_p, axis=1)).sum(axis=1)
    order_channel = np.minimum(order_channel, len(CHANNELS) - 1)
    lines_mean = np.minimum(np.where(demanding, 0.5 + 0.8 * size, 1.5 + 1.6 * size), 40.0)[oc]
    lines_per_order = 1 + rng.poisson(lines_mean)

    # --- order lines ---------------------------------------------------------------------------
    line_order = np.repeat(np.arange(n_orders), lines_per_order)
    n_lines = line_order.size
    line_no = (
        np.arange(n_lines) - np.repeat(np.cumsum(lines_per_order) - lines_per_order, lines_per_order) + 1
    )
    line_customer = oc[line_order]
    product = rng.choice(n_prod, n_lines, p=products.popularity)
    qty_mean = np.minimum(np.where(demanding, 1.2 * size, 2.0 * size), 60.0)[line_customer]
    quantity = 1 + rng.poisson(qty_mean)
    concession = np.array([0.12, 0.07, 0.02])[segment] + np.where(demanding, 0.10, 0.0)
    unit_price_cents = np.round(products.list_cents[product] * (1 - concession[line_customer])).astype(
        np.int64
    )
    line_value = quantity * unit_price_cents
    promo = rng.random(n_lines) < 0.12
    discount_cents = np.where(promo, np.round(line_value * rng.uniform(0.03, 0.15, n_lines)), 0).astype(
        np.int64
    )

    # --- returns -------------------------------------------------------------------------------
    returned = rng.random(n_lines) < np.where(demanding, 0.15, 0.02)[line_customer]
    ret_idx = np.flatnonzero(returned)
    ret_day = order_day[line_order[ret_idx]] + 2 + rng.geometric(0.1, ret_idx.size)
    keep = ret_day < horizon
    ret_idx, ret_day = ret_idx[keep], ret_day[keep]
    ret_qty = np.minimum(quantity[ret_idx], 1 + rng.poisson(0.5, ret_idx.size))
    ret_sort = np.lexsort((ret_idx, ret_day))
    ret_idx, ret_day, ret_qty = ret_idx[ret_sort], ret_day[ret_sort], ret_qty[ret_sort]
    ret_reason = rng.integers(0, len(RETURN_REASONS), ret_idx.size)

    # --- support tickets: following orders and returns ------------------------------------------
    ticket_rate = np.where(demanding, 1.5, 0.06)[oc]
    per_order = rng.poisson(ticket_rate)
    t_src = np.repeat(np.arange(n_orders), per_order)
    t_customer = oc[t_src]
    t_seconds = (order_day[t_src] + rng.exponential(6.0, t_src.size)) * 86400.0
    r_tickets = ret_idx[rng.random(ret_idx.size) < 0.5]
    t_customer = np.concatenate([t_customer, line_customer[r_tickets]])
    t_seconds = np.concatenate(
        [t_seconds, order_day[line_order[r_tickets]] * 86400.0 + rng.uniform(0, 20, r_tickets.size) * 86400]
    )
    keep = t_seconds < horizon * 86400.0
    t_customer, t_seconds = t_customer[keep], np.floor(t_seconds[keep]).astype(np.int64)
    t_minutes_mean = np.where(demanding, 60.0, 14.0)[t_customer]
    # At most the suites' plausible maximum (8 hours): one ticket in millions would exceed it otherwise.
    t_centi = np.minimum(
        np.round(rng.gamma(2.0, t_minutes_mean / 2.0) * 100).astype(np.int64) + 100,
        MAX_HANDLING_MINUTES * 100,
    )
    t_channel = rng.choice(len(TICKET_CHANNELS), t_customer.size, p=[0.5, 0.35, 0.15])
    t_sort = np.lexsort((t_customer, t_seconds))
    t_customer, t_seconds, t_centi, t_channel = (
        a[t_sort] for a in (t_customer, t_seconds, t_centi, t_channel)
    )

    # --- active months per customer: acquisition to last order month ---------------------------------
    first_month = month_of(t0)
    last_order_day = np.zeros(n, dtype=np.int64)
    np.maximum.at(last_order_day, oc, order_day)
    last_month = np.minimum(month_of(last_order_day) + 1, m - 1)
    active_len = last_month - first_month + 1
    am_customer = np.repeat(np.arange(n), active_len)
    am_month = (
        np.arange(am_customer.size)
        - np.repeat(np.cumsum(active_len) - active_len, active_len)
        + first_month[am_customer]
    )

    # --- sales visits ----------------------------------------------------------------------------
    visit_rate = np.array([0.9, 0.3, 0.03])[segment] + np.where(
        demanding, 1.5 + 0.6 * np.minimum(size, 15.0), 0.0
    )
    v_count = rng.poisson(visit_rate[am_customer])
    v_customer = np.repeat(am_customer, v_count)
    v_month = np.repeat(am_month, v_count)
    v_len = month_start_days[v_month + 1] - month_start_days[v_month]
    v_day = month_start_days[v_month] + np.floor(rng.random(v_customer.size) * v_len).astype(np.int64)
    v_quarter_hours = 2 + rng.poisson(np.where(demanding, 8.0, 5.0)[v_customer])  # hours in quarters
    v_sort = np.lexsort((v_customer, v_day))
    v_customer, v_day, v_quarter_hours = v_customer[v_sort], v_day[v_sort], v_quarter_hours[v_sort]

    # --- survey responses ------------------------------------------------------------------------
    responds = rng.random(am_customer.size) < np.array([0.25, 0.12, 0.06])[segment[am_customer]]
    s_customer, s_month = am_customer[responds], am_month[responds]
    n_resp = s_customer.size
    s_len = month_start_days[s_month + 1] - month_start_days[s_month]
    s_seconds = (month_start_days[s_month] + rng.random(n_resp) * s_len) * 86400.0
    s_seconds = np.floor(s_seconds).astype(np.int64)
    # Attribute ratings: a persistent customer level per attribute plus response noise, independent across
    # attributes; demanding customers rate delivery and support lower.
    n_attr = len(SURVEY_ATTRIBUTES)
    cust_level = rng.normal(6.8, 1.1, (n, n_attr))
    cust_level[:, 1] -= np.where(demanding, 1.0, 0.0)
    cust_level[:, 3] -= np.where(demanding, 1.0, 0.0)
    attr_raw = cust_level[s_customer] + rng.normal(0, 1.0, (n_resp, n_attr))
    attr = np.clip(np.round(attr_raw), 1, 10).astype(np.int64)
    weights = np.array([SURVEY_TRUTH[a] for a in SURVEY_ATTRIBUTES])
    coef = np.sqrt(weights)  # independent, equal-variance ratings: R^2 shares are coef^2 / sum(coef^2)
    overall_raw = 6.8 + (attr - attr.mean(axis=0)) @ coef * 0.9 + rng.normal(0, 0.5, n_resp)
    overall = np.clip(np.round(overall_raw), 1, 10).astype(np.int64)
    nps = np.clip(np.round(overall_raw + 1.2 + rng.normal(0, 0.8, n_resp)), 0, 10).astype(np.int64)
    s_sort = np.lexsort((s_customer, s_seconds))
    s_customer, s_seconds, attr, overall, nps = (
        x[s_sort] for x in (s_customer, s_seconds, attr, overall, nps)
    )

    # --- monthly driver volumes, for the ledger ---------------------------------------------------
    order_month = month_of(order_day)
    volumes = {
        "orders": np.bincount(order_month, minlength=m).astype(float),
        "order_lines": np.bincount(order_month, weights=lines_per_order, minlength=m),
        "express_orders": np.bincount(order_month, weights=order_express, minlength=m),
        "returns": np.bincount(month_of(ret_day), minlength=m).astype(float),
        "support_minutes": np.bincount(month_of(t_seconds // 86400), weights=t_centi / 100.0, minlength=m),
        "visit_minutes": np.bincount(month_of(v_day), weights=v_quarter_hours * 15.0, minlength=m),
    }
    net_cents = int((line_value - discount_cents).sum())

    # --- rows to write, numbered on from the blocks before ------------------------------------------
    c0, o0 = ids.customers, ids.orders
    answers = np.column_stack([nps, overall, attr])  # responses x questions
    frames = {
        "customers": pd.DataFrame({"i": c0 + np.arange(n), "seg": segment, "reg": region, "t0": t0}),
        "order_lines": pd.DataFrame(
            {
                "o": o0 + line_order,
                "ln": line_no,
                "d": order_day[line_order],
                "c": c0 + line_customer,
                "p": product,
                "q": quantity,
                "up": unit_price_cents,
                "disc": discount_cents,
                "ex": order_express[line_order].astype(np.int8),
                "ch": order_channel[line_order],
                "mon": month_of(order_day[line_order]),
            }
        ),
        "returns": pd.DataFrame(
            {
                "r": ids.returns + np.arange(ret_idx.size),
                "o": o0 + line_order[ret_idx],
                "ln": line_no[ret_idx],
                "d": ret_day,
                "q": ret_qty,
                "why": ret_reason,
                "mon": month_of(ret_day),
            }
        ),
        "support_tickets": pd.DataFrame(
            {
                "t": ids.tickets + np.arange(t_customer.size),
                "c": c0 + t_customer,
                "s": t_seconds,
                "ch": t_channel,
                "mins": t_centi,
                "mon": month_of(t_seconds // 86400),
            }
        ),
        "sales_visits": pd.DataFrame(
            {
                "v": ids.visits + np.arange(v_customer.size),
                "c": c0 + v_customer,
                "d": v_day,
                "qh": v_quarter_hours,
                "mon": month_of(v_day),
            }
        ),
        "survey_responses": pd.DataFrame(
            {
                "r": ids.responses + np.repeat(np.arange(n_resp), len(question_ids)),
                "c": c0 + np.repeat(s_customer, len(question_ids)),
                "s": np.repeat(s_seconds, len(question_ids)),
                "qi": np.tile(np.arange(len(question_ids)), n_resp),
                "score": answers.ravel(),
                "mon": np.repeat(month_of(s_seconds // 86400), len(question_ids)),
            }
        ),
    }
    ids.customers += n
    ids.orders += n_orders
    ids.returns += ret_idx.size
    ids.tickets += t_customer.size
    ids.visits += v_customer.size
    ids.responses += n_resp
    return _Block(frames, volumes, net_cents, n_lines)


def _lookup(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _customers_sql(origin: str, question_ids: tuple[str, ...]) -> str:
    return f"""select printf('C%06d', i + 1) as customer_id,
                   {_lookup(NAME_A)}[1 + (i * 7) % {len(NAME_A)}] || ' ' || {_lookup(NAME_B)}[1 + (i * 13 + i // 50) % {len(NAME_B)}]
                     || ' ' || {_lookup(NAME_C)}[1 + (i * 3 + i // 7) % {len(NAME_C)}] as customer_name,
                   {_lookup(SEGMENTS)}[seg + 1] as segment, {_lookup(REGIONS)}[reg + 1] as region,
                   ({origin} + t0::integer)::date as acquired_date
            from frame order by i"""


def _order_lines_sql(origin: str, question_ids: tuple[str, ...]) -> str:
    return f"""select printf('O%09d', o + 1) as order_id, ln as line_no, ({origin} + d::integer)::date as order_date,
                   printf('C%06d', c + 1) as customer_id, printf('P%05d', p + 1) as product_id, q as quantity,
                   (up / 100)::decimal(18,2) as unit_price, (disc / 100)::decimal(18,2) as discount_amount,
                   {_lookup(SHIP_MODES)}[ex + 1] as ship_mode, {_lookup(CHANNELS)}[ch + 1] as order_channel, mon
            from frame order by o, ln"""


def _returns_sql(origin: str, question_ids: tuple[str, ...]) -> str:
    return f"""select printf('R%08d', r + 1) as return_id, printf('O%09d', o + 1) as order_id, ln as line_no,
                   ({origin} + d::integer)::date as return_date, q as quantity,
                   {_lookup(RETURN_REASONS)}[why + 1] as reason, mon
            from frame order by r"""


def _support_tickets_sql(origin: str, question_ids: tuple[str, ...]) -> str:
    return f"""select printf('T%08d', t + 1) as ticket_id, printf('C%06d', c + 1) as customer_id,
                   {origin}::timestamp + to_seconds(s) as opened_at, {_lookup(TICKET_CHANNELS)}[ch + 1] as channel,
                   (mins / 100)::decimal(10,2) as handling_minutes, mon
            from frame order by t"""


def _sales_visits_sql(origin: str, question_ids: tuple[str, ...]) -> str:
    return f"""select printf('V%08d', v + 1) as visit_id, printf('C%06d', c + 1) as customer_id,
                   ({origin} + d::integer)::date as visit_date, (qh / 4)::decimal(6,2) as hours, mon
            from frame order by v"""


def _survey_responses_sql(origin: str, question_ids: tuple[str, ...]) -> str:
    return f"""select printf('S%08d', r + 1) as response_id, printf('C%06d', c + 1) as customer_id,
                   {origin}::timestamp + to_seconds(s) as responded_at, {_lookup(question_ids)}[qi + 1] as question_id,
                   score, mon
            from frame order by r, qi"""


_SELECT = {
    "customers": _customers_sql,
    "order_lines": _order_lines_sql,
    "returns": _returns_sql,
    "support_tickets": _support_tickets_sql,
    "sales_visits": _sales_visits_sql,
    "survey_responses": _survey_responses_sql,
}


class _LandingWriter:
    """Writes frames through DuckDB (which formats identifiers, dates and decimals) into the landing files.

    A file is created with its header by the first write that reaches it; later writes append rows. Every
    month file of a monthly source is created by the first block, even when that month has no rows.
    """

    def __init__(self, landing: Path, labels: list[str]) -> None:
        self.landing, self.labels = landing, labels
        self.counts: dict[str, int] = {}
        self.con = duckdb.connect()
        self.con.execute("set preserve_insertion_order = true")
        self._part = landing / ".part.csv"

    def write(self, name: str, frame: pd.DataFrame, select_sql: str, month_col: str | None) -> None:
        self.counts[name] = self.counts.get(name, 0) + len(frame)
        if month_col is None:
            self._emit(self.landing / "reference" / f"{name}.csv", frame, select_sql)
            return
        months = frame[month_col].to_numpy()
        if months.size and np.any(np.diff(months) < 0):
            frame = frame.iloc[np.argsort(months, kind="stable")]
            months = frame[month_col].to_numpy()
        bounds = np.searchsorted(months, np.arange(len(self.labels) + 1))
        for k, label in enumerate(self.labels):
            path = self.landing / name / f"{label}.csv"
            if bounds[k] < bounds[k + 1] or not path.exists():
                self._emit(path, frame.iloc[bounds[k] : bounds[k + 1]], select_sql)

    def _emit(self, path: Path, frame: pd.DataFrame, select_sql: str) -> None:
        cols = ", ".join(_columns_of(path.stem if path.parent.name == "reference" else path.parent.name))
        self.con.register("frame", frame)
        try:
            if not path.exists():
                self.con.execute(f"copy (select {cols} from ({select_sql})) to {literal(path)} (header)")
                return
            self.con.execute(f"copy (select {cols} from ({select_sql})) to {literal(self._part)} (header false)")
            with path.open("ab") as out, self._part.open("rb") as part:
                shutil.copyfileobj(part, out, 1 << 20)
            self._part.unlink()
        finally:
            self.con.unregister("frame")

    def close(self) -> None:
        self.con.close()


def _columns_of(name: str) -> list[str]:
    from pipelines.landing.sources import BY_NAME

    return list(BY_NAME[name].columns)


def _write_reference_config(
    folder: Path,
    capacity: dict[str, int],
    question_ids: tuple[str, ...],
    mean_month_revenue: float,
    customers: int,
    months: int,
) -> None:
    rows = ["cost_center,practical_capacity_minutes,customer_driven"]
    rows += [f"{c},{capacity[c]},true" for c in TIME_CENTRES]
    rows += ["billing,,true"] + [f"{c},,false" for c in SUSTAINING]
    (folder / "cost_centers.csv").write_text("\n".join(rows) + "\n")

    rows = ["activity,cost_center,driver,method,unit_minutes,share"]
    for activity, centre, driver, method, unit_minutes, share in ACTIVITIES:
        rows.append(
            f"{activity},{centre},{driver},{method},{'' if unit_minutes is None else unit_minutes},"
            f"{'' if share is None else share}"
        )
    (folder / "activities.csv").write_text("\n".join(rows) + "\n")

    labels = {
        "NPS": ("nps", "How likely are you to recommend us to a colleague?"),
        "OVERALL": ("overall", "Overall, how satisfied are you with us?"),
    }
    for attribute in SURVEY_ATTRIBUTES:
        labels[f"ATTR_{attribute.upper()}"] = (
            "attribute",
            f"Satisfaction with {attribute.replace('_', ' ')}",
        )
    rows = ["question_id,kind,label"] + [f'{q},{labels[q][0]},"{labels[q][1]}"' for q in question_ids]
    (folder / "survey_questions.csv").write_text("\n".join(rows) + "\n")

    # Targets a little above what the sample earns, so the statuses tell something.
    annual_profit_target = round(mean_month_revenue * 12 * 0.24, -3)
    clv_target = round(mean_month_revenue * 12 / customers * 0.25, -1)
    new_per_month = max(
        1, round(customers * 0.65 / months)
    )  # 65 % of customers are acquired inside the window
    rows = [
        "metric,segment,target,direction,amber_tolerance,owner,incentive_weight",
        f"customer_profit_t12m,all,{annual_profit_target:.0f},higher,{annual_profit_target * 0.1:.0f},cfo,0.25",
        "pct_unprofitable_customers,all,0.15,lower,0.05,head_of_sales,0.15",
        "unprofitable_revenue_share,all,0.10,lower,0.05,head_of_sales,0.10",
        "retention_rate,all,0.70,higher,0.05,head_of_customer_success,0.15",
        f"new_customers,all,{new_per_month},higher,{max(1, round(new_per_month * 0.2))},head_of_sales,0.10",
        "nps,all,30,higher,10,head_of_customer_success,0.10",
        "satisfaction_index,all,65,higher,5,head_of_customer_success,0.10",
        f"mean_profit_clv,all,{clv_target:.0f},higher,{clv_target * 0.2:.0f},cfo,0.05",
        "pct_unprofitable_customers,enterprise,0.10,lower,0.05,key_account_director,0.00",
        "retention_rate,enterprise,0.85,higher,0.05,key_account_director,0.00",
        "nps,small_business,25,higher,10,head_of_customer_success,0.00",
    ]
    (folder / "scorecard_targets.csv").write_text("\n".join(rows) + "\n")


NAME_A = (
    "Acme",
    "Blue",
    "Cedar",
    "Delta",
    "Eagle",
    "Falcon",
    "Granite",
    "Harbor",
    "Iron",
    "Juniper",
    "Keystone",
    "Lakeside",
    "Maple",
    "Northern",
    "Oak",
    "Pioneer",
    "Quartz",
    "River",
    "Summit",
    "Tri-County",
    "United",
    "Valley",
    "Western",
    "Yellowstone",
)
NAME_B = (
    "Building",
    "Supply",
    "Industrial",
    "Mechanical",
    "Electric",
    "Foods",
    "Logistics",
    "Plastics",
    "Metals",
    "Packaging",
    "Hardware",
    "Components",
    "Services",
    "Marine",
    "Health",
    "Construction",
    "Textiles",
)
NAME_C = ("Inc", "LLC", "Ltd", "Co", "Group", "Partners", "GmbH", "Corp", "& Sons", "Holdings", "Trading")


def landing_checksum(landing: Path) -> str:
    """One SHA-256 over every landing file's relative path and bytes, in path order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(landing)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
