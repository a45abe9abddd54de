"""The ``CPROF_*`` settings: read once, at a process's start (``cprof``'s main, the Dagster code location's
load in pipelines/definitions.py), into one frozen, typed :class:`Settings`, and from there passed explicitly
(as arguments, and into Dagster assets and sensors through the resources of pipelines/defs/resources.py). No
other module reads a setting from the environment. A bad value fails with one line naming the variable, the
value and what is expected (``CPROF_FIRST_MONTH='2025-13': expected a month, YYYY-MM ...``) instead of a
traceback or a value accepted and failing later. docs/settings.md is the table of them.

Variables the project sets for its own child processes (the dbt range ``CPROF_PERIOD_FROM``/``_TO``, the dbt
target, ``CPROF_ALERT_*`` for a notifier, the Spark Thrift endpoint) are not settings.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipelines.lib.config import DATA_DIR_ENV, PROJECT_ROOT, Paths


class SettingError(ValueError):
    """A setting whose value is not what it must be; the message is one line naming it."""


@dataclass(frozen=True)
class Setting:
    """An environment variable: ``parse`` turns its text into the value (raising ValueError when it cannot),
    ``expected`` says what it must be."""

    name: str
    parse: Callable[[str], Any]
    expected: str
    doc: str = ""

    def get(self, environ: Mapping[str, str]) -> Any:
        """The value ``environ`` gives, None when it is unset or empty (the field's default then)."""
        raw = environ.get(self.name)
        if raw is None or not raw.strip():
            return None
        try:
            return self.parse(raw.strip())
        except ValueError:
            raise SettingError(f"{self.name}={raw!r}: expected {self.expected}") from None


def _setting(name: str, parse: Callable[[str], Any], expected: str, doc: str) -> dict[str, Setting]:
    """The metadata of a field of :class:`Settings`: it is read from the variable ``name``."""
    return {"setting": Setting(name, parse, expected, doc)}


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


def currency_code(text: str) -> str:
    """An ISO 4217 currency code: three capital letters (USD, EUR, GBP)."""
    if not re.fullmatch(r"[A-Z]{3}", text):
        raise ValueError(text)
    return text


def host_port(text: str) -> str:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(text)
    return text


def directory(text: str) -> Path:
    """A directory's path (it need not exist yet), not a file."""
    path = Path(text).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ValueError(text)
    return path


def text(value: str) -> str:
    return value


def command_line(text: str) -> tuple[str, ...]:
    """A command line, split as a shell would (quotes balanced), run without one."""
    return tuple(shlex.split(text))


def _as_text(value: Any) -> str:
    """A setting's value as its variable's text, which its parse turns back into the same value."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")  # positional (the parse takes no exponent), exact
    if isinstance(value, tuple):
        return shlex.join(value)
    return str(value)


def file_path(text: str) -> Path:
    return Path(text).expanduser()


ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class Settings:
    """Every ``CPROF_`` setting, typed, with its default. Build it once, with :meth:`from_environ`, where a
    process starts, and pass it on; a field's variable is ``CPROF_`` and its name in capitals."""

    # Where everything is written (pipelines/lib/config.py: Paths).
    data_dir: Path = field(
        default=PROJECT_ROOT / "data",
        metadata=_setting(
            DATA_DIR_ENV,
            directory,
            "the path of a directory (it need not exist yet), not of a file",
            "the data directory: landing zone, warehouse, publications, Dagster's instance, logs",
        ),
    )
    # The warehouse engine (pipelines/engines/).
    engine: str = field(
        default="duckdb",
        metadata=_setting(
            "CPROF_ENGINE",
            choice(*ENGINES),
            f"one of {', '.join(ENGINES)}",
            "the warehouse engine, and with it the dbt target (`cprof --engine` overrides it)",
        ),
    )
    duckdb_memory_limit: str = field(
        default="4GB",
        metadata=_setting(
            "CPROF_DUCKDB_MEMORY_LIMIT",
            memory_size,
            "a memory size DuckDB takes: a number and a unit (4GB, 512MB, 2GiB) or a percentage",
            "DuckDB's memory limit (the warehouse, dbt's profile, the publication), past which it spills to disk",
        ),
    )
    spark_master: str | None = field(
        default=None,
        metadata=_setting(
            "CPROF_SPARK_MASTER",
            text,
            "a Spark master URL (local[2], spark://host:7077)",
            "the Spark master a run's session joins (unset: local[2])",
        ),
    )
    spark_thrift: str | None = field(
        default=None,
        metadata=_setting(
            "CPROF_SPARK_THRIFT",
            host_port,
            "host:port of a Spark Thrift server",
            "an existing Spark Thrift server dbt builds on (unset: one started in the run's session)",
        ),
    )
    spark_driver_memory: str = field(
        default="2g",
        metadata=_setting(
            "CPROF_SPARK_DRIVER_MEMORY",
            jvm_memory,
            "a JVM memory size (2g, 512m)",
            "the Spark driver's memory",
        ),
    )
    # History and the Dagster partitions (pipelines/defs/partitions.py, pipelines/landing/history.py).
    first_month: str | None = field(
        default=None,
        metadata=_setting(
            "CPROF_FIRST_MONTH",
            month,
            MONTH,
            "the start of history and of the partitions (unset: the first month landed)",
        ),
    )
    last_month: str | None = field(
        default=None,
        metadata=_setting(
            "CPROF_LAST_MONTH",
            month,
            MONTH,
            "the last month of the partitions (unset: the span recorded from the landing zone)",
        ),
    )
    # The landing zone (docs/landing.md).
    max_row_drop: float = field(
        # 0.3: the December, 3,000 lines of 5,390 (44 % fewer), fails; a correction of a few lines passes
        default=0.3,
        metadata=_setting(
            "CPROF_MAX_ROW_DROP",
            number(0, 1),
            "a fraction between 0 and 1 (0.3: a reload of a month with over 30% of its rows gone fails; 1: never)",
            "the largest fall in a month's rows, against its promoted load, a reload may have unconfirmed (1: off)",
        ),
    )
    allow_external_links: bool = field(
        default=False,
        metadata=_setting(
            "CPROF_ALLOW_EXTERNAL_LINKS",
            flag,
            FLAG,
            "1 accepts symbolic links in the landing zone whose target is outside the data directory",
        ),
    )
    landing_quiet_seconds: float = field(
        default=5.0,
        metadata=_setting(
            "CPROF_LANDING_QUIET_SECONDS",
            number(),
            "a number of seconds (0 or more; 0: no wait)",
            "how long a recently modified file must stay unchanged before a run takes it (0: no wait)",
        ),
    )
    # The input checks (data_checks/).
    return_window_months: int = field(
        default=3,
        metadata=_setting(
            "CPROF_RETURN_WINDOW_MONTHS",
            whole(),
            "a whole number of months (0 or more)",
            "how long after the start of history an undated return of an unknown line counts as a pre-history return",
        ),
    )
    # A million rows of order lines is about 0.45 GB as pandas (456 bytes a row, measured at 10 million lines), so
    # the input checks' memory stays near a month's at 100 million lines, where a month has 2.7 million rows.
    gx_batch_rows: int = field(
        default=1_000_000,
        metadata=_setting(
            "CPROF_GX_BATCH_ROWS",
            whole(),
            "a whole number of rows (0: one month at a time)",
            "the most rows of consecutive months validated in one run of a suite (0: one month at a time)",
        ),
    )
    # Great Expectations 1.24 has no DuckDB engine: on DuckDB the suites are evaluated in the warehouse
    # (data_checks/duckdb_evaluation.py, GX's semantics, proven equal to its pandas engine), a failed partition
    # validated again by GX; `pandas` converts every partition to pandas for GX's pandas engine, as before.
    checks_engine: str = field(
        default="duckdb",
        metadata=_setting(
            "CPROF_CHECKS_ENGINE",
            choice("duckdb", "pandas"),
            "one of duckdb, pandas",
            "on the DuckDB engine, what evaluates the input checks' suites: `duckdb` in the warehouse (a failed "
            "partition validated again by Great Expectations), or `pandas`, Great Expectations' pandas engine "
            "(Spark always uses Great Expectations' Spark engine)",
        ),
    )
    # Automation and alerts (pipelines/defs/automation.py, alerts.py).
    retry_backoff_seconds: float = field(
        default=600.0,
        metadata=_setting(
            "CPROF_RETRY_BACKOFF_SECONDS",
            number(),
            "a number of seconds (0 or more)",
            "the sensor's wait after a month's first failed refresh before retrying it; doubled after each further one",
        ),
    )
    notify_log: Path | None = field(
        default=None,
        metadata=_setting(
            "CPROF_NOTIFY_LOG",
            file_path,
            "the path of a file to append failures to",
            "the file failures are appended to, one JSON line each (unset: <data>/logs/failures.jsonl)",
        ),
    )
    notify_command: tuple[str, ...] | None = field(
        default=None,
        metadata=_setting(
            "CPROF_NOTIFY_COMMAND",
            command_line,
            "a command line (quotes balanced)",
            "a command given each failure on stdin (docs/OPERATING.md)",
        ),
    )
    # The currency every amount is in (the ledger's and the ERP's): carried into the publication (marts.publication_info,
    # dim_metrics, the Parquet files' metadata) and the report; amounts are never converted.
    currency: str = field(
        default="USD",
        metadata=_setting(
            "CPROF_CURRENCY",
            currency_code,
            "an ISO 4217 currency code, three capital letters (USD, EUR, GBP)",
            "the currency of every amount (the ledger's and the ERP's; nothing is converted), shown with them",
        ),
    )
    # The HTML report (docs/report.md).
    report_months: int = field(
        default=24,
        metadata=_setting(
            "CPROF_REPORT_MONTHS",
            whole(1),
            "a whole number of months, 1 or more",
            "the latest months a report holds",
        ),
    )
    report_customers: int = field(
        default=2500,
        metadata=_setting(
            "CPROF_REPORT_CUSTOMERS",
            whole(1),
            "a whole number of customers, 1 or more",
            "the customers, by largest absolute profit over those months, a report holds",
        ),
    )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """The settings ``environ`` gives (a process's ``os.environ``), defaults for those unset or empty; the
        first bad one raises SettingError (one line)."""
        values = {f.name: f.metadata["setting"].get(environ) for f in fields(cls)}
        return cls(**{name: value for name, value in values.items() if value is not None})

    def to_environ(self) -> dict[str, str]:
        """The variables that give these settings back (``Settings.from_environ(s.to_environ()) == s``): how they
        travel as text, e.g. as the arguments Dagster rebuilds a job from (pipelines/run.py)."""
        return {
            declaration.name: _as_text(getattr(self, name))
            for name, declaration in self.declarations().items()
            if getattr(self, name) is not None
        }

    @property
    def paths(self) -> Paths:
        return Paths(self.data_dir)

    @classmethod
    def declarations(cls) -> dict[str, Setting]:
        """Each field's declaration, by field name."""
        return {f.name: f.metadata["setting"] for f in fields(cls)}

    @classmethod
    def variable(cls, name: str) -> str:
        """The environment variable of the field ``name``."""
        return cls.declarations()[name].name

    def dbt_environment(self) -> dict[str, str]:
        """The settings dbt's profile reads (dbt_project/profiles.yml), for dbt's own environment."""
        return {
            self.variable("data_dir"): str(self.data_dir),
            self.variable("duckdb_memory_limit"): self.duckdb_memory_limit,
            self.variable("spark_driver_memory"): self.spark_driver_memory,
            self.variable("currency"): self.currency,
        }
