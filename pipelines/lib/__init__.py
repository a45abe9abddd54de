"""Configuration, the data directory's writer lock and the dbt child launcher."""
