"""Satisfaction (derived importance, NPS, CSAT, index), retention and the customer scorecard."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pytest
from dagster import AssetKey

from pipelines.domain.satisfaction import ipa_quadrant, relative_weights
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.publication.publish import current_database
from pipelines.run import dagster_instance, run_pipeline
from pipelines.sample.generate import SURVEY_ATTRIBUTES, SURVEY_TRUTH, GenerateConfig, generate


def test_relative_weights_decompose_r_squared_and_match_independent_predictors():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 3))
    y = x @ np.array([3.0, 2.0, 1.0]) + rng.normal(size=20_000)
    weights, r_squared = relative_weights(x, y)
    ols = np.linalg.lstsq(np.column_stack([np.ones(len(y)), x]), y, rcond=None)[0]
    fitted = np.column_stack([np.ones(len(y)), x]) @ ols
    assert r_squared == pytest.approx(1 - ((y - fitted) ** 2).sum() / ((y - y.mean()) ** 2).sum(), rel=1e-9)
    assert weights.sum() == pytest.approx(1.0)
    # Uncorrelated predictors: each weight is its share of the squared standardised coefficients.
    assert weights == pytest.approx(np.array([9, 4, 1]) / 14, abs=0.01)
    # Rescaling an attribute changes nothing.
    assert relative_weights(x * np.array([10.0, 1.0, 0.1]), y)[0] == pytest.approx(weights)


def test_relative_weights_share_credit_between_correlated_attributes():
    rng = np.random.default_rng(1)
    common = rng.normal(size=20_000)
    x = np.column_stack([common + 0.3 * rng.normal(size=20_000), common + 0.3 * rng.normal(size=20_000)])
    y = x[:, 0] + rng.normal(size=20_000)  # only the first drives y, but the second is almost the same
    weights, _ = relative_weights(x, y)
    assert weights[0] > weights[1] > 0.2


def test_relative_weights_refuse_what_they_cannot_estimate():
    with pytest.raises(ValueError, match="too few"):
        relative_weights(np.ones((3, 5)), np.arange(3))
    with pytest.raises(ValueError, match="does not vary"):
        relative_weights(np.column_stack([np.ones(50), np.arange(50)]), np.arange(50.0))


def test_ipa_quadrants():
    assert ipa_quadrant([0.5, 0.3, 0.1, 0.1], [5.0, 8.0, 5.0, 8.0]) == [
        "concentrate_here",
        "keep_up_the_good_work",
        "low_priority",
        "possible_overkill",
    ]


def test_weights_recovered_from_generated_survey_rank_right_and_lie_within_005(tmp_path: Path):
    """The generator draws overall scores from attribute ratings with known weights (shares of explained
    variance); the derived importance recovers them."""
    landing = tmp_path / "landing"
    generate(GenerateConfig(customers=3000, months=24, seed=5), landing)
    wide = (
        duckdb.connect()
        .execute(
            f"pivot (select response_id, question_id, score from read_csv('{landing}/survey_responses/*.csv')) "
            "on question_id using first(score)"
        )
        .df()
    )
    columns = [f"ATTR_{a.upper()}" for a in SURVEY_ATTRIBUTES]
    weights, _ = relative_weights(wide[columns].to_numpy(), wide["OVERALL"].to_numpy())
    truth = np.array([SURVEY_TRUTH[a] for a in SURVEY_ATTRIBUTES])
    assert np.argsort(weights).tolist() == np.argsort(truth).tolist()
    assert np.abs(weights - truth).max() < 0.05, dict(zip(SURVEY_ATTRIBUTES, weights.round(3), strict=True))


@pytest.fixture(scope="module")
def published(published_sample: Paths):
    with duckdb.connect(str(current_database(published_sample.published)), read_only=True) as con:
        yield con


def test_survey_marts_are_on_their_scales(published):
    sums = published.execute(
        "select period, sum(importance_weight) from marts.satisfaction_drivers group by period"
    ).fetchall()
    assert sums and all(total == pytest.approx(1.0) for _, total in sums)
    bounds = published.execute(
        "select min(nps), max(nps), min(csat), max(csat), min(satisfaction_index), max(satisfaction_index), "
        "count(*) from marts.customer_satisfaction"
    ).fetchone()
    assert -100 <= bounds[0] <= bounds[1] <= 100 and 0 <= bounds[2] <= bounds[3] <= 100
    assert 0 <= bounds[4] <= bounds[5] <= 100 and bounds[6] > 0
    quadrants = {
        q
        for (q,) in published.execute(
            "select distinct ipa_quadrant from marts.satisfaction_drivers"
        ).fetchall()
    }
    assert quadrants <= {"concentrate_here", "keep_up_the_good_work", "low_priority", "possible_overkill"}


def test_customer_nps_and_csat_follow_their_definitions(published_sample: Paths, published):
    """Recompute one customer-month from the landing file."""
    period, customer, nps, csat, responses = published.execute(
        "select period, customer_id, nps, csat, responses from marts.customer_satisfaction "
        "order by responses desc, period, customer_id limit 1"
    ).fetchone()
    answers = (
        duckdb.connect()
        .execute(
            f"select question_id, score from read_csv('{published_sample.landing}/survey_responses/{period:%Y-%m}.csv') "
            "where customer_id = ?",
            [customer],
        )
        .fetchall()
    )
    nps_scores = [s for q, s in answers if q == "NPS"]
    overall = [s for q, s in answers if q == "OVERALL"]
    assert responses == len(nps_scores)
    expected_nps = 100 * (sum(s >= 9 for s in nps_scores) - sum(s <= 6 for s in nps_scores)) / len(nps_scores)
    assert nps == pytest.approx(expected_nps)
    assert csat == pytest.approx(100 * sum(s >= 8 for s in overall) / len(overall))


def test_scorecard_statuses_honour_direction_and_tolerance(published_sample: Paths, published):
    """Each scored row against its target (its own, else the company's for rates and averages); a row that is
    not whole (the sample's three months hold no complete 12-month window) is not scored, with its reason."""
    targets = {
        (m, s): (t, d, tol, o, w)
        for m, s, t, d, tol, o, w in duckdb.connect()
        .execute(f"select * from read_csv('{published_sample.landing}/reference/scorecard_targets.csv')")
        .fetchall()
    }
    intensive = {"pct_unprofitable_customers", "unprofitable_revenue_share", "retention_rate", "nps"}
    intensive |= {"satisfaction_index", "mean_profit_clv"}
    rows = published.execute(
        "select period, segment, metric, actual, target, variance, status, owner, incentive_weight, "
        "status_reason, window_complete from marts.customer_scorecard"
    ).fetchall()
    assert {r[2] for r in rows} == {
        "customer_profit_t12m",
        "pct_unprofitable_customers",
        "unprofitable_revenue_share",
        "retention_rate",
        "new_customers",
        "nps",
        "satisfaction_index",
        "mean_profit_clv",
    }
    segments = {r[1] for r in rows}
    assert segments >= {"all", "enterprise", "mid_market", "small_business"}
    assert len(rows) == len({r[0] for r in rows}) * len(segments) * 8  # every month, segment and metric
    checked = partial = 0
    for period, segment, metric, actual, target, variance, status, owner, weight, reason, whole in rows:
        own = targets.get((metric, segment))
        goal = own or (targets.get((metric, "all")) if segment == "all" or metric in intensive else None)
        if not whole:
            assert (status, reason) == ("not_scored", "partial_window"), (period, segment, metric)
            partial += 1
            continue
        if status == "not_scored":
            assert reason in ("no_target", "no_value", "clv_not_fitted", "clv_missing"), (
                period,
                segment,
                metric,
            )
            assert reason != "no_target" or goal is None
            continue
        target_value, direction, tolerance, who, _ = goal
        goal_value, tolerance = Decimal(str(target_value)), Decimal(str(tolerance))
        assert reason is None and target == goal_value and variance == actual - goal_value and owner == who
        assert weight == (Decimal(str(own[4])) if own else 0)
        better = actual >= goal_value if direction == "higher" else actual <= goal_value
        near = actual >= goal_value - tolerance if direction == "higher" else actual <= goal_value + tolerance
        assert status == ("green" if better else "amber" if near else "red"), (period, segment, metric)
        checked += 1
    assert checked >= 4 and partial >= 5 * len(segments) * 3  # the five trailing-12 metrics, every month
    assert len({r[6] for r in rows}) >= 2  # the sample is not all one colour


def test_incentive_attainment_sums_the_weights_on_target(published):
    mismatched = published.execute(
        """
        select count(*) from marts.incentive_attainment as a
        full join (
            select period, owner,
                   coalesce(sum(incentive_weight) filter (where status = 'green'), 0) as green,
                   sum(incentive_weight) as total,
                   coalesce(sum(incentive_weight) filter (where status = 'not_scored'), 0) as not_scored
            from marts.customer_scorecard where owner is not null and segment = 'all' group by period, owner
        ) as s using (period, owner)
        where a.attained_weight is distinct from s.green or a.total_weight is distinct from s.total
            or a.not_scored_weight is distinct from s.not_scored
        """
    ).fetchone()[0]
    assert mismatched == 0


def test_retention_counts_add_up(published):
    rows = published.execute(
        "select retained_customers + churned_customers = prior_active_customers, retention_rate, "
        "retained_customers, prior_active_customers from marts.customer_retention"
    ).fetchall()
    assert rows and all(ok for ok, *_ in rows)
    for _, rate, retained, prior in rows:
        if prior:
            assert float(rate) == pytest.approx(retained / prior, abs=1e-4)


def test_a_question_added_before_its_answers_changes_no_weight_index_or_score(
    published_sample: Paths, tmp_path
):
    """The issue's December: a question in survey_questions.csv that no response answers yet. Every month keeps
    its drivers and its customers' indexes, equal to those computed without the question, and the run says the
    question was left out (the small sample's last month, 2024-03, stands for December)."""
    paths = Paths(tmp_path / "data")
    shutil.copytree(published_sample.landing, paths.landing)
    questions = paths.landing / "reference" / "survey_questions.csv"
    questions.write_text(
        questions.read_text() + 'ATTR_SUSTAINABILITY,attribute,"Satisfaction with sustainability"\n'
    )
    said: list[str] = []
    run_pipeline(Settings(data_dir=paths.data_dir), progress=said.append)

    tables = {
        "drivers": "select period, question_id, importance_weight, mean_score, ipa_quadrant, responses, r_squared "
        "from marts.satisfaction_drivers order by all",
        "satisfaction": "select * from marts.customer_satisfaction order by all",
        "index": "select period, segment, actual, status, trend from marts.customer_scorecard "
        "where metric = 'satisfaction_index' order by all",
    }
    found = {}
    for name, built in (("without", published_sample), ("with", paths)):
        with duckdb.connect(str(current_database(built.published)), read_only=True) as con:
            found[name] = {table: con.execute(sql).fetchall() for table, sql in tables.items()}
    without, with_question = found["without"], found["with"]
    assert {row[0] for row in with_question["drivers"]} == {row[0] for row in without["drivers"]}
    assert len(without["drivers"]) == 5 * len(
        {row[0] for row in without["drivers"]}
    )  # five attributes a month
    assert with_question == without  # drivers, every customer's index, the company index: unchanged
    assert any(index is not None for *_, index in with_question["satisfaction"])

    note = (
        "note: marts/satisfaction_drivers: ATTR_SUSTAINABILITY has no answers in the 12-month windows of "
        "2024-01..2024-03: it is left out of those months' weights and satisfaction index"
    )
    assert any(line.startswith(note) for line in said), said
    materialization = (
        dagster_instance(paths)
        .get_latest_materialization_event(AssetKey(["marts", "satisfaction_drivers"]))
        .asset_materialization
    )
    assert materialization.metadata["questions_without_answers"].value == {
        month: ["ATTR_SUSTAINABILITY"] for month in ("2024-01", "2024-02", "2024-03")
    }
