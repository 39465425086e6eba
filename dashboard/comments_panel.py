"""Shared notes on a run page and a task page: the comments the viewer may read, re-read
every POLL_SECONDS by a fragment so a comment written elsewhere (another viewer, the REST
API, a Tracker) shows up without a reload, and a form to add one (docs/tracking.md).

Comments are written through the viewer's Tracker (`data.tracker()`), so Postgres decides
(row-level security, migration 0021): whoever may read the run comments, as themselves; a
comment is its author's to delete (or an admin's: both see a Delete button). A comment's
text is drawn with st.text, never as markdown; names and times go through dashboard.safe's
escaping.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import auth, data
from dashboard.safe import md
from ingest.errors import AccessDeniedError, NotFoundError, ValidationError
from ingest.store import limits

POLL_SECONDS = 2.0  # how often an open page re-reads its comments


def comments_panel(
    *, run_id: str | None = None, task_id: str | None = None, polled_elsewhere: bool = False
) -> None:
    """The comments section of a run page (run_id: the run's and its tasks') or a task
    page (task_id). polled_elsewhere: the page already polls (a live run's fragment, every
    second) and calls `comments_changed` there, so this part does not poll too: two
    fragments polling one page keep it running most of the time on a loaded machine."""
    target = {"task_id": task_id} if task_id else {"run_id": run_id}
    key = f"comments_{task_id or run_id}"
    st.markdown("#### Comments")
    st.caption(
        f"Seen by everyone who may read this run; @name mentions a person who may read it "
        f"too. Refreshed every {POLL_SECONDS:g} s."
    )

    @st.fragment(run_every=None if polled_elsewhere else POLL_SECONDS)
    def thread() -> None:
        try:
            comments = _read(target)
        except NotFoundError:
            st.caption("No comments you may read.")
            return
        st.session_state[_seen_key(target)] = _signature(comments)
        if not comments:
            st.caption("No comments yet.")
        me = auth.current()
        for comment in comments:
            mine = comment["author"] == me.id or me.role == "admin"
            _show(comment, mine=mine, key=key, on_run=task_id is None)

    thread()
    _add_form(target, key=key)


def comments_changed(*, run_id: str | None = None, task_id: str | None = None) -> bool:
    """True when the comments of the run (and its tasks) or task differ from those the
    panel drew last (added, edited or removed); False before the panel drew any."""
    target = {"task_id": task_id} if task_id else {"run_id": run_id}
    seen = st.session_state.get(_seen_key(target))
    if seen is None:
        return False
    try:
        return _signature(_read(target)) != seen
    except NotFoundError:
        return False


def _read(target: dict[str, str]) -> list[dict[str, Any]]:
    return data.comments(**target, with_tasks="run_id" in target)


def _seen_key(target: dict[str, str]) -> str:
    return f"comments_seen_{target.get('task_id') or target.get('run_id')}"


def _signature(comments: list[dict[str, Any]]) -> tuple:
    return tuple((c["id"], c["edited_at"]) for c in comments)


def _show(comment: dict[str, Any], *, mine: bool, key: str, on_run: bool) -> None:
    with st.container(border=True, key=f"{key}_{comment['id']}"):
        when = f"{comment['created_at']:%Y-%m-%d %H:%M} UTC"
        if comment["edited_at"] is not None:
            when += f" · edited {comment['edited_at']:%H:%M}"
        where = ""
        if on_run and comment["task_id"] is not None:
            where = f" · on task {md(str(comment['task_id']))}"
        st.caption(f"{md(comment['author'])} · {when}{where}")
        st.text(comment["text"])
        if mine and st.button("Delete", key=f"{key}_{comment['id']}_delete", type="tertiary"):
            _delete(comment["id"])


def _add_form(target: dict[str, str], *, key: str) -> None:
    with st.form(f"{key}_form", clear_on_submit=True, border=True):
        text = st.text_area(
            "Add a comment", max_chars=limits.MAX_COMMENT_TEXT, key=f"{key}_text",
            placeholder="Text only. @name to mention someone who may read this run.",
        )  # fmt: skip
        if st.form_submit_button("Post comment", key=f"{key}_post"):
            try:
                data.tracker().comment(text, **target)
            except (ValidationError, NotFoundError, AccessDeniedError) as exc:
                st.error(md(exc))
                return
            st.toast("Comment posted", icon=":material/check:")
            st.rerun()


def _delete(comment_id: int) -> None:
    try:
        data.tracker().delete_comment(comment_id)
    except (ValidationError, AccessDeniedError) as exc:
        st.error(md(exc))
        return
    st.rerun(scope="fragment")
