"""Alert evaluation: each rule's metric over the mirror, transitions recorded once in
Postgres, events delivered to webhooks (docs/spend-control.md; rules: ingest.spend.alert_rules).

`check_alerts` is run after every mirror sync (the dashboard and `ai-runs sync` call it)
and by `ai-runs alerts check` (for cron). For each enabled rule it computes the value,
decides firing (value >= threshold, with enough tasks for the window kinds), and when that
differs from the stored state it records one event (firing or resolved) under the state
row's lock, so concurrent checks never record a transition twice. Then every pending
event is delivered once (queries.webhooks: retried up to a bound, then recorded failed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from psycopg.rows import dict_row

from ingest.spend import alert_rules
from ingest.store import database
from queries import access, budgets, sqltext, webhooks
from queries.engine import filter_params
from queries.filters import Filters

log = logging.getLogger(__name__)

# kind -> (column of alert_window_metrics, unit for messages, the count the value is
# computed from: p95 over completed tasks, the failure rate over finished ones)
WINDOW_METRICS = {
    "ttft_p95": ("ttft_p95", "ms", "completed"),
    "total_time_p95": ("total_time_p95", "ms", "completed"),
    "failure_rate": ("failure_rate", "fraction", "finished"),
}
UNITS = {"budget_spend": "fraction", "budget_forecast": "fraction", "ttft_p95": "ms",
         "total_time_p95": "ms", "failure_rate": "fraction"}  # fmt: skip


def format_value(kind: str, value: Decimal | float | None) -> str:
    """A rule's value or threshold as the app shows numbers: fractions as percent ("80%",
    "190.7%"), milliseconds with separators ("5,000 ms"); "n/a" for None. Never "5E+3"."""
    if value is None:
        return "n/a"
    number = float(value)
    if UNITS.get(kind) == "ms":
        return f"{number:,.0f} ms"
    percent = f"{number:.1%}"
    return percent.replace(".0%", "%")


@dataclass
class CheckResult:
    """What one check did: rules evaluated, transitions recorded, deliveries made."""

    evaluated: int = 0
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    delivered: int = 0
    failed: int = 0
    values: dict[str, float | None] = field(default_factory=dict)


def scope_text(kind: str, value: str | None) -> str:
    return "all" if kind == "all" else f"{kind}={value}"


def rule_value(con: Any, rule: dict[str, Any], now: datetime) -> tuple[float | None, str]:
    """(value, description) of a rule's metric now; value None when there is not enough
    data (too few tasks in the window)."""
    if rule["kind"] in alert_rules.BUDGET_KINDS:
        budget = {
            "scope_kind": rule["budget_scope_kind"],
            "scope_value": rule["budget_scope_value"],
            "period": rule["budget_period"],
            "amount": rule["budget_amount"],
        }
        result = budgets.budget_forecast(con, budget, today=now.date())
        scope = scope_text(budget["scope_kind"], budget["scope_value"])
        amount = float(budget["amount"])
        if rule["kind"] == "budget_spend":
            spent = result["month_to_date"]
            text = f"{scope} {budget['period']} spend ${spent:,.2f} of budget ${amount:,.2f}"
            return result["used"], text
        ahead = result["forecast"]
        text = f"{scope} {budget['period']}-end forecast ${ahead:,.2f} vs budget ${amount:,.2f}"
        return result["forecast_share"], text
    column, _, basis = WINDOW_METRICS[rule["kind"]]
    scope = budgets.Scope(rule["scope_kind"], rule["scope_value"])
    window = timedelta(minutes=rule["window_minutes"])
    filters = Filters(
        start=now - window,
        end=now + timedelta(microseconds=1),
        **_scope_fields(scope),
    )
    metrics = window_metrics(con, filters)
    value = metrics[column]
    counted = int(metrics[basis])
    enough = counted >= rule["min_tasks"]
    shown = format_value(rule["kind"], value)
    tasks = f"{counted:,} {basis} task" + ("" if counted == 1 else "s")
    text = (
        f"{scope_text(scope.kind, scope.value)} {rule['kind']} over the last "
        f"{rule['window_minutes']} min = {shown} (of {tasks})"
    )
    return (float(value) if value is not None and enough else None), text


def _scope_fields(scope: budgets.Scope) -> dict[str, tuple[str, ...]]:
    if scope.kind == "all":
        return {}
    field_name = {kind: name for name, kind in budgets.SCOPE_FIELDS.items()}[scope.kind]
    return {field_name: (scope.value,)}


def window_metrics(con: Any, filters: Filters) -> dict[str, Any]:
    """alert_window_metrics over the mirror for `filters`: tasks, finished, failed,
    failure_rate, ttft_p95, total_time_p95 (see queries/sql/alerts.sql)."""
    params = filter_params(filters)
    query = sqltext.render("duckdb", "alert_window_metrics", **access.restriction(con, params))
    values = {key: params[key] for key in query.params}
    cursor = con.execute(query.duckdb, values)
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def check_alerts(
    con: Any,
    url: str | None = None,
    *,
    now: datetime | None = None,
    deliver: bool = True,
    attempts: int = 3,
    backoff_seconds: float = 0.5,
    timeout_seconds: float = 5.0,
) -> CheckResult:
    """Evaluate every enabled rule against the mirror `con`, record transitions, and (with
    `deliver`) deliver pending events. See the module docstring."""
    now = now or datetime.now(UTC)
    url = database.database_url(url)
    result = CheckResult()
    for rule in alert_rules.list_rules(url):
        if not rule["enabled"]:
            continue
        value, text = rule_value(con, rule, now)
        result.evaluated += 1
        result.values[rule["name"]] = value
        firing = value is not None and Decimal(str(value)) >= rule["threshold"]
        event = _record(url, rule, value, firing, text)
        if event == "firing":
            result.fired.append(rule["name"])
        elif event == "resolved":
            result.resolved.append(rule["name"])
    if deliver:
        delivered, failed = deliver_pending(
            url,
            attempts=attempts,
            backoff_seconds=backoff_seconds,
            timeout_seconds=timeout_seconds,
        )
        result.delivered, result.failed = delivered, failed
    return result


def _record(url: str, rule: dict, value: float | None, firing: bool, text: str) -> str | None:
    """Save the state; record an event when it changed. Returns the event or None."""
    sql = sqltext.named("postgres")
    with database.connect(url) as conn, conn.transaction():
        conn.execute(sql["ensure_alert_state"].psycopg, {"rule_id": rule["id"]})
        state = conn.execute(sql["lock_alert_state"].psycopg, {"rule_id": rule["id"]}).fetchone()
        was_firing = bool(state and state["firing"])
        stored = None if value is None else Decimal(str(round(value, 6)))
        conn.execute(
            sql["save_alert_state"].psycopg,
            {"rule_id": rule["id"], "firing": firing, "value": stored},
        )
        if firing == was_firing:
            return None
        event = "firing" if firing else "resolved"
        threshold = rule["threshold"]
        limit = format_value(rule["kind"], threshold)
        message = f"[{event.upper()}] {rule['name']}: {text} (threshold {limit})"
        conn.execute(
            sql["insert_alert_event"].psycopg,
            {
                "rule_id": rule["id"],
                "event": event,
                "value": stored,
                "threshold": threshold,
                "message": message,
                "delivery": "pending" if rule["webhook_url"] else "no_webhook",
            },
        )
    log.info("alert %s: %s", event, message)
    return event


def deliver_pending(
    url: str | None = None,
    *,
    attempts: int = 3,
    backoff_seconds: float = 0.5,
    timeout_seconds: float = 5.0,
    limit: int = 100,
) -> tuple[int, int]:
    """Deliver up to `limit` pending events once each; return (delivered, failed). An event
    is locked while it is sent (SKIP LOCKED), so two checkers never send the same one."""
    sql = sqltext.named("postgres")
    delivered = failed = 0
    rules = {r["id"]: r for r in alert_rules.list_rules(url)}
    for _ in range(limit):
        # One event per transaction: its outcome is committed before the next is sent.
        with database.connect(url) as conn, conn.transaction():
            with conn.cursor(row_factory=dict_row) as cur:
                event = cur.execute(sql["claim_pending_events"].psycopg, {"limit": 1}).fetchone()
            if event is None:
                break
            outcome = webhooks.post_json(
                event["webhook_url"],
                webhooks.slack_body(event, _rule_scope(rules.get(event["rule_id"], {}))),
                key=f"ai-runs-alert-{event['id']}",
                attempts=attempts,
                backoff_seconds=backoff_seconds,
                timeout_seconds=timeout_seconds,
            )
            conn.execute(
                sql["record_delivery"].psycopg,
                {
                    "id": event["id"],
                    "delivery": "delivered" if outcome.delivered else "failed",
                    "attempts": outcome.attempts,
                    "last_error": outcome.error,
                },
            )
        if outcome.delivered:
            delivered += 1
        else:
            failed += 1
            log.warning(
                "alert event %s not delivered after %d attempts: %s",
                event["id"],
                outcome.attempts,
                outcome.error,
            )
    return delivered, failed


def _rule_scope(rule: dict[str, Any]) -> str:
    if rule.get("budget_id"):
        return scope_text(rule["budget_scope_kind"], rule["budget_scope_value"])
    return scope_text(rule.get("scope_kind", "all"), rule.get("scope_value"))


def firing_alerts(url: str | None = None) -> list[dict[str, Any]]:
    """The rules firing now (rows of ingest.spend.alert_rules.list_rules)."""
    return [rule for rule in alert_rules.list_rules(url) if rule["firing"]]


def send_test_message(rule: dict[str, Any], *, now: datetime | None = None) -> webhooks.Delivery:
    """Send one test message for `rule` (a row of ingest.spend.alert_rules.list_rules) to
    its webhook, once (no retries), recording nothing: whether the receiver answers 2xx, and
    the error otherwise. ValueError when the rule has no webhook."""
    if not rule.get("webhook_url"):
        raise ValueError(f"alert rule {rule.get('name')!r} has no webhook to test")
    now = now or datetime.now(UTC)
    event = {
        "id": 0,
        "rule_name": rule["name"],
        "kind": rule["kind"],
        "event": "test",
        "value": None,
        "threshold": rule["threshold"],
        "created_at": now,
        "message": f"[TEST] {rule['name']}: a test of this alert rule's webhook "
        f"(threshold {format_value(rule['kind'], rule['threshold'])})",
    }
    return webhooks.post_json(
        rule["webhook_url"],
        webhooks.slack_body(event, _rule_scope(rule)),
        key=f"ai-runs-alert-test-{rule['id']}-{now.timestamp():.0f}",
        attempts=1,
        timeout_seconds=5.0,
    )
