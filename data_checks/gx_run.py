"""Running a landing suite with Great Expectations 1.x on one partition, and reading its result.

On DuckDB, GX's pandas datasource is used (its SQL datasource fails on DuckDB: GX issues #10738, #11579): the
partition is read from DuckDB into a DataFrame. Consecutive months are read and validated together, up to
``CPROF_GX_BATCH_ROWS`` rows (a million by default) so memory stays bounded, and a batch that fails is validated
again month by month (``LandingValidator.validate_months``); with ``CPROF_GX_WORKERS`` above 1, one month at a
time, validated by worker processes forked for each (``LandingValidator.validate_all``). On Spark, the
partition stays a Spark DataFrame and GX's Spark datasource validates it with its Spark execution engine, on the
session that made the frame (GX is given no Spark settings, so it neither restarts nor stops that session). The
suites, the expectations and the messages are the same on both. GX is imported on first
use (it takes seconds). The Data Docs site is kept under the data directory, ``gx/data_docs/``, with
``run.html``, a self-contained page of the run's validations linking to GX's page of each failed one (GX's pages
render offline: data_checks/data_docs.py).
"""

from __future__ import annotations

import gc
import html
import itertools
import os
import re
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from glob import escape as glob_escape
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import pandas as pd

from data_checks.suites import PARTITION_COLUMN, SUITES, rules_for
from pipelines.landing.sources import BY_NAME
from pipelines.lib.dbt_child import die_with_parent
from pipelines.lib.memory import release_freed_memory
from pipelines.lib.settings import Settings, setting, whole

SAMPLE_SIZE = 5


@dataclass(frozen=True)
class Failure:
    expectation: str
    column: str | None
    unexpected_count: int | None
    samples: list[Any]
    observed: Any = None
    # Each sample's row, by the values of the source's key columns (GX's unexpected_index_list), and where the
    # file holds it ("line 6", "lines 2, 3", "row 4"; "" when not found): the same order as ``samples``.
    keys: list[tuple] = field(default_factory=list)
    where: list[str] = field(default_factory=list)

    def examples(self) -> str:
        """The sample values, each with its place in the file when known: ``C777777 at line 6``."""
        places = self.where + [""] * (len(self.samples) - len(self.where))
        shown = [
            f"{value} at {place}" if place else str(value)
            for value, place in list(zip(self.samples, places, strict=True))[:SAMPLE_SIZE]
        ]
        # the rows of a repeated key are one sample, with all its lines; values without a place stay each
        return ", ".join(dict.fromkeys(shown) if all(places) else shown)

    def describe(self) -> str:
        subject = f" on {self.column}" if self.column else ""
        if self.unexpected_count is not None:
            return f"{self.expectation}{subject}: {self.unexpected_count} unexpected (e.g. {self.examples()})"
        return f"{self.expectation}{subject}: observed {self.observed}"


def with_places(failures: list[Failure], source: str, file: str) -> list[Failure]:
    """The failures with the file's line (CSV) or row (Parquet) of each sample, read from the file once."""
    from data_checks.positions import row_positions

    keys = [key for failure in failures for key in failure.keys]
    if not keys:
        return failures
    try:
        found = row_positions(Path(file), source, keys)
    except Exception:  # noqa: BLE001 - a place is an aid to the message: without it, the message stands
        return failures
    placed = []
    for failure in failures:
        where = []
        for key in failure.keys:
            places = found.get(key, [])
            if len(places) > 1:  # a repeated key: every line (row) it is on
                where.append(f"{places[0].split()[0]}s " + ", ".join(p.split()[1] for p in places))
            else:
                where.append(places[0] if places else "")
        placed.append(replace(failure, where=where))
    return placed


@dataclass(frozen=True)
class Outcome:
    source: str
    month: str | None
    file: str
    rows: int
    evaluated: int
    failures: list[Failure] = field(default_factory=list)
    docs: Path | None = None
    # The months validated with this one in a single GX run (first..last of the batch), when it was batched:
    # its outcome is the same as alone, so outcomes compare equal either way.
    batch: str | None = field(default=None, compare=False)

    @property
    def success(self) -> bool:
        return not self.failures

    def message(self) -> str:
        where = f"{self.source} {self.month or 'snapshot'} ({self.file}, {self.rows} rows)"
        if self.success:
            return f"{where}: all {self.evaluated} expectations passed"
        lines = [f"{where}: {len(self.failures)} of {self.evaluated} expectations failed"]
        lines += [f"  - {failure.describe()}" for failure in self.failures]
        if self.docs:
            lines.append(f"  Data Docs: {self.docs}")
        return "\n".join(lines)


class LandingValidator:
    """Validates partitions of landing sources with their suites.

    GX runs in memory (an ephemeral context: no YAML read or written per validation); each source's suite,
    validation definition and checkpoint are built once. The Data Docs site is written under
    ``<root>/gx/data_docs``: after each validation, or, with ``defer_docs``, once by :meth:`build_docs` (and
    at once after a failure). Its run page (``run.html``) lists every validation of this process, i.e. the
    run; GX renders its own page of a validation only when it failed (rendering the passing ones took longer
    than validating them: 1.4 s of a 36 s refresh).
    """

    def __init__(self, root: Path, defer_docs: bool = False):
        self.root = root
        self.defer_docs = defer_docs
        self._context = None
        self._spark_datasource = None
        self._suites: dict[str, Any] = {}
        self._checkpoints: dict[tuple[str, str, bool], Any] = {}
        self._pending: list = []
        self._outcomes: list[Outcome] = []
        self._skipped: dict[str, str] = {}  # source -> why its suite was not run
        self._failed_steps: dict[str, str] = {}  # source -> what its landed step raised (its suite never ran)
        self._run_page_stale = False

    @property
    def docs_site(self) -> Path:
        return self.root / "gx" / "data_docs"

    @property
    def docs_index(self) -> Path:
        """The page of this run's validations (``run.html``), the site's index: GX's own (``index.html``) draws
        its table with scripts from public CDNs and is not built (data_checks/data_docs.py)."""
        return self.docs_site / "run.html"

    def _gx_context(self):
        if self._context is None:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig
            from great_expectations.execution_engine import pandas_execution_engine

            # GX fingerprints every in-memory batch by hashing the whole frame (0.8 s for a 584,000-row month of
            # order lines, a fifth of its validation) only to label the batch; our results name the file and
            # partition instead, so the fingerprint is turned off.
            pandas_execution_engine.HASH_THRESHOLD = 0
            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            from data_checks.data_docs import site_config

            context.add_data_docs_site(site_name="landing", site_config=site_config(self.docs_site))
            self._datasource = context.data_sources.add_pandas("landing")
            self._context = context
        return self._context

    def _suite(self, source: str):
        """The source's expectation suite, one for both engines."""
        if source not in self._suites:
            import great_expectations as gx
            import great_expectations.expectations as gxe

            suite = gx.ExpectationSuite(
                name=f"landing.{source}",
                expectations=[getattr(gxe, name)(**kwargs) for name, kwargs in rules_for(source)],
                meta={"description": SUITES[source].description},
            )
            self._suites[source] = self._gx_context().suites.add(suite)
        return self._suites[source]

    def _datasource_for(self, engine: str):
        """GX's pandas datasource, or its Spark datasource (made on first use, on the running session)."""
        context = self._gx_context()
        if engine == "pandas":
            return self._datasource
        if self._spark_datasource is None:
            self._spark_datasource = context.data_sources.add_spark("landing_spark")
        return self._spark_datasource

    def _checkpoint(self, source: str, engine: str = "pandas", quick: bool = False):
        """The checkpoint of ``source``'s suite on the engine's datasource. ``quick`` (Spark): pass or fail only,
        without the samples of unexpected values, which GX fetches in one more Spark job per expectation
        whether it failed or not (17 jobs instead of 55 for a month of order lines)."""
        key = (source, engine, quick)
        if key not in self._checkpoints:
            import great_expectations as gx

            context = self._gx_context()
            name = f"landing.{source}" if engine == "pandas" else f"landing.{source}.{engine}"
            if (source, engine, not quick) in self._checkpoints:
                definition = self._checkpoints[(source, engine, not quick)].validation_definitions[0]
            else:
                batch = (
                    self._datasource_for(engine)
                    .add_dataframe_asset(source)
                    .add_batch_definition_whole_dataframe("partition")
                )
                definition = context.validation_definitions.add(
                    gx.ValidationDefinition(name=name, data=batch, suite=self._suite(source))
                )
            result_format = (
                {"result_format": "BOOLEAN_ONLY"}
                if quick
                else {
                    "result_format": "SUMMARY",
                    "partial_unexpected_count": SAMPLE_SIZE,
                    # each sample's row by its key, to name its line in the file (with_places)
                    "unexpected_index_column_names": list(BY_NAME[source].key),
                }
            )
            self._checkpoints[key] = context.checkpoints.add(
                gx.Checkpoint(
                    name=f"{name}.quick" if quick else name,
                    validation_definitions=[definition],
                    actions=[],  # Data Docs are built by build_docs, with the run page
                    result_format=result_format,
                )
            )
        return self._checkpoints[key]

    def validate(self, source: str, month: str | None, frame: Any, file: str) -> Outcome:
        """Run ``source``'s suite on one partition: ``frame`` is a pandas DataFrame (DuckDB's validation_frame)
        or a Spark DataFrame (Spark's), validated by GX's pandas or Spark execution engine. On Spark the suite
        runs first without samples, and again with them only when something failed: the outcome and its
        messages are the same as on pandas."""
        identifier, outcome = self._run(source, month, frame, file)
        self._record(outcome, identifier)
        return outcome

    def validate_months(
        self,
        source: str,
        files: dict[str | None, str],
        frame_of: Callable[[str | None], Any],
        frames_of: Callable[[list[str]], Any] | None = None,
        rows: dict[str, int] | None = None,
        batch_rows: int = Settings.gx_batch_rows,
    ) -> Iterator[Outcome]:
        """Validate ``source``'s partitions (``files``: month, or None for a snapshot, to its file), yielding one
        outcome per partition in the order given. ``frame_of(month)`` reads one month's frame;
        ``frames_of(months)`` several months' in one frame, each row's month in ``PARTITION_COLUMN``
        (Warehouse.validation_frames), and ``rows`` their landed rows per month, to plan those batches.

        Great Expectations spends 0.1-0.4 s on a validation whatever its size (222 validations in a 37-month
        build), so consecutive months are validated together, up to ``batch_rows`` rows at a time (the setting
        ``gx_batch_rows``; 0: one month at a time), when
        every expectation of the suite holds of each month whenever it holds of their union
        (:func:`batch_minimum_rows`). A batch that passes is every month in it passing (each month's outcome counts its
        own rows); a batch that fails is validated again month by month, so each month's outcome, messages,
        samples and Data Docs page are exactly those of validating it alone. Without ``frames_of``, with
        ``CPROF_GX_WORKERS`` above 1, or with batching off: one month at a time (:meth:`validate_all`)."""
        months = list(files)
        budget = batch_rows
        batching = frames_of is not None and rows is not None and None not in files and budget > 0
        minimum = batch_minimum_rows(source) if batching and gx_workers() == 1 else None
        if minimum is None:
            yield from self.validate_all(source, ((month, frame_of(month), files[month]) for month in months))
            return
        for batch in plan_batches(months, rows, budget, minimum):
            if len(batch) == 1:
                yield self.validate(source, batch[0], frame_of(batch[0]), files[batch[0]])
            else:
                yield from self._validate_batch(source, batch, frames_of(batch), files, frame_of, minimum)
        release_freed_memory()  # the batches' frames are gone; their pages go back to the system

    def _validate_batch(
        self,
        source: str,
        months: list[str],
        frame: Any,
        files: dict[str | None, str],
        frame_of: Callable[[str | None], Any],
        minimum: int,
    ) -> Iterator[Outcome]:
        if isinstance(frame, pd.DataFrame):
            rows = frame.pop(PARTITION_COLUMN).value_counts().to_dict()
        else:  # Spark: one job counts the months' rows
            rows = {row[0]: int(row[1]) for row in frame.groupBy(PARTITION_COLUMN).count().collect()}
            frame = frame.drop(PARTITION_COLUMN)
        batch = f"{months[0]}..{months[-1]}"
        _, together = self._run(source, batch, frame, ", ".join(files[m] for m in months), locate=False)
        del frame
        for month in months:
            if together.success and rows.get(month, 0) >= minimum:
                outcome = Outcome(  # a month may have no rows where its suite allows that
                    source,
                    month,
                    files[month],
                    rows.get(month, 0),
                    together.evaluated,
                    [],
                    self.docs_index,
                    batch,
                )
                self._record(outcome, None)
                yield outcome
            else:  # validated alone: its own result, messages and page
                yield self.validate(source, month, frame_of(month), files[month])

    def validate_all(
        self, source: str, partitions: Iterable[tuple[str | None, Any, str]], workers: int | None = None
    ) -> Iterator[Outcome]:
        """Validate ``source``'s partitions, given lazily as (month, frame, file), and yield their outcomes in
        the order given: every partition is validated, each exactly as :meth:`validate` does.

        pandas frames are validated by up to ``workers`` processes at once (default: :func:`gx_workers`: one,
        so this process validates them all), each forked for one partition once it is read, so it inherits GX, the suite and the frame
        without a copy (pickling a month of order lines at 10 million lines took longer than validating it),
        and sends back its outcome. This process reads the next frame meanwhile (the iterator runs here only: the warehouse
        connection is never used in a worker) and holds at most ``workers + 1`` frames, of at most
        ``ROWS_IN_FLIGHT`` rows at the workers (a bigger frame, or one under ``FORK_MIN_ROWS``, is validated
        here). A partition that fails, or
        whose worker died, is validated once more here, so its result is in this process's GX context and its
        Data Docs page is rendered as before. The workers are killed when the iteration ends early (a failure,
        an interrupt) and die with this process if it is killed. Spark frames, one partition, one worker, or a
        platform without fork: one partition at a time, here."""
        workers = gx_workers() if workers is None else workers
        partitions = iter(partitions)
        first = next(partitions, None)
        if first is None:
            return
        ahead = [first]
        forking = workers > 1 and isinstance(first[1], pd.DataFrame) and "fork" in get_all_start_methods()
        if forking and FORK_MIN_ROWS <= len(first[1]) <= ROWS_IN_FLIGHT:
            second = next(partitions, None)  # one partition alone is validated here
            ahead += [second] if second is not None else []
            forking = second is not None
        if not forking:
            for partition in itertools.chain(ahead, partitions):
                yield self.validate(source, *partition)
            return
        self._checkpoint(source)  # GX imported and the suite built before the forks: the workers inherit them
        context = get_context("fork")
        in_flight: deque[tuple[str | None, Any, str, Any, Any]] = deque()
        try:
            for month, frame, file in itertools.chain(ahead, partitions):  # read while the workers validate
                if not FORK_MIN_ROWS <= len(frame) <= ROWS_IN_FLIGHT:  # validated here, in its turn
                    while in_flight:
                        yield self._settle(source, *in_flight.popleft())
                    yield self.validate(source, month, frame, file)
                    continue
                while in_flight and (
                    len(in_flight) >= workers
                    or sum(len(item[1]) for item in in_flight) + len(frame) > ROWS_IN_FLIGHT
                ):
                    yield self._settle(source, *in_flight.popleft())
                receive, send = context.Pipe(duplex=False)
                worker = context.Process(
                    target=_validate_in_worker,
                    args=(self, send, os.getpid(), source, month, frame, file),
                    name=f"gx {source} {month}",
                    daemon=True,
                )
                gc.freeze()  # the worker's collector leaves the inherited objects alone (fewer pages copied)
                try:
                    worker.start()
                finally:
                    gc.unfreeze()
                send.close()
                in_flight.append((month, frame, file, worker, receive))
                del frame
            while in_flight:
                yield self._settle(source, *in_flight.popleft())
        finally:  # the iteration ended early (a failure, an interrupt): nobody will read the rest
            for _, _, _, worker, receive in in_flight:
                worker.kill()
                worker.join()
                receive.close()

    def _settle(
        self, source: str, month: str | None, frame: Any, file: str, worker: Any, receive: Any
    ) -> Outcome:
        """The outcome of a partition a worker validated, recorded here. A failure is validated again here
        (for its GX result and page), and so is a partition whose worker died without an outcome or did not
        answer within ``WORKER_TIMEOUT_SECONDS``."""
        try:
            # A worker that neither answers nor dies in time (forked from a process with other threads, it could
            # wait forever on a lock one of them held) is killed, and its partition validated here.
            outcome = receive.recv() if receive.poll(WORKER_TIMEOUT_SECONDS) else None
            if outcome is None:
                worker.kill()
        except EOFError:
            outcome = None
        finally:
            receive.close()
            worker.join()
        if outcome is None or not outcome.success:
            return self.validate(source, month, frame, file)
        self._record(outcome, None)
        return outcome

    def _record(self, outcome: Outcome, identifier: Any) -> None:
        self._outcomes.append(outcome)
        if outcome.failures:
            self._pending.append(identifier)
        self._run_page_stale = True
        if not self.defer_docs or outcome.failures:  # the page of a failure is wanted now
            self.build_docs()

    def _run(
        self, source: str, month: str | None, frame: Any, file: str, locate: bool = True
    ) -> tuple[Any, Outcome]:
        """Validate one partition: GX's identifier of the result, and the outcome (nothing recorded). With
        ``locate``, a failure's samples are given their lines in ``file`` (a batch's failures are not: each of
        its months is validated again alone)."""
        from great_expectations.core.run_identifier import RunIdentifier

        spark = not isinstance(frame, pd.DataFrame)
        run_id = RunIdentifier(run_name=f"{source} {month or 'snapshot'}")
        if spark:  # GX computes its metrics in several Spark jobs: the partition is computed once
            frame = frame.cache()
        try:
            rows = frame.count() if spark else len(frame)
            parameters = {"dataframe": frame}
            if spark:
                result = self._checkpoint(source, "spark", quick=True).run(
                    batch_parameters=parameters, run_id=run_id
                )
                if not result.success:
                    result = self._checkpoint(source, "spark").run(batch_parameters=parameters, run_id=run_id)
            else:
                result = self._checkpoint(source).run(batch_parameters=parameters, run_id=run_id)
        finally:
            if spark:
                frame.unpersist()
            # GX's execution engine keeps the last batch it validated (the whole frame) until the next one:
            # let it go now, so a check holds one frame at a time and none after it.
            engine = self._datasource_for(
                "spark" if spark else "pandas"
            ).execution_engine  # None: none made yet
            if engine is not None:
                engine.batch_manager.reset_batch_cache()
                engine.batch_manager.batch_data_cache.clear()
        identifier, validation = next(iter(result.run_results.items()))
        failures = [_failure(r, BY_NAME[source].key) for r in validation.results if not r.success]
        if failures and locate:
            failures = with_places(failures, source, file)
        return identifier, Outcome(
            source, month, file, rows, len(validation.results), failures, self.docs_index
        )

    def skip(self, source: str, reason: str) -> None:
        """Record that ``source``'s suite was deliberately not run (say why), for the run page."""
        self._skipped[source] = reason
        self._run_page_stale = True

    def load_failed(self, source: str, error: str) -> None:
        """Record that ``source``'s landed step failed (``error``: what it raised), so its suite never ran."""
        self._failed_steps[source] = " ".join(line.strip() for line in error.splitlines())
        self._run_page_stale = True

    def build_docs(self) -> Path | None:
        """Render GX's pages of the failed validations since the last build, and the run page."""
        if self._context is not None and self._pending:
            # each failed validation's page, and its suite's page (which the validation page links)
            suites = {identifier.expectation_suite_identifier for identifier in self._pending}
            self._context.build_data_docs(resource_identifiers=[*self._pending, *suites], build_index=False)
            self._pending = []
        if self._run_page_stale:
            self._write_run_page()
            self._run_page_stale = False
        return self.docs_index if self.docs_index.exists() else None

    def _write_run_page(self) -> None:
        rows = []
        for outcome in self._outcomes:
            partition = f"{outcome.source} {outcome.month or 'snapshot'}"
            pages = sorted(self.docs_site.glob(f"validations/**/{glob_escape(partition)}/*/*.html"))
            link = (
                f'<a href="{html.escape(str(pages[-1].relative_to(self.docs_site)))}">result</a>'
                if pages
                else ""
            )
            status = (
                f"passed ({outcome.evaluated} expectations)"
                if outcome.success
                else f"FAILED ({len(outcome.failures)} of {outcome.evaluated} expectations)"
            )
            details = "<br>".join(html.escape(f.describe()) for f in outcome.failures)
            rows.append(
                f'<tr class="{"ok" if outcome.success else "failed"}"><td>{html.escape(outcome.source)}</td>'
                f"<td>{html.escape(outcome.month or 'snapshot')}</td><td>{outcome.rows:,}</td>"
                f"<td>{status}</td><td>{details}</td><td>{link}</td></tr>"
            )
        not_run = "".join(
            f'<tr class="skipped"><td>{html.escape(source)}</td><td>{html.escape(reason)}</td></tr>'
            for source, reason in suites_not_run(self._outcomes, self._skipped, self._failed_steps).items()
        )
        page = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Landing checks of the run</title>'
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}"
            ".failed td{background:#fde8e8}.ok td:nth-child(4){color:#1a7f37}.skipped td{color:#57606a}"
            "</style></head><body>"
            f"<h1>Landing checks of the run</h1><p>{html.escape(run_counts(self._outcomes))}</p>"
            "<p>Each suite is defined in data_checks/suites.py. A failed validation links Great Expectations' "
            "own page of its result, which links the page of its suite.</p>"
            "<table><tr><th>source</th><th>partition</th><th>rows</th><th>result</th><th>failed expectations</th>"
            f"<th></th></tr>{''.join(rows)}</table>"
            + (
                "<h2>Suites not run</h2><table><tr><th>source</th><th>why</th></tr>" + not_run + "</table>"
                if not_run
                else ""
            )
            + "</body></html>"
        )
        partial = self.docs_index.with_suffix(".partial")
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(page, encoding="utf-8")
        os.replace(partial, self.docs_index)


# The tables a suite's frame reads other sources from: their promoted rows (raw) or validated months (validated)
REFERENCE_RE = re.compile(r"\b(?:raw|validated)\.(\w+)")


def references(source: str) -> set[str]:
    """The sources whose tables ``source``'s suite checks references against (transitively)."""
    direct = {name for name in REFERENCE_RE.findall(SUITES[source].frame_sql) if name in SUITES} - {source}
    return direct.union(*(references(name) for name in direct)) if direct else set()


def unchanged_reason(validated_at: datetime | None = None) -> str:
    """Why a reference snapshot's suite did not run: its file is the one that passed it (when, if known)."""
    when = f" {validated_at:%Y-%m-%d %H:%M}" if validated_at else ""
    return (
        f"unchanged since validated{when}, not validated again: the file is the one that passed this suite "
        "and was promoted (a --full-refresh run validates it again)"
    )


def suites_not_run(
    outcomes: list[Outcome], skipped: dict[str, str], failed_steps: dict[str, str] | None = None
) -> dict[str, str]:
    """Every suite that validated nothing in the run, and why, from what the run recorded: its landed step
    failed (``failed_steps``), it was left out (``skipped``: an unchanged snapshot), or its step waited for a
    source it checks references against, whose suite or step failed; else the run did not cover it."""
    failed_steps = failed_steps or {}
    ran = {o.source for o in outcomes}
    failed = {o.source: f"{o.source} failed its suite" for o in outcomes if not o.success}
    failed |= {source: f"the step landed.{source} failed" for source in failed_steps}
    reasons = {}
    for source in sorted(set(SUITES) - ran):
        blocked = sorted(references(source) & set(failed))
        if source in failed_steps:
            reasons[source] = f"not run: its step landed.{source} failed: {failed_steps[source]}"
        elif source in skipped:
            reasons[source] = skipped[source]
        elif blocked:
            reasons[source] = (
                f"not run: its step landed.{source} waits for {', '.join(blocked)}, which it checks references "
                f"against; in this run {'; '.join(failed[name] for name in blocked)}, so "
                f"{'it was' if len(blocked) == 1 else 'they were'} not promoted"
            )
        else:
            reasons[source] = "not part of this run (the run covered other assets)"
    return reasons


def run_counts(outcomes: list[Outcome]) -> str:
    """What the run validated, each count saying what it counts."""
    failed = [o for o in outcomes if not o.success]
    sources = {o.source for o in outcomes}
    not_run = len(set(SUITES) - sources)
    batched = [o for o in outcomes if o.batch]
    return (
        f"{len(outcomes)} validations (one per source and partition, {len(sources)} sources), "
        f"{len(failed)} failed; {sum(o.evaluated for o in outcomes):,} expectations evaluated, "
        f"{sum(len(o.failures) for o in failed)} failed. Suites: {len(sources)} of {len(SUITES)} run"
        + (f", {not_run} not run (listed below)." if not_run else ".")
        + (
            f" {len(batched)} of the partitions passed in {len({(o.source, o.batch) for o in batched})} runs "
            f"of Great Expectations that validated consecutive months together ({Settings.variable('gx_batch_rows')})."
            if batched
            else ""
        )
    )


# Expectations that hold of every month of a frame of several months whenever they hold of the whole: a test of
# each value on its own (without ``mostly``), a key unique in the whole (so in each part), the columns and their
# order (the same in each part). A row count's minimum holds of each month only when that month has that many
# rows (batch_minimum_rows). A suite with any other expectation is validated one month at a time.
_HOLD_IN_EACH_PART = {
    "ExpectColumnValuesToNotBeNull",
    "ExpectColumnValuesToBeNull",
    "ExpectColumnValuesToBeBetween",
    "ExpectColumnValuesToBeInSet",
    "ExpectColumnValuesToBeUnique",
    "ExpectCompoundColumnsToBeUnique",
    "ExpectTableColumnsToMatchOrderedList",
}


def batch_minimum_rows(source: str) -> int | None:
    """The fewest rows a month must have to be validated with others (the suite's row-count minimum, else 0);
    None when the suite has an expectation that may hold of several months together and fail for one of them,
    so that its months are validated one at a time."""
    minimum = 0
    for name, kwargs in rules_for(source):
        if kwargs.get("mostly") is not None:
            return None
        if name == "ExpectTableRowCountToBeBetween" and kwargs.get("max_value") is None:
            minimum = max(minimum, int(kwargs.get("min_value") or 0))
        elif name not in _HOLD_IN_EACH_PART:
            return None
    return minimum


def plan_batches(months: list[str], rows: dict[str, int], budget: int, minimum: int) -> list[list[str]]:
    """Consecutive months in batches of at most ``budget`` rows; a month with more rows, or fewer than
    ``minimum``, is a batch of its own (validated alone, as before batching)."""
    batches: list[list[str]] = []
    current: list[str] = []
    total = 0
    for month in months:
        count = rows.get(month, 0)
        alone = count > budget or count < minimum
        if current and (alone or total + count > budget):
            batches.append(current)
            current, total = [], 0
        if alone:
            batches.append([month])
            continue
        current.append(month)
        total += count
    if current:
        batches.append(current)
    return batches


WORKERS_ENV = "CPROF_GX_WORKERS"
WORKERS = setting(WORKERS_ENV, whole(1), "a whole number of processes, 1 or more", 1)
# Rows at the workers at a time: the run's process keeps each frame until its worker is done (to validate a failure
# again), so a month of order lines at 100 million lines (2.7 million rows, over a gigabyte as pandas at the 456
# bytes a row measured at 10 million) is validated in the run's process instead, one frame in memory as before.
ROWS_IN_FLIGHT = 1_000_000
# A smaller frame is validated here: a worker's fork and the pages it copies cost about 60 ms of system time,
# measured at 1 million lines, where every month (at most 26,000 rows) validated in workers took as long as here.
FORK_MIN_ROWS = 100_000
# How long a worker may take over one partition (at most ROWS_IN_FLIGHT rows: seconds when it works) before
# it is killed and the partition validated in the run's process.
WORKER_TIMEOUT_SECONDS = 300.0


def gx_workers() -> int:
    """How many processes validate a source's partitions at once: $CPROF_GX_WORKERS, else 1 (in the run's
    process). Measured at 10 million lines on this 2-core machine, two workers made the input checks no faster
    (48.2 s against 46.6 s with one) and raised the build's peak memory from 2.6 to 3.7 GB: a worker costs about
    a fifth more CPU than validating here (its fork and the pages it copies on write). More cores may differ."""
    return WORKERS.get()


def _worker_started(parent: int) -> None:
    """In a forked worker: die with the parent (even when it is killed outright), leave signals to it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt is the parent's: it kills the workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(parent)


def _validate_in_worker(
    validator: LandingValidator, send: Any, parent: int, source: str, month: str | None, frame: Any, file: str
) -> None:
    """In a worker forked with the frame in memory (nothing is copied to it): validate, send the outcome."""
    _worker_started(parent)
    try:
        send.send(validator._run(source, month, frame, file, locate=False)[1])  # a failure is validated again
    finally:
        send.close()


_VALIDATORS: dict[tuple[Path, bool], LandingValidator] = {}


def validator_for(root: Path, defer_docs: bool = False) -> LandingValidator:
    """The process's validator for a data directory (GX contexts are costly to create)."""
    key = (root.resolve(), defer_docs)
    if key not in _VALIDATORS:
        _VALIDATORS[key] = LandingValidator(key[0], defer_docs)
    return _VALIDATORS[key]


def _failure(result, key: tuple[str, ...]) -> Failure:
    config = result.expectation_config
    details = result.result or {}
    column = config.kwargs.get("column") or config.kwargs.get("column_list")
    if result.exception_info and result.exception_info.get("raised_exception"):
        return Failure(
            config.type,
            str(column) if column else None,
            None,
            [],
            observed=result.exception_info.get("exception_message"),
        )
    samples = details.get("partial_unexpected_list") or []
    rows = details.get("partial_unexpected_index_list") or []
    keys = [tuple(_plain(row.get(name)) for name in key) for row in rows if isinstance(row, dict)]
    return Failure(
        expectation=config.type,
        column=str(column) if column else None,
        unexpected_count=details.get("unexpected_count"),
        samples=[_plain(value) for value in samples],
        observed=details.get("observed_value"),
        keys=keys if len(keys) == len(samples) else [],
    )


def _plain(value: Any) -> Any:
    """A sample value as a person reads it (numpy and pandas scalars to Python)."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, dict):
        return tuple(value.values())
    return value
