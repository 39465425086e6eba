"""Versioned migrations: ordered, idempotent, upgrade an older database in place."""

from __future__ import annotations

import psycopg
import pytest

from ingest.store import database


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_fresh_database_gets_every_migration_once(empty_db_url):
    applied = database.migrate(empty_db_url)
    assert applied == [m.version for m in database.migrations()]
    assert {"ai_users", "ai_runs", "ai_tasks", "ai_sync_deletions"} <= tables(empty_db_url)
    assert database.migrate(empty_db_url) == []
    assert database.schema_version(empty_db_url) == database.migrations()[-1].version


def test_older_database_upgrades_in_place_keeping_its_rows(empty_db_url):
    database.migrate(empty_db_url, target=2)
    assert database.schema_version(empty_db_url) == 2
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        run = conn.execute(
            "INSERT INTO ai_runs (source_type) VALUES ('chat') RETURNING id"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO ai_tasks (run_id, task_id, tokens_input, cost) "
            "VALUES (%s, gen_random_uuid(), 12, 0.5)",
            (run,),
        )
    later = [m.version for m in database.migrations() if m.version > 2]
    assert database.migrate(empty_db_url) == later
    with psycopg.connect(empty_db_url) as conn:
        row = conn.execute(
            "SELECT task_count, total_tokens, sync_xid IS NOT NULL FROM ai_runs"
        ).fetchone()
    assert row == (1, 12, True)
    assert database.run_totals_mismatches(empty_db_url) == []


def test_an_edited_migration_is_refused(empty_db_url):
    database.migrate(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("UPDATE ai_runs_migrations SET checksum = 'x' WHERE version = 1")
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        database.migrate(empty_db_url)


def test_concurrent_migrators_apply_each_version_once(empty_db_url):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: database.migrate(empty_db_url), range(4)))
    applied = sorted(v for r in results for v in r)
    assert applied == [m.version for m in database.migrations()]


def test_migration_files_are_numbered_in_order_each_number_once():
    # Gaps are allowed: branches take their numbers in advance, and migrate() applies every
    # version a database lacks, lower ones included.
    versions = [m.version for m in database.migrations()]
    assert versions == sorted(set(versions)) and versions[0] == 1
