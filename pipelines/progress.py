"""Live progress of a Dagster run, read from the instance's event log as the run writes it.

``RunFollower`` polls the run's event records (twice a second) in a thread and turns them into lines: each step
when it finishes (or fails), with its duration and the time since the run started; and, in ``live`` mode, how a
long step goes: ingest "month n of N" per source, the Great Expectations suites, dbt's node count ("dbt: 37/110
nodes"), and the Python marts' own log lines. Because it reads the event log, it follows any run of the instance,
in this process or not. ``ByThread`` splits stdout for the length of a run: the run's own thread to the log file,
the progress lines to the console.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable
from typing import TextIO

from dagster import DagsterEventType, DagsterInstance
from sqlalchemy.exc import SQLAlchemyError

INGEST_LINE = re.compile(r"^(?P<source>\w+) (?P<month>\d{4}-\d{2}|snapshot): (?P<rows>\d+) rows")
DBT_STEP = "dbt_models"
DBT_EVERY_SECONDS = 5.0  # at most one dbt progress line this often (and one at every tenth of the nodes)
PYTHON_MART_STEPS = ("customer_clv", "satisfaction", "published_")
# The second dbt step (the models that read the Python marts): its lines are dbt's invocation, as the first's.
AFTER_PYTHON_DBT_STEP = "satisfaction_and_scorecard_models"


def _elapsed(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"


class RunFollower(threading.Thread):
    """Follows one run's event log and says what happens, until ``stop()``."""

    def __init__(
        self,
        instance: DagsterInstance,
        run_id: str,
        say: Callable[[str], None],
        live: bool,
        months: int,
        dbt_nodes: int,
    ):
        super().__init__(name=f"follow-{run_id[:8]}", daemon=True)
        # a separate instance object: its storage connections belong to this thread
        self._instance = DagsterInstance.from_ref(instance.get_ref())
        self._run_id = run_id
        self._say = say
        self._live = live
        self._months = months
        self._dbt_nodes = dbt_nodes
        self._stopping = threading.Event()
        self._cursor: str | None = None
        self._started_at = time.time()
        self._step_started: dict[str, float] = {}
        self._ingested: dict[str, int] = {}
        self._suites = 0
        self._dbt_done = 0
        self._dbt_seen: set = set()
        self._dbt_said = (0, 0.0)  # (nodes, time) of the last dbt line
        self.lines = 0

    def stop(self) -> None:
        self._stopping.set()
        self.join()

    def run(self) -> None:
        try:
            while True:
                stopping = self._stopping.is_set()
                try:
                    self._poll()
                except (OSError, SQLAlchemyError) as exc:  # a busy storage: the run matters more, try again
                    if stopping:
                        self._say(f"progress: could not read the run's event log: {exc}")
                if stopping:
                    return
                self._stopping.wait(0.5)
        finally:
            self._instance.dispose()

    def _poll(self) -> None:
        has_more = True
        while has_more:
            connection = self._instance.get_records_for_run(self._run_id, cursor=self._cursor, limit=500)
            for record in connection.records:
                self._handle(record.event_log_entry)
            self._cursor, has_more = connection.cursor, connection.has_more

    def _line(self, timestamp: float, text: str) -> None:
        self.lines += 1
        self._say(f"+{_elapsed(timestamp - self._started_at)} {text}")

    def _handle(self, entry) -> None:
        event = entry.dagster_event
        step = entry.step_key
        if event is None:
            if step and self._live and entry.user_message:
                self._log_line(entry.timestamp, step, entry.user_message)
            return
        kind = event.event_type
        if kind == DagsterEventType.RUN_START:
            self._started_at = entry.timestamp
        elif kind == DagsterEventType.STEP_START:
            self._step_started[step] = entry.timestamp
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            took = entry.timestamp - self._step_started.get(step, entry.timestamp)
            verb = "done" if kind == DagsterEventType.STEP_SUCCESS else "FAILED"
            extra = f" ({self._dbt_done}/{self._dbt_nodes} nodes)" if step == DBT_STEP else ""
            self._line(entry.timestamp, f"{step}: {verb} in {took:.1f}s{extra}")
        elif kind == DagsterEventType.STEP_SKIPPED:
            self._line(
                entry.timestamp, f"{step}: skipped (an upstream step failed or a blocking check failed)"
            )
        elif step == DBT_STEP and kind in (
            DagsterEventType.ASSET_MATERIALIZATION,
            DagsterEventType.ASSET_CHECK_EVALUATION,
        ):
            # one node per asset or check key (a model over a range of months materializes once per month)
            self._dbt_seen.add(event.asset_key or event.event_specific_data.asset_check_key)
            if len(self._dbt_seen) > self._dbt_done:
                self._dbt_done = len(self._dbt_seen)
                self._dbt_progress(entry.timestamp)

    def _dbt_progress(self, timestamp: float) -> None:
        said_nodes, said_at = self._dbt_said
        tenth = max(1, self._dbt_nodes // 10)
        if self._live and (self._dbt_done - said_nodes >= tenth or timestamp - said_at >= DBT_EVERY_SECONDS):
            self._dbt_said = (self._dbt_done, timestamp)
            self._line(timestamp, f"dbt: {self._dbt_done}/{self._dbt_nodes} nodes built or tested")

    def _log_line(self, timestamp: float, step: str, message: str) -> None:
        first = message.strip().splitlines()[0] if message.strip() else ""
        if "gx_suite" in step:
            self._suites += 1
            self._line(timestamp, f"input check {self._suites}: {first}")
            return
        match = INGEST_LINE.match(first)
        if match and step.startswith("landed_"):
            source, month = match["source"], match["month"]
            if month == "snapshot":
                self._line(timestamp, f"ingest {source}: {int(match['rows']):,} rows")
            else:
                self._ingested[source] = self._ingested.get(source, 0) + 1
                self._line(
                    timestamp,
                    f"ingest {source} {month} (month {self._ingested[source]} of {self._months}): "
                    f"{int(match['rows']):,} rows",
                )
        elif step.startswith(PYTHON_MART_STEPS) and step != AFTER_PYTHON_DBT_STEP:
            self._line(timestamp, first)


class ByThread(io.TextIOBase):
    """stdout for the length of a run: what the run's own thread prints (dagster-dbt echoes dbt's log there) goes
    to the log file, what other threads print (the progress lines) to the console."""

    def __init__(self, log: TextIO, console: TextIO):
        self._log, self._console, self._run_thread = log, console, threading.current_thread()

    def _target(self) -> TextIO:
        return self._log if threading.current_thread() is self._run_thread else self._console

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._log.flush()
        self._console.flush()
