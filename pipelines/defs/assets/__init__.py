"""Dagster assets, one module per group: ingest (landing files to raw tables), transform (dbt)."""
