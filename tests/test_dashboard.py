"""The Streamlit dashboard through AppTest, on real Postgres + DuckDB: every page on demo data
and on an empty database, filters from the URL, CSV downloads, drill-down, task detail,
run management (budgets: tests/test_dashboard_spend.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from dashboard_support import (
    DEMO_DAYS,
    DEMO_TASKS,
    MediaSpy,
    a_slice,
    app_environment,
    chart_rows,
    chart_title,
    charts,
    create_database,
    csv_frame,
    download,
    drop_database,
    metric_values,
    open_filters,
    open_page,
    opened,
    pages_kept,
    picked,
    shown,
    texts,
)

import queries
from ingest import Tracker, demo
from queries.filters import Filters

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

PAGE_NAMES = ("overview", "cost", "performance", "compare", "runs", "task", "export")


@pytest.fixture(scope="module")
def demo_url(pg_server: str, template_db: str) -> Iterator[str]:
    """A database with a few thousand demo tasks over the last DEMO_DAYS days."""
    name = f"ai_runs_dash_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    demo.generate(url, tasks=DEMO_TASKS, days=DEMO_DAYS, seed=7)
    yield url
    drop_database(pg_server, name)


@pytest.fixture(scope="module")
def demo_app(demo_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The dashboard environment on the demo database; yields its AI_RUNS_HOME."""
    home = tmp_path_factory.mktemp("dashboard_home")
    with app_environment(demo_url, home):
        yield home


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> MediaSpy:
    return MediaSpy().install(monkeypatch)


def _mirror_filters(**kwargs) -> Filters:
    now = datetime.now(UTC)
    end = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    return Filters(start=end - timedelta(days=30), end=end, **kwargs)


# ------------------------------------------------------------------ every page renders


@pytest.mark.parametrize("page", PAGE_NAMES)
def test_page_renders_on_demo_data(demo_app: Path, page: str) -> None:
    at = open_page(page)
    assert not at.exception, at.exception
    assert (
        at.title[0].value
        in {
            "overview": "Overview",
            "cost": "Cost",
            "performance": "Performance",
            "compare": "Compare",
            "runs": "Runs",
            "task": "Task detail",
            "export": "Usage export",
        }[page]
    )
    assert "No runs or tasks in the database yet" not in texts(at)
    if page == "overview":
        # Vega-Lite (no Plotly on this page): spend over time and the open "top" tab's bars
        # (hidden tabs draw nothing).
        charts = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
        assert len(charts) == 2 and not at.get("plotly_chart")
        for spec in charts:
            assert spec["encoding"]["color"]["scale"]["domain"], "data on the demo database"
    if page in ("cost", "performance", "export"):
        # Vega-Lite only: these pages load no Plotly (docs/design.md, "Pages"). Cost and
        # Performance draw two at first; the others wait in closed expanders and tabs.
        if page == "export":  # its A x B chart waits in a closed expander
            assert not at.get("vega_lite_chart")
            at = opened(at, "export_pairs_open")
        drawn = at.get("vega_lite_chart")
        assert len(drawn) >= (1 if page == "export" else 2) and not at.get("plotly_chart")
        for index in range(len(drawn)):
            assert len(chart_rows(at, index)), "every chart has data on the demo database"
    if page in ("overview", "cost", "performance"):
        # No data grid at first: the top list's table, the most expensive runs and the
        # period's slowest tasks wait in closed expanders (docs/design.md, "Pages");
        # opened, they hold the rows.
        assert not at.dataframe
        expander = {"overview": "overview_table_model_open", "cost": "costliest_open",
                    "performance": "perf_tasks_open"}[page]  # fmt: skip
        at = opened(at, expander)
        assert not at.exception, at.exception
    if page in ("overview", "cost", "performance", "runs", "export"):
        assert len(at.dataframe) >= 1
        assert any(len(df.value) for df in at.dataframe)


def test_charts_are_the_same_without_streamlits_spec_converter(
    demo_app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Streamlit without the private converter that data.chart_spec keeps specs with
    draws every chart itself (ui.chart), with the same rows."""
    from dashboard import data

    kept = [chart_rows(at, i) for at in [open_page("cost")] for i in range(len(charts(at)))]
    monkeypatch.setattr(data, "_to_spec", None)
    at = open_page("cost")
    assert not at.exception, at.exception
    drawn = [chart_rows(at, i) for i in range(len(charts(at)))]
    assert len(drawn) == len(kept) >= 2
    for mine, theirs in zip(drawn, kept, strict=True):
        pd.testing.assert_frame_equal(mine, theirs)


def test_sidebar_shows_every_filter(demo_app: Path) -> None:
    at = open_filters(open_page("overview"))
    labels = [w.label for w in at.sidebar.multiselect]
    assert labels == [
        "Source type", "Provider", "Model", "Team", "User", "Tag", "Task status", "Variant"
    ]  # fmt: skip
    assert at.sidebar.selectbox(key="range").value == "Last 30 days"
    assert len(at.sidebar.date_input) == 0  # a custom range only when asked for
    assert len(at.sidebar.multiselect[2].options) >= 3  # models of the demo


def test_closed_filter_panel_draws_no_multiselect_and_an_open_one_filters(
    demo_app: Path,
) -> None:
    at = open_page("overview")
    assert not at.sidebar.multiselect  # closed: nothing but its label and a summary line
    assert "All sources, models, teams, users, tags, statuses." in [
        c.value for c in at.sidebar.caption
    ]
    everything = metric_values(at)
    open_filters(at).sidebar.multiselect(key="provider").set_value(["anthropic"]).run()
    assert not at.exception
    assert at.query_params["provider"] == ["anthropic"] or at.query_params["provider"] == (
        "anthropic"
    )
    assert metric_values(at)["Tasks"] != everything["Tasks"]
    assert "Provider: anthropic" in [c.value for c in at.sidebar.caption]
    at.session_state["list_filters_open"] = False  # closed again: the filter still holds
    at.run()
    assert not at.sidebar.multiselect and "provider" in at.query_params
    assert metric_values(at)["Tasks"] != everything["Tasks"]
    next(b for b in at.sidebar.button if b.label == "Clear filters").click().run()
    assert "provider" not in at.query_params
    assert metric_values(at)["Tasks"] == everything["Tasks"]


def test_overview_kpis_have_units_and_deltas(demo_app: Path) -> None:
    at = open_page("overview")
    metrics = {m.label: m for m in at.metric}
    assert list(metrics) == [
        "Spend",
        "Tasks",
        "Runs",
        "Active users",
        "Tokens",
        "p95 time to first token",
        "Failure rate",
    ]
    assert metrics["Spend"].value.startswith("$")
    assert metrics["p95 time to first token"].value.endswith(("ms", " s"))
    assert metrics["Failure rate"].value.endswith("%")
    assert metrics["Spend"].delta  # the demo has data in the previous 30 days too
    spend = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spend["encoding"]["y"]["title"] == "Cost (USD)"
    assert spend["mark"]["type"] == "bar" and spend["encoding"]["y2"]["field"] == "bottom"
    assert len(spend["encoding"]["color"]["scale"]["domain"]) >= 3  # one colour per model


# ------------------------------------------------------------------ empty database


@pytest.mark.parametrize("page", PAGE_NAMES)
def test_page_on_empty_database_shows_what_to_do(db_url: str, tmp_path: Path, page: str) -> None:
    with app_environment(db_url, tmp_path):
        at = open_page(page)
    assert not at.exception, at.exception
    shown = texts(at)
    assert "No runs or tasks in the database yet" in shown
    codes = [c.value for c in at.code]
    assert "ai-runs demo --tasks 100000" in codes
    assert any("ingest.Tracker()" in c and "create_run" in c for c in codes)


# ------------------------------------------------------------------ filters in the URL


def test_filter_in_url_changes_the_numbers(demo_app: Path, demo_url: str) -> None:
    everything = metric_values(open_page("overview"))
    at = open_page("overview", provider="anthropic")
    assert not at.exception
    filtered = metric_values(at)
    assert "Provider: anthropic" in [c.value for c in at.sidebar.caption]
    assert open_filters(at).sidebar.multiselect(key="provider").value == ["anthropic"]
    assert filtered["Tasks"] != everything["Tasks"]
    assert filtered["Spend"] != everything["Spend"]
    # The numbers are the rollup's for the same filters.
    con = queries.open_mirror(os.environ["AI_RUNS_MIRROR"], read_only=False)
    try:
        kpis = queries.kpis(con.cursor(), _mirror_filters(providers=("anthropic",)))
    finally:
        con.close()
    tasks = kpis.set_index("metric").loc["tasks", "value"]
    assert filtered["Tasks"] == f"{tasks:,.0f}"


def test_date_range_in_url(demo_app: Path) -> None:
    today = datetime.now(UTC).date()
    start = today - timedelta(days=6)
    at = open_page("export", dates=[start.isoformat(), today.isoformat()])
    assert not at.exception
    assert f"{start} – {today} (7 days, UTC)" in texts(at)
    at.selectbox(key="export_grain").set_value("day").run()
    periods = pd.to_datetime(at.dataframe[0].value["period"]).dt.date
    assert periods.min() >= start and periods.max() <= today


def test_page_controls_are_in_the_url_too(demo_app: Path) -> None:
    at = open_page("performance", perf_by="provider", perf_metric="Total time")
    assert not at.exception
    at = opened(at, "perf_groups_open")  # the table waits in a lazy expander
    groups = at.dataframe(key="perf_groups").value
    assert "provider" in groups.columns
    assert "Total time percentiles by provider** (completed tasks, ms)" in texts(at)
    assert at.query_params["perf_metric"] == "Total time"  # the label, as Streamlit binds it
    assert chart_title(charts(at)[0]) == "p95 total time per day by provider"
    cost = open_page("cost", cost_by="team", cost_grain="week")
    assert chart_title(charts(cost)[0]) == "Spend per week by team"
    # The demo has tasks of models without a price: counted as unpriced, not as $0.
    assert any("unpriced tasks" in warning.value for warning in cost.warning)
    assert int(metric_values(cost)["Unpriced tasks"].replace(",", "")) > 0


def test_filters_survive_a_page_switch(demo_app: Path) -> None:
    at = open_page("overview", model=["gpt-4o"], status="completed")
    at.switch_page("views/cost.py").run()
    assert not at.exception
    open_filters(at)
    assert at.sidebar.multiselect(key="model").value == ["gpt-4o"]
    assert at.sidebar.multiselect(key="status").value == ["completed"]
    assert at.query_params["model"] == "gpt-4o"


# ------------------------------------------------------------------ CSV downloads


def test_csv_download_holds_the_rows_shown(demo_app: Path, spy: MediaSpy) -> None:
    at = open_page("export")
    at.selectbox(key="export_by").set_value("provider").run()
    shown = at.dataframe[0].value
    assert len(shown) > 0
    assert list(shown.columns) == ["period", "provider", "cost", "tasks", "tokens_total"]
    served = csv_frame(download(at, spy, "Download CSV"))
    assert len(served) == len(shown)
    # The CSV names its units; cells are plain decimals and ISO dates.
    assert list(served.columns) == [
        "Period start (UTC)",
        "Provider",
        "Cost (USD)",
        "Tasks",
        "Total tokens",
    ]
    assert served["Tasks"].tolist() == shown["tasks"].tolist()
    # 12 significant digits in the CSV: the same numbers, without float noise.
    assert served["Cost (USD)"].tolist() == pytest.approx(shown["cost"].astype(float).tolist())
    assert served["Period start (UTC)"].astype(str).str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()


def test_every_table_has_a_csv_download(demo_app: Path, spy: MediaSpy) -> None:
    for page in ("overview", "cost", "performance", "runs", "export"):
        at = open_page(page)
        buttons = [b for b in at.get("download_button") if b.proto.label.startswith("Download CSV")]
        assert len(buttons) >= len(at.dataframe), page
    at = opened(open_page("performance"), "perf_tasks_open")  # the period's list is lazy
    slowest = at.dataframe(key="perf_tasks").value
    served = csv_frame(
        download(at, spy, f"Download CSV ({len(slowest):,} row{'' if len(slowest) == 1 else 's'})")
    )
    assert served["Task id"].tolist() == [str(t) for t in slowest["task_id"]]


# ------------------------------------------------------------------ drill-down


def test_drilldown_from_a_table_row_lists_its_slowest_tasks(demo_app: Path) -> None:
    at = opened(open_page("performance"), "perf_groups_open")
    groups = at.dataframe(key="perf_groups").value
    model = groups.iloc[0]["model"]
    at.session_state["perf_groups"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert f"Tasks behind model = {model}" in [shown(s) for s in at.subheader]
    tasks = at.dataframe(key="perf_tasks").value
    assert len(tasks) > 0
    assert set(tasks["model"]) == {model}
    ttft = tasks["time_to_first_token"].dropna().tolist()
    assert ttft == sorted(ttft, reverse=True)


def test_drilldown_from_a_chart_point(demo_app: Path) -> None:
    at = open_page("performance")
    period, model = a_slice(at, 0, last=True)
    at.session_state["perf_trend"] = picked(period, model)
    at.run()
    assert not at.exception
    assert f"Tasks behind model = {model}, day of {period}" in [shown(s) for s in at.subheader]
    tasks = at.dataframe(key="perf_tasks").value
    assert set(tasks["model"]) == {model}
    assert {str(pd.Timestamp(t).date()) for t in tasks["created_at"]} == {period}


def test_the_slower_model_headline_drills_into_its_last_week(demo_app: Path) -> None:
    at = open_page("performance")
    focus = [b for b in at.button if (b.key or "").startswith("perf_focus_")]
    assert focus, "the demo has a model that got slower in the last 7 days"
    model = focus[0].key.removeprefix("perf_focus_")
    assert any(model in shown(w) for w in at.warning)
    trend = charts(at)[0]
    assert f"{model} ▲ slower" in trend["layer"][0]["encoding"]["color"]["scale"]["domain"]
    with pages_kept(at):  # the button reruns the page's body alone (a keyed st.rerun)
        focus[0].click().run()
    assert not at.exception
    assert f"Tasks behind model = {model}, last 7 days" in [shown(s) for s in at.subheader]
    tasks = at.dataframe(key="perf_tasks").value
    assert len(tasks) > 0 and set(tasks["model"]) == {model}
    week_ago = pd.Timestamp.now(tz="UTC").normalize() - pd.Timedelta(days=6)
    assert pd.to_datetime(tasks["created_at"], utc=True).min() >= week_ago


def test_selecting_a_task_opens_its_detail(demo_app: Path) -> None:
    at = opened(open_page("performance"), "perf_tasks_open")
    tasks = at.dataframe(key="perf_tasks").value
    task_id = str(tasks.iloc[0]["task_id"])
    at.session_state["perf_tasks"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.title[0].value == "Task detail"
    assert at.query_params["task_id"] == task_id
    assert task_id in texts(at)


def test_task_detail_by_query_param(demo_app: Path, demo_url: str, spy: MediaSpy) -> None:
    with Tracker(url=demo_url) as tracker:
        page = tracker.list_runs(limit=5, status=None)
        run = tracker.get_run(next(r["id"] for r in page.rows if r["task_count"]))
    task = run["tasks"][0]
    at = open_page("task", task_id=str(task["task_id"]))
    assert not at.exception
    shown = texts(at)
    assert str(task["task_id"]) in shown
    assert "Request payload" in shown and "Response text" in shown and "Errors" in shown
    fields = at.dataframe[0].value.set_index("field")["value"]
    assert fields["model"] == str(task["model"])
    assert fields["tokens_total"] == str(task["tokens_total"])
    served = json.loads(download(at, spy, "Download task as JSON"))
    assert served["task_id"] == str(task["task_id"])


def test_task_page_without_an_id_offers_the_slowest_tasks(demo_app: Path) -> None:
    at = open_page("task")
    slowest = at.dataframe(key="task_pick").value
    assert len(slowest) > 0
    total = slowest["total_time"].dropna().tolist()
    assert total == sorted(total, reverse=True)
    at.session_state["task_pick"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.query_params["task_id"] == str(slowest.iloc[1]["task_id"])
    assert at.text_input(key="task_id").value == str(slowest.iloc[1]["task_id"])


def test_unknown_task_id_is_a_clear_message(demo_app: Path) -> None:
    at = open_page("task", task_id="not-a-uuid")
    assert not at.exception
    assert at.error and "No such task" in at.error[0].value


# ------------------------------------------------------------------ runs


def test_runs_list_search_and_open_a_run(demo_app: Path) -> None:
    at = open_page("runs")
    runs = at.dataframe[0].value
    assert 0 < len(runs) <= 25
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.query_params["run_id"] == str(runs.iloc[0]["id"])
    assert shown(at.header[0]).endswith(str(runs.iloc[0]["name"]))
    assert "Conversation" in [t.label for t in at.tabs]


def test_runs_pagination_walks_every_page(demo_app: Path, demo_url: str) -> None:
    at = open_page("runs")
    first = set(at.dataframe[0].value["id"])
    at.button(key="runs_next").click().run()
    second = set(at.dataframe[0].value["id"])
    assert first and second and not first & second
    at.button(key="runs_prev").click().run()
    assert set(at.dataframe[0].value["id"]) == first


def test_run_view_management_and_exports(demo_app: Path, demo_url: str, spy: MediaSpy) -> None:
    # The demo ends "now", so which runs come first changes with the clock: pick one that
    # has an assistant reply (a fine-tuning example needs one) rather than the first.
    with Tracker(url=demo_url) as tracker:
        page = tracker.list_runs(limit=100)
        run_id = next(
            r["id"]
            for r in page.rows
            if r["task_count"]
            and any(
                m["role"] == "assistant"
                for m in tracker.get_run(r["id"], with_tasks=False)["messages"]
            )
        )
        # The demo stars some runs: the Star button toggles, so compare with before.
        starred_before = tracker.get_run(run_id, with_tasks=False)["is_starred"]
    at = open_page("runs", run_id=str(run_id))
    assert not at.exception
    assert at.chat_message, "the conversation is shown as a chat"
    assert len(at.get("plotly_chart")) == 1  # the task timeline
    exported = json.loads(download(at, spy, "Export run as JSON"))
    assert exported["id"] == str(run_id) and exported["tasks"]
    jsonl = download(at, spy, "Export as fine-tuning JSONL").decode()
    example = json.loads(jsonl.splitlines()[0])
    assert {m["role"] for m in example["messages"]} <= {"system", "user", "assistant"}
    assert any(m["role"] == "assistant" for m in example["messages"])

    at.text_input(key="run_new_name").set_value("Renamed from the dashboard")
    at.button(key="run_rename").click().run()
    assert not at.exception
    at.button(key="run_star").click().run()
    at.button(key="run_archive").click().run()
    assert not at.exception
    with Tracker(url=demo_url) as tracker:
        after = tracker.get_run(run_id, with_tasks=False)
    assert after["name"] == "Renamed from the dashboard"
    assert after["is_starred"] is (not starred_before)
    assert after["status"] == "archived"
    assert "Renamed from the dashboard" in shown(at.header[0])

    at.button(key="run_restore").click().run()
    at.selectbox(key="run_fork_at").set_value(0)
    at.button(key="run_fork_go").click().run()
    assert not at.exception
    forked_id = at.query_params["run_id"]
    assert forked_id != str(run_id)
    with Tracker(url=demo_url) as tracker:
        fork = tracker.get_run(forked_id, with_tasks=False)
        assert tracker.get_run(run_id, with_tasks=False)["status"] == "active"
    assert str(fork["parent_run_id"]) == str(run_id)
    assert fork["message_count"] == 1


# ------------------------------------------------------------------ cost


def test_cost_bar_lists_the_most_expensive_tasks_behind_it(demo_app: Path) -> None:
    at = open_page("cost")
    period, model = a_slice(at, 0)
    at.session_state["cost_spend"] = picked(period, model)
    at.run()
    assert not at.exception
    assert any(f"behind model = {model}, day of {period}" in shown(m) for m in at.markdown)
    tasks = at.dataframe(key="cost_behind").value
    assert set(tasks["model"]) == {model}
    costs = tasks["cost"].dropna().astype(float).tolist()
    assert costs == sorted(costs, reverse=True)


def test_what_if_names_the_saving(demo_app: Path) -> None:
    at = opened(open_page("cost"), "whatif_open")
    at.selectbox(key="whatif_provider").set_value("openai").run()
    at.selectbox(key="whatif_model").set_value("gpt-4o-mini").run()
    assert not at.exception
    assert any(
        "The same tokens on **openai/gpt-4o-mini** would have cost" in shown(m) for m in at.markdown
    )
    table = at.dataframe[-1].value
    assert {"actual_cost", "what_if_cost", "difference"} <= set(table.columns)


# ------------------------------------------------------------------ live data


def _track_tasks(url: str, count: int, model: str = "gpt-4o") -> None:
    with Tracker(url=url, user_id="live-user") as tracker:
        run = tracker.create_run("chat", messages=[{"role": "user", "content": "Hello"}])
        for _ in range(count):
            task = tracker.create_task(run["id"], provider="openai", model=model)
            tracker.complete_task(task["task_id"], "Hi!", tokens_input=12, tokens_output=3)


def test_new_tasks_show_after_a_sync(db_url: str, tmp_path: Path) -> None:
    _track_tasks(db_url, 3)
    with app_environment(db_url, tmp_path):
        at = open_page("overview")
        assert metric_values(at)["Tasks"] == "3"
        _track_tasks(db_url, 2, model="gpt-4o-mini")
        next(b for b in at.sidebar.button if b.label == "Sync now").click().run()
        assert not at.exception
        assert metric_values(at)["Tasks"] == "5"
        assert "gpt-4o-mini" in open_filters(at).sidebar.multiselect(key="model").options


def test_auto_refresh_syncs_and_shows_when(db_url: str, tmp_path: Path) -> None:
    _track_tasks(db_url, 1)
    with app_environment(db_url, tmp_path):
        at = open_page("overview")
        at.sidebar.toggle(key="auto_refresh").set_value(True).run()
        assert not at.exception
        assert any(c.value.startswith("Live: checked") for c in at.sidebar.caption)


def test_unreachable_database_is_a_clear_message(pg_server: str, tmp_path: Path) -> None:
    from ingest.store import embedded

    missing = embedded.with_database(pg_server, f"ai_runs_missing_{os.getpid()}")
    with app_environment(missing, tmp_path):
        at = open_page()
    assert not at.exception
    assert at.error and "Cannot reach the database" in at.error[0].value
    assert "DATABASE_URL" in at.error[0].value
