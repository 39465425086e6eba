"""One stable colour per value (model, provider, team, …) on every chart and page, and the
names a legend shows (a user's display name instead of the id). No Streamlit here.

A dimension's colours come from the sorted list of all its values in the mirror, not from
what one chart happens to show, so "claude-opus-4-1" has the same colour on Overview, Cost
and Performance and no two values share one. Values past the palette, and a chart's groups
past MAX_SERIES, are drawn together as OTHER, in grey.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

OTHER = "other"
OTHER_COLOUR = "#9e9e9e"
NOT_SET = "(not set)"
NOT_SET_COLOUR = "#c7c7c7"
MAX_SERIES = 24  # = len(PALETTE): every coloured value can have its own series
# 24 distinct colours, no grey (grey means OTHER / not set): D3's category10 without its
# grey, then darker and lighter companions.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#e6550d",
    "#31a354",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#fdae6b",
    "#74c476",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#dbdb8d",
    "#9edae5",
    "#637939",
)


def colour_map(values: Iterable[Any]) -> dict[str, str]:
    """value -> colour for the sorted distinct `values`; those past the palette get none
    (they are drawn as OTHER)."""
    known = sorted({str(v) for v in values if v is not None})
    return {value: PALETTE[i] for i, value in enumerate(known[: len(PALETTE)])}


@dataclass(frozen=True)
class Legend:
    """How a chart names and colours the groups of one dimension.

    `names`: value -> display text (e.g. user id -> display name); `colours`: value ->
    colour (colour_map). A value without a colour falls into OTHER.
    """

    names: Mapping[str, str] = field(default_factory=dict)
    colours: Mapping[str, str] = field(default_factory=dict)

    def name(self, value: Any) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return NOT_SET
        return self.names.get(str(value), str(value))

    def colour(self, value: Any) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return NOT_SET_COLOUR
        if str(value) == OTHER:
            return OTHER_COLOUR
        return self.colours.get(str(value), OTHER_COLOUR)

    def keeps(self, value: Any) -> bool:
        """Whether `value` gets its own series (it has a colour, or is "not set")."""
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return True
        return not self.colours or str(value) in self.colours


def fold_tail(
    df: pd.DataFrame, legend: Legend, size: str, keys: tuple[str, ...] = ("period",)
) -> pd.DataFrame:
    """`df` (with a `group` column) with the groups past MAX_SERIES (largest `size` total
    first) and groups without a colour summed into one OTHER group per `keys`."""
    if df.empty or "group" not in df.columns:
        return df
    totals = df.groupby("group", dropna=False)[size].sum().astype("float64")
    order = totals.sort_values(ascending=False, kind="stable").index
    kept = [g for g in order if legend.keeps(g)][:MAX_SERIES]
    tail = ~df["group"].isin([g for g in kept if not pd.isna(g)])
    if any(pd.isna(g) for g in kept):
        tail &= df["group"].notna()
    if not tail.any():
        return df
    numeric = [c for c in df.columns if c not in keys and c != "group"]
    numeric = [c for c in numeric if pd.api.types.is_numeric_dtype(df[c])]
    present = [k for k in keys if k in df.columns]
    rest = df[tail]
    folded = (
        rest.groupby(present, dropna=False)[numeric].sum().reset_index()
        if present
        else rest[numeric].sum().to_frame().T
    )
    folded["group"] = OTHER
    return pd.concat([df[~tail], folded], ignore_index=True)


def top_groups(
    df: pd.DataFrame, legend: Legend, size: str, keep: Iterable[Any] = ()
) -> pd.DataFrame:
    """The rows of `df` (with a `group` column) of the MAX_SERIES groups with the largest
    `size` total that have their own colour, plus the groups in `keep`: what a chart of
    values that cannot be summed (percentiles) draws. The browser is sent only those; the
    page's table keeps every group."""
    if df.empty or "group" not in df.columns:
        return df
    totals = df.groupby("group", dropna=False)[size].sum().astype("float64")
    order = totals.sort_values(ascending=False, kind="stable").index
    kept = [g for g in order if legend.keeps(g)][:MAX_SERIES]
    wanted = {str(g) for g in kept if not pd.isna(g)} | {str(g) for g in keep if g is not None}
    shown = df["group"].astype(str).isin(wanted)
    if any(pd.isna(g) for g in kept):
        shown |= df["group"].isna()
    return df[shown]
