"""The sidebar's list filters (source type, provider, model, team, user, tag, task status,
variant): kept in the URL, drawn only while their panel is open.

Eight multiselects were as much work for the browser as a small page on every page load, so
they sit in a lazy expander inside a fragment (docs/design.md, "Pages"): closed, the panel
sends the browser its label and one line naming the filters that are set; opening it reruns
the panel only; a changed filter reruns the whole page.

A link carries the filters as before, one repeated query parameter per filter
(`?provider=openai&provider=anthropic&status=failed`; users as "Name · id", and a link may
name them by id). Within a session the chosen values are also kept in session state, so a
page switch, which drops the query string, keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from dashboard import ui
from dashboard.safe import md
from ingest.store.vocabulary import SOURCE_TYPES, TASK_STATUSES

# URL key -> (Filters field, label), in the panel's order.
LIST_FILTERS = {
    "source_type": ("source_types", "Source type"),
    "provider": ("providers", "Provider"),
    "model": ("models", "Model"),
    "team": ("teams", "Team"),
    "user": ("users", "User"),
    "tag": ("tags", "Tag"),
    "status": ("statuses", "Task status"),
    "variant": ("variants", "Variant"),
}
FIXED_CHOICES = {"source_type": SOURCE_TYPES, "status": TASK_STATUSES}
PANEL_KEY = "list_filters_open"
_CHOSEN = "_list_filters_chosen"  # URL key -> values, the session's copy of the URL's
_CHANGED = "_list_filters_changed"
_OPTIONS = "_list_filters_options"  # the choices of the last full run, for the panel


def choices(key: str, options: Mapping[str, Any]) -> list[str]:
    """The values filter `key` offers: fixed for source type and status, else the mirror's."""
    return list(FIXED_CHOICES.get(key) or options.get(key) or ())


def user_choice(user_id: str, names: Mapping[str, str]) -> str:
    """How the user filter lists a user: "Display Name · user-0041" (the id alone when the
    user has no display name), so typing a name or an id finds them."""
    name = names.get(str(user_id))
    return f"{name} · {user_id}" if name else str(user_id)


def chosen(options: Mapping[str, Any]) -> dict[str, list[str]]:
    """The values chosen per URL key, among those offered: the URL's where it names the
    filter, else the session's (a page switch drops the query string; the URL gets them
    back). `options` as for dashboard.state.sidebar."""
    st.session_state[_OPTIONS] = options
    kept = st.session_state.setdefault(_CHOSEN, {})
    names = dict(options.get("user_names") or {})
    picked = {}
    for key in LIST_FILTERS:
        offered = choices(key, options)
        if key in st.query_params:
            values = _from_url(key, offered, names)
        else:
            values = [value for value in kept.get(key, ()) if value in offered]
        kept[key] = values
        _to_url(key, values, names)
        picked[key] = values
    return picked


def _from_url(key: str, offered: list[str], names: Mapping[str, str]) -> list[str]:
    """The URL's values of filter `key` that are offered (users by id or by their label)."""
    linked = st.query_params.get_all(key)
    if key == "user":
        ids = {user_choice(user_id, names): user_id for user_id in offered}
        linked = [ids.get(value, value) for value in linked]
    return [value for value in dict.fromkeys(linked) if value in offered]


def _to_url(key: str, values: list[str], names: Mapping[str, str]) -> None:
    """Write filter `key` into the URL (left out when nothing is chosen), as the bound
    widgets did: users by their label."""
    shown = [user_choice(value, names) for value in values] if key == "user" else values
    if st.query_params.get_all(key) == shown:
        return
    if shown:
        st.query_params[key] = shown
    else:
        st.query_params.pop(key, None)


def summary(picked: Mapping[str, list[str]], names: Mapping[str, str]) -> str:
    """The line under the closed panel: the filters that are set, or that none is."""
    parts = []
    for key, (_, label) in LIST_FILTERS.items():
        values = picked.get(key) or []
        if key == "user":
            values = [names.get(value) or value for value in values]
        if values:
            parts.append(f"{label}: {', '.join(md(value) for value in values)}")
    return "; ".join(parts) if parts else "All sources, models, teams, users, tags, statuses."


def clear() -> None:
    """No list filter chosen (a callback: the next run writes the URL)."""
    st.session_state[_CHOSEN] = {key: [] for key in LIST_FILTERS}
    for key in LIST_FILTERS:
        st.query_params.pop(key, None)


@st.fragment
def panel() -> None:
    """The lazy expander holding the eight multiselects; a change reruns the whole page."""
    if st.session_state.pop(_CHANGED, False):
        st.rerun(scope="app")
    ui.lazy_expander("List filters", PANEL_KEY, _draw, icon=":material/filter_list:")


def _draw() -> None:
    options = st.session_state.get(_OPTIONS) or {}
    names = dict(options.get("user_names") or {})
    kept = st.session_state.get(_CHOSEN) or {}
    for key, (_, label) in LIST_FILTERS.items():
        st.session_state[key] = list(kept.get(key) or [])
        extra: dict[str, Any] = {}
        if key == "user":
            extra["format_func"] = lambda user_id: user_choice(user_id, names)
        st.multiselect(
            label,
            choices(key, options),
            key=key,
            on_change=_picked,
            args=(key,),
            placeholder="All (type a name to search)" if key in ("user", "team") else "All",
            **extra,
        )


def _picked(key: str) -> None:
    """A multiselect changed: keep its values (and put them in the URL) for the next run."""
    values = list(st.session_state.get(key) or [])
    st.session_state.setdefault(_CHOSEN, {})[key] = values
    options = st.session_state.get(_OPTIONS) or {}
    _to_url(key, values, dict(options.get("user_names") or {}))
    st.session_state[_CHANGED] = True
