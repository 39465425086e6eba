"""The full build reads the tasks over a second connection that imports the sync's exported
snapshot (docs/design.md, "The full build"). It must hold exactly what one connection reads,
see nothing written after its snapshot even when the writes land between the export and the
import, and record the horizon so that the next incremental sync reads those writes once."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import make_run, make_task
from test_mirror import mirror_tasks, mirror_value, pg_tasks

from ingest import demo
from ingest.tracking.tracker import Tracker
from queries import open_mirror, sync_mirror
from queries.mirror import sync as mirror_sync

DIGEST = "SELECT count(*), sum(hash(t)) FROM {table} t"
TABLES = ("tasks", "runs", "users", "scores", "task_scores", "run_keys", "user_keys",
          "run_key_days", "rare_tasks", "dim_values")  # fmt: skip


@pytest.fixture
def seeded(conn, db_url) -> str:
    """A small demo with scores, and a task whose user is not in ai_users (its
    key is given after the load)."""
    demo.generate(db_url, tasks=400, seed=3, days=5)
    with Tracker(db_url) as tracker:
        for task_id in [row["task_id"] for row in conn.execute("SELECT task_id FROM ai_tasks")][
            :40
        ]:
            tracker.score("thumbs", True, task_id=task_id, source="human", author="ana")
    make_task(conn, make_run(conn, tags=["late"], variant="b"), user_id="nobody-in-ai-users")
    return db_url


def digests(path: Path) -> dict[str, tuple]:
    """Row count and the sum of row hashes of every mirror table but its facts."""
    with open_mirror(path, read_only=True) as con:
        # Table names from TABLES above, never from outside.
        return {t: con.execute(DIGEST.format(table=t)).fetchall()[0] for t in TABLES}


def test_two_connections_hold_what_one_reads(seeded, conn, tmp_path, monkeypatch):
    built = {}
    for connections in (1, 2):
        monkeypatch.setattr(mirror_sync, "FULL_LOAD_CONNECTIONS", connections)
        built[connections] = tmp_path / f"connections{connections}.duckdb"
        result = sync_mirror(seeded, built[connections], full=True)
        assert result.rows["tasks"] == 401 and result.scores["upserted"] == 40
    assert digests(built[1]) == digests(built[2])
    assert mirror_tasks(built[2]) == pg_tasks(conn)
    # Sorted by created_at (the zone maps rely on it), with every key and run column set.
    unsorted, keyless, ghost = mirror_value(
        built[2],
        "SELECT (SELECT count(*) FROM (SELECT created_at < lag(created_at) OVER (ORDER BY rowid)"
        " AS back FROM tasks) WHERE back), count(*) FILTER (WHERE run_key IS NULL OR"
        " source_type IS NULL OR (user_id IS NOT NULL AND user_key IS NULL)),"
        " max(variant) FILTER (WHERE user_id = 'nobody-in-ai-users') FROM tasks",
    )[0]
    assert (unsorted, keyless, ghost) == (0, 0, "b")
    # A connection that syncs (the dashboard's) keeps its own settings after a build (the
    # memory limit to DuckDB's rounding of its text: '286.1 MiB' comes back as 286.0).
    with open_mirror(built[2], memory_limit="300MB") as con:
        settings = (
            "SELECT current_setting('memory_limit'), current_setting('threads'),"
            " current_setting('disabled_optimizers')"
        )
        limit, threads, disabled = con.execute(settings).fetchall()[0]
        assert sync_mirror(seeded, con=con, full=True).rows["tasks"] == 401
        after_limit, after_threads, after_disabled = con.execute(settings).fetchall()[0]
    assert (after_threads, after_disabled) == (threads, disabled)
    assert after_limit.endswith(" MiB") and abs(float(after_limit[:-4]) - float(limit[:-4])) < 0.2


def test_writes_during_a_full_build_are_read_by_the_next_sync(seeded, conn, tmp_path, monkeypatch):
    """Writes committed after the export, before the second connection imports the snapshot:
    the build holds none of them, and the next sync reads them all."""
    before = pg_tasks(conn)
    runs_before = conn.execute("SELECT count(*) AS n FROM ai_runs").fetchone()["n"]
    connect = mirror_sync.adbc.connect
    written: list[int] = []  # one entry per write

    def connect_after_a_write(url, **options):
        if connect_after_a_write.calls:  # the sync's own connection comes first
            run = make_run(conn, user_id="late-writer", tags=["during"])
            make_task(conn, run, user_id="late-writer", model="during-the-build")
            conn.execute(
                "UPDATE ai_tasks SET cost = cost + 1 WHERE id IN"
                " (SELECT id FROM ai_tasks WHERE model <> 'during-the-build'"
                " ORDER BY created_at LIMIT 2)"
            )
            conn.execute(
                "DELETE FROM ai_tasks WHERE id IN (SELECT id FROM ai_tasks"
                " WHERE model <> 'during-the-build' ORDER BY created_at DESC LIMIT 1)"
            )
            written.append(1)
        connect_after_a_write.calls += 1
        return connect(url, **options)

    connect_after_a_write.calls = 0
    monkeypatch.setattr(mirror_sync, "FULL_LOAD_CONNECTIONS", 2)
    monkeypatch.setattr(mirror_sync.adbc, "connect", connect_after_a_write)
    path = tmp_path / "mirror.duckdb"
    build = sync_mirror(seeded, path, full=True)
    monkeypatch.undo()
    assert len(written) == 1, "a write before the import"
    assert build.full and mirror_tasks(path) == before
    assert build.rows["runs"] == runs_before
    # Every row written during the build is stamped at or above the recorded horizon.
    below = conn.execute(
        "SELECT count(*) AS n FROM ai_tasks WHERE sync_xid < %s::text::xid8"
        " AND model = 'during-the-build'",
        (str(build.horizon),),
    ).fetchone()["n"]
    assert below == 0

    after = sync_mirror(seeded, path, verify=True)
    assert not after.full and after.verified and after.reason is None
    assert after.upserted["tasks"] >= 1 + 2 and after.deleted["tasks"] == 1
    assert mirror_tasks(path) == pg_tasks(conn)
    during = mirror_value(
        path, "SELECT count(*), min(tags[1]) FROM tasks WHERE model = 'during-the-build'"
    )
    assert during == [(1, "during")]
