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

import csv
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
                "product_number": np.arange(config.products),
                "category_code": products.category,
                "list_price_cents": products.list_cents,
                "unit_cost_cents": products.cost_cents,
            }
        ),
        f"""select printf('P%05d', product_number + 1) as product_id, {_lookup(CATEGORIES)}[category_code + 1] as category,
                   (list_price_cents / 100)::decimal(18,2) as list_price,
                   (unit_cost_cents / 100)::decimal(18,2) as unit_cost
            from frame order by product_number""",
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
                None if name == "customers" else "month",
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
        pd.DataFrame(
            {
                "cost_center_code": gi.ravel(),
                "month": mi.ravel(),
                "account_code": ai.ravel(),
                "amount_cents": split.ravel(),
            }
        ),
        f"""select {_lookup(tuple(calendar.labels))}[month + 1] as period,
                   {_lookup(tuple(centres))}[cost_center_code + 1] as cost_center,
                   {_lookup(tuple(a for a, _ in ACCOUNTS))}[account_code + 1] as account,
                   (amount_cents / 100)::decimal(18,2) as amount, month
            from frame order by month, cost_center_code, account_code""",
        "month",
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


# Each entity is drawn by its own function, in this order (the random stream is consumed in this order, so a
# seed gives the same sample as it always did). Arrays are indexed by the block's customer number (0..n-1), order
# number, line number and so on; the frames written at the end carry the landing columns' names, as codes and
# day or second offsets that the writer's SQL turns into the landing values.


@dataclass(frozen=True)
class _Customers:
    segment: np.ndarray  # index into SEGMENTS
    region: np.ndarray  # index into REGIONS
    size: np.ndarray  # relative spend
    first_day: np.ndarray  # day of the first order in the window
    acquired_day: np.ndarray  # the acquisition: the first order, or before the window (early customers)
    demanding: np.ndarray  # costly to serve: express, small orders, tickets, visits

    @property
    def n(self) -> int:
        return self.segment.size


def _draw_customers(
    rng: np.random.Generator, n: int, horizon: int
) -> tuple[_Customers, np.ndarray, np.ndarray]:
    """Customers, and each one's BG/NBD purchase rate per day and drop-out probability."""
    segment = rng.choice(3, n, p=[0.08, 0.27, 0.65])
    region = rng.choice(len(REGIONS), n, p=[0.25, 0.22, 0.2, 0.2, 0.13])
    size = np.exp(rng.normal(0.0, 0.8, n)) * np.array([6.0, 2.5, 1.0])[segment]
    rate = rng.gamma(BG_NBD_TRUTH["r"], 1.0 / BG_NBD_TRUTH["alpha"], n)  # purchases per day while alive
    p_drop = rng.beta(BG_NBD_TRUTH["a"], BG_NBD_TRUTH["b"], n)
    # A third of the base is already a customer when the window opens (first order in the first 45 days);
    # the rest are acquired evenly over the window.
    early = rng.random(n) < 0.35
    first_day = np.where(early, rng.integers(0, min(45, horizon), n), rng.integers(0, horizon, n))
    value_rank = (rate * size).argsort().argsort() / n
    demanding = rng.random(n) < np.where(value_rank > 0.8, 0.35, 0.05)
    # The CRM dates an early customer's acquisition before the window (1 day to 5 years before it opens), so that
    # the window's first months do not count them as acquisitions. Drawn from a child stream: the sample's own
    # stream, and so every other figure of a seeded sample, is untouched.
    before = rng.spawn(1)[0].integers(1, 5 * 365 + 1, n)
    acquired_day = np.where(early, -before, first_day)
    return _Customers(segment, region, size, first_day, acquired_day, demanding), rate, p_drop


@dataclass(frozen=True)
class _Orders:
    customer: np.ndarray
    day: np.ndarray
    express: np.ndarray  # bool
    channel: np.ndarray  # index into CHANNELS
    lines: np.ndarray  # lines per order

    @property
    def n(self) -> int:
        return self.customer.size


def _draw_orders(
    rng: np.random.Generator, customers: _Customers, rate: np.ndarray, p_drop: np.ndarray, horizon: int
) -> _Orders:
    """The BG/NBD purchase process: a first order on the acquisition day, then repeats while alive."""
    n, first_day, demanding, size = customers.n, customers.first_day, customers.demanding, customers.size
    window = (horizon - first_day).astype(float)  # days observed after the first purchase
    repeat_alive = rng.geometric(p_drop)  # repeat purchases made before dropping out
    poisson_count = rng.poisson(rate * window)
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
    repeat_day = first_day[owner] + np.floor(window[owner] * within / total[owner]).astype(np.int64)
    customer = np.concatenate([np.arange(n), owner])
    day = np.minimum(np.concatenate([first_day, repeat_day]).astype(np.int64), horizon - 1)
    sort = np.lexsort((customer, day))
    customer, day = customer[sort], day[sort]
    n_orders = customer.size

    express = rng.random(n_orders) < np.where(demanding, 0.60, 0.04)[customer]
    channel_p = np.array([[0.25, 0.55, 0.10, 0.10], [0.45, 0.25, 0.20, 0.10], [0.70, 0.02, 0.25, 0.03]])[
        customers.segment[customer]
    ]
    channel_p = np.where(demanding[customer, None], np.array([0.15, 0.05, 0.45, 0.35]), channel_p)
    channel = (rng.random(n_orders)[:, None] > np.cumsum(channel_p, axis=1)).sum(axis=1)
    channel = np.minimum(channel, len(CHANNELS) - 1)
    lines_mean = np.minimum(np.where(demanding, 0.5 + 0.8 * size, 1.5 + 1.6 * size), 40.0)[customer]
    lines = 1 + rng.poisson(lines_mean)
    return _Orders(customer, day, express, channel, lines)


@dataclass(frozen=True)
class _OrderLines:
    order: np.ndarray  # order number of each line
    line_no: np.ndarray  # 1.. within its order
    customer: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    unit_price_cents: np.ndarray
    discount_cents: np.ndarray

    @property
    def n(self) -> int:
        return self.order.size

    @property
    def net_cents(self) -> int:
        return int((self.quantity * self.unit_price_cents - self.discount_cents).sum())


def _draw_order_lines(
    rng: np.random.Generator, customers: _Customers, orders: _Orders, products: _Products
) -> _OrderLines:
    """Each order's lines: products by popularity, quantities by customer size, negotiated prices, promotions."""
    order = np.repeat(np.arange(orders.n), orders.lines)
    line_no = np.arange(order.size) - np.repeat(np.cumsum(orders.lines) - orders.lines, orders.lines) + 1
    customer = orders.customer[order]
    product = rng.choice(products.list_cents.size, order.size, p=products.popularity)
    qty_mean = np.minimum(np.where(customers.demanding, 1.2 * customers.size, 2.0 * customers.size), 60.0)
    quantity = 1 + rng.poisson(qty_mean[customer])
    concession = np.array([0.12, 0.07, 0.02])[customers.segment] + np.where(customers.demanding, 0.10, 0.0)
    unit_price_cents = np.round(products.list_cents[product] * (1 - concession[customer])).astype(np.int64)
    line_value = quantity * unit_price_cents
    promo = rng.random(order.size) < 0.12
    discount_cents = np.where(promo, np.round(line_value * rng.uniform(0.03, 0.15, order.size)), 0).astype(
        np.int64
    )
    return _OrderLines(order, line_no, customer, product, quantity, unit_price_cents, discount_cents)


@dataclass(frozen=True)
class _Returns:
    line: np.ndarray  # the returned order line
    day: np.ndarray
    quantity: np.ndarray
    reason: np.ndarray  # index into RETURN_REASONS


def _draw_returns(
    rng: np.random.Generator, customers: _Customers, orders: _Orders, lines: _OrderLines, horizon: int
) -> _Returns:
    """Returns of order lines, days after the order; demanding customers return more."""
    returned = rng.random(lines.n) < np.where(customers.demanding, 0.15, 0.02)[lines.customer]
    line = np.flatnonzero(returned)
    day = orders.day[lines.order[line]] + 2 + rng.geometric(0.1, line.size)
    keep = day < horizon
    line, day = line[keep], day[keep]
    quantity = np.minimum(lines.quantity[line], 1 + rng.poisson(0.5, line.size))
    order = np.lexsort((line, day))
    line, day, quantity = line[order], day[order], quantity[order]
    reason = rng.integers(0, len(RETURN_REASONS), line.size)
    return _Returns(line, day, quantity, reason)


@dataclass(frozen=True)
class _SupportTickets:
    customer: np.ndarray
    second: np.ndarray  # seconds since the window opened
    channel: np.ndarray  # index into TICKET_CHANNELS
    handling_centiminutes: np.ndarray


def _draw_support_tickets(
    rng: np.random.Generator,
    customers: _Customers,
    orders: _Orders,
    lines: _OrderLines,
    returns: _Returns,
    horizon: int,
) -> _SupportTickets:
    """Tickets following orders (demanding customers open many) and half of the returns."""
    per_order = rng.poisson(np.where(customers.demanding, 1.5, 0.06)[orders.customer])
    source_order = np.repeat(np.arange(orders.n), per_order)
    customer = orders.customer[source_order]
    second = (orders.day[source_order] + rng.exponential(6.0, source_order.size)) * 86400.0
    about_returns = returns.line[rng.random(returns.line.size) < 0.5]
    customer = np.concatenate([customer, lines.customer[about_returns]])
    second = np.concatenate(
        [
            second,
            orders.day[lines.order[about_returns]] * 86400.0 + rng.uniform(0, 20, about_returns.size) * 86400,
        ]
    )
    keep = second < horizon * 86400.0
    customer, second = customer[keep], np.floor(second[keep]).astype(np.int64)
    minutes_mean = np.where(customers.demanding, 60.0, 14.0)[customer]
    # At most the suites' plausible maximum (8 hours): one ticket in millions would exceed it otherwise.
    centiminutes = np.minimum(
        np.round(rng.gamma(2.0, minutes_mean / 2.0) * 100).astype(np.int64) + 100,
        MAX_HANDLING_MINUTES * 100,
    )
    channel = rng.choice(len(TICKET_CHANNELS), customer.size, p=[0.5, 0.35, 0.15])
    order = np.lexsort((customer, second))
    return _SupportTickets(customer[order], second[order], channel[order], centiminutes[order])


def _active_months(
    customers: _Customers, orders: _Orders, calendar: _Calendar
) -> tuple[np.ndarray, np.ndarray]:
    """(customer, month) for every month from a customer's acquisition to the month after its last order."""
    first_month = calendar.month_of(customers.first_day)
    last_order_day = np.zeros(customers.n, dtype=np.int64)
    np.maximum.at(last_order_day, orders.customer, orders.day)
    last_month = np.minimum(calendar.month_of(last_order_day) + 1, calendar.months - 1)
    length = last_month - first_month + 1
    customer = np.repeat(np.arange(customers.n), length)
    month = np.arange(customer.size) - np.repeat(np.cumsum(length) - length, length) + first_month[customer]
    return customer, month


@dataclass(frozen=True)
class _SalesVisits:
    customer: np.ndarray
    day: np.ndarray
    quarter_hours: np.ndarray


def _draw_sales_visits(
    rng: np.random.Generator,
    customers: _Customers,
    active: tuple[np.ndarray, np.ndarray],
    calendar: _Calendar,
) -> _SalesVisits:
    """Field-sales visits in the months a customer is active: large accounts and demanding ones get more."""
    active_customer, active_month = active
    starts = calendar.month_start_days
    rate = np.array([0.9, 0.3, 0.03])[customers.segment] + np.where(
        customers.demanding, 1.5 + 0.6 * np.minimum(customers.size, 15.0), 0.0
    )
    count = rng.poisson(rate[active_customer])
    customer = np.repeat(active_customer, count)
    month = np.repeat(active_month, count)
    day = starts[month] + np.floor(rng.random(customer.size) * (starts[month + 1] - starts[month])).astype(
        np.int64
    )
    quarter_hours = 2 + rng.poisson(np.where(customers.demanding, 8.0, 5.0)[customer])  # hours in quarters
    order = np.lexsort((customer, day))
    return _SalesVisits(customer[order], day[order], quarter_hours[order])


@dataclass(frozen=True)
class _SurveyResponses:
    customer: np.ndarray
    second: np.ndarray
    scores: np.ndarray  # responses x questions: NPS, overall, then the attributes


def _draw_survey_responses(
    rng: np.random.Generator,
    customers: _Customers,
    active: tuple[np.ndarray, np.ndarray],
    calendar: _Calendar,
) -> _SurveyResponses:
    """Survey responses in active months. Attribute ratings: a persistent customer level per attribute plus
    response noise, independent across attributes; demanding customers rate delivery and support lower. The
    overall rating is driven by the attributes with the weights of SURVEY_TRUTH."""
    active_customer, active_month = active
    starts = calendar.month_start_days
    responds = (
        rng.random(active_customer.size) < np.array([0.25, 0.12, 0.06])[customers.segment[active_customer]]
    )
    customer, month = active_customer[responds], active_month[responds]
    n = customer.size
    second = np.floor((starts[month] + rng.random(n) * (starts[month + 1] - starts[month])) * 86400.0).astype(
        np.int64
    )
    n_attr = len(SURVEY_ATTRIBUTES)
    level = rng.normal(6.8, 1.1, (customers.n, n_attr))
    level[:, 1] -= np.where(customers.demanding, 1.0, 0.0)
    level[:, 3] -= np.where(customers.demanding, 1.0, 0.0)
    attributes = np.clip(np.round(level[customer] + rng.normal(0, 1.0, (n, n_attr))), 1, 10).astype(np.int64)
    weights = np.array([SURVEY_TRUTH[a] for a in SURVEY_ATTRIBUTES])
    coef = np.sqrt(weights)  # independent, equal-variance ratings: R^2 shares are coef^2 / sum(coef^2)
    overall_raw = 6.8 + (attributes - attributes.mean(axis=0)) @ coef * 0.9 + rng.normal(0, 0.5, n)
    overall = np.clip(np.round(overall_raw), 1, 10).astype(np.int64)
    nps = np.clip(np.round(overall_raw + 1.2 + rng.normal(0, 0.8, n)), 0, 10).astype(np.int64)
    order = np.lexsort((customer, second))
    scores = np.column_stack([nps, overall, attributes])[order]
    return _SurveyResponses(customer[order], second[order], scores)


def _draw_block(
    rng: np.random.Generator,
    n: int,
    ids: _Ids,
    calendar: _Calendar,
    products: _Products,
    question_ids: tuple[str, ...],
) -> _Block:
    """Draw ``n`` customers and everything they do; identifiers continue from ``ids``, which is advanced."""
    horizon, month_of = calendar.horizon, calendar.month_of
    customers, rate, p_drop = _draw_customers(rng, n, horizon)
    orders = _draw_orders(rng, customers, rate, p_drop, horizon)
    lines = _draw_order_lines(rng, customers, orders, products)
    returns = _draw_returns(rng, customers, orders, lines, horizon)
    tickets = _draw_support_tickets(rng, customers, orders, lines, returns, horizon)
    active = _active_months(customers, orders, calendar)
    visits = _draw_sales_visits(rng, customers, active, calendar)
    responses = _draw_survey_responses(rng, customers, active, calendar)

    m = calendar.months
    order_month = month_of(orders.day)
    volumes = {  # monthly driver volumes, for the ledger
        "orders": np.bincount(order_month, minlength=m).astype(float),
        "order_lines": np.bincount(order_month, weights=orders.lines, minlength=m),
        "express_orders": np.bincount(order_month, weights=orders.express, minlength=m),
        "returns": np.bincount(month_of(returns.day), minlength=m).astype(float),
        "support_minutes": np.bincount(
            month_of(tickets.second // 86400), weights=tickets.handling_centiminutes / 100.0, minlength=m
        ),
        "visit_minutes": np.bincount(month_of(visits.day), weights=visits.quarter_hours * 15.0, minlength=m),
    }

    # Rows to write, numbered on from the blocks before; ``month`` is the month file a row goes to.
    c0, o0 = ids.customers, ids.orders
    questions, n_resp = len(question_ids), responses.customer.size
    frames = {
        "customers": pd.DataFrame(
            {
                "customer_number": c0 + np.arange(n),
                "segment_code": customers.segment,
                "region_code": customers.region,
                "acquired_day": customers.acquired_day,
            }
        ),
        "order_lines": pd.DataFrame(
            {
                "order_number": o0 + lines.order,
                "line_no": lines.line_no,
                "order_day": orders.day[lines.order],
                "customer_number": c0 + lines.customer,
                "product_number": lines.product,
                "quantity": lines.quantity,
                "unit_price_cents": lines.unit_price_cents,
                "discount_cents": lines.discount_cents,
                "ship_mode_code": orders.express[lines.order].astype(np.int8),
                "order_channel_code": orders.channel[lines.order],
                "month": month_of(orders.day[lines.order]),
            }
        ),
        "returns": pd.DataFrame(
            {
                "return_number": ids.returns + np.arange(returns.line.size),
                "order_number": o0 + lines.order[returns.line],
                "line_no": lines.line_no[returns.line],
                "return_day": returns.day,
                "quantity": returns.quantity,
                "reason_code": returns.reason,
                "month": month_of(returns.day),
            }
        ),
        "support_tickets": pd.DataFrame(
            {
                "ticket_number": ids.tickets + np.arange(tickets.customer.size),
                "customer_number": c0 + tickets.customer,
                "opened_second": tickets.second,
                "channel_code": tickets.channel,
                "handling_centiminutes": tickets.handling_centiminutes,
                "month": month_of(tickets.second // 86400),
            }
        ),
        "sales_visits": pd.DataFrame(
            {
                "visit_number": ids.visits + np.arange(visits.customer.size),
                "customer_number": c0 + visits.customer,
                "visit_day": visits.day,
                "quarter_hours": visits.quarter_hours,
                "month": month_of(visits.day),
            }
        ),
        "survey_responses": pd.DataFrame(
            {
                "response_number": ids.responses + np.repeat(np.arange(n_resp), questions),
                "customer_number": c0 + np.repeat(responses.customer, questions),
                "responded_second": np.repeat(responses.second, questions),
                "question_code": np.tile(np.arange(questions), n_resp),
                "score": responses.scores.ravel(),
                "month": np.repeat(month_of(responses.second // 86400), questions),
            }
        ),
    }
    ids.customers += n
    ids.orders += orders.n
    ids.returns += returns.line.size
    ids.tickets += tickets.customer.size
    ids.visits += visits.customer.size
    ids.responses += n_resp
    return _Block(frames, volumes, lines.net_cents, lines.n)


def _lookup(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _customers_sql(origin: str, question_ids: tuple[str, ...]) -> str:
    i = "customer_number"
    return f"""select printf('C%06d', {i} + 1) as customer_id,
                   {_lookup(NAME_A)}[1 + ({i} * 7) % {len(NAME_A)}] || ' ' || {_lookup(NAME_B)}[1 + ({i} * 13 + {i} // 50) % {len(NAME_B)}]
                     || ' ' || {_lookup(NAME_C)}[1 + ({i} * 3 + {i} // 7) % {len(NAME_C)}] as customer_name,
                   {_lookup(SEGMENTS)}[segment_code + 1] as segment, {_lookup(REGIONS)}[region_code + 1] as region,
                   ({origin} + acquired_day::integer)::date as acquired_date
            from frame order by {i}"""


def _order_lines_sql(origin: str, question_ids: tuple[str, ...]) -> str:
    return f"""select printf('O%09d', order_number + 1) as order_id, line_no,
                   ({origin} + order_day::integer)::date as order_date,
                   printf('C%06d', customer_number + 1) as customer_id, printf('P%05d', product_number + 1) as product_id,
                   quantity, (unit_price_cents / 100)::decimal(18,2) as unit_price,
                   (discount_cents / 100)::decimal(18,2) as discount_amount,
                   {_lookup(SHIP_MODES)}[ship_mode_code + 1] as ship_mode,
                   {_lookup(CHANNELS)}[order_channel_code + 1] as order_channel, month
            from frame order by order_number, line_no"""


def _returns_sql(origin: str, question_ids: tuple[str, ...]) -> str:
    return f"""select printf('R%08d', return_number + 1) as return_id, printf('O%09d', order_number + 1) as order_id,
                   line_no, ({origin} + return_day::integer)::date as return_date, quantity,
                   {_lookup(RETURN_REASONS)}[reason_code + 1] as reason, month
            from frame order by return_number"""


def _support_tickets_sql(origin: str, question_ids: tuple[str, ...]) -> str:
    return f"""select printf('T%08d', ticket_number + 1) as ticket_id, printf('C%06d', customer_number + 1) as customer_id,
                   {origin}::timestamp + to_seconds(opened_second) as opened_at,
                   {_lookup(TICKET_CHANNELS)}[channel_code + 1] as channel,
                   (handling_centiminutes / 100)::decimal(10,2) as handling_minutes, month
            from frame order by ticket_number"""


def _sales_visits_sql(origin: str, question_ids: tuple[str, ...]) -> str:
    return f"""select printf('V%08d', visit_number + 1) as visit_id, printf('C%06d', customer_number + 1) as customer_id,
                   ({origin} + visit_day::integer)::date as visit_date, (quarter_hours / 4)::decimal(6,2) as hours,
                   month
            from frame order by visit_number"""


def _survey_responses_sql(origin: str, question_ids: tuple[str, ...]) -> str:
    return f"""select printf('S%08d', response_number + 1) as response_id,
                   printf('C%06d', customer_number + 1) as customer_id,
                   {origin}::timestamp + to_seconds(responded_second) as responded_at,
                   {_lookup(question_ids)}[question_code + 1] as question_id, score, month
            from frame order by response_number, question_code"""


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
            self.con.execute(
                f"copy (select {cols} from ({select_sql})) to {literal(self._part)} (header false)"
            )
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
    with (folder / "scenarios.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(_columns_of("scenarios"))
        writer.writerows(SCENARIOS)


# Five what-ifs a finance team would try (docs/DESIGN.md, Scenarios), over the release's trailing 12 months.
# The model prices lines, not deliveries, so an express surcharge cannot be a unit_price change; it is modelled
# by what it would do to demand: a third of express orders shipped standard instead (both activities driven
# by express orders). Small businesses are the customers with support and visit costs out of proportion.
EXPRESS_SURCHARGE = "Surcharge on express orders: a third of them ship standard"
BETTER_SUPPORT = (
    "Support small businesses rate 1.5 points higher, from a customer service team costing a tenth more"
)
SMALLER_FIELD_TEAM = "Half the visits to small businesses, and a field sales team a fifth smaller to match"
SCENARIOS = (
    # scenario, description, lever, target, operation, value, first_month, last_month
    (
        "express_surcharge",
        EXPRESS_SURCHARGE,
        "driver_volume",
        "dispatch_express",
        "multiply",
        "0.666667",
        "",
        "",
    ),
    ("express_surcharge", EXPRESS_SURCHARGE, "driver_volume", "rush_billing", "multiply", "0.666667", "", ""),
    (
        "self_service_support",
        "Small businesses moved to self-service support: 60 % fewer support minutes",
        "driver_volume",
        "resolve_ticket:small_business",
        "multiply",
        "0.4",
        "",
        "",
    ),
    (
        "fewer_visits",
        "Half the field visits to small businesses, the accounts visits do not pay for",
        "driver_volume",
        "visit_customer:small_business",
        "multiply",
        "0.5",
        "",
        "",
    ),
    # The same cut of visits, and the capacity it frees cut too (activity-based budgeting): a field sales team a
    # fifth smaller, in minutes and in cost. Demand alone moves cost into unused capacity; only the cut of
    # spending moves operating profit.
    *(
        ("smaller_field_team", SMALLER_FIELD_TEAM, lever, target, "multiply", value, "", "")
        for lever, target, value in (
            ("driver_volume", "visit_customer:small_business", "0.5"),
            ("practical_capacity_minutes", "field_sales", "0.8"),
            ("ledger_cost", "field_sales", "0.8"),
        )
    ),
    # "Should we invest in customer experience?": support that small businesses rate 1.5 points higher, paid for
    # by a customer service team costing a tenth more. Its cost reaches operating profit; what it is worth goes
    # through the satisfaction-retention link to profit CLV (scenario_customer_value).
    *(
        ("better_support", BETTER_SUPPORT, lever, target, operation, value, "", "")
        for lever, target, operation, value in (
            ("satisfaction", "ATTR_SUPPORT_QUALITY:small_business", "add", "1.5"),
            ("ledger_cost", "customer_service", "multiply", "1.1"),
        )
    ),
)


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
