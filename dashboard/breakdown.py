""" "By A × B": spend or volume broken down by two things at once (team × model, user ×
week, …), as a stacked chart and a table, for the Cost and Usage export pages.

B is a second dimension (queries.usage.usage_pairs) or a time grain
(queries.usage.usage_over_time with `by=A`, one stacked bar per period).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, figures, state, ui
from queries import usage
from queries.filters import DIMENSIONS, GRAINS, Filters

VALUES = {"cost": "Cost (USD)", "tokens_total": "Total tokens", "tasks": "Tasks"}


def pairs_table(rows: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """The A × B rows as a table: columns named after the dimensions (users as user_id,
    the display name beside it in ui.table)."""
    a_col = "user_id" if a == "user" else a
    b_col = "user_id" if b == "user" else b
    if a_col == b_col:
        b_col = f"{b_col} (2)"
    return rows.rename(columns={"a": a_col, "b": b_col})


# A fragment around a lazy expander: the breakdown is read and drawn only while open, and
# opening it reruns nothing else (docs/design.md, "Pages").
@st.fragment
def lazy(filters: Filters, key: str, label: str) -> None:
    """`show` in an expander (session key `{key}_open`) that is closed at first; a link
    that names the breakdown's pickers (`{key}_a`, `{key}_b`, `{key}_value`) opens it."""
    ui.lazy_expander(
        label,
        f"{key}_open",
        lambda: show(filters, key),
        icon=":material/stacked_bar_chart:",
        expanded=any(name.startswith(f"{key}_") for name in st.query_params),
    )


# A fragment: a change of A, B or the value reruns this breakdown only (docs/design.md,
# "Pages").
@st.fragment
def show(filters: Filters, key: str) -> None:
    """Pickers for A, B and the value, then the chart and the table (with its CSV)."""
    c1, c2, c3 = st.columns(3)
    a = c1.selectbox("By", list(DIMENSIONS), index=7, key=f"{key}_a", bind="query-params")
    seconds = [d for d in DIMENSIONS if d != a] + list(GRAINS)
    b = c2.selectbox(
        "×",
        seconds,
        index=seconds.index("model") if a != "model" else 0,
        key=f"{key}_b",
        bind="query-params",
    )
    value = c3.selectbox(
        "Value", list(VALUES), format_func=VALUES.get, key=f"{key}_value", bind="query-params"
    )
    nothing = state.nothing_text(filters)  # what an empty chart says
    if b in GRAINS:
        rows = data.cached(usage.usage_over_time, filters, grain=b, by=a, counts=False)
        ui.chart(
            figures.spend_over_time, rows, a, b, ui.legend(a), value=value, nothing=nothing,
            key=f"{key}_chart",
        )  # fmt: skip
        table = ui.group_frame(rows, a)
    else:
        rows = data.cached(usage.usage_pairs, filters, a, b)
        ui.chart(
            figures.pairs_bars, rows, a, b, ui.legend(b), ui.legend(a), value=value,
            nothing=nothing, key=f"{key}_chart",
        )  # fmt: skip
        table = pairs_table(rows, a, b)
    ui.table(
        table,
        key=f"{key}_table",
        filename=f"usage_by_{a}_x_{b}",
        height=320,
        caption=f"{ui.plural(len(table), 'row')}; every pair, not only the ones the chart names.",
    )
