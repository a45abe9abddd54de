{#-
    The costing method's arithmetic that both the actual costing models and the scenario models compute, written
    once so that a scenario is the same model run on changed inputs (docs/DESIGN.md, Scenarios).
-#}

{#-
    A time-driven activity's cost in whole cents (costing method, step 2): rate x unit_minutes x driver volume,
    with rate = ledger cost / practical capacity, rounded half up in integer arithmetic (minutes and volumes
    scaled to integers at 4 decimals, the scale the model keeps them at).
-#}
{% macro time_driven_cost_cents(ledger_cost, unit_minutes, driver_volume, practical_capacity_minutes) %}
{%- set int128 = type_int128() -%}
{{ integer_divide(
    "cast(" ~ ledger_cost ~ " * 100 as " ~ int128 ~ ") * cast(" ~ unit_minutes ~ " * 10000 as " ~ int128 ~ ")
    * cast(" ~ driver_volume ~ " * 10000 as " ~ int128 ~ ")
    + cast(" ~ practical_capacity_minutes ~ " as " ~ int128 ~ ") * 50000000",
    "cast(" ~ practical_capacity_minutes ~ " as " ~ int128 ~ ") * 100000000",
) }}
{%- endmacro %}

{#-
    A quantity after one scenario change (docs/DESIGN.md, Scenarios): `change` is the alias of a joined row of
    int_scenario_changes, or of none (a left join that found no change: the quantity is unchanged).
-#}
{% macro scenario_applied(quantity, change) -%}
case {{ change }}.operation
    when 'set' then {{ change }}.value
    when 'multiply' then {{ quantity }} * {{ change }}.value
    when 'add' then {{ quantity }} + {{ change }}.value
    else {{ quantity }}
end
{%- endmacro %}

{#- The join condition of a change to the scenario and month of `row`: its scenario, lever and months. -#}
{% macro scenario_change_applies(change, row, lever) -%}
{{ change }}.scenario = {{ row }}.scenario
    and {{ change }}.lever = '{{ lever }}'
    and {{ row }}.period between {{ change }}.first_period and {{ change }}.last_period
{%- endmacro %}

{#-
    The months of history the scenarios are computed over, one row per `period`: those of the ledger's cost centre
    months and of the margin lines (int_scenario_months and int_scenario_periods both start from them).
-#}
{% macro scenario_history_months() -%}
select distinct period from {{ ref('int_ledger_costs_aggregated_to_cost_center_month') }}
    union
    select distinct period from {{ ref('int_margin_joined_to_cost_to_serve') }}
{%- endmacro %}

{#-
    Resources to activities (costing method, step 2), as CTEs to put after a model's own: from `activity_months`
    (one row per `keys` and activity: cost_center, driver, method, unit_minutes, share,
    practical_capacity_minutes, ledger_cost, driver_volume) to `activities_costed`, one row per `keys` and
    activity with its volume, rates, used minutes and cost. `keys`: the columns of one month ('period') or of
    one scenario month ('scenario, period').
      time:  activity cost = ledger cost x unit_minutes x volume / practical capacity, to the cent;
      share: pool = ledger cost x share, apportioned to the cent over the centre's share activities; the pool
             is the activity's cost when it has driver volume.
-#}
{% macro activities_costed_ctes(activity_months, keys) %}
{%- set int128 = type_int128() -%}
{%- set columns = keys ~ ", activity, cost_center, driver, method, unit_minutes, share, practical_capacity_minutes, ledger_cost, driver_volume" -%}
time_activities as (
    select
        *,
        {{ time_driven_cost_cents("ledger_cost", "unit_minutes", "driver_volume", "practical_capacity_minutes") }}
            as activity_cost_cents,
        unit_minutes * driver_volume as used_minutes
    from {{ activity_months }}
    where method = 'time'
),

share_pools as (
    select * from {{ apportion_cents(
        "(select * from " ~ activity_months ~ " where method = 'share')",
        "cast(ledger_cost * 100 as " ~ int128 ~ ")",
        "cast(share * 1000000 as " ~ int128 ~ ")",
        keys ~ ", cost_center",
        "activity",
    ) }}
),

share_activities as (
    select
        {{ columns }},
        case when driver_volume > 0 then apportioned_cents else 0 end as activity_cost_cents,
        cast(null as decimal(18, 4)) as used_minutes
    from share_pools
),

combined as (
    select {{ columns }}, activity_cost_cents, used_minutes
    from time_activities
    union all
    select {{ columns }}, activity_cost_cents, used_minutes
    from share_activities
),

activities_costed as (
    select
        {{ keys }},
        cost_center,
        activity,
        method,
        driver,
        cast(driver_volume as decimal(18, 4)) as driver_volume,
        unit_minutes,
        share,
        practical_capacity_minutes,
        cast(used_minutes as decimal(18, 4)) as used_minutes,
        case
            when method = 'time' then {{ double_as_decimal(ratio("ledger_cost", "practical_capacity_minutes"), 18, 6) }}
        end as capacity_cost_rate,
        case
            when method = 'time' then {{ double_as_decimal(ratio("ledger_cost * unit_minutes", "practical_capacity_minutes"), 18, 6) }}
            when driver_volume > 0 then {{ double_as_decimal(ratio(cents_to_money("activity_cost_cents"), "driver_volume"), 18, 6) }}
        end as rate_per_unit,
        {{ cents_to_money("activity_cost_cents") }} as activity_cost
    from combined
)
{%- endmacro %}

{#-
    Activities to customers (costing method, step 3), as CTEs to put after a model's own: from
    `customer_volumes` (one row per `keys`, customer and activity: cost_center, driver, driver_volume,
    rate_per_unit, activity_cost) to `allocations`, each activity's cost split over its customers in proportion
    to their driver volume, in whole cents that add up to the activity cost exactly.
-#}
{% macro activity_costs_allocated_ctes(customer_volumes, keys) %}
allocated as (
    select * from {{ apportion_cents(
        customer_volumes,
        "cast(activity_cost * 100 as " ~ type_int128() ~ ")",
        "cast(driver_volume * 10000 as " ~ type_int128() ~ ")",
        keys ~ ", activity",
        "customer_id",
    ) }}
),

allocations as (
    select
        {{ keys }},
        customer_id,
        activity,
        cost_center,
        driver,
        driver_volume,
        rate_per_unit,
        {{ cents_to_money("apportioned_cents") }} as allocated_cost
    from allocated
)
{%- endmacro %}

{#-
    Traditional costing (costing method, step 5), as CTEs to put after a model's own: from `revenue_weights`
    (one row per `keys` and customer with positive net revenue: net_revenue, and the month's ledger_cost, every
    centre) to `overhead`, the indirect cost spread in proportion to net revenue, in whole cents adding up to the
    ledger exactly.
-#}
{% macro overhead_spread_ctes(revenue_weights, keys) %}
spread as (
    select * from {{ apportion_cents(
        revenue_weights,
        "cast(ledger_cost * 100 as " ~ type_int128() ~ ")",
        "cast(net_revenue * 100 as " ~ type_int128() ~ ")",
        keys,
        "customer_id",
    ) }}
),

overhead as (
    select
        {{ keys }},
        customer_id,
        {{ cents_to_money("apportioned_cents") }} as traditional_overhead
    from spread
)
{%- endmacro %}

{#-
    Customer profit and the profitability views (costing method, steps 4-5; DESIGN.md, Profitability views), as
    CTEs to put after a model's own: from `joined` (one row per `keys` and customer: customer_name, segment,
    region, gross_revenue, discounts, returns_credit, net_revenue, cogs, gross_margin, list_revenue,
    cost_to_serve, traditional_overhead) to `profit_views`, the columns of customer_profitability after `keys`:
    ABC and traditional profit, the profitable flag, the profit decile of the month and the Shapiro et al.
    (1987) matrix quadrant, split at the month's medians.
-#}
{% macro customer_profit_ctes(joined, keys) %}
{%- set key_list = keys.split(', ') -%}
measured as (
    select
        *,
        gross_margin - cost_to_serve as abc_profit,
        gross_margin - traditional_overhead as traditional_profit,
        case when list_revenue > 0 and net_revenue > 0 then {{ ratio("net_revenue", "list_revenue") }} end as net_price_realisation,
        case when net_revenue > 0 then {{ ratio("cost_to_serve", "net_revenue") }} end as cost_to_serve_per_revenue
    from {{ joined }}
),

medians as (
    select
        {{ keys }},
        median(net_price_realisation) as median_price_realisation,
        median(cost_to_serve_per_revenue) as median_cost_to_serve_per_revenue
    from measured
    where net_price_realisation is not null and cost_to_serve_per_revenue is not null
    group by {{ keys }}
),

profit_views as (
    select
        {%- for key in key_list %}
        measured.{{ key }},
        {%- endfor %}
        measured.customer_id,
        measured.customer_name,
        measured.segment,
        measured.region,
        cast(measured.gross_revenue as decimal(18, 2)) as gross_revenue,
        cast(measured.discounts as decimal(18, 2)) as discounts,
        cast(measured.returns_credit as decimal(18, 2)) as returns_credit,
        cast(measured.net_revenue as decimal(18, 2)) as net_revenue,
        cast(measured.cogs as decimal(18, 2)) as cogs,
        cast(measured.gross_margin as decimal(18, 2)) as gross_margin,
        cast(measured.cost_to_serve as decimal(18, 2)) as cost_to_serve,
        cast(measured.abc_profit as decimal(18, 2)) as abc_profit,
        cast(measured.traditional_overhead as decimal(18, 2)) as traditional_overhead,
        cast(measured.traditional_profit as decimal(18, 2)) as traditional_profit,
        measured.abc_profit > 0 as is_profitable,
        cast(ntile(10) over (
            partition by {% for key in key_list %}measured.{{ key }}{{ ", " if not loop.last }}{% endfor %}
            order by measured.abc_profit desc, measured.customer_id
        ) as integer) as profit_decile,
        case
            when measured.net_price_realisation is null or measured.cost_to_serve_per_revenue is null
                then 'unclassified'
            when measured.net_price_realisation >= medians.median_price_realisation
                then case when measured.cost_to_serve_per_revenue >= medians.median_cost_to_serve_per_revenue
                    then 'carriage_trade' else 'passive' end
            else case when measured.cost_to_serve_per_revenue >= medians.median_cost_to_serve_per_revenue
                then 'aggressive' else 'bargain_basement' end
        end as matrix_quadrant,
        cast(measured.list_revenue as decimal(18, 2)) as list_revenue,
        {{ double_as_decimal('measured.net_price_realisation', 9, 6) }} as net_price_realisation,
        {{ double_as_decimal('measured.cost_to_serve_per_revenue', 12, 6) }} as cost_to_serve_per_revenue
    from measured
    left join medians
        on {% for key in key_list %}measured.{{ key }} = medians.{{ key }}{{ " and " if not loop.last }}{% endfor %}
)
{%- endmacro %}

{#-
    The whale curve (DESIGN.md, Profitability views), as CTEs to put after a model's own: from
    `trailing_profit` (one row per `keys` and customer: profit_t12m) and `coverage` (one row per `keys`:
    window_months) to `whale_ranked`: customers ranked by trailing profit, most profitable first (ties by id),
    with the cumulative profit and its percentage of the total, the cumulative share of customers and the
    window's months.
-#}
{% macro whale_curve_ctes(trailing_profit, coverage, keys) %}
{%- set key_list = keys.split(', ') -%}
ranked as (
    select
        {{ keys }},
        customer_id,
        profit_t12m,
        row_number() over (partition by {{ keys }} order by profit_t12m desc, customer_id) as customer_rank,
        sum(profit_t12m) over (
            partition by {{ keys }} order by profit_t12m desc, customer_id rows unbounded preceding
        ) as cumulative_profit,
        sum(profit_t12m) over (partition by {{ keys }}) as total_profit,
        count(*) over (partition by {{ keys }}) as customers
    from {{ trailing_profit }}
),

whale_ranked as (
    select
        {%- for key in key_list %}
        ranked.{{ key }},
        {%- endfor %}
        cast(ranked.customer_rank as integer) as customer_rank,
        ranked.customer_id,
        cast(ranked.profit_t12m as decimal(18, 2)) as profit_t12m,
        cast(ranked.cumulative_profit as decimal(18, 2)) as cumulative_profit,
        {{ double_as_decimal(ratio("100 * ranked.cumulative_profit", "nullif(ranked.total_profit, 0)"), 12, 4) }}
            as cumulative_profit_pct,
        {{ double_as_decimal(ratio("100 * ranked.customer_rank", "ranked.customers"), 9, 4) }} as cumulative_customer_pct,
        cast({{ coverage }}.window_months as integer) as window_months,
        {{ coverage }}.window_months = 12 as window_complete
    from ranked
    inner join {{ coverage }}
        on {% for key in key_list %}ranked.{{ key }} = {{ coverage }}.{{ key }}{{ " and " if not loop.last }}{% endfor %}
)
{%- endmacro %}
