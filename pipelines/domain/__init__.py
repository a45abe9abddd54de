"""Domain logic as plain modules (no Dagster, no warehouse engine): CLV, satisfaction, the report."""
