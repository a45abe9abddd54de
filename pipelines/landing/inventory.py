"""The landing zone's files: where each source's month or snapshot is, which files break the naming spec, which
are ignored (hidden and editor files), which months have landed, and what a run's files are when it starts
(size, modification time, SHA-256: a run loads only those bytes). Engine-free: the warehouse engines
(pipelines/engines/) load what this finds.

A landing file arrives whole: it is written under another name (a hidden one, ``.2025-12.csv.part``, which the
landing zone ignores) and renamed into place, so it appears complete at once (docs/landing.md). Enforced here:
a run takes its inventory before it loads anything, waiting for files modified in the last
``CPROF_LANDING_QUIET_SECONDS`` to stay unchanged that long (a file still being written fails the run, named),
and every load checks the file it parsed is the one inventoried (the engines' ``load``). A symbolic link whose
target leaves the data directory is refused unless the setting allow_external_links (``CPROF_ALLOW_EXTERNAL_LINKS``)
says otherwise: every function here that finds a landing file takes it (``allow_external_links``; False, the
spec's rule, when not given).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pipelines.landing.sources import EXTENSIONS, MONTHLY, SNAPSHOTS, Source
from pipelines.landing.structure import LandingError
from pipelines.lib.settings import Settings

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_start(label: str) -> date:
    match = MONTH_RE.match(label)
    if not match:
        raise ValueError(f"a month is written YYYY-MM, got {label!r}")
    return date(int(match.group(1)), int(match.group(2)), 1)


NO_EXTERNAL_LINKS = Settings.allow_external_links  # the spec's rule, unless the setting says otherwise


def link_problem(path: Path, landing: Path, allow_external_links: bool = NO_EXTERNAL_LINKS) -> str | None:
    """What is wrong with ``path`` (a folder or file of the landing zone) being a symbolic link, or None: a link
    whose target is outside the data directory (the landing zone's parent) is refused unless
    ``allow_external_links`` (the setting), so a link cannot make a run read, and an error quote, a file from
    anywhere on the machine; a link to nothing is refused always. Only the target's path is said, never its
    content."""
    if not path.is_symlink():
        return None
    target = path.resolve()
    if not target.exists():
        return f"a symbolic link to {target}, which does not exist; put the file itself here"
    inside = (landing.parent.resolve(), landing.resolve())
    if allow_external_links or any(target.is_relative_to(root) for root in inside):
        return None
    return (
        f"a symbolic link to {target}, outside the data directory {landing.parent}: landing files are copied "
        f"into the landing zone, not linked from elsewhere (set {Settings.variable('allow_external_links')}=1 to accept such links)"
    )


def _refuse_links(landing: Path, path: Path, allow_external_links: bool) -> None:
    """Raise LandingError for a refused link on the way from the landing zone to ``path`` (its folder, itself)."""
    for part in (path.parent, path):
        problem = link_problem(part, landing, allow_external_links)
        if problem:
            raise LandingError(part, problem)


def find_file(
    landing: Path, source: Source, month: str | None = None, allow_external_links: bool = NO_EXTERNAL_LINKS
) -> Path:
    """The landing file of ``source`` (for ``month`` if monthly); CSV or Parquet. A refused symbolic link (see
    :func:`link_problem`) raises LandingError naming it."""
    folder, stem = (
        (landing / source.name, month) if source.kind == "monthly" else (landing / "reference", source.name)
    )
    candidates = [folder / f"{stem}{ext}" for ext in EXTENSIONS]
    for candidate in candidates:
        if candidate.is_symlink() or folder.is_symlink():
            _refuse_links(landing, candidate, allow_external_links)
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


# The checksum recorded for a snapshot that may be absent and was: its load is "no file", not a file's bytes.
ABSENT = "absent"


def is_absent(landing: Path, source: Source) -> bool:
    """Whether ``source`` is a snapshot that may be absent (``absent_ok``) and is: no file of any accepted
    extension, nor a link, where find_file looks. Such a snapshot loads as no rows; any other missing file is
    an error (find_file raises it)."""
    folder = landing / "reference"
    return source.absent_ok and not any(
        (folder / f"{source.name}{ext}").is_file() or (folder / f"{source.name}{ext}").is_symlink()
        for ext in EXTENSIONS
    )


def landing_path(
    landing: Path, source: Source, month: str | None = None, allow_external_links: bool = NO_EXTERNAL_LINKS
) -> Path:
    """The file of ``source`` (find_file), or, for a snapshot that may be absent and is, the path its CSV would
    have: what a load, a check or a message names."""
    if is_absent(landing, source):
        return landing / "reference" / f"{source.name}{EXTENSIONS[0]}"
    return find_file(landing, source, month, allow_external_links)


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


def landing_inventory(landing: Path, allow_external_links: bool = NO_EXTERNAL_LINKS) -> LandingInventory:
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
        elif problem := link_problem(entry, landing, allow_external_links):
            problems.append((entry, problem))
    for folder, stems in folders.items():
        if not (landing / folder).is_dir() or link_problem(landing / folder, landing, allow_external_links):
            continue
        for path in sorted((landing / folder).iterdir()):
            if ignorable(path.name):
                ignored.append(path)
                continue
            problem = link_problem(path, landing, allow_external_links) or _name_problem(path, stems)
            if problem:
                problems.append((path, problem))
            elif stems is None:
                months.add(path.stem)
    return LandingInventory(sorted(months), ignored, problems)


def months_in_landing(landing: Path, allow_external_links: bool = NO_EXTERNAL_LINKS) -> list[str]:
    """Every month for which any monthly source has a file, sorted. A file whose name is not a month of the
    expected form, or whose extension the spec does not accept, raises LandingError naming it."""
    inventory = landing_inventory(landing, allow_external_links)
    inventory.raise_problems()
    return inventory.months


def history_start(
    landing: Path, first_month: str | None, allow_external_links: bool = NO_EXTERNAL_LINKS
) -> str | None:
    """The start of history: the declared one, ``first_month`` (the setting; YYYY-MM), when set, else the first
    month in the landing zone (None without one). The Dagster partitions begin there (pipelines/defs/partitions.py)
    and a return of a line ordered before it is a pre-history return (data_checks/suites.py). Moving it earlier
    and loading the older months is a backward backfill."""
    if first_month:
        return first_month
    months = months_in_landing(landing, allow_external_links)
    return months[0] if months else None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileStamp:
    """A landing file as a run found it before loading anything: size, modification time and SHA-256. What a
    load records (and the landing sensor compares with the file later)."""

    path: Path
    bytes: int
    mtime_ns: int
    sha256: str


def _stat(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def still_being_written(
    path: Path, before: tuple[int, int], after: tuple[int, int], seconds: float | None = None
) -> LandingError:
    when = f"within {seconds:g}s" if seconds is not None else "while the run read it"
    return LandingError(
        path,
        f"still being written: it went from {before[0]:,} to {after[0]:,} bytes {when}, so nothing of it was "
        "loaded. A landing file must arrive whole: write it under a hidden name (.<name>.part) and rename it "
        "into place when complete (docs/landing.md); then run again",
    )


def stamp(path: Path) -> FileStamp:
    """The file's size, modification time and SHA-256, taken so that they belong together: a file that
    changes while it is read raises LandingError naming it."""
    before = _stat(path)
    sha256 = file_sha256(path)
    after = _stat(path)
    if after != before:
        raise still_being_written(path, before, after)
    return FileStamp(path, *before, sha256)


def is_unchanged(path: Path, size: int | None, mtime_ns: int | None, sha256: str | None) -> bool:
    """Whether the file at ``path`` is the one recorded (size, mtime_ns, sha256): size and modification time
    first, and when either differs its SHA-256 (a copy with new times is the same file). The landing sensor's
    test of a corrected file, and a load's test that it parsed the bytes the run inventoried."""
    if (size, mtime_ns) == _stat(path):
        return True
    return sha256 is not None and file_sha256(path) == sha256


def changed_since_inventory(expected: FileStamp) -> LandingError:
    found = _stat(expected.path) if expected.path.exists() else None
    now = f"{found[0]:,} bytes now, other content" if found else "gone now"
    return LandingError(
        expected.path,
        f"changed since the run took its inventory ({expected.bytes:,} bytes then, {now}), so nothing of it "
        "was loaded: a file still being written, or replaced during the run. A landing "
        "file must arrive whole: write it under a hidden name and rename it into place (docs/landing.md); "
        "then run again",
    )


def verify_unchanged(expected: FileStamp) -> None:
    """Raise LandingError naming the file unless it is still the one stamped (bytes and content)."""
    path = expected.path
    if not path.exists() or not is_unchanged(path, expected.bytes, expected.mtime_ns, expected.sha256):
        raise changed_since_inventory(expected)


ACCEPT_ROW_DROP_TAG = "cprof/accept_row_drop"  # run tag: MONTH:SOURCE or MONTH, comma-separated


def accepts_row_drop(tags: dict[str, str], source: str, month: str | None) -> bool:
    """Whether a run's tags (``cprof run --accept-row-drop``) confirm a fall of rows of ``source`` in ``month``."""
    confirmed = {part.strip() for part in tags.get(ACCEPT_ROW_DROP_TAG, "").split(",") if part.strip()}
    return month is not None and bool({month, f"{month}:{source}"} & confirmed)


def row_drop_error(
    path: Path, source: str, month: str | None, rows: int, promoted: int | None, limit: float
) -> LandingError | None:
    """A month reloaded with far fewer rows than the load of it that was validated and promoted (more than
    ``limit`` fewer, the setting max_row_drop; 1: never): the mark of a file cut short or still being written.
    None when it is not one (a snapshot, a first load, a fall within the limit)."""
    if month is None or not promoted or rows >= promoted * (1 - limit):
        return None
    return LandingError(
        path,
        f"{rows:,} rows where its previous load, validated and promoted, had {promoted:,} "
        f"({1 - rows / promoted:.0%} fewer; {Settings.variable('max_row_drop')}={limit:g} allows {limit:.0%}), so nothing of it "
        "was loaded: a file cut short or still being written looks like this (land files whole: docs/landing.md). "
        f"If the month really has fewer rows, confirm it: cprof run --from {month} --to {month} "
        f"--accept-row-drop {month}:{source} (a run from Dagster: tag {ACCEPT_ROW_DROP_TAG}={month}:{source})",
    )


def file_to_load(
    landing: Path,
    source: Source,
    month: str | None,
    expected: FileStamp | None,
    allow_external_links: bool = NO_EXTERNAL_LINKS,
) -> FileStamp:
    """The file a load reads: the one the run inventoried (``expected``), checked to be still that file, or,
    without an inventory, the file as it is now. LandingError when it changed, or moved (a CSV replaced by a
    Parquet file). The load checks it once more after parsing it (:func:`verify_unchanged`)."""
    path = find_file(landing, source, month, allow_external_links)
    if expected is None:
        return stamp(path)
    if path != expected.path:
        raise changed_since_inventory(expected)
    verify_unchanged(expected)
    return expected


FileKey = tuple[str, str | None]  # (source, month; None for a snapshot)


def run_files(
    landing: Path, months: Iterable[str], allow_external_links: bool = NO_EXTERNAL_LINKS
) -> dict[FileKey, Path]:
    """Every landing file a run of ``months`` reads: the reference snapshots, and each monthly source's file of
    each month. A file that is missing or refused is left out: its own load fails, naming it."""
    keys = [(source, None) for source in SNAPSHOTS] + [(s, label) for label in months for s in MONTHLY]
    found = {}
    for source, label in keys:
        try:
            found[source.name, label] = find_file(landing, source, label, allow_external_links)
        except LandingError:
            continue
    return found


def take_inventory(
    files: dict[FileKey, Path],
    quiet_seconds: float,
    say: Callable[[str], None] | None = None,
) -> dict[FileKey, FileStamp]:
    """The run's inventory of ``files``, before it loads any: each file's size, modification time and SHA-256.
    A file modified less than ``quiet_seconds`` (the setting landing_quiet_seconds) ago is watched until it has
    been unchanged that long; one that changes meanwhile is still being written, and raises LandingError naming
    it (nothing is loaded: the run fails before its first load)."""
    quiet = quiet_seconds
    seen = {path: _stat(path) for path in files.values()}
    youngest = max((mtime for _, mtime in seen.values()), default=0) / 1e9
    wait = min(youngest + quiet - time.time(), quiet)  # a modification time in the future waits no longer
    if wait > 0:
        recent = [path for path, (_, mtime) in seen.items() if mtime / 1e9 + quiet > time.time()]
        if say is not None:
            say(f"landing: waiting {wait:.1f}s for {len(recent)} recently modified file(s) to stay unchanged")
        time.sleep(wait)
        for path in recent:
            now = _stat(path)
            if now != seen[path]:
                raise still_being_written(path, seen[path], now, quiet)
    return {key: stamp(path) for key, path in files.items()}
