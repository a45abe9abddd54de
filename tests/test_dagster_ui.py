"""What a data engineer sees in Dagster's UI after a run: asked through the webserver's GraphQL API (the API the
UI itself reads), and once in headless chromium. The webserver runs against the instance of a published sample,
as `make dev` runs it against the demo's."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.config import PROJECT_ROOT, Paths
from pipelines.publication.publish import current_database
from tests.browser import FLAGS, ensure_chromium

STARTUP_SECONDS = 180


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    assert "errors" not in answer, answer
    return answer["data"]


@pytest.fixture(scope="module")
def webserver(published_sample: Paths, tmp_path_factory) -> Iterator[str]:
    """dagster-webserver on 127.0.0.1 and a free port, with the sample's instance; its base URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("webserver") / "webserver.log"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(published_sample.dagster_home),
        "CPROF_DATA_DIR": str(published_sample.data_dir),
    }
    executable = Path(sys.executable).with_name("dagster-webserver")
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(executable), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, log.read_text()
            try:
                status = _post(
                    f"{base}/graphql",
                    "{ workspaceOrError { ... on Workspace { locationEntries { name "
                    "locationOrLoadError { __typename } } } } }",
                )
                entries = status["workspaceOrError"]["locationEntries"]
                if entries and all(e["locationOrLoadError"] for e in entries):
                    assert all(
                        e["locationOrLoadError"]["__typename"] == "RepositoryLocation" for e in entries
                    ), log.read_text()
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"no webserver after {STARTUP_SECONDS}s:\n{log.read_text()}"
            time.sleep(1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
    warnings = [line for line in log.read_text().splitlines() if "Warning" in line]
    assert warnings == [], "\n".join(warnings)


ASSET_NODES = """
{ assetNodes { assetKey { path } isPartitioned
  partitionStats { numMaterialized numPartitions numFailed numMaterializing } } }
"""

MATERIALIZATIONS = """
query ($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetMaterializations(limit: 200) { partition runId
      metadataEntries { label
        ... on IntMetadataEntry { intValue }
        ... on TextMetadataEntry { text }
        ... on PathMetadataEntry { path } } } } } }
"""


def _latest_by_partition(base: str, path: list[str]) -> dict[str, dict]:
    events = _post(f"{base}/graphql", MATERIALIZATIONS, {"path": path})["assetOrError"][
        "assetMaterializations"
    ]
    latest: dict[str, dict] = {}
    for event in events:  # newest first
        values = {}
        for entry in event["metadataEntries"]:
            values[entry["label"]] = entry.get("intValue", entry.get("text", entry.get("path")))
        latest.setdefault(event["partition"], values)
    return latest


@pytest.mark.system
def test_every_partitioned_asset_has_all_its_partitions_materialized(webserver: str, published_sample: Paths):
    nodes = _post(f"{webserver}/graphql", ASSET_NODES)["assetNodes"]
    partitioned = {"/".join(n["assetKey"]["path"]): n["partitionStats"] for n in nodes if n["isPartitioned"]}
    assert "landed/order_lines" in partitioned and "published/marts" in partitioned
    months = sorted(p.stem for p in (published_sample.landing / "order_lines").glob("*.csv"))
    for key, stats in partitioned.items():
        # the partitions are the sample's months (from its landing zone), none missing or failed
        assert stats["numPartitions"] == len(months), key
        assert stats["numMaterialized"] == len(months), (key, stats)
        assert stats["numFailed"] == 0, key


@pytest.mark.system
def test_each_partition_carries_its_own_rows_file_and_checksum(webserver: str, published_sample: Paths):
    latest = _latest_by_partition(webserver, ["landed", "order_lines"])
    with duckdb.connect(str(published_sample.warehouse), read_only=True) as con:
        rows = dict(
            con.execute(
                "select strftime(_period, '%Y-%m'), count(*) from raw.order_lines group by 1"
            ).fetchall()
        )
    assert len({m["rows"] for m in latest.values()}) == len(latest) > 1  # not one run total everywhere
    for key, metadata in latest.items():
        month = key[:7]
        file = published_sample.landing / "order_lines" / f"{month}.csv"
        assert metadata["rows"] == metadata["dagster/row_count"] == rows[month], month
        assert metadata["file"] == str(file)
        assert metadata["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()


@pytest.mark.system
def test_every_monthly_mart_reports_its_row_count_per_partition(webserver: str, published_sample: Paths):
    """Every mart keyed by period, dbt's and the Python assets' (whose one materialization covers the run's
    range), carries each month's own row count on that month's partition, not the range's total; the sample
    is built in one run, so each equals the published month's."""
    database = current_database(published_sample.published)
    with duckdb.connect(str(database), read_only=True) as con:
        monthly = [
            t
            for (t,) in con.execute(
                "select table_name from duckdb_columns() where schema_name = 'marts' and column_name = 'period' "
                "and table_name not in ('publish_log', 'publish_period_log') order by 1"
            ).fetchall()
        ]
        published = {
            table: dict(
                con.execute(
                    f"select strftime(period, '%Y-%m'), count(*) from marts.{table} group by 1"
                ).fetchall()
            )
            for table in monthly
        }
        customers = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
    assert {"customer_profitability", "customer_clv", "clv_fits", "satisfaction_drivers"} <= set(monthly)
    for table in monthly:
        latest = _latest_by_partition(webserver, ["marts", table])
        counts = {key[:7]: m["dagster/row_count"] for key, m in latest.items()}
        assert counts == {month: published[table].get(month, 0) for month in counts}, table
        assert len(counts) > 1, table
    clv = {
        key[:7]: m["dagster/row_count"]
        for key, m in _latest_by_partition(webserver, ["marts", "customer_clv"]).items()
    }
    assert len(set(clv.values())) > 1  # a month's own count, not one total everywhere
    dims = _latest_by_partition(webserver, ["marts", "dim_customers"])
    assert {m["dagster/row_count"] for m in dims.values()} == {customers}  # a dimension: the table's rows


# What the asset page's Events tab asks (its RecentAssetEventsQuery), and how it tells events apart: by run and
# millisecond (usePaginatedAssetEvents de-duplicates on runId + timestamp + type).
EVENT_HISTORY = """
query ($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetEventHistory(limit: 100, eventTypeSelectors: [MATERIALIZATION]) {
      results { ... on MaterializationEvent { runId timestamp partition } } } } } }
"""


@pytest.mark.system
def test_the_events_tab_lists_every_month_of_a_range_run(webserver: str, published_sample: Paths):
    months = sorted(p.stem for p in (published_sample.landing / "order_lines").glob("*.csv"))
    assert len(months) > 1  # the sample's run is one run over a range of months
    for path in (["marts", "customer_profitability"], ["landed", "order_lines"], ["published", "marts"]):
        history = _post(f"{webserver}/graphql", EVENT_HISTORY, {"path": path})["assetOrError"]
        events = history["assetEventHistory"]["results"]
        listed = {(e["runId"], e["timestamp"]): e["partition"] for e in events}  # what the tab keeps
        assert sorted(listed.values()) == sorted(e["partition"] for e in events), path
        assert sorted(key[:7] for key in listed.values()) == months, path


# What a check's Partitions tab asks (its AssetCheckPartitionHealthQuery).
CHECK_PARTITIONS = """
query ($path: [String!]!, $check: String!) {
  assetNodeOrError(assetKey: {path: $path}) {
    ... on AssetNode { assetCheckOrError(checkName: $check) {
      ... on AssetCheck { partitionStatuses {
        ... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } } } } } } } }
"""

ASSET_CHECKS = """
{ assetNodes { assetKey { path }
  assetChecksOrError { ... on AssetChecks { checks { name partitionDefinition { type } } } } } }
"""

# What a check's page lists (its executions, each with the partition it evaluated).
CHECK_EXECUTIONS = """
query ($path: [String!]!, $check: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $check, limit: 100) {
    status evaluation { partition } } }
"""


@pytest.mark.system
def test_every_check_passed_for_every_month_of_a_good_range_run(webserver: str, published_sample: Paths):
    """Dagster plans each check of a run over months once per month; every one of them is evaluated (none
    left planned, which the UI shows as skipped), and a partitioned check's Partitions tab shows every month
    passed."""
    months = sorted(p.stem for p in (published_sample.landing / "order_lines").glob("*.csv"))
    nodes = _post(f"{webserver}/graphql", ASSET_CHECKS)["assetNodes"]
    checks = [
        (node["assetKey"]["path"], check["name"], check["partitionDefinition"] is not None)
        for node in nodes
        for check in node["assetChecksOrError"].get("checks", [])
    ]
    partitioned = [(path, name) for path, name, is_partitioned in checks if is_partitioned]
    assert {"/".join(path) for path, _ in partitioned} >= {"landed/order_lines", "landed/gl_costs"}
    assert len(checks) > 100  # the suites, the dbt tests, the CLV holdout, the freshness check
    for path, name, _ in checks:
        if name == "published_on_time":  # not a check of the refresh run
            continue
        executions = _post(f"{webserver}/graphql", CHECK_EXECUTIONS, {"path": path, "check": name})
        executions = executions["assetCheckExecutions"]
        assert {e["status"] for e in executions} == {"SUCCEEDED"}, (path, name, executions)
        evaluated = {e["evaluation"]["partition"][:7] for e in executions if e["evaluation"]["partition"]}
        assert evaluated == set(months), (path, name, executions)
    for path, name in partitioned:
        statuses = _post(f"{webserver}/graphql", CHECK_PARTITIONS, {"path": path, "check": name})
        ranges = statuses["assetNodeOrError"]["assetCheckOrError"]["partitionStatuses"]["ranges"]
        # one range, every month of it passed (not "Skipped (3) Passed (0)")
        assert [(r["startKey"][:7], r["endKey"][:7], r["status"]) for r in ranges] == [
            (months[0], months[-1], "SUCCEEDED")
        ], (path, name, ranges)


@pytest.mark.system
def test_the_asset_catalog_shows_nothing_missing(webserver: str, tmp_path: Path):
    chromium = ensure_chromium()
    png = tmp_path / "asset-catalog.png"
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        common = [chromium, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=20000"]
        page = f"{webserver}/assets"
        subprocess.run(
            [*common, f"--screenshot={png}", "--window-size=1400,1400", page],
            capture_output=True,
            timeout=120,
            check=True,
        )
        dom = subprocess.run(
            [*common, "--dump-dom", page], capture_output=True, text=True, timeout=120, check=True
        ).stdout
    keep = os.environ.get("CPROF_KEEP_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        Path(keep, png.name).write_bytes(png.read_bytes())
    # Each partitioned asset's status cell: its count of missing partitions beside the "partition_missing" icon.
    missing = re.findall(r'aria-label="partition_missing"[^>]*></div>(\d+)</div>', dom)
    assert len(missing) >= 10, "the catalog did not render its assets' partition status"
    assert set(missing) == {"0"}
    assert "Never materialized" not in dom
    assert png.stat().st_size > 10_000


def test_partitions_span_the_landing_zone_or_reach_the_last_complete_month_when_it_is_live():
    from datetime import date

    from pipelines.landing.history import partition_months

    sample = [f"2024-{m:02d}" for m in range(1, 13)]
    # a historic landing zone (a sample, an archive): its own months, none beyond
    assert partition_months(sample, date(2026, 11, 25)) == ("2024-01", "2024-12")
    # a live one (newest month is the one closing, or the last complete one): up to the last complete month
    assert partition_months(sample, date(2025, 2, 2)) == ("2024-01", None)
    assert partition_months(sample, date(2025, 1, 15)) == ("2024-01", None)
    # configured bounds win; without a landing zone, the default start moving with time
    assert partition_months(sample, date(2026, 11, 25), "2023-06", "2025-03") == ("2023-06", "2025-03")
    assert partition_months([], date(2026, 11, 25)) == ("2020-01", None)
