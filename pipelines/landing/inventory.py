"""The landing zone's files: where each source's month or snapshot is, which files break the naming spec, which
are ignored (hidden and editor files), which months have landed, and file digests. Engine-free: the warehouse
engines (pipelines/engines/) load what this finds."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from data_checks.structure import LandingError
from pipelines.landing.sources import EXTENSIONS, MONTHLY, SNAPSHOTS, Source
from pipelines.lib.settings import MONTH, month, setting

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_start(label: str) -> date:
    match = MONTH_RE.match(label)
    if not match:
        raise ValueError(f"a month is written YYYY-MM, got {label!r}")
    return date(int(match.group(1)), int(match.group(2)), 1)


def find_file(landing: Path, source: Source, month: str | None = None) -> Path:
    """The landing file of ``source`` (for ``month`` if monthly); CSV or Parquet."""
    folder, stem = (
        (landing / source.name, month) if source.kind == "monthly" else (landing / "reference", source.name)
    )
    candidates = [folder / f"{stem}{ext}" for ext in EXTENSIONS]
    found = [p for p in candidates if p.is_file()]
    if not found:
        raise LandingError(
            candidates[0],
            f"missing: no {source.name} file for {month or 'the snapshot'} "
            f"(looked for {', '.join(p.name for p in candidates)} in {folder})",
        )
    if len(found) > 1:
        raise LandingError(found[0], f"ambiguous: both {found[0].name} and {found[1].name} exist; keep one")
    return found[0]


# Files a person's tools leave beside the data: ignored (and listed), never loaded. Hidden files include macOS's
# .DS_Store, LibreOffice's .~lock.<name># and vim's .<name>.swp.
IGNORED_NAMES = ("Thumbs.db", "desktop.ini")


def ignorable(name: str) -> bool:
    """A hidden file or an editor's lock or backup file."""
    return name.startswith((".", "~$")) or name.endswith(("~", ".swp", ".swx")) or name in IGNORED_NAMES


@dataclass(frozen=True)
class LandingInventory:
    """What the landing zone holds: every month with a file of a monthly source, the files ignored (hidden or
    editor files), and the files or folders that are not part of the spec (each with what is wrong)."""

    months: list[str]
    ignored: list[Path]
    problems: list[tuple[Path, str]]

    def raise_problems(self) -> None:
        if self.problems:
            (first, problem), rest = self.problems[0], self.problems[1:]
            also = "".join(f"\n  also {path}: {text}" for path, text in rest)
            raise LandingError(first, problem + also)


def _name_problem(path: Path, stems: tuple[str, ...] | None) -> str | None:
    """What is wrong with a file's name in a monthly folder (``stems`` None) or in reference/ (the snapshots'
    names), or None when it is a landing file."""
    accepted = " or ".join(EXTENSIONS)
    if path.is_dir():
        return "a folder where only landing files belong; move it out of the landing zone"
    if path.suffix not in EXTENSIONS:
        return f"extension {path.suffix or '(none)'!r} is not accepted: landing files end in {accepted} (lower case)"
    if stems is None:
        if not MONTH_RE.match(path.stem):
            return (
                f"{path.stem!r} is not a month: a monthly file is named YYYY-MM{path.suffix} (month 01-12), "
                "so this file would never be loaded; rename or remove it"
            )
    elif path.stem not in stems:
        return (
            f"{path.stem!r} is not a reference snapshot of the spec ({', '.join(stems)}); rename or remove it"
        )
    return None


def landing_inventory(landing: Path) -> LandingInventory:
    """Every file of the landing zone accounted for: months found, files ignored, files that break the spec."""
    months: set[str] = set()
    ignored: list[Path] = []
    problems: list[tuple[Path, str]] = []
    folders = {source.name: None for source in MONTHLY} | {"reference": tuple(s.name for s in SNAPSHOTS)}
    if not landing.is_dir():
        return LandingInventory([], [], [])
    for entry in sorted(landing.iterdir()):
        if ignorable(entry.name):
            ignored.append(entry)
        elif entry.name not in folders or not entry.is_dir():
            problems.append(
                (entry, f"not part of the landing zone: it holds only the folders {', '.join(folders)}")
            )
    for folder, stems in folders.items():
        if not (landing / folder).is_dir():
            continue
        for path in sorted((landing / folder).iterdir()):
            if ignorable(path.name):
                ignored.append(path)
                continue
            problem = _name_problem(path, stems)
            if problem:
                problems.append((path, problem))
            elif stems is None:
                months.add(path.stem)
    return LandingInventory(sorted(months), ignored, problems)


def months_in_landing(landing: Path) -> list[str]:
    """Every month for which any monthly source has a file, sorted. A file whose name is not a month of the
    expected form, or whose extension the spec does not accept, raises LandingError naming it."""
    inventory = landing_inventory(landing)
    inventory.raise_problems()
    return inventory.months


# The declared start of history (YYYY-MM): the Dagster partitions begin there (pipelines/defs/partitions.py) and a
# return of a line ordered before it is a pre-history return (data_checks/suites.py). Default: the first month in
# the landing zone. Moving it earlier and loading the older months is a backward backfill.
FIRST_MONTH_ENV = "CPROF_FIRST_MONTH"
FIRST_MONTH = setting(FIRST_MONTH_ENV, month, MONTH)


def history_start(landing: Path) -> str | None:
    """The start of history: ``$CPROF_FIRST_MONTH`` when set, else the first month in the landing zone (None
    without one)."""
    declared = FIRST_MONTH.get()
    if declared:
        return declared
    months = months_in_landing(landing)
    return months[0] if months else None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
