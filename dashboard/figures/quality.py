"""Quality figures of the dashboard: cost versus quality, one point per variant (the Compare
page, queries.compare). DataFrame in, plotly Figure out; USD and the score's scale in the
axis titles."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.figures.parts import empty, new_figure


def cost_versus_quality(variants: pd.DataFrame, scores: pd.DataFrame, score: str) -> go.Figure:
    """One point per variant: cost per task (x, USD) against the mean of score `score` (y)
    with its 95% interval as an error bar (compare_variants and compare_scores frames).
    Points carry [variant] as customdata. Variants without that score are left out."""
    title = f"Cost per task versus {score}"
    chosen = scores[scores["name"] == score]
    rows = variants.merge(chosen, on="variant", how="inner")
    if rows.empty:
        return empty(title, f"No variant has a {score} score.")
    boolean = bool((rows["kind"] == "boolean").all())
    y_title = f"{score} (share true)" if boolean else f"{score} (mean)"
    fig = new_figure(title, "cost per task ($)", y_title)
    upper = (rows["ci_high"] - rows["mean"]).fillna(0)
    lower = (rows["mean"] - rows["ci_low"]).fillna(0)
    fig.add_trace(
        go.Scatter(
            x=rows["cost_per_task"],
            y=rows["mean"],
            mode="markers+text",
            text=rows["variant"],
            textposition="top center",
            error_y={"type": "data", "symmetric": False, "array": upper, "arrayminus": lower},
            customdata=[[v] for v in rows["variant"]],
            hovertemplate="%{text}<br>$%{x:.6f} per task<br>mean %{y:.3f}<extra></extra>",
            marker={"size": 12},
        )
    )
    fig.update_layout(showlegend=False)
    if boolean:
        fig.update_yaxes(range=[0, 1.05])
    return fig
