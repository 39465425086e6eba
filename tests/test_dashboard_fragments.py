"""A widget change reruns only the part of the page it affects (st.fragment, issue 26): in a
Streamlit session (AppTest) on a demo database, a change inside a fragment is run the way the
browser asks for it (a rerun of that fragment alone), and the rollups asked are counted.

AppTest reruns the whole script when a widget changes; the browser instead names the
fragment the widget belongs to. `fragment_rerun` does what the browser does: it finds the
fragment by its function's name among those the session registered and asks for a rerun of
that fragment only.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import test_dashboard as shared
from dashboard_support import open_page, opened, pages_kept
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData
from streamlit.testing.v1 import local_script_runner

from dashboard import data

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

# The demo database and app environment of test_dashboard (module-scoped fixtures).
demo_url = shared.demo_url
demo_app = shared.demo_app


def _fragment_id(at, name: str) -> str:
    """The id of the fragment whose function is called `name` (Streamlit keeps each
    registered fragment as a closure over the decorated function)."""
    found = []
    for fragment_id, fragment in at._fragment_storage._fragments.items():
        cells = [cell.cell_contents for cell in fragment.__closure__ or ()]
        if any(getattr(value, "__name__", None) == name for value in cells):
            found.append(fragment_id)
    assert len(found) == 1, f"fragment {name!r}: {found}"
    return found[0]


@contextmanager
def fragment_rerun(at, name: str) -> Iterator[None]:
    """Within: `at.run()` reruns the fragment `name` only, as the browser asks after a
    change of a widget inside it. The session keeps the pages st.navigation registered in
    the last full run (a fragment run does not register them again), as a served session
    does."""
    only = functools.partial(RerunData, fragment_id=_fragment_id(at, name))
    with pytest.MonkeyPatch.context() as patch, pages_kept(at):
        patch.setattr(local_script_runner, "RerunData", only)
        yield


@contextmanager
def counting_asks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The rollup names asked through data.cached while inside, in order, and "sync" for
    each mirror sync the app's script asks for (it runs on a full rerun only)."""
    asked: list[str] = []
    cached, sync = data._cached, data.sync

    def counting(key, name, rollup, filters, filters_key, args, kwargs):
        by = dict(kwargs).get("by")
        asked.append(name.rsplit(".", 1)[-1] + (f" by {by}" if by else ""))
        return cached(key, name, rollup, filters, filters_key, args, kwargs)

    def syncing(*args, **kwargs):
        asked.append("sync")
        return sync(*args, **kwargs)

    monkeypatch.setattr(data, "_cached", counting)
    monkeypatch.setattr(data, "sync", syncing)
    yield asked
    monkeypatch.setattr(data, "_cached", cached)
    monkeypatch.setattr(data, "sync", sync)


def _full_run_asks(at, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    with counting_asks(monkeypatch) as asked:
        at.run()
    assert not at.exception, at.exception
    return asked


def test_cost_group_by_reruns_only_the_spend_section(
    demo_app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = opened(open_page("cost"), "costliest_open")
    whole_page = _full_run_asks(at, monkeypatch)
    assert {"sync", "usage_over_time by model", "most_expensive_runs"} <= set(whole_page)
    at.selectbox(key="cost_by").set_value("team")
    with fragment_rerun(at, "spend_over_time"), counting_asks(monkeypatch) as asked:
        at.run()
    assert not at.exception, at.exception
    assert asked == ["usage_over_time by team"]  # the breakdown, forecast and lists are not rerun
    chart = at.get("vega_lite_chart")[0]
    assert "Spend per day by team" in chart.proto.spec or "by team" in chart.proto.spec
    # The A x B breakdown is a fragment of its own: its pickers rerun it alone. (AppTest
    # shows what the last run drew: a full run first, to reach the breakdown's pickers,
    # drawn once its expander is open.)
    opened(at, "cost_pairs_open")
    at.selectbox(key="cost_pairs_b").set_value("provider")
    with fragment_rerun(at, "show"), counting_asks(monkeypatch) as asked:
        at.run()
    assert not at.exception, at.exception
    assert asked == ["usage_pairs"]
    at.run()  # a full run after the fragments' keeps their choices
    assert not at.exception, at.exception
    assert at.selectbox(key="cost_by").value == "team"
    assert at.selectbox(key="cost_pairs_b").value == "provider"


def test_overview_tab_change_reruns_only_the_top_lists(
    demo_app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_page("overview")
    whole_page = _full_run_asks(at, monkeypatch)
    assert {"sync", "kpis", "usage_over_time by model", "usage_by by model"} <= set(whole_page)
    at.query_params["top"] = "Users"  # what a click on the Users tab puts in the URL
    with fragment_rerun(at, "top_lists"), counting_asks(monkeypatch) as asked:
        at.run()
    assert not at.exception, at.exception
    assert asked == ["usage_by by user"]  # the KPIs and the spend chart are not recomputed


def test_performance_controls_rerun_the_body_and_a_tab_only_itself(
    demo_app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = opened(open_page("performance"), "perf_details_open")
    whole_page = _full_run_asks(at, monkeypatch)
    assert {"sync", "latency_histogram"} <= {a.split(" by ")[0] for a in whole_page}
    at.selectbox(key="perf_by").set_value("provider")
    with fragment_rerun(at, "latency_section"), counting_asks(monkeypatch) as asked:
        at.run()
    assert not at.exception, at.exception
    # The body's rollups again, but not the app's part: no sync, no sidebar.
    assert "latency_percentiles by provider" in asked and "sync" not in asked
    assert "tasks_behind" in asked
    # The percentile reruns its banner and trend only: not the groups' table, the tasks
    # behind a selection nor the tabs.
    at.selectbox(key="perf_pct").set_value("p99")
    with fragment_rerun(at, "percentile_trend"), counting_asks(monkeypatch) as asked:
        at.run()
    assert not at.exception, at.exception
    assert asked == ["latency_percentiles by provider"] * 3  # last week, the week before, trend
    assert "p99" in at.get("vega_lite_chart")[0].proto.spec
    at.run()  # a full run, to reach the tabs' toggle (AppTest shows what the last run drew)
    at.toggle(key="perf_hist_split").set_value(True)
    with fragment_rerun(at, "details"), counting_asks(monkeypatch) as asked:
        at.run()
    assert not at.exception, at.exception
    assert asked == ["latency_histogram by provider"]  # the split histogram, not the charts above
