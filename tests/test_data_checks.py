"""Nothing bad or half-done reaches a BI tool: a corpus of bad landing files, each stopped at its check (the load
or the suite the run calls) with a clear message and the raw partition as it was, and a few stopping a full run,
the publication byte-identical; a run killed while publishing; a reader reading the publication while it is
refreshed."""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from data_checks.gx_run import LandingValidator
from pipelines.engines.duckdb_ingest import load, validation_frame
from pipelines.landing.inventory import history_start
from pipelines.landing.structure import LandingError
from pipelines.lib.config import Paths
from pipelines.lib.settings import Settings
from pipelines.publication.publish import CURRENT, PAUSE_ENV, current_database
from pipelines.run import PipelineError, run_pipeline

MONTH = "2024-02"


@pytest.fixture(scope="module")
def published(published_sample: Paths) -> Paths:
    """The published small sample; every case works on a copy of it."""
    return published_sample


def _copy(paths: Paths, target: Path) -> Paths:
    shutil.copytree(paths.data_dir, target, symlinks=True)
    return Paths(target)


def publication_fingerprint(published: Path) -> tuple[str, str]:
    """Where ``current`` points and a SHA-256 over every file of the publication it points at."""
    digest = hashlib.sha256()
    release = (published / CURRENT).resolve()
    for path in sorted(p for p in release.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(release)).encode())
        digest.update(path.read_bytes())
    return os.readlink(published / CURRENT), digest.hexdigest()


def raw_fingerprint(paths: Paths, source: str) -> tuple:
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        return con.execute(
            f"select count(*), sum(hash(t)) from (select * exclude (_loaded_at) from raw.{source} "
            f"where _period = date '{MONTH}-01') as t"
        ).fetchone()


# --- the corpus ------------------------------------------------------------------------------------


def _rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()]


def _write(path: Path, rows: list[list[str]]) -> None:
    path.write_text("\n".join(",".join(row) for row in rows) + "\n")


def _edit(column: str, value: Callable[[str], str] | str, row: int = 1) -> Callable[[Path], None]:
    """Set one field of a data row (row 1 is the first under the header)."""

    def damage(path: Path) -> None:
        rows = _rows(path)
        index = rows[0].index(column)
        rows[row][index] = value(rows[row][index]) if callable(value) else value
        _write(path, rows)

    return damage


def _duplicate_first_row(path: Path) -> None:
    rows = _rows(path)
    _write(path, [rows[0], rows[1], *rows[1:]])


def _return_more_than_ordered(path: Path) -> None:
    rows = _rows(path)
    rows[1][rows[0].index("quantity")] = "9999"
    _write(path, rows)


def _dated_unknown_line(path: Path, order_date: str, customer: str = "") -> None:
    """The first return made of line 1 of an order the warehouse does not have, the returns file giving its
    order date (and customer) in its optional columns, empty for the other returns."""
    rows = _rows(path)
    rows[0] += ["order_date", "customer_id"]
    for row in rows[1:]:
        row += ["", ""]
    rows[1][rows[0].index("order_id")], rows[1][rows[0].index("line_no")] = "O999999999", "1"
    rows[1][-2:] = [order_date, customer]
    _write(path, rows)


CORPUS: dict[str, tuple[str, Callable[[Path], None], str]] = {
    # case: (source, damage, what the message must say)
    "missing file": ("order_lines", lambda p: p.unlink(), "missing: no order_lines file for 2024-02"),
    "empty file": ("order_lines", lambda p: p.write_text(""), "empty file"),
    "header only": (
        "order_lines",
        lambda p: p.write_text(p.read_text().splitlines()[0] + "\n"),
        "no rows: an empty order_lines month is not normal",
    ),
    "missing column": (
        "returns",
        lambda p: _write(p, [row[:-1] for row in _rows(p)]),
        "missing column(s) reason",
    ),
    "extra column": (
        "sales_visits",
        lambda p: _write(p, [[*row, "note"] for row in _rows(p)]),
        "unexpected column(s) note",
    ),
    "wrong type": (
        "support_tickets",
        _edit("opened_at", "yesterday"),
        "line 2, column opened_at, value 'yesterday': expected TIMESTAMP, an ISO timestamp",
    ),
    "text in a number": (
        "order_lines",
        _edit("quantity", "twelve"),
        "line 2, column quantity, value 'twelve': expected INTEGER",
    ),
    "fractional quantity": (
        "order_lines",
        _edit("quantity", "2.5", row=4),
        "line 5, column quantity, value '2.5': expected INTEGER, a whole number",
    ),
    "truncated CSV": ("order_lines", lambda p: p.write_text(p.read_text()[:-25]), "does not parse: line"),
    "non-UTF-8 bytes": (
        "order_lines",
        lambda p: p.write_bytes(p.read_bytes().replace(b"standard", b"stand\xe4rd", 1)),
        "not utf-8",
    ),
    "negative quantity": (
        "order_lines",
        _edit("quantity", "-4"),
        "expect_column_values_to_be_between on quantity",
    ),
    "duplicate line": ("order_lines", _duplicate_first_row, "expect_compound_columns_to_be_unique"),
    "unknown customer": (
        "order_lines",
        _edit("customer_id", "C999999"),
        "_unknown_customer_id: 1 unexpected (e.g. C999999 at line 2)",
    ),
    "unknown product": (
        "order_lines",
        _edit("product_id", "P99999"),
        "_unknown_product_id: 1 unexpected (e.g. P99999 at line 2)",
    ),
    "unknown ship mode": (
        "order_lines",
        _edit("ship_mode", "drone"),
        "expect_column_values_to_be_in_set on ship_mode",
    ),
    "discount over the line value": (
        "order_lines",
        _edit("discount_amount", "99999.00"),
        "_discount_over_line_value: 1 unexpected",
    ),
    "future-dated order": (
        "order_lines",
        _edit("order_date", "2031-02-14"),
        "_order_date_outside_month: 1 unexpected (e.g. 2031-02-14 at line 2)",
    ),
    "return of more than was ordered": (
        "returns",
        _return_more_than_ordered,
        "_returned_more_than_ordered: 1 unexpected",
    ),
    "return of an unknown order line dated inside history": (
        "returns",
        lambda p: _dated_unknown_line(p, "2024-01-20"),
        "_unknown_order_line: 1 unexpected (e.g. O999999999 line 1 ordered 2024-01-20, history from 2024-01 at line 2)",
    ),
    "pre-history return of an unknown customer": (
        "returns",
        lambda p: _dated_unknown_line(p, "2023-12-20", customer="C424242"),
        "_unknown_customer_id: 1 unexpected (e.g. C424242 at line 2)",
    ),
    "implausible handling minutes": (
        "support_tickets",
        _edit("handling_minutes", "9999.00"),
        "expect_column_values_to_be_between on handling_minutes",
    ),
    "ticket of an unknown customer": (
        "support_tickets",
        _edit("customer_id", "C424242"),
        "_unknown_customer_id: 1 unexpected (e.g. C424242 at line 2)",
    ),
    "negative visit hours": (
        "sales_visits",
        _edit("hours", "-2.00"),
        "expect_column_values_to_be_between on hours",
    ),
    "ledger line for an unknown cost centre": (
        "gl_costs",
        _edit("cost_center", "marketing"),
        "_unknown_cost_center: 1 unexpected (e.g. marketing at line 2)",
    ),
    "ledger period mismatch": ("gl_costs", _edit("period", "2024-01"), "_period_not_the_files_month"),
    "duplicate ledger line": ("gl_costs", _duplicate_first_row, "expect_compound_columns_to_be_unique"),
    "out-of-scale score": (
        "survey_responses",
        lambda p: _write(
            p, [r if i == 0 or r[3] != "OVERALL" else [*r[:4], "11"] for i, r in enumerate(_rows(p))]
        ),
        "_score_outside_scale",
    ),
    "duplicate survey answer": (
        "survey_responses",
        _duplicate_first_row,
        "expect_compound_columns_to_be_unique",
    ),
    "unknown survey question": (
        "survey_responses",
        _edit("question_id", "Q_MOOD"),
        "_unknown_question_id: 1 unexpected (e.g. Q_MOOD at line 2)",
    ),
}


def _stopped(paths: Paths, source: str, file: Path) -> str:
    """What stops the damaged month in the run's ingest steps, by the functions they call: its load into landed
    (the file's structure and types: LandingError), else its source's suite on the landed month, with the run's
    validation frame and validator; the error or the failed outcome's message."""
    with duckdb.connect(str(paths.warehouse)) as con:
        try:
            load(con, paths.landing, source, MONTH)
        except LandingError as error:
            return str(error)
        frame = validation_frame(con, source, MONTH, history_start(paths.landing, Settings().first_month))
    outcome = LandingValidator(paths.data_dir / "gx").validate(source, MONTH, frame, str(file))
    assert not outcome.success, outcome.message()
    return outcome.message()


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_bad_input_is_stopped_at_its_check(published: Paths, tmp_path: Path, case: str):
    """Each case at its check: the load or the suite that the run calls, on a copy of the published warehouse
    (the full runs below prove that the run stops there, names the file and leaves the publication)."""
    source, damage, expected = CORPUS[case]
    paths = Paths(tmp_path / "data")
    paths.data_dir.mkdir()
    shutil.copy(published.warehouse, paths.warehouse)
    shutil.copytree(published.landing, paths.landing)
    file = paths.landing / source / f"{MONTH}.csv"
    before_raw = raw_fingerprint(paths, source)
    damage(file)

    message = _stopped(paths, source, file)
    assert expected in message, message
    assert str(file) in message  # which file
    assert raw_fingerprint(paths, source) == before_raw  # raw keeps its last good partition, whole


# One case of each way a run stops on a bad file: before any load (the run's inventory), at the load into landed,
# at the suite.
FULL_RUNS = ["missing file", "wrong type", "unknown customer"]


@pytest.mark.parametrize("case", FULL_RUNS)
def test_a_run_on_bad_input_stops_naming_the_file_and_leaves_the_publication(
    published: Paths, tmp_path: Path, case: str
):
    source, damage, expected = CORPUS[case]
    paths = _copy(published, tmp_path / "data")
    file = paths.landing / source / f"{MONTH}.csv"
    before_publication = publication_fingerprint(paths.published)
    before_raw = raw_fingerprint(paths, source)
    damage(file)

    with pytest.raises((PipelineError, LandingError)) as caught:
        run_pipeline(Settings(data_dir=paths.data_dir), MONTH, MONTH, progress=lambda _: None)
    message = str(caught.value)
    assert expected in message, message
    assert str(file) in message  # which file
    assert publication_fingerprint(paths.published) == before_publication
    assert raw_fingerprint(paths, source) == before_raw  # raw keeps its last good partition, whole


def test_the_corpus_covers_at_least_twenty_distinct_bad_inputs():
    assert len(CORPUS) >= 20
    assert set(FULL_RUNS) <= set(CORPUS)


def test_failed_check_report_names_source_partition_rule_count_and_samples(published: Paths, tmp_path: Path):
    paths = _copy(published, tmp_path / "data")
    _edit("quantity", "-4", row=3)(paths.landing / "order_lines" / f"{MONTH}.csv")
    _edit("customer_id", "C777777", row=5)(paths.landing / "order_lines" / f"{MONTH}.csv")
    with pytest.raises(PipelineError) as caught:
        run_pipeline(Settings(data_dir=paths.data_dir), MONTH, MONTH, progress=lambda _: None)
    message = str(caught.value)
    assert f"order_lines {MONTH} (" in message and " expectations failed" in message
    assert "quantity: 1 unexpected (e.g. -4 at line 4)" in message  # data row 3: the header is line 1
    assert "_unknown_customer_id: 1 unexpected (e.g. C777777 at line 6)" in message
    docs = paths.data_dir / "gx" / "data_docs" / "run.html"
    assert f"Data Docs: {docs}" in message and docs.exists()
    page = docs.read_text()  # the run's page lists the failed validation, and links GX's page of it
    assert "<td>order_lines</td><td>2024-02</td>" in page and "FAILED (" in page and "C777777" in page
    assert "http" not in page.replace('href="index.html"', "")  # nothing fetched from outside
    linked = re.search(r'<a href="(validations/[^"]*order_lines 2024-02[^"]*)">result</a>', page)
    assert linked and (docs.parent / html.unescape(linked.group(1))).exists()


def test_fixed_file_publishes_after_a_failed_run(published: Paths, tmp_path: Path):
    paths = _copy(published, tmp_path / "data")
    file = paths.landing / "order_lines" / f"{MONTH}.csv"
    good = file.read_bytes()
    _edit("quantity", "-4")(file)
    before = publication_fingerprint(paths.published)
    with pytest.raises(PipelineError):
        run_pipeline(Settings(data_dir=paths.data_dir), MONTH, MONTH, progress=lambda _: None)
    file.write_bytes(good)
    run_pipeline(Settings(data_dir=paths.data_dir), MONTH, MONTH, progress=lambda _: None)
    after = publication_fingerprint(paths.published)
    assert after[0] != before[0]
    with duckdb.connect(str(current_database(paths.published)), read_only=True) as con:
        runs = con.execute(
            "select count(distinct run_id), min(first_period), max(last_period) from marts.publish_log"
        ).fetchone()
        logged = con.execute(
            "select row_count, checksum from marts.publish_log where table_name = 'customer_profitability' "
            "order by published_at desc limit 1"
        ).fetchone()
        actual = con.execute("select count(*) from marts.customer_profitability").fetchone()[0]
    assert runs[0] == 2 and str(runs[1]) == "2024-01-01" and str(runs[2]) == "2024-03-01"
    assert logged[0] == actual and logged[1].startswith(f"{actual}:")


# --- killed while publishing ---------------------------------------------------------------------


@pytest.mark.system
@pytest.mark.parametrize("point", ["building", "before_swap"])
def test_a_run_killed_while_publishing_leaves_the_previous_publication(
    published: Paths, tmp_path: Path, point: str
):
    paths = _copy(published, tmp_path / "data")
    before = publication_fingerprint(paths.published)
    marker = paths.published / f".paused-{point}"
    env = {**os.environ, PAUSE_ENV: point, "CPROF_DATA_DIR": str(paths.data_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", "--from", MONTH, "--to", MONTH],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert process.poll() is None, "the run ended before it reached the publishing step"
            assert time.monotonic() < deadline, "the run never reached the publishing step"
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert publication_fingerprint(paths.published) == before
    marker.unlink()

    run_pipeline(Settings(data_dir=paths.data_dir), MONTH, MONTH, progress=lambda _: None)
    after = publication_fingerprint(paths.published)
    assert after[0] != before[0]
    releases = paths.published / "releases"
    assert not list(releases.glob(".building-*"))  # the abandoned build was cleared


# --- a reader during a refresh -------------------------------------------------------------------

READER = r"""
import sys, time, duckdb
import pathlib
path, stop = sys.argv[1], pathlib.Path(sys.argv[2])
reads = errors = 0
runs = set()
while not stop.exists():
    try:
        with duckdb.connect(path, read_only=True) as con:
            bad = con.execute('''
                with customers as (
                    select period, sum(abc_profit) as abc, sum(traditional_profit) as traditional
                    from marts.customer_profitability group by period
                )
                select count(*) from marts.company_reconciliation as r
                left join customers as c using (period)
                where not r.balanced or c.abc is distinct from r.abc_customer_profit
                   or c.traditional is distinct from r.traditional_customer_profit
            ''').fetchone()[0]
            runs.update(r for (r,) in con.execute('select distinct run_id from marts.publish_log').fetchall())
        reads += 1
        if bad:
            errors += 1
            print('unreconciled read', file=sys.stderr)
    except Exception as exc:
        errors += 1
        print(repr(exc), file=sys.stderr)
print(reads, errors, len(runs))
"""


@pytest.mark.system
def test_a_reader_during_a_refresh_sees_no_error_and_every_read_reconciles(published: Paths, tmp_path: Path):
    paths = _copy(published, tmp_path / "data")
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(current_database(paths.published)), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1)
        for _ in range(2):
            run_pipeline(Settings(data_dir=paths.data_dir), MONTH, MONTH, progress=lambda _: None)
        time.sleep(1)
        stop.touch()
        out, err = reader.communicate(timeout=120)
    finally:
        if reader.poll() is None:
            reader.kill()
    reads, errors, runs = (int(v) for v in out.split())
    assert errors == 0, err
    assert reads > 10
    assert runs >= 2  # it read across at least one swap
