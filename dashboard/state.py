"""The global filters: sidebar widgets kept in the URL query string.

A view is a shareable link. The period's widgets are bound to a query parameter of the same
name (`bind="query-params"`), and the list filters (dashboard.list_filters, drawn only while
their panel is open) keep theirs the same way, so the URL carries the filters, survives page
switches, and a link opens with them, e.g.
`?dates=2026-10-01&dates=2026-10-31&provider=openai&status=failed`. A widget at its default
is left out of the URL: without `range` and `dates` the period is the last DEFAULT_DAYS days
up to today, so a link without dates stays "recent".

The period is a preset (`range`: today, the last 7/30/90 days, this month, last month, month
to date, quarter to date; all exact whole UTC days, see `preset_dates`) or a custom range
(`dates`). A custom range that is half picked (one click in the picker) keeps the previous
complete range, so no query runs for a one-day range the user did not mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import streamlit as st

from dashboard import list_filters
from dashboard.formatting import plural
from dashboard.list_filters import LIST_FILTERS
from queries.filters import Filters

DEFAULT_DAYS = 30
DATES_KEY = "dates"
RANGE_KEY = "range"
CUSTOM = "Custom range"
PRESETS = (
    "Today",
    "Last 7 days",
    "Last 30 days",
    "This month",
    "Last month",
    "Month to date",
    "Quarter to date",
    "Last 90 days",
    CUSTOM,
)
DEFAULT_PRESET = "Last 30 days"
_LAST_DATES = "_last_complete_dates"
_ACTIVE = "_filters_active"


def today() -> date:
    return datetime.now(UTC).date()


def default_dates(now: date | None = None) -> tuple[date, date]:
    """The default period: the last DEFAULT_DAYS days up to and including today (UTC)."""
    end = now or today()
    return (end - timedelta(days=DEFAULT_DAYS - 1), end)


def preset_dates(preset: str, now: date | None = None) -> tuple[date, date]:
    """First and last UTC day (inclusive) of a preset; "Last 7 days" is exactly 7 days
    ending today, "This month" the whole calendar month, "Month to date" its first day
    to today. ValueError for an unknown preset (or CUSTOM, which has no fixed days)."""
    end = now or today()
    month = end.replace(day=1)
    if preset == "Today":
        return (end, end)
    if preset.startswith("Last ") and preset.endswith(" days"):
        days = int(preset.split()[1])
        return (end - timedelta(days=days - 1), end)
    if preset == "This month":
        return (month, (month + timedelta(days=32)).replace(day=1) - timedelta(days=1))
    if preset == "Last month":
        last = month - timedelta(days=1)
        return (last.replace(day=1), last)
    if preset == "Month to date":
        return (month, end)
    if preset == "Quarter to date":
        return (month.replace(month=3 * ((end.month - 1) // 3) + 1), end)
    raise ValueError(f"unknown date preset {preset!r}; choose one of {list(PRESETS[:-1])}")


def complete_dates(picked: Any) -> tuple[date, date] | None:
    """The (first, last) days of a date_input value, or None while a range is half picked."""
    values = tuple(d for d in (picked if isinstance(picked, tuple | list) else (picked,)) if d)
    if len(values) < 2:
        return None
    return (min(values), max(values))


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


def sidebar(options: Mapping[str, Any]) -> Filters:
    """Draw the global filters in the sidebar; return (and remember for the page) the
    Filters they select. `options` maps a URL key of LIST_FILTERS to its choices, and
    "user_names" to {user id: display name} (users are shown and searched by name)."""
    names = dict(options.get("user_names") or {})
    if DATES_KEY in st.query_params and RANGE_KEY not in st.query_params:
        st.session_state.setdefault(RANGE_KEY, CUSTOM)  # an old link with explicit dates
    with st.sidebar:
        st.header("Filters")
        preset = st.selectbox(
            "Period (UTC)",
            PRESETS,
            index=PRESETS.index(DEFAULT_PRESET),
            key=RANGE_KEY,
            bind="query-params",
            help="Whole UTC days. Custom: pick the first and the last day.",
        )
        if preset == CUSTOM:
            picked = st.date_input(
                "Days (first – last)",
                value=st.session_state.get(_LAST_DATES) or default_dates(),
                key=DATES_KEY,
                bind="query-params",
                help="Tasks created in these days (UTC).",
            )
            dates = complete_dates(picked)
            if dates is None:
                dates = st.session_state.get(_LAST_DATES) or default_dates()
                st.caption(f"Pick the last day: showing {dates[0]} – {dates[1]} until then.")
        else:
            dates = preset_dates(preset)
        st.session_state[_LAST_DATES] = dates
        lists = list_filters.chosen(options)
        list_filters.panel()
        st.caption(list_filters.summary(lists, names))
        if any(lists.values()) or preset != DEFAULT_PRESET:
            st.button("Clear filters", on_click=clear, width="stretch", icon=":material/clear:")
    filters = to_filters(dates, lists)
    st.session_state[_ACTIVE] = filters
    return filters


def clear() -> None:
    """Back to the default filters (they drop out of the URL)."""
    st.session_state[RANGE_KEY] = DEFAULT_PRESET
    st.session_state.pop(_LAST_DATES, None)
    if DATES_KEY in st.session_state:
        st.session_state[DATES_KEY] = default_dates()
    list_filters.clear()


def active() -> Filters:
    """The Filters the sidebar selected in this run (pages call this)."""
    filters = st.session_state.get(_ACTIVE)
    return filters if filters is not None else to_filters(None, {})


def period_text(filters: Filters) -> str:
    """The filtered period for captions: "2026-10-27 – 2026-11-25 (30 days, UTC)"."""
    last = (filters.end - timedelta(days=1)).date()
    days = (filters.end - filters.start).days
    return f"{filters.start.date()} – {last} ({plural(days, 'day')}, UTC)"


def chosen_filters(filters: Filters, applies: Sequence[str] | None = None) -> list[str]:
    """The sidebar's list filters that are set, as "Team red, blue" (empty when none is);
    only those among `applies` (Filters field names) when given."""
    chosen = []
    for _, (field_name, label) in LIST_FILTERS.items():
        values = getattr(filters, field_name)
        if values and (applies is None or field_name in applies):
            chosen.append(f"{label} {', '.join(values)}")
    return chosen


def nothing_text(
    filters: Filters,
    what: str = "tasks",
    extra: Sequence[str] = (),
    applies: Sequence[str] | None = None,
) -> str:
    """An honest empty state: no `what` in the period, under the filters that are set
    (the sidebar's, only those among `applies` when given, then the page's own `extra`),
    and what to do about it. Filters that are not set are never named, so the text never
    blames them: "No tasks in 2026-11-01 – 2026-11-30 (30 days, UTC) with Team red: clear
    a filter or choose a longer period (sidebar)." """
    chosen = [*chosen_filters(filters, applies), *extra]
    where = f" with {'; '.join(chosen)}" if chosen else ""
    todo = (
        "clear a filter or choose a longer period (sidebar)"
        if chosen
        else "choose a longer period in the sidebar, or send data to this database"
    )
    return f"No {what} in {period_text(filters)}{where}: {todo}."
