"""Variants and experiments side by side (docs/quality.md, "Comparing variants").

SQL: sql/compare.sql on the DuckDB mirror and its Postgres twin sql/postgres/compare.sql
(`con` decides the engine, queries/engine.py); `item_diffs` is a fresh point read from
Postgres (the experiments' item links live there). An experiment's tasks carry its name as
their variant, so comparing experiments is comparing variants.

Intervals are 95% two-sided, as every score rollup's (queries.quality.interval): for a
boolean score (a share of true) the Wilson score interval, for a numeric score
mean +- t(0.975, n-1) * sd / sqrt(n) (Student's t). n = 1 has no interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ingest.access.viewer import connect_as
from ingest.store import database
from queries.engine import Connection, fetch, filter_params
from queries.filters import Filters
from queries.quality import interval

MAX_COMPARED = 20


def _compared(variants: Sequence[str]) -> list[str]:
    names = sorted({str(v) for v in variants})
    if not names:
        raise ValueError("compare at least one variant")
    if len(names) > MAX_COMPARED:
        raise ValueError(f"compare at most {MAX_COMPARED} variants, got {len(names)}")
    return names


def compare_variants(con: Connection, filters: Filters, variants: Sequence[str]) -> pd.DataFrame:
    """One row per variant (of `variants`) that has tasks the filters keep, by name.

    Columns: variant, tasks, failed (status failed), failure_rate (failed / tasks), priced
    (tasks with a cost), cost (USD, total), cost_per_task (cost / tasks, USD),
    latency_p50 and latency_p95 (total_time in ms; NaN without times).
    """
    frame = fetch(
        con, "compare_variants", {**filter_params(filters), "compared": _compared(variants)}
    )
    for column in ("tasks", "failed", "priced"):
        frame[column] = frame[column].astype("int64")
    for column in ("cost", "latency_p50", "latency_p95"):
        frame[column] = frame[column].astype("float64")
    frame["failure_rate"] = frame["failed"] / frame["tasks"]
    frame["cost_per_task"] = frame["cost"] / frame["tasks"]
    columns = ["variant", "tasks", "failed", "failure_rate", "priced", "cost", "cost_per_task",
               "latency_p50", "latency_p95"]  # fmt: skip
    return frame[columns].sort_values("variant", kind="stable").reset_index(drop=True)


def compare_scores(con: Connection, filters: Filters, variants: Sequence[str]) -> pd.DataFrame:
    """One row per variant and score name (numeric and boolean scores of the tasks the
    filters keep), by variant and name.

    Columns: variant, name, kind ("boolean": every score of it is boolean, the mean is a
    share of true; else "numeric"), n (scores), mean, ci_low and ci_high (the 95% interval
    of the mean: Wilson for boolean, t for numeric; NaN when n is too small).
    """
    frame = fetch(
        con, "compare_scores", {**filter_params(filters), "compared": _compared(variants)}
    )
    frame["n"] = frame["n"].astype("int64")
    frame["mean"] = frame["mean"].astype("float64")
    frame["kind"] = ["boolean" if bool(b) else "numeric" for b in frame["boolean"]]
    bounds = [
        interval(kind, mean, sd, n)
        for mean, sd, n, kind in zip(
            frame["mean"], frame["sd"], frame["n"], frame["kind"], strict=True
        )
    ]
    frame["ci_low"] = [low for low, _ in bounds]
    frame["ci_high"] = [high for _, high in bounds]
    frame[["ci_low", "ci_high"]] = frame[["ci_low", "ci_high"]].astype("float64")
    columns = ["variant", "name", "kind", "n", "mean", "ci_low", "ci_high"]
    return frame[columns].sort_values(["variant", "name"], kind="stable").reset_index(drop=True)


def item_diffs(
    url: str | None, experiments: Sequence[str], *, viewer: str | None = None
) -> pd.DataFrame:
    """Per dataset item, each named experiment's answer side by side: a fresh read from
    Postgres. One row per item and experiment, by item then experiment.

    Columns: item_id, experiment, task_id, status, cost (USD), total_time (ms), answer and
    expected (first 500 characters), then one column per score name (the task's mean
    value of it; NaN when unscored). Items only some experiments answered are kept.
    viewer: an ai_users id to read as (row-level security), None: as the owner.
    """
    params = {"compared": _compared(experiments)}
    if viewer is not None:
        with connect_as(url, viewer) as conn:
            frame = fetch(conn, "item_diffs", params)
    else:
        with database.connect(url) as conn:
            frame = fetch(conn, "item_diffs", params)
    keys = [
        "item_id",
        "experiment",
        "task_id",
        "status",
        "cost",
        "total_time",
        "answer",
        "expected",
    ]
    base = frame[keys].drop_duplicates(subset=["item_id", "experiment"]).reset_index(drop=True)
    scored = frame.dropna(subset=["score"])
    if scored.empty:
        return base
    values = scored.pivot(index=["item_id", "experiment"], columns="score", values="value")
    values.columns = [str(c) for c in values.columns]
    return base.merge(values.reset_index(), on=["item_id", "experiment"], how="left")
