"""Figures of one run: its tasks on a time axis (Plotly; the run view)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.parts import (
    empty,
    new_figure,
)


def run_timeline(tasks: pd.DataFrame) -> go.Figure:
    """The tasks of one run on a time axis: a bar from start to first token, then to the end.

    `tasks`: created_at, time_to_first_token, total_time (ms), model, status, task_id.
    """
    title = "Tasks of this run over time"
    if tasks.empty:
        return empty(title, "This run has no tasks.")
    rows = tasks.sort_values("created_at").reset_index(drop=True)
    names = [f"#{i + 1} {m or ''}" for i, m in enumerate(rows["model"])]
    start = pd.to_datetime(rows["created_at"], utc=True)
    ttft = rows["time_to_first_token"].astype(float).fillna(0)
    total = rows["total_time"].astype(float).fillna(ttft)
    fig = new_figure(title, "Time (UTC)", "Task", barmode="stack", showlegend=True)
    fig.add_bar(
        y=names,
        x=ttft,
        base=start,
        orientation="h",
        name="waiting for first token (ms)",
        marker_color="#f4a261",
        hovertemplate="TTFT %{x:,.0f} ms<extra></extra>",
    )
    fig.add_bar(
        y=names,
        x=(total - ttft).clip(lower=0),
        base=start + pd.to_timedelta(ttft, unit="ms"),
        orientation="h",
        name="streaming (ms)",
        marker_color="#2a9d8f",
        hovertemplate="streaming %{x:,.0f} ms<extra></extra>",
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="date")
    fig.update_layout(height=max(240, 60 + 26 * len(rows)))
    return fig
