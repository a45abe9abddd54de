"""What a finished run says, read from its result and its event log: the errors of its failed steps, the loads
that failed, each step's time and the phases they add up to, the rows ingested per month, and what the assets
noted for a person (pipelines/run.py prints them)."""

from __future__ import annotations

from dagster import AssetKey, DagsterEventType, DagsterInstance, JobExecutionResult

from data_checks.suites import SUITES
from pipelines.defs.assets import NOTES
from pipelines.defs.explain import root_cause


def step_errors(result: JobExecutionResult) -> list[str]:
    """The errors of the steps that failed (other than by a failed check): what each step's code raised, not
    Dagster's wrapper around it, readable."""
    messages = []
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE and event.step_failure_data:
            message = root_cause(event.step_failure_data.error)
            if "blocking asset check" not in message:  # already named by the failed check itself
                messages.append(f"{event.step_key}: {message}")
    return messages


def failed_loads(result: JobExecutionResult) -> dict[str, str]:
    """The sources whose landed step failed (a file that could not be loaded), with what it raised."""
    steps = {"__".join(AssetKey(["landed", name]).path): name for name in SUITES}
    return {
        steps[event.step_key]: root_cause(event.step_failure_data.error)
        for event in result.get_step_failure_events()
        if event.step_key in steps and event.step_failure_data
    }


def step_windows(instance: DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """(start, end) wall-clock time of every step of a run, from the instance's event log."""
    started: dict[str, float] = {}
    windows: dict[str, tuple[float, float]] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or record.step_key is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            started[record.step_key] = record.timestamp
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            windows[record.step_key] = (started.get(record.step_key, record.timestamp), record.timestamp)
    return windows


PHASES = (  # (phase, step-key test), in the order a run goes through them
    ("input checks", lambda key: "gx_suite" in key),
    ("ingest", lambda key: key.startswith(("landed_", "raw_"))),
    ("dbt build", lambda key: key.startswith("dbt_models")),
    ("CLV", lambda key: "customer_clv" in key),
    # the satisfaction drivers, then the dbt models that read the Python marts (satisfaction_and_scorecard_models),
    # then the satisfaction-retention link (satisfaction_retention)
    ("satisfaction and scorecard", lambda key: key.startswith("satisfaction")),
    # what the scenarios' satisfaction lever is worth, after the link and CLV (scenario_value)
    ("scenario value", lambda key: key.startswith("scenario_value")),
    ("publish", lambda key: key.startswith("published_")),
)


def phase_seconds(step_windows: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Step seconds summed into the phases of a run."""
    phases = {name: 0.0 for name, _ in PHASES}
    for key, (start, end) in step_windows.items():
        name = next((name for name, test in PHASES if test(key)), "other")
        phases[name] = phases.get(name, 0.0) + end - start
    return phases


def ingest_lines(result: JobExecutionResult) -> list[str]:
    """Per month: rows loaded (and order lines), and the sources without rows that month; the files ignored.
    From the landed assets' ``files`` and ``ignored`` metadata."""
    months: dict[str, dict[str, int]] = {}
    ignored: list[str] = []
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        files = materialization.metadata.get("files")
        if materialization.asset_key.path[0] != "landed" or files is None:
            continue
        for month, loaded in files.value.items():
            months.setdefault(month, {})[materialization.asset_key.path[-1]] = int(loaded["rows"])
        if materialization.metadata.get("ignored") is not None:
            ignored += materialization.metadata["ignored"].value
    lines = []
    for month in sorted(months, key=lambda m: (m != "snapshot", m)):
        rows = months[month]
        if month == "snapshot":
            lines.append(f"ingest reference: {', '.join(f'{k} {v:,}' for k, v in sorted(rows.items()))}")
        else:
            empty = sorted(k for k, v in rows.items() if v == 0)
            lines.append(
                f"ingest {month}: {sum(rows.values()):,} rows ({rows.get('order_lines', 0):,} order lines)"
                + (f"; no rows: {', '.join(f'{k} 0' for k in empty)}" if empty else "")
            )
    if ignored:
        lines.append(f"ignored (hidden or editor files): {', '.join(sorted(set(ignored)))}")
    return lines


def notes(result: JobExecutionResult) -> list[str]:
    """What the assets said a person must know of what they computed (their ``notes`` metadata: a survey question
    left out of months' weights for want of answers, a month not derived)."""
    lines: dict[str, None] = {}  # once each: a range's materializations (one per month) carry the same notes
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        said = materialization.metadata.get(NOTES)
        for note in said.value if said is not None else []:
            lines[f"note: {materialization.asset_key.to_user_string()}: {note}"] = None
    return list(lines)


def said(result: JobExecutionResult) -> list[str]:
    """What the run's steps said a person should know, from their metadata: a changed reference snapshot that
    restates history (``restates`` of raw/<snapshot>), months the publication leaves out or shows as last
    released (``held`` of published/marts)."""
    lines = []
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        restates = materialization.metadata.get("restates")
        if restates is not None:
            lines.append(restates.value)
        held = materialization.metadata.get("held")
        if materialization.asset_key == AssetKey(["published", "marts"]) and held is not None:
            lines += [f"warning: {line}" for line in held.value]
    return list(dict.fromkeys(lines))
