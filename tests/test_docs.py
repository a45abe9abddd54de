"""The documentation agrees with the project (fast: no Dagster run, no data).

README.md is the front door and stays short (at most 200 lines); every relative link in it, in docs/ and in
bench/README.md reaches a file, and every #anchor a heading of that file; every `make` target and `cprof`
subcommand it names exists, and `cprof <subcommand> --help` renders; its table of landing sources is the spec's
(pipelines/landing/sources.py), column for column, with an example row of the right width; its Layout table
names every top-level folder and every package of pipelines/, and only paths that exist.
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
from pathlib import Path

import pytest

from pipelines.cli import build_parser
from pipelines.landing.sources import SOURCES
from pipelines.lib.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 200

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")


def documents() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md")), ROOT / "bench" / "README.md"]


def prose(text: str) -> str:
    """The text without its fenced code blocks (a link or heading there is code, not Markdown)."""
    return FENCE.sub("", text)


def code(text: str) -> list[str]:
    """What the text shows as code: its fenced blocks and its inline code spans."""
    return [m.group(0) for m in FENCE.finditer(text)] + CODE_SPAN.findall(prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for match in HEADING.finditer(prose(path.read_text())):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in LINK.findall(prose(path.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(
                f"{target}: no file {linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked}"
            )
        elif anchor and (linked.is_dir() or anchor not in anchors(linked)):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    return broken


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def cells(line: str) -> list[str]:
    """A Markdown table row's cells; a `|` inside a code span does not split."""
    result, current, in_code = [], "", False
    for char in line.strip()[1:-1]:
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            result.append(current.strip())
            current = ""
        else:
            current += char
    return [*result, current.strip()]


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the Markdown tables in text: neither a separator row nor the header above one."""
    separator = re.compile(r"^\|[\s:|-]+\|$")
    lines = text.splitlines()
    return [
        cells(line)
        for line, following in zip(lines, [*lines[1:], ""])
        if line.startswith("|") and not separator.match(line) and not separator.match(following)
    ]


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.MULTILINE))


def cprof_commands() -> dict[str, argparse.ArgumentParser]:
    (commands,) = [a for a in build_parser(Settings())._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def test_readme_is_at_most_200_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; depth belongs in docs/"


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path):
    assert path.exists(), f"{path.relative_to(ROOT)} is missing"
    assert broken_links(path) == [], f"{path.relative_to(ROOT)} has broken links"


def test_every_make_target_the_readme_names_exists():
    named = {m for snippet in code(README.read_text()) for m in re.findall(r"\bmake ([a-z][\w-]*)", snippet)}
    assert {"demo", "test"} <= named
    assert sorted(named - makefile_targets()) == []


def test_every_cprof_subcommand_the_readme_names_exists_and_its_help_renders():
    named = {m for snippet in code(README.read_text()) for m in re.findall(r"\bcprof ([a-z][\w-]*)", snippet)}
    commands = cprof_commands()
    assert {"generate", "run", "backfill"} <= named
    assert sorted(named - set(commands)) == []
    for name, command in commands.items():
        assert (
            f"cprof {name}" in command.format_help()
        )  # argparse expands % in help texts: a stray one raises


def test_the_readme_lists_every_landing_source_with_its_columns_types_and_an_example():
    rows = {row[0]: row for row in table_rows(section(README.read_text(), "Running it on your own data"))}
    assert sorted(rows) == sorted(s.name for s in SOURCES)
    for source in SOURCES:
        _, file, columns, example = rows[source.name]
        expected_file = (
            f"reference/{source.name}.csv" if source.kind == "snapshot" else f"{source.name}/YYYY-MM.csv"
        )
        assert file == f"`{expected_file}`"
        required, _, optional = columns.partition("; optional: ")
        listed = [tuple(c.split(" ", 1)) for c in required.split(", ")]
        assert listed == list(source.columns.items()), source.name
        listed_optional = [tuple(c.split(" ", 1)) for c in optional.split(", ")] if optional else []
        assert listed_optional == list(source.optional.items()), source.name
        (fields,) = list(csv.reader([example.strip("`")]))
        assert len(fields) == len(source.columns), f"{source.name}'s example row has {len(fields)} fields"


def test_the_layout_names_every_folder_and_package_and_only_paths_that_exist():
    named = {row[0].strip("`").rstrip("/") for row in table_rows(section(README.read_text(), "Layout"))}
    assert [p for p in sorted(named) if not (ROOT / p).exists()] == []
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    folders = {line.split("/")[0] for line in tracked.splitlines() if "/" in line}
    packages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "pipelines").glob("*/__init__.py")}
    assert sorted((folders | packages) - named) == []
