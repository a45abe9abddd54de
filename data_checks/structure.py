"""Structural checks of a landing file, made before any row is loaded: it is readable UTF-8 text with a
header naming exactly the source's columns, in order (then any of its optional columns). Row-level rules (keys, references, ranges) come after.
"""

from __future__ import annotations

import csv
from pathlib import Path

from pipelines.landing.sources import Source


class LandingError(Exception):
    """A landing file that cannot be loaded. The message says which file and what to do."""

    def __init__(self, path: Path, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def check_csv_header(path: Path, source: Source) -> list[str]:
    """The columns of a CSV file's header, after checking them (check_columns)."""
    try:
        with path.open("rb") as handle:
            first_line = handle.readline()
    except OSError as exc:
        raise LandingError(path, f"unreadable: {exc.strerror}") from exc
    if not first_line.strip():
        raise LandingError(
            path, f"empty file: expected a header line with columns {', '.join(source.columns)}"
        )
    try:
        header = next(csv.reader([first_line.decode("utf-8")]))
    except UnicodeDecodeError as exc:
        raise LandingError(
            path, f"line 1 (header): not UTF-8 text at byte {exc.start}: re-export as UTF-8"
        ) from exc
    found = [h.strip().lstrip("\ufeff") for h in header]
    check_columns(path, source, found)
    return found


def check_columns(path: Path, source: Source, found: list[str]) -> None:
    """The columns of a file are the source's columns in order, then any of its optional ones, in order."""
    expected = list(source.columns)
    optional = [c for c in source.optional if c in found]
    if found == expected + optional:
        return
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in source.table_columns]
    parts = []
    if missing:
        parts.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        parts.append(f"unexpected column(s) {', '.join(extra)}")
    if not parts:
        parts.append(f"columns out of order: expected {', '.join(expected + optional)}")
    rule = f"{source.name} files have exactly {', '.join(expected)}"
    if source.optional:
        rule += f", then any of {', '.join(source.optional)} in that order"
    raise LandingError(path, "; ".join(parts) + f" (rule: {rule})")
