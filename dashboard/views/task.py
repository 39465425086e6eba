"""Task detail: every field of one task, reachable by link `?task_id=…`."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data, state, transcript, ui
from dashboard.comments_panel import comments_changed, comments_panel
from dashboard.safe import md
from dashboard.scores_panel import score_panel
from ingest.errors import NotFoundError, ValidationError
from queries import drilldown

JSON_FIELDS = (
    ("request_data", "Request payload"),
    ("response_data", "Response data"),
    ("response_info", "Response info"),
    ("response_errors", "Errors"),
    ("tool_updates", "Tool updates"),
    ("response_metadata", "Response metadata"),
)

_OPEN = "task_open"  # a task to show on the next rerun (set before the bound widget draws)

st.title("Task detail")
if _OPEN in st.session_state:
    st.session_state["task_id"] = st.session_state.pop(_OPEN)
task_id = st.text_input(
    "Task id",
    key="task_id",
    bind="query-params",
    placeholder="paste a task_id (the id your stream layer uses)",
).strip()

if not task_id:
    st.info(
        "Open a task from the Performance, Cost or Runs page, or paste its id above. "
        "A task has its own link: `?task_id=…`.",
        icon=":material/info:",
    )
    if data.is_empty():
        ui.empty_state()
        st.stop()
    filters = state.active()
    st.subheader("Slowest tasks in the period")
    slowest = data.cached(drilldown.slowest_tasks, filters, metric="total_time", limit=50)
    picked = ui.table(
        slowest,
        key="task_pick",
        filename="slowest_tasks",
        selectable=True,
        column_config=ui.TASK_COLUMNS,
        column_order=ui.TASK_ORDER,
        narrow=ui.TASK_NARROW,
        caption=f"{state.period_text(filters)} · slowest total time first. Select one to open it.",
    )
    if picked and picked[0] < len(slowest):
        st.session_state[_OPEN] = str(slowest.iloc[picked[0]]["task_id"])
        st.rerun()
    st.stop()

try:
    task = data.get_task(task_id)
except (NotFoundError, ValidationError) as exc:
    st.error(f"No such task, or not one you may read: {md(exc)}")
    st.stop()


def _show(value: Any) -> Any:
    if value is None:
        return "–"
    return value


status = task["status"]
colour = {"completed": "green", "failed": "red", "cancelled": "orange"}.get(status, "blue")
st.subheader(
    f"{md(task.get('provider') or '?')} / {md(task.get('model') or '?')} "
    f":{colour}-badge[{md(status)}]"
)
st.caption(
    f"task_id `{task['task_id']}` · created {task['created_at']:%Y-%m-%d %H:%M:%S} UTC"
    + (f" · completed {task['completed_at']:%H:%M:%S}" if task.get("completed_at") else "")
    + f" · service {md(_show(task.get('service')))} · task {md(_show(task.get('task_name')))}"
    + f" · endpoint {md(_show(task.get('endpoint')))}"
)
st.page_link(
    "views/runs.py",
    label="Open its run",
    query_params={"run_id": str(task["run_id"])},
    icon=":material/forum:",
)

cards = ui.kpi_cards("task")  # wraps on a narrow screen instead of cutting values
cost = ui.money(task.get("cost"), 5) if task.get("cost") is not None else "–"
for name, value in (
    ("Time to first token", ui.millis(task.get("time_to_first_token"))),
    ("Total time", ui.millis(task.get("total_time"))),
    ("Cost (USD)", cost),
    ("Input tokens", f"{task.get('tokens_input') or 0:,}"),
    ("Output tokens", f"{task.get('tokens_output') or 0:,}"),
    ("Total tokens", f"{task.get('tokens_total') or 0:,}"),
):
    cards.metric(name, value, border=True)
st.caption(
    f"Cached input tokens: {task.get('tokens_cached_input') or 0:,} · "
    f"reasoning tokens: {task.get('tokens_reasoning') or 0:,} · "
    f"response complete: {task.get('response_complete')}"
)

if task.get("response_errors"):
    st.error("This task recorded errors — see **Errors** below.", icon=":material/error:")

st.markdown("#### Conversation")
LIVE = task["status"] in transcript.LIVE_STATUSES
LIVE_POLL_SECONDS = 1.0


@st.fragment(run_every=LIVE_POLL_SECONDS if LIVE else None)
def conversation() -> None:
    """The request and the reply; while the task is unfinished, its text as it is now,
    re-read every LIVE_POLL_SECONDS (only this part reruns). Once it has finished the
    whole page reruns, fresh."""
    shown = task
    if LIVE:
        now = [t for t in data.live_tasks(str(task["run_id"])) if t["task_id"] == task["task_id"]]
        if not now:
            data.forget_run_reads()
            st.rerun(scope="app")
        if comments_changed(task_id=str(task["task_id"])):  # stands in for the comments' poll
            st.rerun(scope="app")
        shown = {**task, **now[0]}
    transcript.show_transcript(transcript.task_messages(shown), key="task_transcript")


conversation()

st.markdown("#### Response text")
text = task.get("response_text") or ""
if text:
    with st.container(border=True, height=min(420, 80 + 22 * text.count("\n") + len(text) // 4)):
        st.text(text)
else:
    st.caption("(no response text)")

left, right = st.columns(2)
for i, (field, title) in enumerate(JSON_FIELDS):
    with left if i % 2 == 0 else right:
        value = task.get(field)
        st.markdown(f"#### {title}")
        if value in (None, {}, []):
            st.caption("(none)")
        else:
            st.json(value, expanded=2 if field == "request_data" else 1)

score_panel(task_id=str(task["task_id"]))
comments_panel(task_id=str(task["task_id"]), polled_elsewhere=LIVE)

st.markdown("#### Every field")
fields = pd.DataFrame(
    {
        "field": list(task),
        "value": [
            json.dumps(v, default=str) if isinstance(v, dict | list) else str(v)
            for v in task.values()
        ],
    }
)
ui.table(fields, key="task_fields", filename=f"task_{task['task_id']}")
st.download_button(
    "Download task as JSON",
    data=json.dumps(task, default=str, indent=2),
    file_name=f"task_{task['task_id']}.json",
    mime="application/json",
    icon=":material/data_object:",
    key="task_json",
)
