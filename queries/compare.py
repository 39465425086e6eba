"""Variants and experiments side by side (docs/quality.md, "Comparing variants").

SQL: sql/compare.sql on the DuckDB mirror and its Postgres twin sql/postgres/compare.sql
(`con` decides the engine, queries/engine.py); `item_diffs` is a fresh point read from
Postgres (the experiments' item links live there). An experiment's tasks carry its name as
their variant, so comparing experiments is comparing variants.
`quality_change` (the what-if with quality, docs/quality.md) reads an experiment pair's
scores from Postgres too and puts a 95% interval on the difference of their means.

Intervals are 95% two-sided, as every score rollup's (queries.quality.interval): for a
boolean score (a share of true) the Wilson score interval, for a numeric score
mean +- t(0.975, n-1) * sd / sqrt(n) (Student's t). n = 1 has no interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from ingest.access.viewer import connect_as
from ingest.store import database
from queries import quality
from queries.engine import Connection, fetch, filter_params
from queries.filters import Filters

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
        quality.interval(kind, mean, sd, n)
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


# ------------------------------------------------------------ quality of a what-if


@dataclass(frozen=True)
class QualityChange:
    """What an experiment pair measured for routing `source_model` to `target_model`:
    the experiments' names, their dataset, and `scores` (see quality_change)."""

    source_experiment: str
    target_experiment: str
    dataset: str
    scores: pd.DataFrame


def quality_change(
    url: str | None, source_model: str, target_model: str, *, viewer: str | None = None
) -> QualityChange | None:
    """The score change measured by experiments on the same items: the latest pair of
    experiments over one dataset, one of `source_model` and one of `target_model` (None
    when there is none the viewer may read). A fresh read of Postgres.

    `scores`: one row per score name, over the items both experiments answered. Columns:
    name, kind (boolean or numeric), source_n, source_mean, source_low, source_high,
    target_n, target_mean, target_low, target_high (the 95% interval of each mean, as
    compare_scores), difference (target mean - source mean), diff_low and diff_high (its
    95% interval: Newcombe's from the two Wilson intervals for a boolean score, Welch's t
    for a numeric one; NaN when a side has too few scores or the name is on one side only).
    viewer: an ai_users id to read as (row-level security), None: as the owner.
    """
    params = {"source": str(source_model), "target": str(target_model)}
    with connect_as(url, viewer) if viewer is not None else database.connect(url) as conn:
        pair = fetch(conn, "experiment_pair", params)
        if pair.empty:
            return None
        found = pair.iloc[0]
        ids = {"source_id": str(found["source_id"]), "target_id": str(found["target_id"])}
        sides = fetch(conn, "experiment_pair_scores", ids)
    return QualityChange(
        str(found["source_experiment"]),
        str(found["target_experiment"]),
        str(found["dataset"]),
        _pair_scores(sides),
    )


def _pair_scores(sides: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for name, group in sides.groupby("name", sort=True):
        kind = "boolean" if bool(group["boolean"].all()) else "numeric"
        side = {r.side: (float(r.mean), _sd(r.sd), int(r.n)) for r in group.itertuples()}
        row: dict = {"name": str(name), "kind": kind}
        for label in ("source", "target"):
            mean, sd, n = side.get(label, (math.nan, math.nan, 0))
            low, high = quality.interval(kind, mean, sd, n) if n else (math.nan, math.nan)
            row |= {f"{label}_n": n, f"{label}_mean": mean,
                    f"{label}_low": low, f"{label}_high": high}  # fmt: skip
        if "source" in side and "target" in side:
            diff_low, diff_high = difference_interval(kind, side["source"], side["target"])
        else:
            diff_low, diff_high = math.nan, math.nan
        row |= {"difference": row["target_mean"] - row["source_mean"],
                "diff_low": diff_low, "diff_high": diff_high}  # fmt: skip
        rows.append(row)
    columns = ["name", "kind", "source_n", "source_mean", "source_low", "source_high",
               "target_n", "target_mean", "target_low", "target_high", "difference",
               "diff_low", "diff_high"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _sd(value: object) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)


def difference_interval(
    kind: str, source: tuple[float, float, int], target: tuple[float, float, int]
) -> tuple[float, float]:
    """The 95% interval of target mean - source mean, each side (mean, sd, n) an
    independent sample. Boolean: Newcombe's hybrid score interval (his method 10) from the
    two Wilson intervals. Numeric: Welch's, difference +- t(0.975, df) * se with
    se = sqrt(sd1²/n1 + sd2²/n2) and the Welch-Satterthwaite df rounded down (at least 1).
    (NaN, NaN) when either side has no spread to go by (numeric n < 2, or no scores)."""
    (m1, s1, n1), (m2, s2, n2) = source, target
    diff = m2 - m1
    if kind == "boolean":
        if n1 < 1 or n2 < 1:
            return math.nan, math.nan
        l1, u1 = quality.wilson_interval(m1, n1)
        l2, u2 = quality.wilson_interval(m2, n2)
        return (
            diff - math.sqrt((m2 - l2) ** 2 + (u1 - m1) ** 2),
            diff + math.sqrt((u2 - m2) ** 2 + (m1 - l1) ** 2),
        )
    if n1 < 2 or n2 < 2 or math.isnan(s1) or math.isnan(s2):
        return math.nan, math.nan
    v1, v2 = s1 * s1 / n1, s2 * s2 / n2
    if v1 + v2 == 0:
        return diff, diff
    df = (v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
    half = quality.t_quantile_975(max(1, math.floor(df))) * math.sqrt(v1 + v2)
    return diff - half, diff + half
