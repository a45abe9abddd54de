"""The report as a working tool, in a real headless chromium with the network cut off: every table sorts, filters,
pages and exports to CSV through one component; the region filter, the two-month view and the charts' labels show
the published figures. Expected values are recomputed here from the published DuckDB file, never copied from the
page's code."""

from __future__ import annotations

import csv
import io
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.config import Paths
from pipelines.publication.publish import CURRENT, current_database
from tests.browser import open_page

PAGE_SIZE = 25

ROWS_JS = """
(id) => [...document.querySelectorAll(`#${id} tbody tr`)].map((tr) => ({
    id: tr.dataset.id || null, cells: [...tr.cells].map((td) => td.textContent.trim()),
}))
"""


@pytest.fixture(scope="module")
def report(published_sample: Paths) -> Path:
    return published_sample.published / CURRENT / "report" / "index.html"


@pytest.fixture(scope="module")
def con(published_sample: Paths):
    with duckdb.connect(str(current_database(published_sample.published)), read_only=True) as connection:
        yield connection


def _latest(con) -> object:
    return con.execute("select max(period) from marts.customer_profitability").fetchone()[0]


def _one_decimal(value) -> str:
    """As the page writes a figure to one decimal (en-US grouping, half away from zero)."""
    return f"{Decimal(str(value)).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP):,}"


def _header(page, table: str, label: str):
    return page.locator(f"#{table} thead th", has_text=label).first


def _download_text(page, table: str) -> str:
    """Press the table's CSV button; the file's text, read through Playwright's download API."""
    with page.expect_download() as info:
        page.click(f'.table-tools[data-for="{table}"] .table-csv')
    raw = Path(info.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with its mark, as spreadsheets expect
    text = raw.decode("utf-8-sig")
    assert "\r\n" in text
    return text


def _download(page, table: str) -> list[dict[str, str]]:
    """The table's CSV as rows keyed by its header, an amount's column without its currency: "Net revenue (EUR)"
    is "Net revenue"."""
    rows = list(csv.DictReader(io.StringIO(_download_text(page, table), newline="")))
    return [{re.sub(r" \([A-Z]{3}\)$", "", key): value for key, value in row.items()} for row in rows]


def _money(value) -> str:
    return f"{Decimal(value):.2f}"


@pytest.mark.system
def test_a_table_sorts_by_a_clicked_column_numbers_as_numbers_and_pages_to_its_last_row(report: Path, con):
    period = _latest(con)
    ordered = [
        customer
        for (customer,) in con.execute(
            "select customer_id from marts.customer_profitability where period = ? "
            "order by net_revenue, customer_id",
            [period],
        ).fetchall()
    ]
    descending = [
        customer
        for (customer,) in con.execute(
            "select customer_id from marts.customer_profitability where period = ? "
            "order by net_revenue desc, customer_id",
            [period],
        ).fetchall()
    ]
    assert len(ordered) > 2 * PAGE_SIZE  # the sample has pages to turn
    with open_page(report) as session:
        page = session.page
        first = page.evaluate(ROWS_JS, "customer-table")
        assert len(first) == PAGE_SIZE  # paged, not cut: the count says how many rows there are
        count = page.text_content('.table-tools[data-for="customer-table"] .table-count')
        assert count == f"1\u2013{PAGE_SIZE} of {len(ordered)} rows"
        _header(page, "customer-table", "Net revenue").click()
        ascending = page.evaluate(ROWS_JS, "customer-table")
        assert [row["id"] for row in ascending] == ordered[:PAGE_SIZE]
        _header(page, "customer-table", "Net revenue").click()
        assert [row["id"] for row in page.evaluate(ROWS_JS, "customer-table")] == descending[:PAGE_SIZE]
        # the pages: the next one, then the last, which ends with the last row of the order
        page.click('.pager[data-for="customer-table"] button[data-page="next"]')
        assert [r["id"] for r in page.evaluate(ROWS_JS, "customer-table")] == descending[
            PAGE_SIZE : 2 * PAGE_SIZE
        ]
        page.click('.pager[data-for="customer-table"] button[data-page="last"]')
        last = page.evaluate(ROWS_JS, "customer-table")
        pages = -(-len(ordered) // PAGE_SIZE)
        assert [r["id"] for r in last] == descending[(pages - 1) * PAGE_SIZE :]
        assert last[-1]["id"] == descending[-1]
        assert page.text_content('.pager[data-for="customer-table"] .page-of') == f"page {pages} of {pages}"
        # a text column sorts as text, a small table too (the same component): activities by name
        _header(page, "activity-table", "Activity cost").click()
        costs = page.eval_on_selector_all(
            "#activity-table tbody tr", "rows => rows.map((r) => r.dataset.activity)"
        )
        published = [
            activity
            for (activity,) in con.execute(
                "select activity from marts.activity_costs where period = ? order by activity_cost, activity",
                [period],
            ).fetchall()
        ]
        assert sorted(costs) == sorted(published)
        assert costs[0] == published[0] and costs[-1] == published[-1]
        assert session.errors == [] and session.blocked == []


@pytest.mark.system
def test_a_filter_keeps_the_matching_rows_and_the_csv_holds_all_of_them_as_published(report: Path, con):
    period = _latest(con)
    published = {
        row[0]: row
        for row in con.execute(
            "select customer_id, customer_name, net_revenue, cost_to_serve, abc_profit, traditional_profit, "
            "profit_decile from marts.customer_profitability where period = ?",
            [period],
        ).fetchall()
    }
    # a word of some customers' names that no segment, region or quadrant (code or label) carries
    codes = " ".join(
        value.replace("_", " ").lower()
        for (value,) in con.execute(
            "select distinct segment from marts.customer_profitability union select distinct region "
            "from marts.customer_profitability union select distinct matrix_quadrant from marts.customer_profitability"
        ).fetchall()
    )
    words = {}
    for _, name, *_ in published.values():
        for word in name.lower().split():
            words[word] = words.get(word, 0) + 1
    word = max(
        (w for w, n in words.items() if 1 < n < len(published) and len(w) > 3 and w not in codes),
        key=words.get,
    )
    expected = {c for c, row in published.items() if word in row[1].lower()}
    with open_page(report) as session:
        page = session.page
        whole = _download(page, "customer-table")
        page.fill('.table-tools[data-for="customer-table"] .table-filter', word)
        shown = page.evaluate(ROWS_JS, "customer-table")
        rows = int(page.get_attribute("#customer-table", "data-rows"))
        filtered = _download(page, "customer-table")
        page.fill('.table-tools[data-for="customer-table"] .table-filter', "no such customer anywhere")
        none = page.text_content("#customer-table tbody")
        assert session.errors == [] and session.blocked == []
    # the whole list: every customer of the month, numbers unformatted and equal to the published ones
    assert {row["Customer id"] for row in whole} == set(published) and len(whole) == len(published)
    # filtering reduces the rows to those that match; the CSV holds all of them, not the page shown
    assert 1 < len(expected) < len(published) and rows == len(expected) and len(published) > PAGE_SIZE
    assert len(shown) == min(PAGE_SIZE, len(expected)) and {row["id"] for row in shown} <= expected
    assert [row["Customer id"] for row in filtered] != [] and {
        row["Customer id"] for row in filtered
    } == expected
    assert len(filtered) == len(expected)
    assert "No row matches the filter." in none
    for row in filtered:
        _, name, net, cts, abc, traditional, decile = published[row["Customer id"]]
        assert row["Customer"] == name
        assert (row["Net revenue"], row["Cost to serve"], row["ABC profit"], row["Traditional profit"]) == (
            _money(net),
            _money(cts),
            _money(abc),
            _money(traditional),
        )
        assert row["Profit decile"] == str(decile)
    # the rows come in the order shown: ABC profit, largest first
    assert [Decimal(row["ABC profit"]) for row in filtered] == sorted(
        (Decimal(row["ABC profit"]) for row in filtered), reverse=True
    )


@pytest.mark.system
def test_every_table_exports_its_rows_and_a_small_table_exports_as_published(report: Path, con):
    period = _latest(con)
    published = {
        row[0]: row[1:]
        for row in con.execute(
            "select activity, cost_center, driver_volume, activity_cost from marts.activity_costs where period = ?",
            [period],
        ).fetchall()
    }
    months = con.execute("select count(*) from marts.company_reconciliation").fetchone()[0]
    with open_page(report) as session:
        page = session.page
        page.locator("#worst-table tbody tr[data-customer]").first.click()  # the drill-down's tables too
        page.wait_for_selector("#customer-panel:not([hidden])")
        tables = page.eval_on_selector_all("main table", "tables => tables.map((t) => t.id)")
        tools = page.eval_on_selector_all(".table-tools", "tools => tools.map((t) => t.dataset.for)")
        activities = _download(page, "activity-table")
        recon = _download(page, "recon-table")
        assert session.errors == [] and session.blocked == []
    assert sorted(tables) == sorted(tools)  # one component for every table of the page
    assert len(tables) >= 14
    assert {row["Activity code"] for row in activities} == set(published)
    for row in activities:
        _, volume, cost = published[row["Activity code"]]
        assert row["Activity cost"] == _money(cost)
        assert float(row["Volume"]) == pytest.approx(float(volume))
        assert row["Cost centre"]  # a label, never empty
    assert len(recon) == months and all(row["Identities"] == "true" for row in recon)


@pytest.mark.system
def test_the_region_filter_shows_the_regions_customers_as_published(report: Path, con):
    period = _latest(con)
    region = con.execute(
        "select region from marts.customer_profitability where period = ? group by 1 order by count(*) desc, 1 "
        "limit 1",
        [period],
    ).fetchone()[0]
    expected = {
        c
        for (c,) in con.execute(
            "select customer_id from marts.customer_profitability where period = ? and region = ?",
            [period, region],
        ).fetchall()
    }
    segment, both = con.execute(
        "select segment, count(*) from marts.customer_profitability where period = ? and region = ? "
        "group by 1 order by 2 desc, 1 limit 1",
        [period, region],
    ).fetchone()
    total = con.execute(
        "select count(*) from marts.customer_profitability where period = ?", [period]
    ).fetchone()[0]
    classified = con.execute(
        "select count(*) from marts.customer_profitability where period = ? and region = ? "
        "and matrix_quadrant <> 'unclassified'",
        [period, region],
    ).fetchone()[0]
    on_the_curve = con.execute(
        "select count(*) from marts.whale_curve where period = ? and customer_id in "
        "(select customer_id from marts.customer_profitability where region = ?)",
        [period, region],
    ).fetchone()[0]
    at_risk = {
        c
        for (c,) in con.execute(
            "select v.customer_id from marts.customer_clv as v join marts.customer_profitability as p "
            "using (period, customer_id) where v.period = ? and p.region = ? and v.defection_prone "
            "and v.fit_status = 'fitted'",
            [period, region],
        ).fetchall()
    }
    with open_page(report) as session:
        page = session.page
        page.select_option("#region", value=region)
        page.wait_for_selector(f'body[data-region="{region}"]', state="attached")
        rows = int(page.get_attribute("#customer-table", "data-rows"))
        exported = {row["Customer id"] for row in _download(page, "customer-table")}
        quadrants = page.eval_on_selector_all(
            "#quadrant-table tbody tr",
            "rows => rows.reduce((n, r) => n + Number(r.cells[1].textContent.replace(/,/g, '')), 0)",
        )
        marked = page.evaluate(
            "() => { const t = document.getElementById('chart-whale').data; return t.length > 1 ? t[1].x.length : null; }"
        )
        risk = {row["Customer id"] for row in _download(page, "risk-table")}
        page.select_option("#segment", value=segment)
        page.wait_for_selector(f'body[data-segment="{segment}"][data-region="{region}"]', state="attached")
        narrowed = int(page.get_attribute("#customer-table", "data-rows"))
        page.select_option("#region", value="all")
        page.select_option("#segment", value="all")
        page.wait_for_selector('body[data-segment="all"][data-region="all"]', state="attached")
        restored = int(page.get_attribute("#customer-table", "data-rows"))
        assert session.errors == []
    assert 0 < len(expected) < total
    assert rows == len(expected) and exported == expected and quadrants == classified
    assert marked == on_the_curve  # the region's customers marked on the whale curve (12 months)
    assert risk == at_risk
    assert narrowed == both and restored == total


@pytest.mark.system
def test_two_months_side_by_side_show_both_months_published_figures(report: Path, con):
    periods = [
        p
        for (p,) in con.execute(
            "select distinct period from marts.customer_profitability order by 1"
        ).fetchall()
    ]
    a, b = periods[0], periods[-1]
    recon = {
        period: dict(zip(["op", "gm", "ledger", "abc", "unused", "sust", "trad"], row, strict=True))
        for period, *row in con.execute(
            "select period, operating_profit, gross_margin, ledger_cost, abc_customer_profit, unused_capacity_cost, "
            "sustaining_cost, traditional_customer_profit from marts.company_reconciliation"
        ).fetchall()
    }
    card = {
        (period, metric): actual
        for period, metric, actual in con.execute(
            "select period, metric, cast(actual as double) from marts.customer_scorecard where segment = 'all'"
        ).fetchall()
    }
    with open_page(report) as session:
        page = session.page
        page.select_option("#month-a", label=f"{a:%b %Y}")
        page.select_option("#month-b", label=f"{b:%b %Y}")
        shown = page.eval_on_selector_all(
            "#compare-table tbody tr[data-measure]",
            "rows => rows.map((r) => [r.dataset.measure, r.dataset.a, r.dataset.b, r.cells[3].textContent])",
        )
        exported = _download(page, "compare-table")
        assert session.errors == []
    values = {measure: (va, vb, change) for measure, va, vb, change in shown}
    for field in ("op", "gm", "ledger", "abc", "unused", "sust", "trad"):
        va, vb, _ = values[field]
        assert (int(va), int(vb)) == (round(recon[a][field] * 100), round(recon[b][field] * 100)), field
    metrics = {metric for (period, metric) in card if period in (a, b)}
    assert metrics and metrics <= set(values)
    for metric in metrics:
        va, vb, _ = values[metric]
        for shown_value, period in ((va, a), (vb, b)):
            published = card.get((period, metric))
            if published is None:
                assert shown_value == "", metric
            else:
                assert float(shown_value) == pytest.approx(published, rel=1e-12, abs=1e-12), metric
    by_figure = {row["Figure"]: row for row in exported}
    operating = by_figure["Operating profit"]
    change = recon[b]["op"] - recon[a]["op"]
    assert [operating[k] for k in list(operating)[2:5]] == [
        _money(recon[a]["op"]),
        _money(recon[b]["op"]),
        _money(change),
    ]


@pytest.mark.system
def test_every_chart_label_says_what_the_published_data_says(report: Path, con):
    """The whale curve's peak label in every month, the satisfaction drivers' labels and the waterfall's amounts,
    read back from the drawn SVG and compared with figures recomputed from the published file."""
    periods = [
        p for (p,) in con.execute("select distinct period from marts.whale_curve order by 1").fetchall()
    ]
    customer, gross, net, gm, abc = con.execute(
        "select customer_id, gross_revenue, net_revenue, gross_margin, abc_profit "
        "from marts.customer_profitability where period = ? order by abc_profit desc, customer_id limit 1",
        [periods[-1]],
    ).fetchone()
    with open_page(report) as session:
        page = session.page
        for period in periods:
            page.select_option("#month", label=f"{period:%b %Y}")
            page.wait_for_selector(f'body[data-month="{period:%Y-%m}"]', state="attached")
            label = page.text_content("#chart-whale .annotation-text")
            # the peak: the customer with the largest cumulative profit (exact), the first of equals
            cpp, ccp, rank = con.execute(
                "select cumulative_profit_pct, cumulative_customer_pct, customer_rank from marts.whale_curve "
                "where period = ? order by cumulative_profit desc, customer_rank limit 1",
                [period],
            ).fetchone()
            assert label == (
                f"peak {_one_decimal(cpp)} % of the total at {_one_decimal(ccp)} % of customers (rank {rank:,})"
            ), period
            drawn = page.eval_on_selector_all(
                "#chart-drivers .textpoint text", "texts => texts.map((t) => t.textContent)"
            )
            drivers = [
                label
                for (label,) in con.execute(
                    "select label from marts.satisfaction_drivers where period = ?", [period]
                ).fetchall()
            ]
            assert sorted(drawn) == sorted(drivers), period
        page.fill("#customer-search", customer)
        page.press("#customer-search", "Enter")
        page.wait_for_selector(f'body[data-customer="{customer}"]', state="attached")
        bars = page.eval_on_selector_all(
            "#chart-waterfall-month .bartext", "texts => texts.map((t) => t.textContent)"
        )
        assert session.errors == []
    # the labelled totals of the waterfall: gross revenue, net revenue, gross margin, ABC profit
    for amount in (gross, net, gm, abc):
        whole = Decimal(amount).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        text = f"{abs(whole):,}" if abs(amount) >= 10 else f"{abs(amount):,.2f}"
        assert any(bar.endswith(text) for bar in bars), (amount, bars)


SIGNS = {"EUR": "\u20ac", "USD": "$", "GBP": "\u00a3", "JPY": "\u00a5"}

LABELS_JS = """
() => ({
    customers: [...document.querySelectorAll("#customer-table tbody tr[data-id]")].map((tr) => ({
        id: tr.dataset.id, cells: [...tr.cells].map((td) => td.textContent.trim()) })),
    head: [...document.querySelectorAll("#customer-table thead th")].map((th) => th.textContent.trim()),
    activities: [...document.querySelectorAll("#activity-table tbody tr[data-activity]")].map((tr) => ({
        code: tr.dataset.activity, cells: [...tr.cells].map((td) => td.textContent.trim()) })),
    matrix: document.getElementById("chart-matrix").data.map((t) => t.name),
    ipa: document.getElementById("chart-drivers").data.map((t) => t.name),
    segments: [...document.querySelectorAll("#segment option")].map((o) => [o.value, o.textContent]),
    regions: [...document.querySelectorAll("#region option")].map((o) => [o.value, o.textContent]),
    axis: document.getElementById("chart-company-profit").layout.yaxis.title.text,
    footer: document.querySelector("footer").textContent,
})
"""


@pytest.mark.system
def test_amounts_carry_the_publications_currency_and_codes_show_as_their_labels(report: Path, con):
    """The currency of marts.publication_info beside every amount (a cell, an axis, a CSV header) and the label
    dimensions' labels where the marts have codes: segment, region, matrix and IPA quadrant, activity, cost centre,
    driver."""
    currency = con.execute("select currency from marts.publication_info").fetchone()[0]
    sign = SIGNS.get(currency, currency)

    def labels(table: str, code: str, label: str) -> dict[str, str]:
        return dict(con.execute(f"select {code}, {label} from marts.{table}").fetchall())

    segments = labels("dim_segments", "segment", "segment_label")
    regions = labels("dim_regions", "region", "region_label")
    quadrants = labels("dim_matrix_quadrants", "matrix_quadrant", "matrix_quadrant_label")
    ipa = labels("dim_ipa_quadrants", "ipa_quadrant", "ipa_quadrant_label")
    activities = labels("dim_activities", "activity", "activity_label")
    centres = labels("dim_cost_centers", "cost_center", "cost_center_label")
    drivers = labels("dim_drivers", "driver", "driver_label")
    period = _latest(con)
    published = {
        row[0]: row[1:]
        for row in con.execute(
            "select customer_id, segment, region, matrix_quadrant from marts.customer_profitability where period = ?",
            [period],
        ).fetchall()
    }
    costs = {
        row[0]: row[1:]
        for row in con.execute(
            "select activity, cost_center, driver from marts.activity_costs where period = ?", [period]
        ).fetchall()
    }
    ipa_shown = {
        q
        for (q,) in con.execute(
            "select distinct ipa_quadrant from marts.satisfaction_drivers where period = ?", [period]
        ).fetchall()
    }
    with open_page(report) as session:
        page = session.page
        shown = page.evaluate(LABELS_JS)
        text = _download_text(page, "customer-table")
        assert session.errors == []
    head = shown["head"]
    column = {name: k for k, name in enumerate(head)}
    assert shown["customers"]
    for row in shown["customers"]:
        segment, region, quadrant = published[row["id"]]
        cells = row["cells"]
        assert cells[column["Segment"]] == segments[segment]
        assert cells[column["Region"]] == regions[region]
        assert cells[column["Matrix quadrant"]] == quadrants[quadrant]
        assert cells[column["Net revenue"]].lstrip("\u2212").startswith(sign), cells  # the amount's currency
    assert shown["activities"]
    for row in shown["activities"]:
        centre, driver = costs[row["code"]]
        assert row["cells"][:3] == [activities[row["code"]], centres[centre], drivers[driver]]
        assert row["cells"][-1].lstrip("\u2212").startswith(sign)
    assert set(shown["matrix"]) == {
        quadrants[q] for q in ("passive", "carriage_trade", "bargain_basement", "aggressive")
    }
    assert set(shown["ipa"]) == {ipa[q] for q in ipa_shown}
    assert [label for value, label in shown["segments"] if value != "all"] == [
        segments[s] for s in sorted({s for s, _, _ in published.values()})
    ]
    assert {value: label for value, label in shown["regions"] if value != "all"} == {
        r: regions[r] for r in {r for _, r, _ in published.values()}
    }
    assert currency in shown["axis"] and currency in shown["footer"]
    # the CSV: each amount's header names the currency, the segment is its label
    exported = list(csv.DictReader(io.StringIO(text, newline="")))
    assert f"Net revenue ({currency})" in exported[0] and f"ABC profit ({currency})" in exported[0]
    assert all(row["Segment"] == segments[published[row["Customer id"]][0]] for row in exported)


@pytest.mark.system
def test_an_exported_text_a_spreadsheet_would_run_as_a_formula_is_exported_as_text(report: Path):
    """A customer named like a formula (a CRM's free text) reaches the CSV with a leading apostrophe, so a
    spreadsheet shows it instead of running it; amounts, negative ones included, stay numbers."""
    names = ['=HYPERLINK("http://x","y")', "+1 call", "-minus", "@sum", "Plain Co", "-12.50", "12"]
    with open_page(report) as session:
        text = session.page.evaluate(
            "(names) => csvText([{label: 'Customer', value: (r) => r}], names)", names
        )
        assert session.errors == []
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [
        ["Customer"],
        ['\'=HYPERLINK("http://x","y")'],
        ["'+1 call"],
        ["'-minus"],
        ["'@sum"],
        ["Plain Co"],
        ["-12.50"],
        ["12"],
    ]
