"""Dagster assets, one module per group: ingest (landing files to raw tables), transform (dbt)."""

# Metadata of a materialization: what a person must know of what it computed (a survey question left out of a
# month's weights, a CLV month published without model figures). `cprof run` prints each as a `note:` line.
NOTES = "notes"
