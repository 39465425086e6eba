"""AI Runs Analytics — the Streamlit app (`streamlit run dashboard/app.py`).

The pages live in `views/`, not `pages/`: a `pages/` folder next to the entry script
switches Streamlit to its older file-based navigation, which runs a page without this script.

This entry script runs on every page: it decides who is looking (dashboard/auth.py: OIDC,
a trusted proxy header, or the local admin) and says so, syncs the analytics mirror (at
most every data.SYNC_EVERY_SECONDS, or on "Sync now"), sets the runs that viewer may read
(data.set_scope: Postgres decides), draws the global filters (kept in the URL),
offers auto-refresh, and then runs the page chosen in the navigation.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import streamlit as st

from dashboard import alerts_panel, auth, data, state, ui
from dashboard.safe import md
from ingest.store import horizon
from queries.mirror import discard_mirror, is_damage, sync_mirror

log = logging.getLogger("dashboard")

PAGES_DIR = Path(__file__).resolve().parent / "views"
REFRESH_SECONDS = 30

st.set_page_config(
    page_title="AI Runs Analytics",
    page_icon=":material/monitoring:",
    layout="wide",
    initial_sidebar_state="auto",
)

PAGES = {
    "Analytics": [
        st.Page(PAGES_DIR / "overview.py", title="Overview", icon=":material/dashboard:"),
        st.Page(PAGES_DIR / "cost.py", title="Cost", icon=":material/payments:"),
        st.Page(PAGES_DIR / "performance.py", title="Performance", icon=":material/speed:"),
        st.Page(PAGES_DIR / "compare.py", title="Compare", icon=":material/compare_arrows:"),
    ],
    "Records": [
        st.Page(PAGES_DIR / "runs.py", title="Runs", icon=":material/forum:"),
        st.Page(PAGES_DIR / "task.py", title="Task detail", icon=":material/receipt_long:"),
        st.Page(PAGES_DIR / "export.py", title="Usage export", icon=":material/download:"),
    ],
}
ADMIN_PAGES = {
    "Admin": [
        st.Page(PAGES_DIR / "access.py", title="Access", icon=":material/admin_panel_settings:")
    ]
}

try:
    viewer = auth.resolve(data.database_url())
except Exception as exc:  # no database: say so instead of a traceback
    st.error(
        f"Cannot reach the database: {md(exc)}\n\n"
        "Set DATABASE_URL to a Postgres server, or unset it to use the embedded one."
    )
    st.stop()
auth.remember(viewer)
page = st.navigation({**PAGES, **(ADMIN_PAGES if viewer.role == "admin" else {})})
ui.page_style()
auth.banner(viewer)
if viewer.id is None:
    st.stop()

try:
    mirror = data.sync()
    if mirror.last_error and mirror.version == 0 and is_damage(mirror.last_error):
        # The file is damaged beyond an in-place rebuild: drop this process's connection and
        # the file; the next data.sync() opens a new file and builds it from Postgres.
        log.warning("analytics mirror %s is damaged (%s): recreating it", mirror.path,
                    mirror.last_error)  # fmt: skip
        mirror.con.close()
        discard_mirror(mirror.path)
        st.cache_resource.clear()
        st.cache_data.clear()
        mirror = data.sync()
    data.set_scope()  # after the sync: the viewer's runs are kept per mirror content
    alerts_panel.after_sync(mirror)  # alert rules are evaluated after every sync
    if mirror.last_error and mirror.version == 0:
        log.warning("the first sync of the analytics mirror failed: %s", mirror.last_error)
        raise RuntimeError("the first sync of the analytics mirror failed (see the log)")
    options = data.filter_options()
except Exception as exc:  # no database or no mirror: say so instead of a traceback
    st.error(
        f"Cannot reach the database or the analytics mirror: {md(exc)}\n\n"
        "Set DATABASE_URL to a Postgres server, or unset it to use the embedded one."
    )
    st.stop()

state.sidebar(
    {
        "source_type": options.get("source_types", []),
        "provider": options.get("providers", []),
        "model": options.get("models", []),
        "team": options.get("teams", []),
        "user": options.get("users", []),
        "tag": options.get("tags", []),
        "status": options.get("statuses", []),
        "variant": options.get("variants", []),
        "user_names": options.get("user_names", {}),
    }
)


@st.fragment(run_every=REFRESH_SECONDS)
def _live_refresh() -> None:
    """While auto-refresh is on: sync the mirror and rerun the page when rows came in."""
    before = data.mirror().version
    if data.sync(force=True).version != before:
        st.rerun(scope="app")
    st.caption(f"Live: checked {datetime.now(UTC):%H:%M:%S} UTC, every {REFRESH_SECONDS} s.")


def _sync_now() -> None:
    data.sync(force=True)


with st.sidebar:
    st.divider()
    if st.toggle(
        "Auto-refresh", key="auto_refresh", help=f"Sync new data every {REFRESH_SECONDS} s."
    ):
        _live_refresh()
    facts = data.freshness()
    synced = facts.get("last_sync_at")
    size = (
        f"{ui.plural(facts.get('tasks', 0), 'task')}, {ui.plural(facts.get('runs', 0), 'run')}; "
        if viewer.role == "admin"
        else ""
    )
    st.caption(
        f"Mirror: {size}"
        + (f"synced {synced:%Y-%m-%d %H:%M:%S} UTC." if synced else "never synced.")
    )
    if mirror.last_error:
        log.warning("last sync of the analytics mirror failed: %s", mirror.last_error)
        st.warning(
            "The last sync of the analytics mirror failed (details in the dashboard's log); "
            "figures may be stale. If it keeps failing, restart the dashboard: it rebuilds "
            "the mirror from Postgres.",
            icon=":material/sync_problem:",
        )
    held = facts.get("held_back_by") or []
    if held and viewer.role == "admin":  # other sessions' users and queries: admins only
        st.warning(
            "\n".join(
                [
                    md(horizon.held_back_summary(held)) + ":",
                    *(f"- {md(holder.describe())}" for holder in held),
                ]
            ),
            icon=":material/hourglass_top:",
        )
    st.button("Sync now", on_click=_sync_now, icon=":material/sync:", width="stretch")

try:
    page.run()
except duckdb.Error as exc:  # a damaged mirror: say so, check and rebuild it, no traceback
    log.warning("the analytics mirror failed a read (%s): checking it", exc)
    st.error(
        "The analytics mirror could not be read, so this page cannot be shown. It is being "
        "checked and rebuilt from Postgres; reload the page in a moment.",
        icon=":material/sync_problem:",
    )
    try:
        sync_mirror(mirror.url, con=mirror.con, verify=True)
    except Exception as rebuild_error:
        log.warning("the mirror could not be rebuilt in place: %s", rebuild_error)
    st.cache_data.clear()
