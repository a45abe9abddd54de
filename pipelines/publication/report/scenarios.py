"""What the report's scenario view embeds: the published scenario marts (docs/DESIGN.md, Scenarios), read as
they are, for the report's months that are scenario months.

Every amount is a published column in whole cents, as in :mod:`pipelines.publication.report.data`. The whale
curves both ways are thinned to at most ``WHALE_POINTS`` points per scenario and month (every k-th customer,
the first, the last and the peak: the curve's shape and its peak exactly as published); the customers who move
most are the ``MOVERS`` with the largest absolute change of ABC profit per scenario and month. What a
`satisfaction` lever is worth (scenario_customer_value) is summed per scenario and month: the customers it moves,
their mean index both ways, the customers expected to stay active the next 12 months (the sum of the
probabilities) and profit CLV (a value as of the month, not a flow: never summed over months).
"""

from __future__ import annotations

from typing import Any

import duckdb

WHALE_POINTS = 200
MOVERS = 10
SCENARIO_TABLES = (
    "dim_scenarios",
    "scenario_summary",
    "scenario_cost_center_capacity",
    "scenario_comparison",
    "scenario_whale_curve",
)


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def read_scenarios(con: duckdb.DuckDBPyConnection, tables: set[str]) -> dict[str, Any] | None:
    """The scenario view's data, from the publication attached as ``pub`` (temp tables ``report_months`` and
    ``report_customers`` of :func:`~pipelines.publication.report.data.read_publication`); None when the
    publication has no scenario marts (one published before them)."""
    if not set(SCENARIO_TABLES) <= tables:
        return None
    scenarios = _dicts(
        con,
        "select scenario as name, description, levers, strftime(first_period, '%Y-%m') as first, "
        "strftime(last_period, '%Y-%m') as last from pub.marts.dim_scenarios where not is_baseline "
        "order by scenario",
    )
    summary = _dicts(
        con,
        """
        select t.scenario as s, months.m, cast(t.operating_profit * 100 as bigint) as op,
            cast(t.abc_customer_profit * 100 as bigint) as abc, cast(t.unused_capacity_cost * 100 as bigint) as unused,
            cast(t.traditional_customer_profit * 100 as bigint) as trad, cast(t.net_revenue * 100 as bigint) as net,
            cast(t.cost_to_serve * 100 as bigint) as cts, t.unprofitable_customers as unprofitable,
            t.customers, round(cast(t.whale_curve_peak_pct as double), 2) as peak, t.balanced
        from pub.marts.scenario_summary as t
        inner join report_months as months on t.period = months.period
        order by t.scenario, months.m
        """,
    )
    capacity = _dicts(
        con,
        """
        select t.scenario as s, months.m, t.cost_center as centre, t.is_business_sustaining as sustaining,
            t.practical_capacity_minutes as capacity, cast(t.used_minutes as double) as used,
            cast(t.unused_capacity_cost * 100 as bigint) as unused, cast(t.ledger_cost * 100 as bigint) as ledger,
            t.is_over_capacity as over
        from pub.marts.scenario_cost_center_capacity as t
        inner join report_months as months on t.period = months.period
        order by t.scenario, months.m, t.cost_center
        """,
    )
    movers = _dicts(
        con,
        """
        with ranked as (
            select t.*, row_number() over (
                partition by t.scenario, t.period order by abs(t.abc_profit_change) desc, t.customer_id
            ) as place
            from pub.marts.scenario_comparison as t
            where t.abc_profit_change <> 0
        )
        select ranked.scenario as s, months.m, ranked.customer_id as id, customers.c, ranked.segment,
            cast(ranked.abc_profit_actual * 100 as bigint) as actual,
            cast(ranked.abc_profit_scenario * 100 as bigint) as scenario,
            cast(ranked.abc_profit_change * 100 as bigint) as change, ranked.flip_direction as flip,
            ranked.whale_rank_actual as rank_actual, ranked.whale_rank_scenario as rank_scenario
        from ranked
        inner join report_months as months on ranked.period = months.period
        left join report_customers as customers on ranked.customer_id = customers.customer_id
        where ranked.place <= ?
        order by ranked.scenario, months.m, ranked.place
        """,
        [MOVERS],
    )
    whale: dict[str, dict[int, dict[str, list]]] = {}
    for name, m, ccp, cpp in con.execute(
        """
        with sized as (
            select t.*, months.m, count(*) over (partition by t.scenario, t.period) as n,
                max(t.cumulative_profit_pct) over (partition by t.scenario, t.period) as peak
            from pub.marts.scenario_whale_curve as t
            inner join report_months as months on t.period = months.period
        )
        select scenario, m, list(round(cast(cumulative_customer_pct as double), 3) order by customer_rank),
            list(round(cast(cumulative_profit_pct as double), 3) order by customer_rank)
        from sized
        where customer_rank = 1 or customer_rank = n or cumulative_profit_pct = peak
            or customer_rank % greatest(1, ceil(n / ?)) = 0
        group by scenario, m
        """,
        [WHALE_POINTS],
    ).fetchall():
        whale.setdefault(name, {})[int(m)] = {"ccp": list(ccp), "cpp": list(cpp)}
    value = (
        _dicts(
            con,
            """
            select t.scenario as s, months.m, count(*) as customers,
                count(*) filter (where t.satisfaction_index_change <> 0) as moved,
                round(avg(t.satisfaction_index_actual), 2) as idx_actual, round(avg(t.satisfaction_index), 2) as idx,
                round(sum(t.retention_probability_actual), 1) as staying_actual,
                round(sum(t.retention_probability), 1) as staying,
                cast(sum(t.clv_profit_actual) * 100 as bigint) as clv_actual,
                cast(sum(t.clv_profit) * 100 as bigint) as clv,
                count(t.clv_profit) = count(*) filter (where t.clv_profit_actual is not null) as clv_complete,
                strftime(any_value(t.fit_period), '%Y-%m') as fit
            from pub.marts.scenario_customer_value as t
            inner join report_months as months on t.period = months.period
            group by all
            order by t.scenario, months.m
            """,
        )
        if "scenario_customer_value" in tables
        else []
    )
    return {
        "list": scenarios,
        "summary": summary,
        "capacity": capacity,
        "movers": movers,
        "whale": whale,
        "value": value,
    }
