"""Issue 16 in a Streamlit session (AppTest) on a demo database: names instead of ids,
honest counts and latency scope, error groups, date presets, A × B breakdowns, the
selection in the URL, and the runs list's star, numbering and search wording."""

from __future__ import annotations

from pathlib import Path

import pytest
import test_dashboard as shared
from dashboard_support import (
    MediaSpy,
    a_slice,
    chart_title,
    charts,
    csv_frame,
    download,
    open_filters,
    open_page,
    opened,
    texts,
)

from dashboard import data
from ingest import Tracker

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

# The demo database and app environment of test_dashboard (module-scoped fixtures).
demo_url = shared.demo_url
demo_app = shared.demo_app
spy = shared.spy


def _table_with(at, column: str):
    """The first table on the page with `column` (plain tables have no key in AppTest)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_users_show_by_display_name_with_the_id_beside(demo_app: Path, demo_url: str) -> None:
    with Tracker(url=demo_url) as tracker, tracker._transaction() as conn:
        rows = conn.execute(
            "SELECT id, display_name FROM ai_users WHERE display_name IS NOT NULL"
        ).fetchall()
    names = {r["id"]: r["display_name"] for r in rows}
    assert names
    at = open_page("overview", top="Users")  # the Users tab (only the open tab computes)
    users = _table_with(opened(at, "overview_table_user_open"), "user_id")
    assert list(users.columns[:2]) == ["user", "user_id"]
    for row in users.head(5).itertuples():
        assert row.user == names.get(row.user_id, row.user_id)
    assert any(row.user != row.user_id for row in users.itertuples())
    # The user filter lists (and so searches) people by name, the id beside it.
    user_filter = open_filters(at).sidebar.multiselect(key="user")
    some_id = next(iter(names))
    assert f"{names[some_id]} · {some_id}" in user_filter.options


def test_csv_of_a_user_table_has_names_and_units(demo_app: Path, spy: MediaSpy) -> None:
    at = opened(open_page("overview", top="Users"), "overview_table_user_open")
    served = csv_frame(download(at, spy, "Download CSV"))  # the open Users tab's table
    assert list(served.columns[:3]) == ["User", "User id", "Cost (USD)"]


def test_latency_says_completed_tasks_and_a_failed_filter_is_named(demo_app: Path) -> None:
    at = opened(open_page("performance"), "perf_tasks_open")  # the period's list is lazy
    assert "completed tasks" in texts(at)
    caption = next(c.value for c in at.caption if "completed tasks, slowest" in c.value)
    assert caption.startswith(("Top 200 of ", "All "))
    assert set(at.dataframe(key="perf_tasks").value["status"]) == {"completed"}

    failed = open_page("performance", status="failed", perf_tab="Failures and errors")
    assert not failed.exception
    warning = " ".join(w.value for w in failed.warning)
    assert "leaves out completed tasks" in warning
    assert not [s for s in failed.success if "got markedly slower" in s.value]
    titles = [chart_title(spec) for spec in charts(failed)]
    assert titles and all("failure" in t.lower() for t in titles)  # no empty latency chart


def test_an_error_group_lists_all_its_tasks(demo_app: Path) -> None:
    at = open_page("performance", perf_tab="Failures and errors")
    errors = at.dataframe(key="perf_errors").value
    assert len(errors) > 0
    at.session_state["perf_errors"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    members = at.dataframe(key="perf_error_tasks").value
    assert len(members) == min(1000, int(errors.iloc[0]["tasks"]))
    assert str(errors.iloc[0]["sample_task_id"]) in set(members["task_id"].astype(str))


def test_date_presets_and_a_half_picked_range(demo_app: Path) -> None:
    at = open_page("overview", range="Last 7 days")
    assert "(7 days, UTC)" in at.caption[0].value
    at = open_page("overview", range="Custom range")
    picker = at.sidebar.date_input(key="dates")
    before = at.caption[0].value
    first = picker.value[0]
    picker.set_value((first,)).run()  # the first click of a range
    assert not at.exception
    assert at.caption[0].value == before  # the previous complete range still shows
    assert any("Pick the last day" in c.value for c in at.sidebar.caption)


def test_cost_breakdown_by_two_dimensions(demo_app: Path) -> None:
    at = open_page("cost", cost_pairs_a="team", cost_pairs_b="model")
    assert not at.exception
    table = _table_with(at, "team")
    assert list(table.columns[:2]) == ["team", "model"]
    chart = next(spec for spec in charts(at) if "×" in chart_title(spec))
    assert chart_title(chart) == "Spend by team × model"
    assert chart["encoding"]["x"]["stack"] == "zero"  # stacked bars, one per team
    weekly = open_page("export", export_pairs_a="user", export_pairs_b="week")
    assert not weekly.exception
    pairs = [d.value for d in weekly.dataframe if "period" in d.value.columns]
    assert any("user" in frame.columns and "user_id" in frame.columns for frame in pairs)


def test_a_drilldown_selection_opens_from_the_url(demo_app: Path) -> None:
    at = open_page("cost")
    period, model = a_slice(at, 0)
    shared = open_page("cost", cost_pick=f"{period}|{model}")
    assert not shared.exception
    assert any("Most expensive tasks behind model" in m.value for m in shared.markdown)
    behind = shared.dataframe(key="cost_behind").value
    assert set(behind["model"]) == {model}


def test_runs_list_has_one_checkbox_and_the_run_view_counts_from_one(demo_app: Path) -> None:
    at = open_page("runs")
    rows = at.dataframe[0].value
    assert "is_starred" not in rows.columns
    at.text_input(key="runs_search").set_value("the").run()
    assert "covers the runs created in the sidebar's period" in texts(at)
    searched = at.dataframe[0].value
    if len(searched):
        assert "matched_in" in searched.columns
    run_id = str(rows.iloc[0]["id"])
    view = open_page("runs", run_id=run_id)
    assert not view.exception
    star = view.button(key="run_star")
    assert star.label in ("Star", "Unstar")
    assert star not in [b for e in view.expander for b in e.button]
    numbered = [c.value for c in view.caption if c.value.startswith("#")]
    if numbered:
        assert numbered[0].startswith("#1 ")


@pytest.mark.parametrize("page", ["overview", "cost", "performance", "export"])
def test_one_page_view_asks_each_rollup_once_and_hidden_tabs_nothing(
    demo_app: Path, page: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple] = []
    original = data._cached

    def counting(key, name, rollup, filters, filters_key, args, kwargs):
        asked.append((name, filters_key, args, kwargs))
        return original(key, name, rollup, filters, filters_key, args, kwargs)

    at = open_page(page)
    monkeypatch.setattr(data, "_cached", counting)
    at.run()  # one page view, counted
    assert not at.exception, at.exception
    assert asked, "the page reads its numbers through data.cached"
    twice = {call[:1] + call[2:] for call in asked if asked.count(call) > 1}
    assert not twice, f"asked more than once in one page view: {twice}"
    names = [call[0] for call in asked]
    if page == "overview":  # the Models tab is open: the Users and Teams tabs compute nothing
        tops = [dict(call[3]).get("by") for call in asked if call[0].endswith("usage_by")]
        assert tops == ["model"]
    if page == "cost":  # the Runs tab is open
        assert not [n for n in names if n.endswith(("most_expensive_tasks", "histogram"))]
    if page == "performance":  # the detail tabs are closed
        assert not [n for n in names if n.endswith(("error_groups", "tokens_per_second"))]


def test_an_empty_state_names_only_the_filters_that_are_set() -> None:
    from dashboard import state
    from queries.filters import Filters

    plain = Filters.last_days(30)
    text = state.nothing_text(plain)
    assert text.startswith(f"No tasks in {state.period_text(plain)}:")
    assert "filter" not in text and "choose a longer period" in text
    for label in ("Team", "Model", "Provider", "User", "Tag", "Task status", "Source type"):
        assert label not in text
    red = Filters.last_days(30, teams=("red",), models=("gpt-4o",))
    text = state.nothing_text(red, "runs created", ["Run status active"])
    assert "with Model gpt-4o; Team red; Run status active:" in text  # sidebar order
    assert "clear a filter" in text
    # a filter that does not apply to the list is not named (runs: no team, no model)
    text = state.nothing_text(red, "runs created", applies=("users", "tags"))
    assert "Team" not in text and "filter" not in text


def test_an_empty_runs_list_says_which_filters_are_set(demo_app: Path) -> None:
    at = open_page("runs")
    at.text_input(key="runs_search").set_value("no run is called this").run()
    said = next(i.value for i in at.info if "No runs created" in i.value)
    assert "Run status active" in said and "no run is called this" in said
    assert "Team" not in said and "match these filters" not in said


def test_counts_take_their_plural_form() -> None:
    from dashboard import state, ui
    from queries.filters import Filters

    assert ui.top_of(1, 1, "task") == "All 1 task"
    assert ui.top_of(200, 547, "completed task") == "Top 200 of 547 completed tasks"
    assert ui.top_of(3, 3) == "All 3"
    assert state.period_text(Filters.last_days(1)).endswith("(1 day, UTC)")
    assert state.period_text(Filters.last_days(30)).endswith("(30 days, UTC)")
    assert ui.plural(1, "row") == "1 row" and ui.plural(2, "row") == "2 rows"
