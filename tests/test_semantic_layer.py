"""The semantic layer (dbt's MetricFlow, dbt_project/models/semantic/, docs/metrics.md) on a real published demo.

On the demo (24 months: the trailing windows of its second year are whole), `mf validate-configs` passes on the
project, its data-warehouse checks included (every semantic model, dimension,
measure and metric queried on the demo's warehouse); every scorecard metric queried with `mf query` equals the
published scorecard's actual for each month and segment, decimal for decimal; the metrics computed from the marts
themselves (ABC profit and the satisfaction index over a trailing 12-month window) equal the scorecard's figures
too; and the published metric catalogue, marts.dim_metrics, is the semantic layer's metrics, one row each.

MetricFlow reads the semantic manifest that dbt's parse writes (dbt_project/target/semantic_manifest.json, made by
``ensure_manifest`` as for the code location) and queries a copy of the demo's working warehouse through the
project's own profile (CPROF_DATA_DIR), so nothing shared is written. Telemetry is off; MetricFlow's CLI still asks
the package registry for a newer release on each command (a 1 s timeout, its answer ignored; it has no switch).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.defs.dbt import DBT_PROJECT_DIR, ensure_manifest
from pipelines.lib.config import Paths, telemetry_off

MF = Path(sys.executable).parent / "mf"
SCORECARD_METRICS = DBT_PROJECT_DIR / "seeds" / "scorecard_metrics.csv"
# The scorecard publishes its actuals at 4 decimal places, rounded half away from zero (customer_scorecard.sql,
# double_as_decimal: DuckDB's cast to decimal(20, 4)).
PUBLISHED_SCALE = Decimal("0.0001")


def scorecard_metric_codes() -> list[str]:
    with SCORECARD_METRICS.open(newline="") as f:
        return [row["metric"] for row in csv.DictReader(f)]


def semantic_manifest() -> dict:
    ensure_manifest()
    return json.loads((DBT_PROJECT_DIR / "target" / "semantic_manifest.json").read_text())


class Mf:
    """The `mf` command on a copy of a published data directory's working warehouse."""

    def __init__(self, paths: Paths, workdir: Path) -> None:
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True)
        for name in ("warehouse.duckdb", "warehouse.duckdb.wal"):
            if (paths.data_dir / name).exists():
                shutil.copy2(paths.data_dir / name, self.data_dir / name)
        self.workdir = workdir
        self.env = {
            **os.environ,
            **telemetry_off(os.environ),
            "CPROF_DATA_DIR": str(self.data_dir),
            "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
            "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR),
            "DBT_LOG_PATH": str(workdir / "logs"),
            "DBT_TARGET_PATH": str(workdir / "target"),
        }
        self.timings: dict[str, float] = {}

    def __call__(self, *args: str, label: str) -> subprocess.CompletedProcess:
        start = time.perf_counter()
        done = subprocess.run(
            [str(MF), *args],
            check=False,
            cwd=DBT_PROJECT_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        self.timings[label] = time.perf_counter() - start
        return done

    def query(self, metrics: list[str], group_by: list[str], label: str) -> list[dict[str, str]]:
        out = self.workdir / f"{label}.csv"
        done = self(
            "query", "--metrics", ",".join(metrics), "--group-by", ",".join(group_by), "--csv", str(out),
            label=label,
        )  # fmt: skip
        assert done.returncode == 0 and out.exists(), f"mf query failed:\n{done.stdout}\n{done.stderr}"
        with out.open(newline="") as f:
            return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def mf(demo_published: Paths, tmp_path_factory) -> Mf:
    semantic_manifest()  # the artefact MetricFlow reads, from dbt's parse
    return Mf(demo_published, tmp_path_factory.mktemp("metricflow"))


def published_scorecard(paths: Paths) -> dict[tuple[date, str, str], Decimal | None]:
    with duckdb.connect(str(paths.published / "current" / "cprof.duckdb"), read_only=True) as con:
        rows = con.execute("select period, segment, metric, actual from marts.customer_scorecard").fetchall()
    return {(period, segment, metric): actual for period, segment, metric, actual in rows}


def month(value: str) -> date:
    """metric_time__month as MetricFlow writes it (a timestamp at the start of the month)."""
    return date.fromisoformat(value[:10])


def number(value: str) -> Decimal | None:
    return None if value in ("", "None") else Decimal(value)


def test_mf_validate_configs_passes_with_its_warehouse_checks(mf: Mf):
    done = mf("validate-configs", label="validate-configs")
    print(f"mf validate-configs: {mf.timings['validate-configs']:.1f} s")
    assert done.returncode == 0, f"mf validate-configs failed:\n{done.stdout}\n{done.stderr}"
    # its summaries: the semantic checks, then each data-warehouse check (semantic models, dimensions, ...)
    errors = re.findall(r"\bERRORS: (\d+)", done.stdout)
    assert len(errors) >= 6 and set(errors) == {"0"}, done.stdout


def test_a_broken_metric_fails_validation(tmp_path: Path):
    """The check can fail: a metric over a measure that no semantic model defines is an error MetricFlow names."""
    manifest = semantic_manifest()
    simple = next(m for m in manifest["metrics"] if m["type"] == "simple")
    simple["type_params"]["measure"]["name"] = "no_such_measure"
    simple["type_params"]["input_measures"][0]["name"] = "no_such_measure"
    project = tmp_path / "project"
    (project / "target").mkdir(parents=True)
    shutil.copy2(DBT_PROJECT_DIR / "dbt_project.yml", project / "dbt_project.yml")
    (project / "target" / "semantic_manifest.json").write_text(json.dumps(manifest))
    env = {
        **os.environ,
        **telemetry_off(os.environ),
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_PROJECT_DIR": str(project),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
        "CPROF_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [str(MF), "validate-configs", "--skip-dw"],
        check=False,
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode != 0, done.stdout
    assert f"Measure no_such_measure referenced in metric {simple['name']}" in done.stdout, done.stdout


def test_every_scorecard_metric_through_metricflow_equals_the_published_scorecard(
    mf: Mf, demo_published: Paths
):
    codes = scorecard_metric_codes()
    rows = mf.query(codes, ["metric_time__month", "scorecard__segment"], label="scorecard")
    print(f"mf query of the {len(codes)} scorecard metrics: {mf.timings['scorecard']:.1f} s")
    published = published_scorecard(demo_published)
    answered = {
        (month(row["metric_time__month"]), row["scorecard__segment"], code): number(row[code])
        for row in rows
        for code in codes
    }
    assert answered == published
    # the demo's figures are not all empty: the comparison compares numbers, every metric's
    assert {metric for (_, _, metric), value in published.items() if value is not None} == set(codes)


def test_metrics_over_the_marts_equal_the_scorecards_trailing_figures(mf: Mf, demo_published: Paths):
    """ABC profit and the satisfaction index over a trailing 12-month window (cumulative metrics over the time
    spine), computed from the marts, equal the scorecard's customer_profit_t12m (to the cent: exactly) and
    satisfaction_index (at its published 4 decimal places) for every month, per segment and for the company."""
    published = published_scorecard(demo_published)
    metrics = ["abc_profit_t12m", "satisfaction_index_t12m"]
    by_segment = mf.query(metrics, ["metric_time__month", "customer__segment"], label="t12m_by_segment")
    company = mf.query(metrics, ["metric_time__month"], label="t12m_company")
    answered = {
        (month(row["metric_time__month"]), row.get("customer__segment", "all"), metric): number(row[metric])
        for row in [*by_segment, *company]
        for metric in metrics
    }
    compared = 0
    for (period, segment, metric), actual in published.items():
        if metric == "customer_profit_t12m":
            assert answered.get((period, segment, "abc_profit_t12m"), Decimal(0)) == actual, (period, segment)
        elif metric == "satisfaction_index" and actual is not None:
            mine = answered[(period, segment, "satisfaction_index_t12m")]
            assert mine.quantize(PUBLISHED_SCALE, ROUND_HALF_UP) == actual, (period, segment, mine, actual)
        else:
            continue
        compared += 1
    assert compared >= 2 * 24


def test_mean_profit_clv_from_customer_clv_equals_the_scorecards(mf: Mf, demo_published: Paths):
    """Profit CLV from marts.customer_clv through MetricFlow: the mean over the customers with one, per month and
    segment and for the company, equals the scorecard's mean_profit_clv at its published 4 decimal places; and it
    answers by region, which the scorecard cannot."""
    published = published_scorecard(demo_published)
    by_segment = mf.query(
        ["mean_clv_profit"], ["metric_time__month", "customer__segment"], label="clv_segment"
    )
    company = mf.query(["mean_clv_profit"], ["metric_time__month"], label="clv_company")
    compared = 0
    for row in [*by_segment, *company]:
        key = (month(row["metric_time__month"]), row.get("customer__segment", "all"), "mean_profit_clv")
        mine, actual = number(row["mean_clv_profit"]), published[key]
        assert (None if mine is None else mine.quantize(PUBLISHED_SCALE, ROUND_HALF_UP)) == actual, (
            key,
            mine,
        )
        compared += mine is not None
    assert compared >= 4 * 12
    by_region = mf.query(
        ["clv_profit", "clv_customers"], ["metric_time__month", "customer__region"], label="clv_region"
    )
    with duckdb.connect(str(demo_published.published / "current" / "cprof.duckdb"), read_only=True) as con:
        expected = {
            (period, region): (total, customers)
            for period, region, total, customers in con.execute(
                "select c.period, d.region, sum(c.clv_profit), count(c.clv_profit) from marts.customer_clv c "
                "join marts.dim_customers d using (customer_id) group by all having count(c.clv_profit) > 0"
            ).fetchall()
        }
    answered = {
        (month(row["metric_time__month"]), row["customer__region"]): (
            number(row["clv_profit"]),
            int(Decimal(row["clv_customers"])),
        )
        for row in by_region
        if row["clv_customers"] not in ("", "None", "0")
    }
    assert answered == expected and len(expected) > 20


def test_the_published_metric_catalogue_is_the_semantic_layers_metrics(demo_published: Paths):
    manifest = semantic_manifest()
    with duckdb.connect(str(demo_published.published / "current" / "cprof.duckdb"), read_only=True) as con:
        catalogue = {
            row[0]: row[1:]
            for row in con.execute(
                "select name, label, description, formula, unit, currency from marts.dim_metrics"
            ).fetchall()
        }
        scorecard_units = dict(con.execute("select metric, unit from marts.dim_scorecard_metrics").fetchall())
        (published_currency,) = con.execute("select currency from marts.publication_info").fetchone()
    assert published_currency == "USD"  # the setting's default
    defined = {metric["name"]: metric for metric in manifest["metrics"]}
    assert set(catalogue) == set(defined)
    for name, (label, description, formula, unit, currency) in catalogue.items():
        metric = defined[name]
        assert (label, description) == (metric["label"], metric["description"]), name
        assert formula and unit, name
        assert currency == (published_currency if unit == "currency" else None), name
    # every scorecard metric is in the catalogue, in the scorecard's unit
    assert {code: catalogue[code][3] for code in scorecard_metric_codes()} == scorecard_units


def test_docs_metrics_lists_exactly_the_metrics_defined():
    """docs/metrics.md's tables of metrics (its section "The metrics") name every metric defined, and no other."""
    text = (DBT_PROJECT_DIR.parent / "docs" / "metrics.md").read_text()
    section = text.split("\n## The metrics\n", 1)[1].split("\n## ", 1)[0]
    documented = {
        name
        for line in section.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([a-z0-9_]+)`", line.split("|")[1])
    }
    assert documented == {metric["name"] for metric in semantic_manifest()["metrics"]}
