"""End to end: landing files through Dagster ingest assets and dbt into the working warehouse."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from pipelines.cli import main
from pipelines.defs.assets.ingest import ingest_assets, ingest_checks
from pipelines.defs.partitions import monthly_partitions_for
from pipelines.defs.resources import resources_for
from pipelines.landing.history import DEFAULT_FIRST_MONTH
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.run import PipelineError, run_pipeline
from pipelines.sample.generate import GenerateConfig, generate
from tests.conftest import SampleRun

# The partitions of a code location without recorded history: 2020-01 to the last complete month.
MONTHLY_PARTITIONS = monthly_partitions_for(DEFAULT_FIRST_MONTH, None)


def _monthly_assets():
    checks = [c for c in ingest_checks(MONTHLY_PARTITIONS) if c.partitions_def is not None]
    return [a for a in ingest_assets(MONTHLY_PARTITIONS) if a.partitions_def is not None] + checks


def _snapshot_assets():
    return [a for a in ingest_assets(MONTHLY_PARTITIONS) if a.partitions_def is None] + [
        c for c in ingest_checks(MONTHLY_PARTITIONS) if c.partitions_def is None
    ]


def test_two_months_materialize_with_file_metadata_and_reload_is_idempotent(data_paths: Paths):
    instance = DagsterInstance.ephemeral()
    resources = resources_for(Settings(data_dir=data_paths.data_dir))
    assert materialize(_snapshot_assets(), resources=resources, instance=instance).success
    for month in ("2024-01", "2024-02"):
        result = materialize(
            _monthly_assets(), partition_key=f"{month}-01", resources=resources, instance=instance
        )
        assert result.success
    event = instance.get_latest_materialization_event(AssetKey(["landed", "order_lines"]))
    metadata = event.asset_materialization.metadata
    assert event.asset_materialization.partition == "2024-02-01"
    assert metadata["file"].value.endswith("order_lines/2024-02.csv")
    assert len(metadata["sha256"].value) == 64 and metadata["rows"].value > 0

    def snapshot():
        with duckdb.connect(str(data_paths.warehouse), read_only=True) as con:
            return con.execute(
                "select _period, count(*), count(distinct (order_id, line_no)), sum(quantity) "
                "from raw.order_lines group by 1 order by 1"
            ).fetchall()

    before = snapshot()
    assert [row[0].isoformat() for row in before] == ["2024-01-01", "2024-02-01"]
    assert all(row[1] == row[2] for row in before)  # no duplicate lines
    assert materialize(
        _monthly_assets(), partition_key="2024-02-01", resources=resources, instance=instance
    ).success
    assert snapshot() == before


def test_run_builds_and_tests_the_dbt_models(sample_run: SampleRun):
    """The run of the whole small sample into an empty data directory that the suite's published sample is."""
    data_paths, summary, lines = sample_run.paths, sample_run.summary, sample_run.progress
    assert summary.months == ["2024-01", "2024-02", "2024-03"]
    assert summary.dbt_models >= 12 and summary.dbt_tests_passed >= 80
    assert any(line.startswith("ingest 2024-03") for line in lines)
    # The sample's first month has too little history for Gamma-Gamma: the run says so, not only Dagster's log.
    said = [line for line in lines if line.startswith("note: marts/customer_clv: ")]
    assert len(said) == 1 and said[0].startswith(
        "note: marts/customer_clv: 2024-01 published without model figures (fit_status not_fitted"
    )
    assert "Gamma-Gamma is not identified" in said[0]
    with duckdb.connect(str(data_paths.warehouse), read_only=True) as con:
        staged = con.execute("select count(*) from staging.stg_erp__order_lines").fetchone()[0]
        raw = con.execute("select count(*) from raw.order_lines").fetchone()[0]
        ledger = con.execute("select sum(amount) from staging.stg_ledger__gl_costs").fetchone()[0]
        landed = con.execute(
            f"select sum(amount) from read_csv('{data_paths.landing}/gl_costs/*.csv', "
            "columns = {'period': 'varchar', 'cost_center': 'varchar', 'account': 'varchar', 'amount': 'decimal(18,2)'})"
        ).fetchone()[0]
    assert staged == raw > 0
    assert ledger == landed  # DECIMAL end to end: to the cent


def test_a_failing_dbt_test_fails_the_run_and_names_it(published_sample: Paths, tmp_path):
    """A customer deleted from the CRM snapshot while older months still reference it: the snapshot's own
    suite passes and the month refreshed does not mention the customer, but dbt's relationship test fails."""
    paths = Paths(tmp_path / "data")
    shutil.copytree(published_sample.data_dir, paths.data_dir, symlinks=True)
    march = " ".join(p.read_text() for p in paths.landing.glob("*/2024-03.csv"))
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        january_only = [
            c
            for (c,) in con.execute(
                "select distinct customer_id from raw.order_lines where _period = date '2024-01-01' order by 1"
            ).fetchall()
            if c not in march
        ]
    gone = january_only[0]
    customers = paths.landing / "reference" / "customers.csv"
    customers.write_text(
        "".join(line for line in customers.read_text().splitlines(True) if not line.startswith(gone))
    )
    with pytest.raises(PipelineError, match="relationships_stg_erp__order_lines_customer_id"):
        run_pipeline(Settings(data_dir=paths.data_dir), "2024-03", "2024-03", progress=lambda _: None)


def test_missing_file_fails_before_anything_is_written(data_paths: Paths):
    (data_paths.landing / "gl_costs" / "2024-02.csv").unlink()
    with pytest.raises(Exception, match=r"gl_costs/2024-02\.csv: missing"):
        run_pipeline(Settings(data_dir=data_paths.data_dir), progress=lambda _: None)
    assert not data_paths.warehouse.exists()


def test_cli_generate_and_run_a_range(tmp_path):
    """``cprof --data-dir`` runs against that directory even when ``$CPROF_DATA_DIR`` names another whose landing
    zone holds other months: the Dagster partitions follow the directory the command was given."""
    data, other = tmp_path / "cli", tmp_path / "other"
    generate(GenerateConfig(customers=30, months=1, start="2024-05"), other / "landing")
    env = {**os.environ, "CPROF_DATA_DIR": str(other)}

    def cprof(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "pipelines.cli", "--data-dir", str(data), *args]
        return subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=600)

    generated = cprof("generate", "--customers", "60", "--months", "2", "--start", "2023-11")
    assert generated.returncode == 0, generated.stderr
    assert (data / "landing" / "order_lines" / "2023-12.csv").exists()
    ran = cprof("run", "--from", "2023-11", "--to", "2023-11")
    assert ran.returncode == 0, ran.stderr
    out = ran.stdout
    assert "ingest order_lines 2023-11" in out or "ingest 2023-11" in out, out
    assert "2023-12" not in out.split("Summary")[0].split("run:")[1]
    assert "working warehouse" in out
    assert not (other / "warehouse.duckdb").exists()


def test_cli_errors_name_what_failed(tmp_path, capsys):
    data = tmp_path / "nothing"
    assert main(["--data-dir", str(data), "run"]) == 1
    assert f"no landing zone at {data / 'landing'}" in capsys.readouterr().err
    generate(GenerateConfig(customers=30, months=1, start="2024-05"), data / "landing")
    assert main(["--data-dir", str(data), "run", "--from", "2025-01"]) == 1
    assert "no monthly files between 2025-01 and the end" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--from", "2024-13"])
    assert exit_info.value.code == 2


def test_a_warning_check_is_reported_but_does_not_block_publishing(
    published_sample: Paths, tmp_path, monkeypatch
):
    """The CLV holdout calibration warns (severity WARN); a poor calibration must not stop a publication."""
    import pipelines.defs.assets.clv as clv_assets
    from pipelines.defs.resources import ClvConfig
    from pipelines.domain.clv_scoring import ClvSettings
    from pipelines.publication.publish import current_database

    paths = Paths(tmp_path / "data")
    shutil.copytree(published_sample.data_dir, paths.data_dir, symlinks=True)
    monkeypatch.setattr(ClvConfig, "settings", lambda self: ClvSettings(holdout_months=1))
    poor = {
        "customers": 10,
        "holdout_days": 31.0,
        "predicted_purchases": 90.0,
        "actual_purchases": 10.0,
        "aggregate_ratio": 9.0,
        "mean_absolute_error": 8.0,
    }
    monkeypatch.setattr(clv_assets, "holdout_calibration", lambda calibration, final: poor)
    before = current_database(paths.published).resolve()
    lines: list[str] = []
    run_pipeline(Settings(data_dir=paths.data_dir), "2024-03", "2024-03", progress=lines.append)
    assert any(
        line.startswith("warning: marts/customer_clv holdout_calibration") and "ratio 9.0" in line
        for line in lines
    )
    assert current_database(paths.published).resolve() != before  # published all the same


def test_a_run_s_partitions_are_its_own_data_directory_s(tmp_path):
    """A run builds its definitions from its own settings and the history it has just recorded from its landing
    zone: months long before 2020 (the partitions' start without a record) are partitions of that run, whatever
    the environment of the process says."""
    paths = Paths(tmp_path / "old")
    generate(GenerateConfig(customers=30, months=1, start="2019-11"), paths.landing)
    summary = run_pipeline(Settings(data_dir=paths.data_dir), progress=lambda _: None)
    assert summary.months == ["2019-11"] and summary.run_id is not None


def test_months_outside_the_configured_partitions_are_named_before_anything_runs(tmp_path):
    """CPROF_LAST_MONTH bounds the partitions: a run of months after it gets one sentence saying why and what to
    set, not an invariant error from every step."""
    paths = Paths(tmp_path / "data")
    generate(GenerateConfig(customers=30, months=2, start="2024-01"), paths.landing)
    with pytest.raises(
        PipelineError,
        match=r"2024-02\.\.2024-02 are outside the pipeline's monthly partitions \(2024-01 to 2024-01\), "
        r"which \$CPROF_FIRST_MONTH / \$CPROF_LAST_MONTH bound",
    ):
        run_pipeline(Settings(data_dir=paths.data_dir, last_month="2024-01"), progress=lambda _: None)
    assert not paths.warehouse.exists()
