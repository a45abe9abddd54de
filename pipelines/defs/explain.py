"""Why a run failed, in words a person can act on, for ``cprof run``'s error and the failure alerts alike: the
error a step's own code raised (not Dagster's wrapper around it: "Error occurred while executing op ..."), in
plain text (no terminal colour codes), and the step a killed run was in when its process died."""

from __future__ import annotations

import re

from dagster import DagsterEventType, DagsterInstance

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
DBT_ERRORS_MARKER = "Errors parsed from dbt logs:"
# Dagster's errors around the one a step's code raised: the cause is the error to tell.
WRAPPERS = frozenset({"DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"})
# An error's own text starts with its class, module-qualified: ``pipelines.landing.structure.LandingError: ...``.
QUALIFIED_CLASS = re.compile(r"^(?:[A-Za-z_][\w]*\.)+[A-Za-z_]\w*: ")
INTERRUPTS = frozenset({"DagsterExecutionInterruptedError", "KeyboardInterrupt"})


def plain(text: str) -> str:
    """``text`` without terminal colour codes."""
    return ANSI_ESCAPE.sub("", text)


def readable(message: str) -> str:
    """An error message in plain text; for dbt, only the errors dbt reported, not the wrapper's prose; no run of
    blank lines."""
    message = plain(message)
    if DBT_ERRORS_MARKER in message:
        message = message.split(DBT_ERRORS_MARKER, 1)[1]
    lines = [line.rstrip() for line in message.strip().splitlines()]
    return "\n".join(line for i, line in enumerate(lines) if line or (i and lines[i - 1]))


def root_error(error):
    """The error a step's code raised, under Dagster's wrappers (a SerializableErrorInfo), or None."""
    while error is not None and error.cls_name in WRAPPERS and error.cause is not None:
        error = error.cause
    return error


def root_cause(error, qualified: bool = True) -> str:
    """The message of :func:`root_error`, readable; without its module-qualified class name unless
    ``qualified``."""
    found = root_error(error)
    if found is None:
        return "failed"
    message = readable(found.message)
    # Dagster's Failure is how a step says why in words: its class adds nothing.
    return message if qualified and found.cls_name != "Failure" else QUALIFIED_CLASS.sub("", message, count=1)


def interrupted(error) -> bool:
    """Whether the step was interrupted (SIGINT, or Dagster's termination of the run)."""
    found = root_error(error)
    return found is not None and found.cls_name in INTERRUPTS


def running_steps(instance: DagsterInstance, run_id: str) -> list[str]:
    """The steps a run had started and not finished: what it was doing when its process died."""
    started: dict[str, None] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or record.step_key is None:
            continue
        if event.event_type == DagsterEventType.STEP_START:
            started[record.step_key] = None
        elif event.event_type in (
            DagsterEventType.STEP_SUCCESS,
            DagsterEventType.STEP_FAILURE,
            DagsterEventType.STEP_SKIPPED,
        ):
            started.pop(record.step_key, None)
    return list(started)
