"""The code location loads, and its assets cover every landing source and every dbt model and test."""

from __future__ import annotations

import json

from dagster import AssetKey

from pipelines.dbt import MANIFEST
from pipelines.definitions import defs
from pipelines.sources import MONTHLY, SNAPSHOTS, SOURCES


def test_definitions_load_with_all_ingest_assets():
    graph = defs.resolve_asset_graph()
    keys = set(graph.get_all_asset_keys())
    for source in SOURCES:
        assert AssetKey(["raw", source.name]) in keys
    for source in MONTHLY:
        assert graph.get(AssetKey(["raw", source.name])).partitions_def is not None
    for source in SNAPSHOTS:
        assert graph.get(AssetKey(["raw", source.name])).partitions_def is None


def test_every_dbt_model_is_an_asset_downstream_of_raw_and_every_test_a_check():
    manifest = json.loads(MANIFEST.read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    graph = defs.resolve_asset_graph()
    keys = {k.path[-1]: k for k in graph.get_all_asset_keys()}
    for model in models:
        assert model["name"] in keys, model["name"]
    # Staging models read the raw tables the ingest assets produce.
    orders = graph.get(keys["stg_erp__order_lines"])
    assert AssetKey(["raw", "order_lines"]) in orders.parent_keys
    assert len(list(graph.asset_check_keys)) == len(tests) > 0


def test_jobs_for_the_cli_exist():
    for name in ("ingest_reference", "ingest_monthly", "transform"):
        assert defs.resolve_job_def(name) is not None


def test_workspace_points_at_the_definitions_module():
    import pathlib

    import yaml

    workspace = yaml.safe_load((pathlib.Path(__file__).parents[1] / "workspace.yaml").read_text())
    module = workspace["load_from"][0]["python_module"]
    assert module["module_name"] == "pipelines.definitions" and module["attribute"] == "defs"
