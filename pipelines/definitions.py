"""The Dagster code location: ``workspace.yaml`` and ``dagster dev`` load ``defs`` from here.

``build_definitions`` binds the same assets and jobs to any data directory (the CLI and the tests use it);
``defs`` is bound to ``$CPROF_DATA_DIR``, or ``data/`` under the project.
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

from pipelines.assets.clv import customer_clv, customer_clv_holdout
from pipelines.assets.ingest import ingest_assets, ingest_checks
from pipelines.assets.publish import published_marts
from pipelines.assets.satisfaction import satisfaction
from pipelines.assets.scorecard import scorecard
from pipelines.assets.transform import dbt_models
from pipelines.config import Paths, paths, quiet_telemetry
from pipelines.resources import resources_for
from pipelines.sources import MONTHLY, SNAPSHOTS

quiet_telemetry()


def _ingest_keys(sources) -> AssetSelection:
    return AssetSelection.assets(*([layer, s.name] for s in sources for layer in ("landed", "raw")))


ingest_reference_job = define_asset_job(
    "ingest_reference",
    selection=_ingest_keys(SNAPSHOTS),
    description="Load, validate and promote the reference snapshots.",
)
ingest_monthly_job = define_asset_job(
    "ingest_monthly",
    selection=_ingest_keys(MONTHLY),
    description="Load, validate and promote one month of every monthly landing source.",
)
transform_job = define_asset_job(
    "transform",
    selection=AssetSelection.assets(dbt_models, customer_clv, satisfaction, scorecard, published_marts),
    description="dbt build (every model and its tests), then publish the marts if all of it passed.",
)


def build_definitions(data_paths: Paths, defer_docs: bool = False) -> Definitions:
    return Definitions(
        assets=[*ingest_assets, dbt_models, customer_clv, satisfaction, scorecard, published_marts],
        asset_checks=[*ingest_checks, customer_clv_holdout],
        jobs=[ingest_reference_job, ingest_monthly_job, transform_job],
        resources=resources_for(data_paths, defer_docs),
        # One process: DuckDB allows one writer per file, so steps must not run in parallel processes.
        executor=in_process_executor,
    )


defs = build_definitions(paths())
