"""Hostile and awkward input, as a user meets it: SQL-looking values in every kind of landing field and a data
directory whose path has an apostrophe and a space. Nothing is executed; the values are published as plain text."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb

from pipelines.engines.sql import qualified
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.publication.publish import current_database
from pipelines.run import run_pipeline


def _payload(tag: str, pwned: Path, quote: str = "'") -> str:
    """A value that, spliced into SQL text, ends the literal (or identifier) it is in and writes a file."""
    return f"{tag}{quote}); copy (select 1) to '{pwned}' (format csv); --"


def _rewrite(path: Path, change) -> None:
    """Rewrite a CSV landing file through the csv module (values with quotes and commas stay one field)."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    body = [change(dict(zip(header, row, strict=True))) for row in rows[1:]]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([[row[name] for name in header] for row in body])


def _rename_everywhere(landing: Path, column: str, old: str, new: str) -> None:
    """Give a key a new value in every landing file that has that column."""
    for path in sorted(landing.rglob("*.csv")):
        with path.open(newline="") as handle:
            header = next(csv.reader(handle))
        if column in header:
            _rewrite(path, lambda row: {**row, column: new if row[column] == old else row[column]})


def test_sql_in_every_kind_of_field_is_inert_and_published_as_text(tmp_path: Path, small_landing: Path):
    paths = Paths(tmp_path / "it's a data dir" / "data")
    shutil.copytree(small_landing, paths.landing)
    landing = paths.landing
    pwned = tmp_path / "pwned"
    pwned.mkdir()
    planted = {
        "question": _payload("ATTR_CUSTOMER'S_VIEW", pwned / "question", quote='"'),
        "question2": _payload("ATTR_Q", pwned / "question2"),
        "customer": _payload("C'--", pwned / "customer"),
        "segment": _payload("seg;", pwned / "segment"),
        "name": _payload('Acme\'s "Best"', pwned / "name"),
        "centre": _payload("facilities", pwned / "centre"),
    }
    attributes = [
        r["question_id"] for r in csv.DictReader((landing / "reference/survey_questions.csv").open())
    ]
    attributes = [q for q in attributes if q.startswith("ATTR_")]
    _rename_everywhere(landing, "question_id", attributes[0], planted["question"])
    _rename_everywhere(landing, "question_id", attributes[1], planted["question2"])
    _rename_everywhere(landing, "customer_id", "C000001", planted["customer"])
    _rename_everywhere(landing, "cost_center", "facilities", planted["centre"])
    _rewrite(
        landing / "reference/customers.csv",
        lambda row: (
            {**row, "segment": planted["segment"], "customer_name": planted["name"]}
            if row["customer_id"] == "C000002"
            else row
        ),
    )
    # An empty month of a source where that is normal, and a lock file an editor left: both said, not fatal.
    returns = landing / "returns" / "2024-03.csv"
    returns.write_text(returns.read_text().splitlines()[0] + "\n")
    (landing / "order_lines" / ".~lock.2024-02.csv#").write_text("editor lock")

    lines: list[str] = []
    run_pipeline(Settings(data_dir=paths.data_dir), progress=lines.append)

    assert not list(pwned.iterdir()), "a planted statement was executed"
    assert any(line.startswith("ingest 2024-03:") and "no rows: returns 0" in line for line in lines), lines
    assert any(line.startswith("ignored") and ".~lock.2024-02.csv#" in line for line in lines), lines
    with duckdb.connect(str(current_database(paths.published)), read_only=True) as con:
        questions = {
            q
            for (q,) in con.execute("select distinct question_id from marts.satisfaction_drivers").fetchall()
        }
        customers = {
            c for (c,) in con.execute("select customer_id from marts.customer_profitability").fetchall()
        }
        segments = {
            s for (s,) in con.execute("select distinct segment from marts.customer_profitability").fetchall()
        }
        names = {
            n
            for (n,) in con.execute(
                "select distinct customer_name from marts.customer_profitability"
            ).fetchall()
        }
        satisfied = con.execute(
            "select count(*) from marts.customer_satisfaction where satisfaction_index is not null"
        ).fetchone()[0]
        centres = set()
        for schema, table in con.execute(
            "select schema_name, table_name from duckdb_columns() where column_name = 'cost_center'"
        ).fetchall():
            centres |= {
                c
                for (c,) in con.execute(
                    f"select distinct cost_center from {qualified(schema, table)}"
                ).fetchall()
            }
    assert {planted["question"], planted["question2"]} <= questions
    assert planted["customer"] in customers
    assert planted["segment"] in segments
    assert planted["name"] in names
    assert planted["centre"] in centres
    assert satisfied > 0  # the index is computed over the renamed attributes too
