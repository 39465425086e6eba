"""Connections that act as a viewer under row-level security (docs/access.md).

`connect_as(url, viewer)` opens the application role's connection (database.app_url) and
names the viewer for one transaction; every read in it returns exactly the rows Postgres
lets that viewer see. `visible_runs(url, viewer)` asks it which runs those are, for
readers that apply the answer elsewhere (the DuckDB mirror). `name_viewer(conn, viewer)`
names the viewer on a connection of one's own (the Tracker's). SQL: ingest/access/sql/viewer.sql.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import dict_row, tuple_row

from ingest.store import database, sqlfiles


def _queries() -> dict[str, sqlfiles.Query]:
    return sqlfiles.beside(__file__)


def name_viewer(conn: psycopg.Connection, viewer: str) -> None:
    """Name `viewer` (an ai_users id) for the rest of the transaction open on `conn`:
    row-level security reads it."""
    conn.execute(_queries()["set_viewer"].psycopg, {"viewer": viewer})


def facts_of(conn: psycopg.Connection) -> dict:
    """Who the viewer named on `conn` is to the database: {"id" (None when not in
    ai_users), "role", "sees_all"}."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_queries()["viewer_facts"].psycopg).fetchone()


def run_ids_of(conn: psycopg.Connection) -> list[tuple]:
    """(run_id,) of every run the viewer named on `conn` may read, as row-level security
    decides (a tuple per run: a team can have 500k)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        return cur.execute(_queries()["visible_run_ids"].psycopg).fetchall()


@contextmanager
def connect_as(url: str | None, viewer: str) -> Iterator[psycopg.Connection]:
    """A dict-row connection as the application role inside one transaction with `viewer`
    (an ai_users id) named; committed on success, closed afterwards."""
    with psycopg.connect(database.app_url(url), row_factory=dict_row) as conn:
        name_viewer(conn, viewer)
        yield conn


def visible_runs(url: str | None, viewer: str) -> tuple[str, ...] | None:
    """The runs `viewer` may read, as Postgres decides through row-level security: None when
    the viewer sees every run (an admin), else the ids (sorted strings; empty for a
    person not in ai_users)."""
    with connect_as(url, viewer) as conn:
        if facts_of(conn)["sees_all"]:
            return None
        rows = run_ids_of(conn)
    return tuple(row[0] for row in rows)


def access_version(url: str | None) -> str:
    """A version of who may read which run, other than the runs themselves: it changes with
    every share, unshare, role change, added person and change to ai_users (migration
    0012). Readers that keep a viewer's visible runs key them by it."""
    with psycopg.connect(database.app_url(url)) as conn:
        return access_version_on(conn)


def access_connection(url: str | None) -> psycopg.Connection:
    """A connection of the application role in autocommit, for a reader that keeps one to
    ask access_version_on on every page view (each ask then sees the latest version)."""
    return psycopg.connect(database.app_url(url), autocommit=True)


def access_version_on(conn: psycopg.Connection) -> str:
    """access_version, asked on a connection of one's own (access_connection's)."""
    return conn.execute(_queries()["access_version"].psycopg).fetchone()[0]


def viewer_facts(url: str | None, viewer: str) -> dict:
    """{"id" (None when `viewer` is not in ai_users), "role", "sees_all"}."""
    with connect_as(url, viewer) as conn:
        return facts_of(conn)


def find_person(url: str | None, who: str) -> dict | None:
    """The ai_users row (id, display_name, email, team, role) named by `who`: an e-mail
    address (case-insensitive) or an id; None when there is no such person. Read as the
    owner: deciding who someone is comes before any row-level security applies."""
    with psycopg.connect(database.database_url(url), row_factory=dict_row) as conn:
        return conn.execute(_queries()["find_person"].psycopg, {"who": who.strip()}).fetchone()


def ensure_local_admin(url: str | None, user_id: str) -> None:
    """Make sure person `user_id` exists with role admin (the dashboard's local mode)."""
    with psycopg.connect(database.database_url(url), autocommit=True) as conn:
        conn.execute(_queries()["ensure_local_admin"].psycopg, {"id": user_id})
