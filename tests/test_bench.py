"""The benchmark's measuring parts (bench/__main__.py), on real artefacts: a real run's dbt log and Dagster
event log, real landing files, a real child process. The benchmark itself is not run here (it is not a test)."""

import csv
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.__main__ import (
    MemorySampler,
    Stopped,
    _timed,
    dagster_events,
    dbt_nodes,
    floor_query,
    scenario_node_seconds,
    typed_floor,
)


def test_dbt_nodes_counts_every_node_of_both_dbt_invocations(published_sample):
    log = published_sample.logs / "dbt-build.log"
    invocations, kinds = dbt_nodes(log)
    # dbt numbers the nodes of each invocation "k of N START": N per invocation.
    totals = {int(n) for n in re.findall(r"\d+ of (\d+) START", log.read_text())}
    assert invocations == 2
    assert sum(kinds.values()) == sum(totals)
    seeds = len(list((Path(__file__).resolve().parents[1] / "dbt_project" / "seeds").glob("*.csv")))
    assert kinds["seed"] == seeds and kinds["exposure"] == 2 and kinds["data test"] > 50


def test_the_scenarios_nodes_are_every_scenario_model_and_test_dbt_ran_with_their_seconds(published_sample):
    log = published_sample.logs / "dbt-build.log"
    text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text())
    count, seconds, every = scenario_node_seconds(log)
    # every node that finished (a model created, a test passed), by the name dbt printed, and its seconds
    finished = re.findall(r"\d+ of \d+ (?:OK created sql \w+ model|PASS) (\S+) .* in ([0-9.]+)s\]", text)
    assert len(finished) == len(re.findall(r"\d+ of \d+ START (?:sql \w+ model|test) ", text))
    ran = [float(s) for name, s in finished if "scenario" in name]
    assert count == len(ran) and count >= 20  # the scenario models (staging to marts) and their tests
    assert seconds == sum(ran) and 0 < seconds < every == sum(float(s) for _, s in finished)


def test_dagster_events_are_counted_by_type_from_the_instance(published_sample, monkeypatch):
    from pipelines.run import dagster_instance

    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # the data directory's instance, without it
    with dagster_instance(published_sample) as instance:
        (run,) = instance.get_runs()
    events = dagster_events(published_sample, run.run_id)
    assert events["RUN_SUCCESS"] == 1
    assert events["STEP_START"] == events["STEP_SUCCESS"] > 10
    assert sum(events.values()) > 100


def test_the_dbt_invocations_bench_builds_the_selections_a_run_builds(published_sample, monkeypatch):
    """bench.dbt_invocations times the two builds a run's dbt steps run: their arguments and selections, in order,
    as dagster-dbt's command lines in the run's log say."""
    from bench.dbt_invocations import STEPS
    from pipelines.defs.assets.transform import dbt_build_args
    from pipelines.run import dagster_instance
    from tests.dbt_cli import dbt_commands

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with dagster_instance(published_sample) as instance:
        (run,) = instance.get_runs()
        commands = dbt_commands(instance, run.run_id)
    assert len(commands) == len(STEPS) == 2
    for command, selection in zip(commands, STEPS.values(), strict=True):
        assert f"cprof-dbt {' '.join(dbt_build_args())} " in command
        assert f" {' '.join(selection)}" in command


def _data_rows(landing: Path) -> int:
    expected = 0
    for path in landing.rglob("*.csv"):
        with path.open(newline="") as handle:
            expected += sum(1 for _ in csv.reader(handle)) - 1
    return expected


def test_typed_floor_writes_every_row_of_every_landing_file(small_landing, tmp_path):
    database = tmp_path / "floor.duckdb"
    assert typed_floor(small_landing, database) == _data_rows(small_landing) > 1000
    assert not database.exists()


def test_the_floor_counts_every_row_of_every_landing_file_whatever_its_columns(small_landing, tmp_path):
    """Files of one folder with different headers (a returns month carrying optional columns) are read too."""
    landing = tmp_path / "landing"
    shutil.copytree(small_landing, landing)
    returns = max((landing / "returns").glob("*.csv"))
    lines = returns.read_text().splitlines()
    returns.write_text(
        "\n".join([lines[0] + ",order_date", *(line + ",2024-01-05" for line in lines[1:])]) + "\n"
    )
    assert floor_query(landing) == _data_rows(landing) > 1000


def test_the_memory_sampler_names_the_processes_a_run_starts():
    with MemorySampler() as sampler:
        subprocess.run(["sleep", "0.3"], check=True)
        subprocess.run([sys.executable, "-c", "import time; time.sleep(0.3)"], check=True)
    names = sampler.started(0, float("inf"))
    assert "sleep" in names
    assert "python -c import time; time.sleep(0.3)" in names
    assert sampler.peak() > 10 * 2**20


def _until(condition, seconds: float = 30.0) -> None:
    """Wait for ``condition()`` (the sampler's thread samples at its own pace on a busy machine)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)


def test_the_sampler_measures_the_spill_folder(tmp_path):
    spill = tmp_path / "duckdb_tmp"
    with MemorySampler(spill) as sampler:
        _until(lambda: len(sampler.spill) >= 1)  # the folder before it exists: 0
        spill.mkdir()
        (spill / "block.tmp").write_bytes(b"x" * 3_000_000)
        _until(lambda: sampler.spill_peak() == 3_000_000)
        (spill / "block.tmp").unlink()
        seen = len(sampler.spill)
        _until(lambda: len(sampler.spill) > seen + 1)
    assert sampler.spill[0][1] == 0 and sampler.spill[-1][1] == 0
    assert sampler.stopped is None


def test_a_run_is_stopped_before_the_disk_of_its_spill_fills(tmp_path):
    """When the spill folder's disk has less free space than asked, the sampler terminates the processes started
    since it started, and the phase ends with Stopped naming the phase and why, not with the step's own error."""
    before = subprocess.Popen(["sleep", "60"])  # not the run's: there before the sampler
    free = shutil.disk_usage(tmp_path).free
    with MemorySampler(tmp_path / "duckdb_tmp", min_free_bytes=free + 2**40) as sampler:
        _until(lambda: len(sampler.samples) >= 1)
        # A process inherits SIGTERM's disposition and whether it is blocked: one child with SIGTERM default and
        # unblocked (whatever this process has), one that ignores it
        previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
        blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        try:
            child = subprocess.Popen(["sleep", "60"])
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            deaf = subprocess.Popen(["sleep", "60"])
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

        def step():
            if [child.wait(timeout=30), deaf.wait(timeout=30)] != [0, 0]:
                raise RuntimeError("the step failed")

        try:
            with pytest.raises(Stopped, match=r"full build: stopped after .* GB free \(at least"):
                _timed(sampler, "full build", 0, step)
            assert child.returncode == -signal.SIGTERM
            assert deaf.returncode == -signal.SIGKILL  # it ignored SIGTERM: killed KILL_AFTER seconds later
            assert str(tmp_path / "duckdb_tmp") in sampler.stopped
            assert before.poll() is None  # left alone
        finally:
            for process in (before, child, deaf):
                process.kill()
                process.wait()
