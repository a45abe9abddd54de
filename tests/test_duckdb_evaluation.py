"""The suites evaluated in DuckDB (data_checks/duckdb_evaluation.py) give the outcomes Great Expectations' pandas
engine gives: pass or fail, rows, expectations evaluated, each failed expectation with its unexpected count or
observed value, and the message of a partition that passed. On every suite and every partition of a built
sample, on the whole bad-input corpus (tests/test_data_checks.py), and on frames edited to the edges of GX's
semantics (nulls, bounds, repeated keys with missing parts, an empty month, a pattern)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from data_checks.duckdb_evaluation import (
    Evaluation,
    FrameMismatch,
    _unexpected,
    evaluate,
    gx_type,
    result_order,
    supports,
)
from data_checks.gx_run import LandingValidator
from data_checks.outcomes import Outcome
from data_checks.suites import PARTITION_COLUMN, SUITES, rules_for
from pipelines.engines import duckdb_ingest
from pipelines.engines.duckdb_ingest import (
    LandingError,
    evaluate_suite,
    history_start,
    load,
    validation_frame,
)
from pipelines.landing.sources import BY_NAME
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from tests.test_data_checks import CORPUS, MONTH


def _facts(outcome: Outcome | Evaluation) -> tuple:
    return (
        outcome.rows,
        outcome.evaluated,
        [(f.expectation, f.column, f.unexpected_count, f.observed) for f in outcome.failures],
    )


def _gx(validator: LandingValidator, source: str, month: str | None, frame) -> Outcome:
    return validator._run(source, month, frame, "file", locate=False)[1]


@pytest.fixture(scope="module")
def validator(tmp_path_factory) -> LandingValidator:
    return LandingValidator(tmp_path_factory.mktemp("gx"))


def test_every_suite_is_evaluated_in_duckdb():
    assert all(supports(source) for source in SUITES)


def test_failures_are_listed_in_the_order_gx_lists_its_results(
    published_sample: Paths, validator: LandingValidator, tmp_path: Path
):
    shutil.copy(published_sample.warehouse, tmp_path / "w.duckdb")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        for source in SUITES:
            month = "2024-01" if BY_NAME[source].kind == "monthly" else None
            result = validator._checkpoint(source).run(
                batch_parameters={"dataframe": validation_frame(con, source, month)}
            )
            (validation,) = result.run_results.values()
            listed = [(r.expectation_config.type, r.expectation_config.kwargs) for r in validation.results]
            rules = rules_for(source)
            ours = [(gx_type(rules[i][0]), rules[i][1]) for i in result_order(source)]
            assert [(t, k.get("column"), k.get("column_list")) for t, k in listed] == [
                (t, k.get("column"), k.get("column_list")) for t, k in ours
            ], source


def test_every_partition_of_a_build_has_the_outcome_gx_gives(
    published_sample: Paths, validator: LandingValidator, tmp_path: Path
):
    shutil.copy(published_sample.warehouse, tmp_path / "w.duckdb")
    compared = 0
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        for source in SUITES:
            if BY_NAME[source].kind == "monthly":
                months = [
                    m
                    for (m,) in con.execute(
                        f"select distinct strftime(_period, '%Y-%m') from landed.{source} order by 1"
                    ).fetchall()
                ]
            else:
                months = [None]
            found = evaluate_suite(con, source, months)  # every month in one pass
            for month in months:
                frame = validation_frame(con, source, month)
                gx = _gx(validator, source, month, frame)
                assert _facts(found[month]) == _facts(gx), (source, month)
                assert found[month].success and gx.success, (source, month)
                mine = Outcome(source, month, "file", found[month].rows, found[month].evaluated)
                assert mine.message() == gx.message()
                compared += 1
    assert compared >= 7 + 6 * 3  # the snapshots and every month of the monthly sources


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_the_bad_input_corpus_has_the_outcomes_gx_gives(
    published_sample: Paths, validator: LandingValidator, tmp_path: Path, case: str
):
    source, damage, _ = CORPUS[case]
    paths = Paths(tmp_path / "data")
    paths.data_dir.mkdir()
    shutil.copy(published_sample.warehouse, paths.warehouse)
    shutil.copytree(published_sample.landing, paths.landing)
    damage(paths.landing / source / f"{MONTH}.csv")
    with duckdb.connect(str(paths.warehouse)) as con:
        try:
            load(con, paths.landing, source, MONTH)
        except LandingError:
            pytest.skip("stopped at the load, before any suite")
        start = history_start(paths.landing, Settings().first_month)
        found = evaluate_suite(con, source, [MONTH], start)[MONTH]
        gx = _gx(validator, source, MONTH, validation_frame(con, source, MONTH, start))
    assert not gx.success
    assert _facts(found) == _facts(gx)


def test_months_of_returns_checked_together_each_get_their_own_frame(
    published_sample: Paths, validator: LandingValidator, tmp_path: Path
):
    """The returns' rules read other months (what was returned before, in the validated returns of the other
    months) and the whole history (the order lines, its start): the months of a batch, one query over them all
    (validation_query), each get the frame and the outcome they get alone. A line returned in one month and again,
    in full, in the next is over-returned in the second month only."""
    paths = Paths(tmp_path / "data")
    paths.data_dir.mkdir()
    shutil.copy(published_sample.warehouse, paths.warehouse)
    shutil.copytree(published_sample.landing, paths.landing)
    with duckdb.connect(str(paths.warehouse)) as con:
        order_id, line_no, ordered = con.execute(
            "select returns.order_id, returns.line_no, lines.quantity from validated.returns as returns"
            " join validated.order_lines as lines using (order_id, line_no)"
            " where returns._period = date '2024-01-01' order by returns.return_id limit 1"
        ).fetchone()
        again = paths.landing / "returns" / f"{MONTH}.csv"
        with again.open("a") as file:
            file.write(f"R99999999,{order_id},{line_no},{MONTH}-15,{ordered},not_needed\n")
        load(con, paths.landing, "returns", MONTH)
        start = history_start(paths.landing, Settings().first_month)
        months = [
            m
            for (m,) in con.execute(
                "select distinct strftime(_period, '%Y-%m') from landed.returns order by 1"
            ).fetchall()
        ]
        assert len(months) >= 3 and MONTH in months[1:]
        together = duckdb_ingest.validation_frames(con, "returns", months, start)
        found = evaluate_suite(con, "returns", months, start)
        for month in months:
            own = validation_frame(con, "returns", month, start).sort_values("return_id", ignore_index=True)
            part = together[together[PARTITION_COLUMN] == month].drop(columns=PARTITION_COLUMN)
            part = part.sort_values("return_id", ignore_index=True)
            assert (
                part.astype(object)
                .where(part.notna(), None)
                .equals(own.astype(object).where(own.notna(), None))
            )
            over = own.loc[own["_returned_more_than_ordered"].notna(), "return_id"].tolist()
            assert over == (["R99999999"] if month == MONTH else []), month
            gx = _gx(validator, "returns", month, own)
            assert _facts(found[month]) == _facts(gx), month
            assert found[month].success == (month != MONTH), month


def _edited(con: duckdb.DuckDBPyConnection, source: str, month: str | None, edits: list[str]) -> str:
    """The partition's validation frame as a table ``edited``, changed by ``edits`` (SQL statements)."""
    sql, parameters = duckdb_ingest.validation_query(source, [month])
    if month is not None:
        sql = f"select * exclude ({PARTITION_COLUMN}) from ({sql})"
    con.execute(f"create or replace table edited as {sql}", parameters)
    for statement in edits:
        con.execute(statement)
    return "select * from edited"


# (source, month, edits of its frame): each reaches an edge of GX's semantics
EDGES = {
    "nulls and bounds": (
        "order_lines",
        "2024-01",
        [
            "update edited set quantity = null where rowid = 0",  # not null fails; between ignores it
            "update edited set quantity = 100000 where rowid = 1",  # the maximum itself: expected
            "update edited set quantity = 100001 where rowid = 2",
            "update edited set line_no = 0 where rowid = 3",
            "update edited set ship_mode = null where rowid = 4",  # in set ignores a null
            "update edited set ship_mode = 'drone' where rowid = 5",
            "update edited set unit_price = -0.01 where rowid = 6",
            "update edited set _unknown_customer_id = 'C1' where rowid < 3",
        ],
    ),
    "a key repeated, and one with a missing part": (
        "order_lines",
        "2024-01",
        [
            "insert into edited select * from edited where rowid < 2",
            "insert into edited select * from edited where rowid = 0",
            "update edited set order_id = null where rowid in (4, 5)",
            (
                "update edited set line_no = 7, order_id = (select order_id from edited where rowid = 4)"
                " where rowid = 5"
            ),
        ],
    ),
    "a key missing whole, twice": (
        "gl_costs",
        "2024-02",
        [
            "insert into edited select * from edited where rowid < 2",
            ("update edited set period = null, cost_center = null, account = null where rowid in (0, 1)"),
        ],
    ),
    "an empty month": ("order_lines", "2024-03", ["delete from edited"]),  # fails its row count
    "an empty month where allowed": ("support_tickets", "2024-03", ["delete from edited"]),  # passes
    "a single key repeated in a snapshot": (
        "customers",
        None,
        [
            "insert into edited select * from edited where rowid < 3",
            "update edited set customer_id = null where rowid = 4",
            "update edited set segment = null where rowid = 5",
        ],
    ),
    "a month that is not one": (
        "scenarios",
        None,
        [
            "update edited set first_month = '2024-13' where rowid = 0",
            "update edited set last_month = null where rowid = 1",
            "update edited set last_month = 'x2024-01' where rowid = 2",
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(EDGES))
def test_edges_of_the_semantics_have_the_outcomes_gx_gives(
    published_sample: Paths, validator: LandingValidator, tmp_path: Path, case: str
):
    source, month, edits = EDGES[case]
    shutil.copy(published_sample.warehouse, tmp_path / "w.duckdb")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        if source == "scenarios" and not con.execute("select count(*) from landed.scenarios").fetchone()[0]:
            pytest.skip("the sample has no scenarios file")
        frame_sql = _edited(con, source, month, edits)
        found = evaluate(con, source, frame_sql, {}, [None])[None]
        gx = _gx(validator, source, month, duckdb_ingest._frame(con, frame_sql, {}))
    assert gx.success == (case == "an empty month where allowed")
    assert _facts(found) == _facts(gx)


def test_a_frame_without_a_column_its_suite_names_is_left_to_gx(published_sample: Paths, tmp_path: Path):
    shutil.copy(published_sample.warehouse, tmp_path / "w.duckdb")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        frame_sql = _edited(con, "sales_visits", "2024-01", ["alter table edited drop column hours"])
        with pytest.raises(FrameMismatch, match="hours"):
            evaluate(con, "sales_visits", frame_sql, {}, [None])


@pytest.mark.parametrize("value_set", [[], ["a"], ["a", "b", "c"]])
def test_a_value_set_counts_what_gx_counts_even_empty(value_set: list[str]):
    """An expectation of a set, the empty one included (nothing is in it: every value is unexpected, a null
    never is), counts the rows GX's pandas engine counts."""
    import great_expectations as gx
    import pandas as pd

    frame = pd.DataFrame({"x": ["a", None, "b", "c", "a", "d"]})
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("frames")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    expected = batch.validate(gx.expectations.ExpectColumnValuesToBeInSet(column="x", value_set=value_set))
    values: dict = {}
    condition = _unexpected(0, "ExpectColumnValuesToBeInSet", {"column": "x", "value_set": value_set}, values)
    with duckdb.connect() as con:
        con.register("frame", frame)
        (found,) = con.execute(f"select count(*) from frame where {condition}", values).fetchone()
    assert found == expected.result["unexpected_count"]
    assert expected.success == (found == 0)
