"""What the report embeds: the published marts, read as they are, bounded in months and customers.

:func:`read_publication` opens a published ``cprof.duckdb`` (attached read-only to an in-memory database) and
returns one JSON-ready dictionary. Nothing here computes a figure of the marts' kind: every amount is a
published column, converted to whole cents (exact, so the page can show it and add it up without rounding
errors). Large tables are columnar (one list per column, customers and months as indexes into
``customers`` and ``months``) to keep the page small.

The bound: the latest ``months`` months of the publication, and at most ``customers`` customers, those with
the largest absolute ABC profit over those months (ties by id). Company-level marts (scorecard, retention,
reconciliation, activities, capacity) are small and kept whole for the months included. The page says what
it left out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from pipelines.engines.sql import literal
from pipelines.lib.settings import Settings
from pipelines.publication.report.scenarios import read_scenarios


@dataclass(frozen=True)
class Bounds:
    """How much of a publication one report holds: the latest ``months`` and the ``customers`` that matter
    most by absolute profit. The defaults (the settings' ``report_months``, ``report_customers``) hold the demo
    (2,000 customers, 24 months) whole."""

    months: int = Settings.report_months
    customers: int = Settings.report_customers

    @classmethod
    def of(cls, settings: Settings) -> Bounds:
        return cls(settings.report_months, settings.report_customers)


def _cents(column: str) -> str:
    """A DECIMAL(18,2) column as whole cents (exact)."""
    return f"cast({column} * 100 as bigint)"


def _float(column: str, digits: int) -> str:
    """A rate or score as a double, rounded for the page."""
    return f"round(cast({column} as double), {digits})"


# Per table: the columns embedded, as (name in the page, SQL expression over the mart aliased t).
# m and c are the month and customer indexes (report_months, report_customers).
CUSTOMER_TABLES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "profit": (
        "customer_profitability",
        [
            ("sg", "t.segment"),
            ("gross", _cents("t.gross_revenue")),
            ("disc", _cents("t.discounts")),
            ("ret", _cents("t.returns_credit")),
            ("net", _cents("t.net_revenue")),
            ("cogs", _cents("t.cogs")),
            ("gm", _cents("t.gross_margin")),
            ("cts", _cents("t.cost_to_serve")),
            ("abc", _cents("t.abc_profit")),
            ("toh", _cents("t.traditional_overhead")),
            ("tp", _cents("t.traditional_profit")),
            ("decile", "t.profit_decile"),
            ("quad", "t.matrix_quadrant"),
            ("npr", _float("t.net_price_realisation", 4)),
            ("cpr", _float("t.cost_to_serve_per_revenue", 4)),
        ],
    ),
    "cts": (
        "customer_cost_to_serve",
        [("a", "t.activity"), ("vol", _float("t.driver_volume", 4)), ("cost", _cents("t.allocated_cost"))],
    ),
    "whale": (
        "whale_curve",
        [
            ("rank", "t.customer_rank"),
            ("p12", _cents("t.profit_t12m")),
            ("cpp", _float("t.cumulative_profit_pct", 2)),
            ("ccp", _float("t.cumulative_customer_pct", 2)),
        ],
    ),
    "clv": (
        "customer_clv",
        [
            ("alive", _float("t.p_alive", 3)),
            ("clvr", _cents("t.clv_revenue")),
            ("clvp", _cents("t.clv_profit")),
            ("risk", "t.defection_prone"),  # profit_t12m: the whale curve's, the same figure
        ],
    ),
    "sat": (
        "customer_satisfaction",
        [
            ("resp", "t.responses"),
            ("nps", _float("t.nps", 1)),
            ("csat", _float("t.csat", 1)),
            ("index", _float("t.satisfaction_index", 2)),
        ],
    ),
    "flips": ("costing_comparison", [("dir", "t.flip_direction")]),
    "levers": (
        "customer_profit_levers",
        [
            ("w", "t.time_window"),
            ("a", "t.activity"),
            ("why", "t.lever_reason"),
            ("vol", _float("t.driver_volume", 1)),
            ("norm", _float("t.norm_driver_volume", 1)),
            ("vtn", _float("t.volume_to_norm", 1)),
            ("excess", _cents("t.excess_cost")),
            ("pan", _cents("t.profit_at_norm")),
            ("bep", _float("t.break_even_price_change_pct", 2)),
        ],
    ),
}
CUSTOMER_FILTERS = {"flips": "t.sign_flip"}
# Columns stored as an index into a list of their distinct values (repeated strings cost nothing).
CODED = {"sg", "quad", "a", "dir", "w", "why"}

# Company-level marts: every row of the months included, as lists of rows with these columns.
COMPANY_TABLES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "scorecard": (
        "customer_scorecard",
        [
            ("segment", "t.segment"),
            ("metric", "t.metric"),
            ("actual", "cast(t.actual as double)"),
            ("target", "cast(t.target as double)"),
            ("variance", "cast(t.variance as double)"),
            ("status", "t.status"),
            ("trend", "t.trend"),
            ("owner", "t.owner"),
            ("weight", "cast(t.incentive_weight as double)"),
            ("direction", "t.direction"),
            ("reason", "t.status_reason"),
            ("window", "t.window_months"),
        ],
    ),
    "attainment": (
        "incentive_attainment",
        [
            ("owner", "t.owner"),
            ("attained", "cast(t.attained_weight as double)"),
            ("total", "cast(t.total_weight as double)"),
            ("attainment", "cast(t.attainment as double)"),
            ("not_scored", "cast(t.not_scored_weight as double)"),
        ],
    ),
    "drivers": (
        "satisfaction_drivers",
        [
            ("question", "t.question_id"),
            ("label", "t.label"),
            ("weight", _float("t.importance_weight", 6)),
            ("mean", _float("t.mean_score", 4)),
            ("quadrant", "t.ipa_quadrant"),
            ("responses", "t.responses"),
            ("r2", _float("t.r_squared", 4)),
            ("window", "t.window_months"),
        ],
    ),
    "retention": (
        "customer_retention",
        [
            ("segment", "t.segment"),
            ("active", "t.active_customers"),
            ("prior", "t.prior_active_customers"),
            ("retained", "t.retained_customers"),
            ("new", "t.new_customers"),
            ("churned", "t.churned_customers"),
            ("rate", "cast(t.retention_rate as double)"),
        ],
    ),
    "recon": (
        "company_reconciliation",
        [
            ("gm", _cents("t.gross_margin")),
            ("ledger", _cents("t.ledger_cost")),
            ("op", _cents("t.operating_profit")),
            ("abc", _cents("t.abc_customer_profit")),
            ("unused", _cents("t.unused_capacity_cost")),
            ("sust", _cents("t.sustaining_cost")),
            ("trad", _cents("t.traditional_customer_profit")),
            ("balanced", "t.balanced"),
        ],
    ),
    "activities": (
        "activity_costs",
        [
            ("centre", "t.cost_center"),
            ("activity", "t.activity"),
            ("method", "t.method"),
            ("driver", "t.driver"),
            ("volume", "cast(t.driver_volume as double)"),
            ("rate", "cast(t.rate_per_unit as double)"),
            ("cost", _cents("t.activity_cost")),
            ("unit_minutes", "cast(t.unit_minutes as double)"),
            ("share", "cast(t.share as double)"),
        ],
    ),
    "capacity": (
        "cost_center_capacity",
        [
            ("centre", "t.cost_center"),
            ("sustaining", "t.is_business_sustaining"),
            ("ledger", _cents("t.ledger_cost")),
            ("assigned", _cents("t.assigned_cost")),
            ("unused", _cents("t.unused_capacity_cost")),
            ("sust", _cents("t.sustaining_cost")),
            ("capacity", "t.practical_capacity_minutes"),
            ("used", "cast(t.used_minutes as double)"),
            ("util", "cast(t.utilisation as double)"),
            ("over", "t.is_over_capacity"),
        ],
    ),
}


# Labels of codes: (kind in the page, label dimension, code column, label column). A publication made before a
# dimension or its label column has none of that kind: the page then shows the code in words.
LABELS: list[tuple[str, str, str, str]] = [
    ("segment", "dim_segments", "segment", "segment_label"),
    ("region", "dim_regions", "region", "region_label"),
    ("matrix_quadrant", "dim_matrix_quadrants", "matrix_quadrant", "matrix_quadrant_label"),
    ("ipa_quadrant", "dim_ipa_quadrants", "ipa_quadrant", "ipa_quadrant_label"),
    ("activity", "dim_activities", "activity", "activity_label"),
    ("cost_center", "dim_cost_centers", "cost_center", "cost_center_label"),
    ("driver", "dim_drivers", "driver", "driver_label"),
    ("metric", "dim_scorecard_metrics", "metric", "label"),
    ("owner", "dim_scorecard_owners", "owner", "owner_display_name"),
]


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = con.execute(
        "select column_name from information_schema.columns "
        "where table_catalog = 'pub' and table_schema = 'marts' and table_name = ?",
        [table],
    ).fetchall()
    return {name for (name,) in rows}


def read_labels(con: duckdb.DuckDBPyConnection, tables: set[str]) -> dict[str, dict[str, str]]:
    """Each kind of code's labels, ``{kind: {code: label}}``, from the publication's label dimensions."""
    labels: dict[str, dict[str, str]] = {}
    for kind, table, code, label in LABELS:
        if table in tables and {code, label} <= _columns(con, table):
            labels[kind] = dict(
                con.execute(
                    f"select {code}, {label} from pub.marts.{table} where {code} is not null and {label} is not null"
                ).fetchall()
            )
    return labels


def read_currency(con: duckdb.DuckDBPyConnection, tables: set[str]) -> str | None:
    """The publication's currency (ISO 4217 code, marts.publication_info), or None when it names none."""
    if "publication_info" not in tables or "currency" not in _columns(con, "publication_info"):
        return None
    row = con.execute("select currency from pub.marts.publication_info limit 1").fetchone()
    return row[0] if row else None


def read_units(con: duckdb.DuckDBPyConnection, tables: set[str]) -> dict[str, str]:
    """Each scorecard metric's unit (customer_scorecard.unit), when the publication carries it."""
    if "customer_scorecard" not in tables or "unit" not in _columns(con, "customer_scorecard"):
        return {}
    return dict(
        con.execute(
            "select metric, any_value(unit) from pub.marts.customer_scorecard where unit is not null group by 1"
        ).fetchall()
    )


# An expression over marts.customer_clv: true for the rows of a month whose CLV models were fitted (a month not
# fitted has no model figures).
CLV_FITTED = "fit_status = 'fitted'"


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "select table_name from information_schema.tables where table_catalog = 'pub' and table_schema = 'marts'"
    ).fetchall()
    return {name for (name,) in rows}


def _columnar(rows: list[tuple], names: list[str]) -> dict[str, list]:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    return {name: list(values) for name, values in zip(names, columns, strict=True)}


def _code(table: dict[str, list], codes: dict[str, list[str]]) -> None:
    """Replace the values of coded columns by indexes into ``codes[column]`` (shared across tables)."""
    for name in CODED & table.keys():
        values = codes.setdefault(name, [])
        index = {value: i for i, value in enumerate(values)}
        coded = []
        for value in table[name]:
            if value is None:
                coded.append(None)
                continue
            if value not in index:
                index[value] = len(values)
                values.append(value)
            coded.append(index[value])
        table[name] = coded


def read_publication(database: Path, bounds: Bounds | None = None) -> dict[str, Any]:
    """The report's data from the publication in ``database``: see the module's docstring."""
    bounds = bounds or Bounds()
    database = Path(database)
    with duckdb.connect() as con:
        con.execute(f"attach {literal(database)} as pub (read_only)")
        tables = _tables(con)
        if "customer_profitability" not in tables:
            raise ValueError(f"{database} has no table marts.customer_profitability: not a publication")
        all_months = [
            row[0]
            for row in con.execute(
                "select distinct period from pub.marts.customer_profitability order by period"
            ).fetchall()
        ]
        months = all_months[-bounds.months :]  # none in an empty publication: the page says so
        first = months[0] if months else None
        con.execute(
            "create temp table report_months as "
            "select period, cast(row_number() over (order by period) - 1 as integer) as m "
            "from (select unnest(?::date[]) as period)",
            [months],
        )
        customers_total = con.execute(
            "select count(distinct customer_id) from pub.marts.customer_profitability where period >= ?",
            [first],
        ).fetchone()[0]
        con.execute(
            """
            create temp table report_customers as
            with ranked as (
                select customer_id, abs(sum(abc_profit)) as weight
                from pub.marts.customer_profitability
                where period >= ?
                group by customer_id
                order by weight desc, customer_id
                limit ?
            )
            select
                ranked.customer_id,
                cast(row_number() over (order by ranked.customer_id) - 1 as integer) as c,
                arg_max(p.customer_name, p.period) as name,
                arg_max(p.segment, p.period) as segment,
                arg_max(p.region, p.period) as region
            from ranked
            inner join pub.marts.customer_profitability as p on p.customer_id = ranked.customer_id
            group by ranked.customer_id
            order by c
            """,
            [first, bounds.customers],
        )
        customers = _columnar(
            con.execute(
                "select customer_id, name, segment, region from report_customers order by c"
            ).fetchall(),
            ["id", "name", "segment", "region"],
        )
        codes: dict[str, list[str]] = {}
        data: dict[str, Any] = {}
        for key, (table, columns) in CUSTOMER_TABLES.items():
            if table not in tables:
                data[key] = None
                continue
            where = CUSTOMER_FILTERS.get(key, "true")
            rows = con.execute(
                f"select months.m, customers.c, {', '.join(sql for _, sql in columns)} "
                f"from pub.marts.{table} as t "
                "inner join report_months as months on t.period = months.period "
                "inner join report_customers as customers on t.customer_id = customers.customer_id "
                f"where {where} order by months.m, customers.c"
            ).fetchall()
            data[key] = _columnar(rows, ["m", "c", *(name for name, _ in columns)])
            _code(data[key], codes)
        for key, (table, columns) in COMPANY_TABLES.items():
            if table not in tables:
                data[key] = None
                continue
            rows = con.execute(
                f"select months.m, {', '.join(sql for _, sql in columns)} "
                f"from pub.marts.{table} as t "
                "inner join report_months as months on t.period = months.period order by all"
            ).fetchall()
            data[key] = [dict(zip(["m", *(name for name, _ in columns)], row, strict=True)) for row in rows]
        whale_size, whale_window, whale_peak, clv_fitted = {}, {}, {}, {}
        if "whale_curve" in tables:
            # The peak of each month's curve, over all its customers (held in the report or not): the customer
            # with the largest cumulative profit (exact, in cents; the percentages are rounded to 4 decimals, so
            # customers of tiny profit tie on them), the first of equals.
            for m, size, window, cpp, ccp, rank in con.execute(
                "select months.m, count(*), any_value(t.window_months), "
                "arg_max(cast(t.cumulative_profit_pct as double), [t.cumulative_profit, -t.customer_rank]), "
                "arg_max(cast(t.cumulative_customer_pct as double), [t.cumulative_profit, -t.customer_rank]), "
                "arg_max(t.customer_rank, [t.cumulative_profit, -t.customer_rank]) "
                "from pub.marts.whale_curve as t "
                "inner join report_months as months on t.period = months.period group by all"
            ).fetchall():
                whale_size[m], whale_window[m] = size, window
                whale_peak[m] = {"cpp": cpp, "ccp": ccp, "rank": rank}
        if "customer_clv" in tables:
            clv_fitted = dict(
                con.execute(
                    f"select months.m, bool_and({CLV_FITTED}) from pub.marts.customer_clv as t "
                    "inner join report_months as months on t.period = months.period group by all"
                ).fetchall()
            )
        scenarios = read_scenarios(con, tables)
        labels, currency, units = (
            read_labels(con, tables),
            read_currency(con, tables),
            read_units(con, tables),
        )
        run = None
        if "publish_log" in tables:
            run = con.execute(
                "select run_id, published_at from pub.marts.publish_log order by published_at desc limit 1"
            ).fetchone()
    return {
        "meta": {
            "database": database.name,
            "currency": currency,
            "run_id": run[0] if run else None,
            "published_at": f"{run[1]:%Y-%m-%d %H:%M} UTC" if run else None,
            "generated_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "months_published": [f"{m:%Y-%m}" for m in all_months[:1] + all_months[-1:]],
            "months_total": len(all_months),
            "customers_total": int(customers_total),
            "bounds": asdict(bounds),
            "whale_customers": {int(m): int(n) for m, n in whale_size.items()},
            "whale_window_months": {int(m): int(n) for m, n in whale_window.items()},
            "whale_peak": {int(m): peak for m, peak in whale_peak.items()},
            "clv_fitted": {int(m): bool(fitted) for m, fitted in clv_fitted.items()},
        },
        "months": [f"{m:%Y-%m}" for m in months],
        "customers": customers,
        "codes": codes,
        "labels": labels,
        "units": units,
        "scenarios": scenarios,
        **data,
    }
