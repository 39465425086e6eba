"""Runs: the history list (search, tags, starred, status; keyset-paginated) and one run
(`?run_id=…`): the conversation, settings, variables, attachments, its tasks as a timeline,
management (rename, star, tags, archive, delete, restore, fork), exports and its
comments (shared notes, refreshed live)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data, export, figures, state, transcript, ui
from dashboard.comments_panel import comments_changed, comments_panel
from dashboard.run_management import apply_change, manage_panel, share_panel
from dashboard.safe import http_url, md, md_link
from dashboard.scores_panel import score_panel
from ingest.errors import NotFoundError, ValidationError
from ingest.store.vocabulary import RUN_STATUSES
from ingest.tracking import conversations, templates

PAGE_SIZE = 25
COUNT_LIMIT = 1_000  # above it the list says "more than 1,000 runs" (a cheap total)
LIST_COLUMNS = [
    "name",
    "source_type",
    "user_id",
    "status",
    "tags",
    "task_count",
    "message_count",
    "total_tokens",
    "total_cost",
    "created_at",
    "last_message_at",
    "id",
]
_CURSORS = "runs_cursors"  # cursors of the pages before the current one
_LIST_GEN = "runs_list_generation"  # bumped to forget a row selection

_OPEN = "runs_open"  # a run to open on the next rerun (the run_id widget is set before it draws)

st.title("Runs")
if _OPEN in st.session_state:
    st.session_state["run_id"] = st.session_state.pop(_OPEN)
run_id = st.text_input(
    "Run id",
    key="run_id",
    bind="query-params",
    placeholder="open a run by id, or pick one from the list",
).strip()


def _back_to_list() -> None:
    st.session_state["run_id"] = ""
    st.session_state[_LIST_GEN] = st.session_state.get(_LIST_GEN, 0) + 1


def _open_run(run_id: str) -> None:
    """Show run `run_id` (this page, `?run_id=…`) from the next run of the script on."""
    st.session_state[_OPEN] = run_id
    st.session_state[_LIST_GEN] = st.session_state.get(_LIST_GEN, 0) + 1
    st.rerun()


# ------------------------------------------------------------------------------ list
# Over 60 lines: one Streamlit layout (filters, page, table, paging) drawn top to bottom.
def show_list() -> None:
    filters = state.active()
    if data.is_empty():
        ui.empty_state()
        st.stop()
    c1, c2, c3, c4 = st.columns([3, 2, 1, 1], vertical_alignment="bottom")
    search = c1.text_input(
        "Search name, description, messages",
        key="runs_search",
        help="Case-insensitive, within the runs created in the period of the sidebar.",
    )
    statuses = c2.multiselect("Run status", RUN_STATUSES, default=["active"], key="runs_status")
    starred = c3.toggle("Starred only", key="runs_starred")
    tags_match = c4.selectbox("Tags match", ("any", "all"), key="runs_tags_match")
    notes = []
    user_id = filters.users[0] if len(filters.users) == 1 else None
    if len(filters.users) > 1:
        notes.append("several users are selected: the list shows every user")
    if filters.teams or filters.providers or filters.models or filters.statuses:
        notes.append("team, provider, model and task-status filters apply to tasks, not to runs")
    query: dict[str, Any] = {
        "source_type": list(filters.source_types) or None,
        "status": statuses or None,
        "starred": True if starred else None,
        "tags": list(filters.tags) or None,
        "tags_match": tags_match,
        "user_id": user_id,
        "search": search or None,
        "created_from": filters.start,
        "created_to": filters.end,
        "limit": PAGE_SIZE,
        "count_limit": COUNT_LIMIT,
    }
    signature = repr(sorted((k, str(v)) for k, v in query.items()))
    if st.session_state.get("runs_signature") != signature:
        st.session_state["runs_signature"] = signature
        st.session_state[_CURSORS] = [None]
    cursors: list[str | None] = st.session_state[_CURSORS]
    page = data.list_runs(**query, cursor=cursors[-1])
    exact = getattr(page, "total_exact", True)
    counted = ui.plural(page.total, "run") if exact else f"more than {page.total:,} runs"
    pages = f" of {max(1, -(-page.total // PAGE_SIZE))}" if exact else ""
    st.caption(
        f"{counted} created {state.period_text(filters)}"
        + (f" matching “{md(search)}”" if search else "")
        + f" · page {len(cursors)}{pages}"
        + (f" · note: {'; '.join(notes)}" if notes else "")
    )
    if search:
        st.caption(
            "The search covers the runs created in the sidebar's period only; the "
            "“Matched in” column says where each run matched."
        )
    rows = pd.DataFrame(page.rows)
    if rows.empty:
        st.info(md(no_runs_text(filters, statuses, search, starred)), icon=":material/inbox:")
        rows = pd.DataFrame(columns=LIST_COLUMNS)
    elif search:
        rows.insert(1, "matched_in", [matched_in(r, search) for r in page.rows])
    if "is_starred" in rows.columns:  # a star in the name, not a second checkbox column
        rows["name"] = [
            ("★ " if starred else "") + (name or "(unnamed run)")
            for starred, name in zip(rows["is_starred"], rows["name"], strict=True)
        ]
    if "id" in rows.columns and len(rows):
        live = data.live_run_ids([str(i) for i in rows["id"]])
        rows.insert(0, "live", [run_id in live for run_id in rows["id"]])
    rows = rows[[c for c in ["live", "matched_in", *LIST_COLUMNS] if c in rows.columns]]
    generation = st.session_state.get(_LIST_GEN, 0)
    picked = ui.table(
        rows,
        key=f"runs_list_{generation}",
        filename="runs",
        selectable=True,
        column_config={
            "name": st.column_config.TextColumn("Name", width="medium"),
            "matched_in": st.column_config.TextColumn("Matched in"),
            "live": st.column_config.CheckboxColumn(
                "Live", help="A task of this run is being generated now.", width="small"
            ),
            "tags": st.column_config.ListColumn("Tags"),
            "id": st.column_config.TextColumn("Run id"),
        },
        caption="Select a run to open it.",
        height=38 + 35 * max(1, len(rows)),
        narrow=[
            "live",
            "matched_in",
            "name",
            "user",
            "task_count",
            "total_cost",
        ],
    )
    prev, _, nxt = st.columns([1, 4, 1])
    if prev.button("← Previous", disabled=len(cursors) == 1, key="runs_prev"):
        cursors.pop()
        st.rerun()
    if nxt.button("Next →", disabled=page.next_cursor is None, key="runs_next"):
        cursors.append(page.next_cursor)
        st.rerun()
    if picked and picked[0] < len(rows):
        _open_run(str(rows.iloc[picked[0]]["id"]))


def no_runs_text(filters: Any, statuses: list[str], search: str, starred: bool) -> str:
    """The empty list, honestly: the period and only the filters that are set and apply
    to runs (the list's own, then the sidebar's source type, user and tag)."""
    own = [f"Run status {', '.join(statuses)}"] if statuses else []
    own += [f"matching “{search}”"] if search else []
    own += ["starred only"] if starred else []
    applies = ("source_types", "users", "tags")
    return state.nothing_text(filters, "runs created", own, applies=applies)


def matched_in(run: dict[str, Any], search: str) -> str:
    """Where a run matched a search: "name", "description", "message #3" (numbered from 1)
    when the run's messages are at hand, else "a message"."""
    needle = search.strip().lower()
    places = []
    if needle in str(run.get("name") or "").lower():
        places.append("name")
    if needle in str(run.get("description") or "").lower():
        places.append("description")
    hits = [
        f"#{i}"
        for i, message in enumerate(run.get("messages") or [], start=1)
        if needle in str(message.get("content") or "").lower()
    ]
    if hits:
        places.append("message " + ", ".join(hits[:5]) + (" …" if len(hits) > 5 else ""))
    elif not places:
        places.append("a message")  # the list holds no messages; the search matched one
    return "; ".join(places)


# ------------------------------------------------------------------------------ one run
def show_attachments(attachments: list[dict]) -> None:
    if not attachments:
        st.caption("(no attachments)")
    for item in attachments:
        kind = item.get("kind")
        where = item.get("url") or item.get("path") or item.get("name") or ""
        title = item.get("name") or item.get("title") or where
        url = http_url(where)  # links and media only from http(s) URLs
        if kind == "youtube" and url:
            st.markdown(f"▶️ YouTube: {md_link(title, url)}")
            st.video(url)
        elif kind == "image" and url:
            st.markdown(f"🖼️ Image: {md_link(title, url)}")
            st.image(url, width=320)
        elif kind == "url" and url:
            st.markdown(f"🔗 {md_link(title, url)}")
        else:
            st.markdown(f"📄 {md(kind)}: {md(title)}")
        with st.expander("details", expanded=False):
            st.json(item)


# Over 60 lines: one Streamlit layout (header, totals, manage and share panels, tasks,
# comments).
def show_run(run_id: str) -> None:
    try:
        run = data.get_run(run_id)
    except (NotFoundError, ValidationError) as exc:
        st.error(f"No such run, or not one you may read: {md(exc)}")
        st.button("← Back to the list", on_click=_back_to_list)
        return
    st.button("← Back to the list", on_click=_back_to_list, key="runs_back")
    star = "★ " if run["is_starred"] else ""
    last = run.get("last_message_at")
    st.header(f"{star}{md(run['name']) if run['name'] else '(unnamed run)'}")
    st.caption(
        f"{md(run['source_type'])}"
        + (f" · source {md(run['source_id'])}" if run.get("source_id") else "")
        + f" · user {md(ui.user_label(run.get('user_id')))}"
        + (f" ({md(run['user_id'])})" if run.get("user_id") else "")
        + f" · status **{md(run['status'])}**"
        + f" · created {run['created_at']:%Y-%m-%d %H:%M} UTC"
        + (f" · last message {run['last_message_at']:%Y-%m-%d %H:%M}" if last else "")
        + (f" · tags: {md(', '.join(run['tags']))}" if run.get("tags") else "")
    )
    if run.get("parent_run_id"):
        parent = str(run["parent_run_id"])
        if st.button(
            f"Forked from run {parent[:8]} at message {run.get('forked_from_message')}",
            icon=":material/call_split:",
            key="run_parent",
            type="tertiary",
        ):
            _open_run(parent)
    if run.get("description"):
        st.text(run["description"])
    cards = ui.kpi_cards("run")
    cards.metric("Tasks", f"{run['task_count']:,}", border=True)
    cards.metric("Messages", f"{run['message_count']:,}", border=True)
    cards.metric("Tokens", f"{run['total_tokens']:,}", border=True)
    cards.metric("Cost (USD)", ui.money(run["total_cost"], 4), border=True)

    rights = data.run_rights(str(run["id"]))
    if rights["edit"] and st.button(
        "Unstar" if run["is_starred"] else "Star",
        icon=":material/star:",
        key="run_star",
        type="primary" if not run["is_starred"] else "secondary",
    ):
        apply_change("star_run", run["id"], not run["is_starred"], done="Star updated")
        st.rerun()
    e1, e2 = st.columns(2)
    e1.download_button(
        "Export run as JSON",
        data=export.run_json(run),
        file_name=f"run_{run['id']}.json",
        mime="application/json",
        icon=":material/data_object:",
        key="run_export_json",
    )
    example = export.fine_tuning_jsonl([run])
    e2.download_button(
        "Export as fine-tuning JSONL (chat format)",
        data=example,
        file_name=f"run_{run['id']}.jsonl",
        mime="application/jsonl",
        icon=":material/model_training:",
        key="run_export_jsonl",
        disabled=not example,
        help=None if example else "No assistant reply in this run to learn from.",
    )

    if not rights["edit"]:
        st.caption(
            "You may read this run but not change it: only its owner, someone it is shared "
            "with for edit, or an admin may. You can fork it into a run of your own."
        )
    with st.expander("Manage this run", icon=":material/settings:"):
        if rights["edit"]:
            manage_panel(run)
        _fork(run)
    if rights["own"]:
        with st.expander("Share this run", icon=":material/share:"):
            share_panel(run)
    with st.expander("Resume this conversation", icon=":material/play_circle:"):
        _resume_panel(run)
    with st.expander("Prompt template from this run", icon=":material/content_copy:"):
        _template_panel(run)
    with st.expander("Scores", icon=":material/thumbs_up_down:"):
        score_panel(run_id=str(run["id"]))
    live = _show_contents(run)
    comments_panel(run_id=str(run["id"]), polled_elsewhere=live)


RESUME_SNIPPETS = {
    "openai": (
        "client = ingest.track(openai.OpenAI(), tracker)\n"
        "with tracker.run(run_id):\n"
        "    reply = client.chat.completions.create(\n"
        '        model=state["settings"].get("model", "gpt-4o"),\n'
        '        messages=state["messages"] + [{"role": "user", "content": "..."}],\n'
        "    )\n"
    ),
    "anthropic": (
        "client = ingest.track(anthropic.Anthropic(), tracker)\n"
        "with tracker.run(run_id):\n"
        "    reply = client.messages.create(\n"
        '        model=state["settings"].get("model", "claude-sonnet-4-5"),\n'
        "        max_tokens=1024,\n"
        '        messages=state["messages"] + [{"role": "user", "content": "..."}],\n'
        '        **({"system": state["system"]} if state["system"] else {}),\n'
        "    )\n"
    ),
    "gemini": (
        '# Gemini: state["messages"] are the `contents`, state["system"] the\n'
        "# system_instruction text; record the call with tracker.create_task(run_id, ...).\n"
    ),
}


def _resume_panel(run: dict) -> None:
    """The run as an application continues it: JSON (resume_run's answer) and Python."""
    shape = st.segmented_control(
        "Shape", conversations.SHAPES, default="openai", key="run_resume_shape"
    )
    state_of_run = conversations.resume(run, shape or "openai")
    text = json.dumps(state_of_run, indent=2, ensure_ascii=False, default=str)
    st.download_button(
        "Download as JSON",
        data=text,
        file_name=f"run_{run['id']}_{shape}.json",
        mime="application/json",
        icon=":material/data_object:",
        key="run_resume_json",
    )
    st.code(text, language="json", wrap_lines=True, height=240)
    snippet = (
        f"import ingest\n\ntracker = ingest.Tracker()\nrun_id = {str(run['id'])!r}\n"
        f"state = tracker.resume_run(run_id, shape={shape or 'openai'!r})\n"
        + RESUME_SNIPPETS[shape or "openai"]
    )
    st.code(snippet, language="python", wrap_lines=True)


LIVE_POLL_SECONDS = 1.0  # a live run's page reads its unfinished tasks this often


def _live_replies(run_id: str) -> None:
    """The replies being generated in run `run_id`, re-read every LIVE_POLL_SECONDS by a
    fragment (only this part reruns); once none is left the whole page reruns, fresh."""

    @st.fragment(run_every=LIVE_POLL_SECONDS)
    def replies() -> None:
        tasks = data.live_tasks(run_id)
        if not tasks:
            data.forget_run_reads()
            st.rerun(scope="app")
        if comments_changed(run_id=run_id):  # this poll stands in for the comments' own
            st.rerun(scope="app")
        for task in tasks:
            with st.chat_message("assistant"):
                st.caption(
                    f"live · {md(task.get('provider') or '?')} / {md(task.get('model') or '?')}"
                    f" · {md(task['status'])} · {task.get('tokens_output') or 0:,} output "
                    f"tokens so far · updated {task['updated_at']:%H:%M:%S} UTC"
                )
                st.text(task.get("response_text") or "…")
                st.page_link(
                    "views/task.py",
                    label="its task",
                    query_params={"task_id": str(task["task_id"])},
                    icon=":material/receipt_long:",
                )

    st.caption(f"Being generated now (refreshed every {LIVE_POLL_SECONDS:g} s):")
    replies()


def _template_panel(run: dict) -> None:
    """Make this run the next version of a prompt template; say which template made it."""
    made_from = data.run_template(str(run["id"]))
    if made_from:
        st.caption(
            f"This run was made from template “{md(made_from['name'])}” version "
            f"{made_from['version']} ({md(made_from['template_id'])})."
        )
    st.caption(
        "The messages with this run's variable values put back as {{placeholders}}, and its "
        "settings, become the next version of the template of that name (yours)."
    )
    with st.form("run_template", border=False):
        name = st.text_input("Template name", value=run["name"], key="run_template_name")
        made = None
        if st.form_submit_button("Create template version", key="run_template_go"):
            made = apply_change("template_from_run", run["id"], name, done="Template saved")
    if made:
        st.session_state["run_template_made"] = made
    made = st.session_state.get("run_template_made")
    if made and str(made["source_run_id"]) == str(run["id"]):
        st.caption(
            f"Template “{md(made['name'])}” version {made['version']} · placeholders: "
            f"{md(', '.join(made['placeholders']) or 'none')}"
        )
        st.download_button(
            "Export template as JSON",
            data=templates.export_json(made),
            file_name=f"template_{made['name']}_v{made['version']}.json",
            mime="application/json",
            icon=":material/data_object:",
            key="run_template_json",
        )


def _fork(run: dict) -> None:
    """Fork at a message into a run of the viewer's own (anyone who may read the run)."""
    messages = run.get("messages") or []
    if messages:
        with st.form("run_fork", border=False):
            at = st.selectbox(
                "Fork at message (a new run with the messages up to and including it)",
                range(len(messages)),
                index=len(messages) - 1,
                key="run_fork_at",
                format_func=lambda i: (
                    f"#{i + 1} {messages[i].get('role')}: {str(messages[i].get('content'))[:60]}"
                ),
            )
            if st.form_submit_button("Fork", icon=":material/call_split:", key="run_fork_go"):
                fork = apply_change("fork_run", run["id"], int(at), done="Forked")
                if fork:
                    _open_run(str(fork["id"]))


# Over 60 lines: one Streamlit layout, its four tabs (conversation, tasks, settings, files).
def _show_contents(run: dict) -> bool:
    """The conversation, tasks, settings and attachments of a run; True when the run is
    live (its replies being generated are shown by a polling fragment)."""

    talk, tasks_tab, settings_tab, files_tab = st.tabs(
        ["Conversation", f"Tasks ({run['task_count']})", "Settings & variables", "Attachments"]
    )
    with talk:
        transcript.show_transcript(run.get("messages") or [], key="run_transcript")
        live = bool(data.live_tasks(str(run["id"])))
        if live:
            _live_replies(str(run["id"]))
    with tasks_tab:
        tasks = pd.DataFrame(run.get("tasks") or [])
        if tasks.empty:
            st.caption("(no tasks)")
        else:
            st.plotly_chart(figures.run_timeline(tasks), key="run_timeline")
            shown = tasks[
                [
                    c
                    for c in (
                        "task_id",
                        "created_at",
                        "provider",
                        "model",
                        "status",
                        "time_to_first_token",
                        "total_time",
                        "tokens_input",
                        "tokens_output",
                        "tokens_total",
                        "cost",
                    )  # fmt: skip
                    if c in tasks.columns
                ]
            ]
            picked = ui.table(
                shown,
                key="run_tasks",
                filename=f"run_{run['id']}_tasks",
                selectable=True,
                column_config=ui.TASK_COLUMNS,
                column_order=ui.TASK_ORDER,
                narrow=ui.TASK_NARROW,
                caption="Select a task to open its detail.",
            )
            if picked and picked[0] < len(shown):
                task_id = str(shown.iloc[picked[0]]["task_id"])
                st.switch_page("views/task.py", query_params={"task_id": task_id})
    with settings_tab:
        s1, s2 = st.columns(2)
        for column, field, title in (
            (s1, "settings", "Settings"),
            (s2, "variable_values", "Variables"),
            (s1, "broker_values", "Broker values"),
            (s2, "metadata", "Metadata"),
        ):
            column.markdown(f"**{title}**")
            column.json(run.get(field) or {}, expanded=True)
    with files_tab:
        show_attachments(run.get("attachments") or [])
    return live


if run_id:
    show_run(run_id)
else:
    show_list()
