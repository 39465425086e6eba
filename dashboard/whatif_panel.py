"""The Cost page's what-if (docs/spend-control.md): the filtered slice on another model, or
a share of one model's traffic routed to another. Only models of the chosen provider are
offered; a pair that cannot be compared is explained, not raised."""

from __future__ import annotations

import streamlit as st

from dashboard import data, figures, state, ui
from dashboard.safe import md
from queries import whatif
from queries.filters import Filters

EVERY_MODEL = "every model"


def show(filters: Filters, options: dict[str, list[str]]) -> None:
    """Pickers (provider, its models, the traffic to route and the share) and the answer."""
    st.subheader("What if we had used another model?")
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
    st.plotly_chart(
        figures.what_if(plan.frame, f"{provider}/{model}", nothing=state.nothing_text(filters)),
        key="cost_whatif",
    )
    ui.table(plan.frame, key="cost_whatif_table", filename="what_if")
