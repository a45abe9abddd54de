"""The landing zone, described once: every source file, its layout and the type of each column.

The sample-data generator writes exactly this layout, ingestion reads it, and the dbt sources describe
the raw tables it produces. Monthly sources live at ``landing/<source>/<YYYY-MM>.csv`` (or ``.parquet``);
snapshots (reference data and configuration) at ``landing/reference/<source>.csv``.

A column's type is exact: every value must be written in it without loss (pipelines.landing.parsing has the rules).
``INTEGER``/``BIGINT``: digits with an optional sign. ``DECIMAL(p,s)``: at most ``s`` decimal places (zeros beyond
them are accepted). ``DATE``: ``YYYY-MM-DD``. ``TIMESTAMP``: ``YYYY-MM-DD HH:MM:SS`` (or ``T`` for the space),
optional fraction up to microseconds, no time zone. ``BOOLEAN``: ``true`` or ``false``. Money is ``DECIMAL(18,2)``:
cents, as the ERP and ledger exports carry them; a price with more decimals is refused, not rounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MONEY = "DECIMAL(18,2)"  # cents; see the module docstring and docs/landing.md (values)

# The file types a landing folder may hold (lower case, exactly); anything else there fails the run.
EXTENSIONS = (".csv", ".parquet")


@dataclass(frozen=True)
class Source:
    name: str
    kind: Literal["monthly", "snapshot"]
    grain: str
    columns: dict[str, str]  # column name -> DuckDB type, in file order
    key: tuple[str, ...]
    description: str
    # Monthly sources: whether a month without rows (a header-only file) is normal. When it is not, such a file
    # fails the load naming it; when it is, it loads 0 rows and the count is reported.
    empty_month_ok: bool | None = None
    # Columns a file may carry after ``columns`` (any of them, in this order) when the source system exports
    # them: parsed by the same exact rules; NULL in the tables when a file does not have them.
    optional: dict[str, str] = field(default_factory=dict)
    # Snapshots: whether a landing zone without the file is complete. Such a snapshot, when absent, loads as no
    # rows (validated and released like a file, so raw says "none"); every other source's file is required.
    absent_ok: bool = False
    # Snapshots: whether each row carries its file's SHA-256 (``_file_sha256``, after the lineage columns), the
    # version of what the rows say, which a model may publish (the scenarios': dim_scenarios.version).
    versioned: bool = False
    # Snapshots: whether a release that changes or removes its rows restates history (every month in raw awaits
    # publication again). False only for a snapshot no actual mart reads: the scenarios, whose marts every run
    # rebuilds whole.
    restates: bool = True

    def __post_init__(self) -> None:
        if (self.kind == "monthly") != (self.empty_month_ok is not None):
            raise ValueError(f"{self.name}: a monthly source, and only one, declares empty_month_ok")
        if (self.absent_ok or self.versioned or not self.restates) and self.kind == "monthly":
            raise ValueError(
                f"{self.name}: only a snapshot may be absent (absent_ok), versioned or not restate"
            )

    @property
    def table_columns(self) -> dict[str, str]:
        """Every column of the landed and raw tables (before the lineage columns): required, then optional."""
        return {**self.columns, **self.optional}

    @property
    def lineage_columns(self) -> dict[str, str]:
        """The columns ingestion adds to this source's rows: LINEAGE_COLUMNS, and the file's SHA-256 if versioned."""
        return {**LINEAGE_COLUMNS, **({"_file_sha256": "VARCHAR"} if self.versioned else {})}

    @property
    def raw_table(self) -> str:
        return f"raw.{self.name}"


SOURCES: tuple[Source, ...] = (
    # --- reference snapshots -------------------------------------------------------------------
    Source(
        "customers",
        "snapshot",
        "customer",
        {
            "customer_id": "VARCHAR",
            "customer_name": "VARCHAR",
            "segment": "VARCHAR",
            "region": "VARCHAR",
            "acquired_date": "DATE",
        },
        ("customer_id",),
        "Customer master snapshot from the CRM.",
    ),
    Source(
        "products",
        "snapshot",
        "product",
        {"product_id": "VARCHAR", "category": "VARCHAR", "list_price": MONEY, "unit_cost": MONEY},
        ("product_id",),
        "Product master snapshot: list price and standard unit cost.",
    ),
    # --- reference configuration ---------------------------------------------------------------
    Source(
        "cost_centers",
        "snapshot",
        "cost centre",
        {"cost_center": "VARCHAR", "practical_capacity_minutes": "BIGINT", "customer_driven": "BOOLEAN"},
        ("cost_center",),
        "Cost centres; practical capacity in minutes per month for time-driven centres. "
        "Centres that are not customer-driven are business-sustaining.",
    ),
    Source(
        "activities",
        "snapshot",
        "activity",
        {
            "activity": "VARCHAR",
            "cost_center": "VARCHAR",
            "driver": "VARCHAR",
            "method": "VARCHAR",
            "unit_minutes": "DECIMAL(12,4)",
            "share": "DECIMAL(9,6)",
        },
        ("activity",),
        "Activities, the cost centre that performs them, their driver and costing method (time or share).",
    ),
    Source(
        "survey_questions",
        "snapshot",
        "survey question",
        {"question_id": "VARCHAR", "kind": "VARCHAR", "label": "VARCHAR"},
        ("question_id",),
        "Survey questions: kind is nps (0-10), overall (1-10) or attribute (1-10).",
    ),
    Source(
        "scorecard_targets",
        "snapshot",
        "metric and segment",
        {
            "metric": "VARCHAR",
            "segment": "VARCHAR",
            "target": "DECIMAL(18,4)",
            "direction": "VARCHAR",
            "amber_tolerance": "DECIMAL(18,4)",
            "owner": "VARCHAR",
            "incentive_weight": "DECIMAL(9,4)",
        },
        ("metric", "segment"),
        "Customer scorecard targets per metric and segment (or 'all'), with owner and incentive weight.",
    ),
    Source(
        "scenarios",
        "snapshot",
        "scenario change",
        {
            "scenario": "VARCHAR",
            "description": "VARCHAR",
            "lever": "VARCHAR",
            "target": "VARCHAR",
            "operation": "VARCHAR",
            "value": "DECIMAL(18,6)",
            "first_month": "VARCHAR",  # YYYY-MM (the suite checks the form); empty: the release's trailing 12
            "last_month": "VARCHAR",
        },
        ("scenario", "lever", "target", "first_month"),
        "What-if scenarios, one row per change of one lever (docs/DESIGN.md, Scenarios). Optional: without the "
        "file there is no scenario but the baseline, actual.",
        absent_ok=True,
        versioned=True,
        restates=False,
    ),
    # --- monthly exports -----------------------------------------------------------------------
    Source(
        "order_lines",
        "monthly",
        "order line",
        {
            "order_id": "VARCHAR",
            "line_no": "INTEGER",
            "order_date": "DATE",
            "customer_id": "VARCHAR",
            "product_id": "VARCHAR",
            "quantity": "INTEGER",
            "unit_price": MONEY,
            "discount_amount": MONEY,
            "ship_mode": "VARCHAR",
            "order_channel": "VARCHAR",
        },
        ("order_id", "line_no"),
        "Order lines from the ERP, one file per month of order_date.",
        empty_month_ok=False,
    ),
    Source(
        "returns",
        "monthly",
        "returned line",
        {
            "return_id": "VARCHAR",
            "order_id": "VARCHAR",
            "line_no": "INTEGER",
            "return_date": "DATE",
            "quantity": "INTEGER",
            "reason": "VARCHAR",
        },
        ("return_id",),
        "Returned order lines, one file per month of return_date. A return of a line ordered before the start of "
        "history (a pre-history return) may carry the line's order date, customer, unit price and unit cost.",
        empty_month_ok=True,
        # What the source system may export of the returned line itself: a return whose line was ordered before
        # the start of history is dated by order_date and priced from the others (see data_checks.suites).
        optional={"order_date": "DATE", "customer_id": "VARCHAR", "unit_price": MONEY, "unit_cost": MONEY},
    ),
    Source(
        "support_tickets",
        "monthly",
        "ticket",
        {
            "ticket_id": "VARCHAR",
            "customer_id": "VARCHAR",
            "opened_at": "TIMESTAMP",
            "channel": "VARCHAR",
            "handling_minutes": "DECIMAL(10,2)",
        },
        ("ticket_id",),
        "Support tickets from the help desk, one file per month of opened_at.",
        empty_month_ok=True,
    ),
    Source(
        "sales_visits",
        "monthly",
        "visit",
        {"visit_id": "VARCHAR", "customer_id": "VARCHAR", "visit_date": "DATE", "hours": "DECIMAL(6,2)"},
        ("visit_id",),
        "Field sales visits from the CRM, one file per month of visit_date.",
        empty_month_ok=True,
    ),
    Source(
        "gl_costs",
        "monthly",
        "ledger line",
        {"period": "VARCHAR", "cost_center": "VARCHAR", "account": "VARCHAR", "amount": MONEY},
        ("period", "cost_center", "account"),
        "Indirect expenses from the general ledger, one file per closed period (YYYY-MM).",
        empty_month_ok=False,
    ),
    Source(
        "survey_responses",
        "monthly",
        "answer",
        {
            "response_id": "VARCHAR",
            "customer_id": "VARCHAR",
            "responded_at": "TIMESTAMP",
            "question_id": "VARCHAR",
            "score": "INTEGER",
        },
        ("response_id", "question_id"),
        "Survey answers, one row per question answered, one file per month of responded_at.",
        empty_month_ok=True,
    ),
)

BY_NAME: dict[str, Source] = {s.name: s for s in SOURCES}
MONTHLY: tuple[Source, ...] = tuple(s for s in SOURCES if s.kind == "monthly")
SNAPSHOTS: tuple[Source, ...] = tuple(s for s in SOURCES if s.kind == "snapshot")

# Columns ingestion adds to every raw table: where each row came from.
LINEAGE_COLUMNS: dict[str, str] = {
    "_period": "DATE",  # first day of the partition month (snapshots: NULL)
    "_source_file": "VARCHAR",
    "_loaded_at": "TIMESTAMP",
}
