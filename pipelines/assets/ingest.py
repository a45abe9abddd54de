"""Ingest assets, per landing source: ``landed/<source>`` loads a file into quarantine, its blocking Great
Expectations check validates that partition, and ``raw/<source>`` promotes it to the raw tables dbt reads.

A failing partition never reaches ``raw``: the check blocks the promotion, and the last good data stays. Monthly
sources are partitioned by month; snapshots load whole. The work is done by plain functions in
:mod:`pipelines.ingest` and :mod:`data_checks`; these assets only wire them to Dagster.
"""

import warnings

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from data_checks.gx_run import validator_for
from data_checks.suites import SUITES
from pipelines.ingest import LoadResult, find_file, load, promote, validation_frame
from pipelines.partitions import month_of_key, monthly_partitions
from pipelines.resources import DataDir, LandingChecks, Warehouse
from pipelines.sources import SOURCES, Source

# Partitioned asset checks are a preview feature of Dagster 1.13; we rely on them knowingly.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")

# The raw tables each monthly suite checks references against: they must be promoted first.
REFERENCED = {
    "order_lines": ("customers", "products"),
    "returns": ("order_lines",),
    "support_tickets": ("customers",),
    "sales_visits": ("customers",),
    "gl_costs": ("cost_centers",),
    "survey_responses": ("customers", "survey_questions"),
}


def _month(context, source: Source) -> str | None:
    return month_of_key(context.partition_key) if source.kind == "monthly" else None


def _partitions(source: Source):
    return monthly_partitions if source.kind == "monthly" else None


def _file_metadata(result: LoadResult) -> dict[str, object]:
    return {
        "file": MetadataValue.path(str(result.path)),
        "rows": MetadataValue.int(result.rows),
        "sha256": MetadataValue.text(result.sha256),
        "bytes": MetadataValue.int(result.bytes),
        "dagster/row_count": MetadataValue.int(result.rows),
    }


def _landed_asset(source: Source) -> AssetsDefinition:
    layout = f"{source.name}/<YYYY-MM>.csv" if source.kind == "monthly" else f"reference/{source.name}.csv"

    @asset(
        key=AssetKey(["landed", source.name]),
        group_name="ingest",
        partitions_def=_partitions(source),
        deps=[AssetKey(["raw", name]) for name in REFERENCED.get(source.name, ())],
        description=f"{source.description} Loaded from landing/{layout} into landed.{source.name} (quarantine).",
        kinds={"duckdb"},
        metadata={"grain": source.grain, "key": ", ".join(source.key), "table": f"landed.{source.name}"},
    )
    def _asset(context: AssetExecutionContext, data_dir: DataDir, warehouse: Warehouse) -> MaterializeResult:
        month = _month(context, source)
        data_dir.paths.data_dir.mkdir(parents=True, exist_ok=True)
        with warehouse.get_connection() as con:
            result = load(con, data_dir.paths.landing, source.name, month)
        context.log.info(f"{source.name} {month or 'snapshot'}: {result.rows} rows from {result.path}")
        return MaterializeResult(metadata=_file_metadata(result))

    return _asset


def _suite_check(source: Source):
    @asset_check(
        asset=AssetKey(["landed", source.name]),
        name="gx_suite",
        blocking=True,
        partitions_def=_partitions(source),
        description=f"Great Expectations suite landing.{source.name}: {SUITES[source.name].description}",
    )
    def _check(
        context: AssetCheckExecutionContext,
        data_dir: DataDir,
        warehouse: Warehouse,
        checks: LandingChecks,
    ) -> AssetCheckResult:
        month = _month(context, source)
        paths = data_dir.paths
        with warehouse.get_connection() as con:
            frame = validation_frame(con, source.name, month)
        file = find_file(paths.landing, source, month)
        outcome = validator_for(paths.data_dir, checks.defer_docs).validate(
            source.name, month, frame, str(file)
        )
        (context.log.info if outcome.success else context.log.error)(outcome.message())
        failed = "\n".join(
            f"| {f.expectation} | {f.column or ''} | {f.unexpected_count if f.unexpected_count is not None else ''} "
            f"| {', '.join(str(v) for v in f.samples)} |"
            for f in outcome.failures
        )
        metadata = {
            "source": source.name,
            "partition": month or "snapshot",
            "file": MetadataValue.path(str(file)),
            "rows": outcome.rows,
            "expectations": outcome.evaluated,
            "failed": len(outcome.failures),
        }
        if failed:
            metadata["failures"] = MetadataValue.md(
                "| expectation | column | unexpected | samples |\n|---|---|---|---|\n" + failed
            )
        if outcome.docs:
            metadata["data_docs"] = MetadataValue.path(str(outcome.docs))
        return AssetCheckResult(passed=outcome.success, description=outcome.message(), metadata=metadata)

    return _check


def _raw_asset(source: Source) -> AssetsDefinition:
    @asset(
        key=AssetKey(["raw", source.name]),
        group_name="ingest",
        partitions_def=_partitions(source),
        deps=[AssetKey(["landed", source.name])],
        description=f"{source.description} Validated rows promoted from landed.{source.name}; what dbt reads.",
        kinds={"duckdb"},
        metadata={"grain": source.grain, "key": ", ".join(source.key), "table": source.raw_table},
    )
    def _asset(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
        month = _month(context, source)
        with warehouse.get_connection() as con:
            rows = promote(con, source.name, month)
        return MaterializeResult(
            metadata={"rows": MetadataValue.int(rows), "dagster/row_count": MetadataValue.int(rows)}
        )

    return _asset


ingest_assets: list[AssetsDefinition] = [
    asset_def for source in SOURCES for asset_def in (_landed_asset(source), _raw_asset(source))
]
ingest_checks = [_suite_check(source) for source in SOURCES]
