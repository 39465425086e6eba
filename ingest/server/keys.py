"""API keys of the ingest server: create (shown once), list, revoke, resolve to a user.

A key looks like `air_<43 url-safe characters>` (256 random bits). Only its SHA-256 is
stored (a fast hash is enough: the key is random, not a password), with the first 12
characters as a `prefix` to tell keys apart in `ai-runs keys list`. SQL: sql/keys.sql.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import psycopg

from ingest.errors import NotFoundError, ValidationError
from ingest.store import database, sqlfiles

KEY_PREFIX = "air_"
PREFIX_LENGTH = 12


def queries() -> dict[str, sqlfiles.Query]:
    """The named SQL of the server package (ingest/server/sql/*.sql)."""
    return sqlfiles.beside(__file__)


def hash_key(key: str) -> str:
    """Hex SHA-256 of a key: what ai_api_keys stores."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(user_id: str, name: str = "", url: str | None = None) -> tuple[str, dict]:
    """Make a key for `user_id`; return (the key, its row). The key is not stored: the
    caller must show it now. ValidationError for an empty user_id.

    The person is added to ai_users as a `member` (display name = id) when missing, in the
    same transaction: row-level security sees nobody else (docs/access.md). An existing
    person keeps their role, team and name."""
    if not isinstance(user_id, str) or not user_id.strip() or "\x00" in user_id:
        raise ValidationError("user", f"must be a non-empty string, got {user_id!r}")
    if not isinstance(name, str) or "\x00" in name:
        raise ValidationError("name", f"must be a string without NUL, got {name!r}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    params = {
        "key_hash": hash_key(key),
        "prefix": key[:PREFIX_LENGTH],
        "user_id": user_id.strip(),
        "name": name.strip(),
    }
    with database.connect(url) as conn:
        conn.execute(queries()["ensure_key_user"].psycopg, {"user_id": params["user_id"]})
        row = conn.execute(queries()["insert_api_key"].psycopg, params).fetchone()
    return key, row


def list_keys(user_id: str | None = None, url: str | None = None) -> list[dict[str, Any]]:
    """Every key row (id, prefix, user_id, name, created_at, revoked_at), oldest first;
    only `user_id`'s when given. Hashes are never returned."""
    with database.connect(url, autocommit=True) as conn:
        return conn.execute(queries()["list_api_keys"].psycopg, {"user_id": user_id}).fetchall()


def revoke_key(key: str, url: str | None = None) -> list[dict[str, Any]]:
    """Revoke the key whose id or prefix is `key` (takes effect on the next request);
    return the revoked rows. NotFoundError when nothing matches."""
    with database.connect(url, autocommit=True) as conn:
        rows = conn.execute(queries()["revoke_api_key"].psycopg, {"key": key}).fetchall()
    if not rows:
        raise NotFoundError("api key", key)
    return rows


def user_of_key(conn: psycopg.Connection, key: str) -> str | None:
    """The user_id a live key belongs to; None for an unknown or revoked key."""
    row = conn.execute(queries()["user_of_api_key"].psycopg, {"key_hash": hash_key(key)}).fetchone()
    return None if row is None else row[0] if not isinstance(row, dict) else row["user_id"]
