"""Issue 16's shared parts, without a Streamlit session: one number format, CSV cells and
headers, stable colours, date presets, and the honest drill-down numbers on a real mirror."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pandas as pd
import pytest
from dashboard_support import create_database, drop_database

import queries
from dashboard import figures, formatting, list_filters, state
from dashboard.figures import colours
from ingest import demo
from queries import drilldown, failures, usage
from queries.filters import Filters

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

# --- formatting ---------------------------------------------------------------------------


def test_one_format_for_money_durations_and_tokens() -> None:
    assert formatting.money(1234.567) == "$1,234.57"
    assert formatting.money(None) == formatting.money(float("nan")) == "–"
    assert formatting.millis(840) == "840 ms"
    assert formatting.millis(12_500) == "12.50 s"
    assert formatting.millis(180_000) == "3.0 min"
    assert formatting.tokens(12_345) == "12.3k tokens"
    assert formatting.count(9_876) == "9,876"
    assert formatting.count(2_896_100) == "2.9M"
    assert formatting.percent(0.125) == "12.5%"
    assert formatting.change(None) is None and formatting.change(0.1) == "+10.0%"


def test_plain_numbers_have_no_float_noise_or_exponent() -> None:
    assert formatting.plain_number(139.56497089500002) == "139.564970895"
    assert formatting.plain_number(Decimal("0E-10")) == "0"
    assert formatting.plain_number(Decimal("1.2300")) == "1.23"
    assert formatting.plain_number(Decimal("1E+3")) == "1000"
    assert formatting.plain_number(1200.0) == "1200"
    assert formatting.plain_number(0.0000123456) == "0.0000123456"
    assert formatting.plain_number(-0.0) == "0"
    assert formatting.plain_number(7) == "7"
    assert formatting.plain_number(None) == formatting.plain_number(float("nan")) == ""


def test_csv_frame_has_units_in_headers_plain_decimals_and_iso_times() -> None:
    frame = pd.DataFrame(
        {
            "period": pd.to_datetime(["2026-10-01", "2026-10-02"]),
            "created_at": pd.to_datetime(
                ["2026-10-01 12:00:01.500", "2026-10-02 00:00:00.000"], utc=True
            ),
            "cost": [139.56497089500002, 0.0],
            "total_time": [1234.0, None],
            "failure_rate": [0.125, 0.0],
            "tags": [["a", "b"], []],
            "model": ["gpt-4o", None],
        }
    )
    text = formatting.csv_frame(frame).to_csv(index=False)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "Period start (UTC)",
        "Created (UTC)",
        "Cost (USD)",
        "Total time (ms)",
        "Failure rate (%)",
        "Tags",
        "Model",
    ]
    assert rows[1] == [
        "2026-10-01",
        "2026-10-01T12:00:01.500000Z",
        "139.564970895",
        "1234",
        "12.5",
        "a; b",
        "gpt-4o",
    ]
    assert rows[2] == ["2026-10-02", "2026-10-02T00:00:00Z", "0", "", "0", "", ""]
    assert "e-" not in text.lower() and "0E" not in text


# --- colours -------------------------------------------------------------------------------


def test_each_value_keeps_one_distinct_colour_whatever_the_chart_shows() -> None:
    models = [f"model-{i:02d}" for i in range(30)]
    mapping = colours.colour_map(models)
    assert len(set(mapping.values())) == len(mapping) == len(colours.PALETTE)
    assert colours.OTHER_COLOUR not in mapping.values()
    # The same value gets the same colour whichever subset of values a chart draws.
    assert colours.colour_map(reversed(models)) == mapping
    legend = colours.Legend(colours=mapping)
    frame = pd.DataFrame(
        {
            "period": pd.to_datetime(["2026-10-01"] * 4),
            "group": ["model-03", "model-01", "model-29", None],
            "cost": [3.0, 1.0, 5.0, 0.5],
        }
    )
    chart = figures.spend_over_time(frame, "model", "day", legend)
    by_name = _colour_of(chart)
    assert by_name["model-03"] == mapping["model-03"]
    assert by_name["model-01"] == mapping["model-01"]
    # model-29 is past the palette: it is drawn in "other", grey.
    assert "model-29" not in by_name and by_name[colours.OTHER] == colours.OTHER_COLOUR
    assert by_name[colours.NOT_SET] == colours.NOT_SET_COLOUR
    drawn = chart.data
    assert list(drawn.loc[drawn["name"] == colours.OTHER, "value"]) == [5.0]


def _colour_of(chart) -> dict[str, str]:
    """Legend entry -> colour of an Altair chart (its colour scale's domain and range)."""
    scale = chart.to_dict()["encoding"]["color"]["scale"]
    return dict(zip(scale["domain"], scale["range"], strict=True))


def test_a_legend_shows_display_names_but_points_carry_the_id() -> None:
    legend = colours.Legend(names={"user-0041": "Ada Lovelace"}, colours={"user-0041": "#123456"})
    frame = pd.DataFrame(
        {"period": pd.to_datetime(["2026-10-01"]), "group": ["user-0041"], "cost": [2.0]}
    )
    chart = figures.spend_over_time(frame, "user", "day", legend, selectable=True)
    assert _colour_of(chart) == {"Ada Lovelace": "#123456"}
    # What a click selects (the drill-down's period and group) is the id, not the name.
    drawn = chart.data.iloc[0]
    assert drawn["name"] == "Ada Lovelace"
    assert [drawn["pick_period"], drawn["pick_group"]] == ["2026-10-01", "user-0041"]


def test_a_long_legend_makes_its_chart_tall_enough_to_show_every_entry() -> None:
    """Streamlit fits a Vega-Lite chart to its height: a legend of 16 models beside three
    bars was cut off after its eighth entry (seen in a browser at 900 px)."""
    pairs = pd.DataFrame(
        [
            {"a": f"team-{a}", "b": f"model-{b:02d}", "cost": 1.0}
            for a in range(3)
            for b in range(16)
        ]
    )
    few = pd.DataFrame([{"a": "team-0", "b": "model-00", "cost": 1.0}])
    frame = pd.DataFrame(
        {"period": pd.to_datetime(["2026-10-01"] * 25), "group": [f"m{i}" for i in range(25)],
         "cost": [1.0] * 25}
    )  # fmt: skip
    row = figures.vega.LEGEND_ROW
    assert figures.pairs_bars(pairs, "team", "model").to_dict()["height"] >= 16 * row + 100
    assert figures.pairs_bars(few, "team", "model").to_dict()["height"] == 220  # as before
    spend = figures.spend_over_time(frame, "model", "day", colours.Legend())
    assert spend.to_dict()["height"] >= 25 * row + 100 > figures.vega.HEIGHT
    # The latency trend's legend has round symbols (lines and points): taller rows. With
    # the bars' row height it showed 11 of 16 models at 900 and 1,400 px.
    models = [f"model-{i:02d}" for i in range(16)]
    trend = pd.DataFrame(
        [{"period": pd.Timestamp("2026-11-01") + pd.Timedelta(days=d), "group": m,
          "p95": 100.0 + i, "tasks": 10} for d in range(3) for i, m in enumerate(models)]
    )  # fmt: skip
    legend = colours.Legend(colours=colours.colour_map(models))
    lines = figures.percentiles_over_time(trend, "ttft", "p95", "model", "day", legend=legend)
    point_row = figures.vega.POINT_LEGEND_ROW
    assert lines.to_dict()["height"] >= 16 * point_row + 100 > 16 * row + 100


def test_month_grain_axis_labels_read_like_oct_2026() -> None:
    frame = pd.DataFrame({"period": pd.to_datetime(["2026-10-01", "2026-11-01"]), "cost": [1, 2]})
    chart = figures.spend_over_time(frame, "model", "month")
    encoding = chart.to_dict()["encoding"]
    assert encoding["x"]["axis"]["format"] == "%b %Y"
    # The tooltip names each bar's month the same way.
    assert {"field": "when", "type": "nominal", "title": "month"} in encoding["tooltip"]
    assert list(chart.data["when"]) == ["Oct 2026", "Nov 2026"]


# --- dates ---------------------------------------------------------------------------------


def test_date_presets_are_exact() -> None:
    today = date(2026, 11, 30)
    assert state.preset_dates("Today", today) == (today, today)
    first, last = state.preset_dates("Last 7 days", today)
    assert (last - first).days + 1 == 7 and last == today
    first, last = state.preset_dates("Last 30 days", today)
    assert (last - first).days + 1 == 30
    first, last = state.preset_dates("Last 90 days", today)
    assert (last - first).days + 1 == 90
    assert state.preset_dates("This month", date(2026, 2, 10)) == (
        date(2026, 2, 1),
        date(2026, 2, 28),
    )
    assert state.preset_dates("Last month", date(2026, 1, 15)) == (
        date(2025, 12, 1),
        date(2025, 12, 31),
    )
    assert state.preset_dates("Month to date", today) == (date(2026, 11, 1), today)
    assert state.preset_dates("Quarter to date", today) == (date(2026, 10, 1), today)
    assert state.preset_dates("Quarter to date", date(2026, 3, 31)) == (
        date(2026, 1, 1),
        date(2026, 3, 31),
    )
    filters = state.to_filters(state.preset_dates("Last 7 days", today), {})
    assert filters.end - filters.start == pd.Timedelta(days=7)
    with pytest.raises(ValueError, match="unknown date preset"):
        state.preset_dates("Past week", today)


def test_a_half_picked_range_is_not_a_range() -> None:
    assert state.complete_dates((date(2026, 10, 5),)) is None
    assert state.complete_dates(()) is None
    assert state.complete_dates((date(2026, 10, 9), date(2026, 10, 5))) == (
        date(2026, 10, 5),
        date(2026, 10, 9),
    )


# --- honest numbers on a real mirror ----------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(pg_server: str, template_db: str, tmp_path_factory) -> Iterator[object]:
    name = f"ai_runs_look_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    demo.generate(url, tasks=1500, days=40, seed=5)
    con = queries.open_mirror(tmp_path_factory.mktemp("look") / "mirror.duckdb")
    queries.sync_mirror(url, con=con)
    yield con
    con.close()
    drop_database(pg_server, name)


def _month() -> Filters:
    return Filters.last_days(30)


def test_drilldown_counts_and_lists_the_same_completed_tasks(mirror) -> None:
    con = mirror
    filters = _month()
    listed = drilldown.tasks_behind(con, filters, by="model", value=None, limit=100000)
    everything = drilldown.tasks_behind(con, filters, limit=100000)
    assert drilldown.count_behind(con, filters) == len(everything)
    assert set(everything["status"]) > {"completed"}  # the demo has failed/cancelled tasks
    done = drilldown.tasks_behind(con, filters, limit=100000, completed_only=True)
    assert set(done["status"]) == {"completed"}
    assert drilldown.count_behind(con, filters, completed_only=True) == len(done)
    assert len(done) == int((everything["status"] == "completed").sum())
    top = drilldown.tasks_behind(con, filters, limit=5, completed_only=True)
    assert len(top) == 5 and drilldown.count_behind(con, filters, completed_only=True) > 5
    # A model's percentile covers its completed tasks: the count matches the rollup's input.
    model = everything["model"].dropna().iloc[0]
    count = drilldown.count_behind(con, filters, by="model", value=model, completed_only=True)
    expected = ((everything["model"] == model) & (everything["status"] == "completed")).sum()
    assert count == expected
    assert listed.empty or listed["model"].isna().all()
    failed_only = Filters.last_days(30, statuses=("failed",))
    assert drilldown.completed_scope(failed_only) is None
    assert drilldown.count_behind(con, failed_only, completed_only=True) == 0
    assert drilldown.tasks_behind(con, failed_only, completed_only=True).empty


def test_an_error_group_lists_all_its_tasks(mirror) -> None:
    con = mirror
    filters = _month()
    groups = failures.error_groups(con, filters, limit=20)
    assert not groups.empty
    for row in groups.head(3).itertuples():
        members = drilldown.error_tasks(con, filters, row.error)
        assert len(members) == row.tasks
        assert row.sample_task_id in set(members["task_id"])


def test_usage_pairs_add_up_to_usage_by(mirror) -> None:
    con = mirror
    filters = _month()
    pairs = usage.usage_pairs(con, filters, "team", "model")
    by_team = usage.usage_by(con, filters, "team", counts=False)
    summed = pairs.groupby("a", dropna=False)["cost"].sum()
    for row in by_team.itertuples():
        key = row.group if row.group is not None else float("nan")
        value = summed[key] if row.group is not None else summed[summed.index.isna()].sum()
        assert value == pytest.approx(row.cost)
    assert pairs["tasks"].sum() == by_team["tasks"].sum()
    with pytest.raises(ValueError, match="two different dimensions"):
        usage.usage_pairs(con, filters, "model", "model")
    chart = figures.pairs_bars(pairs, "team", "model")
    encoding = chart.to_dict()["encoding"]
    assert encoding["x"]["stack"] == "zero" and chart.data["name"].nunique() >= 2


def test_options_carry_display_names(mirror) -> None:
    from queries import options

    choices = options.filter_options(mirror)
    names = choices["user_names"]
    assert names and set(names) <= set(choices["users"]) | set(names)
    assert all(isinstance(v, str) and v for v in names.values())
    assert list_filters.user_choice(next(iter(names)), names).startswith(next(iter(names.values())))
    assert list_filters.user_choice("nobody", names) == "nobody"


def test_kpi_dates_stay_utc() -> None:
    filters = state.to_filters((date(2026, 10, 1), date(2026, 10, 31)), {})
    assert filters.start == datetime(2026, 10, 1, tzinfo=UTC)
