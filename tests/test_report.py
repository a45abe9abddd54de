"""The HTML report of each publication: written inside its release, and used in a real headless chromium, with
the network cut off, as a reader clicks. Expected figures are read from the published DuckDB file."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.engines.duckdb_warehouse import DuckDBWarehouse
from pipelines.engines.sql import ident, literal
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.publication.publish import CURRENT, RELEASES, current_database, publish
from pipelines.publication.report import report_path, write_release_report, write_report
from pipelines.publication.report.data import Bounds, read_publication
from tests.browser import open_page

# Every chart of the page, with the customer drill-down open.
CHARTS = {
    "chart-company-profit",
    "chart-whale",
    "chart-matrix",
    "chart-drivers",
    "chart-clv",
    "chart-activity-costs",
    "chart-activity-rates",
    "chart-utilisation",
    "chart-unused",
    "chart-waterfall-month",
    "chart-waterfall-t12m",
    "chart-customer-drivers",
    "chart-customer-history",
    "chart-scenario-whale",
    "chart-scenario-capacity",
    "chart-scenario-profit",
}

# What each chart drew: its plotly traces' points, and the marks (points, bars, lines) in its SVG.
CHARTS_DRAWN_JS = """
() => [...document.querySelectorAll("div.chart")].map((el) => ({
    id: el.id,
    points: (el.data || []).reduce((n, t) => n + ((t.x || t.y || []).length), 0),
    marks: el.querySelectorAll(".cartesianlayer .point, .cartesianlayer .js-line").length,
}))
"""

SCORECARD_JS = """
() => [...document.querySelectorAll("#scorecard-table tbody tr[data-metric]")].map((tr) => ({
    metric: tr.dataset.metric,
    actual: tr.dataset.actual === "" ? null : Number(tr.dataset.actual),
    text: tr.querySelector('[data-field="actual"]').textContent,
}))
"""


@pytest.fixture(scope="module")
def report(published_sample: Paths) -> Path:
    return published_sample.published / CURRENT / "report" / "index.html"


@pytest.fixture(scope="module")
def con(published_sample: Paths):
    with duckdb.connect(str(current_database(published_sample.published)), read_only=True) as connection:
        yield connection


def _cents(value) -> int:
    return round(value * 100)


def test_each_release_holds_its_own_offline_report(published_sample: Paths, report: Path, con):
    release = (published_sample.published / CURRENT).resolve()
    assert report.resolve() == report_path(release) and report.stat().st_size < 5_000_000
    assert not (published_sample.data_dir / "report").exists()  # the old report folder is gone
    page = report.read_text(encoding="utf-8")
    run_id = con.execute(
        "select run_id from marts.publish_log order by published_at desc limit 1"
    ).fetchone()[0]
    assert run_id in page
    # nothing is fetched at view time: no external script, stylesheet, image or font
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)


def test_a_report_that_fails_leaves_current_as_it_was(published_sample: Paths, tmp_path: Path):
    published = tmp_path / "published"
    first = publish(
        DuckDBWarehouse(published_sample.warehouse), published, run_id="first", extras=write_release_report
    )
    assert report_path(first.release).exists()

    def broken(release: Path) -> None:
        (release / "report").mkdir()
        raise RuntimeError("the report could not be written")

    with pytest.raises(RuntimeError, match="could not be written"):
        publish(DuckDBWarehouse(published_sample.warehouse), published, run_id="second", extras=broken)
    assert (published / CURRENT).resolve() == first.release.resolve()
    assert sorted(p.name for p in (published / RELEASES).iterdir()) == ["first"]  # no half-built release


@pytest.mark.system
def test_the_page_draws_every_chart_offline_without_console_errors(report: Path, con):
    with open_page(report) as session:
        page = session.page
        page.locator("#worst-table tbody tr[data-customer]").first.click()
        page.wait_for_selector("#customer-panel:not([hidden])")
        drawn = {chart["id"]: chart for chart in page.evaluate(CHARTS_DRAWN_JS)}
        identities = page.eval_on_selector_all(
            "#recon-table [data-identities]", "spans => spans.map((s) => s.dataset.identities)"
        )
        assert session.errors == [] and session.blocked == []
    assert CHARTS <= set(drawn)
    months = con.execute("select count(*) from marts.company_reconciliation where balanced").fetchone()[0]
    assert identities == ["3"] * months  # every month's three identities hold on the published amounts
    scored = con.execute(
        "select count(*) from marts.customer_clv where period = (select max(period) from marts.customer_profitability)"
    ).fetchone()[0]
    empty = [id for id, chart in drawn.items() if not (chart["points"] and chart["marks"])]
    assert empty == ([] if scored else ["chart-clv"]), drawn


@pytest.mark.system
def test_choosing_a_month_and_a_segment_shows_their_published_scorecard(report: Path, con):
    periods = [
        row[0]
        for row in con.execute("select distinct period from marts.customer_scorecard order by 1").fetchall()
    ]
    segment = con.execute(
        "select min(segment) from marts.customer_scorecard where segment <> 'all'"
    ).fetchone()[0]
    with open_page(report) as session:
        page = session.page
        latest = {row["metric"]: row for row in page.evaluate(SCORECARD_JS)}
        for period, chosen in ((periods[0], "all"), (periods[0], segment)):
            page.select_option("#month", label=f"{period:%b %Y}")
            page.select_option("#segment", value=chosen)
            page.wait_for_selector(
                f'body[data-month="{period:%Y-%m}"][data-segment="{chosen}"]', state="attached"
            )
            shown = {row["metric"]: row for row in page.evaluate(SCORECARD_JS)}
            expected = dict(
                con.execute(
                    "select metric, cast(actual as double) from marts.customer_scorecard "
                    "where period = ? and segment = ?",
                    [period, chosen],
                ).fetchall()
            )
            assert set(shown) == set(expected)
            for metric, value in expected.items():
                if value is None:
                    assert shown[metric]["actual"] is None and shown[metric]["text"] == "\u2013", metric
                else:
                    assert shown[metric]["actual"] == pytest.approx(value, rel=1e-12, abs=1e-12), metric
            if chosen == "all":  # the figures on the page changed from the latest month's
                assert {m: r["text"] for m, r in shown.items()} != {m: r["text"] for m, r in latest.items()}
        assert session.errors == []
    assert len(periods) > 1


@pytest.mark.system
def test_a_searched_customers_waterfall_adds_up_to_its_published_profit(report: Path, con):
    # the customer of the latest month with the most activities, found by name
    period, customer, name, abc, gm, overhead, traditional = con.execute(
        """
        select p.period, p.customer_id, p.customer_name, p.abc_profit, p.gross_margin, p.traditional_overhead,
               p.traditional_profit
        from marts.customer_profitability as p
        join marts.customer_cost_to_serve as c using (period, customer_id)
        where p.period = (select max(period) from marts.customer_profitability)
        group by all
        order by count(*) desc, p.abc_profit, p.customer_id
        limit 1
        """
    ).fetchone()
    activities = con.execute(
        "select count(*) from marts.customer_cost_to_serve where period = ? and customer_id = ?",
        [period, customer],
    ).fetchone()[0]
    trailing_abc, months = con.execute(
        "select sum(abc_profit), count(distinct period) from marts.customer_profitability "
        "where customer_id = ? and period > ?::date - interval 12 month and period <= ?",
        [customer, period, period],
    ).fetchone()
    with open_page(report) as session:
        page = session.page
        page.fill("#customer-search", name)
        page.press("#customer-search", "Enter")
        page.wait_for_selector(f'body[data-customer="{customer}"]', state="attached")
        month = page.evaluate(
            "() => { const el = document.getElementById('chart-waterfall-month');"
            " return {steps: JSON.parse(el.dataset.steps), total: Number(el.dataset.total),"
            " x: el.data[0].x, y: el.data[0].y, measure: el.data[0].measure, traditional: el.data[1].y}; }"
        )
        t12m = page.evaluate("() => Number(document.getElementById('chart-waterfall-t12m').dataset.total)")
        title = page.text_content("#customer-title")
        assert session.errors == []
    assert name in title and customer in title
    # gross revenue, discounts, returns, cost of goods, then one step per activity: they add up to ABC profit
    assert len(month["steps"]) == 4 + activities
    assert sum(month["steps"]) == month["total"] == _cents(abc)
    drawn_steps = [y for y, m in zip(month["y"], month["measure"], strict=True) if m != "total"]
    assert sum(drawn_steps) == pytest.approx(float(abc), abs=1e-6)
    assert month["x"][-1] == "ABC profit" and month["y"][-1] == pytest.approx(float(abc))
    assert month["traditional"] == pytest.approx([float(gm), -float(overhead), float(traditional)])
    assert months >= 1 and t12m == _cents(trailing_abc)


LEVERS_JS = """
() => [...document.querySelectorAll("#levers-table tbody tr[data-activity]")].map((tr) => ({
    window: tr.dataset.window,
    activity: tr.dataset.activity,
    volume: Number(tr.dataset.volume),
    norm: Number(tr.dataset.norm),
    excess: Number(tr.dataset.excess),
    profit_at_norm: Number(tr.dataset.profitAtNorm),
    break_even: tr.dataset.breakEven === "" ? null : Number(tr.dataset.breakEven),
    cells: [...tr.cells].map((td) => td.textContent),
}))
"""


@pytest.mark.system
def test_a_customers_drill_down_lists_its_published_profit_levers(report: Path, con):
    # the latest month's customer with the most levers over the month and its trailing 12 months
    period, customer = con.execute(
        """
        select period, customer_id from marts.customer_profit_levers
        where period = (select max(period) from marts.customer_profit_levers)
        group by all
        having count(distinct time_window) = 2
        order by count(*) desc, customer_id
        limit 1
        """
    ).fetchone()
    published = con.execute(
        """
        select time_window, activity, round(cast(driver_volume as double), 1),
               round(cast(norm_driver_volume as double), 1), excess_cost, profit_at_norm,
               round(cast(break_even_price_change_pct as double), 2), driver
        from marts.customer_profit_levers
        where period = ? and customer_id = ?
        order by time_window, excess_cost desc, activity
        """,
        [period, customer],
    ).fetchall()
    with open_page(report) as session:
        page = session.page
        page.fill("#customer-search", customer)
        page.press("#customer-search", "Enter")
        page.wait_for_selector(f'body[data-customer="{customer}"]', state="attached")
        shown = page.evaluate(LEVERS_JS)
        assert session.errors == []
    assert [
        (
            row["window"],
            row["activity"],
            row["volume"],
            row["norm"],
            row["excess"],
            row["profit_at_norm"],
            row["break_even"],
        )
        for row in shown
    ] == [
        (window, activity, volume, norm, _cents(excess), _cents(at_norm), break_even)
        for window, activity, volume, norm, excess, at_norm, break_even, _ in published
    ]
    # what the reader sees: the window, the activity's and its driver's labels (the label dimensions'), the excess
    # in money
    activity_labels = dict(
        con.execute("select activity, activity_label from marts.dim_activities").fetchall()
    )
    driver_labels = dict(con.execute("select driver, driver_label from marts.dim_drivers").fetchall())
    for row, (window, activity, *_, excess, _, _, driver) in zip(shown, published, strict=True):
        assert row["cells"][0] == ("Month" if window == "month" else "Trailing 12 months")
        assert row["cells"][1] == activity_labels[activity]
        assert row["cells"][2] == driver_labels[driver]
        whole = excess.quantize(Decimal(1), rounding=ROUND_HALF_UP)  # the page's money: whole from 10 on
        digits = re.sub(r"^\D+", "", row["cells"][6]).replace(",", "")  # after the currency's sign
        assert digits == (f"{whole}" if excess >= 10 else f"{excess:.2f}")
    assert {row["window"] for row in shown} == {"month", "t12m"}


def _hover_and_click(page, chart: str, nth: int, con) -> str:
    """Hover the ``nth`` customer mark of ``chart``, check that the hover names the customer, click it; the
    customer's id."""
    point = page.locator(f"#{chart} .scatterlayer .trace .points path.point").nth(nth)
    index = point.evaluate("(p) => p.closest('.trace').__data__[0].trace.customdata[p.__data__.i]")
    customer = page.evaluate(f"() => D.customers.id[{index}]")
    name = con.execute(
        "select any_value(customer_name) from marts.customer_profitability where customer_id = ?", [customer]
    ).fetchone()[0]
    point.scroll_into_view_if_needed()
    box = point.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    hover = page.wait_for_selector(f"#{chart} .hoverlayer .hovertext")
    assert name in hover.text_content()  # the hover says which customer it is, with its figures
    page.mouse.click(x, y)
    page.wait_for_selector(f'body[data-customer="{customer}"]', state="attached")
    return customer


@pytest.mark.system
def test_clicking_a_customer_on_the_matrix_the_whale_curve_or_a_list_opens_it(report: Path, con):
    with open_page(report) as session:
        page = session.page
        opened = [
            _hover_and_click(page, "chart-matrix", 0, con),
            _hover_and_click(page, "chart-whale", 3, con),
        ]
        row = page.locator("#risk-table tbody tr[data-customer], #worst-table tbody tr[data-customer]").last
        listed = page.evaluate(f"() => D.customers.id[{row.get_attribute('data-customer')}]")
        row.click()
        page.wait_for_selector(f'body[data-customer="{listed}"]', state="attached")
        assert listed in page.text_content("#customer-title") and opened[1] != opened[0]
        assert session.errors == []


def test_a_bounded_report_holds_the_latest_months_and_the_customers_that_matter_most(
    published_sample: Paths, con
):
    bounds = Bounds.of(Settings.from_environ({"CPROF_REPORT_MONTHS": "2", "CPROF_REPORT_CUSTOMERS": "25"}))
    assert bounds == Bounds(2, 25)
    database = current_database(published_sample.published)
    data = read_publication(database, bounds)
    periods = [
        row[0]
        for row in con.execute(
            "select distinct period from marts.customer_profitability order by 1"
        ).fetchall()
    ]
    assert data["months"] == [f"{period:%Y-%m}" for period in periods[-2:]] and len(periods) > 2
    expected = con.execute(
        "select customer_id from marts.customer_profitability where period >= ? group by customer_id "
        "order by abs(sum(abc_profit)) desc, customer_id limit 25",
        [periods[-2]],
    ).fetchall()
    assert data["customers"]["id"] == sorted(customer for (customer,) in expected)
    assert data["meta"]["customers_total"] > 25 and data["meta"]["months_total"] == len(periods)
    assert set(data["profit"]["c"]) <= set(range(25)) and set(data["profit"]["m"]) == {0, 1}


@pytest.mark.system
def test_a_bounded_reports_page_says_what_it_holds(published_sample: Paths, con, tmp_path: Path):
    database = current_database(published_sample.published)
    periods = [
        row[0]
        for row in con.execute(
            "select distinct period from marts.customer_profitability order by 1"
        ).fetchall()
    ]
    bounds = Bounds.of(Settings.from_environ({"CPROF_REPORT_MONTHS": "2", "CPROF_REPORT_CUSTOMERS": "25"}))
    report = write_report(database, tmp_path / "report", bounds)
    with open_page(report) as session:
        scope = session.page.text_content("#scope")
        months = session.page.eval_on_selector_all("#month option", "options => options.length")
        assert session.errors == []
    assert f"the latest 2 of the {len(periods)} published months" in scope
    assert "the 25 customers with the largest absolute ABC profit over the 2 months it holds" in scope
    assert months == 2


@pytest.mark.system
def test_an_empty_publication_gets_a_page_that_says_so(published_sample: Paths, tmp_path: Path):
    empty = tmp_path / "cprof.duckdb"
    with duckdb.connect(str(empty)) as target:
        target.execute(f"attach {literal(current_database(published_sample.published))} as pub (read_only)")
        target.execute("create schema marts")
        for (table,) in target.execute(
            "select table_name from information_schema.tables where table_catalog = 'pub' and table_schema = 'marts'"
        ).fetchall():
            target.execute(
                f"create table marts.{ident(table)} as select * from pub.marts.{ident(table)} limit 0"
            )
    with open_page(write_report(empty, tmp_path / "report")) as session:
        assert "no customer months yet" in session.page.text_content("#loading")
        assert session.errors == []


# The mode-bar controls that work in the page alone (drag modes, zoom, PNG download): any other control, such as
# Plotly's "Share chart..." / "Edit in Chart Studio" (which post the chart's data to Plotly's cloud), fails.
OFFLINE_CONTROLS = {
    "Download plot as a PNG",
    "Zoom",
    "Pan",
    "Box Select",
    "Lasso Select",
    "Zoom in",
    "Zoom out",
    "Autoscale",
    "Reset axes",
    "Toggle Spike Lines",
    "Show closest data on hover",
    "Compare data on hover",
}

MODEBAR_JS = """
() => [...document.querySelectorAll("div.chart")].map((el) => ({
    id: el.id,
    controls: [...el.querySelectorAll(".modebar-btn")].map((b) => b.getAttribute("data-title")),
    links: [...el.querySelectorAll("a[href]")].map((a) => a.getAttribute("href")),
}))
"""


@pytest.mark.system
def test_no_chart_has_a_control_that_talks_to_a_server(report: Path):
    """Every chart of the page, the customer drill-down's too: each mode-bar control is an offline one, and
    pressing every one of them requests nothing and opens no window."""
    with open_page(report) as session:
        page = session.page
        page.locator("#worst-table tbody tr[data-customer]").first.click()
        page.wait_for_selector("#customer-panel:not([hidden])")
        charts = page.evaluate(MODEBAR_JS)
        assert {chart["id"] for chart in charts} >= CHARTS
        assert all(chart["controls"] for chart in charts), charts  # the mode bar is there, offline controls
        unknown = {chart["id"]: set(chart["controls"]) - OFFLINE_CONTROLS for chart in charts}
        assert not any(unknown.values()), unknown
        assert not any(chart["links"] for chart in charts), charts
        pages_before = len(session.context.pages)
        for chart in charts:
            buttons = page.locator(f"#{chart['id']} .modebar-btn")
            for k in range(buttons.count()):
                page.locator(f"#{chart['id']}").hover()
                buttons.nth(k).click()
        assert session.errors == [] and session.blocked == []
        assert len(session.context.pages) == pages_before


@pytest.mark.system
def test_a_figure_that_is_not_whole_is_shown_as_not_scored_never_coloured(report: Path, con):
    """The sample's first month: its trailing windows hold one month of history. The page shows each scorecard
    row's published status, a partial one as 'partial' (never red, amber or green), and the weight not scored."""
    first = con.execute("select min(period) from marts.customer_scorecard").fetchone()[0]
    published = dict(
        con.execute(
            "select metric, coalesce(status_reason, status) from marts.customer_scorecard "
            "where period = ? and segment = 'all'",
            [first],
        ).fetchall()
    )
    not_scored = con.execute(
        "select owner, not_scored_weight from marts.incentive_attainment where period = ? order by owner",
        [first],
    ).fetchall()
    with open_page(report) as session:
        page = session.page
        page.select_option("#month", label=f"{first:%b %Y}")
        page.wait_for_selector(f'body[data-month="{first:%Y-%m}"]', state="attached")
        shown = page.evaluate(
            """() => [...document.querySelectorAll("#scorecard-table tbody tr[data-metric]")].map((tr) => ({
                metric: tr.dataset.metric, status: tr.dataset.status,
                badge: tr.querySelector('[data-field="status"] .badge').textContent,
                colour: tr.querySelector('[data-field="status"] .badge').className }))"""
        )
        attainment = page.eval_on_selector_all(
            "#attainment-table tbody tr", "rows => rows.map((r) => r.cells[4].textContent)"
        )
        trend_symbols = page.evaluate(
            "() => document.getElementById('chart-trend-customer_profit_t12m').data[0].marker.symbol"
        )
        assert session.errors == []
    assert published["customer_profit_t12m"] == "partial_window"
    for row in shown:
        reason = published[row["metric"]]
        if reason in ("green", "amber", "red"):
            assert row["status"] == reason and row["badge"] == reason.capitalize()
        else:
            assert row["status"] == "not_scored", row
            assert not {"green", "amber", "red"} & set(row["colour"].split()), row
            assert row["badge"] == {"partial_window": "partial", "no_target": "no target"}.get(
                reason, row["badge"]
            )
    assert attainment == [f"{weight:.2f}" for _, weight in not_scored]
    assert trend_symbols[0] == "circle-open"  # a partial month is drawn hollow grey, not in a status colour


SCENARIO_JS = """
() => ({
    measures: Object.fromEntries([...document.querySelectorAll("#scenario-table tbody tr[data-measure]")].map(
        (tr) => [tr.dataset.measure, [Number(tr.dataset.actual), Number(tr.dataset.scenario)]])),
    movers: [...document.querySelectorAll("#movers-table tbody tr[data-id]")].map(
        (tr) => [tr.dataset.id, Number(tr.dataset.change)]),
    note: document.getElementById("scenario-note").textContent,
    whale: document.getElementById("chart-scenario-whale").data.map((t) => [t.name, t.y.length, Math.max(...t.y)]),
    values: Object.fromEntries([...document.querySelectorAll("#scenario-table tbody tr[data-measure]")].map(
        (tr) => [tr.dataset.measure, [tr.dataset.actual, tr.dataset.scenario]])),
})
"""


@pytest.mark.system
def test_the_scenario_view_shows_each_scenario_against_actual_as_published(report: Path, con):
    """Choose each scenario: the company figures both ways, the customers who move most and the whale curves'
    peaks are the published scenario marts' of the latest scenario month."""
    latest = con.execute("select max(period) from marts.scenario_summary").fetchone()[0]
    names = [
        n
        for (n,) in con.execute(
            "select scenario from marts.dim_scenarios where not is_baseline order by 1"
        ).fetchall()
    ]
    assert len(names) >= 3
    fields = {"op": "operating_profit", "unused": "unused_capacity_cost", "abc": "abc_customer_profit"}
    with open_page(report) as session:
        page = session.page
        for name in names:
            page.select_option("#scenario", value=name)
            shown = page.evaluate(SCENARIO_JS)
            for field, column in fields.items():
                published = con.execute(
                    f"select scenario, {column} from marts.scenario_summary where period = ? "
                    "and scenario in ('actual', ?)",
                    [latest, name],
                ).fetchall()
                expected = dict(published)
                assert shown["measures"][field] == [_cents(expected["actual"]), _cents(expected[name])], field
            movers = con.execute(
                "select customer_id, abc_profit_change from marts.scenario_comparison "
                "where scenario = ? and period = ? and abc_profit_change <> 0 "
                "order by abs(abc_profit_change) desc, customer_id limit 10",
                [name, latest],
            ).fetchall()
            assert shown["movers"] == [[c, _cents(change)] for c, change in movers]
            assert name.replace("_", " ").lower() in shown["note"].lower()
            peaks = dict(
                con.execute(
                    "select scenario, max(cumulative_profit_pct) from marts.scenario_whale_curve "
                    "where period = ? and scenario in ('actual', ?) group by 1",
                    [latest, name],
                ).fetchall()
            )
            assert [t[2] for t in shown["whale"]] == pytest.approx(
                [float(peaks["actual"]), float(peaks[name])], abs=0.001
            )
            # what a satisfaction lever is worth, as of the month: the published scenario_customer_value summed
            value = {
                s: (index, staying, clv, complete)
                for s, index, staying, clv, complete in con.execute(
                    "select scenario, round(avg(satisfaction_index), 2), round(sum(retention_probability), 1), "
                    "cast(sum(clv_profit) * 100 as bigint), count(clv_profit) = count(clv_profit_actual) "
                    "from marts.scenario_customer_value where period = ? and scenario in ('actual', ?) group by 1",
                    [latest, name],
                ).fetchall()
            }

            def text(v) -> str:
                # as JavaScript writes a number into an attribute
                if isinstance(v, float):
                    return str(int(v)) if v.is_integer() else repr(v)
                return "null" if v is None else str(v)

            assert shown["values"]["index"] == [text(value["actual"][0]), text(value[name][0])]
            assert shown["values"]["staying"] == [text(value["actual"][1]), text(value[name][1])]
            assert shown["values"]["clv"] == [
                text(value["actual"][2]),
                text(value[name][2] if value[name][3] else None),
            ]
        assert session.errors == [] and session.blocked == []
