"""The publication as a BI tool sees it: opened by an older DuckDB release (in a virtual environment of its
own, as a BI tool bundles its own DuckDB), every table read with its comments, every Parquet file read."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipelines.engines.duckdb_warehouse import DuckDBWarehouse
from pipelines.lib.config import Paths
from pipelines.publication.publish import (
    DATABASE,
    PARQUET_DIR,
    PUBLISHED_STORAGE_FORMAT,
    current_database,
    publish,
    storage_format,
)

# The oldest DuckDB the publication is written for (docs/publishing.md, "For BI users"); BI drivers lag the newest DuckDB.
OLDEST_READER = "duckdb==1.1.3"
# How Superset connects (docs/bi.md): SQLAlchemy with the duckdb-engine dialect; Superset 4 and 5 run SQLAlchemy 1.4.
SUPERSET_STACK = ("duckdb-engine==0.17.0", "sqlalchemy==1.4.54")

# Dimension and label tables a BI user joins to, with their columns, written out independently of the models.
DIMENSIONS = {
    "dim_customers": {
        "customer_id",
        "customer_name",
        "segment",
        "segment_label",
        "region",
        "region_label",
        "acquired_date",
    },
    "dim_activities": {
        "activity",
        "activity_label",
        "cost_center",
        "cost_center_label",
        "driver",
        "driver_label",
        "method",
        "customer_driven",
    },
    "dim_cost_centers": {
        "cost_center",
        "cost_center_label",
        "method",
        "customer_driven",
        "is_business_sustaining",
    },
    "dim_segments": {"segment", "segment_label", "description", "is_all_segments"},
    "dim_regions": {"region", "region_label"},
    "dim_matrix_quadrants": {"matrix_quadrant", "matrix_quadrant_label", "description"},
    "dim_ipa_quadrants": {"ipa_quadrant", "ipa_quadrant_label", "description"},
    "dim_drivers": {"driver", "driver_label", "unit"},
    "publication_info": {"currency"},
    "dim_scorecard_metrics": {"metric", "label", "unit", "direction", "owner", "owner_display_name"},
    "dim_scorecard_owners": {"owner", "owner_display_name"},
    "dim_metrics": {"name", "label", "description", "formula", "unit", "currency"},
    "dim_scenarios": {
        "scenario",
        "description",
        "is_baseline",
        "changes",
        "levers",
        "first_period",
        "last_period",
        "version",
    },
}

READER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import duckdb

    database, parquet = Path(sys.argv[1]), Path(sys.argv[2])
    con = duckdb.connect(str(database), read_only=True)
    out = {"version": duckdb.__version__, "tables": {}, "parquet": {}}
    for schema, table, comment in con.execute(
        "select schema_name, table_name, comment from duckdb_tables() order by all"
    ).fetchall():
        columns = con.execute(
            "select column_name, comment from duckdb_columns() where schema_name = ? and table_name = ? "
            "order by column_index",
            [schema, table],
        ).fetchall()
        rows = con.execute(f'select * from "{schema}"."{table}"').fetchall()  # every value decoded
        out["tables"][f"{schema}.{table}"] = {"comment": comment, "columns": dict(columns), "rows": len(rows)}
    for path in sorted(parquet.iterdir()):
        # A table with periods is a folder of hive-style period folders, read with hive_partitioning; one
        # without a single file.
        files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
        source = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
        hive = "true" if path.is_dir() else "false"
        read = "read_parquet('" + source + "', hive_partitioning = " + hive + ")"
        rows = con.execute("select * from " + read).fetchall()
        types = {n: t for n, t, *_ in con.execute("describe select * from " + read).fetchall()}
        kvs = []
        for file in files:
            kv = {
                key.decode(): value.decode()
                for key, value in con.execute(
                    "select key, value from parquet_kv_metadata(?)", [str(file)]
                ).fetchall()
            }
            if kv not in kvs:
                kvs.append(kv)
        name = path.name if path.is_dir() else path.stem
        out["parquet"][name] = {"rows": len(rows), "kv": kvs[0] if len(kvs) == 1 else kvs, "types": types}
    out["constraints"] = con.execute(
        "select table_name, constraint_type, constraint_column_names, referenced_table from duckdb_constraints() "
        "where schema_name = 'marts' and constraint_type in ('PRIMARY KEY', 'FOREIGN KEY') order by all"
    ).fetchall()
    print(json.dumps(out))
    """
)

# What Superset sees through SQLAlchemy: the tables of schema marts, their comments and their columns', the
# primary keys the dialect reflects, and every key by SQL through the same connection.
SQLALCHEMY_READER = textwrap.dedent(
    """
    import json, sys
    import sqlalchemy as sa

    engine = sa.create_engine(f"duckdb:///{sys.argv[1]}", connect_args={"read_only": True})
    inspector = sa.inspect(engine)
    out = {"version": sa.__version__, "schemas": inspector.get_schema_names(), "tables": {}}
    for table in inspector.get_table_names(schema="marts"):
        out["tables"][table] = {
            "comment": inspector.get_table_comment(table, schema="marts")["text"],
            "columns": {c["name"]: c["comment"] for c in inspector.get_columns(table, schema="marts")},
            "primary_key": inspector.get_pk_constraint(table, schema="marts"),
            "foreign_keys": inspector.get_foreign_keys(table, schema="marts"),
        }
    with engine.connect() as con:
        out["constraints"] = [
            list(row)
            for row in con.execute(
                sa.text(
                    "select table_name, constraint_type, constraint_column_names, referenced_table "
                    "from duckdb_constraints() where schema_name = 'marts' "
                    "and constraint_type in ('PRIMARY KEY', 'FOREIGN KEY') order by all"
                )
            )
        ]
        out["labelled"] = [
            list(row)
            for row in con.execute(
                sa.text(
                    "select s.segment_label, count(*) from marts.customer_profitability p "
                    "join marts.dim_segments s using (segment) group by 1 order by 1"
                )
            )
        ]
    print(json.dumps(out, default=str))
    """
)


@pytest.fixture(scope="session")
def older_duckdb(tmp_path_factory) -> Path:
    """A virtual environment with the oldest DuckDB release we support, from the package registry (once per
    session; about 10-30 s)."""
    venv = tmp_path_factory.mktemp("older_duckdb") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    done = subprocess.run(
        [
            str(python),
            *("-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            *(OLDEST_READER, *SUPERSET_STACK),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"pip install {OLDEST_READER} failed:\n{done.stdout}\n{done.stderr}"
    return python


def read_with(python: Path, database: Path, reader: str = READER) -> dict:
    done = subprocess.run(
        [str(python), "-c", reader, str(database), str(database.parent / PARQUET_DIR)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.system
def test_an_older_duckdb_reads_every_published_table_with_its_comments_and_every_parquet_file(
    published_sample: Paths, older_duckdb: Path
):
    database = current_database(published_sample.published)
    assert storage_format(database) == PUBLISHED_STORAGE_FORMAT
    seen = read_with(older_duckdb, database)
    assert seen["version"] == OLDEST_READER.split("==")[1]

    with duckdb.connect(str(database), read_only=True) as con:
        counts = dict(
            con.execute(
                "select table_name, row_count from marts.publish_log "
                "where run_id = (select max_by(run_id, published_at) from marts.publish_log)"
            ).fetchall()
        )
    tables = {name.removeprefix("marts."): t for name, t in seen["tables"].items()}
    assert set(seen["tables"]) == {f"marts.{t}" for t in tables}  # nothing outside schema marts
    assert set(tables) == {*counts, "publish_log", "publish_period_log"}
    assert set(DIMENSIONS) <= set(tables)
    for name, columns in DIMENSIONS.items():
        assert columns <= set(tables[name]["columns"]), name
        assert tables[name]["rows"] > 0, name
    undescribed = [name for name, t in tables.items() if not (t["comment"] or "").strip()]
    assert undescribed == []
    undescribed = [
        f"{name}.{column}"
        for name, t in tables.items()
        for column, comment in t["columns"].items()
        if not (comment or "").strip()
    ]
    assert undescribed == []
    for name, count in counts.items():
        assert tables[name]["rows"] == count, name

    assert set(seen["parquet"]) == set(tables)
    for name, parquet in seen["parquet"].items():
        assert parquet["rows"] == tables[name]["rows"], name
        if "period" in tables[name]["columns"] and name not in ("publish_log", "publish_period_log"):
            assert parquet["types"]["period"] == "DATE", name  # from each file, and from its folder's name
        assert parquet["kv"]["description"] == tables[name]["comment"], name
        assert json.loads(parquet["kv"]["column_descriptions"]) == tables[name]["columns"], name
        assert parquet["kv"]["currency"] == "USD", name

    # The keys, as the older DuckDB reads them: the ones written, a primary key on every table.
    assert [list(row) for row in seen["constraints"]] == _constraints(database)
    assert {table for table, kind, _, _ in seen["constraints"] if kind == "PRIMARY KEY"} == set(tables)
    assert ["customer_profitability", "FOREIGN KEY", ["customer_id"], "dim_customers"] in seen["constraints"]


def _constraints(database: Path) -> list[list]:
    with duckdb.connect(str(database), read_only=True) as con:
        return [
            [table, kind, list(columns), referenced]
            for table, kind, columns, referenced in con.execute(
                "select table_name, constraint_type, constraint_column_names, referenced_table "
                "from duckdb_constraints() where schema_name = 'marts' "
                "and constraint_type in ('PRIMARY KEY', 'FOREIGN KEY') order by all"
            ).fetchall()
        ]


@pytest.mark.system
def test_superset_s_sqlalchemy_lists_the_tables_comments_and_keys(
    published_sample: Paths, older_duckdb: Path
):
    """Superset's route (docs/bi.md): SQLAlchemy 1.4 with duckdb-engine on DuckDB 1.1.3 lists every published
    table with its comment and its columns', names each primary key; the foreign keys it does not reflect
    (duckdb-engine reads keys through DuckDB's PostgreSQL catalog, which has no key columns), so docs/bi.md
    gives the query that lists them, run here through the same connection."""
    database = current_database(published_sample.published)
    seen = read_with(older_duckdb, database, SQLALCHEMY_READER)
    assert seen["version"] == SUPERSET_STACK[1].split("==")[1]
    assert any(schema.endswith("marts") for schema in seen["schemas"])
    with duckdb.connect(str(database), read_only=True) as con:
        comments = dict(
            con.execute(
                "select table_name, comment from duckdb_tables() where schema_name = 'marts'"
            ).fetchall()
        )
        columns = con.execute(
            "select table_name, column_name, comment from duckdb_columns() where schema_name = 'marts'"
        ).fetchall()
    assert set(seen["tables"]) == set(comments)
    keys = _constraints(database)
    for table, reflected in seen["tables"].items():
        assert reflected["comment"] == comments[table], table
        assert reflected["columns"] == {c: comment for t, c, comment in columns if t == table}, table
        (primary,) = [cols for t, kind, cols, _ in keys if t == table and kind == "PRIMARY KEY"]
        # the constraint's text, DuckDB quoting the columns that are keywords (owner)
        assert reflected["primary_key"]["name"].replace('"', "") == f"PRIMARY KEY({', '.join(primary)})", (
            table
        )
        assert reflected["foreign_keys"] == [], table  # the dialect's limit, documented in docs/bi.md
    assert seen["constraints"] == keys
    assert [label for label, _ in seen["labelled"]] == ["Enterprise", "Mid-market", "Small business"]


@pytest.mark.system
def test_a_patched_release_stays_readable_and_a_release_in_another_format_is_not_copied(
    tmp_path: Path, older_duckdb: Path
):
    """Patching starts from a copy of the current release: the copy keeps its storage format, so a current
    release written in another one (DuckDB's default, by an older version of this code) is rewritten whole."""
    warehouse, published = tmp_path / "warehouse.duckdb", tmp_path / "published"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.facts as select (date '2024-01-01' + to_months(i % 3))::date as period, "
            "i as id from range(30) t(i)"
        )
    stale = published / "releases" / "old"
    stale.mkdir(parents=True)
    with duckdb.connect(str(stale / DATABASE)) as con:  # the DuckDB in use's default storage format
        con.execute("create schema marts")
        con.execute("create table marts.facts as select date '2024-01-01' as period, 0 as id")
    (published / "current").symlink_to(Path("releases") / "old")
    assert storage_format(stale / DATABASE) != PUBLISHED_STORAGE_FORMAT

    periods = {"first_period": date(2024, 1, 1), "last_period": date(2024, 3, 1)}
    first = publish(DuckDBWarehouse(warehouse), published, changed_from=date(2024, 3, 1), **periods)
    assert storage_format(first.database) == PUBLISHED_STORAGE_FORMAT
    with duckdb.connect(str(warehouse)) as con:
        con.execute("insert into marts.facts values (date '2024-03-01', 99)")
    patched = publish(DuckDBWarehouse(warehouse), published, changed_from=date(2024, 3, 1), **periods)
    assert storage_format(patched.database) == PUBLISHED_STORAGE_FORMAT
    seen = read_with(older_duckdb, patched.database)
    assert seen["tables"]["marts.facts"]["rows"] == 31
    assert seen["tables"]["marts.publish_log"]["comment"]
