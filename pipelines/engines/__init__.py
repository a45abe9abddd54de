"""The warehouse engines behind one seam: DuckDB (the embedded default) and Spark; the SQL quoting helper."""
