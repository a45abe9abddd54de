"""Ingest assets, per landing source: ``landed/<source>`` loads a file into quarantine, its blocking Great
Expectations check validates that partition, and ``raw/<source>`` releases it to the raw tables dbt reads.

A failing partition never reaches ``raw``: the check blocks the release, and the last good data stays. Monthly
sources are partitioned by month (a run may cover a range of months: each asset handles them in order, one
transaction per month); snapshots load whole. A month reaches ``raw`` only whole: the check records each month's
outcome on its load, and ``raw/<source>`` releases every month whose six sources' latest loads have passed their
suites (and whose earlier months are in raw), all six sources at once (pipelines/engines/whole_months.py);
whichever source's step completes a month releases it. The work is done by plain functions of the engines
(:mod:`pipelines.engines.duckdb_ingest`, :mod:`pipelines.engines.spark_ingest`) and :mod:`data_checks`; these
assets only wire them to Dagster.
"""

import warnings
from datetime import date
from itertools import pairwise

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset,
    asset_check,
)

from data_checks.gx_run import unchanged_reason, validator_for
from data_checks.outcomes import Outcome
from data_checks.suites import REFERENCED, SUITES
from pipelines.defs.assets.kinds import DEFAULT_ENGINE, warehouse_kinds
from pipelines.defs.partitions import (
    FULL_REFRESH_TAG,
    evaluated_each_month,
    months_of_run,
    partition_key,
    run_months,
    shift_month,
    single_run,
)
from pipelines.defs.resources import DataDir, LandingChecks, WarehouseResource
from pipelines.engines.base import Filter, LoadResult, Warehouse
from pipelines.engines.whole_months import landing_files
from pipelines.landing.inventory import (
    LandingInventory,
    accepts_row_drop,
    history_start,
    landing_inventory,
    landing_path,
    month_start,
)
from pipelines.landing.sources import SOURCES, Source

# Partitioned asset checks are a preview feature of Dagster 1.13; we rely on them knowingly.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")


# The asset groups of the graph: files loaded and checked (quarantine), and the rows released to dbt.
LANDING_GROUP = "landing"
RAW_GROUP = "raw"


def passed_message(passed: list[Outcome]) -> str:
    """One message for the partitions of a source that passed their suite: a partition's own message, or a line
    saying how many (first..last, rows) followed by each one's."""
    if len(passed) == 1:
        return passed[0].message()
    rows = sum(outcome.rows for outcome in passed)
    months = [outcome.month for outcome in passed]
    consecutive = all(
        later == f"{shift_month(date.fromisoformat(f'{earlier}-01'), 1):%Y-%m}"
        for earlier, later in pairwise(months)
    )
    span = f"{months[0]}..{months[-1]}" if consecutive else ", ".join(months)
    evaluated = {outcome.evaluated for outcome in passed}
    every = f"all {evaluated.pop()}" if len(evaluated) == 1 else "all their"
    first = f"{passed[0].source} {span}: {len(passed)} partitions ({rows:,} rows), {every} expectations passed in each"
    return "\n".join([first, *(f"  {outcome.message()}" for outcome in passed)])


def _months(context, source: Source) -> list[str | None]:
    """The months a run covers for a monthly source (in order); [None] for a snapshot."""
    return run_months(context) if source.kind == "monthly" else [None]


def _partitions(source: Source, monthly: PartitionsDefinition) -> PartitionsDefinition | None:
    return monthly if source.kind == "monthly" else None


def _policy(source: Source):
    return single_run if source.kind == "monthly" else None


def _reuse_snapshot(context, source: Source) -> bool:
    """Whether a snapshot whose file is unchanged may keep what was validated and promoted before: always,
    except in a --full-refresh run, which reloads and validates everything."""
    return source.kind != "monthly" and context.run.tags.get(FULL_REFRESH_TAG) != "true"


def _folder(data_dir: DataDir, source: Source):
    return data_dir.paths.landing / (source.name if source.kind == "monthly" else "reference")


def _check_folder(data_dir: DataDir, source: Source) -> list[str]:
    """Fail on a file of the source's landing folder that breaks the spec (a misnamed month would never be
    loaded); return the hidden and editor files there, which are ignored."""
    folder = _folder(data_dir, source)
    inventory = landing_inventory(data_dir.paths.landing, data_dir.allow_external_links)
    in_folder = [(path, problem) for path, problem in inventory.problems if path.parent == folder]
    LandingInventory([], [], in_folder).raise_problems()
    return [str(path) for path in inventory.ignored if path.parent == folder]


def _file_metadata(result: LoadResult, ignored: list[str]) -> dict[str, object]:
    """What one partition (a month, or the snapshot) loaded: its file, rows and checksum. ``files`` holds the
    file's size and modification time, which the landing sensor compares to spot a corrected file; ``ignored``
    the hidden and editor files of the folder."""
    return {
        "rows": MetadataValue.int(result.rows),
        "dagster/row_count": MetadataValue.int(result.rows),
        "file": MetadataValue.path(str(result.path)),
        "sha256": MetadataValue.text(result.sha256),
        "bytes": MetadataValue.int(result.bytes),
        "unchanged": MetadataValue.bool(result.unchanged),
        "files": MetadataValue.json(
            {
                result.period or "snapshot": {
                    "file": str(result.path),
                    "rows": result.rows,
                    "sha256": result.sha256,
                    "bytes": result.bytes,
                    "mtime_ns": result.mtime_ns,
                }
            }
        ),
        "ignored": MetadataValue.json(ignored),
    }


def _materialized(
    context, source: Source, metadata: dict[str | None, dict[str, object]]
) -> MaterializeResult:
    """The materialization of a run's partitions, each with its own metadata (a run over a range of months
    records one event per month: that month's rows, file and checksum, not the run's totals)."""
    if source.kind != "monthly":
        return MaterializeResult(metadata=metadata[None])
    for month, values in metadata.items():
        context.add_asset_metadata(values, partition_key=partition_key(month))
    return MaterializeResult()


def _landed_asset(source: Source, monthly: PartitionsDefinition, engine: str) -> AssetsDefinition:
    layout = f"{source.name}/<YYYY-MM>.csv" if source.kind == "monthly" else f"reference/{source.name}.csv"

    @asset(
        key=AssetKey(["landed", source.name]),
        # landed/<source> and raw/<source> show the same name in the asset graph: their groups tell them apart
        group_name=LANDING_GROUP,
        partitions_def=_partitions(source, monthly),
        backfill_policy=_policy(source),
        deps=[AssetKey(["raw", name]) for name in REFERENCED.get(source.name, ())],
        description=f"{source.description} Loaded from landing/{layout} into landed.{source.name} (quarantine).",
        kinds=warehouse_kinds(engine),
        metadata={"grain": source.grain, "key": ", ".join(source.key), "table": f"landed.{source.name}"},
    )
    def _asset(
        context: AssetExecutionContext, data_dir: DataDir, warehouse: WarehouseResource
    ) -> MaterializeResult:
        data_dir.paths.data_dir.mkdir(parents=True, exist_ok=True)
        ignored = _check_folder(data_dir, source)
        tags = context.run.tags
        inventory = data_dir.run_inventory(context.run.run_id, months_of_run(tags), say=context.log.info)
        metadata = {}
        with warehouse.session() as wh:
            for month in _months(context, source):
                result = wh.load(
                    data_dir.paths.landing,
                    source.name,
                    month,
                    _reuse_snapshot(context, source),
                    expected=inventory.get((source.name, month)),
                    accept_row_drop=accepts_row_drop(tags, source.name, month),
                    max_row_drop=data_dir.max_row_drop,
                    allow_external_links=data_dir.allow_external_links,
                )
                context.log.info(
                    f"{source.name} {month or 'snapshot'}: {result.rows} rows from {result.path}"
                    + (
                        " (unchanged since it was validated and promoted; not reloaded)"
                        if result.unchanged
                        else ""
                    )
                )
                metadata[month] = _file_metadata(result, ignored)
        return _materialized(context, source, metadata)

    return _asset


def _suite_check(source: Source, monthly: PartitionsDefinition) -> AssetChecksDefinition:
    @asset_check(
        asset=AssetKey(["landed", source.name]),
        name="gx_suite",
        blocking=True,
        partitions_def=_partitions(source, monthly),
        description=f"Great Expectations suite landing.{source.name}: {SUITES[source.name].description}",
    )
    def _check(
        context: AssetCheckExecutionContext,
        data_dir: DataDir,
        warehouse: WarehouseResource,
        checks: LandingChecks,
    ) -> AssetCheckResult:
        paths = data_dir.paths
        if _reuse_snapshot(context, source):
            with warehouse.session() as wh:
                unchanged = wh.snapshot_promoted(source.name)
            if unchanged:
                validator_for(paths.data_dir, checks.defer_docs).skip(source.name, unchanged_reason())
                return AssetCheckResult(
                    passed=True,
                    description=f"{source.name} snapshot: {unchanged_reason()}",
                    metadata={"source": source.name, "partition": "snapshot", "unchanged": True},
                )
        validator = validator_for(paths.data_dir, checks.defer_docs)
        links = data_dir.allow_external_links
        start = history_start(paths.landing, data_dir.first_month, links)
        outcomes = []
        files = {
            month: landing_path(paths.landing, source, month, links) for month in _months(context, source)
        }
        with warehouse.session() as wh:
            # Validated in month order, a few consecutive months in one validation (up to CPROF_GX_BATCH_ROWS
            # rows; a batch that fails is validated again month by month).
            rows = None
            if source.kind == "monthly" and len(files) > 1:
                periods = [month_start(month) for month in files]
                counted = wh.count_by(f"landed.{source.name}", "_period", [Filter("_period", "in", periods)])
                rows = {month: counted.get(period, 0) for month, period in zip(files, periods, strict=True)}
            outcomes_of = validator.validate_months(
                source.name,
                {month: str(file) for month, file in files.items()},
                lambda month: wh.validation_frame(source.name, month, start, checks.return_window_months),
                lambda months: wh.validation_frames(source.name, months, start, checks.return_window_months),
                rows,
                checks.gx_batch_rows,
                (lambda months: wh.evaluate_suite(source.name, months, start, checks.return_window_months))
                if wh.evaluates_suites and checks.engine == "duckdb"
                else None,
            )
            for outcome in outcomes_of:
                if not outcome.success:
                    context.log.error(outcome.message())
                outcomes.append((outcome.month, files[outcome.month], outcome))
            # The partitions that passed in one log message (a Dagster event each cost as much as evaluating a
            # month's suite): its first line says how many, the others each one's outcome.
            passed = [outcome for _, _, outcome in outcomes if outcome.success]
            if passed:
                context.log.info(passed_message(passed))
            # Each month's outcome is recorded on its load: one that passed waits, held out of raw, until its
            # month is whole; one that failed keeps its month out (the record says in which run). Recorded here,
            # where the suite runs: when one month of a range fails, Dagster skips the source's raw step for
            # every month of the range, and the months that passed stay validated for the next raw step.
            wh.mark_validated_months(
                source.name,
                {month: outcome.success for month, _, outcome in outcomes if month is not None},
                context.run.run_id,
            )
        failures = [(month, o) for month, _, o in outcomes if not o.success]
        failed = "\n".join(
            f"| {month or 'snapshot'} | {f.expectation} | {f.column or ''} "
            f"| {f.unexpected_count if f.unexpected_count is not None else ''} "
            f"| {f.examples()} |"
            for month, outcome in failures
            for f in outcome.failures
        )
        last_month, last_file, _ = outcomes[-1]
        metadata = {
            "source": source.name,
            "partition": (last_month or "snapshot")
            if len(outcomes) == 1
            else f"{outcomes[0][0]}..{last_month}",
            "file": MetadataValue.path(str(last_file)),
            "rows": sum(o.rows for _, _, o in outcomes),
            "expectations": sum(o.evaluated for _, _, o in outcomes),
            "failed": sum(len(o.failures) for _, o in failures),
        }
        if failed:
            metadata["failures"] = MetadataValue.md(
                "| partition | expectation | column | unexpected | samples |\n|---|---|---|---|---|\n"
                + failed
            )
        docs = [o.docs for _, _, o in outcomes if o.docs]
        if docs:
            metadata["data_docs"] = MetadataValue.path(str(docs[-1]))
        if failures:
            description = "\n".join(o.message() for _, o in failures)
        elif len(outcomes) == 1:
            description = outcomes[0][2].message()
        else:
            description = (
                f"{source.name}: {len(outcomes)} partitions passed ({outcomes[0][0]} to {last_month})"
            )
        result = AssetCheckResult(passed=not failures, description=description, metadata=metadata)
        # each month validated, its own outcome (a reference snapshot has no month)
        by_month = {month: (o.success, o.message()) for month, _, o in outcomes if month is not None}
        return evaluated_each_month(context, result, by_month)

    return _check


def _raw_asset(source: Source, monthly: PartitionsDefinition, engine: str) -> AssetsDefinition:
    @asset(
        key=AssetKey(["raw", source.name]),
        group_name=RAW_GROUP,
        partitions_def=_partitions(source, monthly),
        backfill_policy=_policy(source),
        deps=[AssetKey(["landed", source.name])],
        description=f"{source.description} Validated rows of landed.{source.name}, released to raw when "
        + ("validated" if source.kind != "monthly" else "their month is whole (every monthly source passed)")
        + "; what dbt reads.",
        kinds=warehouse_kinds(engine),
        metadata={"grain": source.grain, "key": ", ".join(source.key), "table": source.raw_table},
    )
    def _asset(
        context: AssetExecutionContext, data_dir: DataDir, warehouse: WarehouseResource
    ) -> MaterializeResult:
        file_of = landing_files(data_dir.paths.landing, data_dir.allow_external_links)
        with warehouse.session() as wh:
            if source.kind != "monthly":
                return _release_snapshot(context, wh, source, data_dir)
            released = wh.release_whole_months()
            state = wh.whole_months()
        for release in released:
            context.log.info(
                f"released {release.month} to raw, whole: "
                + (", ".join(f"{name} {rows}" for name, rows in release.rows.items()) or "nothing new")
            )
        metadata = {}
        for month in _months(context, source):
            rows = state.by_month[month][source.name].rows
            values = {
                "rows": MetadataValue.int(rows),
                "dagster/row_count": MetadataValue.int(rows),
                "released": MetadataValue.bool(state.released(month)),
            }
            if not state.released(month):
                held = state.holdup(month)
                values["held"] = MetadataValue.text(held.sentence(file_of))
                context.log.info(f"{source.name} {month}: validated; {held.sentence(file_of)}")
            metadata[month] = values
        return _materialized(context, source, metadata)

    return _asset


def _release_snapshot(
    context: AssetExecutionContext, wh: Warehouse, source: Source, data_dir: DataDir
) -> MaterializeResult:
    """A validated snapshot reaches raw at once; one that changes or removes rows restates every month."""
    if _reuse_snapshot(context, source) and wh.snapshot_promoted(source.name):
        rows = wh.count(source.raw_table)
        context.log.info(f"{source.name}: unchanged, {rows} rows already in {source.raw_table}")
        return MaterializeResult(
            metadata={
                "rows": MetadataValue.int(rows),
                "dagster/row_count": MetadataValue.int(rows),
                "unchanged": MetadataValue.bool(True),
            }
        )
    release = wh.release_snapshot(source.name)
    landing = data_dir.paths.landing
    found = landing_path(landing, source, None, data_dir.allow_external_links)
    said = release.sentence(str(found.relative_to(landing)))
    metadata = {"rows": MetadataValue.int(release.rows), "dagster/row_count": MetadataValue.int(release.rows)}
    if said:
        context.log.warning(said)
        metadata["restates"] = MetadataValue.text(said)
    return MaterializeResult(metadata=metadata)


def fail_unless_released(wh: Warehouse, months: list[str], data_dir: DataDir) -> None:
    """Raise a Failure naming each of ``months`` that is held out of raw (not whole, or waiting for an earlier
    month that is not), its sources, files and what to do: no marts are built over a month that is not whole."""
    file_of = landing_files(data_dir.paths.landing, data_dir.allow_external_links)
    held = wh.whole_months().holdups(months)
    if not held:
        return
    lines = [holdup.sentence(file_of) for holdup in held]
    raise Failure(
        description="months held out of raw until whole, so nothing was built or published:\n"
        + "\n".join(f"  {line}" for line in lines)
        + f"\n{held[0].remedy()}",
        metadata={"held": MetadataValue.json({h.month: h.sentence(file_of) for h in held})},
    )


def held_months(wh: Warehouse, data_dir: DataDir) -> list[str]:
    """In words, every month whose latest loads raw does not show (a failed suite, a load not validated, an
    earlier month not whole): what a publication leaves out, or shows as last released."""
    file_of = landing_files(data_dir.paths.landing, data_dir.allow_external_links)
    return [holdup.sentence(file_of) for holdup in wh.whole_months().held()]


def ingest_assets(monthly: PartitionsDefinition, engine: str = DEFAULT_ENGINE) -> list[AssetsDefinition]:
    """``landed/<source>`` and ``raw/<source>`` of every landing source, the monthly ones on ``monthly``."""
    return [
        asset_def
        for source in SOURCES
        for asset_def in (_landed_asset(source, monthly, engine), _raw_asset(source, monthly, engine))
    ]


def ingest_checks(monthly: PartitionsDefinition) -> list[AssetChecksDefinition]:
    """The blocking suite of every landing source, the monthly ones' on ``monthly``."""
    return [_suite_check(source, monthly) for source in SOURCES]
