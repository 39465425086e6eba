"""Access methods of `ingest.Tracker`: who the viewer is, sharing, the audit log, and the
redaction rules (docs/access.md). SQL: ingest/tracking/sql/access.sql.

Row-level security decides every answer: a Tracker with a viewer connects as the
application role, so sharing a run it does not own, or reading the audit log as a
non-admin, is refused by Postgres, and the refusal is raised as AccessDeniedError.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ingest.access import redaction, viewer
from ingest.errors import AccessDeniedError, ValidationError
from ingest.store import sqlfiles
from ingest.store.validation import parse_uuid

SHARE_PERMISSIONS = ("view", "edit")


class AccessMethods:
    """The access half of Tracker (see ingest.tracking.tracker for the shared contract)."""

    viewer: str | None
    _queries: dict[str, sqlfiles.Query]
    _transaction: Callable[..., AbstractContextManager[psycopg.Connection]]
    _one: Callable[..., dict | None]
    _refusal: Callable[[str, Any, str], Exception]
    _redactor: redaction.Redactor

    def whoami(self) -> dict[str, Any]:
        """The viewer as the database sees it: {"id" (None when not in ai_users, or no
        viewer), "role", "sees_all"}. A Tracker without a viewer is the owner: sees all."""
        if self.viewer is None:
            return {"id": None, "role": None, "sees_all": True}
        with self._transaction() as conn:
            return viewer.facts_of(conn)

    def share_run(
        self, run_id: uuid.UUID | str, user_id: str, permission: str = "view"
    ) -> dict[str, Any]:
        """Share a run with a person (ai_users id): `view` (read) or `edit` (change it and
        its tasks). Sharing again replaces the permission. Only the run's owner or an admin
        may share. Returns {run_id, user_id, permission, created_by, created_at}; takes
        effect at the recipient's next query."""
        run = parse_uuid("run_id", run_id)
        if permission not in SHARE_PERMISSIONS:
            raise ValidationError("permission", f"unknown value {permission!r}", SHARE_PERMISSIONS)
        if not isinstance(user_id, str) or not user_id.strip():
            raise ValidationError("user_id", f"must be a non-empty string, got {user_id!r}")
        try:
            with self._transaction() as conn:
                if self._one(conn, "run_visible", run_id=run) is None:
                    raise self._refusal("run", run, "share")
                return self._one(
                    conn,
                    "share_run",
                    run_id=run,
                    user_id=user_id.strip(),
                    permission=permission,
                    created_by=self.viewer,
                )
        except psycopg.errors.ForeignKeyViolation:
            raise ValidationError("user_id", f"no person {user_id!r} in ai_users") from None
        except PermissionError:
            raise self._refusal("run", run, "share") from None

    def unshare_run(self, run_id: uuid.UUID | str, user_id: str) -> bool:
        """Stop sharing a run with a person. True when a share was removed, False when there
        was none. Only the run's owner or an admin may unshare."""
        run = parse_uuid("run_id", run_id)
        with self._transaction() as conn:
            if self._one(conn, "run_visible", run_id=run) is None:
                raise self._refusal("run", run, "unshare")
            removed = self._one(conn, "unshare_run", run_id=run, user_id=user_id)
            if removed is None and self.viewer is not None:
                shares = conn.execute(self._queries["run_shares"].psycopg, {"run_id": run})
                if any(s["user_id"] == user_id for s in shares.fetchall()):
                    raise self._refusal("run", run, "unshare")
        return removed is not None

    def run_rights(self, run_id: uuid.UUID | str) -> dict[str, bool]:
        """What the viewer may do with a run, as the policies decide: {"edit": rename,
        star, tag, archive, delete, restore, add tasks; "own": also share, unshare and
        purge}. Both false for a run the viewer cannot see. A Tracker without a viewer
        (the owner) may do everything."""
        run = parse_uuid("run_id", run_id)
        if self.viewer is None:
            return {"edit": True, "own": True}
        with self._transaction() as conn:
            row = self._one(conn, "run_rights", run_id=run)
        return {"edit": bool(row["edit"]), "own": bool(row["own"])}

    def run_shares(self, run_id: uuid.UUID | str) -> list[dict[str, Any]]:
        """Who a run is shared with (as far as the viewer may see): user_id, permission,
        created_by, created_at."""
        run = parse_uuid("run_id", run_id)
        with self._transaction() as conn:
            return conn.execute(self._queries["run_shares"].psycopg, {"run_id": run}).fetchall()

    def list_users(self) -> list[dict[str, Any]]:
        """The people (ai_users rows) the viewer may see: everyone for a known viewer,
        nobody for an unknown one."""
        with self._transaction() as conn:
            return conn.execute(self._queries["list_users"].psycopg).fetchall()

    def audit_log(self, limit: int = 200) -> list[dict[str, Any]]:
        """The newest audit entries (deletes, restores, archives, shares, role changes,
        purges): id, at, actor, action, run_id, subject, detail. Empty for a non-admin
        viewer: row-level security shows the log to admins only."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ValidationError("limit", f"must be an integer in 1..10000, got {limit!r}")
        with self._transaction() as conn:
            return conn.execute(self._queries["audit_log"].psycopg, {"limit": limit}).fetchall()

    def visible_run_ids(self) -> list[uuid.UUID]:
        """Ids of every run the viewer may read (row-level security decides)."""
        with self._transaction() as conn:
            if self.viewer is None or viewer.facts_of(conn)["sees_all"]:
                rows = conn.execute(self._queries["all_visible_run_ids"].psycopg).fetchall()
                return [uuid.UUID(str(row["run_id"])) for row in rows]
            return [uuid.UUID(str(run_id)) for (run_id,) in viewer.run_ids_of(conn)]

    def task_redactions(self, task_id: uuid.UUID | str) -> dict[str, Any]:
        """Masks applied to a task as stored: {"masks": total, "fields": {field: count}}
        (zeros when redaction touched nothing)."""
        tid = parse_uuid("task_id", task_id)
        with self._transaction() as conn:
            row = self._one(conn, "task_redactions", task_id=tid)
        return row or {"masks": 0, "fields": {}}

    def redaction_rules(self) -> list[dict[str, Any]]:
        """Every redaction rule: name, pattern, replacement, builtin, enabled."""
        with self._transaction() as conn:
            return conn.execute(self._queries["all_redaction_rules"].psycopg).fetchall()

    def set_redaction_rule(
        self,
        name: str,
        *,
        enabled: bool = True,
        pattern: str | None = None,
        replacement: str | None = None,
    ) -> dict[str, Any]:
        """Enable, disable, add or change a redaction rule (built-ins `email` and `secret`
        keep their pattern). A new rule needs a pattern. Admins only under row-level
        security. Writers pick the change up within redaction.RELOAD_SECONDS."""
        if pattern is not None or replacement is not None:
            redaction.compile_rule(name, pattern or "x", replacement or "")
        if not isinstance(enabled, bool):
            raise ValidationError("enabled", f"must be true or false, got {enabled!r}")
        values = {"name": name, "pattern": pattern, "replacement": replacement, "enabled": enabled}
        with self._transaction() as conn:
            row = self._one(conn, "update_redaction_rule", **values)
            if row is None:
                rules = conn.execute(self._queries["all_redaction_rules"].psycopg).fetchall()
                if any(rule["name"] == name for rule in rules):
                    raise AccessDeniedError(
                        self.viewer, f"change redaction rule {name!r}", "only an admin may"
                    )
                if pattern is None:
                    raise ValidationError("pattern", f"a new rule {name!r} needs a pattern")
                row = self._one(conn, "insert_redaction_rule", **values)
        self._redactor.refresh()
        return row
