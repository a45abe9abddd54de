"""Great Expectations' Data Docs of a failed validation, opened from files alone: no page asks a server for
anything (no CDN stylesheet, script, font or image), every relative link leads to a file that exists, and the
page is styled in a browser that may fetch nothing but files."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

import duckdb
import pytest

from data_checks.gx_run import LandingValidator
from pipelines.engines.duckdb_ingest import load, promote, validation_frame
from pipelines.landing.sources import SNAPSHOTS
from pipelines.lib.config import Paths
from tests.browser import open_page

MONTH = "2024-02"
# every place a page names another file or a URL: src= and href= attributes, and url() in its styles
REFERENCE = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']|url\(\s*["']?([^"')]+)""")


def _references(page: Path) -> list[str]:
    return [html.unescape(a or b).strip() for a, b in REFERENCE.findall(page.read_text(encoding="utf-8"))]


@pytest.fixture(scope="module")
def failed_site(tmp_path_factory, small_landing: Path) -> Path:
    """The Data Docs site of one failed validation of order lines (a negative quantity on line 6), rendered by
    the validator a run uses."""
    root = tmp_path_factory.mktemp("data_docs")
    paths = Paths(root / "data")
    shutil.copytree(small_landing, paths.landing)
    lines = (small_landing / "order_lines" / f"{MONTH}.csv").read_text().splitlines()
    header = lines[0].split(",")
    row = lines[5].split(",")
    row[header.index("quantity")] = "-3"
    lines[5] = ",".join(row)
    file = paths.landing / "order_lines" / f"{MONTH}.csv"
    file.write_text("\n".join(lines) + "\n")
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        for snapshot in SNAPSHOTS:
            load(con, paths.landing, snapshot.name, None)
            promote(con, snapshot.name)
        load(con, paths.landing, "order_lines", MONTH)
        validator = LandingValidator(paths.data_dir)
        outcome = validator.validate(
            "order_lines", MONTH, validation_frame(con, "order_lines", MONTH), str(file)
        )
    assert not outcome.success and "-3 at line 6" in outcome.message()
    return validator.docs_site


def _pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def _failed_page(site: Path) -> Path:
    (page,) = site.glob(f"validations/landing/order_lines/order_lines {MONTH}/*/*.html")
    return page


def test_no_page_loads_anything_from_a_server(failed_site: Path):
    pages = _pages(failed_site)
    # Links in text to outside pages would not be resources, but GX's pages have none left either: all of them
    # were CDN assets, S3 images, or GX's how-to and newsletter links, none about this run.
    external = sorted(
        (str(page.relative_to(failed_site)), url)
        for page in pages
        for url in _references(page)
        if re.match(r"(?i)(https?:)?//", url)
    )
    assert external == []
    # the run page, the failed validation's page and the page of its suite, which it links
    assert {p.relative_to(failed_site).parts[0] for p in pages} == {"run.html", "validations", "expectations"}


def test_every_relative_link_leads_to_a_file_that_exists(failed_site: Path):
    checked, dead = 0, []
    for page in _pages(failed_site):
        for url in _references(page):
            if not url or url.startswith(("#", "data:", "mailto:")) or re.match(r"(?i)(https?:)?//", url):
                continue
            target = page.parent / unquote(urlsplit(url).path)
            checked += 1
            if not target.is_file():
                dead.append(f"{page.relative_to(failed_site)} -> {url}")
    assert dead == []
    assert checked >= 8  # run page -> result; result -> suite, run page, logo, icon; suite -> run page, ...


@pytest.mark.system
def test_the_failed_page_is_styled_offline(failed_site: Path):
    with open_page(_failed_page(failed_site), ready=".ge-section") as session:
        style = session.page.evaluate(
            """() => {
                const css = (selector, property) =>
                    getComputedStyle(document.querySelector(selector)).getPropertyValue(property);
                return {
                    row: css('.row', 'display'),
                    card: css('.card', 'border-top-style'),
                    badge: css('.badge', 'background-color'),
                    table: css('.table', 'border-collapse'),
                    sidebar: document.querySelector('.col-md-2').getBoundingClientRect().width,
                    failed: document.body.innerText.includes('Unsuccessful Expectations'),
                };
            }"""
        )
        assert session.blocked == []  # nothing but files was asked for
        assert session.errors == []  # no script expected a library that is not there
    # Bootstrap's layout and components from our stylesheet: the browser's defaults would be block, none,
    # transparent and separate, and the sidebar as wide as the page
    assert style["row"] == "flex"
    assert style["card"] == "solid"
    assert style["badge"] == "rgb(108, 117, 125)"
    assert style["table"] == "collapse"
    assert 0 < style["sidebar"] < 1400 / 4
    assert style["failed"]
