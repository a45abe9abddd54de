"""One Great Expectations suite per landing source, as code (reviewable diffs).

A suite validates one partition of ``landed.<source>`` (a month, or the whole snapshot) before it is promoted
to ``raw``. Each source has:

* ``frame_sql``: the rows to validate, with the source's columns plus *violation columns* (``_unknown_customer_id``
  and the like) computed against the reference data: the offending value where a rule is broken, else NULL.
  A ``expect_column_values_to_be_null`` on such a column reports the offending values themselves as samples.
* ``rules``: the expectations; the same for every partition (the month enters through ``$period``).

GX is imported lazily (it takes seconds); this module only describes the suites as data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from pipelines.landing.inventory import month_start
from pipelines.landing.sources import BY_NAME
from pipelines.lib.settings import Settings

# Plausible bounds; anything outside is a data error to look at, not a fact to cost.
MAX_HANDLING_MINUTES = 8 * 60
MAX_VISIT_HOURS = 14
MAX_QUANTITY = 100_000

Rule = tuple[str, dict[str, Any]]  # (GX expectation class name, its keyword arguments)


# How long after an order its lines may come back, in months: a return of a line the warehouse does not have, and
# whose order date the returns file does not give, is a pre-history return (of a line ordered before the start of
# history) only when it is dated within this many months of the start; later, it is an unknown order line.
# (The setting return_window_months, CPROF_RETURN_WINDOW_MONTHS: pipelines/lib/settings.py.)


@dataclass(frozen=True)
class Suite:
    source: str
    # parameters: $period (DATE, the partition month; NULL for snapshots); the returns' frame also
    # $history_start (DATE, the first month of history; NULL: the first month of validated.order_lines) and
    # $return_window (INTEGER, months: the setting return_window_months)
    frame_sql: str
    rules: Callable[[], list[Rule]]
    description: str = ""


def _key_rules(source: str) -> list[Rule]:
    key = list(BY_NAME[source].key)
    rules: list[Rule] = [("ExpectColumnValuesToNotBeNull", {"column": column}) for column in key]
    if len(key) == 1:
        rules.append(("ExpectColumnValuesToBeUnique", {"column": key[0]}))
    else:
        rules.append(("ExpectCompoundColumnsToBeUnique", {"column_list": key}))
    return rules


def _columns_rule(source: str, extra: list[str]) -> Rule:
    return ("ExpectTableColumnsToMatchOrderedList", {"column_list": [*BY_NAME[source].table_columns, *extra]})


def _null(column: str) -> Rule:
    return ("ExpectColumnValuesToBeNull", {"column": column})


def _not_null(*columns: str) -> list[Rule]:
    return [("ExpectColumnValuesToNotBeNull", {"column": column}) for column in columns]


def _between(column: str, low: float | None = None, high: float | None = None) -> Rule:
    return ("ExpectColumnValuesToBeBetween", {"column": column, "min_value": low, "max_value": high})


def _in_set(column: str, values: list[str]) -> Rule:
    return ("ExpectColumnValuesToBeInSet", {"column": column, "value_set": values})


NOT_EMPTY: Rule = ("ExpectTableRowCountToBeBetween", {"min_value": 1})


def _outside_month(expression: str, name: str) -> str:
    """SQL: the date when it does not fall in the partition's month, else NULL, as _<name>_outside_month."""
    return (
        f"case when cast(date_trunc('month', {expression}) as date) <> $period "
        f"then strftime({expression}, '%Y-%m-%d') end as _{name}_outside_month"
    )


SUITES: dict[str, Suite] = {}


def _suite(source: str, frame_sql: str, rules: Callable[[], list[Rule]], description: str) -> None:
    SUITES[source] = Suite(source, frame_sql, rules, description)


# --- reference snapshots -------------------------------------------------------------------------
_suite(
    "customers",
    "select * exclude (_period, _source_file, _loaded_at) from landed.customers",
    lambda: [
        _columns_rule("customers", []),
        NOT_EMPTY,
        *_key_rules("customers"),
        *_not_null("segment", "acquired_date"),
    ],
    "Customer master: unique ids, a segment and an acquisition date for everyone.",
)
_suite(
    "products",
    "select * exclude (_period, _source_file, _loaded_at) from landed.products",
    lambda: [
        _columns_rule("products", []),
        NOT_EMPTY,
        *_key_rules("products"),
        *_not_null("list_price", "unit_cost"),
        _between("list_price", 0),
        _between("unit_cost", 0),
    ],
    "Product master: unique ids, non-negative list price and unit cost.",
)
_suite(
    "cost_centers",
    "select * exclude (_period, _source_file, _loaded_at) from landed.cost_centers",
    lambda: [
        _columns_rule("cost_centers", []),
        NOT_EMPTY,
        *_key_rules("cost_centers"),
        *_not_null("customer_driven"),
        _between("practical_capacity_minutes", 1),
    ],
    "Cost centres: unique, practical capacity positive where given.",
)
_suite(
    "activities",
    "select * exclude (_period, _source_file, _loaded_at) from landed.activities",
    lambda: [
        _columns_rule("activities", []),
        NOT_EMPTY,
        *_key_rules("activities"),
        *_not_null("cost_center", "driver", "method"),
        _in_set("method", ["time", "share"]),
        _between("unit_minutes", 0),
        _between("share", 0, 1),
    ],
    "Activities: unique, a method of time or share; the costing rules between activities and centres are "
    "checked by the dbt model int_costing_config_validated.",
)
_suite(
    "survey_questions",
    "select * exclude (_period, _source_file, _loaded_at) from landed.survey_questions",
    lambda: [
        _columns_rule("survey_questions", []),
        NOT_EMPTY,
        *_key_rules("survey_questions"),
        _in_set("kind", ["nps", "overall", "attribute"]),
    ],
    "Survey questions: unique, kind nps, overall or attribute.",
)
_suite(
    "scorecard_targets",
    "select * exclude (_period, _source_file, _loaded_at) from landed.scorecard_targets",
    lambda: [
        _columns_rule("scorecard_targets", []),
        NOT_EMPTY,
        *_key_rules("scorecard_targets"),
        *_not_null("target", "direction"),
        _in_set("direction", ["higher", "lower"]),
        _between("amber_tolerance", 0),
        _between("incentive_weight", 0, 1),
    ],
    "Scorecard targets: one per metric and segment, a direction, non-negative tolerance, weight in [0, 1].",
)


# The scenario levers (docs/DESIGN.md, Scenarios) and what each one's target is, as SQL over the reference
# data: a target is `<name>` or, where the lever allows it, `<name>:<segment>` / `<name>:<customer_id>`.
SCENARIO_LEVERS = (
    "unit_minutes",
    "practical_capacity_minutes",
    "ledger_cost",
    "share",
    "driver_volume",
    "unit_price",
    "satisfaction",
)
SCENARIO_OPERATIONS = ("set", "multiply", "add")
BASELINE_SCENARIO = "actual"  # the implicit baseline: the published marts; no file may name a scenario so
MONTH_PATTERN = r"^[0-9]{4}-(?:0[1-9]|1[0-2])$"
# The frame is written in SQL both engines run (Spark allows no subquery in a projection): each change's target
# split at its first ':' into a name and a scope, both looked up by joins.
_LEVER_NAMES = """
    select 'unit_minutes' as lever, activity as name from raw.activities where method = 'time'
    union all select 'practical_capacity_minutes', cost_center from raw.cost_centers
        where practical_capacity_minutes is not null
    union all select 'ledger_cost', cost_center from raw.cost_centers
    union all select 'share', activity from raw.activities where method = 'share'
    union all select 'driver_volume', activity from raw.activities
    union all select 'unit_price', product_id from raw.products
    union all select 'unit_price', segment from raw.customers
    union all select 'unit_price', customer_id from raw.customers
    union all select 'satisfaction', question_id from raw.survey_questions where kind = 'attribute'
"""
_suite(
    "scenarios",
    f"""
    with changes as (
        select * exclude (_period, _source_file, _loaded_at) from landed.scenarios
    ),
    lever_names as (
        select distinct lever, name from ({_LEVER_NAMES}) as named
    ),
    segments as (
        select distinct segment from raw.customers
    ),
    parts as (
        select
            changes.*,
            case when instr(changes.target, ':') > 0
                then substr(changes.target, 1, instr(changes.target, ':') - 1) else changes.target end as _name,
            case when instr(changes.target, ':') > 0 then substr(changes.target, instr(changes.target, ':') + 1) end
                as _scope,
            coalesce(changes.first_month, '0000-00') as _first_key,
            coalesce(changes.last_month, '9999-99') as _last_key
        from changes
    ),
    overlapping as (
        select one.scenario, one.lever, one.target, one._first_key, one._last_key, count(*) as matches
        from (select distinct scenario, lever, target, _first_key, _last_key from parts) as one
        inner join parts as other
            on one.scenario = other.scenario and one.lever = other.lever and one.target = other.target
            and one._first_key <= other._last_key and other._first_key <= one._last_key
        group by one.scenario, one.lever, one.target, one._first_key, one._last_key
    )
    select
        parts.scenario, parts.description, parts.lever, parts.target, parts.operation, parts.value,
        parts.first_month, parts.last_month,
        case when lower(trim(parts.scenario)) = '{BASELINE_SCENARIO}' then parts.scenario end as _reserved_scenario,
        case when parts.lever in ({", ".join(f"'{lever}'" for lever in SCENARIO_LEVERS)}) and parts.target is not null
            and (
                lever_names.name is null
                or parts._scope like '%:%'
                or (parts._scope is not null and not (
                    (parts.lever = 'driver_volume' and (segments.segment is not null or customers.customer_id is not null))
                    or (parts.lever = 'satisfaction' and segments.segment is not null)
                ))
            )
            then parts.lever || ' ' || parts.target end as _unknown_target,
        case when parts.operation = 'multiply' and parts.value < 0
            then cast(parts.value as varchar) end as _negative_multiplier,
        case
            when parts.lever = 'driver_volume' and parts.operation = 'add'
                then 'add on driver_volume (a volume per customer: multiply or set it)'
            when parts.lever = 'unit_price' and parts.operation = 'set' and products.product_id is null
                then 'set on the unit_price of a segment or customer (one price for every product: set a product)'
        end as _operation_refused,
        case
            when parts.lever = 'practical_capacity_minutes' and parts.operation in ('set', 'multiply')
                and parts.value <= 0 then 'capacity ' || parts.operation || ' ' || cast(parts.value as varchar)
            when parts.lever = 'share' and parts.operation = 'set' and parts.value > 1
                then 'share set ' || cast(parts.value as varchar)
            when parts.lever = 'satisfaction' and parts.operation = 'set' and (parts.value < 1 or parts.value > 10)
                then 'rating set ' || cast(parts.value as varchar)
            when parts.lever <> 'satisfaction' and parts.operation = 'set' and parts.value < 0
                then parts.lever || ' set ' || cast(parts.value as varchar)
        end as _value_outside_lever_range,
        case when parts.first_month > parts.last_month
            then parts.first_month || ' > ' || parts.last_month end as _first_month_after_last_month,
        case when overlapping.matches > 1
            then parts.scenario || ' ' || parts.lever || ' ' || parts.target || ' overlaps '
                || cast(overlapping.matches - 1 as varchar) || ' other change(s) of its lever and target'
        end as _overlapping_change
    from parts
    left join lever_names on parts.lever = lever_names.lever and parts._name = lever_names.name
    left join segments on parts._scope = segments.segment
    left join raw.customers as customers on parts._scope = customers.customer_id
    left join raw.products as products on parts.target = products.product_id
    left join overlapping
        on parts.scenario = overlapping.scenario and parts.lever = overlapping.lever
        and parts.target = overlapping.target and parts._first_key = overlapping._first_key
        and parts._last_key = overlapping._last_key
    """,
    lambda: [
        _columns_rule(
            "scenarios",
            [
                "_reserved_scenario",
                "_unknown_target",
                "_negative_multiplier",
                "_operation_refused",
                "_value_outside_lever_range",
                "_first_month_after_last_month",
                "_overlapping_change",
            ],
        ),
        *_not_null("scenario", "lever", "target", "operation", "value"),
        _in_set("lever", list(SCENARIO_LEVERS)),
        _in_set("operation", list(SCENARIO_OPERATIONS)),
        ("ExpectColumnValuesToMatchRegex", {"column": "first_month", "regex": MONTH_PATTERN}),
        ("ExpectColumnValuesToMatchRegex", {"column": "last_month", "regex": MONTH_PATTERN}),
        _null("_reserved_scenario"),
        _null("_unknown_target"),
        _null("_negative_multiplier"),
        _null("_operation_refused"),
        _null("_value_outside_lever_range"),
        _null("_first_month_after_last_month"),
        _null("_overlapping_change"),
    ],
    "Scenarios (optional; none without the file): a known lever and operation, a target the reference data "
    "holds for the lever, YYYY-MM months with the first not after the last, no multiplier below zero, an operation "
    "and value the lever takes, no two changes of one scenario's lever and target in overlapping months, no "
    "scenario named actual (the baseline).",
)

# --- monthly exports -----------------------------------------------------------------------------
_suite(
    "order_lines",
    f"""
    select
        lines.* exclude (_period, _source_file, _loaded_at),
        case when customers.customer_id is null then lines.customer_id end as _unknown_customer_id,
        case when products.product_id is null then lines.product_id end as _unknown_product_id,
        case when lines.discount_amount > lines.quantity * lines.unit_price
            then cast(lines.discount_amount as varchar) || ' > ' || cast(lines.quantity * lines.unit_price as varchar)
        end as _discount_over_line_value,
        {_outside_month("lines.order_date", "order_date")}
    from landed.order_lines as lines
    left join raw.customers as customers on lines.customer_id = customers.customer_id
    left join raw.products as products on lines.product_id = products.product_id
    where lines._period = $period
    """,
    lambda: [
        _columns_rule(
            "order_lines",
            [
                "_unknown_customer_id",
                "_unknown_product_id",
                "_discount_over_line_value",
                "_order_date_outside_month",
            ],
        ),
        NOT_EMPTY,
        *_key_rules("order_lines"),
        *_not_null("order_date", "customer_id", "product_id", "quantity", "unit_price", "discount_amount"),
        _between("line_no", 1),
        _between("quantity", 1, MAX_QUANTITY),
        _between("unit_price", 0),
        _between("discount_amount", 0),
        _in_set("ship_mode", ["standard", "express"]),
        _in_set("order_channel", ["web", "edi", "phone", "field"]),
        _null("_unknown_customer_id"),
        _null("_unknown_product_id"),
        _null("_discount_over_line_value"),
        _null("_order_date_outside_month"),
    ],
    "Order lines of the month: unique (order_id, line_no), known customer and product, positive quantity, "
    "non-negative price and discount, discount within the line value, order_date inside the file's month.",
)
# A return's line is looked up in the validated order lines (validated.order_lines: raw as it will be once the
# validated months are released; a month reaches raw only whole, with its returns, so the month's own lines are
# validated, not yet released, when its returns are checked), and what was returned before in the validated
# returns of the other months. One the warehouse does not have is a *pre-history return* when
# its line was ordered before the start of history (or before the first month of order lines in the warehouse,
# when a run into an empty warehouse starts later): by the order_date the returns file gives for it, or, when it
# gives none, when the return is dated within the return window of the start (a later return cannot be of an
# older order). Any other unknown line is an error. A pre-history return's optional customer must be known.
PREHISTORY_SQL = """
    coalesce(
        this_month.order_date < history.start,
        this_month.return_date < history.start + to_months(cast($return_window as integer))
    )
"""
# What a returns file says of the returned line (its optional columns) must be what the order line in raw says,
# when raw has it: the credit and the restocked cost are taken from the line (dbt's int_returns_joined_to_order_lines),
# so a contradiction would be silently overruled. Each column is compared only where the file gives it.
_LINE_FACTS = (
    ("order_date", "this_month.order_date", "lines.order_date", "strftime({}, '%Y-%m-%d')"),
    ("customer_id", "this_month.customer_id", "lines.customer_id", "{}"),
    ("unit_price", "this_month.unit_price", "lines.unit_price", "cast({} as varchar)"),
    ("unit_cost", "this_month.unit_cost", "products.unit_cost", "cast({} as varchar)"),
)
_CONTRADICTS_ORDER_LINE = (
    "case when lines.order_id is not null and ("
    + " or ".join(f"{given} <> {known}" for _, given, known, _ in _LINE_FACTS)
    + ") then this_month.order_id || ' line ' || cast(this_month.line_no as varchar) || ': ' || concat_ws('; ', "
    + ", ".join(
        f"case when {given} <> {known} then '{name} ' || {text.format(given)} || ' where the order line has ' "
        f"|| {text.format(known)} end"
        for name, given, known, text in _LINE_FACTS
    )
    + ") end as _contradicts_order_line"
)
_suite(
    "returns",
    f"""
    with this_month as (
        select * exclude (_period, _source_file, _loaded_at) from landed.returns where _period = $period
    ),
    history as (  -- the start of history, or the first month loaded when the warehouse starts later
        select coalesce(greatest(cast($history_start as date), min(_period)), cast($period as date)) as start
        from validated.order_lines
    ),
    returned_before as (
        select order_id, line_no, sum(quantity) as quantity
        from validated.returns
        where _period <> $period
        group by order_id, line_no
    ),
    returned_now as (
        select order_id, line_no, sum(quantity) as quantity from this_month group by order_id, line_no
    )
    select
        this_month.*,
        case when lines.order_id is null and not {PREHISTORY_SQL}
            then this_month.order_id || ' line ' || cast(this_month.line_no as varchar)
                || coalesce(' ordered ' || strftime(this_month.order_date, '%Y-%m-%d'), '')
                || ', history from ' || strftime(history.start, '%Y-%m') end as _unknown_order_line,
        case when lines.order_id is null and this_month.customer_id is not null and customers.customer_id is null
            then this_month.customer_id end as _unknown_customer_id,
        case when lines.quantity < returned_now.quantity + coalesce(returned_before.quantity, 0)
            then this_month.order_id || ' line ' || cast(this_month.line_no as varchar) || ': returned '
                || cast(returned_now.quantity + coalesce(returned_before.quantity, 0) as varchar)
                || ' of ' || cast(lines.quantity as varchar)
        end as _returned_more_than_ordered,
        case when this_month.return_date < coalesce(lines.order_date, this_month.order_date)
            then strftime(this_month.return_date, '%Y-%m-%d') || ' before order date '
                || strftime(coalesce(lines.order_date, this_month.order_date), '%Y-%m-%d')
        end as _returned_before_ordered,
        {_CONTRADICTS_ORDER_LINE},
        {_outside_month("this_month.return_date", "return_date")}
    from this_month
    cross join history
    left join validated.order_lines as lines
        on this_month.order_id = lines.order_id and this_month.line_no = lines.line_no
    left join raw.products as products on lines.product_id = products.product_id
    left join raw.customers as customers on this_month.customer_id = customers.customer_id
    left join returned_now
        on this_month.order_id = returned_now.order_id and this_month.line_no = returned_now.line_no
    left join returned_before
        on this_month.order_id = returned_before.order_id and this_month.line_no = returned_before.line_no
    """,
    lambda: [
        _columns_rule(
            "returns",
            [
                "_unknown_order_line",
                "_unknown_customer_id",
                "_returned_more_than_ordered",
                "_returned_before_ordered",
                "_contradicts_order_line",
                "_return_date_outside_month",
            ],
        ),
        *_key_rules("returns"),
        *_not_null("order_id", "line_no", "return_date", "quantity"),
        _between("quantity", 1, MAX_QUANTITY),
        _between("unit_price", 0),
        _between("unit_cost", 0),
        _null("_unknown_order_line"),
        _null("_unknown_customer_id"),
        _null("_returned_more_than_ordered"),
        _null("_returned_before_ordered"),
        _null("_contradicts_order_line"),
        _null("_return_date_outside_month"),
    ],
    "Returns of the month: unique return_id, each of a known order line or of one ordered before the start of "
    "history (a pre-history return: by its order_date, or undated within the return window of the start), "
    "whose customer, when given, is known; never more than was ordered (over all months), not before the order, "
    "the line's order date, customer, unit price and unit cost, when the file gives them, those of the order line "
    "in raw (when raw has it); return_date inside the file's month.",
)


def _customer_events(source: str, date_column: str, bounded: Rule, description: str) -> None:
    """A suite for events of a customer dated in the file's month (tickets, visits): unique id, known
    customer, a value within plausible bounds."""
    _suite(
        source,
        f"""
        select
            events.* exclude (_period, _source_file, _loaded_at),
            case when customers.customer_id is null then events.customer_id end as _unknown_customer_id,
            {_outside_month(f"events.{date_column}", date_column)}
        from landed.{source} as events
        left join raw.customers as customers on events.customer_id = customers.customer_id
        where events._period = $period
        """,
        lambda: [
            _columns_rule(source, ["_unknown_customer_id", f"_{date_column}_outside_month"]),
            *_key_rules(source),
            *_not_null("customer_id", date_column, bounded[1]["column"]),
            bounded,
            _null("_unknown_customer_id"),
            _null(f"_{date_column}_outside_month"),
        ],
        description,
    )


_customer_events(
    "support_tickets",
    "opened_at",
    _between("handling_minutes", 0, MAX_HANDLING_MINUTES),
    f"Support tickets of the month: unique ticket_id, known customer, handling minutes within 0-"
    f"{MAX_HANDLING_MINUTES}, opened_at inside the file's month.",
)
_customer_events(
    "sales_visits",
    "visit_date",
    _between("hours", 0, MAX_VISIT_HOURS),
    f"Sales visits of the month: unique visit_id, known customer, hours within 0-{MAX_VISIT_HOURS}, "
    "visit_date inside the file's month.",
)
_suite(
    "gl_costs",
    """
    select
        ledger.* exclude (_period, _source_file, _loaded_at),
        case when centres.cost_center is null then ledger.cost_center end as _unknown_cost_center,
        case when ledger.period is distinct from strftime($period, '%Y-%m')
            then coalesce(ledger.period, 'NULL') || ' in the file of ' || strftime($period, '%Y-%m') end
            as _period_not_the_files_month
    from landed.gl_costs as ledger
    left join raw.cost_centers as centres on ledger.cost_center = centres.cost_center
    where ledger._period = $period
    """,
    lambda: [
        _columns_rule("gl_costs", ["_unknown_cost_center", "_period_not_the_files_month"]),
        NOT_EMPTY,
        *_key_rules("gl_costs"),
        *_not_null("amount"),
        _null("_unknown_cost_center"),
        _null("_period_not_the_files_month"),
    ],
    "Ledger lines of the period: unique (period, cost_center, account), known cost centre, an amount, and a "
    "period equal to the file's month.",
)
_suite(
    "survey_responses",
    f"""
    select
        answers.* exclude (_period, _source_file, _loaded_at),
        case when customers.customer_id is null then answers.customer_id end as _unknown_customer_id,
        case when questions.question_id is null then answers.question_id end as _unknown_question_id,
        case
            when questions.kind = 'nps' and answers.score not between 0 and 10
                then answers.question_id || '=' || cast(answers.score as varchar) || ' (scale 0-10)'
            when questions.kind in ('overall', 'attribute') and answers.score not between 1 and 10
                then answers.question_id || '=' || cast(answers.score as varchar) || ' (scale 1-10)'
        end as _score_outside_scale,
        {_outside_month("answers.responded_at", "responded_at")}
    from landed.survey_responses as answers
    left join raw.customers as customers on answers.customer_id = customers.customer_id
    left join raw.survey_questions as questions on answers.question_id = questions.question_id
    where answers._period = $period
    """,
    lambda: [
        _columns_rule(
            "survey_responses",
            [
                "_unknown_customer_id",
                "_unknown_question_id",
                "_score_outside_scale",
                "_responded_at_outside_month",
            ],
        ),
        *_key_rules("survey_responses"),
        *_not_null("customer_id", "responded_at", "score"),
        _null("_unknown_customer_id"),
        _null("_unknown_question_id"),
        _null("_score_outside_scale"),
        _null("_responded_at_outside_month"),
    ],
    "Survey answers of the month: one answer per response and question, known customer and question, the "
    "score within its question's scale, responded_at inside the file's month.",
)


# The sources each monthly suite checks references against, in their promoted (raw) or validated tables: those
# must be promoted first, so the source's landed asset depends on them (pipelines/defs/assets/ingest.py).
# tests/test_gx_pages.py checks this against the tables each frame_sql reads.
REFERENCED: dict[str, tuple[str, ...]] = {
    "order_lines": ("customers", "products"),
    "returns": ("order_lines", "customers"),
    "support_tickets": ("customers",),
    "sales_visits": ("customers",),
    "gl_costs": ("cost_centers",),
    "survey_responses": ("customers", "survey_questions"),
    "scenarios": ("customers", "products", "cost_centers", "activities", "survey_questions"),
}


def references(source: str) -> set[str]:
    """The sources whose tables ``source``'s suite checks references against, directly or through another's."""
    direct = set(REFERENCED.get(source, ()))
    return direct.union(*(references(name) for name in direct))


# The column that says which month a row belongs to, in a frame of several months validated at once
# (Warehouse.validation_frames); the validator removes it before Great Expectations sees the frame.
PARTITION_COLUMN = "_cprof_partition"


def rules_for(source: str) -> list[Rule]:
    return SUITES[source].rules()


def frame_parameters(
    sql: str,
    month: str | None,
    history_start: str | None = None,
    return_window: int = Settings.return_window_months,
) -> dict[str, Any]:
    """The parameters a suite's frame SQL takes, of those it names."""
    values = {
        "period": period_parameter(month),
        "history_start": period_parameter(history_start),
        "return_window": return_window,
    }
    return {name: value for name, value in values.items() if f"${name}" in sql}


def period_parameter(month: str | None) -> date | None:
    """A frame's ``$period``: the first day of the month (YYYY-MM), or None for a snapshot."""
    return None if month is None else month_start(month)
