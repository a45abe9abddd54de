"""The Dagster code location: ``workspace.yaml`` and ``dagster dev`` load ``defs`` from here.

``build_definitions`` binds the same assets and jobs to any data directory (the CLI and the tests use it);
``defs`` is bound to ``$CPROF_DATA_DIR``, or ``data/`` under the project.
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from pipelines.assets.ingest import ingest_assets
from pipelines.assets.publish import published_marts
from pipelines.assets.transform import dbt_models
from pipelines.config import Paths, paths, quiet_telemetry
from pipelines.resources import resources_for
from pipelines.sources import MONTHLY, SNAPSHOTS

quiet_telemetry()


def _raw_keys(sources) -> AssetSelection:
    return AssetSelection.assets(*(["raw", s.name] for s in sources))


ingest_reference_job = define_asset_job(
    "ingest_reference", selection=_raw_keys(SNAPSHOTS), description="Load the reference snapshots into raw."
)
ingest_monthly_job = define_asset_job(
    "ingest_monthly",
    selection=_raw_keys(MONTHLY),
    description="Load one month of every monthly landing source into raw.",
)
transform_job = define_asset_job(
    "transform",
    selection=AssetSelection.assets(dbt_models, published_marts),
    description="dbt build (every model and its tests), then publish the marts if all of it passed.",
)


def build_definitions(data_paths: Paths) -> Definitions:
    return Definitions(
        assets=[*ingest_assets, dbt_models, published_marts],
        jobs=[ingest_reference_job, ingest_monthly_job, transform_job],
        resources=resources_for(data_paths),
    )


defs = build_definitions(paths())
