"""Spend control on the Cost page (docs/spend-control.md): the forecast against the budget
of the view's own scope, budget management by scope, price overrides and the re-pricing
audit. Budgets and overrides live in Postgres; forecasts run on the mirror.

Every read and change is the viewer's (docs/access.md): budgets, overrides and their audit
go through the application role under row-level security (migration 0018), so a manager
sets only their team's budgets, and every change is audited with the signed-in person.

The single budget the dashboard used to remember in $AI_RUNS_HOME/dashboard.json is moved
into Postgres (as the budget for everything, per month) the first time this page runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import auth, data, figures, formatting, settings, ui
from dashboard.safe import md
from ingest.errors import IngestError
from ingest.spend import budgets as budget_store
from ingest.spend import price_books, pricing, repricing
from queries import budgets as budget_queries
from queries.filters import Filters

OVERRIDE_ORDER = ["id", "provider", "model_pattern", "valid_from", "valid_to", "removed_at"]
LEGACY_BUDGET_SETTING = "monthly_budget"
# Scope kind -> the filter_options() key offering its values.
SCOPE_OPTIONS = {
    "team": "teams",
    "user": "users",
    "model": "models",
    "tag": "tags",
    "source_type": "source_types",
}


def _attempt(write: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a write; bad input is shown as the error naming the field (None returned)."""
    try:
        return write(*args, **kwargs)
    except IngestError as exc:
        st.error(md(exc))
        return None


def _viewer_id() -> str:
    """The signed-in person's ai_users id ("" for someone not in ai_users: under row-level
    security they read and change nothing; never None, which would mean the owner)."""
    return auth.current().id or ""


def unpriced_text(count: int) -> str:
    """ "1 unpriced task", "341 unpriced tasks"."""
    return f"{count:,} unpriced task" + ("" if count == 1 else "s")


def _budget_rows() -> tuple[dict[str, Any], ...]:
    """The budgets the viewer may read (a point read of Postgres; passed to the cached
    forecasts, so an edit shows at once)."""
    return tuple(budget_store.list_budgets(data.database_url(), viewer=_viewer_id()))


def move_file_budget() -> None:
    """Move the legacy dashboard.json monthly budget into Postgres (once)."""
    legacy = settings.load_setting(LEGACY_BUDGET_SETTING)
    if not legacy:
        return
    url = data.database_url()
    rows = budget_store.list_budgets(url)
    if not budget_queries.find_budget(rows, budget_queries.Scope("all"), "month"):
        budget_store.set_budget(url, amount=legacy, period="month", created_by="dashboard.json")
    settings.save_setting(LEGACY_BUDGET_SETTING, None)


def forecast_vs_budget(filters: Filters) -> None:
    """Spend of the view's scope over the budget periods of the chosen days, against that
    scope's budget (never one the viewer cannot read entirely): the current period with
    its forecast band, a closed one with its actual spend (queries.budgets.budget_periods)."""
    move_file_budget()
    budgets = _budget_rows()
    every_scope = tuple(budget_store.budget_scopes(data.database_url(), viewer=_viewer_id()))
    today = datetime.now(UTC).date()
    view = data.cached(
        budget_queries.forecast_for_view, filters, budgets, today=today, every_scope=every_scope
    )
    result, budget = view["forecast"], view["budget"]
    closed = bool(result.get("closed"))
    st.subheader(figures.forecast_title(result) + (" vs budget" if budget is not None else ""))
    st.caption(md(view["reason"].capitalize() + "."))
    cards = ui.kpi_cards("cost")  # wraps on a narrow screen instead of cutting values
    _spend_cards(cards, result)
    if budget is not None:
        amount = float(result["budget"])
        over = float(result["forecast"]) - amount
        periods = result.get("periods", 1)
        times = f" x {periods} {budget['period']}s" if periods > 1 else ""
        cards.metric(
            "Budget",
            ui.money(amount, 0),
            border=True,
            delta=f"{'over' if over > 0 else 'under'} by {ui.money(abs(over), 0)}",
            delta_color="inverse" if over > 0 else "normal",
            delta_arrow="up" if over > 0 else "down",
            help=f"The {budget['period']}ly budget for {md(view['scope'].label)}"
            f" ({ui.money(budget['amount'], 0)}{times})"
            + (": actual spend, the period is over." if closed else ": against the forecast."),
        )
        cards.metric("Budget used", ui.percent(result["used"], 0), border=True)
    else:
        missing = "not shown" if view["hidden"] is not None else "not set"
        cards.metric("Budget", missing, help=md(view["reason"]), border=True)
        cards.metric("Budget used", "–", border=True)
    if result.get("unpriced"):
        st.warning(
            f"{unpriced_text(result['unpriced'])} in this period (no known price, or no usage "
            "reported): not included in these totals.",
            icon=":material/money_off:",
        )
    ui.chart(figures.forecast, result, key="cost_forecast")


def _spend_cards(cards: Any, result: dict[str, Any]) -> None:
    """Spent (a closed period) or to date and the forecast with its band (an open one)."""
    if result.get("closed"):
        cards.metric("Spent", ui.money(result["month_to_date"]), border=True)
        return
    single = result.get("periods", 1) == 1
    period = result.get("period", "month")
    to_date = f"{period.capitalize()} to date" if single else "Spent to date"
    cards.metric(to_date, ui.money(result["month_to_date"]), border=True)
    band = f"{ui.money(result['forecast_low'], 0)} – {ui.money(result['forecast_high'], 0)}"
    cards.metric(
        f"{period.capitalize()}-end forecast" if single else "Forecast to the end",
        ui.money(result["forecast"]),
        border=True,
        delta=f"band {band}",
        delta_color="off",
        delta_arrow="off",
        help="About a 90% band. " + str(result.get("method", "")),
    )


# What a member is told (migration 0018: they read the budgets of their own user scope
# and set none).
MEMBER_BUDGETS_NOTE = (
    "You see the budgets of your own runs; budgets are set by your team's manager or an admin."
)


# Over 60 lines: one Streamlit form (list, add, remove) whose widgets share one layout.
def budget_manager(filters: Filters, options: dict[str, list[str]]) -> None:
    """The budgets table (spent and forecast per budget) of the budgets the viewer reads;
    for managers and admins, controls to set or remove one, preset to the view's scope; for
    members, who sets them (MEMBER_BUDGETS_NOTE)."""
    url = data.database_url()
    today = datetime.now(UTC).date()
    budgets = _budget_rows()
    manages = auth.current().role in ("manager", "admin")
    with st.expander("Budgets by scope", expanded=True, icon=":material/savings:"):
        overview = data.cached(budget_queries.budgets_overview, filters, budgets, today=today)
        if overview.empty:
            st.caption(
                "No budget yet: set one below (for everything, a team, a user, ...)."
                if manages
                else "No budget of your own runs yet. " + MEMBER_BUDGETS_NOTE
            )
        else:
            ui.table(
                overview,
                key="budgets_table",
                filename="budgets",
                narrow=[
                    "scope_kind",
                    "scope_value",
                    "period",
                    "amount",
                    "spent",
                    "used",
                    "this_view",
                ],
                column_config={
                    "amount": st.column_config.NumberColumn("Budget (USD)", format="$%.2f"),
                    "spent": st.column_config.NumberColumn("Spent (USD)", format="$%.2f"),
                    "forecast": st.column_config.NumberColumn("Forecast (USD)", format="$%.2f"),
                    "used": st.column_config.ProgressColumn(
                        "Used", min_value=0, max_value=1, format="percent"
                    ),
                    "forecast_share": st.column_config.NumberColumn(
                        "Forecast / budget", format="percent"
                    ),
                    "unpriced": st.column_config.NumberColumn("Unpriced tasks", format="%d"),
                    "this_view": st.column_config.CheckboxColumn("This view's budget"),
                },
            )
        if not manages:
            st.caption(MEMBER_BUDGETS_NOTE)
            return
        cols = st.columns([1, 2, 1, 1])
        kind, value = _scope_picker(filters, options, cols)
        period = cols[2].selectbox("Period", budget_store.PERIODS, key="budget_period")
        amount = cols[3].number_input(
            "Amount (USD)", min_value=0.0, value=None, step=100.0, key="budget_amount"
        )
        if st.button("Save budget", key="budget_save", icon=":material/save:"):
            saved = _attempt(
                budget_store.set_budget,
                url,
                amount=amount if amount else 0,
                period=period,
                scope_kind=kind,
                scope_value=value,
                viewer=_viewer_id(),
            )
            if saved is not None:
                st.rerun()
        if budgets:  # only the budgets the viewer may read, i.e. those of scopes they manage
            labels = {_budget_label(b): b["id"] for b in budgets}
            left, right = st.columns([3, 1], vertical_alignment="bottom")
            doomed = left.selectbox("Remove a budget", list(labels), key="budget_remove_pick")
            if right.button("Remove", key="budget_remove", icon=":material/delete:"):
                gone = _attempt(
                    budget_store.remove_budget, url, budget_id=labels[doomed], viewer=_viewer_id()
                )
                if gone is not None:
                    st.rerun()


def _scope_picker(
    filters: Filters, options: dict[str, list[str]], cols: list[Any]
) -> tuple[str, str | None]:
    """The scope kind and value a budget is set for, preset to the view's scope and offering
    only the scopes the viewer may set (budgets.settable_scopes: a manager their team and
    its people, never "all" or another team)."""
    settable = budget_store.settable_scopes(data.database_url(), viewer=_viewer_id())
    scope, _ = budget_queries.scope_of_filters(filters)
    scope = scope or budget_queries.Scope("all")
    kinds = list(budget_store.SCOPE_KINDS) if settable is None else list(settable)
    kind = cols[0].selectbox(
        "Scope",
        kinds,
        index=kinds.index(scope.kind) if scope.kind in kinds else 0,
        key="budget_scope_kind",
    )
    if kind is None or kind == "all":
        return kind or "all", None
    if settable is not None:
        choices = settable[kind]
    elif kind == "source_type":
        choices = list(budget_store.SOURCE_TYPES)
    else:
        choices = list(options.get(SCOPE_OPTIONS[kind]) or [])
    preset = scope.value if scope.kind == kind and scope.value in choices else None
    value = cols[1].selectbox(
        kind.replace("_", " ").capitalize(),
        choices,
        index=choices.index(preset) if preset else None,
        accept_new_options=settable is None and kind != "source_type",
        key="budget_scope_value",
        placeholder=f"Choose a {kind.replace('_', ' ')}",
    )
    return kind, value


def _budget_label(budget: dict[str, Any]) -> str:
    scope = budget_queries.Scope(budget["scope_kind"], budget["scope_value"])
    return f"{budget['id']}: {scope.label} per {budget['period']}"


_ADDED_KEY = "_override_added"  # session key: the override just added (said after the rerun)
_DRY_RUN_KEY = "_reprice_dry_run"  # session key: (rule, result) of the last dry run


def price_books_manager(options: dict[str, list[str]]) -> None:
    """Price overrides (list, add, retire), re-pricing (dry run, then apply) and the
    re-pricing audit: admins only (row-level security, migration 0018)."""
    url = data.database_url()
    st.subheader("Price books")
    st.caption(
        f"Costs come from {price_books.library_ref()} unless an override is in force when a "
        "task ran. A new override prices new tasks at once; past costs change only when "
        "re-priced (below, or `ai-runs reprice`)."
    )
    added = st.session_state.pop(_ADDED_KEY, None)
    if added is not None:
        st.success(f"Added price override {added}.", icon=":material/check:")
    overrides = pd.DataFrame(
        price_books.list_overrides(url, include_removed=True, viewer=_viewer_id())
    )
    if overrides.empty:
        st.caption("No price override yet.")
    else:
        ui.table(
            overrides,
            key="price_overrides",
            filename="price_overrides",
            column_order=OVERRIDE_ORDER,
        )
    _price_forms(url, options, "override")
    if not overrides.empty:
        _retire_override(url, overrides)
    _price_forms(url, options, "reprice")
    st.markdown("**Re-pricing audit**")
    audit = pd.DataFrame(repricing.reprice_audit(url, viewer=_viewer_id()))
    if audit.empty:
        st.caption("No re-pricing yet.")
    else:
        audit = formatting.audit_frame(audit, ("rule", "price_books"))
        ui.table(audit, key="reprice_audit", filename="reprice_audit")


PRICE_FORMS = {
    "override": ("Add a price override", ":material/add:"),
    "reprice": ("Re-price past tasks", ":material/currency_exchange:"),
}


# A fragment of a lazy expander: the form is drawn only while open, and opening it reruns
# this part only (docs/design.md, "Pages").
@st.fragment
def _price_forms(url: str, options: dict[str, list[str]], form: str) -> None:
    """The expander of PRICE_FORMS[form] and, while open, its form."""
    label, icon = PRICE_FORMS[form]
    draw = _override_form if form == "override" else _reprice_form
    ui.lazy_expander(label, f"{form}_form_open", lambda: draw(url, options), icon=icon)


def _override_form(url: str, options: dict[str, list[str]]) -> None:
    """Provider (no default: chosen on purpose), pattern checked against the provider's
    known models, window, rates; the table above shows the new override at once."""
    cols = st.columns(4)
    providers = sorted(set(pricing.known_providers()) | set(options.get("providers") or []))
    provider = cols[0].selectbox(
        "Provider of the override",
        providers,
        index=None,
        placeholder="Choose a provider",
        key="override_provider",
    )
    pattern = cols[1].text_input("Model or pattern (* ?)", key="override_model")
    valid_from = cols[2].date_input("Valid from (UTC)", value=None, key="override_from")
    valid_to = cols[3].date_input("Valid to (excl.; empty = open)", value=None, key="override_to")
    unknown_ok = st.checkbox(
        "The model is not in genai-prices (a fine-tune or a new release)",
        key="override_unknown_model",
    )
    if provider and pattern.strip():
        covered = pricing.models_matching(provider, pattern.strip())
        if covered:
            st.caption(
                md(f"Covers {len(covered)} known {provider} model(s): {', '.join(covered[:8])}")
            )
        elif not unknown_ok:
            st.warning(md(f"{pattern.strip()} matches no {provider} model genai-prices knows."))
    rates: dict[str, Any] = {}
    rate_cols = st.columns(len(price_books.RATE_FIELDS))
    for column, name in zip(rate_cols, price_books.RATE_FIELDS, strict=True):
        label = name.replace("_per_mtok", " $/M").replace("_", " ")
        rates[name] = column.text_input(label, key=f"override_{name}")
    note = st.text_input("Note (e.g. the contract)", key="override_note")
    if st.button("Add override", key="override_add", icon=":material/add:"):
        row = _attempt(
            price_books.add_override,
            url,
            provider=provider or "",
            model_pattern=pattern,
            valid_from=valid_from,
            valid_to=valid_to,
            note=note,
            viewer=_viewer_id(),
            known_only=not unknown_ok,
            **{k: (v.strip() or None) for k, v in rates.items()},
        )
        if row is not None:
            st.session_state[_ADDED_KEY] = row["id"]
            st.rerun()


def _retire_override(url: str, overrides: pd.DataFrame) -> None:
    live = overrides[overrides["removed_at"].isna()]
    if live.empty:
        return
    labels = {
        f"{r.id}: {r.provider} {r.model_pattern} from {r.valid_from:%Y-%m-%d}": r.id
        for r in live.itertuples()
    }
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    doomed = left.selectbox("Retire an override", list(labels), key="override_pick")
    if right.button("Retire", key="override_remove", icon=":material/delete:"):
        gone = _attempt(
            price_books.remove_override, url, override_id=labels[doomed], viewer=_viewer_id()
        )
        if gone is not None:
            st.rerun()


def _reprice_form(url: str, options: dict[str, list[str]]) -> None:
    """A dry run first (before/after per model, nothing written), then Apply for exactly
    that rule; audited as the CLI's re-pricing is, with the signed-in admin as who ran it."""
    cols = st.columns(3)
    since = cols[0].date_input("Tasks from (UTC)", value=None, key="reprice_since")
    until = cols[1].date_input("Until (excl.; empty = now)", value=None, key="reprice_until")
    model = cols[2].selectbox(
        "Only model", list(options.get("models") or []), index=None,
        placeholder="Every model", key="reprice_model",
    )  # fmt: skip
    rule = {"since": since, "until": until, "model": model}
    if st.button("Dry run", key="reprice_dry_run", icon=":material/preview:"):
        result = _attempt(repricing.reprice, url, dry_run=True, viewer=_viewer_id(), **rule)
        st.session_state[_DRY_RUN_KEY] = (rule, result) if result is not None else None
    last = st.session_state.get(_DRY_RUN_KEY)
    if not last or last[0] != rule:
        st.caption("Run a dry run of this rule first: it shows the change and writes nothing.")
        return
    result = last[1]
    ui.table(reprice_frame(result), key="reprice_preview", filename="reprice_dry_run")
    st.caption(
        f"{result.tasks_changed:,} of {ui.plural(result.tasks_examined, 'task')} would change: "
        f"{ui.money(result.old_total)} → {ui.money(result.new_total)}."
    )
    if st.button("Apply re-pricing", key="reprice_apply", icon=":material/check:", type="primary"):
        done = _attempt(repricing.reprice, url, viewer=_viewer_id(), **rule)
        st.session_state[_DRY_RUN_KEY] = None
        if done is not None:
            data.sync(force=True)
            st.success(
                f"Re-priced {ui.plural(done.tasks_changed, 'task')} "
                f"(recorded as re-pricing {done.audit_id})."
            )


def reprice_frame(result: Any) -> pd.DataFrame:
    """A re-pricing's totals per provider and model: tasks, changed, before and after."""
    rows = [
        {
            "provider": provider,
            "model": model,
            "tasks": totals.tasks,
            "changed": totals.changed,
            "cost_before": float(totals.old_total),
            "cost_after": float(totals.new_total),
        }
        for (provider, model), totals in sorted(result.by_model.items(), key=lambda kv: str(kv[0]))
    ]
    columns = ["provider", "model", "tasks", "changed", "cost_before", "cost_after"]
    return pd.DataFrame(rows, columns=columns)
