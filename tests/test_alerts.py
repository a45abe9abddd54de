"""Failures reach a person: a late publication fails its run, and the run-failure sensor, evaluated as the daemon
evaluates it against the data directory's instance, tells the log and command notifiers. Real Dagster runs of
the code location, a real instance, a real notify command."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterRunStatus, SensorEvaluationContext

from pipelines.definitions import build_definitions
from pipelines.lib.config import WORKSPACE_YAML, Paths
from pipelines.lib.settings import Settings
from pipelines.run import QUIET, dagster_instance, execute_run
from pipelines.runtime.dagster_private import workspace_origins

# A notify command that writes what it was given (subject from the environment, message from stdin) to the
# file named by its argument: a path with a space and a semicolon, which a shell would have split.
RECEIVER = "import os, sys; open(sys.argv[1], 'w').write(os.environ['CPROF_ALERT_SUBJECT'] + '\\n' + sys.stdin.read())"


def tick(defs, instance, cursor: str | None):
    """One evaluation of the failure sensor, as the daemon runs it: in the code location of workspace.yaml,
    against the instance, from the cursor the last tick left."""
    remote, _ = workspace_origins(WORKSPACE_YAML, "refresh")
    context = SensorEvaluationContext(
        instance_ref=None,
        instance=instance,
        cursor=cursor,
        repository_name=remote.repository_origin.repository_name,
        repository_def=defs.get_repository_def(),
        sensor_name="failure_alerts",
        code_location_origin=remote.repository_origin.code_location_origin,
    )
    with context:
        return defs.get_repository_def().get_sensor_def("failure_alerts").evaluate_tick(context)


def test_a_late_publication_fails_its_run_and_the_failure_sensor_tells_the_notifiers(
    published_sample: Paths, tmp_path: Path
):
    paths = Paths(tmp_path / "data")
    shutil.copytree(published_sample.data_dir, paths.data_dir)
    instance = dagster_instance(paths)
    log = tmp_path / "alerts" / "failures.jsonl"
    received = tmp_path / "received; rm -rf x.txt"
    command = shlex.join([sys.executable, "-c", RECEIVER, str(received)])  # quoted as a person would set it
    settings = Settings.from_environ(
        {"CPROF_DATA_DIR": str(paths.data_dir), "CPROF_NOTIFY_LOG": str(log), "CPROF_NOTIFY_COMMAND": command}
    )
    defs = build_definitions(settings)
    sensor = defs.get_repository_def().get_sensor_def("failure_alerts")
    assert sensor.default_status.value == "RUNNING"

    first = tick(defs, instance, None)  # the first tick starts from now: earlier runs are not told again
    assert not first.run_requests and first.cursor

    # The sample is published through 2024-03: today that publication is late, so the check fails its run.
    result = execute_run(settings, "check_freshness", instance, {}, QUIET)
    run = instance.get_run_by_id(result.run_id)
    assert run.status == DagsterRunStatus.FAILURE
    (evaluation,) = [
        record.dagster_event.event_specific_data
        for record in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    assert not evaluation.passed and "published through 2024-03" in evaluation.description

    second = tick(defs, instance, first.cursor)
    assert not second.run_requests

    (line,) = log.read_text().splitlines()
    told = json.loads(line)
    assert told["run_id"] == run.run_id and told["job"] == "check_freshness"
    assert told["data_dir"] == str(paths.data_dir)
    assert told["months"] == ""  # check_freshness has no partitions
    assert any(
        "published_on_time" in check and "published through 2024-03" in check
        for check in told["failed_checks"]
    )
    assert any("blocking asset check" in step for step in told["failed_steps"])
    assert "check_freshness" in told["error"]

    subject, body = received.read_text().split("\n", 1)
    assert subject == told["subject"] and run.run_id[:8] in subject and "check_freshness" in subject
    assert f"Run {run.run_id} of job check_freshness failed." in body
    assert (
        f"Data directory: {paths.data_dir}" in body
        and "Failed check: published/marts:published_on_time" in body
    )

    # the cursor moved on: the next tick tells nothing twice
    third = tick(defs, instance, second.cursor)
    assert not third.run_requests
    assert len(log.read_text().splitlines()) == 1


def dbt_children(parent: int) -> list[int]:
    """The dbt processes whose parent is ``parent``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and any(b"dbt" in Path(arg.decode()).name.encode() for arg in argv[:2]):
            found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """Is ``pid`` a live process (not gone, not a zombie waiting for a reaper that never comes)?"""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.system
def test_dbt_dies_with_a_killed_run_and_the_next_run_publishes_and_tells_of_it(data_paths: Paths):
    from tests.test_operations import cprof, until

    paths = data_paths
    first = cprof(paths, "run", "--progress", "live")
    (dbt,) = until(lambda: dbt_children(first.popen.pid), 240, "dbt started by the run")
    time.sleep(1.0)  # dbt is building
    assert running(dbt)
    os.kill(first.popen.pid, signal.SIGKILL)  # the run's process only, not its process group
    first.popen.wait(30)
    until(lambda: not running(dbt), 5, f"dbt (pid {dbt}) gone with the killed run", poll=0.1)

    instance = dagster_instance(paths)
    defs = build_definitions(Settings(data_dir=paths.data_dir))
    cursor = tick(defs, instance, None).cursor
    (killed,) = instance.get_runs()

    second = cprof(paths, "run")
    assert second.finish(300) == 0, second.output
    assert f"marked run {killed.run_id} failed" in second.output
    assert (paths.published / "current").exists()
    assert instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.FAILURE

    # the failure sensor tells of the killed run, with its months
    tick(defs, instance, cursor)
    (line,) = (paths.logs / "failures.jsonl").read_text().splitlines()
    told = json.loads(line)
    assert told["run_id"] == killed.run_id and told["job"] == "refresh"
    assert told["months"] == "2024-01 to 2024-03" and "its process is gone" in told["error"]


def test_a_new_writer_waits_for_the_children_of_an_earlier_writer(tmp_path, monkeypatch):
    """A child holding the children lock (as cprof-dbt does while dbt lives) holds back the next writer until it
    exits; one that never exits is named after the grace period."""
    from pipelines.runtime import lock
    from tests.test_operations import Process

    def child(seconds: float) -> Process:
        holder = Process(
            [
                sys.executable,
                "-c",
                (
                    "import time; from pipelines.runtime.lock import hold_as_child\n"
                    f"hold_as_child({str(tmp_path)!r}); print('holding', flush=True); time.sleep({seconds})"
                ),
            ]
        )
        holder.wait_for("holding", 60)
        return holder

    brief = child(2.0)
    started = time.monotonic()
    with lock.data_dir_lock(tmp_path):
        assert brief.popen.poll() is not None  # it had exited
    assert time.monotonic() - started >= 1.0

    monkeypatch.setattr(lock, "CHILDREN_GRACE_SECONDS", 1.0)
    stuck = child(60.0)
    try:
        with (
            pytest.raises(lock.DataDirLocked, match="child process of an earlier writer"),
            lock.data_dir_lock(tmp_path),
        ):
            pass
    finally:
        stuck.kill()
