"""Real Postgres for every test: the embedded server by default, DATABASE_URL when set.

A template database is migrated once per session; each test gets its own clone of it
(CREATE DATABASE ... TEMPLATE, a few ms), dropped afterwards.

Under pytest-xdist (`-n`, as `.ci/run` runs it) every worker is a session of its own: its
own embedded server in its own temporary folder, its own template and databases (named
with its process id), and its own AI_RUNS_HOME below the caller's. See docs/testing.md.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from ingest.store import config as settings
from ingest.store import database, embedded

_counter = itertools.count()

# The embedded test server's data is thrown away after the session: it need not survive an
# operating-system crash, so it never waits for the disk (a process that is killed loses
# nothing: its writes are in the kernel's cache). Creating and dropping the per-test
# databases is most of what it writes.
_THROWAWAY_SERVER = {"fsync": "off", "full_page_writes": "off"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="keep only the tests that use the database server (pg_server among their "
        "fixtures); the others cannot reach it, so a second engine's run repeats them "
        'unchanged (docs/testing.md, "Which tests run on both engines")',
    )
    parser.addoption(
        "--trace-named-queries",
        metavar="DIR",
        help="record in DIR which named queries each test file sends to Postgres, in every "
        "process of the run (tests/query_trace/trace_named_queries.py)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """An xdist worker (PYTEST_XDIST_WORKER=gw0, gw1, ...) gets its own AI_RUNS_HOME below
    the caller's, so no two workers share a mirror, a lake folder or settings; with
    --trace-named-queries, the run records the named queries each test file sends."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        os.environ["AI_RUNS_HOME"] = str(settings.home() / worker)
    _trace_named_queries(config.getoption("--trace-named-queries"))


def _trace_named_queries(folder: str | None) -> None:
    """With --trace-named-queries, this process and every Python process it starts record
    the named queries they send (the workers inherit the environment)."""
    if not folder or os.environ.get("AI_RUNS_TRACE_QUERIES"):
        return
    traced = Path(folder).resolve()
    traced.mkdir(parents=True, exist_ok=True)
    site = Path(__file__).parent / "query_trace"
    os.environ["AI_RUNS_TRACE_QUERIES"] = str(traced)
    paths = [str(site), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
    sys.path.insert(0, str(site))
    import trace_named_queries

    trace_named_queries.install(str(traced))


def _uses_the_server(item: pytest.Item) -> bool:
    """Whether the test reaches the session's server: every database fixture (db_url,
    make_db, conn, empty_db_url, template_db and each module's own database) needs
    pg_server."""
    return "pg_server" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--database-tests-only"):
        return
    kept = [item for item in items if _uses_the_server(item)]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if not _uses_the_server(i)])
        items[:] = kept


@pytest.fixture(autouse=True)
def _no_server_without_its_fixture(request: pytest.FixtureRequest, monkeypatch) -> None:
    """A test without pg_server never sees DATABASE_URL (nor do the processes it starts):
    it cannot reach the server behind it, so its result is the same on every engine and
    `--database-tests-only` may leave it out of a second engine's run."""
    if not _uses_the_server(request.node):
        monkeypatch.delenv("DATABASE_URL", raising=False)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a Postgres server the tests may create databases on."""
    configured = os.environ.get("DATABASE_URL", "").strip()
    if configured:
        yield configured
        return
    pgdata = tmp_path_factory.mktemp("embedded") / "pgdata"
    url = embedded.start(pgdata)
    with _admin(url) as conn:
        for setting, value in _THROWAWAY_SERVER.items():
            conn.execute(
                sql.SQL("ALTER SYSTEM SET {} = {}").format(
                    sql.Identifier(setting), sql.Literal(value)
                )
            )
        conn.execute("SELECT pg_reload_conf()")
    try:
        yield url
    finally:
        embedded.stop(pgdata)


def _admin(server_url: str) -> psycopg.Connection:
    return psycopg.connect(server_url, autocommit=True)


@pytest.fixture(scope="session")
def template_db(pg_server: str) -> Iterator[str]:
    """Name of a migrated template database for this session."""
    name = f"ai_runs_tpl_{os.getpid()}"
    with _admin(pg_server) as conn:
        embedded.drop_database(conn, name)
        embedded.create_database(conn, name)
    database.migrate(embedded.with_database(pg_server, name))
    yield name
    with _admin(pg_server) as conn:
        embedded.drop_database(conn, name)


def _new_database(pg_server: str, template: str) -> str:
    name = f"ai_runs_t_{os.getpid()}_{next(_counter)}"
    with _admin(pg_server) as conn:
        embedded.create_database(conn, name, template)
    return name


@pytest.fixture
def make_db(pg_server: str, template_db: str) -> Iterator[Callable[[], str]]:
    """Factory of fresh, migrated, empty databases (URLs), all dropped after the test."""
    names: list[str] = []

    def make() -> str:
        names.append(_new_database(pg_server, template_db))
        url = embedded.with_database(pg_server, names[-1])
        database._migrated.add(url)
        return url

    yield make
    with _admin(pg_server) as conn:
        for name in names:
            embedded.drop_database(conn, name)


@pytest.fixture
def db_url(make_db: Callable[[], str]) -> str:
    """URL of a fresh, migrated, empty database for one test."""
    return make_db()


@pytest.fixture
def empty_db_url(pg_server: str) -> Iterator[str]:
    """URL of a fresh database with no schema at all (for migration tests)."""
    name = f"ai_runs_e_{os.getpid()}_{next(_counter)}"
    with _admin(pg_server) as conn:
        embedded.create_database(conn, name)
    yield embedded.with_database(pg_server, name)
    with _admin(pg_server) as conn:
        embedded.drop_database(conn, name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit dict-row connection to the test's database."""
    with psycopg.connect(db_url, autocommit=True, row_factory=psycopg.rows.dict_row) as c:
        yield c


@pytest.fixture
def s3_endpoint(monkeypatch):
    """A local S3-compatible server (moto's server mode) on 127.0.0.1, in a process of its
    own (deltalake keeps the GIL during some S3 calls, which would starve a server thread
    of this process), with the bucket `analytics`, set as AI_RUNS_LAKE_S3_ENDPOINT; its
    URL."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import socket
    import subprocess
    import sys
    import threading

    import pyarrow.fs as pafs

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in server.stderr:  # werkzeug says where it listens once it does
            if "Running on" in line:
                break
        else:
            raise RuntimeError("moto's S3 server did not start")
        # Keep reading its request log, so a full pipe never blocks it.
        threading.Thread(target=server.stderr.read, daemon=True).start()
        endpoint = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("AI_RUNS_LAKE_S3_ENDPOINT", endpoint)
        pafs.S3FileSystem(
            endpoint_override=endpoint, scheme="http", allow_bucket_creation=True
        ).create_dir("analytics")  # the bucket
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)


class _Chromium:
    """Debian's headless Chromium, launched once for a run of real-browser tests and closed
    before the first test without the browser mark: while Playwright's sync API has a
    browser open it keeps an asyncio loop running in this thread, so a later test's
    `asyncio.run` (LiteLLM's async calls) would fail (`pytest` with no marks runs both
    kinds in one process)."""

    def __init__(self) -> None:
        self._playwright = None
        self._browser = None

    def get(self):
        if self._browser is None:
            from playwright.sync_api import sync_playwright
            from test_browser import CHROMIUM, CHROMIUM_FLAGS

            if not CHROMIUM.exists():
                pytest.fail(
                    f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` "
                    "(the browser tests never download a browser)"
                )
            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
            )
        return self._browser

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._browser = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None


_CHROMIUM = _Chromium()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("browser") is None:
        _CHROMIUM.close()


def pytest_sessionfinish() -> None:
    _CHROMIUM.close()
    _stop_the_workers_own_server()


def _stop_the_workers_own_server() -> None:
    """Stop the embedded server that code under test started in an xdist worker's own
    AI_RUNS_HOME (commands run without DATABASE_URL start it and leave it up, as they do
    for a user); it would outlive the run. Never the caller's: a run without workers
    leaves the caller's home, and any server in it, alone."""
    if os.environ.get("PYTEST_XDIST_WORKER") and embedded.is_running(settings.pgdata()):
        embedded.stop(settings.pgdata())


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium (one for all the real-browser tests in a row, see
    _Chromium); each module opens its own contexts in it and closes them."""
    return _CHROMIUM.get()


@pytest.fixture(scope="session")
def demo_dashboard(pg_server: str, template_db: str, tmp_path_factory):
    """`ai-runs dashboard --demo` on a fresh database and a free port, one for the session:
    the modules that test its pages share it (tests/test_browser.py)."""
    from test_browser import serve_the_demo

    yield from serve_the_demo(pg_server, template_db, tmp_path_factory)
