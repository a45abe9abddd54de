"""Benchmark: what a refresh's two dbt builds cost beside their nodes, run as a run runs them (one ``dbt``
process per step) or by one process with dbt's programmatic runner and the manifest parsed once (issue 32's
decision 2: "one invocation, or dbt's in-process runner with a reused manifest: measure and choose").

    python -m bench.dbt_invocations --data-dir DIR --month YYYY-MM [--repeat 3]

DIR is a data directory the pipeline has built (``make demo``'s data/, or ``python -m bench --keep``'s); MONTH one
of its published months. Each round rebuilds MONTH as a one-month refresh does, twice: the step ``dbt_models``'s
``dbt build`` and then the step ``satisfaction_and_scorecard_models``'s, with the selections dagster-dbt passes
them (pipelines/defs/assets/transform.py),

* as two dbt processes (``process``; the executable a run starts, ``cprof-dbt``), each one timed from its start
  to its exit;
* in one new Python process (``runner``), which imports dbt, parses the project once (partial parsing, from the
  same target folder), and invokes both builds with ``dbtRunner(manifest=...)``: its import, parse and two builds
  are timed inside it, and the process from its start to its exit.

Both variants write the same tables (a refresh of MONTH is idempotent), in the target folder
``DIR/bench_dbt_target`` (the pipeline's own is left alone) and with dbt's log under ``DIR/logs/bench_dbt``. A
first round of each warms the partial-parse file and the page cache and is not counted. The figures are the
medians of ``--repeat`` rounds, the variants alternating within each round; each build's node time is dbt's own
(the run results' ``elapsed_time``), so what a variant costs beside its nodes is its wall time less that.
The last line repeats the medians as key=value pairs. Nothing here is a published number: it measures, it
changes nothing in the pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from pipelines.defs.assets.transform import AFTER_PYTHON_MARTS, dbt_build_args, dbt_period_environment
from pipelines.defs.dbt import dbt_executable
from pipelines.defs.partitions import RefreshRange
from pipelines.engines import DBT_TARGET_ENV, dbt_target
from pipelines.lib.config import DBT_PROJECT_DIR, telemetry_off
from pipelines.lib.settings import Settings

# The two steps' selections, as dagster-dbt passes them to `dbt build` (its "Running dbt command" log line).
STEPS = {
    "dbt_models": ["--select", "fqn:*", "--exclude", AFTER_PYTHON_MARTS],
    "satisfaction_and_scorecard_models": ["--select", AFTER_PYTHON_MARTS],
}

# The in-process variant, run as `python -c RUNNER ARGS_JSON`: prints its timings as one JSON line.
RUNNER = """
import json, sys, time
started = time.perf_counter()
from dbt.cli.main import dbtRunner
imported = time.perf_counter()
common, builds = json.loads(sys.argv[1])
parsed = dbtRunner().invoke(["parse", *common])
if not parsed.success:
    sys.exit(f"dbt parse failed: {parsed.exception}")
runner = dbtRunner(manifest=parsed.result)
done = time.perf_counter()
times = {"import": imported - started, "parse": done - imported, "builds": [], "nodes": []}
for args in builds:
    t = time.perf_counter()
    result = runner.invoke([*args, *common])
    if not result.success:
        sys.exit(f"dbt {' '.join(args)} failed: {result.exception}")
    times["builds"].append(time.perf_counter() - t)
    times["nodes"].append(result.result.elapsed_time)
print(json.dumps(times))
"""


def environment(data_dir: Path, month: str) -> dict[str, str]:
    """dbt's environment in a run of MONTH (pipelines/defs/assets/transform.py: the refresh range and the
    warehouse's settings), with telemetry off."""
    settings = Settings(data_dir=data_dir)
    values = {
        **os.environ,
        **settings.dbt_environment(),
        DBT_TARGET_ENV: dbt_target("duckdb"),
        **dbt_period_environment(RefreshRange((month,))),
        "DBT_LOG_PATH": str(data_dir / "logs" / "bench_dbt"),
    }
    return {**values, **telemetry_off(values)}


def common_args(data_dir: Path) -> list[str]:
    return [
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(data_dir / "bench_dbt_target"),
        "--log-format",
        "json",
        "--quiet",
    ]


def node_seconds(data_dir: Path) -> float:
    """dbt's own time for its nodes in the last build (run_results.json)."""
    results = json.loads((data_dir / "bench_dbt_target" / "run_results.json").read_text())
    return float(results["elapsed_time"])


def timed_process(argv: list[str], env: dict[str, str], what: str) -> tuple[str, float]:
    """Run ``argv`` in the dbt project's folder: its standard output and its wall seconds; exit naming ``what``
    with its output when it fails."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=DBT_PROJECT_DIR, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout, time.perf_counter() - started


def run_processes(data_dir: Path, env: dict[str, str]) -> dict[str, float]:
    """The two builds as two dbt processes: each one's wall time and node time."""
    times: dict[str, float] = {}
    for step, selection in STEPS.items():
        _, times[f"{step}_wall"] = timed_process(
            [dbt_executable(), *dbt_build_args(), *selection, *common_args(data_dir)],
            env,
            f"dbt build for {step}",
        )
        times[f"{step}_nodes"] = node_seconds(data_dir)
    times["wall"] = sum(times[f"{step}_wall"] for step in STEPS)
    return times


def run_in_one_process(data_dir: Path, env: dict[str, str]) -> dict[str, float]:
    """The two builds by dbtRunner in one new process: its import, parse, each build, and its wall time."""
    builds = [[*dbt_build_args(), *selection] for selection in STEPS.values()]
    output, wall = timed_process(
        [sys.executable, "-c", RUNNER, json.dumps([common_args(data_dir), builds])], env, "dbtRunner"
    )
    inner = json.loads(output.strip().splitlines()[-1])
    times = {"wall": wall, "import": inner["import"], "parse": inner["parse"]}
    for step, seconds, nodes in zip(STEPS, inner["builds"], inner["nodes"], strict=True):
        times[f"{step}_build"] = seconds
        times[f"{step}_nodes"] = nodes
    return times


def median(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dbt_invocations", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="a data directory the pipeline has built"
    )
    parser.add_argument("--month", required=True, help="a published month (YYYY-MM) to rebuild as a refresh")
    parser.add_argument("--repeat", type=int, default=3, help="rounds counted (after one warm-up round)")
    args = parser.parse_args(argv)
    data_dir = args.data_dir.resolve()
    if not (data_dir / "warehouse.duckdb").exists():
        parser.error(
            f"{data_dir} has no warehouse.duckdb: build it first (make demo, or python -m bench --keep)"
        )
    env = environment(data_dir, args.month)
    processes: list[dict[str, float]] = []
    in_one: list[dict[str, float]] = []
    for round_ in range(args.repeat + 1):
        first = run_processes(data_dir, env)
        second = run_in_one_process(data_dir, env)
        label = "warm-up" if round_ == 0 else f"round {round_}"
        print(
            f"{label}: processes {first['wall']:.2f} s (nodes {first['dbt_models_nodes']:.2f} + "
            f"{first['satisfaction_and_scorecard_models_nodes']:.2f}); one process {second['wall']:.2f} s "
            f"(import {second['import']:.2f}, parse {second['parse']:.2f}, builds "
            f"{second['dbt_models_build']:.2f} + {second['satisfaction_and_scorecard_models_build']:.2f})",
            flush=True,
        )
        if round_:
            processes.append(first)
            in_one.append(second)
    p, o = median(processes), median(in_one)
    nodes_p = sum(p[f"{step}_nodes"] for step in STEPS)
    nodes_o = sum(o[f"{step}_nodes"] for step in STEPS)
    figures = {
        "processes_wall": p["wall"],
        "processes_nodes": nodes_p,
        "processes_beside_nodes": p["wall"] - nodes_p,
        "one_process_wall": o["wall"],
        "one_process_nodes": nodes_o,
        "one_process_beside_nodes": o["wall"] - nodes_o,
        "saved": p["wall"] - o["wall"],
    }
    print(" ".join(f"{key}={value:.2f}" for key, value in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
