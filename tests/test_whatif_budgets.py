"""What-if mixes and budget scopes over a real mirror (docs/spend-control.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from builders import make_run, make_task

import ingest
from ingest.access import viewer
from ingest.spend import budgets
from queries import budgets as budget_queries
from queries import open_mirror, sync_mirror, whatif
from queries.filters import Filters

NOW = datetime.now(UTC)
# The tasks' time: a few minutes ago, but never before today's UTC midnight, so that they
# are in today's slice and in the current week's budget period whenever the tests run (at
# 00:03 on a Monday, five minutes earlier was last week's Sunday).
AT = max(NOW - timedelta(minutes=5), NOW.replace(hour=0, minute=0, second=0, microsecond=0))
ANN = Filters.last_days(7, users=("ann",))


@pytest.fixture
def mirror_con(conn, db_url, tmp_path):
    run = make_run(conn, user_id="ann")
    for model, cost in (("gpt-4o", "1.0"), ("gpt-4o", "1.0"), ("gpt-4o-mini", "0.1")):
        make_task(
            conn, run, model=model, status="completed", cost=Decimal(cost), user_id="ann",
            created_at=AT, tokens_input=1000, tokens_output=100,
        )  # fmt: skip
    with open_mirror(tmp_path / "m.duckdb") as con:
        sync_mirror(db_url, con=con)
        yield con


def _today() -> Filters:
    return Filters.last_days(1)


def test_route_a_share_of_one_model(mirror_con):
    full = whatif.what_if_mix(mirror_con, _today(), "openai", "gpt-4o-mini", source_model="gpt-4o")
    part = whatif.what_if_mix(
        mirror_con, _today(), "openai", "gpt-4o-mini", source_model="gpt-4o", share=0.3
    )
    assert full.ok and part.ok
    assert full.actual == part.actual == pytest.approx(2.1)
    on_mini = full.what_if - 0.1  # the gpt-4o tasks entirely on gpt-4o-mini
    assert part.what_if == pytest.approx(0.1 + 2.0 * 0.7 + on_mini * 0.3)
    assert list(part.frame["model"]) == ["gpt-4o"]


@pytest.mark.parametrize(
    ("provider", "model", "source", "expected"),
    [
        ("nowhere", "x", None, "No prices are known for provider 'nowhere'"),
        ("openai", "claude-sonnet-4-5", None, "is not a model of openai"),
        ("openai", "gpt-4o-mini", "o3", "no o3 tasks in this slice"),
        ("openai", "gpt-4o-mini", "gpt-4o-mini", "already the target"),
    ],
)
def test_an_impossible_pair_is_explained(mirror_con, provider, model, source, expected):
    plan = whatif.what_if_mix(mirror_con, _today(), provider, model, source_model=source)
    assert not plan.ok and expected in plan.explanation


def test_only_models_of_the_provider_are_offered():
    models = whatif.provider_models("openai")
    assert "gpt-4o-mini" in models and "claude-sonnet-4-5" not in models
    assert whatif.provider_models("nowhere") == []


@pytest.mark.parametrize(
    ("filters", "scope"),
    [
        ({}, ("all", None)),
        ({"teams": ("ml",)}, ("team", "ml")),
        ({"source_types": ("chat",)}, ("source_type", "chat")),
        ({"teams": ("ml", "ops")}, None),
        ({"teams": ("ml",), "models": ("gpt-4o",)}, None),
        ({"providers": ("openai",)}, None),
    ],
)
def test_a_view_matches_only_the_budget_of_its_own_scope(filters, scope):
    found, reason = budget_queries.scope_of_filters(Filters.last_days(7, **filters))
    assert (found and (found.kind, found.value)) == scope or (found is None and scope is None)
    assert reason


def test_filtered_view_never_borrows_the_company_budget(mirror_con, db_url):
    budgets.set_budget(db_url, amount=1000)
    view = budget_queries.forecast_for_view(mirror_con, ANN, budgets.list_budgets(db_url))
    assert view["budget"] is None and "no budget is set for user ann" in view["reason"]
    budgets.set_budget(db_url, amount=10, scope_kind="user", scope_value="ann", period="week")
    view = budget_queries.forecast_for_view(mirror_con, ANN, budgets.list_budgets(db_url))
    assert float(view["budget"]["amount"]) == 10 and view["forecast"]["period"] == "week"
    assert view["forecast"]["month_to_date"] == pytest.approx(2.1)
    assert view["forecast"]["used"] == pytest.approx(0.21)
    overview = budget_queries.budgets_overview(mirror_con, ANN, budgets.list_budgets(db_url))
    assert overview.set_index("scope_kind")["this_view"].to_dict() == {"all": False, "user": True}


def test_bad_budget_names_the_field(db_url):
    from ingest.errors import ValidationError

    for kwargs, field in (
        ({"amount": 0}, "amount"),
        ({"amount": 5, "period": "day"}, "period"),
        ({"amount": 5, "scope_kind": "team"}, "scope_value"),
        ({"amount": 5, "scope_kind": "source_type", "scope_value": "fax"}, "scope_value"),
    ):
        with pytest.raises(ValidationError) as raised:
            budgets.set_budget(db_url, **kwargs)
        assert raised.value.field == field
    assert budgets.list_budgets(db_url) == []


def test_a_budget_the_viewer_cannot_read_is_named_not_compared(mirror_con, db_url):
    with ingest.Tracker(db_url) as owner:
        owner.upsert_user("ann", "Ann", "ann@example.com", "red", "member")
        owner.upsert_user("carol", "Carol", "carol@example.com", "red", "manager")
    budgets.set_budget(db_url, amount=1000)
    budgets.set_budget(db_url, amount=5, scope_kind="team", scope_value="red")
    for who in ("carol", "ann"):
        readable = budgets.list_budgets(db_url, viewer=who)
        every = budgets.budget_scopes(db_url, viewer=who)
        mine = Filters.last_days(7, visible_runs=viewer.visible_runs(db_url, who))
        view = budget_queries.forecast_for_view(mirror_con, mine, readable, every_scope=every)
        assert view["budget"] is None and view["hidden"]["scope_kind"] == "all", who
        assert (
            "monthly budget for everything applies to this view but is not shown"
            in (view["reason"])
        )
        assert "1000" not in view["reason"]
    carol = budgets.list_budgets(db_url, viewer="carol")
    assert [(b["scope_kind"], b["scope_value"]) for b in carol] == [("team", "red")]
    admin_view = budget_queries.forecast_for_view(
        mirror_con, Filters.last_days(7), budgets.list_budgets(db_url)
    )
    assert float(admin_view["budget"]["amount"]) == 1000 and admin_view["hidden"] is None


@pytest.mark.parametrize(
    ("first", "last", "period", "expected"),
    [
        ("2026-11-07", "2026-12-06", "month", ["2026-12-01"]),  # last 30 days: this month
        ("2026-12-02", "2026-12-31", "month", ["2026-12-01"]),  # no month starts inside
        ("2026-11-01", "2026-11-30", "month", ["2026-11-01"]),  # last month: closed
        ("2026-10-01", "2026-12-06", "month", ["2026-10-01", "2026-11-01", "2026-12-01"]),
        ("2026-12-06", "2026-12-06", "week", ["2026-11-30"]),  # today: its week
        ("2026-11-01", "2026-11-30", "week", ["2026-11-02", "2026-11-09", "2026-11-16",
                                              "2026-11-23", "2026-11-30"]),
    ],
)  # fmt: skip
def test_budget_periods_of_the_chosen_days(first, last, period, expected):
    start = datetime.fromisoformat(first).replace(tzinfo=UTC)
    end = datetime.fromisoformat(last).replace(tzinfo=UTC) + timedelta(days=1)
    today = datetime(2026, 12, 6).date()
    starts = budget_queries.budget_periods(Filters(start=start, end=end), period, today)
    assert [d.isoformat() for d in starts] == expected


def test_a_closed_month_shows_its_actual_spend_against_its_budget(conn, db_url, tmp_path):
    today = NOW.date()
    this_month = datetime(today.year, today.month, 1, tzinfo=UTC)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    run = make_run(conn, user_id="ann")
    for day, cost in ((1, "0.40"), (10, "0.25"), (27, "0.35")):
        make_task(conn, run, model="gpt-4o", status="completed", cost=Decimal(cost),
                  created_at=last_month + timedelta(days=day - 1, hours=3))  # fmt: skip
    make_task(conn, run, model="gpt-4o", status="completed", cost=Decimal("5"),
              created_at=this_month + timedelta(minutes=1))  # fmt: skip
    budgets.set_budget(db_url, amount=2)
    with open_mirror(tmp_path / "closed.duckdb") as con:
        sync_mirror(db_url, con=con)
        view = budget_queries.forecast_for_view(
            con, Filters(start=last_month, end=this_month), budgets.list_budgets(db_url)
        )
    result = view["forecast"]
    assert result["closed"] and result["periods"] == 1
    assert result["period_start"] == last_month.date()
    assert result["month_to_date"] == pytest.approx(1.0)  # 0.40 + 0.25 + 0.35, not this month's 5
    assert result["forecast"] == pytest.approx(1.0) and result["budget"] == 2
    assert result["used"] == pytest.approx(0.5) and result["over_budget"] is False
