"""Who is looking at the dashboard (docs/access.md). Decided once per script run, before
any data is read; every read then goes through Postgres as that viewer.

Three ways, the first configured wins:

1. OpenID Connect: an `[auth]` section in `.streamlit/secrets.toml` (redirect_uri,
   cookie_secret, client_id, client_secret, server_metadata_url). The person signs in
   with `st.login()`; the viewer is the ai_users row whose email is `st.user.email`.
2. A trusted header set by an authenticating proxy: AI_RUNS_TRUSTED_HEADER names it (for
   example X-Forwarded-Email). Its value is an e-mail address (matched to ai_users.email)
   or an ai_users id. Only safe when the proxy is the only way to reach the dashboard.
3. Neither: one local admin (LOCAL_ADMIN_ID, role admin), only for a browser on the same
   machine; the dashboard says so on every page and refuses any other address.

A signed-in person who is not in ai_users sees nothing until an admin adds them.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

import streamlit as st

from ingest.access import viewer as ingest_viewer

TRUSTED_HEADER_ENV = "AI_RUNS_TRUSTED_HEADER"
LOCAL_ADMIN_ID = "local-admin"
_SESSION_KEY = "_viewer"
# Session-state key: the database URL whose local admin this session made sure of. Per
# session, not per process: a database recreated under the same URL gets its admin back.
_LOCAL_ADMIN_READY = "_auth_local_admin_ready"


@dataclass(frozen=True)
class Viewer:
    """The person looking: `id` is an ai_users id (None when not known to the database),
    `label` what to show, `mode` "oidc", "header" or "local", `role` from ai_users."""

    id: str | None
    label: str
    mode: str
    role: str | None = None


def oidc_configured() -> bool:
    """True when .streamlit/secrets.toml has an [auth] section (st.login can work)."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False


def trusted_header() -> str | None:
    """The header named by AI_RUNS_TRUSTED_HEADER, or None when unset."""
    value = os.environ.get(TRUSTED_HEADER_ENV, "").strip()
    return value or None


def request_headers() -> Mapping[str, str]:
    """The HTTP headers of this session's request (st.context.headers)."""
    return st.context.headers


def _is_loopback(address: str | None) -> bool:
    if not isinstance(address, str) or not address:
        return True  # Streamlit says None for a localhost client (AppTest: a stand-in)
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return address == "localhost"


def resolve(url: str) -> Viewer:
    """The viewer of this session, or st.stop() after saying why there is none (not signed
    in, no header from the proxy, not on this machine). Remembered in the session."""
    if oidc_configured():
        if not st.user.get("is_logged_in"):
            st.title("AI Runs Analytics")
            st.info("Sign in to see the runs you may read.", icon=":material/lock:")
            st.button("Sign in", on_click=st.login, icon=":material/login:", key="auth_login")
            st.stop()
        email = str(st.user.get("email") or "")
        return _known(url, email, "oidc", email)
    header = trusted_header()
    if header:
        value = (request_headers().get(header) or "").strip()
        if not value:
            st.error(f"No {header} header came with this request: the dashboard is configured "
                     "to sit behind an authenticating proxy that names the viewer.")  # fmt: skip
            st.stop()
        return _known(url, value, "header", value)
    if not _is_loopback(st.context.ip_address):
        st.error("Without sign-in (OIDC or a trusted proxy header) the dashboard serves only "
                 "a browser on this machine (localhost).")  # fmt: skip
        st.stop()
    if st.session_state.get(_LOCAL_ADMIN_READY) != url:  # once per session, not per page load
        ingest_viewer.ensure_local_admin(url, LOCAL_ADMIN_ID)
        st.session_state[_LOCAL_ADMIN_READY] = url
    return Viewer(LOCAL_ADMIN_ID, "local admin", "local", "admin")


def _known(url: str, who: str, mode: str, label: str) -> Viewer:
    # The local admin exists for a browser on this machine without sign-in; a proxy header
    # or an identity provider that names it signs in as nobody (docs/access.md).
    is_local_admin = who.strip().casefold() == LOCAL_ADMIN_ID
    person = None if is_local_admin else ingest_viewer.find_person(url, who)
    if person is None:
        return Viewer(None, label, mode)
    return Viewer(person["id"], f"{person['display_name'] or person['id']} ({label})", mode,
                  person["role"])  # fmt: skip


def remember(who: Viewer) -> None:
    st.session_state[_SESSION_KEY] = who


def current() -> Viewer:
    """The viewer resolved for this run (app.py calls resolve first); pages call this."""
    who = st.session_state.get(_SESSION_KEY)
    if who is None:
        raise RuntimeError("no viewer: dashboard/app.py resolves one before any page runs")
    return who


def banner(who: Viewer) -> None:
    """One line on every page saying who is looking and with what rights."""
    if who.mode == "local":
        st.warning(
            "Local mode: no sign-in is configured, so this dashboard runs as a single local "
            "admin that sees and may change everything, and answers only on this machine. "
            "Configure OIDC or a trusted proxy header to share it (README: Access).",
            icon=":material/shield_person:",
        )
    elif who.id is None:
        st.error(
            f"Signed in as {who.label}, who is not yet a person in this database: you see "
            "nothing until an admin adds you.",
            icon=":material/person_off:",
        )
    else:
        st.caption(f"Signed in as {who.label} · role {who.role}")
