"""Changing one run from its page: rename, tags, archive, delete, restore and sharing.

Shown only to those whose rights allow it (the run page asks `data.run_rights`); every
change goes through `data.change_run`, so Postgres (row-level security, docs/access.md)
still decides, and a refusal is shown as an error naming why.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import data, ui
from dashboard.safe import md
from ingest.errors import AccessDeniedError, NotFoundError, ValidationError


def apply_change(action: str, *args: Any, done: str, **kwargs: Any) -> Any:
    """data.change_run(action, ...): a toast saying `done` (plain text) on success; on a
    refusal (bad input, unknown run, no right) an error naming why, and None."""
    try:
        result = data.change_run(action, *args, **kwargs)
    except (ValidationError, NotFoundError, AccessDeniedError) as exc:
        st.error(md(exc))
        return None
    st.toast(md(done), icon=":material/check:")
    return result


def manage_panel(run: dict) -> None:
    """Rename, tags, archive, delete, restore: shown only to those who may edit (the star
    sits beside the run's numbers, for the same people)."""
    m1, m2 = st.columns(2)
    with m1.form("run_rename", border=False):
        name = st.text_input("Name", value=run["name"], key="run_new_name")
        if st.form_submit_button("Rename", key="run_rename"):
            apply_change("rename_run", run["id"], name, done="Renamed")
            st.rerun()
    with m2.form("run_tags", border=False):
        known = data.filter_options().get("tags", [])
        options = sorted(set(run.get("tags") or []) | set(known))
        tags = st.multiselect(
            "Tags",
            options,
            default=run.get("tags") or [],
            accept_new_options=True,
            key="run_new_tags",
        )
        if st.form_submit_button("Save tags", key="run_save_tags"):
            apply_change("set_tags", run["id"], tags, done="Tags saved")
            st.rerun()
    b2, b3, b4 = st.columns(3)
    if b2.button(
        "Archive",
        disabled=run["status"] == "archived",
        icon=":material/archive:",
        key="run_archive",
    ):
        apply_change("archive_run", run["id"], done="Archived")
        st.rerun()
    if b3.button(
        "Delete",
        disabled=run["status"] == "deleted",
        icon=":material/delete:",
        key="run_delete",
    ):
        apply_change("delete_run", run["id"], done="Deleted (restore any time)")
        st.rerun()
    if b4.button(
        "Restore",
        disabled=run["status"] == "active",
        icon=":material/restore:",
        key="run_restore",
    ):
        apply_change("restore_run", run["id"], done="Restored")
        st.rerun()


def share_panel(run: dict) -> None:
    """Who the run is shared with, and share/unshare (its owner and admins only)."""
    shares = data.tracker().run_shares(str(run["id"]))
    for share in shares:
        c1, c2 = st.columns([3, 1])
        c1.write(f"{md(ui.user_label(share['user_id']))} · {share['permission']}")
        if c2.button("Unshare", key=f"unshare_{share['user_id']}", icon=":material/link_off:"):
            apply_change("unshare_run", run["id"], share["user_id"], done="No longer shared")
            st.rerun()
    if not shares:
        st.caption("Not shared with anyone.")
    with st.form("run_share", border=False):
        who = st.text_input("Share with (person id)", key="run_share_user")
        permission = st.radio("Permission", ("view", "edit"), horizontal=True, key="run_share_perm")
        if st.form_submit_button("Share", icon=":material/share:", key="run_share_go"):
            apply_change("share_run", run["id"], who, permission, done=f"Shared with {who}")
            st.rerun()
