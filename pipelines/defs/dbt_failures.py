"""A failed dbt build in words: for each dbt data test that failed, the rows that break it (the test's own query,
as dbt compiled it, read with a limit after the build), their key values and months, and, where a row came from a
landing file, the file. ``cprof run``'s error and the failure alert say this instead of a test's name.

dbt's ``--store-failures`` would write every test's failing rows into the warehouse on every build (a table per
test, also when it passes); reading the failing tests' compiled queries after a failed build costs nothing when
the build passes.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipelines.engines.base import Filter, Tables
from pipelines.landing.inventory import NO_EXTERNAL_LINKS, find_file
from pipelines.landing.sources import BY_NAME
from pipelines.landing.structure import LandingError

SAMPLE_ROWS = 5  # failing rows read per test
# What a generic test's failing rows call the tested column, by the test's name.
TESTED_COLUMN_ALIASES = {"from_field": "column_name", "unique_field": "column_name"}
MEANING = {
    "unique": "a key repeated",
    "unique_combination_of_columns": "a key repeated",
    "relationships": "a value with no match in {to}",
    "relationships_multi": "a key with no match in {to}",
    "not_null": "a value missing",
    "not_null_columns": "a value missing",
    "accepted_values": "a value outside the accepted ones",
}


def failed_nodes(dbt_target: Path) -> list[dict[str, Any]]:
    """The results of the data tests that failed and the models and tests that errored in the last dbt
    invocation (run_results.json)."""
    results = dbt_target / "run_results.json"
    if not results.exists():
        return []
    return [
        result
        for result in json.loads(results.read_text()).get("results", [])
        if result.get("unique_id", "").startswith(("test.", "model."))
        and result.get("status") in ("fail", "error")
    ]


def explain_failed_tests(
    dbt_target: Path, wh: Tables, landing: Path, allow_external_links: bool = NO_EXTERNAL_LINKS
) -> list[str]:
    """One paragraph per failed dbt data test: what it checks, the rows that break it (keys, months) and the
    landing files they came from; and per model that could not be built, its error and where its inputs are.
    ``allow_external_links``: the setting (the reference files are named as a run finds them)."""
    failed = failed_nodes(dbt_target)
    if not failed:
        return []
    manifest = json.loads((dbt_target / "manifest.json").read_text())
    return [
        _explain(result, manifest, wh, landing, allow_external_links)
        if result["unique_id"].startswith("test.")
        else _explain_model(result, manifest, wh, landing)
        for result in failed
    ]


def _explain(
    result: dict[str, Any], manifest: dict[str, Any], wh: Tables, landing: Path, allow_external_links: bool
) -> str:
    node = manifest["nodes"].get(result["unique_id"], {})
    name = node.get("name", result["unique_id"])
    metadata = node.get("test_metadata") or {}
    kwargs = metadata.get("kwargs") or {}
    tested = _model_of(node, manifest)
    parent = _ref(kwargs.get("to"))
    parent_files = _snapshot_files(parent, manifest, landing, allow_external_links)
    meaning = MEANING.get(metadata.get("name", ""), "rows that break it").format(
        to=parent + (f" ({', '.join(parent_files)})" if parent_files else "")
    )
    head = f"dbt test {name} failed" + (f" on {tested}" if tested else "") + f" ({meaning})"
    if result.get("status") == "error" or not result.get("compiled_code"):
        return f"{head}: {' '.join(str(result.get('message') or 'error').split())}"
    try:
        rows = wh.preview(result["compiled_code"], SAMPLE_ROWS)
    except Exception as exc:  # noqa: BLE001 - the build's own error is said anyway
        return f"{head}: {result.get('failures')} failing row(s); reading them failed: {exc}"
    sources = _raw_sources(node, manifest)
    lines = [f"{head}: {result.get('failures')} failing row(s), for example:"]
    months = set()
    for row in rows.drop_duplicates().to_dict("records"):
        named = {kwargs.get(TESTED_COLUMN_ALIASES.get(k, ""), k) or k: v for k, v in row.items()}
        keys = ", ".join(f"{k}={_text(v)}" for k, v in named.items())
        found = _origins(wh, sources, named, landing)
        lines.append(f"  {keys}" + (f": {found}" if found else ""))
        if isinstance(named.get("period"), date):
            months.add(_text(named["period"])[:7])
    for month in sorted(months):
        files = _month_files(wh, sources, month, landing)
        if files:
            lines.append(f"  the landing files of {month} it reads: {', '.join(files)}")
    return "\n".join(lines)


def _month_files(wh: Tables, sources: list[str], month: str, landing: Path) -> list[str]:
    """The landing files of ``month`` of the monthly sources among ``sources``, as raw holds them."""
    period = date.fromisoformat(f"{month}-01")
    files = []
    for name in sources:
        if BY_NAME[name].kind == "monthly":
            found = wh.distinct(BY_NAME[name].raw_table, "_source_file", [Filter("_period", "=", period)])
            files += [_relative(file, landing) for file in found]
    return files


# A money amount with 13 or more digits before the point: far beyond any real line, near DECIMAL(18,2)'s limit,
# where sums overflow.
OUT_OF_RANGE = Decimal("1e13")


def _explain_model(result: dict[str, Any], manifest: dict[str, Any], wh: Tables, landing: Path) -> str:
    """A model dbt could not build: its error, and for a value out of its type's range, the landing rows with
    amounts near DECIMAL(18,2)'s limit among the model's inputs."""
    node = manifest["nodes"].get(result["unique_id"], {})
    message = " ".join(str(result.get("message") or "error").split())
    name = node.get("name", result["unique_id"])
    if "schemas on this incremental model are out of sync" in message:
        # A new version of the code added or removed columns of a table the warehouse keeps between runs.
        added = re.findall(r"Source columns not in target: \[(.*?)\] Target", message)
        columns = ", ".join(re.findall(r"column='([^']+)'", added[0])) if added else ""
        return (
            f"dbt model {name} has other columns in this version of the code than in the warehouse"
            + (f" (new: {columns})" if columns else "")
            + ": rebuild it once, with every month, by `cprof run --full-refresh` (nothing was published; the "
            "last publication stands)."
        )
    lines = [f"dbt model {name} could not be built: {message}"]
    if "out of range" in message or "overflow" in message.lower():
        for name in _raw_sources(node, manifest):
            source = BY_NAME[name]
            for column, kind in source.table_columns.items():
                if not kind.startswith("DECIMAL"):
                    continue
                for where in ([Filter(column, ">=", OUT_OF_RANGE)], [Filter(column, "<=", -OUT_OF_RANGE)]):
                    found = wh.read(source.raw_table, list(source.table_columns) + ["_source_file"], where)
                    for row in found.head(SAMPLE_ROWS).to_dict("records"):
                        file = _relative(row.pop("_source_file"), landing)
                        values = ", ".join(f"{k}={_text(v)}" for k, v in row.items() if v is not None)
                        lines.append(f"  {column} near the limit of {kind} in {file}: {values}")
    return "\n".join(lines)


def _ref(to: str | None) -> str:
    """``ref('stg_crm__customers')`` -> ``stg_crm__customers``."""
    if not to:
        return "its parent"
    return to.split("'")[1] if "'" in to else to


def _snapshot_files(
    model: str, manifest: dict[str, Any], landing: Path, allow_external_links: bool
) -> list[str]:
    """The reference snapshot files the model ``model`` is built from (none for a model of monthly sources)."""
    node = next((n for n in manifest["nodes"].values() if n.get("name") == model), None)
    if node is None:
        return []
    files = []
    for name in _raw_sources(node, manifest):
        if BY_NAME[name].kind != "monthly":
            try:
                found = find_file(landing, BY_NAME[name], None, allow_external_links)
                files.append(str(found.relative_to(landing)))
            except LandingError:
                files.append(f"reference/{name}.csv")
    return files


def _model_of(node: dict[str, Any], manifest: dict[str, Any]) -> str | None:
    attached = node.get("attached_node")
    if attached and attached in manifest["nodes"]:
        return manifest["nodes"][attached]["name"]
    return None


def _raw_sources(node: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """The landing sources (raw tables) the tested model reads, directly or through other models."""
    seen, queue, found = set(), list(node.get("depends_on", {}).get("nodes", [])), []
    while queue:
        current = queue.pop()
        if current in seen:
            continue
        seen.add(current)
        source = manifest["sources"].get(current)
        if source is not None:
            name = source.get("identifier") or source["name"]
            if source.get("schema") == "raw" and name in BY_NAME:
                found.append(name)
            continue
        queue += manifest["parent_map"].get(current, [])
    return sorted(set(found))


def _origins(wh: Tables, sources: list[str], row: dict[str, Any], landing: Path) -> str:
    """Where rows with these values come from: each raw source holding them, with its months and files."""
    said = []
    for name in sources:
        source = BY_NAME[name]
        filters = [
            Filter(k, "=", v)
            for k, v in row.items()
            if k in source.table_columns and _comparable(v, source.table_columns[k])
        ]
        if not filters:
            continue
        if source.kind == "monthly" and isinstance(row.get("period"), date):  # the row's own month
            filters.append(Filter("_period", "=", _as_date(row["period"])))
        found = wh.read(source.raw_table, ["_period", "_source_file"], filters).drop_duplicates()
        for period, file in sorted(found.itertuples(index=False), key=lambda r: (str(r[0]), str(r[1]))):
            month = "" if period is None or str(period) in ("NaT", "None") else f" {str(period)[:7]}"
            said.append(f"{name}{month} ({_relative(file, landing)})")
    return ", ".join(said)


def _as_date(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _comparable(value: Any, kind: str) -> bool:
    """Whether a failing row's value can be looked up in a raw column of the declared type ``kind``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if isinstance(value, str):
        return kind == "VARCHAR"
    if isinstance(value, datetime | date):
        return kind in ("DATE", "TIMESTAMP")
    if isinstance(value, bool):
        return kind == "BOOLEAN"
    return kind.startswith(("INTEGER", "BIGINT", "DECIMAL", "DOUBLE"))


def _relative(file: str, landing: Path) -> str:
    try:
        return str(Path(file).relative_to(landing))
    except ValueError:
        return file


def _text(value: Any) -> str:
    """A value as a person reads it: a date or a midnight timestamp as YYYY-MM-DD."""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
