"""What validating one partition of a landing source found, as a person reads it: each failed expectation
(:class:`ExpectationFailure`) with sample values and their places in the file, and the partition's :class:`Outcome`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# How many offending values a failed expectation shows (GX's partial_unexpected_count).
SAMPLE_SIZE = 5


@dataclass(frozen=True)
class ExpectationFailure:
    """One expectation of a suite that a partition failed (not Dagster's ``Failure``, which fails a step)."""

    expectation: str
    column: str | None
    unexpected_count: int | None
    samples: list[Any]
    observed: Any = None
    # Each sample's row, by the values of the source's key columns (GX's unexpected_index_list), and where the
    # file holds it ("line 6", "lines 2, 3", "row 4"; "" when not found): the same order as ``samples``.
    keys: list[tuple] = field(default_factory=list)
    where: list[str] = field(default_factory=list)

    def examples(self) -> str:
        """The sample values, each with its place in the file when known: ``C777777 at line 6``."""
        places = self.where + [""] * (len(self.samples) - len(self.where))
        shown = [
            f"{value} at {place}" if place else str(value)
            for value, place in list(zip(self.samples, places, strict=True))[:SAMPLE_SIZE]
        ]
        # the rows of a repeated key are one sample, with all its lines; values without a place stay each
        return ", ".join(dict.fromkeys(shown) if all(places) else shown)

    def describe(self) -> str:
        subject = f" on {self.column}" if self.column else ""
        if self.unexpected_count is not None:
            return f"{self.expectation}{subject}: {self.unexpected_count} unexpected (e.g. {self.examples()})"
        return f"{self.expectation}{subject}: observed {self.observed}"


def with_places(failures: list[ExpectationFailure], source: str, file: str) -> list[ExpectationFailure]:
    """The failures with the file's line (CSV) or row (Parquet) of each sample, read from the file once."""
    from pipelines.landing.positions import row_positions

    keys = [key for failure in failures for key in failure.keys]
    if not keys:
        return failures
    try:
        found = row_positions(Path(file), source, keys)
    except Exception:  # noqa: BLE001 - a place is an aid to the message: without it, the message stands
        return failures
    placed = []
    for failure in failures:
        where = []
        for key in failure.keys:
            places = found.get(key, [])
            if len(places) > 1:  # a repeated key: every line (row) it is on
                where.append(f"{places[0].split()[0]}s " + ", ".join(p.split()[1] for p in places))
            else:
                where.append(places[0] if places else "")
        placed.append(replace(failure, where=where))
    return placed


@dataclass(frozen=True)
class Outcome:
    source: str
    month: str | None
    file: str
    rows: int
    evaluated: int
    failures: list[ExpectationFailure] = field(default_factory=list)
    docs: Path | None = None
    # The months validated with this one in a single GX run (first..last of the batch), when it was batched:
    # its outcome is the same as alone, so outcomes compare equal either way.
    batch: str | None = field(default=None, compare=False)
    # What evaluated the suite: Great Expectations' engine (None), or DuckDB ("duckdb": a partition that passed
    # data_checks/duckdb_evaluation.py, which gives the outcome GX's engine gives).
    engine: str | None = field(default=None, compare=False)

    @property
    def success(self) -> bool:
        return not self.failures

    def message(self) -> str:
        where = f"{self.source} {self.month or 'snapshot'} ({self.file}, {self.rows} rows)"
        if self.success:
            return f"{where}: all {self.evaluated} expectations passed"
        lines = [f"{where}: {len(self.failures)} of {self.evaluated} expectations failed"]
        lines += [f"  - {failure.describe()}" for failure in self.failures]
        if self.docs:
            lines.append(f"  Data Docs: {self.docs}")
        return "\n".join(lines)
