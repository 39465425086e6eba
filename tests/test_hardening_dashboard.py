"""Issue 13: every dashboard page renders hostile stored values and URL parameters as text
(no markdown image or link comes out of them, no exception), and survives the largest
values validation allows."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal

import pandas as pd
import pytest
from dashboard_support import PAGES, app_environment, create_database, drop_database, open_page
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from dashboard.export import table_csv
from dashboard.safe import http_url, md, md_link
from ingest import Tracker
from ingest.store import limits

# Not in the service's run (docs/testing.md, "Which tests run on both engines").
pytestmark = pytest.mark.through_the_layers

EVIL = "evil.example"
HOSTILE = [
    f"![p](http://{EVIL}/x.png) hi",
    f"[Session expired – log in](https://{EVIL}/login)",
    f"<https://{EVIL}/a> www.{EVIL} https://{EVIL}/b",
    f"x](javascript:alert(1)) [y](https://{EVIL}/c",
    ":red[alarm] :material/warning: $x^2$ **bold** `code` <img src=x onerror=alert(1)>",
    '=HYPERLINK("https://evil.example","x")',
    "line one\n\n# heading\n- item",
]
_MARKDOWN = MarkdownIt("gfm-like")


def _links(markdown: str) -> list[str]:
    """Targets of every link and image markdown-it (GFM, autolinks on) finds in `markdown`."""
    found = []
    for token in _MARKDOWN.parse(markdown):
        for child in token.children or []:
            if child.type in ("link_open", "image"):
                found.append(str(child.attrs.get("href") or child.attrs.get("src")))
    return found


def _rendered_markdown(at) -> list[str]:
    """Every string of the page Streamlit renders as markdown (bodies and labels)."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "error",
                 "warning", "success", "toast"):  # fmt: skip
        parts.extend(str(e.value) for e in getattr(at, kind))
    for kind in ("button", "expander", "tab", "page_link", "metric", "toggle", "checkbox"):
        for element in at.get(kind):
            label = getattr(element.proto, "label", None)
            if label:
                parts.append(str(label))
    return parts


def _assert_safe(at) -> None:
    assert not at.exception, at.exception
    for text in _rendered_markdown(at):
        assert not [h for h in _links(text) if EVIL in h or "javascript" in h], text


@pytest.fixture(scope="module")
def hostile_url(pg_server: str, template_db: str) -> Iterator[str]:
    name = f"ai_runs_hostile_{os.getpid()}"
    url = create_database(pg_server, template_db, name)
    yield url
    drop_database(pg_server, name)


@pytest.fixture(scope="module")
def hostile_app(hostile_url, tmp_path_factory) -> Iterator[dict]:
    """Runs and tasks whose every text field is hostile, and two tasks at the largest
    token counts and cost validation allows; yields their ids."""
    ids: dict = {"runs": [], "tasks": []}
    with Tracker(hostile_url, user_id=HOSTILE[1], debounce_seconds=0) as tracker:
        for i, text in enumerate(HOSTILE):
            tracker.upsert_user(text, display_name=text, team=text)
            run = tracker.create_run(
                "chat",
                messages=[
                    {"role": "user", "content": text},
                    {"role": "assistant", "content": text},
                ],
                description=text,
                source_id=text,
                tags=[text, f"t{i}"],
                user_id=text,
                attachments=[
                    {"kind": "image", "url": f"javascript:alert({i})", "name": text},
                    {"kind": "url", "url": f"https://ok.example/a_(b)<{i}>", "name": text},
                    {"kind": "youtube", "url": "data:text/html,x", "title": text},
                    {"kind": "file", "name": text},
                ],
            )
            ids["runs"].append(str(run["id"]))
            task = tracker.create_task(
                run["id"], provider=text, model=text, service=text, endpoint=text,
                task_name=text, user_id=text,
            )  # fmt: skip
            tracker.fail_task(task["task_id"], text, response_text=text)
            ids["tasks"].append(str(task["task_id"]))
            tracker.comment(text, run_id=run["id"])  # shared notes: drawn as text too
            tracker.comment(text, task_id=task["task_id"])
        big = tracker.create_run("chat", name="largest values")
        for _ in range(2):
            task = tracker.create_task(big["id"], provider="openai", model="gpt-4o")
            tracker.complete_task(
                task["task_id"],
                tokens_input=limits.MAX_TOKENS,
                tokens_output=limits.MAX_TOKENS,
                tokens_cached_input=limits.MAX_TOKENS,
                tokens_reasoning=limits.MAX_TOKENS,
                cost=limits.MAX_COST - Decimal("0.0000000001"),
                time_to_first_token=limits.MAX_MILLIS,
                total_time=limits.MAX_MILLIS,
            )
        ids["big"] = str(big["id"])
    home = tmp_path_factory.mktemp("hostile_home")
    with app_environment(hostile_url, home):
        yield ids


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_hostile_data_as_text(hostile_app, page):
    at = open_page(page, provider=HOSTILE[0], tag=HOSTILE[2], model=HOSTILE[1])
    _assert_safe(at)
    _assert_safe(open_page(page))


def test_largest_allowed_values_do_not_break_the_pages(hostile_app):
    for page in PAGES:
        at = open_page(page)
        assert not at.exception, (page, at.exception)
        engine = [e.value for e in at.error if "out of range" in e.value or "INT128" in e.value]
        assert not engine, (page, engine)
    _assert_safe(open_page("runs", run_id=hostile_app["big"]))


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(which=st.integers(0, len(HOSTILE) - 1), extra=st.text(max_size=20))
def test_run_and_task_pages_show_hostile_records_and_params_as_text(hostile_app, which, extra):
    _assert_safe(open_page("runs", run_id=hostile_app["runs"][which]))
    _assert_safe(open_page("task", task_id=hostile_app["tasks"][which]))
    _assert_safe(open_page("runs", run_id=HOSTILE[which] + extra.replace("\x00", "")))
    _assert_safe(open_page("task", task_id=HOSTILE[which] + extra.replace("\x00", "")))


def test_comments_are_drawn_as_text_on_the_run_and_task_pages(hostile_app):
    for which, text in enumerate(HOSTILE):
        for at in (
            open_page("runs", run_id=hostile_app["runs"][which]),
            open_page("task", task_id=hostile_app["tasks"][which]),
        ):
            _assert_safe(at)
            assert text in [element.value for element in at.text]
            assert not [m for m in at.markdown if text in str(m.value)]


def test_phishing_link_in_run_id_stays_text(hostile_app):
    at = open_page("runs", run_id=f"![r](http://{EVIL}/r.png) {HOSTILE[1]}")
    _assert_safe(at)
    assert at.error and "No such run" in at.error[0].value


@given(st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_md_renders_any_text_without_links(text):
    escaped = md(text)
    assert _links(escaped) == []
    tokens = _MARKDOWN.parseInline(escaped)
    assert all(c.type in ("text", "softbreak", "text_special") for t in tokens
               for c in t.children or []), escaped  # fmt: skip


def test_links_only_from_http_urls():
    assert http_url("https://ok.example/x") and http_url("HTTP://ok.example")
    for bad in ("javascript:alert(1)", "data:text/html,x", "/relative", "//host/x",
                "https://", "https://a b", "file:///etc/passwd", "vbscript:x"):  # fmt: skip
        assert http_url(bad) is None, bad
        assert _links(md_link("t", bad)) == []
    assert _links(md_link("a](https://evil.example)", "https://ok.example/a_(b)<c>")) == [
        "https://ok.example/a_%28b%29%3Cc%3E"
    ]


def test_table_csv_neutralizes_text_not_numbers():
    df = pd.DataFrame({"name": ["=1+1", "@x", "ok", None], "n": [-1.5, 2, 3, 4]})
    lines = table_csv(df).decode().splitlines()
    assert lines[1:] == ["'=1+1,-1.5", "'@x,2.0", "ok,3.0", ",4.0"]
