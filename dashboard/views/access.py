"""Access (admins only; app.py shows this page to admins, and row-level security answers
an empty audit log and refuses every change to anyone else): people and their roles, the
audit log, and the redaction rules (docs/access.md)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, formatting, ui
from dashboard.safe import md
from ingest.errors import AccessDeniedError, ValidationError
from ingest.store.vocabulary import USER_ROLES

st.title("Access")
st.caption(
    "A signed-in person sees nothing until they are here. Members see their own runs and "
    "runs shared with them; managers also read their team's; admins see and change all."
)

people, audit, rules = st.tabs(["People", "Audit log", "Redaction"])

with people:
    users = pd.DataFrame(data.admin_call("list_users"))
    ui.table(users, key="access_people", filename="people.csv")
    with st.form("access_person", border=True):
        st.subheader("Add a person or change one")
        c1, c2 = st.columns(2)
        person = c1.text_input("Id", key="access_id")
        email = c2.text_input("E-mail (what sign-in matches)", key="access_email")
        name = c1.text_input("Display name", key="access_name")
        team = c2.text_input("Team", key="access_team")
        role = st.radio("Role", USER_ROLES, horizontal=True, key="access_role")
        if st.form_submit_button("Save", icon=":material/person_add:", key="access_save"):
            try:
                data.admin_call(
                    "upsert_user", person, name or None, email or None, team or None, role
                )
                st.toast(f"Saved {md(person)}", icon=":material/check:")
            except (ValidationError, AccessDeniedError) as exc:
                st.error(md(exc))

with audit:
    entries = pd.DataFrame(data.admin_call("audit_log", 500))
    if entries.empty:
        st.info("Nothing recorded yet: deletes, restores, shares, role changes and purges "
                "appear here.")  # fmt: skip
    else:
        entries = formatting.audit_frame(entries)  # ids as text, details as fields
        ui.table(
            entries,
            key="access_audit",
            filename="audit.csv",
            narrow=["at", "actor", "action", "subject", "detail"],
        )

with rules:
    st.caption(
        "Enabled rules mask matches in messages, request and response payloads and response "
        "text before anything is stored, through every way in; masks are counted per task."
    )
    for rule in data.admin_call("redaction_rules"):
        on = st.toggle(
            f"{rule['name']}: `{rule['pattern'][:80]}` → {rule['replacement']}",
            value=rule["enabled"],
            key=f"redaction_{rule['name']}",
        )
        if on != rule["enabled"]:
            data.admin_call("set_redaction_rule", rule["name"], enabled=on)
            st.rerun()
    with st.form("redaction_add", border=True):
        name = st.text_input("Rule name (a-z, 0-9, _ or -)", key="redaction_name")
        pattern = st.text_input("Pattern (Python regular expression)", key="redaction_pattern")
        replacement = st.text_input("Replacement", value="[REDACTED]", key="redaction_repl")
        if st.form_submit_button("Add rule", key="redaction_go"):
            try:
                data.admin_call(
                    "set_redaction_rule", name, pattern=pattern, replacement=replacement
                )
                st.rerun()
            except (ValidationError, AccessDeniedError) as exc:
                st.error(md(exc))
