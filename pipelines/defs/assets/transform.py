"""Transform assets: every dbt model is an asset and every dbt test an asset check.

The dbt project runs in two steps of a refresh: ``dbt_models``, every model that does not read a Python mart,
then, once the Python assets have written marts/customer_clv and marts/satisfaction_drivers (dbt sources
``python_marts``), ``satisfaction_and_scorecard_models``: the models downstream of those sources
(customer_satisfaction, customer_scorecard, incentive_attainment), with their tests.

The models share the monthly partitions of the ingest assets. A run for a month or a range of months passes
the range to dbt in the environment (CPROF_PERIOD_FROM, CPROF_PERIOD_TO); the incremental models replace exactly the periods the
range can change (see dbt_project/macros/refresh_window.sql). The run tag ``cprof/full_refresh`` rebuilds
every model whole (``dbt build --full-refresh``), as needed after a change of the reference configuration.
"""

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Failure,
    Output,
    PartitionsDefinition,
)
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from pipelines.defs.assets.ingest import fail_unless_released
from pipelines.defs.assets.kinds import DEFAULT_ENGINE, warehouse_kinds
from pipelines.defs.assets.row_counts import add_row_count, row_counts
from pipelines.defs.dbt import dbt_project, ensure_manifest
from pipelines.defs.dbt_failures import explain_failed_tests
from pipelines.defs.explain import readable
from pipelines.defs.partitions import (
    FULL_REFRESH_TAG,
    RefreshRange,
    refresh_range,
    run_months,
    single_run,
)
from pipelines.defs.resources import DataDir, WarehouseResource
from pipelines.engines.whole_months import months_from
from pipelines.lib.settings import ENGINES

# The dbt sources written by the Python assets, and the dbt selection of the models that read them.
PYTHON_MARTS_SOURCE = "python_marts"
AFTER_PYTHON_MARTS = f"source:{PYTHON_MARTS_SOURCE}+"
# The metadata key of an asset's storage kind (dagster's TableMetadataSet, not exported by dagster 1.13).
STORAGE_KIND = "dagster/storage_kind"

# The group of the what-if scenario models (models/*/scenarios/).
SCENARIOS_GROUP = "scenarios"


# dbt's seeds: the labels, units and display names defined with the code (dbt_project/seeds/).
LABELS_GROUP = "labels"


class Translator(DagsterDbtTranslator):
    """Groups dbt models by their layer folder (staging, intermediate, marts), and the what-if scenario models
    (a `scenarios` folder of a layer) in a group of their own; a table of the source ``python_marts`` is the
    Python asset that writes it, marts/<table>. Its kinds and storage kind are the run's ``engine`` (dagster-dbt
    takes them from the manifest's adapter, which is DuckDB's: the manifest is parsed with the `local` target)."""

    def __init__(self, engine: str = DEFAULT_ENGINE) -> None:
        super().__init__()
        self.engine = engine

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: Any) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        adapter = manifest.get("metadata", {}).get("adapter_type")
        if adapter == self.engine or adapter not in ENGINES:
            return spec
        return spec.replace_attributes(
            kinds=(set(spec.kinds) - {adapter}) | warehouse_kinds(self.engine),
            metadata={**spec.metadata, STORAGE_KIND: self.engine},
        )

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if (
            dbt_resource_props.get("resource_type") == "source"
            and dbt_resource_props.get("source_name") == PYTHON_MARTS_SOURCE
        ):
            return AssetKey(["marts", dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props.get("resource_type") == "seed":
            return LABELS_GROUP  # the labels defined with the code, not dbt's group "default"
        if dbt_resource_props.get("resource_type") == "model" and len(fqn) > 2:
            return SCENARIOS_GROUP if fqn[2] == SCENARIOS_GROUP else fqn[1]
        return super().get_group_name(dbt_resource_props)


def dbt_build_args(full_refresh: bool = False) -> list[str]:
    """``dbt build`` of the models and their data tests. The unit tests check the SQL, not the data: they
    run in the test suite (tests/test_costing.py), not in every refresh."""
    return ["build", "--exclude-resource-type", "unit_test", *(["--full-refresh"] if full_refresh else [])]


# How many nodes dbt builds at once on DuckDB (the profile's `threads`, 2, is the most: the machine's cores). A range
# of at most this many months (a refresh: its month and those awaiting publication) builds two at a time, which
# overlaps dbt's own work around one small node with another's query; a longer range (a backfill, a full build)
# and a full refresh build one at a time, since two large queries share DuckDB's memory limit and the cores, and
# spill. At 10M order lines over 72 months the models' full build took 308 s with two threads (12 GB spilled at its
# peak; the benchmark's run of it spilled over 34 GB, still growing, and was stopped before the disk filled) and
# 239 s with one (8.6 GB); a one-month refresh 29.9 s with two and 32.2 s with one (bench/README.md, issue 32's
# fifth slice). Where between 1 and 72 months one thread starts to win was not measured: 3 covers a refresh.
CONCURRENT_MONTHS = 3


def dbt_threads(refresh: RefreshRange, full_refresh: bool, engine: str) -> list[str]:
    """dbt's ``--threads`` for a build of ``refresh`` on ``engine``: see CONCURRENT_MONTHS. Spark's targets keep
    their profile's one thread (a Thrift connection, or a Spark session, per dbt thread)."""
    if engine != "duckdb":
        return []
    months = len(months_from(refresh.first, refresh.last))
    return ["--threads", "2" if months <= CONCURRENT_MONTHS and not full_refresh else "1"]


def dbt_period_environment(refresh: RefreshRange) -> dict[str, str]:
    """The months first..last a run rebuilds (its refresh range: its months and those awaiting publication), as
    dbt's models read them (macros/refresh_window.sql)."""
    return {"CPROF_PERIOD_FROM": f"{refresh.first}-01", "CPROF_PERIOD_TO": f"{refresh.last}-01"}


def _dbt_step(monthly: PartitionsDefinition, engine: str, **selection: str):
    """``@dbt_assets`` of the models ``selection`` (dbt's select / exclude) picks, on the monthly partitions."""
    return dbt_assets(
        manifest=ensure_manifest(),
        project=dbt_project,
        dagster_dbt_translator=Translator(engine),
        partitions_def=monthly,
        backfill_policy=single_run,
        **selection,
    )


def dbt_models(monthly: PartitionsDefinition, engine: str = DEFAULT_ENGINE) -> AssetsDefinition:
    """The first dbt step: every model that does not read a Python mart, on ``monthly``."""

    @_dbt_step(monthly, engine, exclude=AFTER_PYTHON_MARTS, name="dbt_models")
    def _models(
        context: AssetExecutionContext, dbt: DbtCliResource, data_dir: DataDir, warehouse: WarehouseResource
    ):
        # No run builds marts over a month that is not whole: its months must all be in raw.
        with warehouse.session() as wh:
            fail_unless_released(wh, run_months(context), data_dir)
        yield from _dbt_build(context, dbt, data_dir, warehouse)

    return _models


def satisfaction_and_scorecard_models(
    monthly: PartitionsDefinition, engine: str = DEFAULT_ENGINE
) -> AssetsDefinition:
    """The second dbt step: the models that read the Python marts, on ``monthly``."""

    @_dbt_step(monthly, engine, select=AFTER_PYTHON_MARTS, name="satisfaction_and_scorecard_models")
    def _models(
        context: AssetExecutionContext, dbt: DbtCliResource, data_dir: DataDir, warehouse: WarehouseResource
    ):
        yield from _dbt_build(context, dbt, data_dir, warehouse)

    return _models


def _dbt_build(
    context: AssetExecutionContext, dbt: DbtCliResource, data_dir: DataDir, warehouse: WarehouseResource
) -> Iterator[Any]:
    """``dbt build`` of the step's models (dagster-dbt passes the step's selection) for the run's months."""
    paths = data_dir.paths
    paths.logs.mkdir(parents=True, exist_ok=True)
    months = run_months(context)
    full_refresh = context.run.tags.get(FULL_REFRESH_TAG) == "true"
    # Every month awaiting publication is rebuilt too, before or after the run's own (pipelines.defs.partitions).
    refresh = refresh_range(context, warehouse)
    args = [*dbt_build_args(full_refresh), *dbt_threads(refresh, full_refresh, warehouse.engine)]
    periods = dbt_period_environment(refresh)
    context.log.info(
        f"dbt {' '.join(args)} for {months[0]} to {months[-1]} ({periods})"
        + (f"; {refresh.sentence()}" if refresh.also else "")
    )
    # dbt's profile reads the warehouse's settings (its location among them), and the models the run's months,
    # from dbt's environment. The engine's runtime says which dbt target builds the models, and where it listens.
    environment = {
        "DBT_LOG_PATH": str(paths.logs / "dbt"),
        **periods,
        **warehouse.dbt_environment(),
    }
    try:
        yield from with_row_counts(
            context,
            dbt.cli(args, environment=environment, context=context, target_path=paths.dbt_target).stream(),
            warehouse,
            months,
        )
    except Exception as exc:
        # A failed data test in words: the keys, months and files of the rows that break it.
        try:
            with warehouse.session() as wh:
                explained = explain_failed_tests(
                    paths.dbt_target, wh, paths.landing, data_dir.allow_external_links
                )
        except Exception as unexplained:  # noqa: BLE001 - dbt's own error stands
            context.log.warning(f"the failed dbt tests could not be read back: {unexplained}")
            explained = []
        if not explained:
            raise
        for paragraph in explained:
            context.log.error(paragraph)
        raise Failure(description="\n".join(explained) + f"\n(dbt's error: {readable(str(exc))})") from exc


def with_row_counts(
    context: AssetExecutionContext, events: Iterable[Any], warehouse: WarehouseResource, months: list[str]
) -> Iterator[Any]:
    """dbt's events, each model's materialization carrying its row count per partition (``dagster/row_count``:
    that month's rows of a table keyed by period, else the table's). The counts are read once dbt has finished
    (DuckDB admits no reader beside dbt's writer), so the events are passed on then; on a failed build, the
    events dbt produced are passed on and its error raised."""
    collected, error = [], None
    try:
        collected.extend(events)
    except Exception as exc:  # noqa: BLE001 - re-raised below, after the events that precede it
        error = exc
    keys = {
        event.output_name: context.asset_key_for_output(event.output_name)
        for event in collected
        if isinstance(event, Output)
    }
    tables = [tuple(key.path) for key in keys.values() if len(key.path) == 2]
    counts = row_counts(warehouse, tables, months) if tables else {}
    for event in collected:
        if isinstance(event, Output):
            key = keys[event.output_name]
            add_row_count(context, key, counts.get(tuple(key.path)))
        yield event
    if error is not None:
        raise error
