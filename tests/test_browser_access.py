"""Sign-in in a real headless Chromium (docs/access.md): two members sign in through a
local OpenID Connect provider on 127.0.0.1 (`oidc-provider-mock`, Streamlit's st.login)
and see different numbers; through a trusted proxy header the same two, and their manager
who sees both. Real Postgres (RLS decides), real mirror, real Streamlit server.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from test_browser import _cards_drawn, _free_port, _settle, _wait_healthy

import ingest
from dashboard import auth
from ingest.store import database

pytestmark = pytest.mark.browser
APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
# person -> (team, role, tasks, cost of each task in USD)
PEOPLE = {
    "alice": ("red", "member", 2, "0.25"),
    "bob": ("red", "member", 3, "1.00"),
    "carol": ("red", "manager", 0, "0"),
}
HEADER = "X-Forwarded-Email"


@pytest.fixture(scope="module")
def people_db(pg_server: str, template_db: str) -> Iterator[str]:
    from dashboard_support import create_database, drop_database

    name = f"ai_runs_browser_access_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    database._migrated.add(url)
    with ingest.Tracker(url) as owner:
        for uid, (team, role, n, cost) in PEOPLE.items():
            owner.upsert_user(uid, uid.title(), f"{uid}@example.com", team, role)
            run = owner.create_run("chat", name=f"{uid} chat", user_id=uid)
            for _ in range(n):
                task = owner.create_task(run["id"], provider="openai", model="gpt-4o")
                owner.complete_task(task["task_id"], "ok", cost=Decimal(cost))
    yield url
    drop_database(pg_server, name)


@pytest.fixture(scope="module")
def oidc_provider() -> Iterator[str]:
    """A local OpenID Connect provider on 127.0.0.1 that signs in alice, bob and carol."""
    import oidc_provider_mock
    import werkzeug.serving

    users = [
        oidc_provider_mock.User(
            sub=uid, claims={"email": f"{uid}@example.com", "name": uid.title()}
        )
        for uid in PEOPLE
    ]
    server = werkzeug.serving.make_server(
        "127.0.0.1", 0, oidc_provider_mock.app(user_claims=users), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def _serve(folder: Path, url: str, env_extra: dict[str, str], secrets_toml: str) -> Iterator[str]:
    """`streamlit run dashboard/app.py` from `folder` (its .streamlit/ holds the config)."""
    port = _free_port()
    streamlit_dir = folder / ".streamlit"
    streamlit_dir.mkdir(parents=True, exist_ok=True)
    (streamlit_dir / "config.toml").write_text(
        "[browser]\ngatherUsageStats = false\n[server]\nheadless = true\n"
    )
    if secrets_toml:
        (streamlit_dir / "secrets.toml").write_text(secrets_toml.replace("{port}", str(port)))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "AI_RUNS_HOME": str(folder),
        "AI_RUNS_MIRROR": str(folder / "analytics.duckdb"),
        **env_extra,
    }
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
               "--server.address", "127.0.0.1"]  # fmt: skip
    log = folder / "dashboard.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process, log)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def oidc_dashboard(people_db, oidc_provider, tmp_path_factory) -> Iterator[str]:
    secrets_toml = (
        "[auth]\n"
        'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(16)}"\n'
        'client_id = "ai-runs-dashboard"\n'
        'client_secret = "not-a-secret"\n'
        f'server_metadata_url = "{oidc_provider}/.well-known/openid-configuration"\n'
    )
    yield from _serve(tmp_path_factory.mktemp("oidc_home"), people_db, {}, secrets_toml)


@pytest.fixture(scope="module")
def header_dashboard(people_db, tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("header_home")
    yield from _serve(folder, people_db, {auth.TRUSTED_HEADER_ENV: HEADER}, "")


def _kpis(page) -> dict[str, str]:
    """The overview's metrics, label -> shown value."""
    page.get_by_role("heading", name="Overview", exact=True).first.wait_for()
    # The KPI row draws metric by metric, after the script has ended: wait for the one these
    # tests read, then for the row to hold still, so no label is missing and no value is a
    # previous run's.
    page.locator('[data-testid="stMetricLabel"]').get_by_text("Tasks", exact=True).first.wait_for()
    _cards_drawn(page)
    found = {}
    for metric in page.locator('[data-testid="stMetric"]').all():
        label = metric.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        found[label] = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return found


def _sign_in_with_oidc(browser, base: str, who: str) -> dict[str, str]:
    context = browser.new_context(viewport={"width": 1280, "height": 2000})
    page = context.new_page()
    page.set_default_timeout(45_000)
    try:
        page.goto(base)
        _settle(page)
        page.get_by_role("button", name="Sign in").click()
        # The provider's own page: pick the person (a real form post on 127.0.0.1).
        page.get_by_role("button", name=who, exact=True).click()
        page.wait_for_url(f"{base}/**")
        _settle(page)
        page.get_by_text(f"Signed in as {who.title()}").first.wait_for()
        return _kpis(page)
    finally:
        context.close()


def _open_with_header(browser, base: str, email: str) -> dict[str, str]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 2000}, extra_http_headers={HEADER: email}
    )
    page = context.new_page()
    page.set_default_timeout(45_000)
    try:
        page.goto(base)
        _settle(page)
        page.get_by_text("Signed in as").first.wait_for()
        return _kpis(page)
    finally:
        context.close()


def test_two_members_signed_in_with_oidc_see_their_own_numbers(browser, oidc_dashboard):
    alice = _sign_in_with_oidc(browser, oidc_dashboard, "alice")
    bob = _sign_in_with_oidc(browser, oidc_dashboard, "bob")
    assert (alice["Tasks"], alice["Spend"]) == ("2", "$0.50")
    assert (bob["Tasks"], bob["Spend"]) == ("3", "$3.00")


def test_members_and_their_manager_behind_a_proxy_header(browser, header_dashboard):
    assert _open_with_header(browser, header_dashboard, "alice@example.com")["Tasks"] == "2"
    assert _open_with_header(browser, header_dashboard, "bob@example.com")["Tasks"] == "3"
    assert _open_with_header(browser, header_dashboard, "carol@example.com")["Tasks"] == "5"
