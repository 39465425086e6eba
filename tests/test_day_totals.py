"""The mirror's day totals give exactly the rollups over tasks (docs/scale.md, "Day totals"):
usage over time and by dimension and the KPI row, for every grain and covered dimension,
windows of whole and part days, after a full build and after incremental syncs that insert,
update, move tasks between days, runs and models, delete them, and change teams and tags.
The tag totals (usage by tag) are checked the same way.
The totals themselves equal their recomputation from tasks after each sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import psycopg
import pytest
from builders import make_run, make_task

import queries as q
from ingest import demo
from ingest.store import sqlfiles
from queries import Filters, day_totals, distinct_counts
from queries.mirror import sync

END = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 30
GRAINS = ("day", "week", "month")

# Not in the service's run (docs/testing.md, "Which tests run on both engines"): what it
# checks is the mirror's DuckDB SQL, the same whichever Postgres the rows came from; the
# queries it sends to Postgres (the bulk path's, the mirror's extract) are sent there by
# the mirror's own tests, which stay in that run.
pytestmark = pytest.mark.through_the_layers


def windows() -> list[Filters]:
    return [
        Filters(start=END - timedelta(days=DAYS), end=END),
        Filters.last_days(14, now=END - timedelta(days=3)),
        Filters(start=END - timedelta(days=20, hours=5), end=END - timedelta(days=2, hours=7)),
        Filters(start=END - timedelta(days=5, hours=9), end=END - timedelta(days=5, hours=2)),
        Filters(start=END - timedelta(days=400), end=END + timedelta(days=1)),
    ]


def rollups(con) -> list:
    """Every rollup the day totals answer, over every window."""
    frames = []
    for filters in windows():
        for exact in (True, False):
            frames.append(q.kpis(con, filters, exact=exact))
        for by in day_totals.DIMENSIONS:
            if by is not None:
                frames.append(q.usage_by(con, filters, by, exact=True))
                frames.append(q.usage_by(con, filters, by, counts=False))
            for grain in GRAINS:
                frames.append(q.usage_over_time(con, filters, grain, by, exact=True))
    return frames


def assert_like_tasks(con, monkeypatch) -> None:
    """The rollups with the day totals equal those over tasks, with bitmaps and without."""
    for budget in (distinct_counts.BITMAP_BUDGET_BYTES, 0):
        monkeypatch.setattr(distinct_counts, "BITMAP_BUDGET_BYTES", budget)
        monkeypatch.setattr(day_totals, "ENABLED", True)
        fast = rollups(con)
        monkeypatch.setattr(day_totals, "ENABLED", False)
        slow = rollups(con)
        assert len(fast) == len(slow)
        for mine, theirs in zip(fast, slow, strict=True):
            pd.testing.assert_frame_equal(mine, theirs, check_exact=True)
    monkeypatch.undo()
    assert_totals_recomputed(con)


KEY = "day, run_key, user_key, provider, model"
SUMS = {
    "day_totals": f"""SELECT {KEY}, any_value(month_day), list_distinct(list(team)),
        list_distinct(list(tags)), sum(tasks), sum(cost), sum(tokens_input),
        sum(tokens_output), sum(tokens_total), sum(tokens_cached_input),
        sum(tokens_cache_write), sum(unpriced), sum(failed), sum(finished)
        FROM {{table}} GROUP BY {KEY}""",
    "day_ttft": "SELECT day, ttft, sum(n) FROM {table} GROUP BY day, ttft HAVING sum(n) <> 0",
    "day_tag_totals": """SELECT day, run_key, user_key, tag, any_value(month_day), sum(tasks),
        sum(cost), sum(tokens_input), sum(tokens_output), sum(tokens_total),
        sum(tokens_cached_input), sum(tokens_cache_write), sum(unpriced)
        FROM {table} GROUP BY day, run_key, user_key, tag""",
}


def assert_totals_recomputed(con) -> None:
    """day_totals, day_ttft and day_tag_totals sum, per key, to what a full build writes;
    every key of day_totals has a task."""
    assert con.execute(f"SELECT count(*) FROM (SELECT {KEY} FROM day_totals GROUP BY {KEY} "
                       "HAVING sum(tasks) <= 0)").fetchone()[0] == 0  # fmt: skip
    for table in SUMS:
        con.execute(f"CREATE OR REPLACE TEMP TABLE kept_{table} AS SELECT * FROM {table}")
    sql = sqlfiles.render(sync.duck_sql(), "all_day_totals").sql
    try:
        for table in SUMS:
            con.execute(f"DELETE FROM {table}")
        con.execute(sql)
        for table, query in SUMS.items():
            built, kept = query.format(table=table), query.format(table=f"kept_{table}")
            for a, b in ((built, kept), (kept, built)):
                extra = con.execute(f"{a} EXCEPT ALL {b}").fetchall()
                assert extra == [], (table, extra[:5])
    finally:
        for table in SUMS:
            con.execute(f"DELETE FROM {table}")
            con.execute(f"INSERT INTO {table} SELECT * FROM kept_{table}")


@pytest.fixture
def demo_mirror(db_url, tmp_path):
    demo.generate(db_url, tasks=2500, seed=3, days=DAYS, end=END)
    path = tmp_path / "mirror.duckdb"
    assert q.sync_mirror(db_url, path).full
    return db_url, path


def change_everything(conn: psycopg.Connection) -> None:
    """Inserts, updates, moves between days, runs and models, deletions, a team and tags."""
    ids = [r["id"] for r in conn.execute("SELECT id FROM ai_tasks ORDER BY id LIMIT 60")]
    conn.execute(
        "UPDATE ai_tasks SET cost = cost * 2 + 0.0000000001, tokens_total = tokens_total + 7 "
        "WHERE id = ANY(%s)",
        (ids[0:10],),
    )
    conn.execute(
        "UPDATE ai_tasks SET created_at = created_at - interval '2 days 3 hours' "
        "WHERE id = ANY(%s)",
        (ids[10:20],),
    )
    conn.execute(
        "UPDATE ai_tasks SET model = 'gpt-4o-mini', provider = 'openai', status = 'failed' "
        "WHERE id = ANY(%s)",
        (ids[20:30],),
    )
    conn.execute("UPDATE ai_tasks SET time_to_first_token = NULL WHERE id = ANY(%s)", (ids[30:33],))
    conn.execute("UPDATE ai_tasks SET cost = NULL WHERE id = ANY(%s)", (ids[33:36],))
    other = conn.execute("SELECT id FROM ai_runs ORDER BY id DESC LIMIT 1").fetchone()["id"]
    conn.execute("UPDATE ai_tasks SET run_id = %s WHERE id = ANY(%s)", (other, ids[36:40]))
    conn.execute("DELETE FROM ai_tasks WHERE id = ANY(%s)", (ids[40:50],))
    user = conn.execute("SELECT user_id FROM ai_tasks WHERE user_id IS NOT NULL LIMIT 1").fetchone()
    conn.execute("UPDATE ai_users SET team = 'moved-team' WHERE id = %s", (user["user_id"],))
    runs = [r["id"] for r in conn.execute("SELECT id FROM ai_runs ORDER BY id LIMIT 3")]
    conn.execute("UPDATE ai_runs SET tags = '{fresh,x}' WHERE id = %s", (runs[0],))
    # The tags of a run whose tasks changed too (ids[0:10]'s costs, above).
    conn.execute(
        "UPDATE ai_runs SET tags = '{eval,x}' WHERE id = (SELECT run_id FROM ai_tasks "
        "WHERE id = %s)",
        (ids[0],),
    )
    conn.execute("UPDATE ai_runs SET tags = '{}' WHERE id = %s", (runs[1],))
    conn.execute("INSERT INTO ai_users (id, team) VALUES ('newcomer', 'blue')")
    run = make_run(conn, user_id="newcomer", tags=["x"], created_at=END - timedelta(days=4))
    for k in range(6):
        make_task(
            conn, run, user_id="newcomer", created_at=END - timedelta(days=4 - k, hours=k),
            model=("gpt-4o", "brand-new-model")[k % 2], time_to_first_token=100 + k,
            status="completed", cost=None if k == 3 else Decimal("0.0123456789"),
        )  # fmt: skip
    old_run = runs[2]
    make_task(conn, old_run, user_id="newcomer", created_at=END - timedelta(days=1, hours=1))


def test_day_totals_equal_the_rollups_over_tasks(demo_mirror, monkeypatch):
    db_url, path = demo_mirror
    with q.open_mirror(path) as con:
        assert con.execute("SELECT count(*) FROM day_totals").fetchone()[0] > 0
        assert_like_tasks(con, monkeypatch)
        # A mirror built before the tag totals or the day totals (not yet rebuilt) reads
        # its tasks.
        by_tag = q.usage_over_time(con, windows()[0], "week", "tag")
        con.execute("DROP TABLE day_tag_totals")
        assert not day_totals.covers(con, windows()[0], "tag")
        after = q.usage_over_time(con, windows()[0], "week", "tag")
        pd.testing.assert_frame_equal(after, by_tag, check_exact=True)
        before = q.kpis(con, windows()[0])
        con.execute("DROP TABLE day_totals")
        assert not day_totals.covers(con, windows()[0], None)
        pd.testing.assert_frame_equal(q.kpis(con, windows()[0]), before, check_exact=True)


def test_day_totals_stay_exact_through_incremental_syncs(demo_mirror, monkeypatch):
    db_url, path = demo_mirror
    with psycopg.connect(db_url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        change_everything(conn)
        with q.open_mirror(path) as con:
            assert not q.sync_mirror(db_url, con=con).full
            assert_like_tasks(con, monkeypatch)
        # Undo part of it, delete a user and a run, move tasks back: a second sync.
        conn.execute("UPDATE ai_users SET team = NULL WHERE id = 'newcomer'")
        conn.execute(
            "UPDATE ai_tasks SET created_at = created_at + interval '2 days 3 hours' "
            "WHERE id IN (SELECT id FROM ai_tasks ORDER BY id LIMIT 5 OFFSET 10)"
        )
        conn.execute(
            "DELETE FROM ai_runs WHERE id = (SELECT run_id FROM ai_tasks "
            "WHERE created_at > %s ORDER BY id LIMIT 1)",
            (END - timedelta(days=3),),
        )
        conn.execute("DELETE FROM ai_tasks WHERE user_id = 'newcomer' AND model = 'gpt-4o'")
        first = "SELECT run_id, created_at FROM ai_tasks ORDER BY id LIMIT 1"
        some = conn.execute(first).fetchone()
        make_task(conn, some["run_id"], created_at=some["created_at"] + timedelta(minutes=1))
        with q.open_mirror(path) as con:
            assert not q.sync_mirror(db_url, con=con).full
            assert_like_tasks(con, monkeypatch)


def facts(con) -> dict[str, int]:
    rows = con.execute("SELECT key, value FROM mirror_meta WHERE key LIKE 'day_total_rows_%'")
    return {key: int(value) for key, value in rows.fetchall()}


def rows_per_key(con) -> tuple[int, int]:
    """Rows of day_totals, day_ttft and day_tag_totals, and their keys."""
    return con.execute(
        "SELECT (SELECT count(*) FROM day_totals) + (SELECT count(*) FROM day_ttft) "
        "+ (SELECT count(*) FROM day_tag_totals), "
        f"(SELECT count(*) FROM (SELECT DISTINCT {KEY} FROM day_totals)) "
        "+ (SELECT count(*) FROM (SELECT DISTINCT day, ttft FROM day_ttft)) "
        "+ (SELECT count(*) FROM (SELECT DISTINCT day, run_key, user_key, tag "
        "FROM day_tag_totals))"
    ).fetchone()


def test_scattered_syncs_compact_the_day_totals(demo_mirror, monkeypatch):
    db_url, path = demo_mirror
    with q.open_mirror(path) as con:
        built = facts(con)
        assert built["day_total_rows_appended"] == 0
        assert built["day_total_rows_compacted"] == rows_per_key(con)[0]
    compacted = False
    with psycopg.connect(db_url, autocommit=True) as conn:
        for round_ in range(12):
            conn.execute(
                "UPDATE ai_tasks SET cost = cost + 0.0000000001 * %s, "
                "created_at = created_at - interval '1 hour' * (%s %% 3) "
                "WHERE id IN (SELECT id FROM ai_tasks ORDER BY random() LIMIT 60)",
                (round_ + 1, round_),
            )
            conn.execute("DELETE FROM ai_tasks WHERE id IN (SELECT id FROM ai_tasks LIMIT 3)")
            with q.open_mirror(path) as con:
                before = facts(con)["day_total_rows_appended"]
                assert not q.sync_mirror(db_url, con=con, verify=False).full
                after = facts(con)
                rows, keys = rows_per_key(con)
                if after["day_total_rows_appended"] < before:  # compacted
                    # Not before the appended rows passed the share.
                    assert (
                        before <= sync.DAY_TOTALS_COMPACT_SHARE * built["day_total_rows_compacted"]
                    )
                    assert after == {"day_total_rows_appended": 0,
                                     "day_total_rows_compacted": rows}  # fmt: skip
                    assert rows == keys  # one row per key
                    assert_like_tasks(con, monkeypatch)
                    compacted = True
                    break
                assert rows > keys or after["day_total_rows_appended"] == 0
    assert compacted


LAST_ROW = "WHERE rowid = (SELECT max(rowid) FROM {})"


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE day_totals SET cost = cost + 0.01 " + LAST_ROW.format("day_totals"),
        "DELETE FROM day_ttft " + LAST_ROW.format("day_ttft"),
        "UPDATE day_tag_totals SET tasks = tasks + 1 " + LAST_ROW.format("day_tag_totals"),
        "DELETE FROM day_tag_totals " + LAST_ROW.format("day_tag_totals"),
    ],
)
def test_the_self_check_rebuilds_day_totals_out_of_step(demo_mirror, monkeypatch, damage):
    db_url, path = demo_mirror
    check = sync.duck_sql()["verify_day_totals"].sql
    with q.open_mirror(path) as con:
        assert con.execute(check).fetchone()[0] == 0
        con.execute(damage)
        assert con.execute(check).fetchone()[0] == 1
    result = q.sync_mirror(db_url, path, verify=True)
    assert result.full and "day_totals is out of step" in result.reason
    with q.open_mirror(path) as con:
        assert con.execute(check).fetchone()[0] == 0
        assert_like_tasks(con, monkeypatch)
