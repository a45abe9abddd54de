"""A stray or misnamed landing file (issue 29): the code location loads whatever the landing zone holds, the landing
sensor names the file and the rule, ``cprof run`` says it in one line; the partitions the UI shows for a historic
sample are still its months (pipelines/landing/history.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from dagster import SkipReason, build_sensor_context, instance_for_test

from pipelines.defs.automation import landing_sensor
from pipelines.defs.partitions import partitions_of
from pipelines.defs.resources import DataDir
from pipelines.landing.history import (
    History,
    history_of,
    history_path,
    read_history,
    record_landing_history,
    write_history,
)
from pipelines.landing.inventory import landing_inventory
from pipelines.lib.config import PROJECT_ROOT, WORKSPACE_YAML
from pipelines.lib.settings import SettingError, Settings
from pipelines.runtime.instance import write_dagster_yaml

BIN = Path(sys.executable).parent
STRAY = "gl_costs/2025-7.csv"
RULE = "'2025-7' is not a month"


def _env(data_dir: Path) -> dict[str, str]:
    """As `make dev` runs the webserver and the daemon: the instance and the data directory of the demo."""
    return {**os.environ, "DAGSTER_HOME": str(data_dir / "dagster_home"), "CPROF_DATA_DIR": str(data_dir)}


def _run(command: list[str], data_dir: Path, **options) -> subprocess.CompletedProcess:
    """``command`` in a process of its own, as `make dev` or a shell runs it on ``data_dir``; its output kept."""
    return subprocess.run(
        command, env=_env(data_dir), capture_output=True, text=True, timeout=300, check=False, **options
    )


@pytest.fixture(scope="module")
def historic_sample(tmp_path_factory) -> Path:
    """A data directory as `cprof generate` leaves it: the demo's 24 months (2024-01..2025-12), few customers."""
    data_dir = tmp_path_factory.mktemp("historic") / "data"
    done = _run([str(BIN / "cprof"), "--data-dir", str(data_dir), "generate", "--customers", "60"], data_dir)
    assert done.returncode == 0, done.stderr
    write_dagster_yaml(data_dir / "dagster_home")
    return data_dir


@pytest.fixture
def with_stray_file(historic_sample: Path, tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    shutil.copytree(historic_sample, data_dir)
    shutil.copy(data_dir / "landing/gl_costs/2025-07.csv", data_dir / "landing" / STRAY)
    return data_dir


def _partition_bounds(data_dir: Path) -> tuple[str, str]:
    """The first and last partition keys of the code location as `make dev` loads it, in a fresh process."""
    probe = (
        "import json; from dagster import AssetKey, DagsterInstance; from pipelines.definitions import defs; "
        "graph = defs().get_repository_def().asset_graph; "
        "keys = graph.get(AssetKey(['published', 'marts'])).partitions_def.get_partition_keys("
        "dynamic_partitions_store=DagsterInstance.get()); print(json.dumps([keys[0], keys[-1]]))"
    )
    done = _run([sys.executable, "-c", probe], data_dir, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr
    first, last = json.loads(done.stdout.splitlines()[-1])
    return first, last


def test_the_code_location_loads_with_a_misnamed_landing_file(with_stray_file: Path):
    done = _run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", str(WORKSPACE_YAML)],
        with_stray_file,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All code locations passed validation" in done.stdout + done.stderr


def test_the_landing_sensor_names_the_misnamed_file_and_the_rule(with_stray_file: Path):
    with instance_for_test() as instance:
        context = build_sensor_context(
            instance=instance, resources={"data_dir": DataDir(path=str(with_stray_file))}
        )
        result = landing_sensor(partitions_of(Settings(data_dir=with_stray_file)))(context)
    assert isinstance(result, SkipReason), result
    assert str(with_stray_file / "landing" / STRAY) in result.skip_message
    assert RULE in result.skip_message


def test_cprof_run_names_the_misnamed_file_in_one_line(with_stray_file: Path):
    done = _run([str(BIN / "cprof"), "--data-dir", str(with_stray_file), "run"], with_stray_file)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"cprof run: error: {with_stray_file / 'landing' / STRAY}: {RULE}"), line
    assert not (with_stray_file / "warehouse.duckdb").exists()  # nothing was loaded


def test_the_partitions_of_a_historic_sample_are_its_months(historic_sample: Path, tmp_path: Path):
    """What the UI shows for the demo: its 24 months, no month before or after it counted missing, as when the
    partitions were read from the landing zone at import; a stray file does not move them."""
    landed = landing_inventory(historic_sample / "landing").months
    assert (landed[0], landed[-1]) == ("2024-01", "2025-12")
    assert _partition_bounds(historic_sample) == ("2024-01-01", "2025-12-01")
    data_dir = tmp_path / "data"
    shutil.copytree(historic_sample, data_dir)
    shutil.copy(data_dir / "landing/gl_costs/2025-07.csv", data_dir / "landing" / STRAY)
    history_path(data_dir).unlink()  # recorded again by the sensor's tick, from the well-named months
    with instance_for_test() as instance:
        landing_sensor(partitions_of(Settings(data_dir=historic_sample)))(
            build_sensor_context(instance=instance, resources={"data_dir": DataDir(path=str(data_dir))})
        )
    assert _partition_bounds(data_dir) == ("2024-01-01", "2025-12-01")


def test_a_live_landing_zone_is_recorded_open_ended_and_a_historic_one_closed():
    months = ["2025-06", "2025-07", "2025-08", "2025-09", "2025-10"]
    assert history_of(months, date(2025, 11, 20)) == History("2025-06", None)  # October may still be arriving
    assert history_of(months, date(2025, 12, 5)) == History("2025-06", None)
    assert history_of(months, date(2026, 1, 5)) == History("2025-06", "2025-10")  # November never came
    assert history_of([], date(2026, 1, 5)) is None


def test_the_record_is_written_once_and_a_broken_one_is_named_in_one_line(tmp_path: Path):
    assert read_history(tmp_path) is None
    assert write_history(tmp_path, History("2024-01", "2025-12")) is True
    assert write_history(tmp_path, History("2024-01", "2025-12")) is False  # unchanged: not rewritten
    assert read_history(tmp_path) == History("2024-01", "2025-12")
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]  # no temporary file left behind
    history_path(tmp_path).write_text('{"first_month": "2024-1"}')
    with pytest.raises(SettingError) as caught:
        read_history(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{history_path(tmp_path)}: expected ") and "\n" not in message
    assert record_landing_history(tmp_path) is None  # no landing zone: nothing to record


def test_a_stray_file_does_not_stop_the_span_being_recorded(with_stray_file: Path):
    history_path(with_stray_file).unlink()
    assert record_landing_history(with_stray_file, date(2026, 12, 6)) == History("2024-01", "2025-12")
