"""The synthetic sample data generator (not part of the Dagster code location)."""
