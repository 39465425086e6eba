"""Rollups on a small hand-built data set, numbers computed by hand.

March 2026 (Monday 2 March is the first ISO week start):

| id   | run | user  | model             | created     | cost | in/out   | ttft | total | status  |
|------|-----|-------|-------------------|-------------|------|----------|------|-------|---------|
| t0   | A   | alice | gpt-4o            | 02-15 10:00 | 0.50 | 100/10   | 100  | 200   | done    |
| t1   | A   | alice | gpt-4o            | 03-02 10:00 | 0.10 | 1000/100 | 100  | 1100  | done    |
| t2   | A   | alice | gpt-4o            | 03-02 12:00 | 0.20 | 2000/200 | 200  | 1200  | done    |
| t3   | A   | alice | claude-sonnet-4-5 | 03-03 09:00 | 0.30 | 3000/300 | 300  | 3300  | failed  |
| t4   | B   | bob   | claude-sonnet-4-5 | 03-09 08:00 | 0.40 | 4000/400 | 400  | 4400  | done    |
| t5   | B   | bob   | gpt-4o            | 03-10 08:00 | 0.05 | 500/50   | -    | -     | cancel  |
| t6   | B   | bob   | gpt-4o            | 04-01 00:00 | 1.00 | 100/10   | 50   | 150   | done    |

Dates are 2026 UTC (done = completed, cancel = cancelled); gpt-4o is provider openai,
claude-sonnet-4-5 is anthropic.
Run A: chat, tags [x, y]; run B: workflow, no tags. alice is in team red, bob in blue.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import duckdb
import pandas as pd
import pytest
from builders import make_run, make_task

import queries as q
from ingest.spend import pricing
from queries import Filters
from queries.whatif import resolve_model, tier_sql

MARCH = Filters(start=datetime(2026, 3, 1, tzinfo=UTC), end=datetime(2026, 4, 1, tzinfo=UTC))


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@pytest.fixture
def data(conn, db_url, tmp_path):
    conn.execute("INSERT INTO ai_users (id, team) VALUES ('alice', 'red'), ('bob', 'blue')")
    a = make_run(conn, user_id="alice", source_type="chat", tags=["x", "y"])
    b = make_run(conn, user_id="bob", source_type="workflow", tags=[])
    gpt = {"provider": "openai", "model": "gpt-4o"}
    claude = {"provider": "anthropic", "model": "claude-sonnet-4-5"}

    def task(run, user, model, created, cost, tokens_in, ttft, total, status, **extra):
        return make_task(
            conn,
            run,
            user_id=user,
            **model,
            created_at=created,
            cost=Decimal(cost),
            tokens_input=tokens_in,
            tokens_output=tokens_in // 10,
            time_to_first_token=ttft,
            total_time=total,
            status=status,
            **extra,
        )

    ids = {
        "t0": task(a, "alice", gpt, at(15, 10, 2), "0.50", 100, 100, 200, "completed"),
        "t1": task(a, "alice", gpt, at(2, 10), "0.10", 1000, 100, 1100, "completed"),
        "t2": task(a, "alice", gpt, at(2, 12), "0.20", 2000, 200, 1200, "completed"),
        "t3": task(
            a,
            "alice",
            claude,
            at(3, 9),
            "0.30",
            3000,
            300,
            3300,
            "failed",
            response_errors={"type": "rate_limit_error", "message": "Rate limit 429 hit"},
        ),
        "t4": task(b, "bob", claude, at(9, 8), "0.40", 4000, 400, 4400, "completed"),
        "t5": task(b, "bob", gpt, at(10, 8), "0.05", 500, None, None, "cancelled"),
        "t6": task(b, "bob", gpt, at(1, 0, 4), "1.00", 100, 50, 150, "completed"),
    }
    q.sync_mirror(db_url, tmp_path / "m.duckdb")
    con = q.open_mirror(tmp_path / "m.duckdb")
    yield {"con": con, "ids": {k: str(v) for k, v in ids.items()}, "runs": (str(a), str(b))}
    con.close()


def records(frame: pd.DataFrame, *columns: str) -> list[tuple]:
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame[list(columns)].values]


def test_usage_by_provider_tag_team(data):
    con = data["con"]
    by_provider = q.usage_by(con, MARCH, "provider", exact=True)
    assert records(by_provider, "group", "cost", "tasks", "runs", "active_users") == [
        ("anthropic", Decimal("0.70"), 2, 2, 2),
        ("openai", Decimal("0.35"), 3, 2, 2),
    ]
    assert records(by_provider, "tokens_input", "tokens_output", "tokens_total") == [
        (7000, 700, 7700),
        (3500, 350, 3850),
    ]
    # A task counts once per tag of its run; untagged tasks are the None group.
    by_tag = q.usage_by(con, MARCH, "tag")
    assert records(by_tag, "group", "cost", "tasks") == [
        ("x", 0.60, 3),
        ("y", 0.60, 3),
        (None, 0.45, 2),
    ]
    by_team = q.usage_by(con, MARCH, "team")
    assert records(by_team, "group", "cost", "active_users") == [("red", 0.6, 1), ("blue", 0.45, 1)]
    assert by_provider["cost"].map(type).eq(Decimal).all()
    assert q.usage_by(con, MARCH, "provider")["cost"].dtype == "float64"


def test_usage_over_time_grains(data):
    con = data["con"]
    days = q.usage_over_time(con, MARCH, "day")
    assert list(days.columns) == [
        "period",
        "cost",
        "tokens_input",
        "tokens_output",
        "tokens_total",
        "tasks",
        "runs",
        "active_users",
        "tokens_cached_input",
        "tokens_cache_write",
        "unpriced",
    ]
    assert records(days, "period", "cost", "tasks") == [
        (pd.Timestamp("2026-03-02"), 0.30, 2),
        (pd.Timestamp("2026-03-03"), 0.30, 1),
        (pd.Timestamp("2026-03-09"), 0.40, 1),
        (pd.Timestamp("2026-03-10"), 0.05, 1),
    ]
    weeks = q.usage_over_time(con, MARCH, "week", by="provider")
    assert records(weeks, "period", "group", "cost", "tasks") == [
        (pd.Timestamp("2026-03-02"), "anthropic", 0.30, 1),
        (pd.Timestamp("2026-03-02"), "openai", 0.30, 2),
        (pd.Timestamp("2026-03-09"), "anthropic", 0.40, 1),
        (pd.Timestamp("2026-03-09"), "openai", 0.05, 1),
    ]
    quick = q.usage_over_time(con, MARCH, "day", counts=False)
    assert "runs" not in quick.columns and "active_users" not in quick.columns
    assert quick["cost"].tolist() == days["cost"].tolist()
    months = q.usage_over_time(con, MARCH, "month", exact=True)
    assert records(months, "period", "cost", "tasks", "runs") == [
        (pd.Timestamp("2026-03-01"), Decimal("1.05"), 5, 2)
    ]


@pytest.mark.parametrize(
    ("extra", "cost", "tasks"),
    [
        ({}, "1.05", 5),
        ({"providers": ("openai",)}, "0.35", 3),
        ({"models": ("claude-sonnet-4-5",)}, "0.70", 2),
        ({"tags": ("x",)}, "0.60", 3),
        ({"tags": ("nope",)}, "0", 0),
        ({"teams": ("blue",)}, "0.45", 2),
        ({"users": ("alice",)}, "0.60", 3),
        ({"source_types": ("workflow",)}, "0.45", 2),
        ({"statuses": ("completed",)}, "0.70", 3),
        ({"providers": ("openai",), "statuses": ("completed",)}, "0.30", 2),
    ],
)
def test_filters_change_the_numbers(data, extra, cost, tasks):
    filters = Filters(start=MARCH.start, end=MARCH.end, **extra)
    frame = q.usage_over_time(data["con"], filters, "month", exact=True)
    assert Decimal(str(frame["cost"].sum())) == Decimal(cost)
    assert int(frame["tasks"].sum()) == tasks


def test_kpis_against_previous_period(data):
    frame = q.kpis(data["con"], MARCH).set_index("metric")
    assert list(frame.index) == list(q.usage.KPI_METRICS)
    assert frame.loc["spend", "value"] == pytest.approx(1.05)
    assert frame.loc["spend", "previous"] == pytest.approx(0.50)  # t0, 15 Feb
    assert frame.loc["spend", "change"] == pytest.approx(1.1)
    assert (frame.loc["tasks", "value"], frame.loc["tasks", "previous"]) == (5, 1)
    assert frame.loc["tasks", "change"] == pytest.approx(4.0)
    assert frame.loc["runs", "value"] == 2 and frame.loc["active_users", "value"] == 2
    assert frame.loc["tokens", "value"] == 11550
    assert frame.loc["p95_ttft_ms", "value"] == pytest.approx(380.0)  # of 100, 200, 400
    assert frame.loc["failure_rate", "value"] == pytest.approx(0.2)
    assert frame.loc["failure_rate", "previous"] == 0.0
    assert frame.loc["failure_rate", "change"] is None
    exact = q.kpis(data["con"], MARCH, exact=True).set_index("metric")
    assert exact.loc["spend", "value"] == Decimal("1.05")


def test_latency_percentiles_exact(data):
    frame = q.latency_percentiles(data["con"], MARCH, "ttft")
    # completed TTFTs 100, 200, 400: linear interpolation between order statistics
    assert records(frame, "tasks", "p50", "p90", "p95", "p99") == [
        (3, 200.0, 360.0, pytest.approx(380.0), 396.0)
    ]
    by_model = q.latency_percentiles(data["con"], MARCH, "total_time", by="model")
    assert records(by_model, "group", "tasks", "p50") == [
        ("claude-sonnet-4-5", 1, 4400.0),
        ("gpt-4o", 2, 1150.0),
    ]
    daily = q.latency_percentiles(data["con"], MARCH, "ttft", grain="day")
    assert records(daily, "period", "p50") == [
        (pd.Timestamp("2026-03-02"), 150.0),
        (pd.Timestamp("2026-03-09"), 400.0),
    ]


def test_histogram_tokens_per_second_failures_errors(data):
    con = data["con"]
    hist = q.latency_histogram(con, MARCH, "ttft", bins=2)
    assert records(hist, "bucket_low_ms", "bucket_high_ms", "tasks") == [
        (100.0, 200.0, 1),
        (200.0, 400.0, 2),
    ]
    speed = q.tokens_per_second(con, MARCH, by="model")
    # gpt-4o: 100 tokens in 1.0 s, 200 tokens in 1.0 s; claude: 400 tokens in 4.0 s.
    assert records(speed, "group", "tasks", "p50", "p90", "mean") == [
        ("gpt-4o", 2, 150.0, 190.0, 150.0),
        ("claude-sonnet-4-5", 1, 100.0, 100.0, 100.0),
    ]
    rates = q.failure_rates(con, MARCH, by="provider")
    assert records(rates, "group", "tasks", "failed", "cancelled", "failure_rate") == [
        ("anthropic", 2, 1, 0, 0.5),
        ("openai", 3, 0, 1, 0.0),
    ]
    assert rates["cancel_rate"].tolist() == [0.0, pytest.approx(1 / 3)]
    errors = q.error_groups(con, MARCH)
    assert records(errors, "error", "tasks", "models", "sample_task_id") == [
        ("Rate limit N hit", 1, "claude-sonnet-4-5", data["ids"]["t3"])
    ]


def test_drill_down_and_top_lists(data):
    con, ids = data["con"], data["ids"]
    day = q.tasks_behind(con, MARCH, period=date(2026, 3, 2), grain="day")
    assert day["task_id"].tolist() == [ids["t2"], ids["t1"]]  # slowest first
    assert list(day.columns) == q.drilldown.TASK_LIST_COLUMNS
    week = q.tasks_behind(con, MARCH, period=date(2026, 3, 4), grain="week", metric="cost")
    assert week["task_id"].tolist() == [ids["t3"], ids["t2"], ids["t1"]]
    untagged = q.tasks_behind(con, MARCH, by="tag", value=None)
    assert untagged["task_id"].tolist() == [ids["t4"], ids["t5"]]  # NULL total_time last
    tagged = q.tasks_behind(con, MARCH, by="tag", value="y", metric="ttft")
    assert tagged["task_id"].tolist() == [ids["t3"], ids["t2"], ids["t1"]]
    bar = q.tasks_behind(con, MARCH, period=date(2026, 3, 9), grain="week", by="team", value="blue")
    assert bar["task_id"].tolist() == [ids["t4"], ids["t5"]]
    assert q.slowest_tasks(con, MARCH, limit=1)["task_id"].tolist() == [ids["t4"]]
    assert q.most_expensive_tasks(con, MARCH, limit=2)["cost"].tolist() == [0.40, 0.30]
    runs = q.most_expensive_runs(con, MARCH)
    assert records(runs, "run_id", "tasks", "cost", "source_type") == [
        (data["runs"][0], 3, 0.60, "chat"),
        (data["runs"][1], 2, 0.45, "workflow"),
    ]
    assert q.cost_per_run(con, MARCH)["cost"].tolist() == [0.60, 0.45]


def test_filter_options_and_freshness(data):
    options = q.filter_options(data["con"])
    assert options == {
        "source_types": ["chat", "workflow"],
        "providers": ["anthropic", "openai"],
        "models": ["claude-sonnet-4-5", "gpt-4o"],
        "users": ["alice", "bob"],
        "teams": ["blue", "red"],
        "tags": ["x", "y"],
        "statuses": ["cancelled", "completed", "failed"],
        "variants": [],  # no run or task of this data carries a variant
        "user_names": {},  # these users have no display name
    }
    assert q.mirror_freshness(data["con"])["tasks"] == 7


def test_dimensions_grains_and_metrics_are_allow_listed(data):
    con = data["con"]
    with pytest.raises(ValueError, match="not allowed.*provider"):
        q.usage_by(con, MARCH, "provider; DROP TABLE tasks")
    with pytest.raises(ValueError, match="grain"):
        q.usage_over_time(con, MARCH, "year")
    with pytest.raises(ValueError, match="ttft"):
        q.latency_percentiles(con, MARCH, "cost")
    with pytest.raises(ValueError, match="not allowed"):
        q.tasks_behind(con, MARCH, metric="name")
    with pytest.raises(ValueError, match="statuses"):
        Filters(start=MARCH.start, end=MARCH.end, statuses=("done",))
    assert q.mirror_freshness(con)["tasks"] == 7  # nothing was dropped


def test_what_if_equals_pricing_each_request(conn, db_url, tmp_path):
    run = make_run(conn)
    mix = [(1000, 200, 0), (250_000, 1000, 50_000), (199_000, 10, 1000), (10, 5000, 10)]
    for n, (tokens_in, tokens_out, cached) in enumerate(mix):
        make_task(
            conn,
            run,
            created_at=at(5 + n, 10),
            tokens_input=tokens_in,
            tokens_output=tokens_out,
            tokens_cached_input=cached,
            cost=Decimal("0.01"),
        )
    q.sync_mirror(db_url, tmp_path / "m.duckdb")
    with q.open_mirror(tmp_path / "m.duckdb") as con:
        for provider, model in [("google", "gemini-2.5-pro"), ("anthropic", "claude-haiku-4-5")]:
            frame = q.what_if_cost(con, MARCH, provider, model)
            expected = sum(pricing.task_cost(provider, model, *usage) for usage in mix)
            assert records(frame, "provider", "model", "tasks", "actual_cost") == [
                ("openai", "gpt-4o", 4, 0.04)
            ]
            assert frame["what_if_cost"].iloc[0] == float(expected)
            assert frame["difference"].iloc[0] == float(expected - Decimal("0.04"))
        assert resolve_model("google", "gemini-2.5-pro")[2] == [200_000]  # a tiered model
        with pytest.raises(ValueError, match="known providers are .*openai"):
            q.what_if_cost(con, MARCH, "acme", "gpt-4o")
        with pytest.raises(ValueError, match="known models are .*gpt-4o"):
            q.what_if_cost(con, MARCH, "openai", "gpt-17")


def test_spend_forecast_weekday_shape_and_budget(conn, db_url, tmp_path):
    run = make_run(conn)
    today = date(2026, 3, 16)  # a Monday
    conn.execute(
        """INSERT INTO ai_tasks (run_id, task_id, tokens_input, tokens_output, cost, created_at)
           SELECT %s, gen_random_uuid(), 1, 1, 10, d + interval '12 hours'
             FROM generate_series(%s::timestamptz, %s::timestamptz, interval '1 day') d
            WHERE extract(isodow FROM d) < 6""",
        (run, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 16, tzinfo=UTC)),
    )
    q.sync_mirror(db_url, tmp_path / "m.duckdb")
    with q.open_mirror(tmp_path / "m.duckdb") as con:
        result = q.spend_forecast(con, MARCH, today=today, budget=200)
        # Weekdays cost 10, weekends nothing, exactly: the forecast follows the shape.
        weekdays_before = sum(1 for d in range(1, 16) if date(2026, 3, d).weekday() < 5)
        weekdays_from_today = sum(1 for d in range(16, 32) if date(2026, 3, d).weekday() < 5)
        assert result["month_to_date"] == pytest.approx(10 * (weekdays_before + 1))
        assert result["forecast"] == pytest.approx(10 * (weekdays_before + weekdays_from_today))
        assert result["forecast_low"] == pytest.approx(result["forecast"])  # no noise
        assert result["over_budget"] is True and result["budget"] == 200
        daily = result["daily"]
        assert len(daily) == 31 and daily["kind"].tolist().count("actual") == 15
        assert daily["cumulative"].iloc[-1] == pytest.approx(result["forecast"])
        assert result["month_start"] == date(2026, 3, 1)
        assert result["month_end"] == date(2026, 4, 1)
        # Noise widens the band around the forecast.
        conn.execute(
            "UPDATE ai_tasks SET cost = 20 WHERE created_at::date IN ('2026-03-03', '2026-03-10')"
        )
        q.sync_mirror(db_url, con=con)
        noisy = q.spend_forecast(con, MARCH, today=today)
        assert noisy["forecast_low"] < noisy["forecast"] < noisy["forecast_high"]
        assert noisy["forecast_low"] >= noisy["month_to_date"]


def test_stuck_tasks_from_postgres(conn, db_url):
    run = make_run(conn)
    now = datetime.now(UTC)
    old = make_task(conn, run, status="streaming", created_at=now - timedelta(minutes=40))
    make_task(conn, run, status="pending", created_at=now - timedelta(minutes=5))
    make_task(conn, run, status="completed", created_at=now - timedelta(hours=5))
    frame = q.stuck_tasks(db_url, older_than_minutes=15)
    assert frame["task_id"].tolist() == [str(old)]
    assert frame["age_minutes"].iloc[0] == pytest.approx(40, abs=1)


def test_the_tier_expression_counts_the_starts_below_and_unknown_usage_is_tier_0():
    con = duckdb.connect()
    rows = [(None,), (10,), (200_000,), (200_001,), (300_001,)]
    con.execute("CREATE TABLE t (tokens_input BIGINT)")
    con.executemany("INSERT INTO t VALUES (?)", rows)
    tiers = con.execute(f"SELECT {tier_sql([200_000, 300_000])} FROM t").fetchall()
    assert [t[0] for t in tiers] == [0, 0, 0, 1, 2]
    assert tier_sql([]) == "0"
