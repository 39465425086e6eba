"""The dashboard's parts without a Streamlit session: figure builders on real rollup output,
the slow-down headline, run exports, URL filters, remembered settings and the CLI."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from dashboard_support import create_database, drop_database

import queries
from dashboard import cli, export, figures, insights, settings, state
from dashboard.command import build_parser
from ingest import Tracker, demo
from queries import drilldown
from queries.filters import Filters

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers


@pytest.fixture(scope="module")
def mirror(pg_server: str, template_db: str, tmp_path_factory) -> Iterator[tuple[str, object]]:
    """(database URL, DuckDB mirror connection) over a small demo."""
    name = f"ai_runs_parts_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    demo.generate(url, tasks=1500, days=40, seed=3)
    path = tmp_path_factory.mktemp("parts") / "mirror.duckdb"
    con = queries.open_mirror(path)
    queries.sync_mirror(url, con=con)
    yield url, con
    con.close()
    drop_database(pg_server, name)


def _last_days(days: int = 30, **kwargs) -> Filters:
    return Filters.last_days(days, **kwargs)


def _spec(chart) -> dict:
    """An Altair chart's Vega-Lite spec."""
    return chart.to_dict()


def _rows(chart, layer: int | None = None) -> pd.DataFrame:
    """The rows a chart (or one layer of it) draws."""
    target = chart.layer[layer] if layer is not None else chart
    return target.data


def _encoding(chart, layer: int | None = None) -> dict:
    spec = _spec(chart)
    return spec["layer"][layer]["encoding"] if layer is not None else spec["encoding"]


# ------------------------------------------------------------------ figures


def test_spend_figure_stacks_one_colour_per_model(mirror) -> None:
    _, con = mirror
    usage = queries.usage_over_time(con, _last_days(), "day", "model")
    chart = figures.spend_over_time(usage, "model", "day", selectable=True)
    encoding = _encoding(chart)
    assert encoding["y2"]["field"] == "bottom" and encoding["y"]["title"] == "Cost (USD)"
    assert set(encoding["color"]["scale"]["domain"]) == {
        figures.label(g) for g in usage["group"].unique()
    }
    rows = _rows(chart)
    assert rows["value"].sum() == pytest.approx(float(usage["cost"].astype(float).sum()))
    # Each bar names its slice for drill-down, and a click selects exactly those fields.
    first = rows.iloc[0]
    assert first["pick_group"] == first["name"]
    assert date.fromisoformat(first["pick_period"])
    assert _spec(chart)["params"][0]["select"]["fields"] == ["pick_period", "pick_group"]


def test_latency_figures_have_ms_axes_and_drilldown_data(mirror) -> None:
    _, con = mirror
    filters = _last_days()
    trend = queries.latency_percentiles(con, filters, "ttft", "model", "day")
    chart = figures.percentiles_over_time(trend, "ttft", "p95", "model", "day", selectable=True)
    assert "(ms" in _encoding(chart, 0)["y"]["title"]
    point = _rows(chart).iloc[0]
    period, group = point["pick_period"], point["pick_group"]
    assert date.fromisoformat(period) and group == point["name"]
    event = {"selection": {"pick": [{"pick_period": period, "pick_group": group}]}}
    assert figures.selected_slice(event) == (period, group)
    assert figures.selected_slice({"selection": {"pick": {}}}) is None  # nothing clicked
    assert figures.selected_slice(None) is None

    by_model = queries.latency_percentiles(con, filters, "total_time", "model")
    bars = figures.percentiles_by_group(by_model, "total_time", "model")
    assert _encoding(bars)["color"]["scale"]["domain"] == list(figures.PERCENTILES)
    assert _encoding(bars)["y"]["title"] == "Total time (ms)"

    hist = queries.latency_histogram(con, filters, "ttft", 30)
    chart = figures.latency_histogram(hist, "ttft")
    assert _encoding(chart)["x"]["title"] == "Time to first token (ms, log scale)"
    assert _rows(chart)["tasks"].sum() == int(hist["tasks"].sum())

    speed = figures.tokens_per_second(queries.tokens_per_second(con, filters, "model"))
    assert _encoding(speed, 0)["y"]["title"] == "Output speed (tokens/s)"


def test_failure_and_cost_figures(mirror) -> None:
    _, con = mirror
    filters = _last_days()
    over_time = figures.failure_rates_over_time(queries.failure_rates(con, filters, grain="week"))
    assert _encoding(over_time)["y"]["title"] == "Share of finished tasks (%)"
    assert _encoding(over_time)["color"]["scale"]["domain"] == ["failed", "cancelled"]
    histogram = drilldown.cost_per_run_histogram(con, filters)
    per_run = figures.cost_per_run(histogram)
    assert _encoding(per_run)["x"]["title"] == "Cost per run (USD, log scale)"
    costs = queries.cost_per_run(con, filters)["cost"]
    assert histogram["runs"].sum() == (costs > 0).sum()
    what_if = queries.what_if_cost(con, filters, "openai", "gpt-4o-mini")
    chart = figures.what_if(what_if, "openai/gpt-4o-mini")
    assert _encoding(chart)["color"]["scale"]["domain"] == ["actual", "on openai/gpt-4o-mini"]


def test_forecast_figure_shows_actuals_forecast_band_and_budget(mirror) -> None:
    _, con = mirror
    result = queries.spend_forecast(con, _last_days(), budget=50.0)
    chart = figures.forecast(result)
    spec = _spec(chart)
    names = spec["layer"][0]["encoding"]["color"]["scale"]["domain"]
    assert "actual" in names
    if (result["daily"]["kind"] == "forecast").any():
        assert "forecast" in names and "forecast band (≈90%)" in names
    assert "budget $50" in _rows(chart, -1)["text"].tolist()
    assert spec["layer"][-2]["encoding"]["y"]["field"] == "budget"
    assert any(
        layer["encoding"]["y"].get("title") == "Cumulative cost (USD)" for layer in spec["layer"]
    )


def test_empty_frames_give_a_figure_that_says_so() -> None:
    chart = figures.spend_over_time(pd.DataFrame(columns=["period", "group", "cost"]))
    assert _rows(chart)["line"].tolist() == ["No tasks to show in this view."]
    said = "No tasks in the chosen period with Team red: clear a filter or widen it."
    chart = figures.spend_over_time(pd.DataFrame(columns=["period", "group", "cost"]), nothing=said)
    assert _rows(chart)["line"].tolist() == [
        "No tasks in the chosen period with Team red: clear a",
        "filter or widen it.",
    ]
    assert figures.label(None) == "(not set)"


def test_run_timeline(mirror) -> None:
    url, _ = mirror
    with Tracker(url=url) as tracker:
        rows = tracker.list_runs(limit=50, status=None).rows
        run = tracker.get_run(next(r["id"] for r in rows if r["task_count"] >= 2))
    fig = figures.run_timeline(pd.DataFrame(run["tasks"]))
    assert len(fig.data) == 2 and len(fig.data[0].y) == len(run["tasks"])


# ------------------------------------------------------------------ insights


def test_slowdowns_names_the_models_that_got_slower(mirror) -> None:
    _, con = mirror
    end = Filters.last_days(1).end
    recent = Filters(start=end - timedelta(days=7), end=end)
    before = Filters(start=end - timedelta(days=14), end=end - timedelta(days=7))
    now = queries.latency_percentiles(con, recent, "ttft", "model")
    then = queries.latency_percentiles(con, before, "ttft", "model")
    slower = insights.slowdowns(now, then, "p95", min_tasks=3, min_ratio=1.0)
    for row in slower.itertuples():
        assert row.recent_ms == pytest.approx(float(now.set_index("group").loc[row.group, "p95"]))
        assert row.ratio == pytest.approx(row.recent_ms / row.previous_ms)
    assert slower["ratio"].tolist() == sorted(slower["ratio"], reverse=True)
    assert insights.slowdowns(now.iloc[0:0], then).empty


# ------------------------------------------------------------------ exports


def test_fine_tuning_jsonl_keeps_chat_roles_and_needs_a_reply() -> None:
    run = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "tool", "content": "ignored"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
        ]
    }
    lines = export.fine_tuning_jsonl([run, {"messages": [{"role": "user", "content": "x"}]}])
    assert lines.count("\n") == 1
    assert json.loads(lines) == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
        ]
    }
    assert export.fine_tuning_jsonl([]) == ""
    text = export.run_json({"id": "x", "when": datetime(2026, 1, 1, tzinfo=UTC)})
    assert json.loads(text)["when"].startswith("2026-01-01")


# ------------------------------------------------------------------ URL filters


def test_filters_from_the_url_state() -> None:
    filters = state.to_filters(
        (date(2026, 10, 1), date(2026, 10, 31)), {"provider": ["openai"], "status": ["failed"]}
    )
    assert filters.start == datetime(2026, 10, 1, tzinfo=UTC)
    assert filters.end == datetime(2026, 11, 1, tzinfo=UTC)  # the last day is included
    assert filters.providers == ("openai",) and filters.statuses == ("failed",)
    one_day = state.to_filters((date(2026, 10, 5),), {})
    assert one_day.end - one_day.start == timedelta(days=1)
    default = state.to_filters(None, {})
    assert default.end - default.start == timedelta(days=state.DEFAULT_DAYS)
    assert state.period_text(filters) == "2026-10-01 – 2026-10-31 (31 days, UTC)"


# ------------------------------------------------------------------ settings and CLI


def test_settings_are_remembered_in_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AI_RUNS_HOME", str(tmp_path))
    assert settings.load_setting("monthly_budget", 0.0) == 0.0
    settings.save_setting("monthly_budget", 2500.0)
    assert settings.load_setting("monthly_budget") == 2500.0
    assert json.loads((tmp_path / "dashboard.json").read_text())["monthly_budget"] == 2500.0
    (tmp_path / "dashboard.json").write_text("not json")
    assert settings.load_setting("monthly_budget", 1.0) == 1.0


def test_cli_dashboard_command() -> None:
    args = build_parser().parse_args(["dashboard", "--demo", "--port", "8600"])
    assert args.handler is cli.run and args.demo and args.port == 8600
    command = cli.streamlit_command(8600)
    assert command[:4] == [command[0], "-m", "streamlit", "run"]
    assert Path(command[4]).is_absolute() and command[4].endswith("dashboard/app.py")
    assert command[command.index("--browser.gatherUsageStats") + 1] == "false"
    # No file watcher and no full garbage collection after each script run: both held back
    # every page load and widget change (README, Performance, "Dashboard pages").
    assert command[command.index("--server.fileWatcherType") + 1] == "none"
    assert command[command.index("--runner.postScriptGC") + 1] == "false"
    assert cli._redacted("postgresql://me:secret@db:5432/x") == "postgresql://me@db:5432/x"


def test_counts_read_in_the_right_plural() -> None:
    from dashboard.formatting import plural

    assert plural(1, "task") == "1 task"
    assert plural(2, "task") == "2 tasks"
    assert plural(0, "row") == "0 rows"
    assert plural(1204, "run") == "1,204 runs"
    assert plural(3, "reply", "replies") == "3 replies"
