"""The run page, ``gx/data_docs/run.html``: every validation of the run with its result, a link to Great
Expectations' page of each failed one, and every suite that did not run with the reason the run recorded. It is
the Data Docs site's home (GX's own index draws its table with scripts from public CDNs and is not built:
data_checks/data_docs.py), rendered from ``data_docs_templates/run.html.j2``.
"""

from __future__ import annotations

import os
from glob import escape as glob_escape
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from data_checks.outcomes import Outcome
from data_checks.suites import SUITES, references
from pipelines.lib.settings import Settings

TEMPLATES = Path(__file__).with_name("data_docs_templates")


def write_run_page(
    site: Path, outcomes: list[Outcome], skipped: dict[str, str], failed_steps: dict[str, str]
) -> Path:
    """Write the run page of ``outcomes`` into the Data Docs ``site`` (atomically) and return its path; each
    failed validation links the newest page GX rendered of it there."""
    rows = []
    for outcome in outcomes:
        partition = f"{outcome.source} {outcome.month or 'snapshot'}"
        pages = sorted(site.glob(f"validations/**/{glob_escape(partition)}/*/*.html"))
        rows.append(
            {
                "status": "ok" if outcome.success else "failed",
                "source": outcome.source,
                "partition": outcome.month or "snapshot",
                "rows": f"{outcome.rows:,}",
                "result": f"passed ({outcome.evaluated} expectations)"
                if outcome.success
                else f"FAILED ({len(outcome.failures)} of {outcome.evaluated} expectations)",
                "failures": [failure.describe() for failure in outcome.failures],
                "link": str(pages[-1].relative_to(site)) if pages else "",
            }
        )
    environment = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["j2"]))
    page = environment.get_template("run.html.j2").render(
        counts=run_counts(outcomes), rows=rows, not_run=suites_not_run(outcomes, skipped, failed_steps)
    )
    index = site / "run.html"
    partial = index.with_suffix(".partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, index)
    return index


def suites_not_run(
    outcomes: list[Outcome], skipped: dict[str, str], failed_steps: dict[str, str] | None = None
) -> dict[str, str]:
    """Every suite that validated nothing in the run, and why, from what the run recorded: its landed step
    failed (``failed_steps``), it was left out (``skipped``: an unchanged snapshot), or its step waited for a
    source it checks references against, whose suite or step failed; else the run did not cover it."""
    failed_steps = failed_steps or {}
    ran = {o.source for o in outcomes}
    failed = {o.source: f"{o.source} failed its suite" for o in outcomes if not o.success}
    failed |= {source: f"the step landed.{source} failed" for source in failed_steps}
    reasons = {}
    for source in sorted(set(SUITES) - ran):
        blocked = sorted(references(source) & set(failed))
        if source in failed_steps:
            reasons[source] = f"not run: its step landed.{source} failed: {failed_steps[source]}"
        elif source in skipped:
            reasons[source] = skipped[source]
        elif blocked:
            reasons[source] = (
                f"not run: its step landed.{source} waits for {', '.join(blocked)}, which it checks references "
                f"against; in this run {'; '.join(failed[name] for name in blocked)}, so "
                f"{'it was' if len(blocked) == 1 else 'they were'} not promoted"
            )
        else:
            reasons[source] = "not part of this run (the run covered other assets)"
    return reasons


def run_counts(outcomes: list[Outcome]) -> str:
    """What the run validated, each count saying what it counts."""
    failed = [o for o in outcomes if not o.success]
    sources = {o.source for o in outcomes}
    not_run = len(set(SUITES) - sources)
    batched = [o for o in outcomes if o.batch and o.engine is None]
    in_duckdb = [o for o in outcomes if o.engine == "duckdb"]
    return (
        f"{len(outcomes)} validations (one per source and partition, {len(sources)} sources), "
        f"{len(failed)} failed; {sum(o.evaluated for o in outcomes):,} expectations evaluated, "
        f"{sum(len(o.failures) for o in failed)} failed. Suites: {len(sources)} of {len(SUITES)} run"
        + (f", {not_run} not run (listed below)." if not_run else ".")
        + (
            f" {len(batched)} of the partitions passed in {len({(o.source, o.batch) for o in batched})} runs "
            f"of Great Expectations that validated consecutive months together ({Settings.variable('gx_batch_rows')})."
            if batched
            else ""
        )
        + (
            f" {len(in_duckdb)} of the partitions passed their suites evaluated in DuckDB, in "
            f"{len({(o.source, o.batch or o.month) for o in in_duckdb})} passes (Great Expectations has no DuckDB "
            "engine yet: data_checks/duckdb_evaluation.py gives the outcomes its pandas engine gives); a partition "
            "that fails there is validated again by Great Expectations."
            if in_duckdb
            else ""
        )
    )
