"""The lake (docs/lake.md): Delta Lake tables `tasks`, `runs`, `users` and the archive
`archive/tasks`, `archive/runs`, partitioned by month, written with `deltalake` (delta-rs)
and read by any Delta client (Spark, Trino, Databricks, ClickHouse, DuckDB, Polars) with no
code of ours, while the dashboard holds the mirror.

- queries.lake.store: a local folder or an S3-compatible bucket.
- queries.lake.tables: the Delta tables, one-transaction month replacement, commit
  metadata (source horizon, fingerprints), history, vacuum.
- queries.lake.export: `export_lake(con, store)`, the incremental export from the mirror.
- queries.lake.migrate: converting a lake of the old manifest layout, once.
- queries.lake.read: the lake's tables in DuckDB (through deltalake's Arrow datasets).
- queries.lake.rollups: the overview rollups on the lake with DuckDB, ClickHouse (chdb),
  Polars and deltalake.
- queries.lake.archive: confirming and archiving a purge batch (ingest.store.retention).
- queries.lake.sync: `sync_lake`, mirror sync then export, from any process.
- queries.lake.cli: `ai-runs lake sync`, `ai-runs lake history` and `ai-runs purge`.
"""

__all__ = ["cli"]
