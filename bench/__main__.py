"""Benchmark: the whole pipeline on a generated sample of a given size, then a one-month incremental refresh.

    python -m bench --lines 10000000

Generates 37 months (about --lines order lines in all), holds the last month back, runs the full build of
the first 36 (``cprof run``: ingest, input checks, dbt build, CLV, satisfaction and scorecard, publish), then
lands the 37th month and refreshes it alone. The floor is one DuckDB query that reads every landing file once
and counts its rows: the cost of touching the data at all. Prints a table of phases (wall seconds, peak memory
of the whole process tree, rows per second), writes it to bench/results/, and ends with one ``key=value`` line.
Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

RESULTS = Path(__file__).resolve().parent / "results"
LINES_PER_CUSTOMER_PROBE = 4000  # customers in the probe sample that sizes the run
START = "2023-01"  # 36 + 1 months to 2026-01: every month a closed partition


# --- memory of the process tree ------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(child) for child in handle.read().split()]
    except OSError:
        pass
    return found


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def tree_rss(root: int) -> int:
    """Resident memory of a process and all its descendants (dbt runs as a child process)."""
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += _rss_bytes(pid)
        stack += _children(pid)
    return total


class MemorySampler:
    """Samples the process tree's resident memory every 50 ms, with timestamps, in a background thread."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pid = os.getpid()
        while not self._stop.is_set():
            self.samples.append((time.time(), tree_rss(pid)))
            self._stop.wait(0.05)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float = 0.0, end: float = float("inf")) -> int:
        return max((rss for at, rss in self.samples if start <= at <= end), default=0)


# --- phases ----------------------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    seconds: float
    peak_bytes: int
    rows: int

    def row(self) -> str:
        rate = f"{self.rows / self.seconds:,.0f}" if self.seconds > 0 and self.rows else ""
        return f"| {self.name} | {self.seconds:,.1f} | {self.peak_bytes / 2**30:,.2f} | {rate} |"


@dataclass
class Report:
    lines: int
    rows: int
    phases: list[Phase] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)


def _timed(sampler: MemorySampler, name: str, rows: int, work):
    started_wall, started = time.time(), time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    return result, Phase(name, seconds, sampler.peak(started_wall, time.time()), rows)


def _run_phases(sampler: MemorySampler, summary, label: str, rows: int) -> list[Phase]:
    """The phases of one pipeline run, from its steps' start and end times."""
    from pipelines.run import PHASES

    phases = []
    for name, test in PHASES:
        windows = [w for key, w in summary.step_windows.items() if test(key)]
        seconds = summary.seconds.get(name, 0.0)
        peak = max((sampler.peak(start, end) for start, end in windows), default=0)
        phases.append(Phase(f"{label}: {name}", seconds, peak, rows))
    steps = sum(summary.seconds.get(name, 0.0) for name, _ in PHASES)
    phases.append(
        Phase(f"{label}: Dagster and dbt start-up, between steps", summary.seconds["run"] - steps, 0, 0)
    )
    return phases


def _data_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b"")) - 1


def floor_query(landing: Path) -> int:
    """One DuckDB query that reads every landing file once and counts the rows of all of them."""
    import duckdb

    from pipelines.landing.sources import MONTHLY

    globs = [str(landing / s.name / "*.csv") for s in MONTHLY] + [str(landing / "reference" / "*.csv")]
    parts = " union all ".join(
        "select count(*) as n from read_csv(?, header = true, all_varchar = true, union_by_name = true)"
        for _ in globs
    )
    with duckdb.connect() as con:
        return int(con.execute(f"select sum(n) from ({parts})", globs).fetchone()[0])


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import dagster
    import dbt.version
    import duckdb

    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GB memory; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, DuckDB {duckdb.__version__}, dbt-core {dbt.version.__version__}, "
        f"Dagster {dagster.__version__}"
    )


def customers_for(lines: int, months: int, seed: int, scratch: Path) -> int:
    """How many customers give about ``lines`` order lines over ``months``: measured on a probe sample."""
    from pipelines.sample.generate import GenerateConfig, generate

    probe = generate(
        GenerateConfig(customers=LINES_PER_CUSTOMER_PROBE, months=months, start=START, seed=seed), scratch
    )
    shutil.rmtree(scratch, ignore_errors=True)
    per_customer = probe.row_counts["order_lines"] / LINES_PER_CUSTOMER_PROBE
    return max(10, round(lines / per_customer))


def run(args: argparse.Namespace) -> Report:
    data = Path(args.data_dir or f"/tmp/cprof-bench-{args.lines}").resolve()
    # The code location's monthly partitions are fixed when it is imported (pipelines.defs.partitions), from these:
    # set them before anything imports it. They span the generated months, the one held back included.
    year, month = divmod(int(START[:4]) * 12 + int(START[5:]) - 1 + args.months, 12)
    os.environ["CPROF_DATA_DIR"] = str(data)
    os.environ["CPROF_FIRST_MONTH"] = START
    os.environ["CPROF_LAST_MONTH"] = f"{year:04d}-{month + 1:02d}"
    os.environ["CPROF_ENGINE"] = args.engine  # the runs' warehouse engine (pipelines/engines/)

    from pipelines.landing.sources import MONTHLY
    from pipelines.lib.config import Paths
    from pipelines.run import run_pipeline
    from pipelines.sample.generate import GenerateConfig, generate

    shutil.rmtree(data, ignore_errors=True)
    paths = Paths(data)
    say = (lambda message: None) if args.quiet else (lambda message: print(f"  {message}", flush=True))

    with MemorySampler() as sampler:
        customers = customers_for(args.lines, args.months + 1, args.seed, data / "probe")
        print(
            f"bench: {customers:,} customers, {args.months} months of history and one more month", flush=True
        )
        config = GenerateConfig(customers=customers, months=args.months + 1, start=START, seed=args.seed)
        generated, phase = _timed(sampler, "generate", 0, lambda: generate(config, paths.landing))
        lines = generated.row_counts["order_lines"]
        phase.rows = lines
        report = Report(lines=lines, rows=sum(generated.row_counts.values()))
        report.phases.append(phase)
        print(f"bench: generated {lines:,} order lines in {phase.seconds:.1f}s", flush=True)

        new_month = max(p.stem for p in (paths.landing / "order_lines").glob("*.csv"))
        assert new_month == os.environ["CPROF_LAST_MONTH"], (new_month, os.environ["CPROF_LAST_MONTH"])
        held = data / "held_back"
        for source in MONTHLY:
            (held / source.name).mkdir(parents=True, exist_ok=True)
            shutil.move(
                paths.landing / source.name / f"{new_month}.csv", held / source.name / f"{new_month}.csv"
            )

        counted, floor = _timed(
            sampler, "floor: read every landing file once", 0, lambda: floor_query(paths.landing)
        )
        floor.rows = counted
        report.phases.append(floor)
        print(f"bench: floor {floor.seconds:.1f}s ({counted:,} rows)", flush=True)

        summary, full = _timed(
            sampler, "full build (36 months)", counted, lambda: run_pipeline(paths, progress=say)
        )
        full.rows = counted
        report.phases += _run_phases(sampler, summary, "full", counted)
        report.phases.append(full)
        print(f"bench: full build {full.seconds:.1f}s", flush=True)

        for source in MONTHLY:
            shutil.move(
                held / source.name / f"{new_month}.csv", paths.landing / source.name / f"{new_month}.csv"
            )
        new_rows = sum(_data_lines(paths.landing / s.name / f"{new_month}.csv") for s in MONTHLY)
        summary, incremental = _timed(
            sampler,
            f"one-month refresh ({new_month})",
            new_rows,
            lambda: run_pipeline(paths, new_month, new_month, progress=say),
        )
        report.phases += _run_phases(sampler, summary, "refresh", new_rows)
        report.phases.append(incremental)
        print(f"bench: one-month refresh {incremental.seconds:.1f}s", flush=True)
        peak = sampler.peak()

    size = sum(f.stat().st_size for f in paths.landing.rglob("*.csv"))
    report.figures = {
        "lines": lines,
        "customers": customers,
        "months": args.months,
        "landing_gb": round(size / 2**30, 3),
        "floor_s": round(floor.seconds, 2),
        "full_build_s": round(full.seconds, 2),
        "incremental_s": round(incremental.seconds, 2),
        "full_build_over_floor": round(full.seconds / floor.seconds, 2),
        "incremental_over_full": round(incremental.seconds / full.seconds, 3),
        "peak_rss_gb": round(peak / 2**30, 2),
        "memory_limit": os.environ.get("CPROF_DUCKDB_MEMORY_LIMIT") or "4GB",
        "engine": args.engine,
    }
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
    return report


def render(report: Report, args: argparse.Namespace, started: datetime) -> str:
    figures = " ".join(f"{k}={v}" for k, v in report.figures.items())
    table = "\n".join(
        [
            "| phase | wall s | peak memory GB | rows/s |",
            "|---|---:|---:|---:|",
            *(p.row() for p in report.phases),
        ]
    )
    return (
        f"# Benchmark, {report.lines:,} order lines ({started:%Y-%m-%d %H:%M} UTC)\n\n"
        f"Machine: {machine()}\n\n"
        f"Command: `python -m bench --lines {args.lines} --months {args.months} --seed {args.seed}"
        f"{' --engine ' + args.engine if args.engine != 'duckdb' else ''}`; "
        f"DuckDB memory limit {report.figures['memory_limit']}.\n\n"
        f"Landing files: {report.figures['landing_gb']} GB, {report.rows:,} rows in all.\n\n"
        f"{table}\n\n"
        "Peak memory is the resident memory of the whole process tree (this process and dbt's), sampled every "
        "50 ms; rows/s counts every landing row of the run (order lines for generate).\n\n"
        f"```\n{figures}\n```\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--lines", type=int, default=1_000_000, help="order lines to generate (default 1,000,000)"
    )
    parser.add_argument("--months", type=int, default=36, help="months of history before the refreshed month")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", help="where to work (default /tmp/cprof-bench-<lines>; replaced)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory afterwards")
    parser.add_argument("--quiet", action="store_true", help="no per-step progress of the pipeline")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    parser.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default="duckdb",
        help="the warehouse engine of the runs (default duckdb); spark needs `make install-spark` and Java 17, "
        "and its memory figure includes Spark's JVM",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    started = datetime.now(UTC)
    report = run(args)
    text = render(report, args, started)
    print()
    print(text.split("\n\n", 2)[2])
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        engine = "" if args.engine == "duckdb" else f"-{args.engine}"
        out = RESULTS / f"{started:%Y-%m-%d-%H%M}-{args.lines}-lines{engine}.md"
        out.write_text(text)
        print(f"written: {out}")
    print(" ".join(f"{k}={v}" for k, v in report.figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
