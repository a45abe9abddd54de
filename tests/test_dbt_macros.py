"""Cross-database macros of the dbt project (dbt_project/macros/cross_database.sql), run by dbt on DuckDB.
tests/test_dbt_spark.py runs the same query on Spark and expects the same numbers."""

from __future__ import annotations

import json
from pathlib import Path

from tests.dbt_cli import run_dbt

# Means whose exact value lies halfway between two roundings: in double precision they fall below the half
# (0.015 is 0.01499999...), so a mean computed in doubles and then rounded goes down, on one engine or both.
ROUNDED_MEANS_SQL = """
select
    {{ rounded_mean('x', 2, 2) }} as up,
    {{ rounded_mean('-x', 2, 2) }} as away_from_zero,
    {{ rounded_mean('x', 2, 4) }} as exact,
    {{ rounded_mean('case when x > 0.015 then 1 else 0 end', 0, 4) }} as share,
    {{ rounded_mean('case when x > 1 then x end', 2, 4) }} as no_values
from (select cast(0.01 as decimal(18, 2)) as x union all select cast(0.02 as decimal(18, 2)))
"""
ROUNDED_MEANS = {"up": 0.02, "away_from_zero": -0.02, "exact": 0.015, "share": 0.5, "no_values": None}


def test_rounded_mean_rounds_the_exact_mean_half_away_from_zero(tmp_path: Path):
    done = run_dbt(
        tmp_path, "show", "--inline", ROUNDED_MEANS_SQL, "--output", "json", "--log-format", "json"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    previews = [
        json.loads(json.loads(line)["data"]["preview"])
        for line in done.stdout.splitlines()
        if line.startswith("{") and '"preview"' in line
    ]
    assert previews == [[ROUNDED_MEANS]]
