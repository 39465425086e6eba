"""Archiving a purge batch into the lake before Postgres forgets it (docs/lake.md,
"Retention").

`Archiver(store)` is the `confirm` callback of ingest.retention.purge_old_runs. For each
batch, inside the purge's transaction (the runs are locked, so they cannot change):

1. Confirm: every run of the batch is in the lake (live tables, or the archive of an
   earlier attempt) with the same task_count, total_tokens and total_cost, and the lake
   holds exactly the batch's tasks with the same status, tokens_total and cost. Otherwise
   ArchiveRefused is raised, the transaction rolls back and nothing of the batch is
   deleted: run `ai-runs lake sync` and purge again.
2. Move: the batch's rows are written to `archive/runs` and `archive/tasks` (Hive months,
   append-only) and the live partitions they came from are rewritten without them, all
   published by one manifest swap: the live tables and the archive never overlap, and
   live + archive is the whole history.

Only then does the purge delete the rows in Postgres and commit. If that delete fails
after the swap, the rows are in the archive and still in Postgres; the next `lake sync`
puts them back into the live tables, and retrying the purge finds them archived already
and only removes them from the live tables again.
"""

from __future__ import annotations

from datetime import UTC

import duckdb
import pyarrow as pa

from ingest.store.retention import PurgeBatch
from queries import sqltext
from queries.lake.export import ROW_GROUP_ROWS, partition_file, write_parquet
from queries.lake.manifest import Manifest, Partition, Table, swap_manifest
from queries.lake.read import current_manifest, table_relation
from queries.lake.store import LakeStore

# live table -> (archive table, column naming the run)
MOVES = {"runs": ("archive_runs", "id"), "tasks": ("archive_tasks", "run_id")}


class ArchiveRefused(RuntimeError):
    """The lake does not hold a purge batch as Postgres has it; nothing was deleted."""


class Archiver:
    """Confirms a purge batch in the lake at `store` and moves it into the archive."""

    def __init__(self, store: LakeStore) -> None:
        self.store = store
        self.archived_runs = 0
        self.archived_tasks = 0

    def __call__(self, batch: PurgeBatch) -> None:
        with self.store.writer_lock():
            manifest = current_manifest(self.store)
            con = duckdb.connect()
            con.execute("SET TimeZone = 'UTC'")
            try:
                months = self._stage(con, manifest, batch)
                self._confirm(con, len(batch.runs))
                self._move(con, manifest, months)
            finally:
                con.close()

    def _stage(self, con: duckdb.DuckDBPyConnection, manifest: Manifest, batch: PurgeBatch):
        runs = pa.Table.from_pylist(batch.runs or [], schema=_BATCH_RUNS)
        tasks = pa.Table.from_pylist(batch.tasks or [], schema=_BATCH_TASKS)
        con.register("batch_runs", runs)
        con.register("batch_tasks", tasks)
        months = {_month(r["created_at"]) for r in batch.runs + batch.tasks}
        for table, (archive, _) in MOVES.items():
            for name, source in ((f"live_{table}", table), (f"archived_{table}", archive)):
                if manifest.table_files(source, months):
                    relation = table_relation(con, self.store, manifest, source, months)
                    relation.create_view(name, replace=True)
                else:  # an empty stand-in with the columns the queries use
                    con.execute(_EMPTY[table].format(name=name))  # name from this module
        return months

    def _confirm(self, con: duckdb.DuckDBPyConnection, runs: int) -> None:
        sql = sqltext.named("lake")
        con.sql(sql["lake_copy_of_batch_runs"].sql).create_view("lake_runs", replace=True)
        bad_runs = con.execute(sql["runs_not_confirmed"].sql).fetchall()
        bad_tasks = con.execute(sql["tasks_not_confirmed"].sql).fetchall()
        if bad_runs or bad_tasks:
            example = bad_runs[0] if bad_runs else bad_tasks[0]
            raise ArchiveRefused(
                f"the lake at {self.store.url} does not hold {len(bad_runs)} of {runs} runs "
                f"({len(bad_tasks)} tasks) as Postgres has them, e.g. {example[0]}: "
                f"{example[-1]}. Nothing of this batch was deleted; run `ai-runs lake sync` "
                "and purge again."
            )

    def _move(self, con: duckdb.DuckDBPyConnection, old: Manifest, months: set[str]) -> None:
        new = Manifest(source=old.source, tables=dict(old.tables))
        for table, (archive, key) in MOVES.items():
            live = _copy(old.tables.get(table), "month")
            kept = _copy(old.tables.get(archive), "month")
            expressions = {"live": f"live_{table}", "archived": f"archived_{table}", "key": key}
            for month in sorted(months):
                moved = self._write(
                    con, "rows_to_archive", expressions, month, f"archive/{table}/month={month}"
                )
                if moved is not None:
                    part = kept.partitions.get(month) or Partition([], 0, "")
                    part = Partition(part.files + [moved[0]], part.rows + moved[1], "")
                    kept.partitions[month] = part
                    setattr(
                        self, f"archived_{table}", getattr(self, f"archived_{table}") + moved[1]
                    )
                if month not in live.partitions:
                    continue
                rest = self._write(
                    con, "rows_to_keep", expressions, month, f"{table}/month={month}"
                )
                if rest is None:
                    del live.partitions[month]
                else:  # fingerprint unknown: the next export rewrites it from the mirror
                    live.partitions[month] = Partition([rest[0]], rest[1], "")
            kept.columns = kept.columns or live.columns
            new.tables[table], new.tables[archive] = live, kept
        swap_manifest(self.store, new, old)

    def _write(self, con, query: str, expressions: dict, month: str, folder: str):
        """Write the rows of `query` for `month` to a new file in `folder`; (file, rows),
        or None when there are none."""
        relation = con.sql(
            sqltext.render("lake", query, **expressions).duckdb, params={"month": month}
        )
        table = relation.to_arrow_table()
        if table.num_rows == 0:
            return None
        rel = partition_file(folder)
        write_parquet(self.store, rel, table.to_reader(ROW_GROUP_ROWS))
        return rel, table.num_rows


def _copy(table: Table | None, partition_by: str) -> Table:
    if table is None:
        return Table(partition_by=partition_by)
    return Table(table.partition_by, list(table.columns), dict(table.partitions))


def _month(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


_BATCH_RUNS = pa.schema(
    [
        ("id", pa.string()),
        ("task_count", pa.int64()),
        ("total_tokens", pa.int64()),
        ("total_cost", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)
_BATCH_TASKS = pa.schema(
    [
        ("id", pa.string()),
        ("run_id", pa.string()),
        ("status", pa.string()),
        ("tokens_total", pa.int64()),
        ("cost", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)
# Stand-ins for lake tables with no file in the batch's months (fixed names, no values).
_EMPTY = {
    "runs": "CREATE OR REPLACE TEMP VIEW {name} AS SELECT NULL::VARCHAR AS id, "
    "NULL::INTEGER AS task_count, NULL::BIGINT AS total_tokens, "
    "NULL::DECIMAL(24, 10) AS total_cost, NULL::TIMESTAMPTZ AS created_at, "
    "NULL::VARCHAR AS month WHERE false",
    "tasks": "CREATE OR REPLACE TEMP VIEW {name} AS SELECT NULL::VARCHAR AS id, "
    "NULL::VARCHAR AS run_id, NULL::VARCHAR AS status, NULL::BIGINT AS tokens_total, "
    "NULL::DECIMAL(20, 10) AS cost, NULL::TIMESTAMPTZ AS created_at, "
    "NULL::VARCHAR AS month WHERE false",
}
