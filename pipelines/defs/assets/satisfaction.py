"""Satisfaction asset: the derived importance of the survey attributes (marts.satisfaction_drivers).

As of each month, attribute weights are derived (Johnson's relative weights, pipelines/domain/satisfaction.py) from
the responses of the trailing 12 months, the window a month's few responses need to be estimated reliably;
performance (mean score) is taken over the same window. Near the start of history (the first month in the
warehouse) the window holds fewer than 12 months: ``window_months`` counts the months of history in it and
``window_complete`` says when it holds all 12. The satisfaction of each customer, weighted by these weights, is
the dbt model customer_satisfaction (dbt_project/models/marts/satisfaction), built after this asset in the same
run.

A run for months first..last rebuilds the months whose trailing window it can change, first..last + 11, and
keeps the others.

A question nobody answered in a month's window (one added to survey_questions.csv before its first answers) is
left out of that month's weights, and so of its satisfaction index: the other attributes' weights come from the
responses that answer them, exactly as without the question. The asset's metadata (``notes``,
``questions_without_answers``) and ``cprof run``'s output say so, as they say which months could not be derived.
"""

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    multi_asset,
)

from pipelines.defs.assets import NOTES
from pipelines.defs.assets.kinds import DEFAULT_ENGINE, warehouse_kinds
from pipelines.defs.assets.row_counts import add_row_counts
from pipelines.defs.partitions import contiguous, refresh_window, shift_month, single_run
from pipelines.defs.resources import WarehouseResource
from pipelines.domain.satisfaction import ipa_quadrant, relative_weights
from pipelines.engines.base import Column, Filter, Warehouse

DRIVERS = AssetKey(["marts", "satisfaction_drivers"])
STAGING = [AssetKey(["staging", name]) for name in ("stg_survey__responses", "stg_survey__questions")]
# The months in the warehouse (every month has customer rows): history starts at the first of them.
HISTORY = AssetKey(["marts", "customer_profitability"])
HISTORY_TABLE = "marts.customer_profitability"

DRIVERS_TABLE = "marts.satisfaction_drivers"
DRIVERS_COLUMNS = [
    Column("period", "date", nullable=False),
    Column("question_id", "varchar", nullable=False),
    Column("label", "varchar"),
    Column("importance_weight", "double", nullable=False),
    Column("mean_score", "double", nullable=False),
    Column("ipa_quadrant", "varchar", nullable=False),
    Column("responses", "integer", nullable=False),
    Column("r_squared", "double", nullable=False),
    Column("window_months", "integer", nullable=False),
    Column("window_complete", "boolean", nullable=False),
]
RESPONSES = "staging.stg_survey__responses"


def _stable(*values: float) -> tuple[float, ...]:
    """Estimates rounded to 12 decimals: the linear algebra underneath (BLAS) is not bit-reproducible from run to
    run, and a re-run of the same months must publish the same bytes (equal checksums in marts.publish_log)."""
    return tuple(round(float(value), 12) for value in values)


@dataclass(frozen=True)
class Answers:
    """The answers to ``questions`` of every month a run's windows cover, read once (one query, one
    factorisation of the ids) instead of once per trailing window (each month's answers were read and pivoted
    twelve times: 10.8 s of the 27 s satisfaction and scorecard took at 10 million lines). One entry per answer: its month, its
    response (a code in response_id order), its question (a position in ``questions``) and its score."""

    questions: list[str]
    periods: np.ndarray
    responses: np.ndarray
    columns: np.ndarray
    scores: np.ndarray
    response_count: int  # distinct responses: their codes are 0 to response_count - 1


def _answers(wh: Warehouse, first: date, last: date, questions: list[str]) -> Answers:
    """The answers the trailing windows of the months ``first``..``last`` need. Question ids are data: bound
    filter values, never column names or SQL text; the engine selects the rows, only what the fits need comes
    to Python."""
    long = wh.read(
        RESPONSES,
        ["period", "response_id", "question_id", "score"],
        [
            Filter("period", ">=", shift_month(first, -11)),
            Filter("period", "<=", last),
            Filter("question_id", "in", questions),
        ],
    )
    responses, ids = pd.factorize(long["response_id"], sort=True)
    columns = pd.Categorical(long["question_id"], categories=questions).codes.astype(np.int64)
    if (responses < 0).any() or (columns < 0).any():  # dbt's tests of the staging model stop a run first
        raise ValueError(
            f"{RESPONSES}: an answer without a response_id or with a question outside {questions}"
        )
    return Answers(
        questions,
        pd.to_datetime(long["period"]).to_numpy(),
        responses,
        columns,
        long["score"].to_numpy(dtype=float, na_value=np.nan),
        len(ids),
    )


def _window(answers: Answers, period: date) -> pd.DataFrame:
    """The complete responses of the trailing 12 months to ``period``: one row per response (in response_id
    order), one column per question answered in the window (the overall question, then the attributes); a
    question nobody answered in the window has no column, and a response that misses an answer to one of the
    others is left out."""
    month = answers.periods
    inside = (month >= np.datetime64(shift_month(period, -11))) & (month <= np.datetime64(period))
    responses = answers.responses[inside]
    present = np.zeros(answers.response_count, dtype=bool)
    present[responses] = True  # the window's responses, in response_id order (codes are in that order)
    row = (np.cumsum(present) - 1)[responses]
    rows, width = int(present.sum()), len(answers.questions)
    cells = row * width + answers.columns[inside]
    if len(cells) and np.bincount(cells).max() > 1:
        raise ValueError(f"{RESPONSES}: a question answered twice in one response, in the window to {period}")
    grid = np.full(rows * width, np.nan)
    grid[cells] = answers.scores[inside]
    frame = pd.DataFrame(grid.reshape(rows, width), columns=answers.questions)
    # A question without a single answer in the window would otherwise empty it (every response misses it).
    return frame.loc[:, frame.notna().any()].dropna()


def _spans(months: list[str]) -> str:
    """Months as ranges of consecutive months: 2024-01..2024-03, 2024-06."""
    return ", ".join(g[0] if len(g) == 1 else f"{g[0]}..{g[-1]}" for g in contiguous(months))


def notes(unanswered: dict[str, list[str]], skipped: dict[str, str]) -> list[str]:
    """What a person must know of the weights derived: the questions left out of months' weights for want of
    answers, and the months not derived at all."""
    by_question: dict[str, list[str]] = {}
    for month, questions in unanswered.items():
        for question in questions:
            by_question.setdefault(question, []).append(month)
    said = [
        f"{question} has no answers in the 12-month windows of {_spans(sorted(months))}: it is left out of "
        "those months' weights and satisfaction index (the other attributes' weights come from the responses "
        "that answer them)"
        for question, months in sorted(by_question.items())
    ]
    return said + [f"{month} not derived: {reason}" for month, reason in sorted(skipped.items())]


def satisfaction(monthly: PartitionsDefinition, engine: str = DEFAULT_ENGINE) -> AssetsDefinition:
    """marts/satisfaction_drivers, on ``monthly``."""

    # A multi-asset of one asset: its step is named `satisfaction` (the phase of a run in pipelines/run.py).
    @multi_asset(
        partitions_def=monthly,
        backfill_policy=single_run,
        name="satisfaction",
        specs=[
            AssetSpec(
                DRIVERS,
                group_name="marts",
                deps=[*STAGING, HISTORY],
                kinds=warehouse_kinds(engine, "python"),
                description="Per month and survey attribute: derived importance (relative weights over the trailing "
                "12 months, summing to 1), mean score over the same window, and the importance-performance quadrant.",
            ),
        ],
    )
    def _satisfaction(context: AssetExecutionContext, warehouse: WarehouseResource):
        refresh = refresh_window(
            context, 11, warehouse
        )  # the run's months and those awaiting publication, + 11
        with warehouse.session() as wh:
            rebuilt = refresh.or_everything_if_missing(wh, DRIVERS_TABLE)
            questions = list(
                wh.read("staging.stg_survey__questions", ["question_id", "kind", "label"]).itertuples(
                    index=False
                )
            )
            attributes = sorted(q for q, kind, _ in questions if kind == "attribute")
            overall = next(q for q, kind, _ in questions if kind == "overall")
            labels = {q: label for q, _, label in questions}
            periods = wh.distinct(RESPONSES, "period", rebuilt.filters())
            history = pd.to_datetime(pd.Series(wh.distinct(HISTORY_TABLE, "period"), dtype="object"))
            answers = _answers(wh, periods[0], periods[-1], [overall, *attributes]) if periods else None
            drivers, skipped, unanswered = [], {}, {}
            for period in periods:
                window = _window(answers, period)
                answered = [q for q in attributes if q in window.columns]
                if len(answered) < len(attributes):
                    unanswered[str(period)[:7]] = [q for q in attributes if q not in window.columns]
                try:
                    if overall not in window.columns or not answered:
                        raise ValueError(
                            "no answers to the overall question or to any attribute in the window"
                        )
                    weights, r_squared = relative_weights(
                        window[answered].to_numpy(), window[overall].to_numpy()
                    )
                except ValueError as exc:
                    skipped[str(period)[:7]] = str(exc)
                    continue
                means = window[answered].mean().to_numpy()
                held = int(
                    (
                        (history > pd.Timestamp(shift_month(period, -12))) & (history <= pd.Timestamp(period))
                    ).sum()
                )
                for q, weight, mean, quadrant in zip(
                    answered, weights, means, ipa_quadrant(weights, means), strict=True
                ):
                    drivers.append(
                        (
                            period,
                            q,
                            None if pd.isna(labels.get(q)) else labels.get(q),
                            *_stable(weight, mean),
                            quadrant,
                            len(window),
                            *_stable(r_squared),
                            held,
                            held == 12,
                        )
                    )
            frame = pd.DataFrame(drivers, columns=[c.name for c in DRIVERS_COLUMNS])
            wh.replace_periods(DRIVERS_TABLE, DRIVERS_COLUMNS, [frame], rebuilt)
        said = notes(unanswered, skipped)
        for note in said:
            context.log.warning(f"satisfaction_drivers: {note}")
        latest = frame[frame.period == frame.period.max()] if len(frame) else frame
        add_row_counts(context, warehouse, [DRIVERS])
        yield MaterializeResult(
            asset_key=DRIVERS,
            metadata={
                NOTES: MetadataValue.json(said),
                "questions_without_answers": MetadataValue.json(unanswered),
                "months_not_derived": MetadataValue.json(skipped),
                "latest_weights": MetadataValue.json(
                    {r.question_id: round(r.importance_weight, 4) for r in latest.itertuples()}
                ),
            },
        )

    return _satisfaction
