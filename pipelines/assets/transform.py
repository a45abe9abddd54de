"""Transform assets: every dbt model is an asset and every dbt test an asset check.

The models share the monthly partitions of the ingest assets. A run for a month or a range of months passes
the range to dbt as vars (period_from, period_to); the incremental models replace exactly the periods the
range can change (see dbt_project/macros/refresh_window.sql). The run tag ``cprof/full_refresh`` rebuilds
every model whole (``dbt build --full-refresh``), as needed after a change of the reference configuration.
"""

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from pipelines.config import DATA_DIR_ENV
from pipelines.dbt import dbt_project, ensure_manifest
from pipelines.partitions import FULL_REFRESH_TAG, monthly_partitions, run_months, single_run
from pipelines.resources import DataDir


class Translator(DagsterDbtTranslator):
    """Groups dbt models by their layer folder (staging, intermediate, marts)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props.get("resource_type") == "model" and len(fqn) > 2:
            return fqn[1]
        return super().get_group_name(dbt_resource_props)


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def dbt_build_args(months: list[str], full_refresh: bool = False) -> list[str]:
    """``dbt build`` for the months first..last of a run."""
    period_vars = {"period_from": f"{months[0]}-01", "period_to": f"{months[-1]}-01"}
    return ["build", "--vars", json.dumps(period_vars), *(["--full-refresh"] if full_refresh else [])]


@dbt_assets(
    manifest=ensure_manifest(),
    project=dbt_project,
    dagster_dbt_translator=Translator(),
    partitions_def=monthly_partitions,
    backfill_policy=single_run,
)
def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, data_dir: DataDir):
    paths = data_dir.paths
    paths.logs.mkdir(parents=True, exist_ok=True)
    months = run_months(context)
    args = dbt_build_args(months, context.run.tags.get(FULL_REFRESH_TAG) == "true")
    context.log.info(f"dbt {' '.join(args)}")
    # dbt's profile reads the warehouse location from the environment of the dbt process.
    with _environment(**{DATA_DIR_ENV: str(paths.data_dir), "DBT_LOG_PATH": str(paths.logs / "dbt")}):
        yield from dbt.cli(args, context=context, target_path=paths.dbt_target).stream()
