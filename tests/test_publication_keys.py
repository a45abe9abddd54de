"""The keys of the publication: a primary key on every table and foreign keys from the marts to the dimensions
they name, written into the DuckDB file so a BI tool finds the joins; a key broken fails the publication and
leaves the current one as it was; a patched release equals one written afresh, keys included."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipelines.engines.duckdb_warehouse import DuckDBWarehouse
from pipelines.lib.config import Paths
from pipelines.publication.keys import (
    NOT_REFERENCED,
    ForeignKey,
    TableKeys,
    creation_order,
    declared_primary_keys,
    table_keys,
)
from pipelines.publication.publish import (
    CURRENT,
    PublicationKeyError,
    current_database,
    publish,
    table_checksum,
)

PERIODS = {"first_period": date(2024, 1, 1), "last_period": date(2024, 3, 1)}
KEYS = {
    "dim_customers": ("customer_id",),
    "dim_segments": ("segment",),
    "facts": ("customer_id", "period"),  # dbt's order (by name): published in the table's order
}


def test_a_column_named_like_a_dimensions_key_references_it():
    columns = {
        "dim_customers": ["customer_id", "segment"],
        "dim_segments": ["segment", "segment_label"],
        "facts": ["period", "customer_id", "segment", "amount"],
        "prehistory_returns": ["period", "return_id", "customer_id"],
    }
    keys = table_keys({**KEYS, "prehistory_returns": ("return_id",)}, columns)
    assert keys["facts"] == TableKeys(
        ("period", "customer_id"),
        (
            ForeignKey(("customer_id",), "dim_customers", ("customer_id",)),
            ForeignKey(("segment",), "dim_segments", ("segment",)),
        ),
    )
    assert keys["dim_customers"].foreign_keys == (ForeignKey(("segment",), "dim_segments", ("segment",)),)
    assert keys["dim_segments"].foreign_keys == ()
    assert ("prehistory_returns", "customer_id") in NOT_REFERENCED
    assert keys["prehistory_returns"] == TableKeys(("return_id",), ())
    order = creation_order(keys)
    assert order.index("dim_segments") < order.index("dim_customers") < order.index("facts")

    with pytest.raises(ValueError, match="published tables without a primary key: facts"):
        table_keys({k: v for k, v in KEYS.items() if k != "facts"}, columns)
    with pytest.raises(ValueError, match="the primary key of facts names columns it does not have: day"):
        table_keys({**KEYS, "prehistory_returns": ("return_id",), "facts": ("day",)}, columns)


def _warehouse(path: Path, facts: str, customers: str = "('C1', 'A', 'smb'), ('C2', 'B', 'ent')") -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts")
        con.execute("create or replace table marts.dim_segments (segment varchar, segment_label varchar)")
        con.execute("insert into marts.dim_segments values ('smb', 'Small business'), ('ent', 'Enterprise')")
        con.execute(
            "create or replace table marts.dim_customers (customer_id varchar, customer_name varchar, segment varchar)"
        )
        con.execute(f"insert into marts.dim_customers values {customers}")
        con.execute(
            "create or replace table marts.facts (period date, customer_id varchar, segment varchar, amount decimal(18,2))"
        )
        con.execute(f"insert into marts.facts values {facts}")
    return path


FACTS = (
    "(date '2024-01-01', 'C1', 'smb', 10.00), (date '2024-01-01', 'C2', 'ent', 20.00), "
    "(date '2024-02-01', 'C1', 'smb', 11.00)"
)


def _constraints(database: Path) -> set[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return {
            (table, kind, tuple(columns), referenced)
            for table, kind, columns, referenced in con.execute(
                "select table_name, constraint_type, constraint_column_names, referenced_table "
                "from duckdb_constraints() where constraint_type in ('PRIMARY KEY', 'FOREIGN KEY')"
            ).fetchall()
        }


def _checksums(database: Path) -> dict[str, tuple[int, str]]:
    with duckdb.connect(str(database), read_only=True) as con:
        return {t: table_checksum(con, f"marts.{t}") for t in ("dim_segments", "dim_customers", "facts")}


EXPECTED = {
    ("dim_segments", "PRIMARY KEY", ("segment",), None),
    ("dim_customers", "PRIMARY KEY", ("customer_id",), None),
    ("dim_customers", "FOREIGN KEY", ("segment",), "dim_segments"),
    ("facts", "PRIMARY KEY", ("period", "customer_id"), None),
    ("facts", "FOREIGN KEY", ("customer_id",), "dim_customers"),
    ("facts", "FOREIGN KEY", ("segment",), "dim_segments"),
    ("publish_log", "PRIMARY KEY", ("run_id", "published_at", "table_name"), None),
    ("publish_period_log", "PRIMARY KEY", ("run_id", "published_at", "table_name", "period"), None),
}


def test_a_patched_release_with_changed_dimensions_equals_one_written_afresh(tmp_path: Path):
    warehouse = _warehouse(tmp_path / "warehouse.duckdb", FACTS)
    published = tmp_path / "published"
    first = publish(DuckDBWarehouse(warehouse), published, primary_keys=KEYS, **PERIODS)
    assert _constraints(first.database) == EXPECTED

    # March arrives with a new customer; C1 is renamed; C2, no longer in any row after January is restated
    # without it, leaves the CRM.
    _warehouse(
        warehouse,
        "(date '2024-01-01', 'C1', 'smb', 10.00), (date '2024-02-01', 'C1', 'smb', 11.00), "
        "(date '2024-03-01', 'C3', 'ent', 5.00)",
        customers="('C1', 'A renamed', 'smb'), ('C3', 'C', 'ent')",
    )
    patched = publish(
        DuckDBWarehouse(warehouse), published, changed_from=date(2024, 1, 1), primary_keys=KEYS, **PERIODS
    )
    afresh = publish(DuckDBWarehouse(warehouse), tmp_path / "afresh", primary_keys=KEYS, **PERIODS)
    assert patched.patched and not afresh.patched
    assert _constraints(patched.database) == EXPECTED
    assert _checksums(patched.database) == _checksums(afresh.database)
    with duckdb.connect(str(patched.database), read_only=True) as con:
        assert con.execute(
            "select customer_id, customer_name from marts.dim_customers order by 1"
        ).fetchall() == [
            ("C1", "A renamed"),
            ("C3", "C"),
        ]

    # C1 moves segment: DuckDB cannot change a referenced row's foreign key in place, so the release is
    # written whole, equal all the same.
    _warehouse(
        warehouse,
        "(date '2024-01-01', 'C1', 'ent', 10.00), (date '2024-02-01', 'C1', 'ent', 11.00), "
        "(date '2024-03-01', 'C3', 'ent', 5.00)",
        customers="('C1', 'A renamed', 'ent'), ('C3', 'C', 'ent')",
    )
    moved = publish(
        DuckDBWarehouse(warehouse), published, changed_from=date(2024, 1, 1), primary_keys=KEYS, **PERIODS
    )
    afresh = publish(DuckDBWarehouse(warehouse), tmp_path / "afresh", primary_keys=KEYS, **PERIODS)
    assert not moved.patched
    assert _constraints(moved.database) == EXPECTED
    assert _checksums(moved.database) == _checksums(afresh.database)

    # A current release written without keys (by the code before them) is not patched: rewritten with them.
    plain = tmp_path / "plain"
    publish(DuckDBWarehouse(warehouse), plain, **PERIODS)
    assert _constraints(current_database(plain)) == set()
    keyed = publish(
        DuckDBWarehouse(warehouse), plain, changed_from=date(2024, 3, 1), primary_keys=KEYS, **PERIODS
    )
    assert not keyed.patched
    assert _constraints(keyed.database) == EXPECTED


@pytest.mark.parametrize(
    ("facts", "broken"),
    [
        # January's C1 twice: the table's key repeated across a refresh's rows
        (FACTS + ", (date '2024-01-01', 'C1', 'smb', 1.00)", "primary key"),
        # a segment code without its dimension row
        (FACTS + ", (date '2024-03-01', 'C1', 'xx', 1.00)", "foreign key"),
        # a customer the customer dimension does not hold
        (FACTS + ", (date '2024-03-01', 'C9', 'smb', 1.00)", "foreign key"),
    ],
)
@pytest.mark.parametrize("patching", [False, True])
def test_a_broken_key_fails_the_publication_naming_the_table_and_keeps_the_current_one(
    tmp_path: Path, facts: str, broken: str, patching: bool
):
    warehouse = _warehouse(tmp_path / "warehouse.duckdb", FACTS)
    published = tmp_path / "published"
    good = publish(DuckDBWarehouse(warehouse), published, primary_keys=KEYS, **PERIODS)
    before = os.readlink(published / CURRENT), _checksums(good.database)

    _warehouse(warehouse, facts)
    with pytest.raises(PublicationKeyError) as raised:
        publish(
            DuckDBWarehouse(warehouse),
            published,
            changed_from=date(2024, 1, 1) if patching else None,
            primary_keys=KEYS,
            **PERIODS,
        )
    message = str(raised.value)
    assert message.startswith("marts.facts breaks its keys (primary key (period, customer_id), ")
    assert "nothing was published" in message
    assert broken in message.lower()
    assert (os.readlink(published / CURRENT), _checksums(good.database)) == before
    assert not list((published / "releases").glob(".building-*"))


def test_the_demo_publication_keys_every_table_and_labels_every_code(published_sample: Paths):
    """On a published sample: every table has a primary key; every column named like a dimension's key
    references it (the exceptions listed with their reason); every code of a mart has its label row; the
    scorecard rows carry the unit of their metric; the currency is in the file and every Parquet file."""
    database = current_database(published_sample.published)
    declared = declared_primary_keys(published_sample.dbt_target / "manifest.json")
    with duckdb.connect(str(database), read_only=True) as con:
        tables = {
            t
            for (t,) in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'marts'"
            ).fetchall()
        }
        constraints = con.execute(
            "select table_name, constraint_type, constraint_column_names, referenced_table "
            "from duckdb_constraints() where schema_name = 'marts'"
        ).fetchall()
        primary = {t: tuple(c) for t, kind, c, _ in constraints if kind == "PRIMARY KEY"}
        foreign = {(t, c[0], r) for t, kind, c, r in constraints if kind == "FOREIGN KEY"}
        assert set(primary) == tables
        for table, key in declared.items():
            assert set(primary[table]) == set(key), table
        dimension_keys = {primary[t][0]: t for t in tables if t.startswith("dim_") and len(primary[t]) == 1}
        columns = con.execute(
            "select table_name, column_name from duckdb_columns() where schema_name = 'marts'"
        ).fetchall()
        named = {
            (t, c, dimension_keys[c])
            for t, c in columns
            if c in dimension_keys and dimension_keys[c] != t and (t, c) not in NOT_REFERENCED
        }
        assert foreign == named
        assert {r for _, _, r in foreign} >= {
            "dim_customers",
            "dim_segments",
            "dim_regions",
            "dim_activities",
            "dim_cost_centers",
            "dim_drivers",
            "dim_matrix_quadrants",
            "dim_ipa_quadrants",
            "dim_scenarios",
            "dim_scorecard_metrics",
            "dim_scorecard_owners",
        }

        for dimension, label in [
            ("dim_segments", "segment_label"),
            ("dim_regions", "region_label"),
            ("dim_matrix_quadrants", "matrix_quadrant_label"),
            ("dim_ipa_quadrants", "ipa_quadrant_label"),
            ("dim_drivers", "driver_label"),
            ("dim_activities", "activity_label"),
            ("dim_cost_centers", "cost_center_label"),
        ]:
            code = primary[dimension][0]
            rows = con.execute(f"select {code}, {label} from marts.{dimension}").fetchall()
            assert rows and all(lab and lab != c for c, lab in rows), dimension  # labelled, not the bare code
        assert con.execute(
            "select count(*) from marts.dim_customers where segment_label is null"
        ).fetchone() == (0,)

        assert con.execute(
            "select count(*) from marts.customer_scorecard s join marts.dim_scorecard_metrics m using (metric) "
            "where s.unit is distinct from m.unit"
        ).fetchone() == (0,)
        (currency,) = con.execute("select currency from marts.publication_info").fetchone()
        assert currency == "USD"  # the setting's default
        parquet = published_sample.published / CURRENT / "parquet"
        for file in sorted(parquet.rglob("*.parquet")):
            kv = dict(
                con.execute(
                    "select key::varchar, value::varchar from parquet_kv_metadata(?)", [str(file)]
                ).fetchall()
            )
            assert kv.get("currency") == "USD", file.name


def test_a_fact_table_too_large_for_an_in_memory_key_is_published_without_constraints(tmp_path: Path):
    """Above ``enforced_key_rows`` rows a table that is not a dimension gets no constraints (DuckDB holds a key's
    index in memory: at 10M order lines one such table exhausted the publication's memory), its key stated in
    its comment; the dimensions keep theirs; a patched release and one written afresh agree, and a release
    written with the constraints is not patched into one without."""
    warehouse = _warehouse(tmp_path / "warehouse.duckdb", FACTS)
    published = tmp_path / "published"
    keyed = publish(DuckDBWarehouse(warehouse), published, primary_keys=KEYS, **PERIODS)
    assert _constraints(keyed.database) == EXPECTED

    large = publish(
        DuckDBWarehouse(warehouse),
        published,
        changed_from=date(2024, 2, 1),
        primary_keys=KEYS,
        enforced_key_rows=2,  # facts has 3 rows, each dimension 2
        **PERIODS,
    )
    assert not large.patched  # the current release has other keys: written whole
    assert _constraints(large.database) == {row for row in EXPECTED if row[0] != "facts"}
    with duckdb.connect(str(large.database), read_only=True) as con:
        (comment,) = con.execute(
            "select comment from duckdb_tables() where schema_name = 'marts' and table_name = 'facts'"
        ).fetchone()
    assert "Key: (customer_id, period), tested by dbt; not a constraint in this file" in comment
    assert "more than 2 rows" in comment

    again = publish(
        DuckDBWarehouse(warehouse),
        published,
        changed_from=date(2024, 2, 1),
        primary_keys=KEYS,
        enforced_key_rows=2,
        **PERIODS,
    )
    assert again.patched
    assert _constraints(again.database) == _constraints(large.database)
    assert _checksums(again.database) == _checksums(keyed.database)
