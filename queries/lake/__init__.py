"""The open Parquet lake (docs/lake.md): an incrementally exported, Hive-partitioned copy
of the mirror's analytics tables that DuckDB, ClickHouse (chdb), Spark or Trino read while
the dashboard holds the mirror; plus the archive that retention moves old runs into.

- queries.lake.store: a local folder or an S3-compatible bucket (pyarrow filesystems).
- queries.lake.manifest: the manifest, its atomic swap, garbage collection.
- queries.lake.export: `export_lake(con, store)`, the incremental export from the mirror.
- queries.lake.read: opening the lake's tables in DuckDB (through the manifest).
- queries.lake.rollups: the overview rollups on the lake, in DuckDB and in ClickHouse.
- queries.lake.archive: confirming and archiving a purge batch (ingest.retention).
- queries.lake.cli: `ai-runs lake sync` and `ai-runs purge`.
"""
