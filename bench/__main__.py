"""Benchmark: the whole pipeline on a generated sample of a given size, then a one-month incremental refresh.

    python -m bench --lines 10000000

Generates 37 months (about --lines order lines in all), holds the last month back, runs the full build of
the first 36 (``cprof run``: ingest, input checks, dbt build, CLV, satisfaction and scorecard, scenario value,
publish), then lands the 37th month and refreshes it alone, then publishes a what-if (``cprof scenario``: the sample's
scenarios and one more, over the trailing 12 months; issue 30's goal is at most the one-month refresh's time).
The floor is one DuckDB query that reads every landing file once
and counts its rows: the cost of touching the data at all; the second floor one typed read of every landing
file into a table of a DuckDB file: the cost of landing it in a warehouse. Prints a table of phases (wall
seconds, peak memory of the whole process tree, rows per second) and the runs' fixed costs (dbt invocations
and nodes, Dagster events, processes started, time in the CLV model fits), writes them to bench/results/, and
ends with one ``key=value`` line. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import platform
import re
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

RESULTS = Path(__file__).resolve().parent / "results"
LINES_PER_CUSTOMER_PROBE = 4000  # customers in the probe sample that sizes the run
START = "2023-01"  # 36 + 1 months to 2026-01: every month a closed partition
END = "2026-01"  # the refreshed month of the history comparison (--history-months), whatever the history


def _shift(month: str, months: int) -> str:
    year, index = divmod(int(month[:4]) * 12 + int(month[5:]) - 1 + months, 12)
    return f"{year:04d}-{index + 1:02d}"


# --- memory of the process tree ------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:  # a thread that ended since the listing: its children are another thread's or gone
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


def _process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().split(b"\0")
    except OSError:
        return "?"
    args = [w.decode(errors="replace") for w in words if w]
    if not args:
        return "?"
    if not Path(args[0]).name.startswith("python"):
        return Path(args[0]).name
    # A Python process is named by its script or module (dbt, a worker), not by the interpreter.
    rest = iter(args[1:])
    for arg in rest:
        if arg in ("-m", "-c"):
            return f"python {arg} {next(rest, '')[:40]}"
        if not arg.startswith("-"):
            return Path(arg).name
    return "python"


def _tree_bytes(folder: Path) -> int:
    """The bytes of the files under ``folder`` (0 when it does not exist); files removed meanwhile count 0."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


KILL_AFTER = 5.0  # seconds between a stopped run's SIGTERM and SIGKILL


class MemorySampler:
    """Samples the process tree's resident memory every 50 ms, with timestamps, in a background thread, and
    remembers every descendant process it sees (when first seen, and its name): the process start-ups of a run.
    A child that lives less than the 50 ms between samples can be missed.

    With ``spill_dir`` it also samples, every second, the size of that folder (DuckDB's spill, its
    ``temp_directory``) and the free space of its disk; when the free space falls below ``min_free_bytes`` it stops
    the run: it terminates every descendant process started since its first sample (dbt's, a worker's: SIGTERM, then
    SIGKILL after KILL_AFTER seconds) and says why in ``stopped``, so the step
    fails as a killed one does and nothing is published, before DuckDB fails writing its spill to a full disk (a
    shared disk: everyone's writes would fail)."""

    def __init__(self, spill_dir: Path | None = None, min_free_bytes: int = 0) -> None:
        self.samples: list[tuple[float, int]] = []
        self.processes: dict[int, tuple[float, str]] = {}
        self.load: list[float] = []  # the machine's 1-minute load average at each sample
        self.spill: list[tuple[float, int]] = []  # (time, bytes under spill_dir), every second
        self.stopped: str | None = None  # why the sampler stopped the run, if it did
        self._terminated: dict[int, float] = {}  # the processes sent SIGTERM, and when
        # the descendants already there at the first sample: not the run's
        self._before: set[int] | None = None
        self.spill_dir, self._min_free = spill_dir, min_free_bytes  # spill_dir: settable, for the next run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pid, next_spill = os.getpid(), 0.0
        while not self._stop.is_set():
            now, total, stack, descendants = time.time(), 0, [pid], []
            while stack:
                current = stack.pop()
                total += _rss_bytes(current)
                children = _children(current)
                for child in children:
                    # Named again at each sighting: the first may come between fork and exec.
                    first_seen = self.processes.get(child, (now, ""))[0]
                    self.processes[child] = (first_seen, _process_name(child))
                stack += children
                descendants += children
            self.samples.append((now, total))
            self.load.append(os.getloadavg()[0])
            if self._before is None:
                self._before = set(descendants)
            spill_dir = self.spill_dir
            if spill_dir is not None and now >= next_spill:
                next_spill = now + 1.0
                self._watch_spill(spill_dir, now)
            if self.stopped is not None:
                self._terminate(set(descendants) - self._before, now)
            self._stop.wait(0.05)

    def _terminate(self, processes: set[int], now: float) -> None:
        """SIGTERM each of ``processes`` once, SIGKILL those still there KILL_AFTER seconds later (a process that
        ignores SIGTERM, as one started by a parent ignoring it does). At every sample: a step may start another
        process before it fails."""
        for pid in processes:
            first = self._terminated.setdefault(pid, now)
            if first == now:
                sent = signal.SIGTERM
            elif now - first > KILL_AFTER:
                sent = signal.SIGKILL
            else:
                continue
            try:
                os.kill(pid, sent)
            except OSError:
                pass

    def _watch_spill(self, spill_dir: Path, now: float) -> None:
        spill = _tree_bytes(spill_dir)
        self.spill.append((now, spill))
        disk = next((p for p in (spill_dir, *spill_dir.parents) if p.exists()), spill_dir.anchor)
        free = shutil.disk_usage(disk).free
        if free < self._min_free and self.stopped is None:
            self.stopped = (
                f"the disk of {spill_dir} had {free / 2**30:.1f} GB free (at least {self._min_free / 2**30:.1f} "
                f"asked), DuckDB's spill there {spill / 2**30:.1f} GB"
            )

    def spill_peak(self, start: float = 0.0, end: float = float("inf")) -> int:
        return max((size for at, size in self.spill if start <= at <= end), default=0)

    def started(self, start: float, end: float) -> list[str]:
        """The names of the processes first seen between ``start`` and ``end``."""
        return [name for at, name in self.processes.values() if start <= at <= end]

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
    spill_bytes: int = 0  # the peak of DuckDB's spill folder during the phase

    HEADER = "| phase | wall s | peak memory GB | peak spill GB | rows/s |\n|---|---:|---:|---:|---:|"

    def row(self) -> str:
        rate = f"{self.rows / self.seconds:,.0f}" if self.seconds > 0 and self.rows else ""
        return (
            f"| {self.name} | {self.seconds:,.1f} | {self.peak_bytes / 2**30:,.2f} | "
            f"{self.spill_bytes / 2**30:,.2f} | {rate} |"
        )


@dataclass
class Report:
    lines: int
    rows: int
    phases: list[Phase] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)
    costs: dict[str, FixedCosts] = field(default_factory=dict)
    stopped: str | None = None  # why the runs were stopped (Stopped), if they were


def _timed(sampler: MemorySampler, name: str, rows: int, work):
    started_wall, started = time.time(), time.perf_counter()
    try:
        result = work()
    except Exception as error:
        if sampler.stopped is None:
            raise
        raise Stopped(
            f"{name}: stopped after {time.perf_counter() - started:,.1f} s: {sampler.stopped}"
        ) from error
    seconds, ended = time.perf_counter() - started, time.time()
    return result, Phase(
        name, seconds, sampler.peak(started_wall, ended), rows, sampler.spill_peak(started_wall, ended)
    )


class Stopped(Exception):
    """The sampler stopped a run (its disk was filling): the phase, when, and why."""


def _run_phases(sampler: MemorySampler, summary, label: str, rows: int) -> list[Phase]:
    """The phases of one pipeline run, from its steps' start and end times."""
    from pipelines.run_result import PHASES

    phases = []
    for name, test in PHASES:
        windows = [w for key, w in summary.step_windows.items() if test(key)]
        seconds = summary.seconds.get(name, 0.0)
        peak = max((sampler.peak(start, end) for start, end in windows), default=0)
        spill = max((sampler.spill_peak(start, end) for start, end in windows), default=0)
        phases.append(Phase(f"{label}: {name}", seconds, peak, rows, spill))
    steps = sum(summary.seconds.get(name, 0.0) for name, _ in PHASES)
    phases.append(
        Phase(f"{label}: Dagster and dbt start-up, between steps", summary.seconds["run"] - steps, 0, 0)
    )
    return phases


_DBT_FINISHED = re.compile(r"Finished running (.+?) in \d+ hours?")


def dbt_nodes(log: Path) -> tuple[int, dict[str, int]]:
    """From a run's dbt log: how many dbt invocations, and the nodes they ran by kind (models, tests, seeds,
    exposures; from dbt's own "Finished running ..." lines)."""
    invocations, kinds = 0, Counter()
    text = log.read_text(errors="replace") if log.exists() else ""
    for match in _DBT_FINISHED.finditer(re.sub(r"\x1b\[[0-9;]*m", "", text)):
        invocations += 1
        for count, kind in re.findall(r"(\d+) ([a-z ]+?)(?:,|$)", match.group(1)):
            kinds[kind.removesuffix("s")] += int(count)
    return invocations, dict(kinds)


_DBT_NODE_DONE = re.compile(
    r"^\d+ of \d+ (?:OK created sql \w+ model|PASS|WARN) (\S+) .*? in ([0-9.]+)s\]$", re.MULTILINE
)


def scenario_node_seconds(log: Path) -> tuple[int, float, float]:
    """From a run's dbt log: the nodes of the what-if scenarios (models and tests whose name says scenario),
    their seconds and the seconds of every node, as dbt reports each node (node-seconds: with two dbt threads
    they overlap, so the share, not the sum, says what the scenarios cost of the dbt build)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text(errors="replace")) if log.exists() else ""
    done = [(name, float(seconds)) for name, seconds in _DBT_NODE_DONE.findall(text)]
    scenario = [seconds for name, seconds in done if "scenario" in name]
    return len(scenario), sum(scenario), sum(seconds for _, seconds in done)


def dagster_events(paths, run_id: str | None) -> Counter:
    """The Dagster events of a run (the instance's event log: steps, materializations, checks, logs), by type."""
    if run_id is None:
        return Counter()
    from pipelines.run import dagster_instance

    with dagster_instance(paths) as instance:
        return Counter(
            record.dagster_event.event_type.name if record.dagster_event else "log message"
            for record in instance.all_logs(run_id)
        )


def clv_fit_seconds(paths, run_id: str | None) -> float | None:
    """The customer_clv asset's time in its model fits, from its materialization's ``fit_seconds``."""
    if run_id is None:
        return None
    from dagster import AssetKey, DagsterEventType

    from pipelines.run import dagster_instance

    with dagster_instance(paths) as instance:
        for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
            materialization = record.dagster_event.step_materialization_data.materialization
            if materialization.asset_key == AssetKey(["marts", "customer_clv"]):
                value = materialization.metadata.get("fit_seconds")
                return None if value is None else float(value.value)
    return None


@dataclass
class FixedCosts:
    """What a run pays for besides the data: dbt invocations and nodes, Dagster events, process start-ups."""

    dbt_invocations: int
    dbt_nodes: dict[str, int]
    events: Counter
    processes: list[str]
    clv_fit_s: float | None
    scenario_nodes: tuple[int, float, float] = (0, 0.0, 0.0)

    def rows(self, label: str) -> list[str]:
        nodes = ", ".join(f"{n} {kind}s" for kind, n in sorted(self.dbt_nodes.items()))
        top = ", ".join(f"{n} {kind}" for kind, n in self.events.most_common(4))
        started = ", ".join(f"{n} {name}" for name, n in Counter(self.processes).most_common())
        return [
            f"| {label}: dbt | {self.dbt_invocations} invocations, {sum(self.dbt_nodes.values())} nodes ({nodes}) |",
            f"| {label}: Dagster events | {sum(self.events.values())} ({top}) |",
            self._scenario_row(label),
            f"| {label}: processes started | {len(self.processes)} ({started or 'none'}) |",
            f"| {label}: CLV model fits | "
            + ("not reported" if self.clv_fit_s is None else f"{self.clv_fit_s:.2f} s")
            + " |",
        ]

    def _scenario_row(self, label: str) -> str:
        count, seconds, every = self.scenario_nodes
        share = f"{100 * seconds / every:.0f} %" if every else "n/a"
        return (
            f"| {label}: dbt nodes of the scenarios | {count} nodes, {seconds:.1f} of {every:.1f} node-seconds "
            f"({share} of the dbt build) |"
        )


def fixed_costs(sampler: MemorySampler, paths, summary, start: float, end: float) -> FixedCosts:
    invocations, nodes = dbt_nodes(paths.logs / "dbt-build.log")
    return FixedCosts(
        invocations,
        nodes,
        dagster_events(paths, summary.run_id),
        sampler.started(start, end),
        clv_fit_seconds(paths, summary.run_id),
        scenario_node_seconds(paths.logs / "dbt-build.log"),
    )


def _data_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b"")) - 1


def floor_query(landing: Path) -> int:
    """One DuckDB query that reads every landing file once and counts the rows of all of them. The files of a
    folder that share their header line are read by one ``read_csv`` of their list, with that header's columns
    given as text and the CSV dialect stated, so DuckDB sniffs nothing. Until 2026-11-26 the query read each
    folder by a glob with ``union_by_name`` and let DuckDB sniff every file: 5.1-5.5 s at 10M lines (6.2 s at
    1M), against 2.2-2.5 s (1.5 s) without ``union_by_name`` and 1.0 s (0.16-0.25 s) as now, for the same
    reads; the floor, and so every ratio to it, was off by that much."""
    import duckdb

    from pipelines.engines.sql import literal

    groups: dict[tuple[str, bytes], list[str]] = {}
    for path in sorted(landing.rglob("*.csv")):
        with path.open("rb") as handle:
            header = handle.readline()
        groups.setdefault((path.parent.name, header.strip()), []).append(str(path))
    parts = []
    for _, header in groups:
        columns = ", ".join(f"{literal(name)}: 'VARCHAR'" for name in next(csv.reader([header.decode()])))
        parts.append(
            "select count(*) as n from read_csv(?, header = true, auto_detect = false, delim = ',', "
            f"quote = '\"', escape = '\"', columns = {{{columns}}})"
        )
    with duckdb.connect() as con:
        query = f"select sum(n) from ({' union all '.join(parts)})"
        return int(con.execute(query, list(groups.values())).fetchone()[0])


def typed_floor(landing: Path, database: Path) -> int:
    """The second floor: one typed read of every landing file into a table of a DuckDB file, one table per
    source (its declared columns and types, DuckDB's own casts, no exact-parsing checks, no validation):
    the cost of landing the data in a warehouse at all. Returns the rows written."""
    import duckdb

    from pipelines.engines.sql import ident, literal
    from pipelines.landing.sources import SOURCES

    database.unlink(missing_ok=True)
    rows = 0
    with duckdb.connect(str(database)) as con:
        for source in SOURCES:
            pattern = f"{source.name}/*.csv" if source.kind == "monthly" else f"reference/{source.name}.csv"
            columns = ", ".join(f"{literal(name)}: {literal(kind)}" for name, kind in source.columns.items())
            con.execute(
                f"create table {ident(source.name)} as select * from read_csv(?, header = true, "
                f"auto_detect = false, columns = {{{columns}}})",
                [str(landing / pattern)],
            )
            rows += con.execute(f"select count(*) from {ident(source.name)}").fetchone()[0]
    database.unlink(missing_ok=True)
    return int(rows)


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


def customers_for(lines: int, months: int, seed: int, scratch: Path, start: str = START) -> int:
    """How many customers give about ``lines`` order lines over ``months``: measured on a probe sample."""
    from pipelines.sample.generate import GenerateConfig, generate

    probe = generate(
        GenerateConfig(customers=LINES_PER_CUSTOMER_PROBE, months=months, start=start, seed=seed), scratch
    )
    shutil.rmtree(scratch, ignore_errors=True)
    per_customer = probe.row_counts["order_lines"] / LINES_PER_CUSTOMER_PROBE
    return max(10, round(lines / per_customer))


def run(args: argparse.Namespace) -> Report:
    data = Path(args.data_dir or f"/tmp/cprof-bench-{args.lines}").resolve()
    year, month = divmod(int(START[:4]) * 12 + int(START[5:]) - 1 + args.months, 12)

    from pipelines.landing.sources import MONTHLY
    from pipelines.lib.settings import Settings
    from pipelines.run import run_pipeline, run_scenarios
    from pipelines.sample.generate import GenerateConfig, generate

    shutil.rmtree(data, ignore_errors=True)
    # Read once, as cprof does, with the bench's own: the runs get them as an argument. The partitions span the
    # generated months, the one held back included; the runs' warehouse engine is the one asked for
    # (pipelines/engines/); the generator writes whole files, so the runs need not wait for just-written ones
    # to stay unchanged (a wait of up to CPROF_LANDING_QUIET_SECONDS would count in the build's time).
    settings = dataclasses.replace(
        Settings.from_environ(os.environ),
        data_dir=data,
        first_month=START,
        last_month=f"{year:04d}-{month + 1:02d}",
        engine=args.engine,
        landing_quiet_seconds=0.0,
    )
    paths = settings.paths
    say = (lambda message: None) if args.quiet else (lambda message: print(f"  {message}", flush=True))

    with MemorySampler(paths.duckdb_spill, int(args.min_free_gb * 2**30)) as sampler:
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
        assert new_month == settings.last_month, (new_month, settings.last_month)
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
        typed_rows, typed = _timed(
            sampler,
            "second floor: one typed read of every landing file into a table",
            0,
            lambda: typed_floor(paths.landing, data / "typed_floor.duckdb"),
        )
        typed.rows = typed_rows
        report.phases.append(typed)
        print(f"bench: second floor {typed.seconds:.1f}s ({typed_rows:,} rows)", flush=True)

        try:
            started = time.time()
            summary, full = _timed(
                sampler,
                f"full build ({args.months} months)",
                counted,
                lambda: run_pipeline(settings, progress=say),
            )
            full.rows = counted
            report.phases += _run_phases(sampler, summary, "full", counted)
            report.phases.append(full)
            report.costs["full"] = fixed_costs(sampler, paths, summary, started, time.time())
            print(f"bench: full build {full.seconds:.1f}s", flush=True)

            for source in MONTHLY:
                shutil.move(
                    held / source.name / f"{new_month}.csv", paths.landing / source.name / f"{new_month}.csv"
                )
            new_rows = sum(_data_lines(paths.landing / s.name / f"{new_month}.csv") for s in MONTHLY)
            started = time.time()
            summary, incremental = _timed(
                sampler,
                f"one-month refresh ({new_month})",
                new_rows,
                lambda: run_pipeline(settings, new_month, new_month, progress=say),
            )
            report.phases += _run_phases(sampler, summary, "refresh", new_rows)
            report.phases.append(incremental)
            report.costs["refresh"] = fixed_costs(sampler, paths, summary, started, time.time())
            print(f"bench: one-month refresh {incremental.seconds:.1f}s", flush=True)

            # What if: the sample's scenarios and one more (so the file is new and its suite runs), published beside
            # the release by `cprof scenario`'s function, over the release's trailing 12 months.
            what_if = data / "what_if.csv"
            what_if.write_bytes(
                (paths.landing / "reference" / "scenarios.csv").read_bytes()
                + b"cheaper_billing,Billing a tenth cheaper,ledger_cost,billing,multiply,0.9,,\n"
            )
            scenarios = len({line.split(",", 1)[0] for line in what_if.read_text().splitlines()[1:] if line})
            started = time.time()
            summary, scenario = _timed(
                sampler,
                f"scenario run ({scenarios} scenarios, trailing 12 months)",
                0,
                lambda: run_scenarios(settings, what_if, progress=say),
            )
            report.phases += _run_phases(sampler, summary, "scenario", 0)
            report.phases.append(scenario)
            report.costs["scenario"] = fixed_costs(sampler, paths, summary, started, time.time())
            print(f"bench: scenario run {scenario.seconds:.1f}s", flush=True)
        except Stopped as stop:
            report.stopped = str(stop)
            print(f"bench: {stop}", flush=True)
        peak = sampler.peak()

    size = sum(f.stat().st_size for f in paths.landing.rglob("*.csv"))
    report.figures = {
        "lines": lines,
        "customers": customers,
        "months": args.months,
        "landing_gb": round(size / 2**30, 3),
        "floor_s": round(floor.seconds, 2),
        "second_floor_s": round(typed.seconds, 2),
        "peak_rss_gb": round(peak / 2**30, 2),
        "peak_spill_gb": round(sampler.spill_peak() / 2**30, 2),
        "load_average": round(sum(sampler.load) / max(len(sampler.load), 1), 1),
        "memory_limit": settings.duckdb_memory_limit,
        "engine": args.engine,
    }
    if report.stopped is not None:
        report.figures["stopped"] = 1
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)
        return report
    report.figures |= {
        "full_build_s": round(full.seconds, 2),
        "incremental_s": round(incremental.seconds, 2),
        "full_build_over_floor": round(full.seconds / floor.seconds, 2),
        "full_build_over_second_floor": round(full.seconds / typed.seconds, 2),
        "incremental_over_full": round(incremental.seconds / full.seconds, 3),
        "scenario_s": round(scenario.seconds, 2),
        "scenario_over_incremental": round(scenario.seconds / incremental.seconds, 3),
        "clv_fit_s": report.costs["full"].clv_fit_s,
        "dbt_nodes_full": sum(report.costs["full"].dbt_nodes.values()),
        "dbt_nodes_refresh": sum(report.costs["refresh"].dbt_nodes.values()),
        "dagster_events_full": sum(report.costs["full"].events.values()),
        "dagster_events_refresh": sum(report.costs["refresh"].events.values()),
        "processes_full": len(report.costs["full"].processes),
        "processes_refresh": len(report.costs["refresh"].processes),
    }
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
    return report


@dataclass
class HistoryRun:
    months: int
    customers: int
    lines: int
    full_s: float
    refresh_rows: int
    refresh_s: float
    refresh_phases: list[Phase]


def history_comparison(args: argparse.Namespace) -> tuple[list[HistoryRun], dict[str, object]]:
    """The same month (``END``) refreshed after ``args.months`` and after ``args.history_months`` months of
    history of the same monthly volume: each sample's customers are sized for ``args.lines`` order lines per
    ``args.months + 1`` months, so the longer history holds proportionally more lines. Each history is generated,
    built whole with its last month held back, and then that month is refreshed alone."""
    from pipelines.landing.sources import MONTHLY
    from pipelines.lib.settings import Settings
    from pipelines.run import run_pipeline
    from pipelines.sample.generate import GenerateConfig, generate

    say = (lambda message: None) if args.quiet else (lambda message: print(f"  {message}", flush=True))
    runs = []
    with MemorySampler(min_free_bytes=int(args.min_free_gb * 2**30)) as sampler:
        for months in (args.months, args.history_months):
            start = _shift(END, -months)
            data = Path(args.data_dir or f"/tmp/cprof-bench-history-{months}").resolve()
            shutil.rmtree(data, ignore_errors=True)
            settings = dataclasses.replace(
                Settings.from_environ(os.environ),
                data_dir=data,
                first_month=start,
                last_month=END,
                engine=args.engine,
                landing_quiet_seconds=0.0,
            )
            paths = settings.paths
            sampler.spill_dir = paths.duckdb_spill
            target = round(args.lines * (months + 1) / (args.months + 1))
            customers = customers_for(target, months + 1, args.seed, data / "probe", start)
            config = GenerateConfig(customers=customers, months=months + 1, start=start, seed=args.seed)
            generated = generate(config, paths.landing)
            held = data / "held_back"
            for source in MONTHLY:
                (held / source.name).mkdir(parents=True, exist_ok=True)
                shutil.move(paths.landing / source.name / f"{END}.csv", held / source.name / f"{END}.csv")
            print(f"bench: {months} months, {generated.row_counts['order_lines']:,} order lines", flush=True)
            _, full = _timed(
                sampler, "full build", 0, lambda settings=settings: run_pipeline(settings, progress=say)
            )
            for source in MONTHLY:
                shutil.move(held / source.name / f"{END}.csv", paths.landing / source.name / f"{END}.csv")
            rows = sum(_data_lines(paths.landing / s.name / f"{END}.csv") for s in MONTHLY)
            summary, refresh = _timed(
                sampler,
                f"one-month refresh ({END})",
                rows,
                lambda settings=settings: run_pipeline(settings, END, END, progress=say),
            )
            print(
                f"bench: {months} months: full {full.seconds:.1f}s, refresh {refresh.seconds:.1f}s",
                flush=True,
            )
            runs.append(
                HistoryRun(
                    months,
                    customers,
                    generated.row_counts["order_lines"],
                    full.seconds,
                    rows,
                    refresh.seconds,
                    _run_phases(sampler, summary, f"refresh after {months} months", rows),
                )
            )
            if not args.keep:
                shutil.rmtree(data, ignore_errors=True)
        load = round(sum(sampler.load) / max(len(sampler.load), 1), 1)
    short, long = runs
    figures = {
        "lines": args.lines,
        f"refresh_{short.months}_s": round(short.refresh_s, 2),
        f"refresh_{long.months}_s": round(long.refresh_s, 2),
        "load_average": load,
        "engine": args.engine,
        f"refresh_{long.months}_over_{short.months}": round(long.refresh_s / short.refresh_s, 3),
    }
    return runs, figures


def render_history(runs: list[HistoryRun], figures: dict, args: argparse.Namespace, started: datetime) -> str:
    short, long = runs
    phases = "\n".join(p.row() for run in runs for p in run.refresh_phases)
    return (
        f"# History comparison: {END} refreshed after {short.months} and {long.months} months "
        f"({started:%Y-%m-%d %H:%M} UTC)\n\n"
        f"Machine: {machine()}\n\n"
        f"Command: `python -m bench --lines {args.lines} --months {args.months} --history-months "
        f"{args.history_months} --seed {args.seed}"
        f"{' --engine ' + args.engine if args.engine != 'duckdb' else ''}`. Mean load average "
        f"{figures['load_average']} ({os.cpu_count()} cores; about 1 is this benchmark alone).\n\n"
        "| history | customers | order lines | full build s | refreshed month's landing rows | refresh s |\n"
        "|---:|---:|---:|---:|---:|---:|\n"
        + "\n".join(
            f"| {r.months} months | {r.customers:,} | {r.lines:,} | {r.full_s:.1f} | {r.refresh_rows:,} | "
            f"{r.refresh_s:.1f} |"
            for r in runs
        )
        + f"\n\nThe refreshes' phases:\n\n{Phase.HEADER}\n"
        + phases
        + f"\n\n```\n{' '.join(f'{k}={v}' for k, v in figures.items())}\n```\n"
    )


def render(report: Report, args: argparse.Namespace, started: datetime) -> str:
    figures = " ".join(f"{k}={v}" for k, v in report.figures.items())
    table = "\n".join(
        [
            Phase.HEADER,
            *(p.row() for p in report.phases),
        ]
    )
    return (
        f"# Benchmark, {report.lines:,} order lines ({started:%Y-%m-%d %H:%M} UTC)\n\n"
        f"Machine: {machine()}\n\n"
        f"Command: `python -m bench --lines {args.lines} --months {args.months} --seed {args.seed}"
        f"{' --engine ' + args.engine if args.engine != 'duckdb' else ''}`; "
        f"DuckDB memory limit {report.figures['memory_limit']}.\n\n"
        f"Landing files: {report.figures['landing_gb']} GB, {report.rows:,} rows in all. Mean load average of "
        f"the machine during the benchmark: {report.figures['load_average']} ({os.cpu_count()} cores; about 1 "
        "is this benchmark alone).\n\n"
        + (f"**Stopped:** {report.stopped}. Nothing after it was measured.\n\n" if report.stopped else "")
        + f"{table}\n\n"
        + (
            "Fixed costs of the runs:\n\n| run: what | count |\n|---|---|\n"
            + "\n".join(row for label, costs in report.costs.items() for row in costs.rows(label))
            + "\n\n"
            if report.costs
            else ""
        )
        + "Peak memory is the resident memory of the whole process tree (this process and dbt's), sampled every "
        "50 ms; peak spill the size of DuckDB's spill folder (`<data>/duckdb_tmp`), sampled every second; rows/s "
        "counts every landing row of the run (order lines for generate).\n\n"
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
    parser.add_argument(
        "--history-months",
        type=int,
        help=f"instead of the benchmark: refresh the same month ({END}) after --months and after this many months "
        "of history of the same monthly volume (each built whole first), and compare the two refreshes; the last "
        "line carries refresh_<this>_over_<months>=",
    )
    parser.add_argument(
        "--min-free-gb",
        type=float,
        default=10.0,
        help="stop the runs when the disk of DuckDB's spill folder (<data-dir>/duckdb_tmp) has less free space "
        "than this (default 10): the runs fail as a killed step does, nothing is published, and the result says "
        "where it stopped",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    started = datetime.now(UTC)
    if args.history_months is not None:
        if args.history_months <= args.months:
            parser.error("--history-months must be more than --months")
        try:
            runs, figures = history_comparison(args)
        except Stopped as stop:
            print(f"bench: {stop}", file=sys.stderr)
            return 1
        text = render_history(runs, figures, args, started)
        print()
        print(text.split("\n\n", 2)[2])
        if not args.no_save:
            RESULTS.mkdir(exist_ok=True)
            out = (
                RESULTS
                / f"{started:%Y-%m-%d-%H%M}-{args.lines}-lines-history-{args.months}-{args.history_months}.md"
            )
            out.write_text(text)
            print(f"written: {out}")
        print(" ".join(f"{k}={v}" for k, v in figures.items()))
        return 0
    report = run(args)
    text = render(report, args, started)
    print()
    print(text.split("\n\n", 2)[2])
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        engine = "" if args.engine == "duckdb" else f"-{args.engine}"
        stopped = "-stopped" if report.stopped else ""
        out = RESULTS / f"{started:%Y-%m-%d-%H%M}-{args.lines}-lines{engine}{stopped}.md"
        out.write_text(text)
        print(f"written: {out}")
    print(" ".join(f"{k}={v}" for k, v in report.figures.items()))
    return 1 if report.stopped else 0


if __name__ == "__main__":
    sys.exit(main())
