"""The dashboard as different people (docs/access.md), through the trusted-header sign-in:
each sees their own numbers, lists, CSV and runs; another's run by URL is not found;
management appears only for those allowed; an unknown person sees nothing; the local
admin is said on every page. Real Postgres (RLS), real mirror, AppTest (the request's
headers are the only stand-in: a real browser sends them in tests/test_browser_access.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal

import pytest
from dashboard_support import (
    MediaSpy,
    app_environment,
    create_database,
    csv_frame,
    download,
    drop_database,
    metric_values,
    open_page,
    texts,
)

import ingest
from dashboard import auth
from ingest.access import viewer as ingest_viewer
from ingest.store import database

HEADER = "X-Forwarded-Email"
# person -> (team, role, tasks they run)
PEOPLE = {
    "alice": ("red", "member", 1),
    "bob": ("red", "member", 2),
    "carol": ("red", "manager", 3),
    "dave": ("blue", "member", 4),
    "root": ("blue", "admin", 0),
}


@pytest.fixture(scope="module")
def world(pg_server, template_db, tmp_path_factory) -> Iterator[dict]:
    name = f"ai_runs_dash_access_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    database._migrated.add(url)
    runs = {}
    with ingest.Tracker(url) as owner:
        for uid, (team, role, n) in PEOPLE.items():
            owner.upsert_user(uid, uid.title(), f"{uid}@example.com", team, role)
            message = {"role": "user", "content": f"{uid} secret"}
            run = owner.create_run("chat", name=f"{uid} private chat", user_id=uid,
                                   messages=[message])  # fmt: skip
            runs[uid] = str(run["id"])
            for _ in range(n):
                task = owner.create_task(run["id"], provider="openai", model="gpt-4o",
                                         user_id=uid)  # fmt: skip
                owner.complete_task(task["task_id"], "ok", tokens_input=100, tokens_output=10,
                                    cost=Decimal("0.01"))  # fmt: skip
    home = tmp_path_factory.mktemp("dash_access")
    with app_environment(url, home):
        yield {"url": url, "runs": runs}
    drop_database(pg_server, name)


@pytest.fixture
def as_person(monkeypatch):
    """Sign in through the trusted header as the given e-mail (None: no header at all)."""
    monkeypatch.setenv(auth.TRUSTED_HEADER_ENV, HEADER)

    def sign_in(email: str | None) -> None:
        monkeypatch.setattr(auth, "request_headers", lambda: {HEADER: email} if email else {})

    return sign_in


def shown(at) -> str:
    """Every text of the page: texts() and the plain st.text bodies (messages, payloads)."""
    return texts(at) + "\n" + "\n".join(str(t.value) for t in at.text)


def kpi(at, label: str) -> str:
    return metric_values(at)[label]


def test_each_person_sees_their_own_numbers(world, as_person):
    seen = {}
    for uid in ("alice", "bob", "carol", "dave", "root"):
        as_person(f"{uid}@example.com")
        at = open_page("overview")
        assert not at.exception, at.exception
        assert f"Signed in as {uid.title()}" in texts(at)
        seen[uid] = kpi(at, "Tasks")
    assert seen == {"alice": "1", "bob": "2", "carol": "6", "dave": "4", "root": "10"}


def test_csv_and_lists_hold_only_the_viewers_rows(world, as_person, monkeypatch):
    spy = MediaSpy().install(monkeypatch)
    as_person("bob@example.com")
    at = open_page("export", export_grain="whole period", export_by="user")
    rows = csv_frame(download(at, spy, "Download"))
    assert rows["User id"].tolist() == ["bob"] and rows["Tasks"].tolist() == [2]
    at = open_page("runs")
    listed = at.dataframe[0].value
    assert listed["name"].tolist() == ["bob private chat"]


def test_another_members_run_by_url_is_not_found_and_changes_nothing(world, as_person):
    as_person("bob@example.com")
    at = open_page("runs", run_id=world["runs"]["alice"])
    assert "No such run, or not one you may read" in texts(at)
    assert "alice secret" not in shown(at)
    assert not [b for b in at.button if b.label in ("Delete", "Archive", "Star")]


def test_management_appears_only_for_those_allowed(world, as_person):
    run = world["runs"]["alice"]
    as_person("carol@example.com")  # alice's manager: reads, may not change
    at = open_page("runs", run_id=run)
    assert "alice secret" in shown(at)
    labels = {b.label for b in at.button}
    assert not labels & {"Delete", "Archive", "Restore", "Star"}
    assert "You may read this run but not change it" in texts(at)
    as_person("alice@example.com")
    at = open_page("runs", run_id=run)
    labels = {b.label for b in at.button}
    assert {"Delete", "Archive", "Star"} <= labels
    at.button(key="run_delete").click().run()
    with ingest.Tracker(world["url"]) as owner:
        assert owner.get_run(run)["status"] == "deleted"
        owner.restore_run(run)


def test_a_share_reaches_the_recipient_at_once(world, as_person):
    run = world["runs"]["dave"]
    as_person("bob@example.com")
    assert kpi(open_page("overview"), "Tasks") == "2"
    with ingest.Tracker(world["url"], viewer="dave") as dave:
        dave.share_run(run, "bob")
        try:
            at = open_page("overview")
            assert kpi(at, "Tasks") == "6"
            at = open_page("runs", run_id=run)
            assert "dave secret" in shown(at)
        finally:
            dave.unshare_run(run, "bob")
    assert kpi(open_page("overview"), "Tasks") == "2"
    at = open_page("runs", run_id=run)  # the run read a moment ago is not served from cache
    assert "dave secret" not in shown(at) and "No such run" in texts(at)


def test_visible_runs_are_asked_again_only_when_access_changed(world, as_person, monkeypatch):
    asked = []
    original = ingest_viewer.visible_runs

    def counting(url, viewer):
        asked.append(viewer)
        return original(url, viewer)

    monkeypatch.setattr(ingest_viewer, "visible_runs", counting)
    as_person("carol@example.com")  # manager of red: alice, bob, carol
    at = open_page("overview")
    assert kpi(at, "Tasks") == "6"
    before = len(asked)
    at.run()
    at.run()
    assert len(asked) == before  # nothing changed: the set is not asked for again
    with ingest.Tracker(world["url"]) as owner:
        owner.upsert_user("dave", "Dave", "dave@example.com", "red", "member")  # team, not role
        try:
            at.run()
            assert asked[before:] == ["carol"]
            assert kpi(at, "Tasks") == "10"  # dave's 4 tasks, now in carol's team
        finally:
            owner.upsert_user("dave", "Dave", "dave@example.com", "blue", "member")
    at.run()
    assert kpi(at, "Tasks") == "6"


def test_an_unknown_person_sees_nothing_and_no_header_is_refused(world, as_person):
    as_person("mallory@example.com")
    at = open_page("overview")
    assert "not yet a person in this database" in texts(at)
    assert not at.metric and not at.title
    as_person(None)
    at = open_page("overview")
    assert f"No {HEADER} header" in texts(at)
    assert not at.metric


def test_the_access_page_is_for_admins(world, as_person):
    as_person("root@example.com")
    at = open_page()
    at.switch_page("views/access.py").run()
    assert not at.exception, at.exception
    assert "Access" in texts(at)
    as_person("bob@example.com")
    at = open_page()
    with pytest.raises(Exception):  # noqa: B017 - the page is not registered for bob
        at.switch_page("views/access.py").run()


def test_local_mode_says_so_on_every_page(world, monkeypatch):
    monkeypatch.delenv(auth.TRUSTED_HEADER_ENV, raising=False)
    for page in ("overview", "runs", "export"):
        at = open_page(page)
        assert "Local mode" in " ".join(w.value for w in at.warning), page
        assert kpi(at, "Tasks") == "10" if page == "overview" else True


def test_the_local_admin_cannot_be_signed_in_as_through_the_header(world, as_person):
    """Issue 21: local mode leaves a `local-admin` admin in ai_users; a proxy passing that
    value signed in as admin and saw every run."""
    ingest_viewer.ensure_local_admin(world["url"], auth.LOCAL_ADMIN_ID)
    for value in (auth.LOCAL_ADMIN_ID, " Local-Admin "):
        as_person(value)
        at = open_page("overview")
        assert "not yet a person in this database" in texts(at)
        assert not at.metric


def test_the_kept_access_connection_is_replaced_when_the_server_drops_it(world):
    """data.access_version asks over one kept connection: the version follows a change, a
    connection the server ended is replaced, and an unreachable server raises its own
    error (not one about the kept connection)."""
    import psycopg

    from dashboard import data

    url = world["url"]
    first = data.access_version(url)
    assert first == ingest_viewer.access_version(url)
    kept = data._access_reader(url)["conn"]
    with ingest.Tracker(url) as owner:
        owner.upsert_user("erin", "Erin", "erin@example.com", "blue", "member")
    second = data.access_version(url)
    assert second != first and second == ingest_viewer.access_version(url)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (kept.info.backend_pid,))
    assert data.access_version(url) == second
    assert data._access_reader(url)["conn"] is not kept
    with pytest.raises(psycopg.OperationalError):
        data.access_version("postgresql://127.0.0.1:1/nowhere?connect_timeout=2")
