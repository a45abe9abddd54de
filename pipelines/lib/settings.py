"""Settings read from the environment (``CPROF_*``): each is declared, with what it expects, where it is read,
and read through its declaration, so a bad value fails with one line naming the variable, the value and what
is expected (``CPROF_FIRST_MONTH='2025-13': expected a month, YYYY-MM ...``) instead of a traceback or a
value accepted and failing later. :func:`check_settings` reads every one of them at start-up: ``cprof``
calls it before a run, and the Dagster code location when it loads (pipelines/definitions.py).

Variables the project sets for its own child processes (the dbt range ``CPROF_PERIOD_FROM``/``_TO``, the dbt
target, ``CPROF_ALERT_*`` for a notifier, the Spark Thrift endpoint) are not settings and are not declared.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class SettingError(ValueError):
    """A setting whose value is not what it must be; the message is one line naming it."""


@dataclass(frozen=True)
class Setting:
    """An environment variable: ``parse`` turns its text into the value (raising ValueError when it cannot),
    ``expected`` says what it must be, ``default`` is the value when it is unset or empty."""

    name: str
    parse: Callable[[str], Any]
    expected: str
    default: Any = None

    def get(self, environ: Mapping[str, str] | None = None) -> Any:
        raw = (os.environ if environ is None else environ).get(self.name)
        if raw is None or not raw.strip():
            return self.default
        try:
            return self.parse(raw.strip())
        except ValueError:
            raise SettingError(f"{self.name}={raw!r}: expected {self.expected}") from None


_DECLARED: dict[str, Setting] = {}


def setting(name: str, parse: Callable[[str], Any], expected: str, default: Any = None) -> Setting:
    """Declare a setting (once per name) and return it."""
    if name in _DECLARED:
        raise ValueError(f"{name} is declared twice")
    _DECLARED[name] = declared = Setting(name, parse, expected, default)
    return declared


# The modules that declare settings: check_settings imports them so that every declaration is known, whichever
# of them the caller imported. tests/test_settings.py checks every CPROF_ variable the code reads is declared.
SETTING_MODULES = (
    "pipelines.lib.config",
    "pipelines.engines",
    "pipelines.engines.spark_warehouse",
    "pipelines.landing.inventory",
    "pipelines.defs.partitions",
    "pipelines.defs.automation",
    "pipelines.defs.alerts",
    "pipelines.publication.report.data",
    "data_checks.suites",
    "data_checks.batching",
)


def declared() -> dict[str, Setting]:
    for module in SETTING_MODULES:
        importlib.import_module(module)
    return dict(_DECLARED)


def check_settings(environ: Mapping[str, str] | None = None) -> None:
    """Read every declared setting: the first bad one raises SettingError (one line)."""
    for declaration in declared().values():
        declaration.get(environ)


# -- what a value may be ------------------------------------------------------------------------------------

_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
MONTH = "a month, YYYY-MM (month 01 to 12), e.g. 2024-01"


def month(text: str) -> str:
    if not _MONTH.fullmatch(text):
        raise ValueError(text)
    return text


def whole(minimum: int = 0) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not re.fullmatch(r"\d+", text) or int(text) < minimum:
            raise ValueError(text)
        return int(text)

    return parse


def number(minimum: float = 0.0, maximum: float | None = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        if not re.fullmatch(r"\d+(\.\d+)?|\.\d+", text):
            raise ValueError(text)
        value = float(text)
        if value < minimum or (maximum is not None and value > maximum):
            raise ValueError(text)
        return value

    return parse


def flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise ValueError(text)


FLAG = "1 or 0 (true or false)"


def choice(*values: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.lower() not in values:
            raise ValueError(text)
        return text.lower()

    return parse


def memory_size(text: str) -> str:
    """DuckDB's memory sizes: a number and a unit (KB, MB, GB, TB, KiB, ... ), or a percentage."""
    if not re.fullmatch(r"(?i)\d+(\.\d+)?\s*([kmgt]i?b|b|%)", text):
        raise ValueError(text)
    return text


def jvm_memory(text: str) -> str:
    """A JVM memory size as Spark takes it: 2g, 512m, 4096k."""
    if not re.fullmatch(r"(?i)\d+[kmgt]?", text):
        raise ValueError(text)
    return text


def host_port(text: str) -> str:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(text)
    return text


def directory(text: str) -> Path:
    """A directory's path (it need not exist yet), not a file."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(text)
    return path


def text(value: str) -> str:
    return value
