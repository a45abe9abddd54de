"""The HTML report of a publication: content checks on the page, and a real headless browser loading it."""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipelines.publish import current_database
from pipelines.report import (
    incentive_attainment,
    matrix_svg,
    money,
    month,
    nice_ticks,
    percent,
    whale_curve_svg,
    write_report,
)
from tests.browser import ensure_chromium, render, screenshot

PERIODS = pd.to_datetime(["2025-10-01", "2025-11-01", "2025-12-01"])
CUSTOMERS = 80
UNCLASSIFIED = 6  # customers with no revenue in a month: no price realisation, no cost per revenue
RUN_ID = "run-2026-01-05-a1b2c3"
SECTIONS = ("scorecard", "whale-curve", "matrix", "drivers", "clv", "costing")
CHARTS = ("whale-curve-chart", "matrix-chart", "drivers-chart", "clv-chart")
NAMES = [
    f"{first} {second}"
    for first in ("Northwind", "Harbour", "Alder", "Summit", "Kestrel", "Meridian", "Oakridge", "Brightwater")
    for second in (
        "Supplies",
        "Engineering",
        "Facilities",
        "Logistics",
        "Builders",
        "Electric",
        "Foods",
        "Retail",
        "Labs",
        "Group",
    )
]


# --- a small publication, written out independently of the report code ---------------------------------


def _profitability(rng: np.random.Generator) -> pd.DataFrame:
    """Customer months with the Shapiro matrix classified against each period's medians, as the mart does."""
    frames = []
    segments = np.array(["enterprise", "mid_market", "small_business"])
    for period in PERIODS:
        ids = [f"C{i:05d}" for i in range(1, CUSTOMERS + 1)]
        revenue = np.round(rng.lognormal(9.5, 1.0, CUSTOMERS), 2)
        realisation = np.round(rng.uniform(0.78, 0.99, CUSTOMERS), 6)
        cost_ratio = np.round(rng.lognormal(-2.2, 0.6, CUSTOMERS), 6)
        cost_ratio[3] = 4.5  # one extreme cost to serve: clipped at the 99th percentile on the chart
        revenue[-UNCLASSIFIED:] = 0.0
        realisation[-UNCLASSIFIED:] = np.nan
        cost_ratio[-UNCLASSIFIED:] = np.nan
        gross_margin = revenue * 0.32
        abc_profit = np.round(gross_margin - cost_ratio * revenue, 2)
        abc_profit[-UNCLASSIFIED:] = -np.round(rng.uniform(20, 300, UNCLASSIFIED), 2)
        traditional = np.round(gross_margin - 0.12 * revenue, 2)
        mx, my = np.nanmedian(cost_ratio), np.nanmedian(realisation)
        quadrant = np.where(
            realisation >= my,
            np.where(cost_ratio >= mx, "carriage_trade", "passive"),
            np.where(cost_ratio >= mx, "aggressive", "bargain_basement"),
        )
        quadrant[-UNCLASSIFIED:] = "unclassified"
        frames.append(
            pd.DataFrame(
                {
                    "period": period,
                    "customer_id": ids,
                    "customer_name": NAMES,
                    "segment": segments[np.arange(CUSTOMERS) % 3],
                    "net_revenue": revenue,
                    "abc_profit": abc_profit,
                    "traditional_profit": traditional,
                    "is_profitable": abc_profit > 0,
                    "matrix_quadrant": quadrant,
                    "net_price_realisation": realisation,
                    "cost_to_serve_per_revenue": cost_ratio,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _whale_curve(profitability: pd.DataFrame) -> pd.DataFrame:
    """Trailing profit per customer ranked best first, with cumulative profit and customer percentages."""
    frames = []
    for period in PERIODS[1:]:
        window = profitability[profitability["period"] <= period]
        profit = window.groupby("customer_id")["abc_profit"].sum().reset_index(name="profit_t12m")
        profit = profit.sort_values(
            ["profit_t12m", "customer_id"], ascending=[False, True], ignore_index=True
        )
        cumulative = profit["profit_t12m"].cumsum()
        frames.append(
            profit.assign(
                period=period,
                customer_rank=np.arange(1, len(profit) + 1),
                cumulative_profit=cumulative.round(2),
                cumulative_profit_pct=(100 * cumulative / profit["profit_t12m"].sum()).round(4),
                cumulative_customer_pct=(100 * np.arange(1, len(profit) + 1) / len(profit)).round(4),
                months_in_window=window["period"].nunique(),
            )
        )
    return pd.concat(frames, ignore_index=True)


def _scorecard() -> pd.DataFrame:
    """Scorecard rows for two periods; the latest has green, amber and red metrics and one without target."""
    rows = [
        ("all", "customer_profit_t12m", 1_312_400.0, 1_250_000.0, "green", "up", "cfo", 0.25),
        ("all", "pct_unprofitable_customers", 0.187, 0.15, "amber", "flat", "head_of_sales", 0.15),
        ("all", "unprofitable_revenue_share", 0.162, 0.10, "red", "up", "head_of_sales", 0.10),
        ("all", "retention_rate", 0.812, 0.75, "green", "up", "head_of_customer_success", 0.15),
        ("all", "new_customers", 14.0, 12.0, "green", "down", "head_of_sales", 0.10),
        ("all", "nps", 24.5, 30.0, "red", "down", "head_of_customer_success", 0.10),
        ("all", "satisfaction_index", 66.2, 65.0, "green", None, "head_of_customer_success", 0.10),
        ("all", "mean_profit_clv", 812.4, 1000.0, "amber", "flat", "cfo", 0.05),
        ("enterprise", "retention_rate", 0.88, 0.85, "green", "flat", "key_account_director", 0.0),
        ("enterprise", "gross_margin_per_order", 412.0, None, None, None, "key_account_director", 0.0),
        ("small_business", "nps", 19.0, 25.0, "red", "down", "head_of_customer_success", 0.0),
    ]
    frames = []
    for period, shift in ((PERIODS[-2], 0.97), (PERIODS[-1], 1.0)):
        frame = pd.DataFrame(
            rows,
            columns=["segment", "metric", "actual", "target", "status", "trend", "owner", "incentive_weight"],
        )
        frame["actual"] = frame["actual"] * shift
        frame["variance"] = frame["actual"] - frame["target"]
        frame["period"] = period
        frames.append(frame)
    columns = ["period", "segment", "metric", "actual", "target", "variance", "status", "trend", "owner"]
    return pd.concat(frames, ignore_index=True)[[*columns, "incentive_weight"]]


def _drivers() -> pd.DataFrame:
    """Five survey attributes per period with importance weights summing to 1 and mean scores out of 10."""
    attributes = {
        "ATTR_PRODUCT_QUALITY": (0.34, 7.4, "keep_up_the_good_work"),
        "ATTR_DELIVERY_RELIABILITY": (0.27, 6.1, "concentrate_here"),
        "ATTR_PRICE_VALUE": (0.19, 6.4, "low_priority"),
        "ATTR_SUPPORT_QUALITY": (0.12, 7.2, "possible_overkill"),
        "ATTR_EASE_OF_ORDERING": (0.08, 7.0, "possible_overkill"),
    }
    return pd.DataFrame(
        [
            (period, question, weight, score - 0.1 * (period != PERIODS[-1]), quadrant)
            for period in PERIODS[-2:]
            for question, (weight, score, quadrant) in attributes.items()
        ],
        columns=["period", "question_id", "importance_weight", "mean_score", "ipa_quadrant"],
    )


def _clv(rng: np.random.Generator, profitability: pd.DataFrame) -> pd.DataFrame:
    """Profit and revenue CLV per customer as of the latest period, with a few defection-prone customers."""
    latest = profitability[profitability["period"] == PERIODS[-1]]
    profit_t12m = (
        profitability.groupby("customer_id")["abc_profit"].sum().reindex(latest["customer_id"]).to_numpy()
    )
    p_alive = np.round(rng.beta(4, 2, len(latest)), 4)
    clv_profit = np.round(profit_t12m * p_alive * 3.2 + rng.normal(0, 400, len(latest)), 2)
    high_profit = profit_t12m >= np.quantile(profit_t12m, 0.6)
    return pd.DataFrame(
        {
            "period": PERIODS[-1],
            "customer_id": latest["customer_id"].to_numpy(),
            "p_alive": p_alive,
            "clv_revenue": np.round(latest["net_revenue"].to_numpy() * p_alive * 10, 2),
            "clv_profit": clv_profit,
            "defection_prone": high_profit & (p_alive < 0.6),
            "profit_t12m": np.round(profit_t12m, 2),
        }
    )


def _publish_log() -> pd.DataFrame:
    """Two publications; the later one is the report's."""
    return pd.DataFrame(
        {
            "run_id": ["run-2025-12-05-old", RUN_ID],
            "published_at": pd.to_datetime(["2025-12-05 06:00:00", "2026-01-05 06:12:30"]),
            "first_period": PERIODS[0],
            "last_period": [PERIODS[-2], PERIODS[-1]],
            "table_name": "customer_profitability",
            "row_count": [2 * CUSTOMERS, 3 * CUSTOMERS],
            "checksum": ["x", "y"],
        }
    )


def _tables() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(11)
    profitability = _profitability(rng)
    comparison = profitability[
        ["period", "customer_id", "segment", "net_revenue", "abc_profit", "traditional_profit"]
    ]
    return {
        "customer_profitability": profitability,
        "whale_curve": _whale_curve(profitability),
        "customer_scorecard": _scorecard(),
        "satisfaction_drivers": _drivers(),
        "customer_clv": _clv(rng, profitability),
        "costing_comparison": comparison,
        "publish_log": _publish_log(),
    }


def _write_database(path: Path, tables: dict[str, pd.DataFrame]) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        for name, frame in tables.items():
            con.register("frame", frame)
            dates = [c for c in ("period", "first_period", "last_period") if c in frame]
            replace = f" replace ({', '.join(f'cast({c} as date) as {c}' for c in dates)})" if dates else ""
            con.execute(f"create table marts.{name} as select *{replace} from frame")
            con.unregister("frame")
    return path


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return _tables()


@pytest.fixture(scope="module")
def report(tmp_path_factory, tables) -> Path:
    folder = tmp_path_factory.mktemp("report")
    return write_report(_write_database(folder / "cprof.duckdb", tables), folder / "site")


@pytest.fixture(scope="module")
def page(report: Path) -> str:
    return report.read_text(encoding="utf-8")


def _section(page: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}">(.*?)</section>', page, re.DOTALL)
    assert match, f"no section {section_id}"
    return match.group(1)


# --- the page's content --------------------------------------------------------------------------------


def test_report_is_written_in_place_without_leftovers(report: Path):
    assert report.name == "index.html" and report.stat().st_size > 10_000
    assert [p.name for p in report.parent.iterdir()] == ["index.html"]


def test_header_shows_as_of_month_and_publication(page: str):
    header = page[page.index("<header>") : page.index("</header>")]
    assert "Customer profitability" in header
    assert "As of <strong>Dec 2025</strong>" in header
    assert RUN_ID in header and "5 Jan 2026 06:12 UTC" in header
    assert "Generated" in header


@pytest.mark.parametrize("section_id", SECTIONS)
def test_every_section_is_present_with_content(page: str, section_id: str):
    assert "Not available yet" not in _section(page, section_id)


def test_every_chart_is_an_svg_with_title_and_class(page: str):
    svgs = re.findall(r"<svg[^>]*>\s*<title[^>]*>[^<]+</title>", page)
    assert len(svgs) == len(CHARTS) == page.count("<svg")
    assert all('class="chart"' in svg for svg in svgs)
    for chart in CHARTS:
        assert f'id="{chart}"' in page


def test_scorecard_shows_latest_period_with_labels_and_badges(page: str):
    scorecard = _section(page, "scorecard")
    for colour in ("green", "amber", "red"):
        assert f'<span class="badge {colour}">' in scorecard
    assert '<span class="badge grey">no target</span>' in scorecard
    assert "Customer profit (12 months)" in scorecard and "Revenue from unprofitable customers" in scorecard
    assert "gross_margin_per_order" in scorecard  # an unknown metric is shown as it is
    assert "1,312,400" in scorecard and "1,273,028" not in scorecard  # the latest period only
    assert "81.2\u00a0%" in scorecard and "+6.2\u00a0pts" in scorecard  # rates as percentages, points
    assert (
        scorecard.index("All customers") < scorecard.index("Enterprise") < scorecard.index("Small business")
    )
    assert "Head of customer success" in scorecard and "CFO" in scorecard


def test_incentive_attainment_sums_green_weights_of_segment_all(tables):
    latest = tables["customer_scorecard"][tables["customer_scorecard"]["period"] == PERIODS[-1]]
    attainment = incentive_attainment(latest).set_index("owner")
    assert attainment.at["cfo", "earned"] == pytest.approx(0.25)
    assert attainment.at["cfo", "total"] == pytest.approx(0.30)
    assert attainment.at["head_of_sales", "attainment"] == pytest.approx(0.10 / 0.35)
    assert attainment.at["head_of_customer_success", "earned"] == pytest.approx(0.25)
    assert "key_account_director" not in attainment.index  # owns no company-wide metric


def test_whale_curve_marks_the_peak_of_the_latest_period(page: str, tables):
    curve = tables["whale_curve"][tables["whale_curve"]["period"] == PERIODS[-1]]
    peak = curve.loc[curve["cumulative_profit_pct"].idxmax()]
    label = f"peak {peak['cumulative_profit_pct']:.0f}\u00a0% at {peak['cumulative_customer_pct']:.0f}\u00a0%"
    assert f"{label} of customers" in _section(page, "whale-curve")


def test_whale_curve_is_downsampled_keeping_peak_and_end():
    n = 20_000
    profit = np.sort(np.random.default_rng(3).normal(100, 400, n))[::-1]
    cumulative = profit.cumsum()
    curve = pd.DataFrame(
        {
            "cumulative_profit_pct": 100 * cumulative / cumulative[-1],
            "cumulative_customer_pct": 100 * np.arange(1, n + 1) / n,
        }
    )
    svg = whale_curve_svg(curve, "Dec 2025")
    points = re.search(r'<polyline class="mark" points="([^"]+)"', svg).group(1).split()
    assert 500 <= len(points) <= 503
    at = curve["cumulative_customer_pct"].iloc[cumulative.argmax()]
    assert f"peak {curve['cumulative_profit_pct'].max():.0f}\u00a0% at {at:.0f}\u00a0%" in svg


def test_matrix_draws_classified_customers_and_samples_large_ones(page: str):
    matrix = _section(page, "matrix")
    assert matrix.count('<circle class="mark"') == CUSTOMERS - UNCLASSIFIED
    for name in ("Passive", "Carriage trade", "Bargain basement", "Aggressive"):
        assert name in matrix
    hollow = re.search(
        r"Drawn as hollow dots at the edge: (\d+) customers? with cost to serve outside", matrix
    )
    assert hollow and int(hollow.group(1)) >= 1  # the extreme cost to serve (and the lowest) are clipped
    assert matrix.count('fill="none"') == int(hollow.group(1))
    many = pd.DataFrame(
        {
            "cost_to_serve_per_revenue": np.linspace(0.01, 0.5, 3000),
            "net_price_realisation": np.linspace(0.8, 1.0, 3000),
            "matrix_quadrant": "passive",
        }
    )
    assert matrix_svg(many, (0.02, 0.4), (0.2, 0.9), "Dec 2025").count('<circle class="mark"') == 3000


def test_drivers_and_clv_and_costing(page: str, tables):
    drivers = _section(page, "drivers")
    for label in ("Concentrate here", "Keep up the good work", "Low priority", "Possible overkill"):
        assert label in drivers
    assert "Delivery reliability" in drivers and "34.0\u00a0%" in drivers
    clv = _section(page, "clv")
    prone = tables["customer_clv"][tables["customer_clv"]["defection_prone"]]
    best = prone.sort_values("profit_t12m", ascending=False)
    assert best["customer_id"].iloc[0] in clv
    assert clv.count("<tr>") - 1 == min(10, len(prone))
    costing = _section(page, "costing")
    assert "months to Dec 2025" in costing and "hidden losses" in costing


def test_page_is_self_contained(page: str):
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<(link|img|iframe|object)\b|\bsrc=|@import|url\(", page)


def test_missing_or_empty_table_says_not_available_yet(tmp_path: Path, tables):
    partial = {name: frame for name, frame in tables.items() if name != "satisfaction_drivers"}
    partial["customer_clv"] = tables["customer_clv"].iloc[0:0]
    page = write_report(_write_database(tmp_path / "partial.duckdb", partial), tmp_path).read_text()
    assert "Not available yet" in _section(page, "drivers") and "drivers-chart" not in page
    assert "Not available yet" in _section(page, "clv")
    assert "whale-curve-chart" in page


def test_formatting_for_people():
    assert (
        money(1_234_567.8) == "1,234,568"
        and money(-2500) == "\u22122,500"
        and money(12.5) == "13"
        and money(2.345) == "2.35"
    )
    assert percent(0.1234) == "12.3\u00a0%"
    assert month(datetime(2025, 12, 1)) == "Dec 2025"
    assert nice_ticks(-130, 870) == [-200, 0, 200, 400, 600, 800, 1000]


# --- in a real browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed with apt on a machine without it; a failed install fails the tests."""
    try:
        return ensure_chromium()
    except RuntimeError as error:
        pytest.fail(f"could not install chromium:\n{error}", pytrace=False)


def _charts_drawn(dom: str) -> dict[str, int]:
    match = re.search(r'<body[^>]*\bdata-charts-drawn="([^"]*)"', dom)
    assert match, "the page's script did not run: no data-charts-drawn on <body>"
    return json.loads(html.unescape(match.group(1)))


def test_browser_catches_console_errors(chromium: str, tmp_path: Path):
    broken = tmp_path / "broken.html"
    broken.write_text(
        '<!DOCTYPE html><html><body><p>x</p><script>throw new Error("boom")</script></body></html>'
    )
    assert any("Uncaught Error: boom" in message for message in render(chromium, broken).console)


def test_report_loads_without_console_errors_and_draws_every_chart(
    chromium: str, report: Path, tmp_path: Path
):
    rendered = render(chromium, report)
    assert rendered.console == []
    drawn = _charts_drawn(rendered.dom)
    assert set(drawn) == set(CHARTS)
    assert drawn["matrix-chart"] == CUSTOMERS - UNCLASSIFIED
    assert drawn["drivers-chart"] == 5
    assert drawn["whale-curve-chart"] == 2  # the curve and its peak
    assert drawn["clv-chart"] >= 5
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    blank_size = screenshot(chromium, blank, tmp_path / "blank.png").stat().st_size
    shot = screenshot(chromium, report, tmp_path / "report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10 * blank_size


def test_each_publication_writes_its_report_and_the_browser_draws_it(chromium: str, published_sample):
    """The report of a real (small) publication, written by the publish step, in the browser."""
    report = published_sample.report / "index.html"
    rendered = render(chromium, report)
    assert rendered.console == []
    drawn = _charts_drawn(rendered.dom)
    assert set(drawn) == set(CHARTS) and all(count > 0 for count in drawn.values())
    with duckdb.connect(str(current_database(published_sample.published)), read_only=True) as con:
        run_id = con.execute(
            "select run_id from marts.publish_log order by published_at desc limit 1"
        ).fetchone()[0]
    assert run_id in report.read_text()  # the report is of the current publication
