"""Archiving a purge batch into the lake before Postgres forgets it (docs/lake.md,
"Retention").

`Archiver(store)` is the `confirm` callback of ingest.store.retention.purge_old_runs. For each
batch, inside the purge's transaction (the runs are locked, so they cannot change):

1. Confirm: every run of the batch is in the lake's Delta tables (live, or the archive of
   an earlier attempt) with the same task_count, total_tokens and total_cost, and the lake
   holds exactly the batch's tasks with the same status, tokens_total and cost. Otherwise
   ArchiveRefused is raised, the transaction rolls back and nothing of the batch is
   deleted: run `ai-runs lake sync` and purge again.
2. Move, one Delta transaction per table: the months of `tasks` and `runs` the batch
   touches are rewritten without its rows (replaceWhere), then its rows are appended to
   `archive/tasks` and `archive/runs`. Live first: at no moment does a reader of the
   latest versions see a row both live and archived (it may, for the second between the
   two commits, see it in neither; the commits of both carry the purge in their metadata).

Only then does the purge delete the rows in Postgres and commit. If something fails
between the commits, Postgres still has the rows: the next `lake sync` rewrites the
months the live commit touched (it marked their fingerprints unknown), and retrying the
purge finds rows archived already and does not archive them twice.

Each commit is made against the snapshot the confirmation read: when an export changed
the same months meanwhile, Delta refuses the commit and the batch is refused too.
"""

from __future__ import annotations

from datetime import UTC

import duckdb
import pyarrow as pa

from ingest.store import config
from ingest.store.retention import PurgeBatch
from queries import sqltext
from queries.lake import tables
from queries.lake.migrate import OLD_MANIFEST
from queries.lake.store import LakeStore

# live table -> (archive table, column naming the run)
MOVES = {"tasks": ("archive_tasks", "run_id"), "runs": ("archive_runs", "id")}


class ArchiveRefused(RuntimeError):
    """The lake does not hold a purge batch as Postgres has it; nothing was deleted."""


class Archiver:
    """Confirms a purge batch in the lake at `store` and moves it into the archive."""

    def __init__(self, store: LakeStore, *, retention_hours: int | None = None) -> None:
        self.store = store
        self.retention = (
            config.lake_retention_hours() if retention_hours is None else retention_hours
        )
        self.archived_runs = 0
        self.archived_tasks = 0

    def __call__(self, batch: PurgeBatch) -> None:
        if self.store.read_bytes(OLD_MANIFEST) is not None:
            raise ArchiveRefused(
                f"the lake at {self.store.url} still has the old manifest layout; run "
                "`ai-runs lake sync` once to convert it, then purge again"
            )
        months = sorted({_month(r["created_at"]) for r in batch.runs + batch.tasks})
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        try:
            snapshots = self._stage(con, batch, months)
            self._confirm(con, len(batch.runs))
            self._move(con, snapshots, months, len(batch.runs))
        finally:
            con.close()
        for table in MOVES:
            tables.vacuum(self.store, table, self.retention)

    def _stage(self, con: duckdb.DuckDBPyConnection, batch: PurgeBatch, months: list[str]):
        """Register the batch and views over the lake's rows of its months; the Delta
        snapshots read (None for a table that does not exist)."""
        con.register("batch_runs", pa.Table.from_pylist(batch.runs or [], schema=_BATCH_RUNS))
        con.register("batch_tasks", pa.Table.from_pylist(batch.tasks or [], schema=_BATCH_TASKS))
        con.register("batch_months", pa.table({"month": pa.array(months, pa.string())}))
        snapshots = {}
        for table, (archive, _) in MOVES.items():
            for name, source in ((f"live_{table}", table), (f"archived_{table}", archive)):
                snapshot = tables.open_table(self.store, source)
                snapshots[source] = snapshot
                if snapshot is None:  # an empty stand-in with the columns the queries use
                    con.execute(_EMPTY[table].format(name=name))  # name from this module
                    continue
                only = [("month", "in", months)]
                dataset = snapshot.to_pyarrow_dataset(file_pruning_predicate=only)
                con.from_arrow(dataset).create_view(name, replace=True)
        return snapshots

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

    def _move(self, con, snapshots: dict, months: list[str], runs: int) -> None:
        """Live tables without the batch first, then the archive with it (see above)."""
        moving = {}
        for table, (_, key) in MOVES.items():
            names = {"live": f"live_{table}", "archived": f"archived_{table}", "key": key}
            query = sqltext.render("lake", "rows_to_archive", **names).sql
            moving[table] = con.sql(query).to_arrow_table()  # before the live commit
        metadata = {"months": months, "purge": {"runs": runs}, "writer": "purge --archive"}
        try:
            for table, (_, key) in MOVES.items():
                self._remove_from_live(con, table, key, snapshots[table], months, metadata)
            for table, (archive, _) in MOVES.items():
                if moving[table].num_rows == 0:
                    continue
                reader = moving[table].to_reader()
                tables.append(
                    self.store,
                    archive,
                    snapshots[archive],
                    reader,
                    metadata,
                    retention_hours=self.retention,
                )
                if table == "tasks":
                    self.archived_tasks += moving[table].num_rows
                else:
                    self.archived_runs += moving[table].num_rows
        except tables.LakeConflict as exc:
            raise ArchiveRefused(
                f"{exc} Nothing of this batch was deleted from Postgres; purge again."
            ) from exc

    def _remove_from_live(
        self, con, table: str, key: str, snapshot, months: list[str], metadata: dict
    ) -> None:
        """One commit rewriting `months` of live `table` without the batch's rows, unless
        none of them is there (an earlier attempt removed them already)."""
        names = {"live": f"live_{table}", "key": key}
        count = sqltext.render("lake", "batch_rows_in_live", **names).sql
        if snapshot is None or con.sql(count).fetchall()[0][0] == 0:
            return
        state = tables.table_state(snapshot)
        metadata = dict(metadata)
        if state.complete:  # the months it rewrites become unknown to the next export
            unknown = {m: "" for m in months if m in state.fingerprints}
            metadata |= {"fingerprints": state.fingerprints | unknown, "source": state.source}
        kept = con.sql(sqltext.render("lake", "rows_to_keep", **names).sql)
        tables.replace_months(
            self.store,
            table,
            snapshot,
            kept.to_arrow_reader(128 * 1024),
            months,
            metadata,
            retention_hours=self.retention,
        )


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
# Stand-ins for lake tables that do not exist yet (fixed names, no values).
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
