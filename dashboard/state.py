"""The global filters: sidebar widgets bound to the URL query string.

A view is a shareable link. Each filter widget is bound to a query parameter of the same
name (`bind="query-params"`), so the URL carries the filters, survives page switches, and
a link opens with them, e.g. `?dates=2026-10-01&dates=2026-10-31&provider=openai&status=failed`.
A widget at its default is left out of the URL: without `dates` the period is the last
DEFAULT_DAYS days up to today, so a link without dates stays "recent".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

import streamlit as st

from ingest.vocabulary import SOURCE_TYPES, TASK_STATUSES
from queries.filters import Filters

DEFAULT_DAYS = 30
DATES_KEY = "dates"
# URL key -> (Filters field, sidebar label), for the multi-valued filters, in sidebar order.
LIST_FILTERS = {
    "source_type": ("source_types", "Source type"),
    "provider": ("providers", "Provider"),
    "model": ("models", "Model"),
    "team": ("teams", "Team"),
    "user": ("users", "User"),
    "tag": ("tags", "Tag"),
    "status": ("statuses", "Task status"),
}
FIXED_CHOICES = {"source_type": SOURCE_TYPES, "status": TASK_STATUSES}
_ACTIVE = "_filters_active"


def today() -> date:
    return datetime.now(UTC).date()


def default_dates(now: date | None = None) -> tuple[date, date]:
    """The default period: the last DEFAULT_DAYS days up to and including today (UTC)."""
    end = now or today()
    return (end - timedelta(days=DEFAULT_DAYS - 1), end)


def to_filters(dates: Sequence[date] | None, lists: Mapping[str, Sequence[str]]) -> Filters:
    """Filters for an inclusive range of UTC days and the chosen values per URL key.

    A half-picked range (one date) means that single day; no dates means the default period.
    """
    dates = tuple(d for d in (dates or ()) if d) or default_dates()
    first, last = min(dates), max(dates)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    chosen = {field: tuple(lists.get(key) or ()) for key, (field, _) in LIST_FILTERS.items()}
    return Filters(start=start, end=end, **chosen)


def sidebar(options: Mapping[str, Sequence[str]]) -> Filters:
    """Draw the global filters in the sidebar; return (and remember for the page) the
    Filters they select. `options` maps a URL key of LIST_FILTERS to its choices."""
    with st.sidebar:
        st.header("Filters")
        dates = st.date_input(
            "Date range (UTC)",
            value=default_dates(),
            key=DATES_KEY,
            bind="query-params",
            help=f"Tasks created in these days. Default: the last {DEFAULT_DAYS} days.",
        )
        lists: dict[str, list[str]] = {}
        for key, (_, label) in LIST_FILTERS.items():
            choices = list(FIXED_CHOICES.get(key) or options.get(key) or ())
            lists[key] = st.multiselect(
                label, choices, key=key, bind="query-params", placeholder="All"
            )
        if any(lists.values()) or tuple(dates or ()) != default_dates():
            st.button("Clear filters", on_click=clear, width="stretch", icon=":material/clear:")
    filters = to_filters(dates if isinstance(dates, tuple) else (dates,), lists)
    st.session_state[_ACTIVE] = filters
    return filters


def clear() -> None:
    """Back to the default filters (the bound widgets drop out of the URL)."""
    st.session_state[DATES_KEY] = default_dates()
    for key in LIST_FILTERS:
        st.session_state[key] = []


def active() -> Filters:
    """The Filters the sidebar selected in this run (pages call this)."""
    filters = st.session_state.get(_ACTIVE)
    return filters if filters is not None else to_filters(None, {})


def period_text(filters: Filters) -> str:
    """The filtered period for captions: "2026-10-27 – 2026-11-25 (30 days, UTC)"."""
    last = (filters.end - timedelta(days=1)).date()
    days = (filters.end - filters.start).days
    return f"{filters.start.date()} – {last} ({days} days, UTC)"
