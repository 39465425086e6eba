"""Whose rights a spend-control change uses (docs/spend-control.md, docs/access.md).

With a viewer (an ai_users id) the change goes through the application role under
row-level security (migration 0018): an admin changes anything, a manager the budgets and
alert rules of their team and its people, a member nothing; Postgres refuses the rest and
the refusal is raised as AccessDeniedError. Without a viewer the change is the owner's (the
command line, trusted services), and the audit names the operating-system user as actor.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from ingest.access import viewer as viewers
from ingest.errors import AccessDeniedError
from ingest.store import database, sqlfiles


def _queries() -> dict[str, sqlfiles.Query]:
    """This module's named SQL (sql/acting.sql beside it)."""
    return sqlfiles.beside(__file__)


def who() -> str:
    """The operating-system user running this process (the actor of owner-side changes)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def actor(viewer: str | None) -> str:
    """The name recorded as created_by/removed_by: the viewer, else the OS user."""
    return viewer or who()


@contextmanager
def connection(url: str | None, viewer: str | None) -> Iterator[psycopg.Connection]:
    """A dict-row connection in one transaction: as `viewer` under row-level security, or
    as the owner with the OS user named as the audit's actor. A write the policies refuse
    raises AccessDeniedError naming the viewer; nothing is written."""
    try:
        if viewer is None:
            with database.connect(url) as conn:
                conn.execute(_queries()["set_actor"].psycopg, {"actor": who()})
                yield conn
        else:
            with viewers.connect_as(url, viewer) as conn:
                yield conn
    except psycopg.errors.InsufficientPrivilege as exc:
        raise refusal(viewer, "change this setting", exc.diag.message_primary or "") from None


def refusal(viewer: str | None, action: str, why: str = "") -> AccessDeniedError:
    """The error of a change the viewer's rights do not allow."""
    because = why or "only an admin, or a manager for their own team, may"
    return AccessDeniedError(viewer, action, because)


def budget_exists(conn: psycopg.Connection, budget_id: int) -> bool:
    """True when budget `budget_id` exists, whether or not the viewer may read it."""
    row = conn.execute(_queries()["budget_exists"].psycopg, {"id": budget_id}).fetchone()
    return row is not None


def budget_scopes(conn: psycopg.Connection) -> list[dict]:
    """Every budget's id, scope_kind, scope_value and period (no amount), readable or not."""
    return conn.execute(_queries()["budget_scopes"].psycopg).fetchall()


def act_as_admin(conn: psycopg.Connection, url: str | None, viewer: str, action: str) -> None:
    """For work done on the owner connection `conn` on a person's behalf (a re-pricing
    started from the dashboard): AccessDeniedError unless the database says `viewer` is an
    admin; then `viewer` is the audit's actor for the rest of the session."""
    if viewers.viewer_facts(url, viewer)["role"] != "admin":
        raise refusal(viewer, action, "only an admin may")
    conn.execute(_queries()["set_actor_for_session"].psycopg, {"actor": viewer})


def name_owner_actor(conn: psycopg.Connection) -> None:
    """Name the OS user as the audit's actor for the rest of an owner session."""
    conn.execute(_queries()["set_actor_for_session"].psycopg, {"actor": who()})
