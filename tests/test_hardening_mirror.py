"""Issue 13: the mirror checks itself (every block read back, counts and sums against
Postgres) and is rebuilt when damaged; the dashboard never shows the raw engine error."""

from __future__ import annotations

import shutil
import time

import pytest
from dashboard_support import app_environment, open_page

import queries
from dashboard import command as cli
from dashboard import data
from ingest import demo
from queries.mirror import sync_mirror

BLOCK = 256 * 1024
HEADER = 3 * 4096


def _zero_blocks(path, blocks) -> None:
    with open(path, "r+b") as file:
        for block in blocks:
            file.seek(HEADER + block * BLOCK)
            file.write(b"\0" * BLOCK)


@pytest.fixture
def built(db_url, tmp_path):
    demo.generate(db_url, tasks=6000, days=20, seed=4)
    path = tmp_path / "mirror.duckdb"
    sync_mirror(db_url, path, full=True)
    shutil.copy(path, tmp_path / "good.duckdb")
    return path


def _blocks(path) -> range:
    return range(1, path.stat().st_size // BLOCK)


def test_sync_command_rebuilds_a_mirror_with_zeroed_blocks(db_url, built, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    damaged = 0
    for block in _blocks(built):
        shutil.copy(built.parent / "good.duckdb", built)
        _zero_blocks(built, [block])
        assert cli.main(["sync", "--mirror", str(built)]) == 0
        out = capsys.readouterr().out
        if "full rebuild" in out:
            damaged += 1
            assert "Corrupt database file" in out, out  # the cause, not a follow-up error
        else:
            assert "checked against Postgres" in out, out  # a free block: nothing lost
        again = sync_mirror(db_url, built, verify=True)
        assert (again.full, again.verified) == (False, True)
        assert again.rows["tasks"] == 6000
    assert damaged >= 5  # blocks in use; a zeroed free block loses nothing


def test_a_mirror_that_diverges_from_postgres_is_rebuilt(db_url, built):
    import duckdb

    with duckdb.connect(str(built)) as con:  # rows Postgres never had: no sync removes them
        con.execute("INSERT INTO tasks SELECT * REPLACE (uuid() AS id) FROM tasks LIMIT 5")
    quiet = sync_mirror(db_url, built, verify=False)
    assert not quiet.full and quiet.rows["tasks"] == 6005
    checked = sync_mirror(db_url, built, verify=True)
    assert checked.full and checked.reason.startswith("mirror check failed: tasks is 6005")
    assert checked.rows["tasks"] == 6000


def test_dashboard_shows_no_engine_error_on_a_damaged_mirror(db_url, built, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with app_environment(db_url, home):
        mirror = home / "analytics.duckdb"
        shutil.copy(built.parent / "good.duckdb", mirror)
        _zero_blocks(mirror, list(_blocks(mirror))[::2])
        for page in ("overview", "cost", "performance"):
            at = open_page(page)
            assert not at.exception, at.exception
            shown = " ".join(str(e.value) for kind in ("error", "warning") for e in at.get(kind))
            assert "Corrupt" not in shown and "checksum" not in shown, shown


def test_the_self_check_runs_beside_page_loads_not_in_them(db_url, built, tmp_path, monkeypatch):
    """After the first sync, a page load's sync never checks the mirror (a full read of
    both: about 28 s at 10M tasks); a background thread does, when one is due, and a page
    load meanwhile answers with the data it has instead of waiting."""
    home = tmp_path / "home"
    home.mkdir()
    with app_environment(db_url, home):
        shutil.copy(built, home / "analytics.duckdb")
        m = data.sync()  # the first sync of the process
        asked = []
        original = queries.sync_mirror

        def recording(*args, **kwargs):
            asked.append(kwargs.get("verify"))
            if kwargs.get("verify"):
                time.sleep(1.0)  # a slow check
            return original(*args, **kwargs)

        monkeypatch.setattr(queries, "sync_mirror", recording)
        m.checked_at = 0.0  # a check is due
        data.sync(force=True)
        assert asked[0] is False  # the page's own sync did not check
        deadline = time.monotonic() + 60
        while not (m.checking and m.lock.locked()) and time.monotonic() < deadline:
            time.sleep(0.01)  # the check thread holds the mirror's lock
        m.synced_at = 0.0  # the next page load wants a sync, while the check holds the lock
        started = time.monotonic()
        assert data.sync() is m and time.monotonic() - started < 0.5  # did not wait
        while m.checking and time.monotonic() < deadline:
            time.sleep(0.05)
        assert asked.count(True) == 1 and m.last_error is None
        data.sync(force=True)
        assert asked.count(True) == 1  # checked 0 s ago: not due again


def test_a_postgres_failure_in_a_full_build_is_raised_as_it_is_and_keeps_the_file(
    db_url, built, monkeypatch
):
    """A read from Postgres that fails in the middle of the full build (here: the error an
    exhausted disk gave at 10M, injected into the tasks' load) is the error the caller sees,
    not the follow-up "transaction is aborted"; and it is not taken for a damaged mirror:
    the file keeps its rows, and the next sync goes on from it."""
    import duckdb

    from queries.mirror import sync as mirror_sync

    real_load = mirror_sync._load
    failure = 'IOError: could not write to file "base/pgsql_tmp/x": No space left on device'

    def load(con, table, stream, insert=""):
        if table == "tasks":  # fails in DuckDB, in the build's transaction, as the stream did
            con.execute("SELECT error($failure)", {"failure": failure}).fetchall()
        return real_load(con, table, stream, insert)

    monkeypatch.setattr(mirror_sync, "_load", load)
    with pytest.raises(duckdb.InvalidInputException, match="No space left on device"):
        sync_mirror(db_url, built, full=True)
    monkeypatch.setattr(mirror_sync, "_load", real_load)
    kept = sync_mirror(db_url, built, verify=True)
    assert (kept.full, kept.verified, kept.rows["tasks"]) == (False, True, 6000)
