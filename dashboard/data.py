"""Data access of the dashboard: the one place with Streamlit caching.

- The database URL and the DuckDB mirror connection are `st.cache_resource`s, keyed by the
  configuration they come from (DATABASE_URL, AI_RUNS_HOME, AI_RUNS_MIRROR), so a test or a
  restarted server pointing elsewhere gets its own.
- This process owns the mirror: it syncs through that one connection, one sync at a time
  (a lock), at most every SYNC_EVERY_SECONDS on page loads, or when asked; its self-check
  runs in a background thread, never in a page load after the first. Reads use a cursor of
  the connection per call.
- Rollup results (`cached(<rollup function>, filters, ...)`) are `st.cache_data` with
  ROLLUP_TTL_SECONDS, keyed also by the mirror's
  data version, which changes whenever a sync brought in rows: new data is never hidden
  behind a cache, and unchanged data is never recomputed within the TTL.
- Chart specs (`chart_spec(<figure function>, ...)`) are `st.cache_data` too, keyed by the
  figure function and its arguments (the rollup's rows among them): a warm page load sends
  the Vega-Lite spec built before instead of building and validating the Altair chart
  again, about half of a warm script run's own work on the chart pages.
- Point reads from Postgres (runs, one run, one task) are cached for POINT_TTL_SECONDS,
  keyed by the viewer, and cleared after every change made from the dashboard.
- Access (docs/access.md): every read is the viewer's. Point reads and changes go through a
  Tracker with the viewer (the application role, under row-level security). Rollups on the
  mirror are restricted to the runs Postgres lets the viewer read: app.py sets them once per
  script run (`set_scope`), and `cached` applies that set to every rollup's filters, so no
  page can forget it. The set is asked of Postgres again only when the mirror's content or
  the access version (shares, roles, people: ingest.access.viewer.access_version) changed, so a
  share or unshare counts at the next page view, and a manager of a large team does not
  wait for the team's run ids on every click. Caches are keyed by that (viewer, mirror
  content, access version) token, never by hashing the set. The mirror sync uses the
  owner connection.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd
import psycopg
import streamlit as st

import queries
from dashboard import auth
from ingest.access import viewer as ingest_viewer
from ingest.store import config, database
from queries import compare, drilldown, options
from queries.filters import Filters
from queries.mirror import VERIFY_EVERY_SECONDS

try:  # a private helper of Streamlit's: what st.altair_chart sends, as a spec
    from streamlit.elements.vega_charts import _convert_altair_to_vega_lite_spec as _to_spec
except ImportError:  # a Streamlit without it: charts are built on every run (chart_spec)
    _to_spec = None

ROLLUP_TTL_SECONDS = 600
POINT_TTL_SECONDS = 15
OPTIONS_TTL_SECONDS = 120
SYNC_EVERY_SECONDS = 30
_SCOPE_KEY = "_visible_runs"
_SCOPE_TOKEN = "_visible_runs_token"
_CHECK_LOCK = threading.Lock()
VISIBLE_RUNS_ENTRIES = 64
T = TypeVar("T")


@dataclass
class Mirror:
    """The process's mirror connection and its sync bookkeeping."""

    url: str
    path: str
    con: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    version: int = 0
    synced_at: float = 0.0  # time.monotonic() of the last sync, 0 = never
    last_error: str | None = None
    checked_at: float = 0.0  # time.monotonic() of the last self-check
    checking: bool = False  # a background self-check is under way


def _settings() -> tuple[str | None, str, str]:
    # Resolved once per set of variables and working folder: a page load asks for the mirror
    # and the database URL a few dozen times, and resolving the paths each time was
    # measurable in a warm script run.
    names = ("DATABASE_URL", "AI_RUNS_HOME", "AI_RUNS_MIRROR")
    return _resolved_settings(tuple(os.environ.get(name) for name in names), os.getcwd())


@functools.lru_cache(maxsize=16)
def _resolved_settings(variables: tuple, folder: str) -> tuple[str | None, str, str]:
    # `variables` and `folder` only key the cache: config reads the environment itself.
    return (config.database_url_setting(), str(config.home()), str(config.mirror_path()))


@st.cache_resource(show_spinner="Connecting to the database…")
def _database_url(setting: str | None, home: str) -> str:
    return database.database_url(setting)


def database_url() -> str:
    """The migrated Postgres this dashboard reads (DATABASE_URL or the embedded server)."""
    setting, home, _ = _settings()
    return _database_url(setting, home)


@st.cache_resource(show_spinner="Opening the analytics mirror…")
def _mirror(url: str, path: str) -> Mirror:
    return Mirror(url=url, path=path, con=queries.open_mirror(path))


def mirror() -> Mirror:
    return _mirror(database_url(), _settings()[2])


def sync(force: bool = False) -> Mirror:
    """Bring the mirror up to date unless it was synced in the last SYNC_EVERY_SECONDS.

    One sync at a time. The first sync of the process waits for one under way; later, a
    page load that finds a sync or the self-check under way uses the data it has (the next
    load syncs), and `force` waits. A failed sync keeps the previous data and records the
    error. The mirror's self-check (a full read of mirror and Postgres: about 28 s at 10M
    tasks) never runs in a page load after the first: a background thread runs it every
    VERIFY_EVERY_SECONDS (`_check_when_due`).
    """
    m = mirror()
    first = m.version == 0
    if not m.lock.acquire(blocking=force or first):
        return m
    try:
        if not force and m.synced_at and time.monotonic() - m.synced_at < SYNC_EVERY_SECONDS:
            return m
        try:
            # The first sync checks the mirror when a check is due (a page waits for it
            # anyway); later ones leave the check to the background thread.
            result = queries.sync_mirror(m.url, con=m.con, verify=None if first else False)
        except Exception as exc:  # shown in the sidebar; the previous mirror still answers
            m.last_error = f"{type(exc).__name__}: {exc}"
            m.synced_at = time.monotonic()
            return m
        m.last_error = None
        m.synced_at = time.monotonic()
        if first:
            m.checked_at = m.synced_at
        _count_change(m, result)
    finally:
        m.lock.release()
    _check_when_due(m)
    return m


def _count_change(m: Mirror, result: Any) -> None:
    changed = result.full or any(result.upserted.values()) or any(result.deleted.values())
    changed = changed or any(result.scores.values())  # scores alone change rollups too
    if changed or m.version == 0:
        m.version += 1


def _check_when_due(m: Mirror) -> None:
    """Start the mirror's self-check in a background thread when the last one is
    VERIFY_EVERY_SECONDS old (a failed check rebuilds the mirror; see queries.mirror)."""
    with _CHECK_LOCK:
        if m.checking or time.monotonic() - m.checked_at < VERIFY_EVERY_SECONDS:
            return
        m.checking = True
    threading.Thread(target=_check, args=(m,), name="mirror-check", daemon=True).start()


def _check(m: Mirror) -> None:
    try:
        with m.lock:
            result = queries.sync_mirror(m.url, con=m.con, verify=True)
            m.synced_at = time.monotonic()
            m.last_error = None
            _count_change(m, result)
    except Exception as exc:  # shown in the sidebar like a failed sync
        m.last_error = f"{type(exc).__name__}: {exc}"
    finally:
        m.checked_at = time.monotonic()
        m.checking = False


def data_key() -> tuple[str, str, int]:
    """Cache key part that changes when the mirror's content does."""
    m = mirror()
    return (m.url, m.path, m.version)


@st.cache_data(ttl=ROLLUP_TTL_SECONDS, show_spinner=False, max_entries=1000)
def _cached(
    key: tuple[str, str, int],
    name: str,
    _rollup: Callable[..., Any],
    _filters: Filters,
    filters_key: tuple[Filters, Any],
    args: tuple,
    kwargs: tuple,
) -> Any:
    # Not hashed (leading underscore): `_rollup`, keyed by `name` (module.function), and
    # `_filters`, keyed by `filters_key` (the filters without the visible runs, and the
    # scope token that names those runs).
    con = _mirror(key[0], key[1]).con.cursor()
    try:
        return _rollup(con, _filters, *args, **dict(kwargs))
    finally:
        con.close()


@st.cache_resource(show_spinner=False, max_entries=VISIBLE_RUNS_ENTRIES)
def _visible_runs(url: str, viewer: str, data: tuple, access: str) -> tuple[str, ...] | None:
    # `data` (the mirror's content) and `access` (the access version) only key the cache.
    return ingest_viewer.visible_runs(url, viewer)


@st.cache_resource(show_spinner=False)
def _access_reader(url: str) -> dict[str, Any]:
    # One kept connection per database, used by one script run at a time (the lock).
    return {"lock": threading.Lock(), "conn": None}


def access_version(url: str) -> str:
    """ingest.access.viewer.access_version, over one kept connection of this process (a new
    connection for it on every page view was a tenth of a warm script run on a loaded
    machine); a broken one is replaced and the question asked again once."""
    reader = _access_reader(url)
    with reader["lock"]:
        try:
            return ingest_viewer.access_version_on(_kept(reader, url))
        except psycopg.OperationalError:  # the server restarted: once more, connected anew
            _drop(reader)
            return ingest_viewer.access_version_on(_kept(reader, url))


def _drop(reader: dict[str, Any]) -> None:
    """Close and forget the kept connection, if there is one (a failed connect left none:
    the next ask connects, and an unreachable server then raises as before)."""
    if reader["conn"] is not None:
        reader["conn"].close()
    reader["conn"] = None


def _kept(reader: dict[str, Any], url: str) -> psycopg.Connection:
    conn = reader["conn"]
    if conn is None or conn.closed or conn.broken:
        conn = reader["conn"] = ingest_viewer.access_connection(url)
    return conn


def set_scope() -> tuple[str, ...] | None:
    """Find the runs the viewer may read (None: all of them) and remember them for this
    script run. Postgres decides, as the viewer; the answer is asked again only when the
    mirror's content or the access version changed. app.py calls it after resolving the
    viewer and syncing the mirror."""
    who = auth.current()
    if who.id is None:
        token: tuple = (None,)
        scope: tuple[str, ...] | None = ()
    else:
        url = database_url()
        token = (who.id, data_key(), access_version(url))
        scope = _visible_runs(url, *token)
    st.session_state[_SCOPE_KEY] = scope
    st.session_state[_SCOPE_TOKEN] = token
    return scope


def scope() -> tuple[str, ...] | None:
    """The runs the viewer may read, as set_scope found them in this script run."""
    if _SCOPE_KEY not in st.session_state:
        raise RuntimeError("no access scope: dashboard/app.py calls data.set_scope() first")
    return st.session_state[_SCOPE_KEY]


def scope_token() -> tuple:
    """Names the viewer's readable runs of this script run (viewer, mirror content, access
    version): equal tokens, equal sets. Cache keys use it instead of the set itself."""
    scope()  # the same check: set_scope ran
    return st.session_state[_SCOPE_TOKEN]


def cached(rollup: Callable[..., T], filters: Filters, *args: Any, **kwargs: Any) -> T:
    """`rollup(mirror cursor, filters, *args, **kwargs)` for a queries rollup function
    (e.g. `cached(queries.kpis, filters)`), restricted to the viewer's runs (`scope()`),
    cached for ROLLUP_TTL_SECONDS and keyed by the mirror's data version, the function,
    the viewer's runs (their token) and the arguments."""
    key = (dataclasses.replace(filters, visible_runs=None), scope_token())
    filters = dataclasses.replace(filters, visible_runs=scope())
    name = f"{rollup.__module__}.{rollup.__qualname__}"
    return _cached(data_key(), name, rollup, filters, key, args, tuple(sorted(kwargs.items())))


@st.cache_data(ttl=ROLLUP_TTL_SECONDS, show_spinner=False, max_entries=200)
def _chart_spec(name: str, _figure: Callable[..., Any], args: tuple, kwargs: tuple) -> dict:
    # `_figure` is keyed by `name` (module.function); its arguments are hashed, data included.
    return _to_spec(_figure(*args, **dict(kwargs)))


def chart_spec(figure: Callable[..., Any], *args: Any, **kwargs: Any) -> dict | None:
    """The Vega-Lite spec (its data as Arrow, as st.altair_chart sends it) of the Altair
    chart `figure(*args, **kwargs)` (a dashboard.figures function), cached for
    ROLLUP_TTL_SECONDS by the function and its arguments. Building the chart and
    validating its spec took 0.1-0.27 s of a warm page's script run at 1M tasks; equal
    arguments give an equal chart, so the spec built once is sent again. Every argument is
    hashed by content (a figure's rows are small: at most a few thousand), so no viewer is
    sent a chart of data they did not pass in. A fresh copy each call: drawing consumes it.
    None when this Streamlit has no spec converter: then draw the chart itself."""
    if _to_spec is None:
        return None
    name = f"{figure.__module__}.{figure.__qualname__}"
    return _chart_spec(name, figure, args, tuple(sorted(kwargs.items())))


@st.cache_data(ttl=OPTIONS_TTL_SECONDS, show_spinner=False)
def _filter_options(
    key: tuple[str, str, int], token: tuple, _visible: tuple[str, ...] | None
) -> dict[str, list[str]]:
    con = _mirror(key[0], key[1]).con.cursor()
    try:
        return options.filter_options(con, _visible)
    finally:
        con.close()


def filter_options() -> dict[str, list[str]]:
    """Sidebar choices present in the viewer's runs (see queries.options.filter_options)."""
    return _filter_options(data_key(), scope_token(), scope())


def freshness() -> dict[str, Any]:
    """Mirror facts for the footer (queries.mirror_freshness); not cached: it is a lookup."""
    m = mirror()
    con = m.con.cursor()
    try:
        return queries.mirror_freshness(con)
    finally:
        con.close()


def is_empty() -> bool:
    """True when the database holds no task and no run (the dashboard's empty state)."""
    facts = freshness()
    return not facts.get("tasks") and not facts.get("runs")


@st.cache_data(ttl=POINT_TTL_SECONDS, show_spinner=False)
def _stuck_tasks(url: str, viewer: str | None, older_than_minutes: float) -> pd.DataFrame:
    return drilldown.stuck_tasks(url, older_than_minutes=older_than_minutes, viewer=viewer)


def stuck_tasks(older_than_minutes: float) -> pd.DataFrame:
    """The viewer's tasks pending/streaming for longer than `older_than_minutes` (fresh,
    from Postgres under row-level security)."""
    return _stuck_tasks(database_url(), _viewer_id(), older_than_minutes)


@st.cache_data(ttl=POINT_TTL_SECONDS, show_spinner=False)
def _item_diffs(url: str, viewer: str, experiments: tuple[str, ...]) -> pd.DataFrame:
    return compare.item_diffs(url, experiments, viewer=viewer)


def item_diffs(experiments: tuple[str, ...]) -> pd.DataFrame:
    """Per dataset item, the named experiments' answers (queries.compare.item_diffs), read
    fresh from Postgres as the viewer (row-level security)."""
    return _item_diffs(database_url(), _viewer_id(), experiments)


@st.cache_data(ttl=POINT_TTL_SECONDS, show_spinner=False)
def _quality_change(url: str, viewer: str, source: str, target: str) -> Any:
    return compare.quality_change(url, source, target, viewer=viewer)


def quality_change(source: str, target: str) -> compare.QualityChange | None:
    """The score change experiments measured from model `source` to `target`
    (queries.compare.quality_change), read fresh from Postgres as the viewer."""
    return _quality_change(database_url(), _viewer_id(), source, target)


# --- Postgres point reads and changes, through ingest.Tracker -----------------------------


def _scope_key() -> int:
    """Changes when the viewer's readable runs do (a share or unshare), so a cached point
    read never outlives the right to it."""
    return hash(scope_token())


def _viewer_id() -> str:
    who = auth.current()
    if who.id is None:
        raise RuntimeError("an unknown person reads nothing; app.py stops before any page")
    return who.id


@st.cache_resource(show_spinner=False)
def _tracker(url: str, viewer: str):
    from ingest import Tracker

    return Tracker(url=url, viewer=viewer)


def tracker():
    """The ingest.Tracker of this dashboard's database acting as the viewer (row-level
    security decides what it reads and may change)."""
    return _tracker(database_url(), _viewer_id())


@st.cache_data(ttl=POINT_TTL_SECONDS, show_spinner=False)
def _list_runs(url: str, viewer: str, scope_key: int, kwargs: tuple) -> Any:
    return _tracker(url, viewer).list_runs(**dict(kwargs))


def list_runs(**kwargs: Any) -> Any:
    """Tracker.list_runs(**kwargs) as the viewer, cached for POINT_TTL_SECONDS."""
    return _list_runs(database_url(), _viewer_id(), _scope_key(), tuple(sorted(kwargs.items())))


@st.cache_data(ttl=POINT_TTL_SECONDS, show_spinner=False)
def _get_run(url: str, viewer: str, scope_key: int, run_id: str) -> Any:
    return _tracker(url, viewer).get_run(run_id)


def get_run(run_id: str) -> Any:
    """Tracker.get_run(run_id) (the run with its tasks) as the viewer; NotFoundError for a
    run the viewer may not read. Cached for POINT_TTL_SECONDS."""
    return _get_run(database_url(), _viewer_id(), _scope_key(), run_id)


@st.cache_data(ttl=POINT_TTL_SECONDS, show_spinner=False)
def _get_task(url: str, viewer: str, scope_key: int, task_id: str) -> Any:
    return _tracker(url, viewer).get_task(task_id)


def get_task(task_id: str) -> Any:
    """Tracker.get_task(task_id) as the viewer, cached for POINT_TTL_SECONDS."""
    return _get_task(database_url(), _viewer_id(), _scope_key(), task_id)


def run_rights(run_id: str) -> dict[str, bool]:
    """What the viewer may do with a run (Tracker.run_rights); not cached."""
    return tracker().run_rights(run_id)


RUN_CHANGES = (
    "rename_run", "star_run", "set_tags", "archive_run", "delete_run", "restore_run",
    "fork_run", "share_run", "unshare_run", "template_from_run",
)  # fmt: skip


def change_run(action: str, *args: Any, **kwargs: Any) -> Any:
    """Apply a run change (one of RUN_CHANGES) as the viewer and drop the cached point reads
    so the page shows it. AccessDeniedError / NotFoundError when the viewer may not."""
    if action not in RUN_CHANGES:
        raise ValueError(f"{action!r} is not a run change; choose one of {list(RUN_CHANGES)}")
    result = getattr(tracker(), action)(*args, **kwargs)
    _list_runs.clear()
    _get_run.clear()
    _get_task.clear()
    return result


def live_tasks(run_id: str) -> list[dict[str, Any]]:
    """A run's pending and streaming tasks as they are now (Tracker.live_tasks); not cached:
    a live run's page polls it."""
    with tracker() as viewer_tracker:
        return viewer_tracker.live_tasks(run_id)


def live_run_ids(run_ids: list[str]) -> set:
    """Which of `run_ids` are live (a pending or streaming task); not cached."""
    with tracker() as viewer_tracker:
        return viewer_tracker.live_run_ids(run_ids)


def comments(**kwargs: Any) -> list[dict[str, Any]]:
    """Tracker.comments(**kwargs) as the viewer; not cached: an open page polls it (over
    the viewer's one kept connection, as run_rights: no new connection per poll)."""
    return tracker().comments(**kwargs)


def forget_run_reads() -> None:
    """Drop the cached run and task reads (a live run has finished: show it as it is)."""
    _list_runs.clear()
    _get_run.clear()
    _get_task.clear()


def run_template(run_id: str) -> dict[str, Any] | None:
    """The template version a run was made from (Tracker.run_template), or None; not cached."""
    with tracker() as viewer_tracker:
        return viewer_tracker.run_template(run_id)


def admin_call(action: str, *args: Any, **kwargs: Any) -> Any:
    """An access-administration call of the viewer's Tracker (one of ADMIN_CALLS); row-level
    security refuses it for anyone but an admin. Not cached: admins see it as it is."""
    if action not in ADMIN_CALLS:
        raise ValueError(f"{action!r} is not an admin call; choose one of {list(ADMIN_CALLS)}")
    return getattr(tracker(), action)(*args, **kwargs)


ADMIN_CALLS = ("audit_log", "list_users", "upsert_user", "redaction_rules", "set_redaction_rule")
