"""Compare a published DuckDB file with the published contract in docs/DESIGN.md.

Usage (from the project root, with the project's environment):
    python tools/check_contract.py [PUBLISHED.duckdb]
Without an argument it takes data/published/current/cprof.duckdb. Prints each contract table and column that
is missing, and each published table or column without a description (comment); exits 1 if anything is
missing or undescribed, 0 otherwise.
"""

import pathlib
import re
import sys

import duckdb

design = pathlib.Path(__file__).resolve().parent.parent / "docs" / "DESIGN.md"
contract = {}
in_contract = False
for line in design.read_text().splitlines():
    if line.startswith("## "):
        in_contract = line.strip() == "## The published contract"
    m = re.match(r"\| (\w+) \| [^|]+ \| ([^|]+) \|$", line) if in_contract else None
    if m and m.group(1) != "table":
        contract[m.group(1)] = [c.strip() for c in m.group(2).split(",")]

path = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "data/published/current/cprof.duckdb")
if not path.exists():
    print(f"no published DuckDB file at {path} yet")
    sys.exit(1)

con = duckdb.connect(str(path), read_only=True)
have = {}
for table, column in con.execute(
    "select table_name, column_name from information_schema.columns where table_schema = 'marts'"
).fetchall():
    have.setdefault(table, set()).add(column)
undescribed = [
    f"marts.{table}" + (f".{column}" if column else "")
    for table, column in con.execute(
        "select table_name, null from duckdb_tables() where schema_name = 'marts' and coalesce(comment, '') = '' "
        "union all select table_name, column_name from duckdb_columns() "
        "where schema_name = 'marts' and coalesce(comment, '') = '' order by all"
    ).fetchall()
]

missing = 0
for table, columns in contract.items():
    if table not in have:
        print(f"missing table marts.{table}")
        missing += 1
        continue
    lacking = [c for c in columns if c not in have[table]]
    if lacking:
        print(f"marts.{table} lacks: {', '.join(lacking)}")
        missing += 1
for name in undescribed:
    print(f"{name} has no description")
print(f"{path}: {len(contract) - missing} of {len(contract)} contract tables complete")
print(f"{path}: {len(undescribed)} published tables and columns without a description")
sys.exit(1 if missing or undescribed else 0)
