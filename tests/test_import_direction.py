"""Imports go one way: each package of the lower rooms imports only the rooms below it, so none of them can grow a
cycle or reach up into Dagster's definitions. A source scan (Python's ast, every import, also those inside
functions), nothing imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipelines.lib.config import PROJECT_ROOT

# What each room may import of ours (besides itself), lowest first. The rooms not listed (pipelines.defs,
# run.py, cli.py, definitions.py, summary.py, progress.py, sample/) are the top: they may import any room.
MAY_IMPORT = {
    "pipelines.lib": set(),
    # the writer lock, dbt's child, the instance's configuration: loaded by Dagster's daemon and webserver too
    "pipelines.runtime": {"pipelines.lib"},
    "pipelines.landing": {"pipelines.lib"},
    "data_checks": {"pipelines.lib", "pipelines.landing"},
    "pipelines.domain": {"pipelines.lib"},
    "pipelines.engines": {"pipelines.lib", "pipelines.runtime", "pipelines.landing", "data_checks"},
    "pipelines.publication": {"pipelines.lib", "pipelines.engines"},
}
# The one quoting helper: any room may use it, so it may import nothing of ours (no cycle can pass through it).
LEAF = "pipelines.engines.sql"
OURS = ("pipelines", "data_checks")


def _module(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str | None:
    """The room ``module`` is in (the longest listed prefix), or None for the top."""
    rooms = [room for room in (*MAY_IMPORT, LEAF) if module == room or module.startswith(room + ".")]
    return max(rooms, key=len) if rooms else None


def imports_of(path: Path, root: Path) -> list[tuple[int, str]]:
    """Every module of ours ``path`` imports (line, module), relative imports resolved."""
    module = _module(path, root)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join([*package[: len(package) - node.level + 1], *[node.module or ""]]).strip(".")
            base = base if node.level else node.module or ""
            # ``from pipelines.engines import sql`` imports the module pipelines.engines.sql
            is_package = (root / base.replace(".", "/") / "__init__.py").is_file()
            names = [f"{base}.{alias.name}" if is_package else base for alias in node.names]
        else:
            continue
        found += [(node.lineno, name) for name in dict.fromkeys(names) if name.split(".")[0] in OURS]
    return found


def upward_imports(root: Path = PROJECT_ROOT) -> list[str]:
    """``file:line imports module`` for every import a lower room may not make."""
    wrong = []
    for folder in OURS:
        for path in sorted((root / folder).rglob("*.py")):
            room = _room(_module(path, root))
            if room is None:
                continue
            allowed = set() if room == LEAF else {room, LEAF, *MAY_IMPORT[room]}
            for line, name in imports_of(path, root):
                if _room(name) not in allowed:
                    wrong.append(
                        f"{path.relative_to(root)}:{line} imports {name} (room {_room(name) or 'top'})"
                    )
    return wrong


def test_no_room_imports_one_above_it():
    assert upward_imports() == []


@pytest.mark.parametrize(
    ("file", "statement"),
    [
        ("pipelines/domain/clv.py", "from pipelines.engines.base import Warehouse"),
        ("pipelines/domain/satisfaction.py", "from pipelines.publication import publish"),
        ("pipelines/landing/inventory.py", "    from data_checks.suites import SUITES"),  # inside a function
        ("data_checks/gx_run.py", "import pipelines.defs.resources"),
        ("pipelines/engines/sql.py", "from pipelines.lib.settings import setting"),
        ("pipelines/lib/config.py", "from ..landing.sources import SOURCES"),
    ],
)
def test_an_upward_import_is_caught(tmp_path: Path, file: str, statement: str):
    """A copy of the tree in which one file gains an upward import: the scan names that file and module."""
    for folder in OURS:
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            copy = tmp_path / path.relative_to(PROJECT_ROOT)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(path.read_text())
    target = tmp_path / file
    body = f"def _added():\n{statement}\n" if statement.startswith(" ") else f"{statement}\n"
    target.write_text(f"{target.read_text()}\n{body}")
    wrong = upward_imports(tmp_path)
    assert len(wrong) == 1 and wrong[0].startswith(f"{file}:"), wrong
