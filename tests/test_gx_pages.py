"""Great Expectations' run page (``gx/data_docs/run.html``) as a reader opens it offline: every link leads to a
file that exists, a failed run names the suites that did not run and why, and the counts say what they count."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest

from data_checks.suites import SUITES
from pipelines.lib.config import Paths
from pipelines.run import PipelineError, run_pipeline

MONTH = "2024-02"


def _links(page: Path) -> list[Path]:
    return [page.parent / html.unescape(href) for href in re.findall(r'href="([^"]+)"', page.read_text())]


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
        run_pipeline(paths, MONTH, MONTH, progress=lambda _: None)
    page = paths.data_dir / "gx" / "data_docs" / "run.html"
    text = page.read_text()

    assert "<td>customers</td><td>snapshot</td>" in text and "FAILED (" in text
    not_run = dict(re.findall(r'<tr class="skipped"><td>(\w+)</td><td>([^<]+)</td></tr>', text))
    # every suite that checks customer references did not run, because raw.customers was not promoted
    for source in ("order_lines", "returns", "support_tickets", "sales_visits", "survey_responses"):
        assert source in not_run, source
        assert "customers failed its suite" in html.unescape(not_run[source]), not_run[source]
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
