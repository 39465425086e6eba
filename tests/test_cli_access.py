"""`ai-runs user | share | redaction | audit` (ingest/tracking/cli.py) on real Postgres."""

from __future__ import annotations

import pytest

import ingest
from dashboard.command import main

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers


def test_the_operator_makes_people_shares_and_rules(db_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["user", "set", "ann", "--email", "ann@example.com", "--role", "admin"]) == 0
    assert main(["user", "set", "ben", "--team", "red"]) == 0
    with ingest.Tracker(db_url) as owner:
        run = owner.create_run("chat", name="ann's", user_id="ann")
    assert main(["share", str(run["id"]), "ben", "--permission", "edit"]) == 0
    assert main(["redaction", "enable", "email"]) == 0
    assert main(["redaction", "add", "ticket", r"ZX-\d+"]) == 0
    assert main(["redaction", "add", "broken", "("]) != 0
    capsys.readouterr()
    assert main(["user", "list"]) == 0
    assert main(["redaction", "list"]) == 0
    assert main(["audit"]) == 0
    out = capsys.readouterr().out
    assert "ann\tann@example.com\t-\tadmin" in out and "ben\t-\tred\tmember" in out
    assert "on \temail" in out and "on \tticket" in out
    assert "\tshare\t" in out and "\tuser_added\t" in out
    with ingest.Tracker(db_url, viewer="ben") as ben:
        assert ben.run_rights(run["id"]) == {"edit": True, "own": False}
    assert main(["share", str(run["id"]), "ben", "--remove"]) == 0
    with ingest.Tracker(db_url, viewer="ben") as ben:
        assert ben.visible_run_ids() == []
