"""``cprof``: generate sample data and run the customer-profitability pipeline.

Exit codes: 0 success, 1 a pipeline step or an input failed (the message names which), 2 bad arguments or a bad
setting (a ``CPROF_`` variable; the message names it).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

from pipelines.lib.config import DATA_DIR_ENV
from pipelines.lib.settings import ENGINES, SettingError, Settings
from pipelines.runtime.instance import plan_ranges_in_one_event

MONTH_HELP = "YYYY-MM"


def _month(value: str) -> str:
    from pipelines.landing.inventory import month_start

    try:
        month_start(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return value


def _row_drop(value: str) -> str:
    """MONTH or MONTH:SOURCE (a monthly source of the landing spec)."""
    from pipelines.landing.sources import MONTHLY

    month, _, source = value.partition(":")
    _month(month)
    names = [s.name for s in MONTHLY]
    if source and source not in names:
        raise argparse.ArgumentTypeError(f"{source!r} is not a monthly source ({', '.join(names)})")
    return value


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value}")
    return number


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def cmd_generate(args: argparse.Namespace) -> int:
    from pipelines.landing.history import record_landing_history
    from pipelines.sample.generate import GenerateConfig, generate

    paths = args.settings.paths
    config = GenerateConfig(customers=args.customers, months=args.months, start=args.start, seed=args.seed)
    _say(
        f"generate: {config.customers:,} customers, {config.months} months from {config.start}, seed {config.seed}"
    )
    result = generate(config, paths.landing, progress=lambda m: _say(f"generate: {m}"))
    # the sample's months: the span of the Dagster partitions
    record_landing_history(paths.data_dir, allow_external_links=args.settings.allow_external_links)
    counts = ", ".join(f"{name} {count:,}" for name, count in result.row_counts.items())
    _say(f"generate: wrote {paths.landing} in {result.seconds:.1f}s ({counts})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines.run import run_pipeline
    from pipelines.summary import print_checksums, print_summary

    paths = args.settings.paths
    started = time.perf_counter()
    live = args.progress == "live" or (args.progress == "auto" and sys.stdout.isatty())
    summary = run_pipeline(
        args.settings,
        args.first,
        args.last,
        progress=_say,
        full_refresh=args.full_refresh,
        wait_seconds=args.wait,
        live=live,
        accept_row_drop=args.accept_row_drop,
    )
    _say(f"{args.command}: finished in {time.perf_counter() - started:.1f}s")
    if args.command == "backfill":
        print_checksums(paths)
    else:
        print_summary(paths, summary, args.settings.engine)
    return 0


def cmd_scenario(args: argparse.Namespace) -> int:
    from pipelines.run import run_scenarios
    from pipelines.summary import print_scenarios

    started = time.perf_counter()
    live = args.progress == "live" or (args.progress == "auto" and sys.stdout.isatty())
    run_scenarios(args.settings, args.file, progress=_say, wait_seconds=args.wait, live=live)
    _say(f"scenario: finished in {time.perf_counter() - started:.1f}s")
    print_scenarios(args.settings.paths)
    return 0


def _seconds(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more seconds, got {value}")
    return number


def _run_options(command: argparse.ArgumentParser, settings: Settings) -> None:
    """Options of the commands that write the data directory (run, backfill)."""
    command.add_argument("--full-refresh", action="store_true", help=FULL_REFRESH_HELP)
    command.add_argument(
        "--wait",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="when another process writes the data directory (another cprof, a Dagster run), wait up to SECONDS "
        "for it to finish, saying what it waits for; by default fail at once, naming that process (pid, "
        "command, start time)",
    )
    command.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help=f"the warehouse engine (default: ${Settings.variable('engine')}, else duckdb; now "
        f"{settings.engine}). duckdb: one file, <data>/warehouse.duckdb. spark (needs "
        "`make install-spark` and Java 17): one Spark session for the run, local[2] with its metastore and "
        "Parquet tables under <data>/spark/, and a Thrift server in it on a free local port where dbt builds "
        "the models (dbt target spark_thrift); $CPROF_SPARK_MASTER and $CPROF_SPARK_THRIFT=host:port use a "
        "cluster's master and Thrift server instead (untested). The publication is the same DuckDB file",
    )
    command.add_argument(
        "--accept-row-drop",
        type=_row_drop,
        action="append",
        default=[],
        metavar="YYYY-MM[:SOURCE]",
        help="confirm that a month reloaded with far fewer rows than its last promoted load (more than "
        "CPROF_MAX_ROW_DROP fewer, default 30%%) really has them, for one source (2025-12:order_lines) or all of "
        "the month's; without it such a load fails, as a file cut short or still being written would. Repeatable",
    )
    command.add_argument(
        "--progress",
        choices=("auto", "live", "steps"),
        default="auto",
        help="live: a line per finished step plus how long steps go (months ingested, input checks, dbt nodes "
        "built and tested, the Python marts' lines); steps: a line per finished step only; auto (default): "
        "live on a terminal, steps otherwise (logs)",
    )


FULL_REFRESH_HELP = (
    "rebuild and test every table whole rather than the periods the range reaches, and reload and validate "
    "every reference snapshot even if unchanged (after a change of the reference configuration or the "
    "customer snapshot's attributes, which restate history)"
)


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    """cprof's arguments; ``settings`` (the environment's) give the defaults its help shows."""
    parser = argparse.ArgumentParser(
        prog="cprof",
        description="Customer profitability pipeline: landing files -> checked warehouse (DuckDB, or Spark with "
        "--engine spark) -> dbt models and CLV -> published marts and report. "
        f"Everything is written under the data directory (${DATA_DIR_ENV}, default data/ in the project).",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"data directory (default: ${DATA_DIR_ENV}, else data/ under the project; now {settings.data_dir})",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser(
        "generate",
        help="write a deterministic sample landing zone",
        description="Write sample landing files (landing/<source>/<YYYY-MM>.csv) and the reference snapshots and "
        "configuration (landing/reference/*.csv). Replaces the landing zone; the same seed gives the same bytes.",
    )
    generate.add_argument(
        "--customers", type=_positive, default=2000, help="number of customers (default 2000)"
    )
    generate.add_argument("--months", type=_positive, default=24, help="number of months (default 24)")
    generate.add_argument(
        "--start", type=_month, default="2024-01", help=f"first month, {MONTH_HELP} (default 2024-01)"
    )
    generate.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    generate.set_defaults(func=cmd_generate)

    run = commands.add_parser(
        "run",
        help="ingest, check, transform, test and publish every month in landing (or a range)",
        description="Load the reference snapshots and every month found in the landing zone from the start of "
        "history (CPROF_FIRST_MONTH, else the first month there; or --from/--to) "
        "into the working warehouse, validating each file with its Great Expectations suite before it is "
        "promoted; build and test the dbt models (conservation to the cent included); score CLV, satisfaction "
        "and the scorecard; then publish the marts atomically to published/current and write the HTML report. "
        "Nothing is published unless every check passes. Fails, naming the file, line, column, rule or test, "
        "and leaves the previous publication untouched. Each step is printed as it finishes, with the time "
        "since the run started. One writer at a time: the run holds <data>/.cprof.lock, and first marks "
        "failed any earlier run whose process is gone (killed). The run is recorded in the Dagster instance "
        "under the data directory as a run of the `pipelines` code location, as if launched from the UI. "
        "Months that a failed or killed run promoted to raw without publishing are refreshed too: the range "
        "widens to them, and the run says so. Returns of lines ordered before the first month loaded are "
        "pre-history returns: published in marts.prehistory_returns and named in the summary, not errors.",
    )
    run.add_argument("--from", dest="first", type=_month, metavar=MONTH_HELP, help="first month to process")
    run.add_argument("--to", dest="last", type=_month, metavar=MONTH_HELP, help="last month to process")
    _run_options(run, settings)
    run.set_defaults(func=cmd_run)

    backfill = commands.add_parser(
        "backfill",
        help="refresh a range of months (history, corrections) and publish",
        description="Refresh the months --from to --to in one Dagster run of the refresh job over that partition "
        "range, as a backfill launched from the Dagster UI does: load, check and promote each month's files in "
        "order, rebuild the incremental dbt models for the range and every later period a trailing view "
        "reaches, rescore CLV from --from on, and publish. Months outside the range keep their rows. "
        "Re-running a range publishes identical tables: the checksums printed (from marts.publish_log) are "
        "equal. A range before the months loaded so far is a backward backfill (land the older months, or move "
        "CPROF_FIRST_MONTH earlier): it also restates the months of the pre-history returns whose lines it "
        "brings, and publishes what loading every month in order would. "
        "Like run, it prints each step as it finishes, holds <data>/.cprof.lock and first marks failed any run "
        "whose process is gone.",
    )
    backfill.add_argument(
        "--from", dest="first", type=_month, metavar=MONTH_HELP, required=True, help="first month"
    )
    backfill.add_argument(
        "--to", dest="last", type=_month, metavar=MONTH_HELP, required=True, help="last month"
    )
    _run_options(backfill, settings)
    backfill.set_defaults(func=cmd_run)

    scenario = commands.add_parser(
        "scenario",
        help="publish the what-if scenarios of the scenarios file beside the release, its actual marts unchanged",
        description="Check the scenarios file (landing/reference/scenarios.csv; docs/DESIGN.md, Scenarios) with its "
        "Great Expectations suite, rebuild and test the scenario marts (scenario_customer_profitability, "
        "scenario_activity_costs, scenario_cost_center_capacity, scenario_whale_curve, scenario_comparison, "
        "scenario_summary, dim_scenarios) against the marts as published, and publish them with the release: "
        "one run of the Dagster job `scenarios` for the release's last month; every other published table keeps "
        "its rows and checksum. Refuses while months await publication (run `cprof run` first: every run "
        "rebuilds and publishes the scenarios too). Prints each scenario against actual. Like run, it holds "
        "<data>/.cprof.lock.",
    )
    scenario.add_argument(
        "--file",
        type=Path,
        default=None,
        metavar="PATH",
        help="a scenarios file (.csv or .parquet) to use: first copied into the landing zone as "
        "landing/reference/scenarios.<suffix>, replacing the one there, so the next refresh keeps it; if the run "
        "fails (the file fails its checks, a scenario breaks the costing), the landing zone's file is put back as "
        "it was (default: the landing zone's)",
    )
    scenario.add_argument(
        "--wait",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="when another process writes the data directory, wait up to SECONDS for it (default: fail at once)",
    )
    scenario.add_argument(
        "--progress",
        choices=("auto", "live", "steps"),
        default="auto",
        help="as for run",
    )
    scenario.set_defaults(func=cmd_scenario)
    return parser


def main(argv: list[str] | None = None) -> int:
    plan_ranges_in_one_event()
    try:  # every CPROF_ setting, read once, before anything runs (or is imported): a bad one is one line
        settings, bad = Settings.from_environ(os.environ), None
    except SettingError as exc:
        settings, bad = Settings(), exc
    parser = build_parser(settings)
    args = parser.parse_args(argv)
    if bad is not None:
        print(f"cprof {args.command}: error: {bad}", file=sys.stderr)
        return 2
    # The options override the environment's settings; from here on the settings travel as arguments.
    if args.data_dir is not None:
        settings = dataclasses.replace(settings, data_dir=args.data_dir.expanduser().resolve())
    if getattr(args, "engine", None):
        settings = dataclasses.replace(settings, engine=args.engine)
    args.settings = settings
    if getattr(args, "first", None) and getattr(args, "last", None) and args.first > args.last:
        parser.error(f"--from {args.first} is after --to {args.last}")
    from pipelines.defs.dbt import DbtProjectError
    from pipelines.landing.structure import LandingError
    from pipelines.run import PipelineError
    from pipelines.runtime.lock import DataDirLocked

    try:
        return args.func(args)
    except (LandingError, PipelineError, DbtProjectError, DataDirLocked, ValueError) as exc:
        print(f"cprof {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"cprof {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
