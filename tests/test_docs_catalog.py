"""dbt docs tell the truth about the data: `make docs`'s `dbt docs generate` on a built warehouse gives every
table (model, seed, source) its exact row count as a catalog statistic (dbt-duckdb gives none:
dbt_project/macros/catalog_stats.sql), and views none."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.config import Paths

DBT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"


@pytest.mark.system  # a whole `dbt docs generate` (a parse and the catalog): a minute or two
def test_dbt_docs_show_each_tables_row_count(published_sample: Paths, tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(published_sample.data_dir / "warehouse.duckdb", data / "warehouse.duckdb")
    target = tmp_path / "dbt_docs"
    dbt = Path(sys.executable).parent / "dbt"
    done = subprocess.run(
        [str(dbt), "docs", "generate", "--profiles-dir", ".", "--target-path", str(target)],
        cwd=DBT_DIR,
        env={
            **os.environ,
            "CPROF_DATA_DIR": str(data),
            "DBT_LOG_PATH": str(tmp_path / "logs"),
            "DO_NOT_TRACK": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    catalog = json.loads((target / "catalog.json").read_text())
    entries = {**catalog["nodes"], **catalog["sources"]}

    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        views = {
            (schema, name)
            for schema, name in con.execute("select schema_name, view_name from duckdb_views()").fetchall()
        }
        counted = 0
        for unique_id, entry in entries.items():
            schema, name = entry["metadata"]["schema"], entry["metadata"]["name"]
            stats = entry["stats"]
            if (schema, name) in views:
                assert "row_count" not in stats and stats["has_stats"]["value"] is False, unique_id
                continue
            (rows,) = con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()
            assert stats["has_stats"]["value"] is True, unique_id
            assert stats["row_count"]["value"] == rows, unique_id
            counted += 1
    kinds = {unique_id.split(".")[0] for unique_id in entries if "row_count" in entries[unique_id]["stats"]}
    assert kinds == {"model", "seed", "source"}
    assert counted >= 40
    assert entries["model.cprof.customer_profitability"]["stats"]["row_count"]["value"] > 0
