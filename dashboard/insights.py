"""Headlines computed from two rollup results (no aggregation: rows are matched, not summed)."""

from __future__ import annotations

import pandas as pd


def slowdowns(
    recent: pd.DataFrame,
    previous: pd.DataFrame,
    percentile: str = "p95",
    min_tasks: int = 20,
    min_ratio: float = 1.5,
) -> pd.DataFrame:
    """Groups whose latency `percentile` grew between two latency_percentiles(by=...) results.

    Only groups with at least `min_tasks` tasks in both periods, and at least `min_ratio`
    times slower. Columns: group, previous_ms, recent_ms, ratio, tasks (recent).
    Sorted by ratio, largest first.
    """
    columns = ["group", "previous_ms", "recent_ms", "ratio", "tasks"]
    if recent.empty or previous.empty:
        return pd.DataFrame(columns=columns)
    both = recent[["group", "tasks", percentile]].merge(
        previous[["group", "tasks", percentile]], on="group", suffixes=("", "_previous")
    )
    both = both[(both["tasks"] >= min_tasks) & (both["tasks_previous"] >= min_tasks)]
    both = both.assign(
        recent_ms=both[percentile].astype(float),
        previous_ms=both[f"{percentile}_previous"].astype(float),
    )
    both = both[both["previous_ms"] > 0]
    both = both.assign(ratio=both["recent_ms"] / both["previous_ms"])
    both = both[both["ratio"] >= min_ratio].sort_values("ratio", ascending=False)
    return both[columns].reset_index(drop=True)
