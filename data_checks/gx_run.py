"""Running a landing suite with Great Expectations 1.x on one partition, and reading its result.

On DuckDB, GX's pandas datasource is used (its SQL datasource fails on DuckDB: GX issues #10738, #11579): the
partition is read from DuckDB into a DataFrame. Consecutive months are read and validated together, up to
``CPROF_GX_BATCH_ROWS`` rows (a million by default) so memory stays bounded, and a batch that fails is validated
again month by month (``LandingValidator.validate_months``). On Spark, the
partition stays a Spark DataFrame and GX's Spark datasource validates it with its Spark execution engine, on the
session that made the frame (GX is given no Spark settings, so it neither restarts nor stops that session). The
suites, the expectations and the messages are the same on both. GX is imported on first use (it takes seconds).

What a validation found is an Outcome (data_checks/outcomes.py); which months are validated together is planned
by data_checks/batching.py. The Data Docs site is kept under the data directory, ``gx/data_docs/``: GX's pages of
the failed validations (rendered offline: data_checks/data_docs.py) and the run page, ``run.html``
(data_checks/run_page.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from data_checks.batching import batch_minimum_rows, plan_batches
from data_checks.duckdb_evaluation import Evaluation, FrameMismatch, supports
from data_checks.outcomes import SAMPLE_SIZE, ExpectationFailure, Outcome, with_places
from data_checks.run_page import write_run_page
from data_checks.suites import PARTITION_COLUMN, SUITES, rules_for
from pipelines.landing.sources import BY_NAME
from pipelines.lib.memory import release_freed_memory
from pipelines.lib.settings import Settings


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
        evaluate: Callable[[list[str | None]], dict[str | None, Evaluation]] | None = None,
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
        samples and Data Docs page are exactly those of validating it alone. Without ``frames_of``, or with
        batching off: one month at a time.

        With ``evaluate`` (months to their :class:`~data_checks.duckdb_evaluation.Evaluation`: the warehouse
        evaluates the suite where the data is, ``Warehouse.evaluate_suite``), a suite it supports is evaluated
        there instead, months of up to ``batch_rows`` rows in one pass, and never leaves the warehouse: a month
        that passes is its outcome; one that fails is validated again by GX alone (its messages and page)."""
        months = list(files)
        budget = batch_rows
        if evaluate is not None and supports(source):
            yield from self._evaluate_months(source, files, frame_of, rows, budget, evaluate)
            return
        batching = frames_of is not None and rows is not None and None not in files and budget > 0
        minimum = batch_minimum_rows(source) if batching else None
        if minimum is None:
            for month in months:
                yield self.validate(source, month, frame_of(month), files[month])
            return
        for batch in plan_batches(months, rows, budget, minimum):
            if len(batch) == 1:
                yield self.validate(source, batch[0], frame_of(batch[0]), files[batch[0]])
            else:
                yield from self._validate_batch(source, batch, frames_of(batch), files, frame_of, minimum)
        release_freed_memory()  # the batches' frames are gone; their pages go back to the system

    def _evaluate_months(
        self,
        source: str,
        files: dict[str | None, str],
        frame_of: Callable[[str | None], Any],
        rows: dict[str, int] | None,
        budget: int,
        evaluate: Callable[[list[str | None]], dict[str | None, Evaluation]],
    ) -> Iterator[Outcome]:
        months = list(files)
        if rows is None or None in files:
            passes = [months]
        elif budget > 0:
            passes = plan_batches(months, rows, budget, 0)
        else:
            passes = [[month] for month in months]
        for batch in passes:
            try:
                found = evaluate(batch)
            except FrameMismatch:  # GX says what is missing, month by month
                for month in batch:
                    yield self.validate(source, month, frame_of(month), files[month])
                continue
            label = f"{batch[0]}..{batch[-1]}" if len(batch) > 1 else None
            for month in batch:
                evaluation = found[month]
                if evaluation.success:
                    outcome = Outcome(
                        source,
                        month,
                        files[month],
                        evaluation.rows,
                        evaluation.evaluated,
                        [],
                        self.docs_index,
                        label,
                        "duckdb",
                    )
                    self._record(outcome, None)
                    yield outcome
                else:  # GX's own result: its messages, samples, lines in the file and page
                    yield self.validate(source, month, frame_of(month), files[month])

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
        write_run_page(self.docs_site, self._outcomes, self._skipped, self._failed_steps)


def unchanged_reason(validated_at: datetime | None = None) -> str:
    """Why a reference snapshot's suite did not run: its file is the one that passed it (when, if known)."""
    when = f" {validated_at:%Y-%m-%d %H:%M}" if validated_at else ""
    return (
        f"unchanged since validated{when}, not validated again: the file is the one that passed this suite "
        "and was promoted (a --full-refresh run validates it again)"
    )


_VALIDATORS: dict[tuple[Path, bool], LandingValidator] = {}


def validator_for(root: Path, defer_docs: bool = False) -> LandingValidator:
    """The process's validator for a data directory (GX contexts are costly to create)."""
    key = (root.resolve(), defer_docs)
    if key not in _VALIDATORS:
        _VALIDATORS[key] = LandingValidator(key[0], defer_docs)
    return _VALIDATORS[key]


def _failure(result, key: tuple[str, ...]) -> ExpectationFailure:
    config = result.expectation_config
    details = result.result or {}
    column = config.kwargs.get("column") or config.kwargs.get("column_list")
    if result.exception_info and result.exception_info.get("raised_exception"):
        return ExpectationFailure(
            config.type,
            str(column) if column else None,
            None,
            [],
            observed=result.exception_info.get("exception_message"),
        )
    samples = details.get("partial_unexpected_list") or []
    rows = details.get("partial_unexpected_index_list") or []
    keys = [tuple(_plain(row.get(name)) for name in key) for row in rows if isinstance(row, dict)]
    return ExpectationFailure(
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
