"""Transform assets: every dbt model is an asset and every dbt test an asset check."""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from pipelines.config import DATA_DIR_ENV
from pipelines.dbt import dbt_project, ensure_manifest
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


@dbt_assets(manifest=ensure_manifest(), project=dbt_project, dagster_dbt_translator=Translator())
def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, data_dir: DataDir):
    paths = data_dir.paths
    paths.logs.mkdir(parents=True, exist_ok=True)
    # dbt's profile reads the warehouse location from the environment of the dbt process.
    with _environment(**{DATA_DIR_ENV: str(paths.data_dir), "DBT_LOG_PATH": str(paths.logs / "dbt")}):
        yield from dbt.cli(["build"], context=context, target_path=paths.dbt_target).stream()
