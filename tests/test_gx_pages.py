"""Great Expectations' run page (``gx/data_docs/run.html``) as a reader opens it offline: every link leads to a
file that exists, a failed run names the suites that did not run and why, and the counts say what they count."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from data_checks.gx_run import unchanged_reason
from data_checks.suites import REFERENCED, SUITES, references
from pipelines.landing.sources import SNAPSHOTS
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.run import PipelineError, run_pipeline

MONTH = "2024-02"


def _links(page: Path) -> list[Path]:
    return [
        page.parent / html.unescape(url) for url in re.findall(r'(?:href|src)="([^"]+)"', page.read_text())
    ]


def _not_run(page: Path) -> dict[str, str]:
    """The run page's table of suites not run: source -> why."""
    rows = re.findall(r'<tr class="skipped"><td>(\w+)</td><td>([^<]+)</td></tr>', page.read_text())
    return {source: html.unescape(why) for source, why in rows}


def test_a_failed_reference_snapshot_names_the_suites_it_kept_from_running(
    published_sample: Paths, tmp_path: Path
):
    paths = Paths(tmp_path / "data")
    shutil.copytree(published_sample.data_dir, paths.data_dir, symlinks=True)
    customers = paths.reference / "customers.csv"
    lines = customers.read_text().splitlines()
    lines.append(lines[1])  # a duplicate customer id: the customers suite fails
    customers.write_text("\n".join(lines) + "\n")

    with pytest.raises(PipelineError):
        run_pipeline(Settings(data_dir=paths.data_dir), MONTH, MONTH, progress=lambda _: None)
    page = paths.data_dir / "gx" / "data_docs" / "run.html"
    text = page.read_text()

    assert "<td>customers</td><td>snapshot</td>" in text and "FAILED (" in text
    not_run = _not_run(page)
    # every suite that checks customer references did not run, because raw.customers was not promoted
    for source in ("order_lines", "returns", "support_tickets", "sales_visits", "survey_responses"):
        assert source in not_run, source
        assert "customers failed its suite" in not_run[source], not_run[source]
    assert not_run["products"].startswith("unchanged since validated ")  # left out of the run, unchanged
    ran = set(re.findall(r'<tr class="(?:ok|failed)"><td>(\w+)</td>', text))
    assert ran | set(not_run) == set(SUITES)  # each suite is either listed as run or named as not run
    assert f"Suites: {len(ran)} of {len(SUITES)} run, {len(not_run)} not run" in text
    assert re.search(r"\d+ validations \(one per source and partition, \d+ sources\), 1 failed", text)

    links = _links(page)
    assert links, "the failed validation links its Great Expectations page"
    assert [link for link in links if not link.exists()] == []
    assert "http" not in text  # nothing fetched from outside


def test_a_passing_run_links_nothing_that_does_not_exist(published_sample: Paths):
    page = published_sample.data_dir / "gx" / "data_docs" / "run.html"
    text = page.read_text()
    assert "FAILED" not in text
    assert [link for link in _links(page) if not link.exists()] == []
    assert "http" not in text
    assert re.search(r"\d+ validations \(one per source and partition, \d+ sources\), 0 failed", text)


def test_the_run_page_gives_each_suite_not_run_the_reason_the_run_recorded(
    published_sample: Paths, tmp_path: Path
):
    """A month whose order lines cannot be loaded (text in a quantity), run after a good build: the reference
    snapshots are unchanged (left out of the run, when they were validated is said), order lines' step failed
    (named, with its error), and returns' step waited for order lines (named, with why)."""
    paths = Paths(tmp_path / "data")
    shutil.copytree(published_sample.data_dir, paths.data_dir, symlinks=True)
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        loaded = dict(con.execute("select source, loaded_at from landed._snapshot_files").fetchall())
    file = paths.landing / "order_lines" / f"{MONTH}.csv"
    lines = file.read_text().splitlines()
    quantity = lines[0].split(",").index("quantity")
    row = lines[3].split(",")
    row[quantity] = "twelve"
    lines[3] = ",".join(row)
    file.write_text("\n".join(lines) + "\n")

    with pytest.raises(PipelineError):
        run_pipeline(Settings(data_dir=paths.data_dir), MONTH, MONTH, progress=lambda _: None)
    page = paths.data_dir / "gx" / "data_docs" / "run.html"
    not_run = _not_run(page)

    for snapshot in SNAPSHOTS:  # each snapshot: unchanged since the good build validated it, at its load
        assert not_run[snapshot.name] == unchanged_reason(loaded[snapshot.name]), not_run[snapshot.name]
        assert (
            f"unchanged since validated {loaded[snapshot.name]:%Y-%m-%d %H:%M}, not validated again"
            in (not_run[snapshot.name])
        )
    assert not_run["order_lines"].startswith("not run: its step landed.order_lines failed: ")
    assert "line 4, column quantity, value 'twelve'" in not_run["order_lines"]
    assert not_run["returns"].startswith("not run: its step landed.returns waits for order_lines")
    assert "the step landed.order_lines failed" in not_run["returns"]
    assert "stopped" not in page.read_text()
    assert [link for link in _links(page) if not link.exists()] == []


def test_each_suite_declares_the_sources_its_frame_reads():
    """The declared references (which the run page's reasons and the ingest assets' order follow) are the
    sources whose promoted or validated tables each suite's frame reads, directly or through another's."""
    for source, suite in SUITES.items():
        read = set(re.findall(r"\b(?:raw|validated)\.(\w+)", suite.frame_sql)) - {source}
        assert read <= references(source), source  # nothing read is left undeclared
        assert set(REFERENCED.get(source, ())) <= read, source  # nothing declared is not read
