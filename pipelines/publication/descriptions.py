"""What each published table and column is, from dbt's manifest: the descriptions dbt docs shows, of the dbt
marts (models in schema marts) and of the Python marts (documented as the dbt sources ``python_marts``). They
become the comments of the published DuckDB file and the key-value metadata of the Parquet files.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.publication.publish import TableDoc

PUBLISHED_SCHEMA = "marts"


def _doc(node: dict) -> TableDoc:
    columns = {name: " ".join((c.get("description") or "").split()) for name, c in node["columns"].items()}
    return TableDoc(
        " ".join((node.get("description") or "").split()), {k: v for k, v in columns.items() if v}
    )


def published_docs(manifest: Path) -> dict[str, TableDoc]:
    """Table name -> its description and its columns', for every model and source dbt puts in schema marts."""
    data = json.loads(manifest.read_text())
    docs: dict[str, TableDoc] = {}
    for node in [*data["nodes"].values(), *data["sources"].values()]:
        kind = node["resource_type"]
        if kind in ("model", "source") and node.get("schema") == PUBLISHED_SCHEMA:
            docs[node.get("identifier") or node["name"] if kind == "source" else node["alias"]] = _doc(node)
    return docs
