"""The publication BI tools read: releases of the marts (DuckDB file and Parquet), swapped in atomically."""
