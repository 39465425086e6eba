"""Quality next to cost on the Performance page: the scores of the period's tasks per group
and per period, beside what those tasks cost (queries.quality.score_rollup,
docs/quality.md). A boolean score's mean is its share of true: for `thumbs`, the share of
thumbs up."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, ui
from queries import quality
from queries.filters import Filters

COLUMNS = {
    "name": "score",
    "data_type": "type",
    "mean": "mean (thumbs: share up)",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "scores": "scores",
    "scored_tasks": "scored tasks",
    "tasks": "tasks",
    "cost": "cost (USD)",
}


def quality_tab(filters: Filters, by: str, grain: str) -> None:
    """Scores by `by` over the period, and over time by `grain`, each next to cost."""
    by_group = data.cached(quality.score_rollup, filters, by=by)
    if by_group.empty:
        st.info(
            "No task of this period has a numeric or thumbs score yet. Rate tasks on their "
            "page, or send scores with `Tracker.score` or `POST /v1/scores` (docs/quality.md).",
            icon=":material/thumbs_up_down:",
        )
        return
    st.markdown(f"**Scores by {by}**, next to the cost of all their tasks")
    ui.table(_shown(ui.group_frame(by_group, by)), key="perf_quality_by", filename="scores_by")
    over_time = data.cached(quality.score_rollup, filters, grain=grain)
    st.markdown(f"**Scores per {grain}**")
    ui.table(_shown(over_time), key="perf_quality_time", filename="scores_over_time")


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    shown = frame.copy()
    for column in ("mean", "ci_low", "ci_high"):
        shown[column] = shown[column].round(3)
    shown["cost"] = shown["cost"].round(4)
    return shown.rename(columns=COLUMNS)
