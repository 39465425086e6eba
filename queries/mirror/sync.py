"""One sync of the DuckDB analytics mirror of ai_tasks, ai_runs, ai_users and ai_scores
(docs/design.md, The mirror; docs/quality.md), with each of its steps beside its SQL.

Change capture (migration 0003): every source row carries `sync_xid`, the id of the
transaction that last wrote it, and deletions are logged with the same stamp. A sync runs in
one REPEATABLE READ transaction; it remembers the snapshot horizon
`pg_snapshot_xmin(pg_current_snapshot())` — every transaction below it has finished — and
the next sync reads only rows stamped at or above that horizon. A transaction that was still
running (so invisible) gets an id >= the horizon, so the next sync sees it once it commits.
Rows are applied by delete-by-id then insert, so reading a row twice never counts it twice;
a logged deletion is applied only when the row is absent from the snapshot.

The horizon is the oldest transaction id still running on the whole server, so a
transaction left open in any database holds it back and every sync re-reads what was
written since. Each sync names such transactions (ingest/store/horizon.py) in
`held_back_by`, in the mirror's facts (`mirror_freshness`) and in a logged warning; the
check never fails a sync.

Rows move Postgres -> Arrow (ADBC) -> DuckDB, never row by row through Python. NUMERIC
arrives as text and is cast to DECIMAL(20,10) (task cost) and DECIMAL(24,10) (run total).

A mirror that is missing, has another schema version, is unreadable (corrupt), or was
synced from another database (system identifier / database oid / name) is rebuilt from
scratch, with a warning saying why.

Self-check (docs/limits.md): at most every VERIFY_EVERY_SECONDS (and on every
`verify=True` sync, which `ai-runs sync` uses), a sync reads every block of the mirror (so
DuckDB verifies each block's checksum) and compares row counts and token and cost sums
with Postgres in the sync's own snapshot, and the tables derived from the mirror's own
(task_scores, the day totals) with what they stand for. A damaged or diverging mirror is
rebuilt, with a warning saying what was wrong.

The steps, in the order of this module, each beside its SQL in queries/mirror/sql/: what
they share (SyncResult, the step timer); reading Postgres into Arrow (`extract`,
postgres/extract.sql); the full load (`full_load`, load.sql); the incremental apply
(`apply_changes`, apply.sql); the self-check (`check_against_postgres`, check.sql and
postgres/check.sql); the sync itself (`sync_mirror`). The tables and row shapes are
tables.sql. Opening the file, and which process may: queries/mirror/files.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as adbc
import duckdb

from ingest.store import config, database, horizon, retention, sqlfiles
from queries.mirror.files import is_damage, open_mirror, remove_mirror_files

SQL_DIR = Path(__file__).parent / "sql"
# One logger for the whole mirror: bench/queries.py turns on its DEBUG step timings.
log = logging.getLogger("queries.mirror")

# 2: run_key/user_key surrogates; 3: tokens_cache_write, cost_source; 4: scores; 5: variant;
# 6: task_scores; 7: day totals; 8: day tag totals
MIRROR_SCHEMA_VERSION = 8
_SYNC_LOCK = threading.Lock()  # one sync at a time per process (staged_* names are shared)


TABLES = ("tasks", "runs", "users")


@dataclass
class SyncResult:
    """What one sync did.

    full: True when the mirror was rebuilt from scratch; reason: why (None when incremental).
    upserted: rows read from Postgres and written, per mirror table (tasks, runs, users).
    deleted: rows removed because they were deleted in Postgres, per mirror table (tasks of a
    deleted run are counted under tasks). horizon: the xid8 horizon the next sync starts
    from. rows: row counts of the mirror afterwards. seconds: wall time of the sync.
    held_back_by: the transactions (any database of the server) that held this horizon
    back, oldest first (ingest.store.horizon); empty when none, or when looking failed.
    """

    full: bool
    reason: str | None = None
    upserted: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    horizon: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    verified: bool = False
    # Scores (docs/quality.md), apart from the three tables above: rows read from Postgres
    # and written ("upserted"), removed because Postgres deleted them ("deleted").
    scores: dict[str, int] = field(default_factory=lambda: {"upserted": 0, "deleted": 0})
    held_back_by: list[horizon.HorizonHolder] = field(default_factory=list)


def duck_sql() -> dict[str, sqlfiles.Query]:
    """The mirror's named DuckDB queries: queries/mirror/sql/*.sql."""
    return sqlfiles.load(SQL_DIR)


def pg_sql() -> dict[str, sqlfiles.Query]:
    """The mirror's named Postgres queries: queries/mirror/sql/postgres/*.sql."""
    return sqlfiles.load(SQL_DIR / "postgres")


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """Log the wall time of one sync step at DEBUG, and the CPU time of this process over it
    (DuckDB's threads included, Postgres' not): on a loaded machine the wall time is mostly
    waiting for a core."""
    started, cpu = time.perf_counter(), time.process_time()
    yield
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    log.debug("sync step %s: %.0f ms (cpu %.0f ms)", name, wall * 1000, cpu * 1000)


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the mirror's open transaction, if any (errors ignored)."""
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK").fetchall()


# ------------------------------------------------------------ reading Postgres

BATCH_SIZE_HINT = "adbc.postgresql.batch_size_hint_bytes"
_DOLLAR_PARAM = re.compile(r"\$([A-Za-z_]\w*)")


# ADBC's default reads Postgres' whole type catalog (pg_type, pg_attribute) whenever it opens
# a database: 110-160 ms of each sync's connect at 1M tasks under load, against 25-45 ms
# with the built-in types only (docs/scale.md, "The incremental sync of scattered
# changes"). Every column the mirror reads is of a built-in type (uuid, text, text[],
# integers, boolean, timestamptz; NUMERIC is cast to text).
_CONNECT_OPTIONS = {"adbc.postgresql.type_resolver_mode": "builtin"}


def connect_source(url: str) -> Any:
    """An ADBC connection to `url` that knows Postgres' built-in types only."""
    return adbc.connect(url, db_kwargs=dict(_CONNECT_OPTIONS))


def adbc_text(query: sqlfiles.Query) -> str:
    """The query with ADBC's positional placeholders ($1, $2, ...) in params order."""
    names = query.params
    return _DOLLAR_PARAM.sub(lambda m: f"${names.index(m.group(1)) + 1}", query.duckdb)


def extract(cur: Any, name: str, since: str) -> Any:
    """Rows of query `name` changed since the horizon `since`, as an Arrow table (small:
    bound parameter)."""
    cur.execute(adbc_text(sqlfiles.render(pg_sql(), name)), (since,))
    return cur.fetch_arrow_table()


# ------------------------------------------------------------ the full load

# Connections of a full load (docs/design.md, "The full build"): with 2, the tasks are read
# over a second connection that imports the sync's snapshot, so Postgres scans and sorts
# them while the runs stream in over the first; 1 reads everything over the sync's own.
FULL_LOAD_CONNECTIONS = 2
# The mirror's memory limit while the tasks stream in: the hash tables of the runs and their
# keys stay in memory (3.66M runs at 10M tasks). At 1M tasks (366k runs) the load ran out of
# memory at 80 MB and not at 120 MB; the connection's own limit (DEFAULT_MEMORY_LIMIT,
# 768MB) comes back afterwards.
FULL_LOAD_MEMORY_LIMIT = "2GB"
# A snapshot id as pg_export_snapshot() writes it (SET TRANSACTION SNAPSHOT takes no
# bound parameter, so it is checked before it is written into the statement).
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")
# The DuckDB queries that create the mirror's tables, in order (tables.sql).
CREATE_QUERIES = (
    "create_users", "create_runs", "create_tasks", "create_keys", "create_scores",
    "create_task_scores", "create_day_totals", "create_meta",
)  # fmt: skip


def full_load(
    con: duckdb.DuckDBPyConnection, cur: Any, url: str, connections: int | None = None
) -> SyncResult:
    """Rebuild the mirror from the Postgres snapshot of `cur` (an ADBC cursor) inside a
    DuckDB transaction the caller commits. Returns upserted = rows loaded per table.

    `connections` (default FULL_LOAD_CONNECTIONS): 2 reads the tasks over a connection to
    `url` that imports the snapshot of `cur`, started before the runs are read; 1 reads
    everything over `cur`."""
    connections = connections or FULL_LOAD_CONNECTIONS
    sql = duck_sql()
    con.execute("BEGIN").fetchall()
    con.execute(sqlfiles.render(sql, "drop_all").sql).fetchall()
    for name in CREATE_QUERIES:
        con.execute(sql[name].sql).fetchall()
    upserted = {}
    with contextlib.ExitStack() as stack:
        tasks_cur = cur
        if connections > 1:
            tasks_cur = stack.enter_context(snapshot_reader(cur, url))
        # Closed before the reader (on an error, wait for its query to return first).
        pool = stack.enter_context(ThreadPoolExecutor(1))
        if connections > 1:
            # Postgres starts scanning and sorting the tasks now, while the runs stream in.
            tasks = pool.submit(_stream, tasks_cur, "extract_all_tasks")
        with step("load users"):
            upserted["users"] = _load(con, "users", _stream(cur, "extract_all_users"))
        with step("load runs"):
            upserted["runs"] = _load(con, "runs", _stream(cur, "extract_all_runs"))
        with step("keys"):
            con.execute(sql["all_user_keys"].sql).fetchall()
            con.execute(sql["all_run_keys"].sql).fetchall()
        with step("load tasks"):
            if connections == 1:
                tasks = pool.submit(_stream, cur, "extract_all_tasks")  # only now: one cursor
            limit, threads = con.execute(sql["load_settings"].sql).fetchall()[0]
            con.execute(sql["set_memory_limit"].duckdb, {"limit": FULL_LOAD_MEMORY_LIMIT})
            con.execute(sql["probe_the_stream"].sql).fetchall()
            try:
                upserted["tasks"] = _load(con, "tasks", tasks.result(), insert="insert_all_tasks")
            except BaseException:
                # An aborted transaction takes no SET: end it, so that the settings are put
                # back and the error raised is this one (a full disk in Postgres, say).
                rollback(con)
                raise
            finally:
                con.execute(sql["optimize_as_usual"].sql).fetchall()
                con.execute(sql["set_memory_limit"].duckdb, {"limit": limit}).fetchall()
                con.execute(sql["set_threads"].duckdb, {"threads": int(threads)}).fetchall()
        with step("load scores"):
            upserted["scores"] = _load(con, "scores", _stream(cur, "extract_all_scores"))
    with step("task keys and dimension values"):
        con.execute(sql["keys_of_stored_tasks"].sql).fetchall()
        con.execute(sql["refresh_run_key_days"].duckdb, {"since_key": 0}).fetchall()
        con.execute(sql["all_rare_tasks"].sql).fetchall()
        con.execute(sql["all_dim_values"].sql).fetchall()
    with step("task scores"):
        con.execute(sqlfiles.render(sql, "all_task_scores").sql).fetchall()
    with step("day totals"):
        con.execute(sqlfiles.render(sql, "all_day_totals").sql).fetchall()
        con.execute(sql["day_totals_compacted"].sql).fetchall()
    scores = {"upserted": upserted.pop("scores"), "deleted": 0}
    return SyncResult(full=True, upserted=upserted, deleted=dict.fromkeys(TABLES, 0), scores=scores)


@contextlib.contextmanager
def snapshot_reader(cur: Any, url: str) -> Iterator[Any]:
    """A cursor of another ADBC connection to `url` that sees exactly the snapshot of `cur`,
    a REPEATABLE READ transaction: it exports its snapshot and the new one imports it before
    reading anything, so every row it reads is one `cur` would read, below the horizon `cur`
    recorded, whatever commits meanwhile. Closed on exit."""
    cur.execute(pg_sql()["export_snapshot"].sql)
    snapshot = cur.fetchone()[0]
    if not _SNAPSHOT_ID.match(snapshot):
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    with contextlib.closing(connect_source(url)) as connection:
        reader = connection.cursor()
        reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        reader.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        yield reader


def _stream(cur: Any, name: str) -> Any:
    """Every row of query `name`, as a stream of Arrow batches: without parameters ADBC uses
    COPY and hands over ~16 MB batches instead of materialising the whole result. Returns
    once Postgres sends the first row (after its sort, for a sorted query)."""
    cur.adbc_statement.set_options(**{BATCH_SIZE_HINT: str(16 << 20)})
    cur.execute(sqlfiles.render(pg_sql(), name).sql)
    return cur.fetch_record_batch()


def _load(con: duckdb.DuckDBPyConnection, table: str, stream: Any, insert: str = "") -> int:
    """Insert the rows of `stream` (registered as staged_<table>) into mirror table `table`
    with DuckDB query `insert` (default insert_<table>); rows inserted."""
    con.register(f"staged_{table}", stream)
    try:
        query = sqlfiles.render(duck_sql(), insert or f"insert_{table}").sql
        return con.execute(query).fetchall()[0][0]
    finally:
        # In a transaction a failed statement aborted, this fails too: keep the first error.
        with contextlib.suppress(duckdb.Error):
            con.unregister(f"staged_{table}")


# ------------------------------------------------------------ the incremental apply

# The Postgres queries of the changed rows, staged in DuckDB as staged_<key>.
_EXTRACT = {
    "users": "extract_users",
    "runs": "extract_runs",
    "tasks": "extract_tasks",
    "scores": "extract_scores",
    "deletions": "extract_deletions",
    "logged_times": "extract_logged_times",
}
# Per mirror table: the deletion log's table name, the DuckDB queries that apply it (remove
# the copies of deleted and rewritten rows in one scan, then insert the new ones) and the
# filter by time of that scan, if any (apply.sql, task_copies_by_time).
_APPLY = {
    "tasks": {"logged_as": "ai_tasks", "remove": "remove_changed_tasks", "insert": "insert_tasks",
              "by_time": "apply.task_copies_by_time"},
    "runs": {"logged_as": "ai_runs", "remove": "remove_changed_runs", "insert": "insert_runs",
             "by_time": "apply.run_copies_by_time"},
    "users": {"logged_as": "ai_users", "remove": "remove_changed_users", "insert": "insert_users"},
}  # fmt: skip
# The mirror fact saying that every sync since the mirror's previous one could trust the
# times of the deletion log (migration 0030): written by every sync of this code, which
# runs only after the migration committed. A mirror without it was last synced before the
# migration, when a task could move to another created_at unlogged, so its next sync
# compares ids over the whole table (apply_changes).
LOGGED_TIMES = "logged_times"


def apply_changes(
    con: duckdb.DuckDBPyConnection,
    cur: Any,
    since: str,
    *,
    times_logged: bool = False,
    url: str | None = None,
) -> SyncResult:
    """Apply what changed in the Postgres snapshot of `cur` (an ADBC cursor) since the
    horizon `since`, inside a DuckDB transaction the caller commits. Returns upserted = rows
    read per table and deleted = rows removed because Postgres deleted them.

    times_logged: the deletion log gave the time of every row moved or deleted since
    `since` (the mirror's LOGGED_TIMES fact); then the mirror's copies of tasks and runs
    are found by time first, unless a logged row has no time (logged before migration
    0030). Otherwise by id over the whole table. url: Postgres again, for a second
    connection that reads the changed runs in the snapshot of `cur` (extract_changes),
    while the changed tasks' old copies are removed (nothing else of the apply needs the
    runs' rows first, docs/scale.md, "The incremental sync of scattered changes")."""
    sql = duck_sql()
    with contextlib.ExitStack() as reading:
        with step("extract"):
            staged, runs = reading.enter_context(extract_changes(cur, since, url))
        logged = staged["deletions"].column("table_name").to_pylist()
        by_time = times_logged and staged["logged_times"].column("created_at").null_count == 0
        con.execute("BEGIN").fetchall()
        try:
            deleted = dict.fromkeys(TABLES, 0)
            for name, table in staged.items():
                con.register(f"staged_{name}", table)
            con.execute(sqlfiles.render(sql, "start_rescored_tasks").sql).fetchall()
            # While the changed runs still stream in over the second connection.
            deleted["tasks"] = _remove(con, sql, "tasks", staged, logged, by_time)
            with step("extract runs"):
                staged["runs"] = runs()
            con.register("staged_runs", staged["runs"])
            reading.close()  # the second connection is done with
            scores = _apply_rest(con, sql, staged, logged, by_time, deleted)
        finally:
            for name in staged:
                # In a transaction a failed statement aborted, this fails too: keep the
                # first error.
                with contextlib.suppress(duckdb.Error):
                    con.unregister(f"staged_{name}")
    upserted = {table: staged[table].num_rows for table in TABLES}
    return SyncResult(full=False, upserted=upserted, deleted=deleted, scores=scores)


def _apply_rest(
    con: duckdb.DuckDBPyConnection,
    sql: dict[str, sqlfiles.Query],
    staged: dict[str, Any],
    logged: list[str],
    by_time: bool,
    deleted: dict[str, int],
) -> dict[str, int]:
    """Everything of apply_changes after the tasks' old copies are removed (`deleted` gets
    the runs' and users'); returns what _apply_scores did."""
    # Copies of user/run attributes on tasks: find what changed before replacing.
    teams = run_attrs = None
    if staged["users"].num_rows or "ai_users" in logged:
        teams = con.sql(sql["changed_teams"].sql).to_arrow_table()
    if staged["runs"].num_rows:
        with step("changed run attributes"):
            run_attrs = con.sql(sql["changed_run_attributes"].sql).to_arrow_table()
    if staged["tasks"].num_rows or staged["runs"].num_rows:
        with step("keys"):
            _new_keys(con, sql)
    if staged["tasks"].num_rows or staged["runs"].num_rows or staged["users"].num_rows:
        con.execute(sql["new_dim_values"].sql).fetchall()
    for table, queries in _APPLY.items():
        if table != "tasks":
            deleted[table] = _remove(con, sql, table, staged, logged, by_time)
        if staged[table].num_rows:
            with step(f"insert {table}"):
                con.execute(sqlfiles.render(duck_sql(), queries["insert"]).sql).fetchall()
    if staged["tasks"].num_rows or "ai_tasks" in logged:
        _keep_day_totals(con, sql)
    con.execute(sql["forget_day_total_changes"].sql).fetchall()
    scores = _apply_scores(con, sql, staged["scores"], "ai_scores" in logged)
    con.execute(sql["forget_changed_rows"].sql).fetchall()
    if staged["tasks"].num_rows or staged["scores"].num_rows or rescoring_deletions(logged):
        with step("task scores"):
            con.execute(sqlfiles.render(sql, "rewrite_task_scores").sql).fetchall()
    con.execute(sql["forget_rescoring"].sql).fetchall()
    if teams is not None and teams.num_rows:
        con.register("changed_teams", teams)
        con.execute(sqlfiles.render(sql, "propagate_teams").sql).fetchall()
        con.unregister("changed_teams")
    if run_attrs is not None and run_attrs.num_rows:
        con.register("changed_runs", run_attrs)
        con.execute(sqlfiles.render(sql, "propagate_run_attributes").sql).fetchall()
        con.unregister("changed_runs")
    return scores


# Each sync appends up to one row per changed key to day_totals (and day_ttft, and one per
# tag of its run to day_tag_totals); once the rows appended since the last compaction pass
# this share of the rows the tables had then, the sync rewrites them one row per key. A
# rollup reads every row of its days, so 20% more rows cost it at most about 20% more of its
# day totals' part, while one compaction costs about as much as the day totals' step of a
# full build (docs/scale.md, "Day totals").
DAY_TOTALS_COMPACT_SHARE = 0.2


def _keep_day_totals(con: duckdb.DuckDBPyConnection, sql: dict[str, sqlfiles.Query]) -> None:
    """Add the apply's changes to the day totals and their tag totals (day_total_changes),
    and compact them when DAY_TOTALS_COMPACT_SHARE of appended rows is passed
    (compaction_due)."""
    with step("day totals"):
        con.execute(sql["merge_day_totals"].sql).fetchall()
    with step("day tag totals"):
        con.execute(sql["merge_day_tag_totals"].sql).fetchall()
    due = sql["compaction_due"].duckdb
    if con.execute(due, {"share": DAY_TOTALS_COMPACT_SHARE}).fetchall()[0][0]:
        with step("compact day totals"):
            con.execute(sqlfiles.render(sql, "compact_day_totals").sql).fetchall()


def _remove(
    con: duckdb.DuckDBPyConnection,
    sql: dict[str, sqlfiles.Query],
    table: str,
    staged: dict[str, Any],
    logged: list[str],
    by_time: bool,
) -> int:
    """Remove the mirror's copies of `table`'s rows that Postgres deleted or that are staged
    again (_APPLY); how many of them Postgres deleted. Inserts nothing."""
    queries = _APPLY[table]
    if queries["logged_as"] not in logged and not staged[table].num_rows:
        return 0
    timed = " by time" if by_time and "by_time" in queries else ""
    with step(f"remove {table}{timed}"):
        return con.execute(_removal(sql, queries, by_time)).fetchall()[0][0]


def _removal(sql: dict[str, sqlfiles.Query], queries: dict[str, str], by_time: bool) -> str:
    """The DuckDB query removing one table's copies of changed rows (`queries`, of _APPLY):
    with its filter by time when `by_time`, else with TRUE in its place, so that every
    row's id is compared."""
    if by_time or "by_time" not in queries:
        return sqlfiles.render(sql, queries["remove"]).sql
    return sqlfiles.render(sql, queries["remove"], **{queries["by_time"]: "TRUE"}).sql


# Connections of an incremental extract: with 2 (and a URL), the changed runs are read over a
# second connection that imports the sync's snapshot while the tasks and the rest are read
# over the sync's own, and while DuckDB removes the changed tasks' old copies. Each read is
# mostly random heap pages (docs/scale.md, "The incremental sync of scattered changes").
EXTRACT_CONNECTIONS = 2


@contextlib.contextmanager
def extract_changes(
    cur: Any, since: str, url: str | None = None
) -> Iterator[tuple[dict[str, Any], Callable[[], Any]]]:
    """The rows of every _EXTRACT query changed since `since` in the snapshot of `cur`, as
    Arrow tables by name, all but the runs; and a function that returns the runs once they
    are read. The runs are read over a snapshot_reader of `url` when given and
    EXTRACT_CONNECTIONS is 2, started before the rest, so they keep streaming in until the
    function is called; else over `cur`, when it is called. A second connection that
    cannot be had (too many clients, say) only logs a warning. The second connection
    stays open until the context ends (after its query returned)."""
    others = {name: query for name, query in _EXTRACT.items() if name != "runs"}
    with contextlib.ExitStack() as stack:
        reader = None
        if url is not None and EXTRACT_CONNECTIONS > 1:
            try:
                reader = stack.enter_context(snapshot_reader(cur, url))
            except adbc.Error as exc:
                log.warning("reading the changes over one connection: %s", exc)
        if reader is None:
            staged = {name: extract(cur, query, since) for name, query in others.items()}
            yield staged, lambda: extract(cur, _EXTRACT["runs"], since)
            return
        pool = stack.enter_context(ThreadPoolExecutor(1))  # closed before the reader
        runs = pool.submit(extract, reader, _EXTRACT["runs"], since)
        staged = {name: extract(cur, query, since) for name, query in others.items()}
        yield staged, runs.result


def rescoring_deletions(logged: list[str]) -> bool:
    """True when the deletion log names tasks or scores: task_scores must be written again."""
    return "ai_tasks" in logged or "ai_scores" in logged


def _apply_scores(
    con: duckdb.DuckDBPyConnection, sql: dict[str, sqlfiles.Query], staged: Any, logged: bool
) -> dict[str, int]:
    """Replace the mirror's copies of changed and deleted scores (delete-by-id, insert)."""
    deleted = 0
    if logged or staged.num_rows:
        with step("remove scores"):
            deleted = con.execute(sql["remove_changed_scores"].sql).fetchall()[0][0]
    if staged.num_rows:
        with step("insert scores"):
            con.execute(sql["insert_scores"].sql).fetchall()
    return {"upserted": staged.num_rows, "deleted": deleted}


def _new_keys(con: duckdb.DuckDBPyConnection, sql: dict[str, sqlfiles.Query]) -> None:
    """Keys for the runs and users the staged rows name for the first time."""
    before = con.execute("SELECT coalesce(max(key), 0) FROM run_keys").fetchall()[0][0]
    added = con.execute(sql["new_run_keys"].sql).fetchall()[0][0]
    con.execute(sql["new_user_keys"].sql).fetchall()
    if added:
        con.execute(sql["refresh_run_key_days"].duckdb, {"since_key": before}).fetchall()


# ------------------------------------------------------------ the self-check

VERIFY_EVERY_SECONDS = 600.0  # the cheap cadence of the self-check (a full scan of both)
_VERIFIED_COLUMNS = (
    "tasks", "tokens", "cost", "runs", "run_tokens", "users", "scores",
)  # fmt: skip


def verify_due(meta: dict[str, str]) -> bool:
    """True when the mirror facts `meta` show no check, or one VERIFY_EVERY_SECONDS old."""
    last = meta.get("last_verified_at")
    if last is None:
        return True
    age = datetime.now(UTC) - datetime.fromisoformat(last)
    return age.total_seconds() >= VERIFY_EVERY_SECONDS


def check_against_postgres(con: duckdb.DuckDBPyConnection, cur: Any) -> str | None:
    """None when the mirror reads back whole and matches Postgres' snapshot (`cur`, an ADBC
    cursor); else what is wrong. A damaged block raises duckdb.Error from the full read."""
    con.execute(duck_sql()["verify_read_all"].sql).fetchall()
    mirror = con.execute(duck_sql()["verify_totals"].sql).fetchall()[0]
    cur.execute(pg_sql()["verify_totals"].sql)
    source = cur.fetchone()
    for name, ours, theirs in zip(_VERIFIED_COLUMNS, mirror, source, strict=True):
        if Decimal(str(ours)) != Decimal(str(theirs)):
            return f"{name} is {ours} in the mirror but {theirs} in Postgres"
    return _derived_out_of_step(con)


def _derived_out_of_step(con: duckdb.DuckDBPyConnection) -> str | None:
    """What is wrong with the tables the mirror derives from its own (task_scores, the day
    totals), None when they are in step with it."""
    query = sqlfiles.render(duck_sql(), "verify_task_scores").sql
    have, want, same = con.execute(query).fetchall()[0]
    if have != want or not same:
        return (
            f"task_scores is out of step with the mirror's tasks and scores ({have} rows "
            f"for {want}{'' if same else ', contents differ'})"
        )
    days = con.execute(duck_sql()["verify_day_totals"].sql).fetchall()[0][0]
    if days:
        return f"day_totals is out of step with the mirror's tasks ({days} days differ)"
    return None


# ------------------------------------------------------------ the sync


def sync_mirror(
    url: str | None = None,
    path: str | Path | None = None,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    full: bool = False,
    verify: bool | None = None,
    held_back_after: float | None = None,
) -> SyncResult:
    """Bring the mirror up to date with Postgres and return what changed.

    url: Postgres (default: DATABASE_URL or the embedded server). path: mirror file (default
    `config.mirror_path()`), ignored when `con` (an open mirror connection of this process)
    is given. full=True rebuilds from scratch. Incremental otherwise: the cost follows the
    number of rows written or deleted since the previous sync, not the table sizes.
    verify: True checks the mirror against Postgres after an incremental sync (module
    docstring), False never, None when the last check is VERIFY_EVERY_SECONDS old.
    `verified` in the result says whether it ran; a failed check rebuilds (`reason`).
    held_back_after: seconds after which an open transaction counts as holding the horizon
    back (`held_back_by`; default ingest.store.horizon.HELD_BACK_AFTER_SECONDS).
    """
    started = time.perf_counter()
    url = database.database_url(url)
    if held_back_after is None:
        held_back_after = horizon.HELD_BACK_AFTER_SECONDS
    own = con is None
    if own:
        con = open_mirror(path)
    try:
        with _SYNC_LOCK:
            try:
                result = _sync(con, url, full=full, path=path, verify=verify,
                               held_back_after=held_back_after)  # fmt: skip
            except duckdb.Error as exc:
                if not own or not is_damage(exc):
                    raise  # Postgres or lock trouble: the file is fine, keep it
                # Damaged beyond an in-place rebuild: start from a new file.
                target = Path(path) if path is not None else config.mirror_path()
                log.warning("mirror %s is damaged (%s): recreating the file", target, exc)
                con.close()
                remove_mirror_files(target)
                con = open_mirror(target)
                result = _sync(con, url, full=True, path=path, verify=False,
                               held_back_after=held_back_after)  # fmt: skip
                result.reason = f"mirror file was damaged ({exc})"
    finally:
        if own:
            con.close()
    result.seconds = time.perf_counter() - started
    return result


def _sync(
    con: duckdb.DuckDBPyConnection,
    url: str,
    *,
    full: bool,
    path: Any,
    verify: bool | None,
    held_back_after: float,
) -> SyncResult:
    with step("connect"):
        pg = connect_source(url)
    try:
        cur = pg.cursor()
        # One snapshot for the horizon, the rows and the deletions.
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute(pg_sql()["source_identity"].sql)
        horizon_xid, pruned, identity = cur.fetchone()
        meta = _read_meta(con)
        previous = (meta or {}).get("horizon", "0")
        with step("horizon holders"):
            holders = _horizon_holders(cur, previous=previous, older_than=held_back_after)
        reason = _rebuild_reason(meta, identity, pruned) if not full else "full sync requested"
        if reason is None:
            # TRUNCATE logs no row ids: start again from the snapshot.
            truncated = extract(cur, "truncations", meta["horizon"]).column(0).to_pylist()
            if truncated:
                reason = f"{', '.join(sorted(truncated))} truncated in Postgres"
        if reason is None:
            try:
                result = apply_changes(
                    con, cur, since=meta["horizon"], times_logged=LOGGED_TIMES in meta, url=url
                )
                if verify or (verify is None and verify_due(meta)):
                    problem = check_against_postgres(con, cur)
                    result.verified = True
                    if problem is not None:
                        rollback(con)
                        reason = f"mirror check failed: {problem}"
            except duckdb.Error as exc:
                rollback(con)
                reason = f"mirror is unreadable ({exc})"
        if reason is not None:
            where = path or "the mirror"
            if full:
                log.info("rebuilding %s from scratch: %s", where, reason)
            else:
                log.warning("rebuilding %s from scratch: %s", where, reason)
            result = full_load(con, cur, url)
            result.reason = reason
        _write_meta(
            con,
            horizon=horizon_xid,
            identity=identity,
            full=result.full,
            verified=result.full or result.verified,
            holders=holders,
        )
        with step("commit"):
            con.execute("COMMIT").fetchall()
        pg.commit()
    except BaseException:
        rollback(con)  # never leave the mirror's transaction open
        raise
    finally:
        pg.close()
    result.horizon = int(horizon_xid)
    result.held_back_by = holders
    if holders:
        log.warning("%s", horizon.held_back_message(holders))
    _register(con, url, horizon_xid)
    counts = con.execute(duck_sql()["counts"].sql).fetchall()[0]
    result.rows = dict(zip(TABLES, counts, strict=True))
    return result


def _horizon_holders(cur: Any, *, previous: str, older_than: float) -> list[horizon.HorizonHolder]:
    """The transactions holding this snapshot's horizon back (ingest.store.horizon), read in
    the sync's own transaction under a savepoint: looking never fails a sync, so an error
    only logs and returns []."""
    query = horizon.holders_query()
    params = {"older_than": float(older_than), "previous": str(previous)}
    cur.execute("SAVEPOINT horizon_check")
    try:
        cur.execute(adbc_text(query), tuple(params[name] for name in query.params))
        rows = cur.fetchall()
    except Exception as exc:  # noqa: BLE001 - a warning we could not give never stops a sync
        cur.execute("ROLLBACK TO SAVEPOINT horizon_check")
        log.warning("could not look for transactions holding the horizon back: %s", exc)
        return []
    cur.execute("RELEASE SAVEPOINT horizon_check")
    return horizon.holders_from_rows(rows)


def mirror_file(con: duckdb.DuckDBPyConnection) -> str:
    """The absolute path of the file behind a mirror connection ("memory" when none)."""
    row = con.execute(duck_sql()["mirror_file"].sql).fetchall()
    return str(row[0][0]) if row and row[0][0] else "memory"


def _register(con: duckdb.DuckDBPyConnection, url: str, horizon: str) -> None:
    """Tell Postgres this mirror has applied everything below `horizon`, so deletions it
    no longer needs can be pruned (migration 0009). Best effort: a read-only source (a
    replica) or an outage only means less pruning, never a failed sync."""
    try:
        retention.record_mirror_horizon(url, retention.mirror_name(mirror_file(con)), horizon)
    except Exception as exc:  # noqa: BLE001 - pruning waits; the sync itself succeeded
        log.warning("could not register the mirror's horizon in Postgres: %s", exc)


def _read_meta(con: duckdb.DuckDBPyConnection) -> dict[str, str] | None:
    """The mirror's facts; None when there are none; {"unreadable": why} when damaged."""
    try:
        return dict(con.execute(duck_sql()["read_meta"].sql).fetchall())
    except duckdb.CatalogException:
        return None
    except duckdb.Error as exc:
        rollback(con)
        return {"unreadable": str(exc)}


def _rebuild_reason(meta: dict[str, str] | None, identity: str, pruned: str) -> str | None:
    if meta is not None and "unreadable" in meta:
        return f"mirror is unreadable ({meta['unreadable']})"
    if meta is None or "horizon" not in meta:
        return "mirror is missing or empty"
    version = meta.get("schema_version")
    if version != str(MIRROR_SCHEMA_VERSION):
        return f"mirror schema version {version}, this code needs {MIRROR_SCHEMA_VERSION}"
    if meta.get("source_identity") != identity:
        return (
            f"mirror was synced from another database ({meta.get('source_identity')}), "
            f"now reading {identity}"
        )
    if int(meta["horizon"]) < int(pruned):
        return "deletions it had not applied were pruned from ai_sync_deletions"
    return None


def _write_meta(
    con: duckdb.DuckDBPyConnection,
    *,
    horizon: str,
    identity: str,
    full: bool,
    verified: bool,
    holders: list[Any],
) -> None:
    now = datetime.now(UTC).isoformat()
    values = {
        "schema_version": str(MIRROR_SCHEMA_VERSION),
        "source_identity": identity,
        "horizon": horizon,
        "last_sync_at": now,
        "held_back_by": json.dumps([holder.to_dict() for holder in holders]),
        LOGGED_TIMES: "0030",
    }
    if full:
        values["last_full_sync_at"] = now
    if verified:
        values["last_verified_at"] = now
    query = duck_sql()["write_meta"].duckdb
    for key, value in values.items():
        con.execute(query, {"key": key, "value": value}).fetchall()


def mirror_freshness(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Footer facts: last_sync_at and last_full_sync_at (UTC datetimes, None if never),
    tasks, runs, users (rows in the mirror), schema_version (int), horizon (int),
    held_back_by (the last sync's ingest.store.horizon.HorizonHolder list; empty when
    nothing held the horizon back)."""
    meta = _read_meta(con) or {}
    counts = (0, 0, 0)
    if meta:
        counts = con.execute(duck_sql()["counts"].sql).fetchall()[0]

    def when(key: str) -> datetime | None:
        return datetime.fromisoformat(meta[key]) if key in meta else None

    return {
        "last_sync_at": when("last_sync_at"),
        "last_full_sync_at": when("last_full_sync_at"),
        **dict(zip(TABLES, (int(n) for n in counts), strict=True)),
        "schema_version": int(meta["schema_version"]) if "schema_version" in meta else None,
        "horizon": int(meta["horizon"]) if "horizon" in meta else None,
        "held_back_by": [
            horizon.HorizonHolder.from_dict(values)
            for values in json.loads(meta.get("held_back_by") or "[]")
        ],
    }
