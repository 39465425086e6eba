"""Compare: two or more variants or experiments side by side (docs/quality.md) — tasks,
cost per task and in total, latency p50/p95, failure rate, each score's mean with its 95%
interval and n; cost versus quality with each variant a point; per-item answers of
experiments over the same dataset. Every cell links to the tasks behind it."""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from dashboard import data, figures, state, ui
from queries import compare

st.title("Compare")
filters = state.active()
st.caption(
    state.period_text(filters) + " · a variant is a task's own label, else its run's; an "
    "experiment's tasks carry its name · intervals are 95% (Wilson for thumbs and other "
    "booleans, t for numbers)"
)

choices = list(data.filter_options().get("variants") or [])
if not choices and data.is_empty():
    ui.empty_state()
    st.stop()
if not choices:
    st.info(
        "No task has a variant yet. Give runs or tasks a `variant` (Tracker, REST, the "
        "`ai_runs.variant` OTLP attribute), or run an experiment: `ai-runs eval run --dataset "
        "D --model M` (docs/quality.md).",
        icon=":material/compare_arrows:",
    )
    st.stop()
default = [v for v in st.query_params.get_all("compare") if v in choices] or choices[:2]
chosen = st.multiselect(
    "Variants or experiments", choices, default=default, key="compare_variants",
    max_selections=compare.MAX_COMPARED,
)  # fmt: skip
st.query_params["compare"] = chosen
if not chosen:
    st.info("Choose at least one variant.")
    st.stop()

variants = data.cached(compare.compare_variants, filters, tuple(chosen))
scores = data.cached(compare.compare_scores, filters, tuple(chosen))
if variants.empty:
    st.info("None of these variants has tasks in this period and under these filters.")
    st.stop()


def _link(variant: str) -> str:
    """The Performance page of this variant's tasks (the global filters plus the variant)."""
    return "performance?" + urlencode({"variant": variant})


shown = variants.copy()
shown.insert(1, "tasks_link", [_link(v) for v in shown["variant"]])
ui.table(
    shown,
    key="compare_table",
    filename="compare_variants",
    column_config={
        "tasks_link": st.column_config.LinkColumn("open tasks", display_text="tasks ↗"),
        "failure_rate": st.column_config.NumberColumn("failure rate", format="percent"),
        "cost": st.column_config.NumberColumn("cost (USD)", format="$%.6f"),
        "cost_per_task": st.column_config.NumberColumn("cost per task (USD)", format="$%.6f"),
        "latency_p50": st.column_config.NumberColumn("p50 total time (ms)", format="%.0f"),
        "latency_p95": st.column_config.NumberColumn("p95 total time (ms)", format="%.0f"),
    },
)

st.subheader("Scores")
if scores.empty:
    st.info("No numeric or boolean score on these variants' tasks yet: rate tasks on their "
            "page, or run an experiment with `--evaluator` (docs/quality.md).")  # fmt: skip
else:
    wide = scores.copy()
    wide["tasks_link"] = [_link(v) for v in wide["variant"]]
    ui.table(
        wide,
        key="compare_scores",
        filename="compare_scores",
        column_config={
            "tasks_link": st.column_config.LinkColumn("open tasks", display_text="tasks ↗"),
            "mean": st.column_config.NumberColumn("mean", format="%.3f"),
            "ci_low": st.column_config.NumberColumn("95% low", format="%.3f"),
            "ci_high": st.column_config.NumberColumn("95% high", format="%.3f"),
        },
    )
    names = sorted(scores["name"].unique())
    score = st.selectbox("Quality axis", names, key="compare_score", bind="query-params")
    st.plotly_chart(figures.cost_versus_quality(variants, scores, score), key="compare_chart")

st.subheader("Per item")
diffs = data.item_diffs(tuple(chosen))
if diffs.empty:
    st.caption("Per-item answers appear for experiments over the same dataset.")
else:
    diffs = diffs.copy()
    diffs.insert(0, "task", ["task?" + urlencode({"task_id": str(t)}) for t in diffs["task_id"]])
    ui.table(
        diffs.drop(columns=["task_id"]),
        key="compare_items",
        filename="compare_items",
        column_config={
            "task": st.column_config.LinkColumn("task", display_text="open ↗"),
            "item_id": st.column_config.TextColumn("item"),
        },
    )
