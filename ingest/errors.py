"""Errors the ingest API raises. Every one names the field and what is allowed."""

from __future__ import annotations

from collections.abc import Iterable


class IngestError(Exception):
    """Base class of every error raised by `ingest`."""


class ValidationError(IngestError, ValueError):
    """Bad input: `field` names the offending field; nothing was written."""

    def __init__(self, field: str, problem: str, allowed: Iterable[object] | None = None):
        self.field = field
        self.problem = problem
        self.allowed = list(allowed) if allowed is not None else None
        message = f"{field}: {problem}"
        if self.allowed is not None:
            message += f" (allowed: {', '.join(map(str, self.allowed))})"
        super().__init__(message)


class NotFoundError(IngestError, LookupError):
    """The run or task named does not exist (or is not visible to this user)."""

    def __init__(self, kind: str, identifier: object):
        self.kind = kind
        self.identifier = identifier
        super().__init__(f"{kind} {identifier} does not exist")


class AccessDeniedError(IngestError, PermissionError):
    """The viewer may not do this to that run or task (row-level security said no);
    nothing was written. `viewer` is the ai_users id the change was attempted as; `kind`
    ("run", "task") names what was refused when known."""

    def __init__(self, viewer: str | None, action: str, why: str, kind: str | None = None):
        self.viewer = viewer
        self.action = action
        self.why = why
        self.kind = kind
        super().__init__(f"viewer {viewer!r} may not {action}: {why}")
