"""Alerts in the dashboard (docs/spend-control.md): the callback the sync caller runs after
each mirror sync, and the Overview's firing alerts and history."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import auth, ui
from dashboard.safe import md
from ingest.errors import IngestError
from ingest.spend import alert_rules
from ingest.spend import budgets as budget_store
from queries import alerts

log = logging.getLogger(__name__)
CHECK_EVERY_SECONDS = 60  # also re-check unchanged data this often (budgets may change)
_checked: dict[str, tuple[int, float]] = {}  # mirror path -> (data version, monotonic time)
_lock = threading.Lock()
# The columns of the history and rules tables that fit a 900 px screen (ui.table).
HISTORY_NARROW = ["created_at", "rule_name", "event", "value", "threshold", "delivery"]
RULES_NARROW = ["name", "kind", "threshold", "scope", "muted", "firing"]


def after_sync(mirror: Any) -> None:
    """Evaluate the alert rules in the background after a sync brought new data (or at
    most every CHECK_EVERY_SECONDS): a slow or down webhook never delays a page."""
    now = time.monotonic()
    with _lock:
        version, at = _checked.get(mirror.path, (-1, 0.0))
        if mirror.version == version and now - at < CHECK_EVERY_SECONDS:
            return
        _checked[mirror.path] = (mirror.version, now)
    threading.Thread(target=_check, args=(mirror,), name="ai-runs-alerts", daemon=True).start()


def _check(mirror: Any) -> None:
    from queries.alerts import check_alerts

    cursor = mirror.con.cursor()
    try:
        check_alerts(cursor, mirror.url)
    except Exception:  # noqa: BLE001 - alerts must never break the dashboard
        log.exception("alert check after sync failed")
    finally:
        cursor.close()


# What a member is told: they read the rules of their own user scope and change none
# (migration 0018: only an admin, or the manager of a team, sets rules of a scope).
WHO_SETS_RULES = (
    "Alert rules are set by your team's manager or an admin: ask them to add, change or mute one."
)
MEMBER_NOTE = "You see the alert rules that watch your own runs. " + WHO_SETS_RULES


def show(url: str) -> None:
    """Every firing alert, and the history of past ones, of the rules the viewer may read
    (those of scopes whose runs they read entirely: row-level security, migration 0018);
    for managers and admins, the rules themselves: create, mute, change, test, remove;
    for members, the rules of their own runs to read, and who sets them (MEMBER_NOTE)."""
    st.subheader("Alerts")
    who = auth.current().id or ""  # never None: None would read as the owner
    rules = alert_rules.list_rules(url, viewer=who)
    firing = [rule for rule in rules if rule["firing"]]
    if not rules:
        st.caption(
            "No alert rule yet: add one below."
            if _manages()
            else "No alert rule watches your own runs yet. " + WHO_SETS_RULES
        )
    elif not firing:
        watched = f"{len(rules)} rule" + ("" if len(rules) == 1 else "s")
        st.success(f"No alert is firing ({watched} watched).", icon=":material/check:")
    for rule in firing:
        since = f" since {rule['since']:%Y-%m-%d %H:%M} UTC" if rule["since"] else ""
        now = alerts.format_value(rule["kind"], rule["value"])
        value = "" if rule["value"] is None else f" (now {now})"
        st.error(
            f"**{md(rule['name'])}** is firing{since}: {md(rule['kind'])} >= "
            f"{alerts.format_value(rule['kind'], rule['threshold'])}{value}",
            icon=":material/notifications_active:",
        )
    if rules or _manages():
        _history_and_rules(url, who, rules)


# A fragment of lazy expanders: the history and the rules (with their forms) are read and
# drawn only while open, and opening one reruns this part only (docs/design.md, "Pages").
@st.fragment
def _history_and_rules(url: str, who: str, rules: list[dict[str, Any]]) -> None:
    if rules:
        ui.lazy_expander("Alert history", "alert_history_open", lambda: _history_table(url, who))
    ui.lazy_expander(
        "Alert rules",
        "alert_rules_open",
        lambda: _rules_and_forms(url, who, rules),
        icon=":material/notifications:",
    )


def _rules_and_forms(url: str, who: str, rules: list[dict[str, Any]]) -> None:
    _rules_table(rules)
    if not _manages():
        st.caption(MEMBER_NOTE)
        return
    _add_rule_form(url, who)
    if rules:
        _change_rule(url, who, rules)


def _history_table(url: str, who: str) -> None:
    history = pd.DataFrame(alert_rules.alert_history(url, viewer=who))
    if history.empty:
        st.caption("Nothing has fired yet.")
        return
    ui.table(_readable(history), key="alert_history", filename="alert_history",
             narrow=HISTORY_NARROW)  # fmt: skip


def _manages() -> bool:
    return auth.current().role in ("manager", "admin")


def _readable(frame: pd.DataFrame) -> pd.DataFrame:
    """Values and thresholds formatted by their rule's kind (percent, ms), as text."""
    out = frame.copy()
    for column in ("value", "threshold"):
        if column in out.columns:
            pairs = zip(out["kind"], out[column], strict=True)
            out[column] = [alerts.format_value(kind, value) for kind, value in pairs]
    return out


def _rules_table(rules: list[dict[str, Any]]) -> None:
    if not rules:
        return
    rows = [
        {
            "id": rule["id"],
            "name": rule["name"],
            "kind": rule["kind"],
            "threshold": alerts.format_value(rule["kind"], rule["threshold"]),
            "scope": _scope_label(rule),
            "window_minutes": None if rule["budget_id"] else rule["window_minutes"],
            "webhook_url": rule["webhook_url"] or "",
            "muted": not rule["enabled"],
            "firing": rule["firing"],
        }
        for rule in rules
    ]
    ui.table(pd.DataFrame(rows), key="alert_rules", filename="alert_rules", narrow=RULES_NARROW)


def _scope_label(rule: dict[str, Any]) -> str:
    if rule["budget_id"]:
        value = rule["budget_scope_value"]
        scope = "everything" if value is None else f"{rule['budget_scope_kind']} {value}"
        return f"budget {rule['budget_id']}: {scope} per {rule['budget_period']}"
    value = rule["scope_value"]
    return "everything" if value is None else f"{rule['scope_kind']} {value}"


# Threshold as entered on the page -> as stored: percent -> fraction, ms as they are.
_ENTERED = {"fraction": ("Threshold (%)", 100.0), "ms": ("Threshold (ms)", 1.0)}


def _add_rule_form(url: str, who: str) -> None:
    """A new rule of a scope the viewer manages (Postgres refuses the others)."""
    st.markdown("**Add a rule**")
    cols = st.columns(3)
    name = cols[0].text_input("Rule name", key="alert_new_name")
    kind = cols[1].selectbox(
        "Kind", alert_rules.KINDS, index=None, placeholder="Choose a kind", key="alert_new_kind"
    )
    label, scale = _ENTERED[alerts.UNITS.get(kind or "", "fraction")]
    entered = cols[2].number_input(label, min_value=0.0, value=None, key="alert_new_threshold")
    where: dict[str, Any] = {}
    if kind in alert_rules.BUDGET_KINDS:
        readable = {
            f"{b['id']}: {b['scope_kind']} {b['scope_value'] or ''} per {b['period']}": b["id"]
            for b in budget_store.list_budgets(url, viewer=who)
        }
        picked = st.selectbox("Budget", list(readable), index=None, key="alert_new_budget")
        where["budget_id"] = readable.get(picked)
    elif kind is not None:
        left, mid, right, last = st.columns(4)
        # Only the scopes the viewer may set (a manager: their team and its people).
        settable = budget_store.settable_scopes(url, viewer=who)
        kinds = budget_store.SCOPE_KINDS if settable is None else list(settable)
        where["scope_kind"] = left.selectbox("Scope", kinds, key="alert_new_scope_kind")
        if settable is None:
            where["scope_value"] = mid.text_input("Scope value", key="alert_new_scope_value")
        else:
            where["scope_value"] = mid.selectbox(
                "Scope value", settable.get(where["scope_kind"], []), key="alert_new_scope_value"
            )
        where["window_minutes"] = int(
            right.number_input("Window (min)", min_value=1, value=60, key="alert_new_window")
        )
        where["min_tasks"] = int(
            last.number_input("At least (tasks)", min_value=1, value=1, key="alert_new_min")
        )
    webhook = st.text_input("Webhook URL (Slack-compatible; empty = none)", key="alert_new_hook")
    if st.button("Add rule", key="alert_add", icon=":material/add_alert:"):
        threshold = None if entered is None else entered / scale
        added = _attempt(
            alert_rules.add_rule,
            url,
            name=name,
            kind=kind or "",
            threshold=threshold if threshold is not None else "",
            webhook_url=webhook.strip() or None,
            viewer=who,
            **where,
        )
        if added is not None:
            st.rerun()


def _change_rule(url: str, who: str, rules: list[dict[str, Any]]) -> None:
    """Mute or unmute, change the threshold, send a test message, or remove one rule."""
    st.markdown("**Change a rule**")
    by_label = {f"{r['id']}: {r['name']}": r for r in rules}
    picked = st.selectbox("Rule", list(by_label), key="alert_pick")
    rule = by_label[picked]
    label, scale = _ENTERED[alerts.UNITS[rule["kind"]]]
    cols = st.columns([2, 1, 1, 1, 1], vertical_alignment="bottom")
    entered = cols[0].number_input(
        label,
        min_value=0.0,
        value=float(rule["threshold"]) * scale,
        key=f"alert_threshold_{rule['id']}",
    )
    changes = {}
    if cols[1].button("Save", key="alert_save", icon=":material/save:"):
        changes = {"threshold": entered / scale}
    mute = "Unmute" if not rule["enabled"] else "Mute"
    if cols[2].button(mute, key="alert_mute", icon=":material/notifications_off:"):
        changes = {"enabled": not rule["enabled"]}
    test = cols[3].button(
        "Send a test", key="alert_test", icon=":material/send:", disabled=not rule["webhook_url"]
    )
    if test:
        outcome = alerts.send_test_message(rule)
        if outcome.delivered:
            st.success(f"The webhook of {md(rule['name'])} answered: test delivered.")
        else:
            st.error(f"The test to {md(rule['webhook_url'])} failed: {md(outcome.error)}")
    done = None
    if changes:
        done = _attempt(alert_rules.update_rule, url, rule_id=rule["id"], viewer=who, **changes)
    if cols[4].button("Remove", key="alert_remove", icon=":material/delete:"):
        done = _attempt(alert_rules.remove_rule, url, rule_id=rule["id"], viewer=who)
    if done is not None:
        st.rerun()


def _attempt(write: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a change; a refusal (bad input, no right, missing) is shown naming why."""
    try:
        return write(*args, **kwargs)
    except IngestError as exc:
        st.error(md(exc))
        return None
