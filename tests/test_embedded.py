"""Zero-setup database: with DATABASE_URL unset the product starts, reuses and stops an
embedded Postgres in $AI_RUNS_HOME/pgdata. These run the real `ai-runs` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from ingest.store import embedded


def ai_runs(home: Path, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "XDG_RUNTIME_DIR")}
    env.update({"AI_RUNS_HOME": str(home), **(env_extra or {})})
    return subprocess.run(
        [sys.executable, "-m", "dashboard.command", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def home(tmp_path: Path):
    yield tmp_path
    embedded.stop(tmp_path / "pgdata")


def test_db_start_url_check_stop(home):
    started = ai_runs(home, "db", "start")
    assert started.returncode == 0, started.stderr
    assert str(home / "pgdata") in started.stdout
    assert embedded.is_running(home / "pgdata")

    url = ai_runs(home, "db", "url").stdout.strip()
    assert url.startswith("postgresql://") and "/ai_runs?" in url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT max(version) FROM ai_runs_migrations").fetchone()[0] >= 3
        assert conn.execute("SHOW shared_buffers").fetchone()[0] == "512MB"

    checked = ai_runs(home, "db", "check")
    assert checked.returncode == 0 and "match" in checked.stdout

    migrated = ai_runs(home, "db", "migrate")
    assert migrated.returncode == 0 and "schema at version" in migrated.stdout

    stopped = ai_runs(home, "db", "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not embedded.is_running(home / "pgdata")
    again = ai_runs(home, "db", "stop")
    assert "was not running" in again.stdout


def test_data_survives_a_restart_and_the_server_is_reused(home):
    url = ai_runs(home, "db", "url").stdout.strip()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO ai_runs (source_type, name) VALUES ('chat', 'kept')")
    pid = (home / "pgdata" / "postmaster.pid").read_text().split()[0]
    assert ai_runs(home, "db", "url").stdout.strip() == url
    assert (home / "pgdata" / "postmaster.pid").read_text().split()[0] == pid  # reused
    ai_runs(home, "db", "stop")
    url = ai_runs(home, "db", "url").stdout.strip()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT name FROM ai_runs").fetchone()[0] == "kept"


def test_database_url_setting_wins(home, pg_server):
    result = ai_runs(home, "db", "stop", env_extra={"DATABASE_URL": pg_server})
    assert "not ours to stop" in result.stdout
    assert not (home / "pgdata").exists()


def test_tracker_works_with_nothing_but_the_install(home):
    """The README's promise: no DATABASE_URL, no setup, the Tracker just works."""
    script = (
        "import ingest\n"
        "t = ingest.Tracker(user_id='ada')\n"
        "run = t.create_run('chat', messages=[{'role': 'user', 'content': 'Hello there'}])\n"
        "task = t.create_task(run['id'], provider='openai', model='gpt-4o')\n"
        "t.complete_task(task['task_id'], 'Hi!', tokens_input=1000, tokens_output=500)\n"
        "got = t.get_run(run['id'])\n"
        "print(got['name'], got['task_count'], got['total_tokens'], got['total_cost'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "XDG_RUNTIME_DIR")}
    env["AI_RUNS_HOME"] = str(home)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    name, count, tokens, cost = result.stdout.split()[-4:]
    assert result.stdout.startswith("Hello there")
    assert (count, tokens) == ("1", "1500")
    assert float(cost) == 0.0075  # gpt-4o: 1000 in x $2.50/M + 500 out x $10/M


def test_unreachable_database_is_a_clear_error_not_a_traceback(home):
    result = ai_runs(home, "db", "check", env_extra={"DATABASE_URL": "postgresql://127.0.0.1:1/x"})
    assert result.returncode == 1
    assert "cannot reach DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def _server_user_uid(name: str, ready, results) -> None:
    ready.wait()
    results.put(embedded.ensure_server_user(name))


@pytest.mark.skipif(os.geteuid() != 0, reason="only root creates the server's system user")
def test_processes_starting_at_once_create_the_server_user_once():
    """On a fresh machine pytest's workers start their servers at the same moment; each
    `useradd` side by side got its own uid and one was kept, so a data folder owned by a
    lost uid never started. With the lock they all get the uid that stays."""
    import multiprocessing
    import pwd

    name = f"ai_runs_t{os.getpid()}"
    context = multiprocessing.get_context("fork")
    ready, results = context.Barrier(4), context.Queue()
    workers = [
        context.Process(target=_server_user_uid, args=(name, ready, results)) for _ in range(4)
    ]
    try:
        for worker in workers:
            worker.start()
        uids = [results.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        assert uids == [pwd.getpwnam(name).pw_uid] * 4
        assert (
            sum(
                line.startswith(f"{name}:") for line in Path("/etc/passwd").read_text().splitlines()
            )
            == 1
        )
    finally:
        subprocess.run(["userdel", "-r", name], capture_output=True)
