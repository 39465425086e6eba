"""Alert rules delivered once to a real webhook on 127.0.0.1 (docs/spend-control.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from builders import make_run, make_task

import ingest
from dashboard.command import main
from ingest.spend import alert_rules, budgets
from queries import open_mirror
from queries.alerts import check_alerts, format_value


class Receiver:
    """A webhook receiver: records every POST body; answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[dict] = []
        self.keys: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                receiver.keys.append(self.headers["Idempotency-Key"])
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _spend_now(conn, dollars: str, **fields) -> None:
    """A completed task of `dollars` created a minute ago, but never before today's UTC
    midnight (so in this month and week, also in the first minute of either)."""
    run = make_run(conn, user_id=fields.get("user_id"))
    now = datetime.now(UTC)
    at = max(now - timedelta(minutes=1), now.replace(hour=0, minute=0, second=0, microsecond=0))
    row = {"status": "completed", "created_at": at}
    make_task(conn, run, **{**row, "cost": Decimal(dollars), **fields})


def test_budget_alert_fires_once_across_syncs_then_resolves_once(
    conn, db_url, tmp_path, monkeypatch, capsys, receiver
):
    monkeypatch.setenv("DATABASE_URL", db_url)
    mirror = str(tmp_path / "analytics.duckdb")
    _spend_now(conn, "90")
    budget = budgets.set_budget(db_url, amount=100, period="month")
    alert_rules.add_rule(
        db_url,
        name="spend 80%",
        kind="budget_spend",
        threshold="0.8",
        budget_id=budget["id"],
        webhook_url=receiver.url,
    )
    for _ in range(3):  # every sync evaluates the rules; only the first one fires
        assert main(["sync", "--mirror", mirror]) == 0
        assert "alerts: 1 rule(s) evaluated" in capsys.readouterr().out
    assert main(["alerts", "check", "--mirror", mirror]) == 0
    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert body["event"] == "firing" and body["rule"] == "spend 80%" and body["scope"] == "all"
    assert (
        body["text"].startswith("[FIRING] spend 80%") and "$90.00 of budget $100.00" in body["text"]
    )
    assert body["value"] == pytest.approx(0.9) and body["threshold"] == 0.8
    assert body["attachments"][0]["fields"]  # Slack's attachment fields
    assert receiver.keys == [f"ai-runs-alert-{body['event_id']}"]

    budgets.set_budget(db_url, amount=1000, period="month")  # the same budget, raised
    for _ in range(2):
        assert main(["sync", "--mirror", mirror]) == 0
    assert [b["event"] for b in receiver.bodies] == ["firing", "resolved"]
    history = alert_rules.alert_history(db_url)
    assert [(h["event"], h["delivery"], h["attempts"]) for h in history] == [
        ("resolved", "delivered", 1),
        ("firing", "delivered", 1),
    ]
    assert main(["alerts", "list"]) == 0
    assert "ok     spend 80%" in capsys.readouterr().out


def test_receiver_down_is_retried_then_recorded_failed(conn, db_url, tmp_path):
    failing = Receiver(status=503)
    closed = Receiver()
    closed.close()  # nothing listens on that port any more
    try:
        _spend_now(conn, "5", model="gpt-4o", time_to_first_token=4000)
        for name, url in (("503", failing.url), ("closed", closed.url)):
            alert_rules.add_rule(
                db_url, name=name, kind="ttft_p95", threshold=1000, webhook_url=url,
                scope_kind="model", scope_value="gpt-4o", window_minutes=24 * 60,
            )  # fmt: skip
        with open_mirror(tmp_path / "m.duckdb") as con:
            from queries import sync_mirror

            sync_mirror(db_url, con=con)
            result = check_alerts(con, db_url, attempts=3, backoff_seconds=0.01)
            again = check_alerts(con, db_url, attempts=3, backoff_seconds=0.01)
        assert sorted(result.fired) == ["503", "closed"] and result.failed == 2
        assert again.fired == [] and again.failed == 0  # a failed delivery is final
        assert len(failing.bodies) == 3  # the bound
        history = {h["rule_name"]: h for h in alert_rules.alert_history(db_url)}
        for name in ("503", "closed"):
            assert history[name]["delivery"] == "failed" and history[name]["attempts"] == 3
        assert history["503"]["last_error"] == "HTTP 503"
        assert "Connection" in history["closed"]["last_error"]
    finally:
        failing.close()


def test_forecast_and_failure_rate_rules(conn, db_url, tmp_path, receiver):
    _spend_now(conn, "10", status="failed", user_id="bo")
    budget = budgets.set_budget(db_url, amount="10", period="week")
    alert_rules.add_rule(
        db_url, name="forecast", kind="budget_forecast", threshold=1, budget_id=budget["id"],
        webhook_url=receiver.url,
    )  # fmt: skip
    alert_rules.add_rule(
        db_url, name="failures", kind="failure_rate", threshold="0.5", window_minutes=180,
        scope_kind="user", scope_value="bo",
    )  # fmt: skip
    alert_rules.add_rule(
        db_url, name="quiet", kind="failure_rate", threshold="0.5", min_tasks=5
    )  # too few tasks: never fires
    with open_mirror(tmp_path / "m.duckdb") as con:
        from queries import sync_mirror

        sync_mirror(db_url, con=con)
        result = check_alerts(con, db_url)
    assert sorted(result.fired) == ["failures", "forecast"]
    assert result.values["failures"] == 1.0 and result.values["quiet"] is None
    assert [(b["rule"], b["event"]) for b in receiver.bodies] == [("forecast", "firing")]
    assert "week-end forecast" in receiver.bodies[0]["text"]
    deliveries = {e["rule_name"]: e["delivery"] for e in alert_rules.alert_history(db_url)}
    assert deliveries == {"forecast": "delivered", "failures": "no_webhook"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "p99"}, "kind"),
        ({"threshold": "-1"}, "threshold"),
        ({"scope_kind": "planet", "scope_value": "x"}, "scope_kind"),
        ({"scope_kind": "team"}, "scope_value"),
        ({"webhook_url": "ftp://x"}, "webhook_url"),
        ({"kind": "budget_spend"}, "budget_id"),
    ],
)
def test_bad_rule_names_the_field(db_url, fields, field):
    args = {"name": "r", "kind": "failure_rate", "threshold": "0.1", **fields}
    with pytest.raises(ingest.ValidationError) as raised:
        alert_rules.add_rule(db_url, **args)
    assert raised.value.field == field
    assert alert_rules.list_rules(db_url) == []


def test_concurrent_checks_record_and_deliver_a_firing_once(conn, db_url, tmp_path, receiver):
    from concurrent.futures import ThreadPoolExecutor

    from queries import sync_mirror

    _spend_now(conn, "3", status="failed")
    alert_rules.add_rule(
        db_url, name="failing", kind="failure_rate", threshold="0.5", webhook_url=receiver.url
    )
    with open_mirror(tmp_path / "m.duckdb") as con:
        sync_mirror(db_url, con=con)

        def check(_: int):
            cursor = con.cursor()
            try:
                return check_alerts(cursor, db_url, backoff_seconds=0.01)
            finally:
                cursor.close()

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(check, range(4)))
    assert sum(len(r.fired) for r in results) == 1
    assert sum(r.delivered for r in results) == 1
    assert [b["event"] for b in receiver.bodies] == ["firing"]


def test_messages_format_numbers_and_name_the_count_behind_a_p95(conn, db_url, tmp_path, receiver):
    for ttft in (100, 200, 300):
        _spend_now(conn, "0.01", time_to_first_token=ttft, user_id="cy")
    for _ in range(2):  # failed tasks are not in a p95 of completed tasks
        _spend_now(conn, "0.01", status="failed", user_id="cy")
    alert_rules.add_rule(db_url, name="slow", kind="ttft_p95", threshold=50, min_tasks=3,
                         scope_kind="user", scope_value="cy", webhook_url=receiver.url)  # fmt: skip
    alert_rules.add_rule(db_url, name="flaky", kind="failure_rate", threshold="0.25",
                         scope_kind="user", scope_value="cy")  # fmt: skip
    # Only 3 completed tasks (5 in the window): a rule needing 4 never fires.
    alert_rules.add_rule(db_url, name="needs four", kind="ttft_p95", threshold=50, min_tasks=4,
                         scope_kind="user", scope_value="cy")  # fmt: skip
    with open_mirror(tmp_path / "m.duckdb") as con:
        from queries import sync_mirror

        sync_mirror(db_url, con=con)
        result = check_alerts(con, db_url)
    assert sorted(result.fired) == ["flaky", "slow"]
    messages = {e["rule_name"]: e["message"] for e in alert_rules.alert_history(db_url)}
    assert "= 290 ms (of 3 completed tasks) (threshold 50 ms)" in messages["slow"]
    assert "= 40% (of 5 finished tasks) (threshold 25%)" in messages["flaky"]
    assert receiver.bodies[0]["text"] == messages["slow"]
    assert format_value("ttft_p95", Decimal("5000")) == "5,000 ms"  # not 5E+3
    assert format_value("budget_spend", Decimal("1.907022")) == "190.7%"  # not 1.907022
    assert format_value("failure_rate", None) == "n/a"


def test_alerts_check_works_while_another_process_holds_the_mirror(
    conn, db_url, tmp_path, monkeypatch, capsys, receiver
):
    monkeypatch.setenv("DATABASE_URL", db_url)
    mirror = tmp_path / "held.duckdb"
    open_mirror(mirror).close()
    holder = subprocess.Popen(  # a second process holds the mirror, as the dashboard does
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); time.sleep(120)", str(mirror)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        _spend_now(conn, "90")
        budget = budgets.set_budget(db_url, amount=100)
        alert_rules.add_rule(db_url, name="held", kind="budget_spend", threshold="0.8",
                             budget_id=budget["id"], webhook_url=receiver.url)  # fmt: skip
        assert main(["alerts", "check", "--mirror", str(mirror)]) == 0
        captured = capsys.readouterr()
        assert "held by another process" in captured.err
        assert "firing now: held" in captured.out
        assert [(b["rule"], b["event"]) for b in receiver.bodies] == [("held", "firing")]
    finally:
        holder.kill()
        holder.wait()
