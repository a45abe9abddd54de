"""The span of history the Dagster partitions cover, recorded in the data directory (``<data>/history.json``), so
that loading the code location reads configuration, never the landing zone: a stray or misnamed landing file
cannot stop it (the landing sensor and the run that needs the file name it instead).

The record holds the first month and, for a historic landing zone (a sample, a demo, an archive), the last month;
without a last month the partitions end at the last complete month, moving with time (a live landing zone). It is
written from the landing zone's months by what reads the landing zone at run time: ``cprof generate`` (the
sample's months), ``cprof run`` / ``cprof backfill`` before they start, and the landing sensor when the landing
zone's span moved (older months landed, or a historic zone grew); a new span takes effect when the code location
is next loaded (``cprof`` builds its own definitions after recording). ``CPROF_FIRST_MONTH`` and
``CPROF_LAST_MONTH`` override it. Without either, the partitions run from 2020-01 to the last complete month.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pipelines.landing.inventory import MONTH_RE, NO_EXTERNAL_LINKS, landing_inventory
from pipelines.lib.settings import SettingError

DEFAULT_FIRST_MONTH = "2020-01"


@dataclass(frozen=True)
class History:
    """The months the partitions span: ``first`` (YYYY-MM) and ``last`` (None: the last complete month, moving
    with time)."""

    first: str
    last: str | None = None


def _month_index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def history_of(landed: list[str], today: date) -> History | None:
    """The span of a landing zone holding the months ``landed`` (sorted), or None without months: from its first
    month; to its newest month when that is older than the month whose files may still be on their way (the one
    before the last complete month: a historic landing zone), else open (a live one)."""
    if not landed:
        return None
    closing = today.year * 12 + today.month - 1 - 2  # the month whose files may still be on their way
    return History(landed[0], None if _month_index(landed[-1]) >= closing else landed[-1])


def partition_months(
    landed: list[str], today: date, configured_first: str | None = None, configured_last: str | None = None
) -> tuple[str, str | None]:
    """The first month (YYYY-MM) of the partitions, and the last one for a historic landing zone (None: the
    last complete month before ``today``, moving with time). ``landed``: the months in the landing zone."""
    return bounds(history_of(landed, today), configured_first, configured_last)


def bounds(
    recorded: History | None, configured_first: str | None = None, configured_last: str | None = None
) -> tuple[str, str | None]:
    """The partitions' first month and last month (None: moving with time): the settings when given, else the
    recorded history, else from 2020-01, moving with time."""
    first = configured_first or (recorded.first if recorded else DEFAULT_FIRST_MONTH)
    return first, configured_last or (recorded.last if recorded else None)


def history_path(data_dir: Path) -> Path:
    return data_dir / "history.json"


def _month_or_none(value: object) -> str | None:
    if value is None or (isinstance(value, str) and MONTH_RE.match(value)):
        return value
    raise ValueError(value)


def read_history(data_dir: Path) -> History | None:
    """The recorded history of ``data_dir``, None when none is recorded. A record that is not what this module
    writes raises SettingError, one line naming the file."""
    path = history_path(data_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        found = json.loads(text)
        first, last = _month_or_none(found["first_month"]), _month_or_none(found.get("last_month"))
        if first is None:
            raise ValueError(first)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SettingError(
            f'{path}: expected {{"first_month": "YYYY-MM", "last_month": "YYYY-MM" or null}}; remove it '
            "and run `cprof run` (or let the landing sensor tick) to record it again from the landing zone"
        ) from None
    return History(first, last)


def write_history(data_dir: Path, history: History) -> bool:
    """Record ``history`` for ``data_dir`` (atomically: a reader sees the old record or the new one); False
    when it was recorded already."""
    try:
        if read_history(data_dir) == history:
            return False
    except SettingError:
        pass  # a broken record is replaced
    data_dir.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"first_month": history.first, "last_month": history.last}, indent=2) + "\n"
    handle, temporary = tempfile.mkstemp(dir=data_dir, prefix=".history.", suffix=".json")
    with os.fdopen(handle, "w") as out:
        out.write(payload)
    os.replace(temporary, history_path(data_dir))
    return True


def record_landing_history(
    data_dir: Path, today: date | None = None, allow_external_links: bool = NO_EXTERNAL_LINKS
) -> History | None:
    """Record the span of the landing zone of ``data_dir`` (its well-named month files: a misnamed file is for
    the run or the sensor to report, not a reason to record nothing), and return it; None without months.
    ``allow_external_links``: the setting (a month file linked from elsewhere counts when it allows it)."""
    landed = landing_inventory(data_dir / "landing", allow_external_links).months
    history = history_of(landed, today or date.today())
    if history is not None:
        write_history(data_dir, history)
    return history
