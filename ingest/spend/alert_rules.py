"""Alert rules and their history in Postgres (docs/spend-control.md).

Rule kinds and the unit of their threshold:

- budget_spend:    spend so far in the budget's period / its amount (0.8 = 80%)
- budget_forecast: forecast spend at the end of the period / the amount (1.0 = over budget)
- ttft_p95:        p95 time to first token (ms) of completed tasks in the last window
- total_time_p95:  p95 total time (ms) of completed tasks in the last window
- failure_rate:    failed / finished tasks (0..1) in the last window

A budget rule takes its scope from its budget; the others have their own scope (all, or one
team, user, model, tag or source type) and a window in minutes, and need at least
`min_tasks` tasks in it to fire. Evaluation and delivery live in `queries.alerts`.

`viewer` (an ai_users id) acts as that person under row-level security
(ingest.spend.acting): rules and their history are read for the scopes whose runs the
viewer reads entirely (a budget rule: its budget's scope), and changed by an admin, or a
manager for their team and its people. Without a viewer: the owner (the command line).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import psycopg

from ingest.errors import NotFoundError, ValidationError
from ingest.spend import acting, budgets
from ingest.store import sqlfiles

BUDGET_KINDS = ("budget_spend", "budget_forecast")
WINDOW_KINDS = ("ttft_p95", "total_time_p95", "failure_rate")
KINDS = (*BUDGET_KINDS, *WINDOW_KINDS)


def _queries() -> dict[str, sqlfiles.Query]:
    """This module's named SQL (sql/alert_rules.sql beside it)."""
    return sqlfiles.beside(__file__)


def add_rule(
    url: str | None = None,
    *,
    name: str,
    kind: str,
    threshold: Decimal | float | str,
    budget_id: int | None = None,
    scope_kind: str = "all",
    scope_value: str | None = None,
    window_minutes: int = 60,
    min_tasks: int = 1,
    webhook_url: str | None = None,
    created_by: str = "",
    viewer: str | None = None,
) -> dict[str, Any]:
    """Add an alert rule; return its row. ValidationError naming the field on bad input,
    AccessDeniedError when `viewer` may not manage the rule's scope."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name", "must be a non-empty string")
    if kind not in KINDS:
        raise ValidationError("kind", f"{kind!r} is not an alert kind", KINDS)
    limit = _threshold(threshold)
    if kind in BUDGET_KINDS:
        if budget_id is None:
            raise ValidationError("budget_id", f"a {kind} rule needs the id of its budget")
        if scope_kind != "all" or scope_value:
            raise ValidationError("scope_kind", "a budget rule takes the scope of its budget")
        value = None
    else:
        if budget_id is not None:
            raise ValidationError("budget_id", f"only {', '.join(BUDGET_KINDS)} rules have one")
        value = budgets.check_scope(scope_kind, scope_value)
    if not isinstance(window_minutes, int) or window_minutes < 1:
        raise ValidationError("window_minutes", f"must be an integer >= 1, got {window_minutes!r}")
    if not isinstance(min_tasks, int) or min_tasks < 1:
        raise ValidationError("min_tasks", f"must be an integer >= 1, got {min_tasks!r}")
    if webhook_url and not webhook_url.startswith(("http://", "https://")):
        raise ValidationError("webhook_url", f"{webhook_url!r} is not an http(s) URL")
    params = {
        "name": name.strip(),
        "kind": kind,
        "threshold": limit,
        "budget_id": budget_id,
        "scope_kind": scope_kind,
        "scope_value": value,
        "window_minutes": window_minutes,
        "min_tasks": min_tasks,
        "webhook_url": webhook_url or None,
        "created_by": created_by or acting.actor(viewer),
    }
    with acting.connection(url, viewer) as conn:
        try:
            return conn.execute(_queries()["insert_alert_rule"].psycopg, params).fetchone()
        except psycopg.errors.UniqueViolation:
            raise ValidationError("name", f"a rule named {name!r} exists already") from None
        except psycopg.errors.ForeignKeyViolation:
            raise ValidationError("budget_id", f"no budget has id {budget_id}") from None


def list_rules(url: str | None = None, *, viewer: str | None = None) -> list[dict[str, Any]]:
    """Every rule the viewer may read with its budget (budget_scope_kind/_value,
    budget_period, budget_amount) and state (firing, since, value, evaluated_at)."""
    with acting.connection(url, viewer) as conn:
        return conn.execute(_queries()["list_alert_rules"].psycopg).fetchall()


def remove_rule(
    url: str | None = None, *, rule_id: int, viewer: str | None = None
) -> dict[str, Any]:
    """Delete a rule with its state and history; NotFoundError when there is none the
    viewer may remove."""
    with acting.connection(url, viewer) as conn:
        row = conn.execute(_queries()["remove_alert_rule"].psycopg, {"id": int(rule_id)}).fetchone()
    if row is None:
        raise NotFoundError("alert rule", rule_id)
    return row


def update_rule(
    url: str | None = None,
    *,
    rule_id: int,
    enabled: bool | None = None,
    threshold: Decimal | float | str | None = None,
    viewer: str | None = None,
) -> dict[str, Any]:
    """Mute (enabled False) or unmute a rule, and/or change its threshold; return its row.
    ValidationError naming the field on bad input; NotFoundError when there is no rule the
    viewer may change."""
    if enabled is not None and not isinstance(enabled, bool):
        raise ValidationError("enabled", f"must be true or false, got {enabled!r}")
    limit = None if threshold is None else _threshold(threshold)
    params = {"id": int(rule_id), "enabled": enabled, "threshold": limit}
    with acting.connection(url, viewer) as conn:
        row = conn.execute(_queries()["update_alert_rule"].psycopg, params).fetchone()
    if row is None:
        raise NotFoundError("alert rule you may change", rule_id)
    return row


def _threshold(threshold: Decimal | float | str) -> Decimal:
    try:
        limit = Decimal(str(threshold))
    except InvalidOperation:
        raise ValidationError("threshold", f"{threshold!r} is not a number") from None
    if not limit.is_finite() or limit < 0:
        raise ValidationError("threshold", f"must be a number >= 0, got {threshold!r}")
    return limit


def alert_history(
    url: str | None = None, *, limit: int = 200, viewer: str | None = None
) -> list[dict[str, Any]]:
    """Past transitions (firing, resolved) of the rules the viewer may read, newest first,
    with their delivery outcome."""
    with acting.connection(url, viewer) as conn:
        return conn.execute(
            _queries()["list_alert_events"].psycopg, {"limit": int(limit)}
        ).fetchall()
