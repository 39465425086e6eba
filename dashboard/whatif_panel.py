"""The Cost page's what-if (docs/spend-control.md): the filtered slice on another model, or
a share of one model's traffic routed to another. Only models of the chosen provider are
offered; a pair that cannot be compared is explained, not raised."""

from __future__ import annotations

import re
import shlex

import pandas as pd
import streamlit as st

from dashboard import auth, data, figures, state, ui
from dashboard.safe import md
from queries import whatif
from queries.filters import Filters

EVERY_MODEL = "every model"
EXPERIMENT_PROVIDERS = ("openai", "anthropic")  # what `ai-runs eval run` can call
TITLE = "What if we had used another model?"  # the label of the expander that holds it


def show(filters: Filters, options: dict[str, list[str]]) -> None:
    """Pickers (provider, its models, the traffic to route and the share) and the answer."""
    providers = whatif.priced_providers()
    left, middle, right, far = st.columns([1, 1, 1, 1])
    provider = left.selectbox(
        "Target provider",
        providers,
        index=providers.index("openai") if "openai" in providers else 0,
        key="whatif_provider",
    )
    models = whatif.provider_models(provider)
    model = middle.selectbox(
        "Target model",
        models,
        index=models.index("gpt-4o-mini") if "gpt-4o-mini" in models else 0,
        key="whatif_model",
        help="Only models of the chosen provider that have a known price.",
    )
    sources = [EVERY_MODEL, *(options.get("models") or [])]
    source = right.selectbox("Route the traffic of", sources, key="whatif_source")
    share = far.slider("Share routed (%)", 0, 100, 100, step=5, key="whatif_share")
    if not model:
        st.info(f"No model of {md(provider)} has a known price: choose another provider.")
        return
    chosen = None if source == EVERY_MODEL else source
    plan = data.cached(
        whatif.what_if_mix, filters, provider, model, source_model=chosen, share=share / 100
    )
    if not plan.ok:
        st.info(md(plan.explanation), icon=":material/info:")
        return
    diff = plan.what_if - plan.actual
    change = f" ({diff / plan.actual:+.0%})" if plan.actual else ""
    if chosen is None and share == 100:
        lead = f"The same tokens on **{md(provider)}/{md(model)}** would have cost"
    else:
        lead = (
            f"Routing {share}% of **{md(source)}** to **{md(provider)}/{md(model)}**, "
            "this slice would cost"
        )
    st.markdown(
        f"{lead} **{ui.money(plan.what_if)}** instead of **{ui.money(plan.actual)}**: "
        f"{'an extra' if diff > 0 else 'a saving of'} **{ui.money(abs(diff))}**{change}."
    )
    quality(filters, chosen, provider, model, plan)
    ui.chart(
        figures.what_if, plan.frame, f"{provider}/{model}", nothing=state.nothing_text(filters),
        key="cost_whatif",
    )  # fmt: skip
    ui.table(plan.frame, key="cost_whatif_table", filename="what_if")


def quality(
    filters: Filters, source: str | None, provider: str, model: str, plan: whatif.WhatIfPlan
) -> None:
    """Under the cost answer: the score change an experiment pair measured on the same
    items, or that none exists and the commands that would make one."""
    if source is None:
        st.caption("Choose one model to route to see what experiments measured of quality.")
        return
    change = data.quality_change(source, model)
    if change is not None and not change.scores.empty:
        lines = "\n".join(f"- {_score_line(row)}" for row in change.scores.itertuples())
        st.markdown(
            f"**Quality on the same items** (experiments **{md(change.source_experiment)}** "
            f"vs **{md(change.target_experiment)}** on dataset {md(change.dataset)}):\n{lines}"
        )
        return
    why = (
        f"experiments {md(change.source_experiment)} and {md(change.target_experiment)} "
        "have no scores yet"
        if change is not None
        else f"no experiment compares {md(source)} with {md(model)} on the same items"
    )
    st.info(
        f"Quality: {why}, so this what-if says nothing about quality. These commands "
        "make one (then score the answers, e.g. thumbs on the Compare page):",
        icon=":material/science:",
    )
    st.code(commands(filters, source, _provider_of(plan.frame), provider, model), "bash")


def _score_line(row: object) -> str:
    interval = (
        f", 95% CI {row.diff_low:+.2f} to {row.diff_high:+.2f}"
        if pd.notna(row.diff_low)
        else ", no interval: too few scores"
    )
    each = (
        f"n={row.source_n} each"
        if row.source_n == row.target_n
        else f"n={row.source_n} and {row.target_n}"
    )
    return (
        f"{md(row.name)} {row.source_mean:.2f} → {row.target_mean:.2f} "
        f"({row.difference:+.2f}{interval}, {each})"
    )


def _provider_of(frame: pd.DataFrame) -> str:
    providers = [str(p) for p in frame.get("provider", []) if pd.notna(p)]
    return providers[0] if providers else "openai"


def _name(text: str) -> str:
    """`text` as a dataset or experiment name (letters, digits and _.:@+-)."""
    return re.sub(r"[^A-Za-z0-9_.:@+-]", "-", text).lstrip("_.:@+-")[:90] or "model"


def commands(filters: Filters, source: str, source_provider: str, provider: str, model: str) -> str:
    """The `ai-runs eval` commands that would measure routing `source` to `model`: a
    dataset of the slice's `source` tasks, and one experiment per model over it."""
    since = (filters.start or pd.Timestamp.now("UTC") - pd.Timedelta(days=30)).date()
    user = shlex.quote(auth.current().id or "USER")
    dataset = _name(f"whatif-{source}")
    lines = [
        f"ai-runs eval dataset create {dataset} --model {shlex.quote(source)} --since {since} "
        f"--limit 100 --user {user}"
    ]
    for name, chosen, via in ((source, source, source_provider), (model, model, provider)):
        lines.append(
            f"ai-runs eval run --dataset {dataset} --model {shlex.quote(chosen)} "
            f"--provider {shlex.quote(via)} "
            f"--name {_name(f'{dataset}-on-{name}')} "
            f"--evaluator length:max_chars=2000 --user {user}"
        )
    unsupported = sorted({source_provider, provider} - set(EXPERIMENT_PROVIDERS))
    if unsupported:
        lines.append(
            f"# experiments call {' or '.join(EXPERIMENT_PROVIDERS)} only, not "
            f"{', '.join(unsupported)}"
        )
    return "\n".join(lines)
