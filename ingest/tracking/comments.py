"""Shared notes: comments on a run and on its tasks (docs/tracking.md, "Shared notes").

A comment is text only (at most limits.MAX_COMMENT_TEXT characters, never empty), written
as the signed-in person: the Tracker's viewer (else its user_id). An `@name` in the text
mentions a person by ai_users id (or email); everyone mentioned must be able to read the
run, else ValidationError on `mentions` saying who cannot, and nothing is written.

Row-level security decides (migration 0021): whoever may read the run reads its comments
and may comment; a comment is its author's to edit and delete, and an admin may delete
any; a delete is written to the audit log ('comment_removed'). A run, task or comment the
viewer cannot read is NotFoundError; one they may read but not change, AccessDeniedError.
CommentMethods mixes these into Tracker. SQL: ingest/tracking/sql/comments.sql.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg

from ingest.errors import AccessDeniedError, NotFoundError, ValidationError
from ingest.store import limits, sqlfiles
from ingest.store.limits import check_text
from ingest.store.validation import parse_uuid

# `@name` at the start or after a space or punctuation (so `bob@example.com` mentions
# nobody); a name is an id or an email. Trailing dots and dashes end the sentence.
MENTION = re.compile(r"(?<![\w@.+-])@([\w][\w.+-]*(?:@[\w-]+(?:\.[\w-]+)+)?)")


def mentioned_names(text: str) -> list[str]:
    """The distinct `@name`s of `text`, in order of first appearance (without the `@`)."""
    names: dict[str, None] = {}
    for match in MENTION.finditer(text):
        name = match.group(1).rstrip(".-")
        if name:
            names.setdefault(name, None)
    return list(names)


def check_comment_text(text: Any) -> str:
    """`text` if it is a valid comment: a string with something besides white space, at
    most limits.MAX_COMMENT_TEXT characters, no NUL or lone surrogate, and at most
    limits.MAX_MENTIONS distinct @mentions; else ValidationError naming `text`."""
    if not isinstance(text, str):
        raise ValidationError("text", f"must be a string, got {type(text).__name__}")
    check_text("text", text, limits.MAX_COMMENT_TEXT)
    if not text.strip():
        raise ValidationError("text", "must not be empty or only white space")
    if len(mentioned_names(text)) > limits.MAX_MENTIONS:
        raise ValidationError("text", f"may @mention at most {limits.MAX_MENTIONS} people")
    return text


def _comment_id(comment_id: Any) -> int:
    if isinstance(comment_id, bool) or not isinstance(comment_id, int) or comment_id < 1:
        raise ValidationError("comment_id", f"must be a positive integer, got {comment_id!r}")
    return comment_id


class CommentMethods:
    """The comment half of Tracker (see ingest.tracking.tracker for the shared contract)."""

    viewer: str | None
    user_id: str | None
    _queries: dict[str, sqlfiles.Query]
    _transaction: Callable[..., AbstractContextManager[psycopg.Connection]]
    _one: Callable[..., dict | None]

    def comment(
        self,
        text: str,
        *,
        run_id: uuid.UUID | str | None = None,
        task_id: uuid.UUID | str | None = None,
    ) -> dict[str, Any]:
        """Comment on a run (run_id) or on one of its tasks (task_id: its application
        task_id), as the viewer (else the tracker's user_id). Returns the comment row: id,
        run_id, task_id, author, text, mentions (the ai_users ids the text @mentions),
        created_at, edited_at (None)."""
        text = check_comment_text(text)
        author = self._comment_author()
        if task_id is None and run_id is None:
            raise ValidationError("run_id", "give a run_id or a task_id")
        task = None if task_id is None else parse_uuid("task_id", task_id)
        run = None if run_id is None else parse_uuid("run_id", run_id)
        with self._checked_write() as conn:
            target = self._one(conn, "comment_target", run_id=run, task_id=task)
            if target is None:
                raise NotFoundError("task" if task is not None else "run", task or run)
            if run is not None and target["run_id"] != run:
                raise ValidationError("run_id", f"task {task} belongs to run {target['run_id']}")
            mentions = self._resolve_mentions(conn, text, target["run_id"])
            row = self._one(
                conn, "insert_comment", run_id=target["run_id"], task_id=task,
                author=author, text=text, mentions=mentions,
            )  # fmt: skip
        assert row is not None
        return row

    def comments(
        self,
        *,
        run_id: uuid.UUID | str | None = None,
        task_id: uuid.UUID | str | None = None,
        with_tasks: bool = False,
    ) -> list[dict[str, Any]]:
        """The comments of a task (task_id) or of a run (run_id; its tasks' too when
        with_tasks), oldest first (comment rows). NotFoundError when the viewer cannot read
        the run or task."""
        if task_id is None and run_id is None:
            raise ValidationError("run_id", "give a run_id or a task_id")
        task = None if task_id is None else parse_uuid("task_id", task_id)
        run = None if run_id is None else parse_uuid("run_id", run_id)
        with self._transaction() as conn:
            if self._one(conn, "comment_target", run_id=run, task_id=task) is None:
                raise NotFoundError("task" if task is not None else "run", task or run)
            query = self._queries["comments_of"].psycopg
            params = {"task_id": task, "run_id": run, "with_tasks": bool(with_tasks)}
            return conn.execute(query, params).fetchall()

    def edit_comment(self, comment_id: int, text: str) -> dict[str, Any]:
        """Replace the text of one's own comment (its mentions are resolved again).
        Returns the comment row with edited_at set. NotFoundError when the viewer cannot
        read it; AccessDeniedError when it is someone else's."""
        comment_id = _comment_id(comment_id)
        text = check_comment_text(text)
        with self._checked_write() as conn:
            current = self._one(conn, "comment_by_id", id=comment_id)
            if current is None:
                raise NotFoundError("comment", comment_id)
            mentions = self._resolve_mentions(conn, text, current["run_id"])
            row = self._one(conn, "edit_comment", id=comment_id, text=text, mentions=mentions)
        if row is None:
            raise AccessDeniedError(
                self.viewer, f"edit comment {comment_id}", "a comment is its author's to edit"
            )
        return row

    def delete_comment(self, comment_id: int) -> bool:
        """Remove a comment: True when removed (and written to the audit log), False when
        there is none the viewer may read; AccessDeniedError when they may read it but it
        is someone else's (only its author or an admin may remove it)."""
        comment_id = _comment_id(comment_id)
        with self._transaction() as conn:
            if self._one(conn, "delete_comment", id=comment_id) is not None:
                return True
            if self._one(conn, "comment_by_id", id=comment_id) is None:
                return False
        raise AccessDeniedError(
            self.viewer,
            f"remove comment {comment_id}",
            "a comment is its author's to remove (or an admin's)",
        )

    # ------------------------------------------------------------ helpers

    def _comment_author(self) -> str:
        author = self.viewer or self.user_id
        if author is None:
            raise ValidationError(
                "author", "a comment needs a person: Tracker(viewer=...) or Tracker(user_id=...)"
            )
        return author

    def _resolve_mentions(
        self, conn: psycopg.Connection, text: str, run_id: uuid.UUID
    ) -> list[str]:
        """The ai_users ids the text's @names mention; ValidationError on `mentions` naming
        each one nobody answers to or who cannot read the run."""
        names = mentioned_names(text)
        if not names:
            return []
        query = self._queries["resolve_mentions"].psycopg
        rows = conn.execute(query, {"names": names, "run_id": run_id}).fetchall()
        unknown = [f"@{r['name']}" for r in rows if r["user_id"] is None]
        barred = [f"@{r['name']}" for r in rows if r["user_id"] is not None and not r["may_read"]]
        problems = []
        if unknown:
            problems.append(f"no such person: {', '.join(unknown)}")
        if barred:
            problems.append(f"cannot read run {run_id}: {', '.join(barred)}")
        if problems:
            raise ValidationError(
                "mentions", "; ".join(problems) + " (mention only people who may read the run)"
            )
        return list(dict.fromkeys(r["user_id"] for r in rows))

    @contextmanager
    def _checked_write(self) -> Iterator[psycopg.Connection]:
        """A write transaction whose CHECK refusals (the migration's own rules, a last line
        behind the checks above) become ValidationError naming the field."""
        try:
            with self._transaction() as conn:
                yield conn
        except psycopg.errors.CheckViolation as refused:
            message = refused.diag.message_primary or str(refused)
            field = "mentions" if "mentioned" in message else "task_id"
            raise ValidationError(field, message) from None
