"""Operating cprof as an operator meets it: two writers on one data directory, a run killed with SIGKILL, the
daemon's queue behind it, live progress, and cprof's runs in the Dagster UI. Real `cprof` processes, a real
`dagster-daemon` and `dagster-webserver` against the data directory's instance, real kills.

The schedule tick is evaluated with Dagster's own `build_schedule_context` at a monthly-close time and submitted
to the instance's queue as the scheduler daemon submits it (the daemon's scheduler would only tick at the next
real 3rd of a month, 06:00); the sensor is started with `dagster sensor start` and evaluated by the daemon
itself. The queue, the run monitoring and the launches are the real daemon's.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterRunStatus, build_schedule_context

from pipelines.definitions import build_definitions
from pipelines.landing.sources import MONTHLY, SNAPSHOTS
from pipelines.lib.config import PROJECT_ROOT, WORKSPACE_YAML, Paths
from pipelines.lib.settings import Settings
from pipelines.publication.publish import PAUSE_ENV
from pipelines.run import QUIET, dagster_instance
from pipelines.runtime.dagster_private import workspace_origins
from pipelines.runtime.lock import DataDirLocked, data_dir_lock
from pipelines.runtime.monitoring import WORKER_TAG
from tests.test_data_checks import _copy, publication_fingerprint

BIN = Path(sys.executable).parent


class Process:
    """A command started in its own process group, its output collected line by line as it comes."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None):
        self.lines: list[str] = []
        self.popen = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in list(self.lines) if text in line), None)
            if found is not None:
                return found
            if self.popen.poll() is not None:
                self._reader.join(5)
                found = next((line for line in self.lines if text in line), None)
                if found is not None:
                    return found
                raise AssertionError(
                    f"exited ({self.popen.returncode}) without saying {text!r}:\n{self.output}"
                )
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} within {timeout}s:\n{self.output}")

    def finish(self, timeout: float) -> int:
        code = self.popen.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self, sig: int = signal.SIGKILL) -> None:
        os.killpg(self.popen.pid, sig)  # the process group this object started
        self.popen.wait(60)
        self._reader.join(5)


def cprof(paths: Paths, *args: str, env: dict[str, str] | None = None) -> Process:
    return Process([str(BIN / "cprof"), "--data-dir", str(paths.data_dir), *args], env)


def until(condition, timeout: float, what: str, poll: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"not within {timeout}s: {what}")


def run_status(instance, run_id: str) -> DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def failure_message(instance, run_id: str) -> str:
    (event,) = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    return event.message or ""


def dagster_env(paths: Paths) -> dict[str, str]:
    return {"DAGSTER_HOME": str(paths.dagster_home), "CPROF_DATA_DIR": str(paths.data_dir)}


def only_new_run(instance, known: set[str]) -> str:
    runs = [run.run_id for run in instance.get_runs() if run.run_id not in known]
    return runs[0] if len(runs) == 1 else ""


def test_the_lock_waits_then_names_the_holder_and_is_reentrant(tmp_path):
    holder = Process(
        [
            sys.executable,
            "-c",
            (
                "import time; from pipelines.runtime.lock import data_dir_lock\n"
                f"with data_dir_lock({str(tmp_path)!r}, command='holder for the test'):\n"
                "    print('held', flush=True); time.sleep(60)"
            ),
        ]
    )
    holder.wait_for("held", 60)
    said: list[str] = []
    started = time.monotonic()
    with pytest.raises(DataDirLocked) as refused, data_dir_lock(tmp_path, wait_seconds=1.5, say=said.append):
        pass
    assert time.monotonic() - started >= 1.5
    assert f"pid {holder.popen.pid}" in str(refused.value) and "holder for the test" in str(refused.value)
    assert len(said) == 1 and said[0].startswith("waiting up to 2s for the data directory lock, held by pid")
    holder.kill()
    # the kernel released the killed holder's lock; in one process the lock is re-entrant
    with data_dir_lock(tmp_path, wait_seconds=0) as outer, data_dir_lock(tmp_path) as inner:
        assert inner is outer and outer.count == 2


def test_a_reader_holding_the_warehouse_fails_cprof_once_naming_it(published_sample: Paths, tmp_path: Path):
    """An analyst's session reading warehouse.duckdb: one line naming the reader, not DuckDB's lock error per step."""
    paths = _copy(published_sample, tmp_path / "data")
    before = publication_fingerprint(paths.published)
    reader = Process(
        [
            sys.executable,
            "-c",
            (
                "import duckdb, time\n"
                f"con = duckdb.connect({str(paths.warehouse)!r}, read_only=True)\n"
                "print('reading', flush=True); time.sleep(120)"
            ),
        ]
    )
    try:
        reader.wait_for("reading", 60)
        done = subprocess.run(
            [str(BIN / "cprof"), "--data-dir", str(paths.data_dir), "run", "--progress", "steps"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        reader.kill()
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        f"cprof run: error: the working warehouse {paths.warehouse} is held by another program: "
        f"process {reader.popen.pid} ("
    ), line
    assert " is reading it" in line and "published/current/cprof.duckdb" in line
    assert "Conflicting lock" not in done.stdout + done.stderr
    assert publication_fingerprint(paths.published) == before


def test_the_instance_config_turns_on_run_monitoring_and_keeps_a_teams_own(tmp_path):
    from pipelines.runtime.instance import PREVIOUS_DAGSTER_YAMLS, dagster_yaml, write_dagster_yaml

    own = tmp_path / "own"
    earlier = [tmp_path / f"earlier{number}" for number in range(len(PREVIOUS_DAGSTER_YAMLS))]
    for home, text in (*zip(earlier, PREVIOUS_DAGSTER_YAMLS), (own, "telemetry:\n  enabled: false\n")):
        home.mkdir()
        (home / "dagster.yaml").write_text(text)
        write_dagster_yaml(home)
    # What an earlier cprof wrote is updated: the last named the launcher and storage where they were before
    assert "pipelines.lib.dagster_private" in PREVIOUS_DAGSTER_YAMLS[-1]
    assert all((home / "dagster.yaml").read_text() == dagster_yaml(home) for home in earlier)
    assert (own / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
    instance = dagster_instance(Paths(tmp_path / "data"))
    assert instance.run_monitoring_enabled and instance.run_launcher.supports_check_run_worker_health
    assert instance.run_monitoring_max_resume_run_attempts == 0


def test_make_dev_writes_the_instance_config_the_webserver_and_daemon_load(tmp_path):
    """``make dev`` writes the data directory's dagster.yaml with the command below, then starts the webserver
    and the daemon on it: the file it writes is this project's, and the launcher and event storage it names
    import (a module that moved would stop both)."""
    recipe = (PROJECT_ROOT / "Makefile").read_text().split("\ndev: install\n", 1)[1].split("\n\n", 1)[0]
    assert '$(BIN)/python -m pipelines.runtime.instance "$(DATA)/dagster_home"' in recipe
    assert 'DAGSTER_HOME="$(DATA)/dagster_home"' in recipe
    home = tmp_path / "data" / "dagster_home"
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.runtime.instance", str(home)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    from dagster import DagsterInstance

    from pipelines.runtime.instance import dagster_yaml

    assert (home / "dagster.yaml").read_text() == dagster_yaml(home.resolve())
    instance = DagsterInstance.from_config(str(home))
    assert type(instance.run_launcher).__module__ == "pipelines.runtime.monitoring"
    assert type(instance.event_log_storage).__module__ == "pipelines.runtime.dagster_private"


@pytest.mark.system
def test_a_killed_run_never_blocks_the_next_run_the_schedule_or_the_sensor(data_paths: Paths):
    paths = data_paths
    first = cprof(paths, "run", "--progress", "live")
    first.wait_for("landed__activities: done", 180)  # its run is under way: the data directory is its

    # Two more writers: one fails at once, one waits a second; both name the holder, neither meets DuckDB's lock.
    second = cprof(paths, "run")
    waiting = cprof(paths, "run", "--wait", "1")
    assert second.finish(120) == 1 and waiting.finish(120) == 1
    for refused in (second, waiting):
        assert "is being written by another process" in refused.output
        assert f"pid {first.popen.pid} on {socket.gethostname()}" in refused.output
        assert "run --progress live" in refused.output and "holding it since 20" in refused.output
        assert "Could not set lock" not in refused.output
    assert "waiting up to 1s for the data directory lock, held by pid" in waiting.output
    assert "after waiting 1s" in waiting.output
    assert first.popen.poll() is None, "the first run was still running when the others were refused"

    instance = dagster_instance(paths)
    (killed,) = instance.get_runs()
    first.kill()
    assert run_status(instance, killed.run_id) == DagsterRunStatus.STARTED  # what nothing reported

    # The next cprof run marks the killed run failed, with the reason, and proceeds.
    known = {killed.run_id}
    following = cprof(paths, "run", "--progress", "live")
    following.wait_for(f"marked run {killed.run_id} failed: its process (pid {first.popen.pid}) is gone", 120)
    # its first step (a snapshot the killed run had not promoted yet) is done
    landed_first = re.search(r" (landed__\w+): done in", following.wait_for(": done in", 120))[1].split("__")
    assert run_status(instance, killed.run_id) == DagsterRunStatus.FAILURE
    assert "its process is gone" in failure_message(instance, killed.run_id)
    stuck = until(lambda: only_new_run(instance, known), 30, "the next run in the instance")
    assert run_status(instance, stuck) == DagsterRunStatus.STARTED
    # ...and is killed in turn: now the daemon has to find it.
    following.kill()
    known.add(stuck)

    # A monthly-close tick (for 2024-03) queued as the scheduler daemon queues it, and the landing sensor on.
    job = build_definitions(Settings(data_dir=paths.data_dir)).resolve_job_def("refresh")
    schedule = build_definitions(Settings(data_dir=paths.data_dir)).resolve_schedule_def("monthly_close")
    with build_schedule_context(
        instance=instance, scheduled_execution_time=datetime(2024, 4, 3, 6, 0, tzinfo=UTC)
    ) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    remote, code = workspace_origins(WORKSPACE_YAML, "refresh")
    scheduled = instance.create_run_for_job(
        job_def=job,
        run_config=QUIET,
        tags={
            **request.tags,
            "dagster/partition": request.partition_key,
            "dagster/schedule_name": schedule.name,
        },
        remote_job_origin=remote,
        job_code_origin=code,
        status=DagsterRunStatus.NOT_STARTED,
    )
    instance.submit_run(scheduled.run_id, workspace=None)
    known.add(scheduled.run_id)
    assert run_status(instance, scheduled.run_id) == DagsterRunStatus.QUEUED
    started = Process(
        [str(BIN / "dagster"), "sensor", "start", "landing_sensor", "-w", "workspace.yaml"],
        dagster_env(paths),
    )
    assert started.finish(180) == 0, started.output

    # The killed runs count as failed attempts of their months: the sensor retries them without its usual wait.
    # The daemon's runs hold when they reach publishing (CPROF_PAUSE_AT), so the sensor's request queues behind
    # the scheduled run however fast that run is: unpaused, it can publish every month before the sensor's first
    # tick, leaving the sensor nothing to request.
    daemon = Process(
        [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        {**dagster_env(paths), Settings.variable("retry_backoff_seconds"): "0", PAUSE_ENV: "building"},
    )
    port = free_port()
    webserver = Process(
        [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        dagster_env(paths),
    )
    try:
        # run monitoring marks the killed run failed...
        until(lambda: run_status(instance, stuck) == DagsterRunStatus.FAILURE, 150, "the stuck run failed")
        assert "its process is gone" in failure_message(instance, stuck)
        # ...the queue then starts the scheduled run, whose worker takes the data directory's lock
        _proceeds(instance, scheduled.run_id)
        # The sensor's request, queued behind it, starts when it has finished: here it is terminated, or it has
        # failed on its own (its month, 2024-03, is held out of raw while a month before it that a killed run
        # loaded has not passed its suites: how far the killed runs got is a matter of timing).
        sensed = until(
            lambda: next(
                (
                    r.run_id
                    for r in instance.get_runs()
                    if r.tags.get("dagster/sensor_name") == "landing_sensor"
                ),
                None,
            ),
            120,
            "the landing sensor's run request",
        )
        assert not instance.get_run_by_id(sensed).is_finished  # queued behind the scheduled run
        _stop(instance, scheduled.run_id, "the scheduled run")
        _proceeds(instance, sensed)
        # A cprof run by hand meanwhile is refused, naming the sensor's run's worker (which holds the lock until it
        # is stopped: it builds its months, whole, and holds at publishing).
        clash = cprof(paths, "run")
        assert clash.finish(120) == 1, _story(instance, sensed, clash, daemon)
        assert f"dagster run {sensed} (refresh)" in clash.output, clash.output
        assert "Could not set lock" not in clash.output
        _stop(instance, sensed, "the sensor's run")

        # In the UI, cprof's runs are runs of the code location, as the daemon's are: the Overview timeline
        # (its own query) shows them, and the asset pages link their materializations to them.
        timeline = graphql(port, TIMELINE, {"filter": {"statuses": ["SUCCESS", "FAILURE", "CANCELED"]}})
        runs = {run["id"]: run for run in timeline["runsOrError"]["results"]}
        assert set(runs) == {killed.run_id, stuck, scheduled.run_id, sensed}
        for run in runs.values():
            assert run["repositoryOrigin"] == ORIGIN and run["startTime"] is not None, run
        for path, run_id in ((["landed", "activities"], killed.run_id), (landed_first, stuck)):
            asset = graphql(port, MATERIALIZATIONS, {"path": path})["assetOrError"]
            materialized = {m["runId"]: m["runOrError"] for m in asset["assetMaterializations"]}
            assert run_id in materialized, (path, run_id)
            assert all(run["repositoryOrigin"] == ORIGIN for run in materialized.values())
    finally:
        daemon.kill(signal.SIGTERM)
        webserver.kill(signal.SIGTERM)


ORIGIN = {"repositoryName": "__repository__", "repositoryLocationName": "pipelines"}
# The fields the Overview timeline reads (its CompletedRunTimelineQuery); it leaves out a run without a
# repository origin or a start time.
TIMELINE = """query Timeline($filter: RunsFilter!) {
  runsOrError(filter: $filter, limit: 100) {
    ... on Runs { results { id pipelineName startTime endTime repositoryOrigin { repositoryName repositoryLocationName } } }
  }
}"""
MATERIALIZATIONS = """query Materializations($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetMaterializations(limit: 20) {
      runId runOrError { ... on Run { repositoryOrigin { repositoryName repositoryLocationName } } }
    } }
  }
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def graphql(port: int, query: str, variables: dict) -> dict:
    def ask():
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except OSError:
            return None  # not up yet

    answer = until(ask, 120, "the webserver answering GraphQL", poll=2.0)
    assert "errors" not in answer, answer
    return answer["data"]


def _stop(instance, run_id: str, what: str) -> None:
    """End a run that was shown to proceed: terminated, unless it has already finished by itself. What it did is
    not the point here (it may have published the month, its older lines' returns as pre-history returns), only
    that it ends and releases the queue and the lock."""
    if not instance.get_run_by_id(run_id).is_finished:
        instance.run_launcher.terminate(run_id)
    until(lambda: instance.get_run_by_id(run_id).is_finished, 60, f"{what} finished")
    if instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE:
        message = failure_message(instance, run_id)
        assert "process is gone" not in message and "lock" not in message, f"{what} failed: {message}"


def _story(instance, run_id: str, *processes: Process) -> str:
    """What a failed step of the test needs said: the run's status, its errors and engine events, and the output
    of the processes involved."""
    run = instance.get_run_by_id(run_id)
    said = []
    for record in instance.all_logs(run_id):
        if record.dagster_event_type in (
            DagsterEventType.ENGINE_EVENT,
            DagsterEventType.STEP_FAILURE,
            DagsterEventType.RUN_FAILURE,
        ):
            error = getattr(record.dagster_event.event_specific_data, "error", None)
            said.append(f"{record.dagster_event_type}: {record.message or record.user_message}")
            if error is not None:
                said.append(error.to_string())
    outputs = [f"--- {' '.join(p.popen.args[:3])}:\n{p.output[-6000:]}" for p in processes]
    return "\n".join([f"run {run_id} is {run.status.value}", *said, *outputs])


def _proceeds(instance, run_id: str) -> None:
    until(
        lambda: (
            instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
            and any(
                "data directory lock taken" in (record.user_message or "")
                for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)
            )
        ),
        180,
        f"run {run_id} dequeued, started and holding the lock",
    )
    assert WORKER_TAG in instance.get_run_by_id(run_id).tags


def test_progress_says_each_step_and_how_long_steps_go(published_sample: Paths):
    """The lines `cprof run` prints as a run goes, from a real run's event log: every step as it finishes with
    the time since the run started; in live mode also the months ingested, the suites and dbt's node count."""
    from pipelines.defs.assets.transform import dbt_models
    from pipelines.defs.partitions import partitions_of
    from pipelines.progress import RunFollower

    instance = dagster_instance(published_sample)
    run = instance.get_runs(limit=1)[0]
    dbt_step = dbt_models(partitions_of(Settings(data_dir=published_sample.data_dir)))
    nodes = len(dbt_step.keys) + len(dbt_step.check_keys)
    said: dict[bool, list[str]] = {True: [], False: []}
    for live in (True, False):
        follower = RunFollower(
            published_sample.dagster_home, run.run_id, said[live].append, live=live, months=3, dbt_nodes=nodes
        )
        follower.start()
        follower.stop()
    steps = [line for line in said[False] if ": done in " in line]
    assert said[False] == steps and len(steps) > 30  # one line per step, nothing else, when not live
    assert all(re.match(r"\+\d+:\d\d \w+: done in \d+\.\ds", line) for line in steps)
    assert any(line.endswith(f"dbt_models: done in {line.split('done in ')[1]}") for line in steps)
    assert f"({nodes}/{nodes} nodes)" in next(line for line in steps if "dbt_models: done" in line)
    live = said[True]
    assert set(steps) <= set(live)
    for month, n in (("2024-01", 1), ("2024-02", 2), ("2024-03", 3)):
        assert any(f"ingest order_lines {month} (month {n} of 3): " in line for line in live)
    # the snapshots' suites, then each monthly source's: its 3 months that passed in one line
    checks = [line for line in live if "input check " in line]
    assert len(checks) == len(SNAPSHOTS) + len(MONTHLY), checks
    assert any(": 3 partitions (" in line and "expectations passed in each" in line for line in checks), (
        checks
    )
    counts = [int(line.split("dbt: ")[1].split("/")[0]) for line in live if " dbt: " in line]
    assert len(counts) >= 9 and counts == sorted(counts) and counts[-1] <= nodes
    # ...and in the order they happened: dbt's counts come between ingest and publishing
    first_dbt = next(i for i, line in enumerate(live) if " dbt: " in line)
    assert first_dbt > max(i for i, line in enumerate(live) if "ingest order_lines" in line)
    assert first_dbt < next(i for i, line in enumerate(live) if "published__marts: done" in line)
    # Both dbt steps' own log lines (dbt's command lines) stay out; the second step is said when it is done.
    assert not any("dbt command" in line for line in live), [line for line in live if "dbt command" in line]
    assert any("satisfaction_and_scorecard_models: done in" in line for line in steps)
