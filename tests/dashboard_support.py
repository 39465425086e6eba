"""Shared set-up of the dashboard tests: a demo database, the app's environment, AppTest
helpers, and reading back what a download button serves."""

from __future__ import annotations

import functools
import io
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import psycopg
import pyarrow as pa
import streamlit as st
from streamlit.components.v2 import manifest_scanner
from streamlit.runtime import memory_media_file_storage
from streamlit.runtime.media_file_storage import MediaFileStorageError
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from ingest.store import embedded

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
PAGES = {
    "overview": "views/overview.py",
    "cost": "views/cost.py",
    "performance": "views/performance.py",
    "compare": "views/compare.py",
    "runs": "views/runs.py",
    "task": "views/task.py",
    "export": "views/export.py",
}
# Each AppTest scans the metadata of every installed distribution for custom components
# (0.3-1.6 s per AppTest here, by load; the suite makes hundreds). The installed packages do
# not change while the tests run, so one scan per process gives every AppTest the same list.
manifest_scanner.scan_component_manifests = functools.cache(
    manifest_scanner.scan_component_manifests
)
DEMO_TASKS = 3000
DEMO_DAYS = 60
TIMEOUT = 60


def create_database(pg_server: str, template: str, name: str) -> str:
    with psycopg.connect(pg_server, autocommit=True) as conn:
        embedded.drop_database(conn, name)
        embedded.create_database(conn, name, template)
    return embedded.with_database(pg_server, name)


def drop_database(pg_server: str, name: str) -> None:
    with psycopg.connect(pg_server, autocommit=True) as conn:
        embedded.drop_database(conn, name)


@contextmanager
def app_environment(url: str, home: Path) -> Iterator[None]:
    """Point the dashboard at `url` with its home (settings, mirror) in `home`."""
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "AI_RUNS_HOME", "AI_RUNS_MIRROR")}
    os.environ["DATABASE_URL"] = url
    os.environ["AI_RUNS_HOME"] = str(home)
    os.environ["AI_RUNS_MIRROR"] = str(home / "analytics.duckdb")
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        yield
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def open_page(page: str | None = None, **params: str | list[str]) -> AppTest:
    """Run the app on `page` (a PAGES key; default the first page) with URL query `params`."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()  # the first run registers the pages (st.navigation) and opens the default one
    if page is not None and page != "overview":
        at.switch_page(PAGES[page]).run()
    return at


@contextmanager
def pages_kept(at: AppTest) -> Iterator[None]:
    """Within: a run of a fragment alone (as the browser asks, or a keyed `st.rerun` from a
    callback) still knows the pages st.navigation registered in the last full run, as a
    served session does."""
    registered = at._registered_pages

    class KnownPages(PagesManager):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._set_pages(registered)

    saved = app_test_module.PagesManager
    app_test_module.PagesManager = KnownPages
    try:
        yield
    finally:
        app_test_module.PagesManager = saved


def opened(at: AppTest, *expanders: str) -> AppTest:
    """`at` run again with the lazy expanders of these session keys open, as a click on
    each does (their content is drawn only while open: docs/design.md, "Pages")."""
    for key in expanders:
        at.session_state[key] = True
    return at.run()


def open_filters(at: AppTest) -> AppTest:
    """`at` run again with the sidebar's list filters open (dashboard/list_filters.py)."""
    return opened(at, "list_filters_open")


def texts(at: AppTest) -> str:
    """Every markdown, caption, info, title, header and subheader text of the page, as
    shown (markdown escapes of dashboard.safe.md taken away)."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "error"):
        parts.extend(shown(e) for e in getattr(at, kind))
    return "\n".join(parts)


_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def shown(element: object) -> str:
    """The text a markdown element (or string) shows: its value without backslash escapes."""
    text = _ESCAPED.sub(r"\1", str(getattr(element, "value", element)))
    return text.replace("\u2060", "")  # the word joiners md() puts before autolink starts


def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


class MediaSpy:
    """Keeps each run's in-memory media storage so a test can read a download's bytes."""

    def __init__(self) -> None:
        self.storages: list[memory_media_file_storage.MemoryMediaFileStorage] = []
        self.managers: list = []

    def install(self, monkeypatch) -> MediaSpy:
        spy = self
        original = memory_media_file_storage.MemoryMediaFileStorage
        manager = app_test_module.MediaFileManager

        class Recording(original):
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, **kwargs)
                spy.storages.append(self)

        class RecordingManager(manager):
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, **kwargs)
                spy.managers.append(self)

        monkeypatch.setattr(app_test_module, "MemoryMediaFileStorage", Recording)
        monkeypatch.setattr(app_test_module, "MediaFileManager", RecordingManager)
        return self

    def generate(self, file_id: str) -> str:
        """The URL of a deferred download's file, built as a click on its button builds it."""
        for manager in reversed(self.managers):
            try:
                return manager.execute_deferred(file_id)
            except MediaFileStorageError:  # not this run's
                continue
        raise AssertionError(f"no deferred download {file_id}")

    def read(self, url: str) -> bytes:
        filename = url.rsplit("/", 1)[-1]
        for storage in reversed(self.storages):
            try:
                return storage.get_file(filename).content
            except Exception:  # not in this run's storage
                continue
        raise AssertionError(f"no media file {url}")


def download(at: AppTest, spy: MediaSpy, label_start: str, index: int = 0) -> bytes:
    """The bytes served by the `index`-th download button whose label starts so."""
    buttons = [b for b in at.get("download_button") if b.proto.label.startswith(label_start)]
    assert buttons, f"no download button starting {label_start!r}"
    button = buttons[index].proto
    if button.deferred_file_id:  # built when clicked (ui.table's CSV)
        return spy.read(spy.generate(button.deferred_file_id))
    return spy.read(button.url)


def csv_frame(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data))


def charts(at: AppTest) -> list[dict]:
    """The Vega-Lite charts the last run drew (st.altair_chart), as their specs."""
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def chart_title(spec: dict) -> str:
    """A Vega-Lite spec's title text."""
    title = spec.get("title") or ""
    return title.get("text", "") if isinstance(title, dict) else title


def chart_frames(at: AppTest, index: int) -> list[pd.DataFrame]:
    """Every data set chart `index` of the last run was given (one per layer with its own)."""
    chart = at.get("vega_lite_chart")[index].proto
    arrows = [named.data.data for named in chart.datasets] or [chart.data.data]
    return [pa.ipc.open_stream(arrow).read_pandas() for arrow in arrows]


def chart_rows(at: AppTest, index: int) -> pd.DataFrame:
    """The rows chart `index` of the last run was given (its first data set)."""
    return chart_frames(at, index)[0]


def a_slice(at: AppTest, index: int, last: bool = False) -> tuple[str, str]:
    """(period, group) of a mark of drill-down chart `index`, as a click selects it: the
    first one (the last one with `last`) that names one group, not "other"."""
    rows = chart_rows(at, index)
    rows = rows[(rows["pick_group"] != "") & (rows["pick_group"] != "other")]
    row = rows.iloc[-1 if last else 0]
    return row["pick_period"], row["pick_group"]


def picked(period: str, group: str) -> dict:
    """What st.altair_chart keeps in session state when a mark is clicked (figures.vega)."""
    return {"selection": {"pick": [{"pick_period": period, "pick_group": group}]}}
