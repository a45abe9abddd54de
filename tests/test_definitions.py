"""The code location loads, and its assets cover every landing source and every dbt model and test."""

from __future__ import annotations

import json
import subprocess

import pytest
from dagster import AssetCheckKey, AssetKey, Definitions

from pipelines.definitions import build_definitions
from pipelines.defs.dbt import MANIFEST, dbt_executable, dbt_resource
from pipelines.landing.sources import MONTHLY, SNAPSHOTS, SOURCES
from pipelines.lib.config import DBT_PROJECT_DIR
from pipelines.lib.settings import Settings


@pytest.fixture(scope="module")
def defs(tmp_path_factory) -> Definitions:
    """The code location's definitions, built from explicit settings (an empty data directory)."""
    return build_definitions(Settings(data_dir=tmp_path_factory.mktemp("definitions") / "data"))


def test_definitions_load_with_all_ingest_assets(defs: Definitions):
    graph = defs.resolve_asset_graph()
    keys = set(graph.get_all_asset_keys())
    for source in SOURCES:
        assert AssetKey(["raw", source.name]) in keys
    for source in MONTHLY:
        assert graph.get(AssetKey(["raw", source.name])).partitions_def is not None
    for source in SNAPSHOTS:
        assert graph.get(AssetKey(["raw", source.name])).partitions_def is None


def test_every_dbt_model_is_an_asset_downstream_of_raw_and_every_test_a_check(defs: Definitions):
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
    gx_checks = {key for key in graph.asset_check_keys if key.name == "gx_suite"}
    assert len(gx_checks) == len(SOURCES)
    python_checks = {
        AssetCheckKey(AssetKey(["marts", "customer_clv"]), "holdout_calibration"),
        AssetCheckKey(AssetKey(["published", "marts"]), "published_on_time"),
    }
    assert python_checks <= set(graph.asset_check_keys)
    assert len(list(graph.asset_check_keys)) == len(tests) + len(SOURCES) + len(python_checks)


def test_the_models_reading_python_marts_are_a_second_dbt_step_after_those_python_assets(defs: Definitions):
    """customer_satisfaction, customer_scorecard and incentive_attainment read marts written by Python assets
    (the dbt sources python_marts): they are their own dbt step, downstream of those assets, in the refresh job,
    under the asset keys the publication depends on."""
    satisfaction_and_scorecard_models = defs.get_assets_def(AssetKey(["marts", "customer_scorecard"]))
    dbt_models = defs.get_assets_def(AssetKey(["marts", "customer_profitability"]))
    satisfaction = defs.get_assets_def(AssetKey(["marts", "satisfaction_drivers"]))
    customer_clv = defs.get_assets_def(AssetKey(["marts", "customer_clv"]))
    marts = {
        AssetKey(["marts", name])
        for name in ("customer_satisfaction", "customer_scorecard", "incentive_attainment")
    }
    # with the view of customer_clv the semantic layer's CLV metrics read (docs/metrics.md)
    clv_view = AssetKey(["semantic", "customer_clv_for_metrics"])
    assert set(satisfaction_and_scorecard_models.keys) == marts | {clv_view}
    assert not (marts | {clv_view}) & set(dbt_models.keys)
    graph = defs.resolve_asset_graph()
    drivers, clv = AssetKey(["marts", "satisfaction_drivers"]), AssetKey(["marts", "customer_clv"])
    fits = AssetKey(["marts", "clv_fits"])
    assert set(satisfaction.keys) == {drivers} and set(customer_clv.keys) == {clv, fits}
    assert drivers in graph.get(AssetKey(["marts", "customer_satisfaction"])).parent_keys
    scorecard_parents = graph.get(AssetKey(["marts", "customer_scorecard"])).parent_keys
    assert {
        clv,
        AssetKey(["marts", "customer_satisfaction"]),
        AssetKey(["marts", "customer_profitability"]),
    } <= (scorecard_parents)
    assert marts | {fits} <= graph.get(AssetKey(["published", "marts"])).parent_keys
    # Each of their data tests is a check of its model, run by the second step.
    assert satisfaction_and_scorecard_models.check_keys and all(
        check.asset_key in marts for check in satisfaction_and_scorecard_models.check_keys
    )
    # In the refresh job, the step waits for the first dbt step and both Python assets; publishing waits for it.
    dependencies = defs.resolve_job_def("refresh").graph.dependency_structure

    def upstream_steps(step: str) -> set[str]:
        inputs = dependencies.input_to_upstream_outputs_for_node(step).values()
        return {output.node.name for outputs in inputs for output in outputs}

    second = "satisfaction_and_scorecard_models"
    assert upstream_steps(second) == {"dbt_models", "customer_clv", "satisfaction"}
    assert second in upstream_steps("published__marts")


def test_the_satisfaction_retention_link_runs_after_the_satisfaction_models_and_before_publishing(
    defs: Definitions,
):
    """marts/satisfaction_retention_fit reads customer_satisfaction (the second dbt step) and the orders (the first):
    its step waits for both, and the publication waits for it."""
    fit = AssetKey(["marts", "satisfaction_retention_fit"])
    graph = defs.resolve_asset_graph()
    assert {
        AssetKey(["marts", "customer_satisfaction"]),
        AssetKey(["intermediate", "int_drivers_aggregated_to_customer_month"]),
    } <= graph.get(fit).parent_keys
    assert fit in graph.get(AssetKey(["published", "marts"])).parent_keys
    assert set(defs.get_assets_def(fit).keys) == {fit}
    dependencies = defs.resolve_job_def("refresh").graph.dependency_structure
    inputs = dependencies.input_to_upstream_outputs_for_node("satisfaction_retention").values()
    assert {output.node.name for outputs in inputs for output in outputs} == {
        "dbt_models",
        "satisfaction_and_scorecard_models",
    }
    published = dependencies.input_to_upstream_outputs_for_node("published__marts").values()
    assert "satisfaction_retention" in {output.node.name for outputs in published for output in outputs}


def test_every_landing_source_is_validated_by_a_blocking_suite_before_it_reaches_raw(defs: Definitions):
    graph = defs.resolve_asset_graph()
    for source in SOURCES:
        landed, raw = AssetKey(["landed", source.name]), AssetKey(["raw", source.name])
        assert landed in graph.get(raw).parent_keys
        assert graph.get_check_spec(AssetCheckKey(landed, "gx_suite")).blocking


def test_jobs_for_the_cli_schedules_and_sensor_exist(defs: Definitions):
    for name in ("refresh", "ingest_reference", "check_freshness"):
        assert defs.resolve_job_def(name) is not None
    refresh = defs.resolve_job_def("refresh")
    assert refresh.partitions_def is not None  # the monthly partitions, inferred from its assets


def test_the_scenarios_job_builds_the_scenario_marts_and_no_actual_mart(defs: Definitions):
    """The job `cprof scenario` runs: the scenarios file's ingest, the staging view between it and the models (so
    the models wait for the file), the scenario models, dim_scenarios and the publication; no actual mart."""
    from pipelines.defs.assets.publish import PUBLISHED_MARTS, SCENARIO_MARTS

    job = defs.resolve_job_def("scenarios")
    keys = set(job.asset_layer.executable_asset_keys)
    assert {AssetKey(["marts", name]) for name in SCENARIO_MARTS} <= keys
    assert {
        AssetKey(["landed", "scenarios"]),
        AssetKey(["raw", "scenarios"]),
        AssetKey(["staging", "stg_config__scenarios"]),
        AssetKey(["marts", "dim_scenarios"]),
        AssetKey(["published", "marts"]),
    } <= keys
    actual = {AssetKey(["marts", name]) for name in PUBLISHED_MARTS if name not in SCENARIO_MARTS}
    assert keys & actual == set()
    assert not any(key.path[0] == "landed" and key.path[1] != "scenarios" for key in keys)
    # the scenario models are a group of their own in the UI
    graph = defs.resolve_asset_graph()
    assert {graph.get(AssetKey(["marts", name])).group_name for name in SCENARIO_MARTS} == {"scenarios"}


def test_what_a_satisfaction_lever_is_worth_is_computed_after_the_link_and_the_clv_it_scales(
    defs: Definitions,
):
    """marts/scenario_customer_value reads the satisfaction-retention fit, customer_clv, the satisfaction models
    (the second dbt step) and the scenario models (the first): in the refresh its step waits for all of them and
    the publication for it; in the scenarios job it runs on the fit and the CLV as published."""
    value = AssetKey(["marts", "scenario_customer_value"])
    graph = defs.resolve_asset_graph()
    assert {
        AssetKey(["marts", "satisfaction_retention_fit"]),
        AssetKey(["marts", "customer_clv"]),
        AssetKey(["marts", "customer_satisfaction"]),
        AssetKey(["intermediate", "int_scenario_changes"]),
    } <= graph.get(value).parent_keys
    dependencies = defs.resolve_job_def("refresh").graph.dependency_structure
    inputs = dependencies.input_to_upstream_outputs_for_node("scenario_value").values()
    assert {output.node.name for outputs in inputs for output in outputs} >= {
        "dbt_models",
        "customer_clv",
        "satisfaction_and_scorecard_models",
        "satisfaction_retention",
    }
    published = dependencies.input_to_upstream_outputs_for_node("published__marts").values()
    assert "scenario_value" in {output.node.name for outputs in published for output in outputs}
    keys = set(defs.resolve_job_def("scenarios").asset_layer.executable_asset_keys)
    assert value in keys and AssetKey(["marts", "satisfaction_retention_fit"]) not in keys


def test_workspace_points_at_the_definitions_module():
    import pathlib

    import yaml

    workspace = yaml.safe_load((pathlib.Path(__file__).parents[1] / "workspace.yaml").read_text())
    module = workspace["load_from"][0]["python_module"]
    assert module["module_name"] == "pipelines.definitions" and module["attribute"] == "defs"


def test_the_entry_point_builds_the_definitions_of_its_environment_when_called(tmp_path, monkeypatch):
    """``defs`` is Dagster's lazy entry point: the settings are read when the loader calls it, not at import."""
    from pipelines.definitions import defs as entry_point

    monkeypatch.setenv("CPROF_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CPROF_FIRST_MONTH", "2023-04")
    monkeypatch.setenv("CPROF_LAST_MONTH", "2023-06")
    loaded = entry_point()
    assert isinstance(loaded, Definitions)
    keys = loaded.resolve_job_def("refresh").partitions_def.get_partition_keys()
    assert keys == ["2023-04-01", "2023-05-01", "2023-06-01"]
    assert loaded.get_assets_def(AssetKey(["published", "marts"])).partitions_def.get_partition_keys() == keys


def test_the_dbt_resource_knows_the_cli_version_without_running_it():
    """The resource takes dbt's version from the dbt-core installed here instead of a `dbt --version`
    subprocess per run: true only because the executable it runs is that same installation."""
    resource = dbt_resource()
    assert resource.dbt_executable == dbt_executable()
    printed = subprocess.run(
        [dbt_executable(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert f"installed: {resource._cli_version}" in printed
    assert resource._initialize_dbt_core_adapter(["build"]) is None  # no in-process adapter per run


def test_dbt_sets_duckdbs_spill_directory_once_per_database_not_per_cursor():
    """dbt-duckdb applies `settings` with SET on every new cursor; once DuckDB has spilled to its temporary
    directory it refuses to set it again, which failed every dbt node after the first spill at 100M lines.
    The directory therefore belongs in `config_options` (given when the database opens)."""
    import yaml

    local = yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())["cprof"]["outputs"]["local"]
    assert "temp_directory" not in local["settings"]
    assert local["config_options"]["temp_directory"].endswith("/duckdb_tmp")


def test_every_asset_is_in_a_named_group_and_a_sources_landed_and_raw_assets_are_told_apart(
    defs: Definitions,
):
    """The asset graph a newcomer reads: no asset in Dagster's group "default" (dbt's seeds are "labels"), and
    landed/<source> and raw/<source>, which the graph shows under the same name, in groups of their own."""
    groups = {spec.key: spec.group_name for spec in defs.resolve_all_asset_specs()}
    assert "default" not in set(groups.values())
    assert set(groups.values()) == {
        "landing",
        "raw",
        "labels",
        "staging",
        "intermediate",
        "marts",
        "scenarios",
        "semantic",
        "publish",
    }
    sources = {key.path[1] for key in groups if key.path[0] == "landed"}
    assert sources and sources == {key.path[1] for key in groups if key.path[0] == "raw"}
    for source in sources:
        assert groups[AssetKey(["landed", source])] == "landing", source
        assert groups[AssetKey(["raw", source])] == "raw", source
    assert {groups[key] for key in groups if key.path[0] == "seeds"} == {"labels"}


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_every_warehouse_asset_is_of_the_runs_engine_and_the_publication_duckdb_and_parquet(
    engine: str, tmp_path_factory
):
    """The kinds Dagster shows (and `kind:` selects) say where each asset's table is: the working warehouse's
    engine for the landed, raw, dbt and Python assets, DuckDB and Parquet for the publication on either engine."""
    other = {"duckdb": "spark", "spark": "duckdb"}[engine]
    data_dir = tmp_path_factory.mktemp(f"definitions-{engine}") / "data"
    specs = {
        spec.key: spec
        for spec in build_definitions(Settings(data_dir=data_dir, engine=engine)).resolve_all_asset_specs()
    }
    published = specs.pop(AssetKey(["published", "marts"]))
    assert published.kinds == {"duckdb", "parquet"}
    assert specs and all(engine in spec.kinds and other not in spec.kinds for spec in specs.values()), {
        key.to_user_string(): spec.kinds
        for key, spec in specs.items()
        if engine not in spec.kinds or other in spec.kinds
    }
    kinds = {key.to_user_string(): spec.kinds for key, spec in specs.items()}
    assert kinds["raw/order_lines"] == kinds["landed/order_lines"] == {engine}
    assert kinds["marts/customer_clv"] == {engine, "python"}
    assert kinds["marts/customer_profitability"] == {engine, "dbt"}
    storage = {
        key.to_user_string(): spec.metadata.get("dagster/storage_kind")
        for key, spec in specs.items()
        if "dbt" in spec.kinds
    }
    assert storage and set(storage.values()) == {engine}, storage
