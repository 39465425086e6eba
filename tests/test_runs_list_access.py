"""The runs list under row-level security (docs/access.md, "The runs list under row-level
security"): a member's or manager's list and search, which find the runs they may read by
index first (migration 0025), return exactly the owner's list of the same filters kept to
the runs the rule of who reads what lets them read, computed here from scratch."""

from __future__ import annotations

import os
import random
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from builders import make_run
from psycopg.rows import dict_row

import ingest
from ingest.access.viewer import connect_as
from ingest.store import database, embedded

PEOPLE = [
    ("alice", "red", "member"),
    ("bob", "red", "member"),
    ("carol", "red", "manager"),
    ("dave", "blue", "member"),
    ("erin", "blue", "member"),
    ("root", "blue", "admin"),
]
OWNERS = ["alice", "bob", "carol", "dave", "erin", None]  # None: a run of no person
TAGS = ["legal", "sales", "ops"]
NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(pg_server, template_db):
    """About 240 runs of five people (and some of nobody) over 60 days with tags, statuses,
    a searched word and shares; yields (url, who reads which run ids)."""
    name = f"ai_runs_list_access_{os.getpid()}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        embedded.drop_database(admin, name)
        embedded.create_database(admin, name, template_db)
    url = embedded.with_database(pg_server, name)
    database._migrated.add(url)
    rng = random.Random(26)
    owner_of: dict[uuid.UUID, str | None] = {}
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        for uid, team, role in PEOPLE:
            conn.execute(
                "INSERT INTO ai_users (id, display_name, team, role) VALUES (%s, %s, %s, %s)",
                (uid, uid.title(), team, role),
            )
        for n in range(240):
            who = OWNERS[n % len(OWNERS)]
            word = rng.choice(["GDPR notice", "gdpr", "weather", "invoice"])
            where = rng.choice(["name", "description", "message"])
            run_id = make_run(
                conn,
                user_id=who,
                name=f"run {n} {word if where == 'name' else ''}",
                description=word if where == "description" else "",
                messages=[{"role": "user", "content": word if where == "message" else "hi"}],
                tags=rng.sample(TAGS, rng.randint(0, 2)),
                status=rng.choice(["active", "active", "active", "archived"]),
                is_starred=rng.random() < 0.3,
                # Some runs share a created_at, so that the keyset order falls back to id.
                created_at=NOW - timedelta(days=rng.randint(0, 60), hours=n % 3),
            )
            owner_of[run_id] = who
        shares = {"alice": [], "carol": [], "dave": [], "erin": []}
        for run_id in owner_of:
            for reader in shares:
                # Shares of others' runs, of the reader's own and (for carol) of her team's.
                if rng.random() < (0.5 if reader == "erin" else 0.15):
                    conn.execute(
                        "INSERT INTO ai_run_shares (run_id, user_id, permission) "
                        "VALUES (%s, %s, %s)",
                        (run_id, reader, rng.choice(["view", "edit"])),
                    )
                    shares[reader].append(run_id)
        # A search whose text spans two fields in the run's joined text matches no field
        # (run_filter_search): the readable runs' function finds both runs, the list keeps one.
        for who in ("alice", "bob", "dave"):
            for name, description in (("quarterly", "report"), ("quarterly\nreport", "")):
                run_id = make_run(
                    conn, user_id=who, name=name, description=description, created_at=NOW
                )
                owner_of[run_id] = who
                for reader in ("alice", "dave"):
                    if reader != who:
                        share(conn, run_id, reader)
                        shares[reader].append(run_id)
        # Runs moved in time after they were shared: their shares follow (migration 0028),
        # so a list of a time range finds them where they are now.
        moved = [run_id for run_id in shares["erin"] if run_id in shares["alice"]][:6]
        for n, run_id in enumerate(moved):
            days = 50 if n % 2 else 1  # out of the last 30 days, or into them
            conn.execute(
                "UPDATE ai_runs SET created_at = %s WHERE id = %s",
                (NOW - timedelta(days=days, minutes=n), run_id),
            )
        conn.execute("ANALYZE")
    team = {uid: t for uid, t, _ in PEOPLE}
    reads = {}
    for uid, _, role in PEOPLE:
        reads[uid] = {
            run_id
            for run_id, who in owner_of.items()
            if role == "admin"
            or who == uid
            or (role == "manager" and who is not None and team[who] == team[uid])
            or run_id in shares.get(uid, [])
        }
    reads["nobody"] = set()  # a viewer not in ai_users reads nothing
    yield url, reads
    with psycopg.connect(pg_server, autocommit=True) as admin:
        embedded.drop_database(admin, name)


def share(conn: psycopg.Connection, run_id: uuid.UUID, reader: str) -> None:
    conn.execute(
        "INSERT INTO ai_run_shares (run_id, user_id, permission) VALUES (%s, %s, 'view')",
        (run_id, reader),
    )


FILTERS = {
    "no filter": {},
    "every status": {"status": None},
    "one tag": {"tags": ["legal"]},
    "two tags, any": {"tags": ["legal", "ops"]},
    "two tags, all": {"tags": ["legal", "ops"], "tags_match": "all"},
    "search": {"search": "GDPR"},
    "search matching nothing": {"search": "zzqx-no-such-text"},
    "search of names": {"search": "run 1"},
    "search spanning two fields": {"search": "quarterly\nreport"},
    "search in a time range": {"search": "run", "created_from": NOW - timedelta(days=30)},
    "time range": {"created_from": NOW - timedelta(days=30), "created_to": NOW},
    "a day": {"created_from": (NOW - timedelta(days=3)).date(), "created_to": NOW.date()},
    "search, tag and range": {
        "search": "gdpr",
        "tags": ["sales"],
        "created_from": NOW - timedelta(days=45),
    },
    "starred, archived": {"starred": True, "status": "archived"},
    "one owner": {"user_id": "bob"},
}
VIEWERS = ["alice", "bob", "carol", "dave", "erin", "nobody", "root"]


def every_page(tracker: ingest.Tracker, limit: int, **filters) -> list[dict]:
    """Every row of the list, page by page through the cursor."""
    rows, cursor = [], None
    while True:
        page = tracker.list_runs(**filters, limit=limit, cursor=cursor)
        rows += page.rows
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor


@pytest.mark.parametrize("name", list(FILTERS))
def test_a_viewers_list_is_the_owners_list_kept_to_the_runs_they_read(world, name):
    url, reads = world
    filters = FILTERS[name]
    with ingest.Tracker(url) as owner:
        everything = every_page(owner, 1000, **filters)
    assert everything or name in ("search matching nothing",)
    for who in VIEWERS:
        expected = [row for row in everything if row["id"] in reads[who]]
        with ingest.Tracker(url, viewer=who) as tracker:
            for limit in (7, 1000):
                assert every_page(tracker, limit, **filters) == expected, (who, limit)
            exact = tracker.list_runs(**filters, limit=5)
            assert (exact.total, exact.total_exact) == (len(expected), True), who
            assert exact.rows == expected[:5]
            for bound in (1, 4, max(1, len(expected)), 1000):
                page = tracker.list_runs(**filters, limit=5, count_limit=bound)
                assert page.total == min(len(expected), bound), (who, bound)
                assert page.total_exact == (len(expected) <= bound), (who, bound)
                assert page.rows == expected[:5]


def test_the_readable_runs_function_returns_only_what_the_viewer_reads(world):
    """ai_viewer_readable_runs (migration 0025), called as the application role, returns
    the runs of the search and tags among those the viewer reads: every one of the time
    range, maybe some outside it (the range is a hint), and never a run they cannot read."""
    url, reads = world
    since = NOW - timedelta(days=20)
    matching = (
        "SELECT id FROM ai_runs WHERE tags && %s AND (name ILIKE '%%gdpr%%' "
        "OR description ILIKE '%%gdpr%%' OR messages::text ILIKE '%%gdpr%%')"
    )
    with psycopg.connect(url, row_factory=dict_row) as conn:
        ever = {row["id"] for row in conn.execute(matching, (["legal", "sales"],))}
        in_range = {
            row["id"]
            for row in conn.execute(matching + " AND created_at >= %s", (["legal", "sales"], since))
        }
    assert in_range and ever - in_range
    for who in VIEWERS:
        with connect_as(url, who) as conn:
            got = conn.execute(
                "SELECT ai_viewer_readable_runs(%s, NULL, '%%GDPR%%', %s, false) AS id",
                (since, ["legal", "sales"]),
            ).fetchall()
            everything = conn.execute(
                "SELECT ai_viewer_readable_runs(NULL, NULL, NULL, NULL, NULL) AS id"
            ).fetchall()
        ids = {row["id"] for row in got}
        assert in_range & reads[who] <= ids <= ever & reads[who], who
        assert len(got) == len(ids), who  # no run twice
        assert {row["id"] for row in everything} == reads[who], who


def test_a_share_keeps_its_runs_created_at_whoever_moves_the_run(make_db):
    """run_created_at (migration 0028), what a viewer's time range narrows their shares by,
    is the run's created_at: set when the share is written, moved with the run, even by a
    person who may not see the run's other shares; moving it writes no audit row."""
    url = make_db()
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        for uid, team, role in PEOPLE:
            conn.execute(
                "INSERT INTO ai_users (id, display_name, team, role) VALUES (%s, %s, %s, %s)",
                (uid, uid.title(), team, role),
            )
        run_id = make_run(conn, user_id="alice", created_at=NOW)
    with ingest.Tracker(url, viewer="alice") as alice:
        alice.share_run(run_id, "bob", "view")
        alice.share_run(run_id, "dave", "view")
        alice.share_run(run_id, "dave", "edit")  # a new permission: the same run_created_at

    def shares() -> dict[str, datetime]:
        with psycopg.connect(url, row_factory=dict_row) as conn:
            rows = conn.execute(
                "SELECT user_id, run_created_at FROM ai_run_shares WHERE run_id = %s", (run_id,)
            ).fetchall()
        return {row["user_id"]: row["run_created_at"] for row in rows}

    def audit_rows() -> int:
        with psycopg.connect(url) as conn:
            return conn.execute("SELECT count(*) FROM ai_audit").fetchone()[0]

    assert shares() == {"bob": NOW, "dave": NOW}
    audited = audit_rows()
    earlier = NOW - timedelta(days=40)
    with connect_as(url, "alice") as conn:  # alice's policies show her bob's and dave's shares
        conn.execute("UPDATE ai_runs SET created_at = %s WHERE id = %s", (earlier, run_id))
    assert shares() == {"bob": earlier, "dave": earlier}
    with connect_as(url, "dave") as conn:  # may edit the run by his share, sees only his
        conn.execute("UPDATE ai_runs SET created_at = %s WHERE id = %s", (NOW, run_id))
    assert shares() == {"bob": NOW, "dave": NOW}
    assert audit_rows() == audited
    with ingest.Tracker(url, viewer="bob") as bob:
        month = {"created_from": NOW - timedelta(days=30), "search": "test run"}
        assert [row["id"] for row in bob.list_runs(**month).rows] == [run_id]
