"""Structural checks of a landing file, made before any row is loaded: it is readable UTF-8 text with a
header naming exactly the source's columns, in order (then any of its optional columns). Row-level rules (keys, references, ranges) come after.
"""

from __future__ import annotations

import codecs
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


def _nested_kind(kind: str) -> str | None:
    """What a stored column type is when it is not a plain value: DuckDB's ``STRUCT(...)``, ``MAP(...)``,
    ``INTEGER[]`` and Spark's ``struct<...>``, ``map<...>``, ``array<...>`` spellings; None for a scalar."""
    lowered = kind.strip().lower()
    for prefix, name in (("struct", "struct"), ("map", "map"), ("union", "union"), ("array", "list")):
        if lowered.startswith(prefix):
            return name
    return "list" if lowered.endswith("]") or lowered.startswith("list") else None


def check_scalar_columns(path: Path, source: Source, stored: dict[str, str]) -> None:
    """Every column the spec declares (all of them plain values) is stored as a plain value in the Parquet file:
    a struct, list or map column is refused naming it, rather than loaded as the text of the structure."""
    nested = {name: _nested_kind(kind) for name, kind in stored.items() if name in source.table_columns}
    nested = {name: what for name, what in nested.items() if what}
    if nested:
        raise LandingError(
            path,
            "; ".join(
                f"column {name} is a {what} where the spec declares {source.table_columns[name]}"
                for name, what in nested.items()
            )
            + ": landing files hold plain values (rule: one value of the declared type per column); export "
            "the column flat",
        )


def utf8_problem(path: Path) -> str | None:
    """Where a file stops being UTF-8 text (its line and byte), or None."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, offset = 1, 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                line += block[: exc.start].count(b"\n")
                return f"line {line}: not UTF-8 text at byte {offset + exc.start} (not utf-8): re-export as UTF-8"
            line += block.count(b"\n")
            offset += len(block)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return f"line {line}: not UTF-8 text at the end (not utf-8): re-export as UTF-8"
    return None


CSV_RULE = (
    "rule: a value holding a comma, a double quote or a line break is enclosed in double quotes, and a double "
    "quote inside it is written twice"
)


def csv_problem(path: Path) -> str | None:
    """The first place a CSV file breaks its format, read with Python's csv module (strict quoting), in words:
    not UTF-8, a quoted value that opens and never closes (named by the line where it opens), a stray quote, or
    a line whose number of fields is not the header's. None when it finds nothing wrong. Used to explain a
    file DuckDB's reader refused: DuckDB names the line where it noticed, and quotes the lines after it."""
    problem = utf8_problem(path)
    if problem:
        return problem
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, strict=True)
        start = 1
        try:
            header = next(reader, None)
            if header is None:
                return None
            start = reader.line_num + 1
            for record in reader:
                if record and len(record) != len(header):
                    text = ",".join(record)
                    return (
                        f"line {start}: expected {len(header)} fields (the header's), found {len(record)} "
                        f"(the line reads: {text[:200]})"
                    )
                start = reader.line_num + 1
        except csv.Error as exc:
            if "end of data" in str(exc) or reader.line_num > start:
                return f"line {start}: a quoted value opens on this line and is never closed ({CSV_RULE})"
            return f"line {start}: a double quote where a value cannot have one: {exc} ({CSV_RULE})"
    return None


_PARQUET_MAGIC = b"PAR1"


def check_parquet_file(path: Path) -> None:
    """A Parquet file begins and ends with its magic bytes: refuse one that does not (a zero-byte file, one cut
    short, another format under the name) in DuckDB's words, before either engine reads it."""
    size = path.stat().st_size
    if size < 2 * len(_PARQUET_MAGIC) + 4:
        raise LandingError(
            path, f"does not parse: too small to be a Parquet file ({size} bytes): export the month again"
        )
    with path.open("rb") as handle:
        head = handle.read(len(_PARQUET_MAGIC))
        handle.seek(-len(_PARQUET_MAGIC), 2)
        tail = handle.read()
    if head != _PARQUET_MAGIC or tail != _PARQUET_MAGIC:
        where = "begin" if head != _PARQUET_MAGIC else "end"
        raise LandingError(
            path,
            f"does not parse: not a Parquet file: it does not {where} with Parquet's magic bytes PAR1 (cut short, "
            "or another format under a .parquet name): export it again",
        )
