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
from ingest.spend import alert_rules

log = logging.getLogger(__name__)
CHECK_EVERY_SECONDS = 60  # also re-check unchanged data this often (budgets may change)
_checked: dict[str, tuple[int, float]] = {}  # mirror path -> (data version, monotonic time)
_lock = threading.Lock()


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


def show(url: str) -> None:
    """Every firing alert, and the history of past ones, of the rules the viewer may read
    (those of scopes whose runs they read entirely: row-level security, migration 0018)."""
    st.subheader("Alerts")
    who = auth.current().id or ""  # never None: None would read as the owner
    rules = alert_rules.list_rules(url, viewer=who)
    firing = [rule for rule in rules if rule["firing"]]
    if not rules:
        st.caption(
            "No alert rules yet: `ai-runs alerts add --kind budget_forecast --budget ID "
            "--threshold 1 --webhook URL` (see docs/spend-control.md)."
        )
        return
    if not firing:
        st.success(f"No alert is firing ({len(rules)} rule(s) watched).", icon=":material/check:")
    for rule in firing:
        since = f" since {rule['since']:%Y-%m-%d %H:%M} UTC" if rule["since"] else ""
        value = "" if rule["value"] is None else f" (value {rule['value'].normalize()})"
        st.error(
            f"**{md(rule['name'])}** is firing{since}: {md(rule['kind'])} >= "
            f"{rule['threshold'].normalize()}{value}",
            icon=":material/notifications_active:",
        )
    with st.expander("Alert history"):
        history = pd.DataFrame(alert_rules.alert_history(url, viewer=who))
        if history.empty:
            st.caption("Nothing has fired yet.")
        else:
            ui.table(history, key="alert_history", filename="alert_history")
