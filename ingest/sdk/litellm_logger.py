"""A LiteLLM custom logger that records every LiteLLM call as a task.

    import litellm
    litellm.callbacks = [ingest.sdk.litellm_logger.AiRunsLogger(tracker)]

Success and failure, sync and async (LiteLLM calls the matching hook; streamed calls are
logged once, complete). Each call becomes a task written through the tracker's
background writer (ingest.tracking.background): provider (LiteLLM's custom_llm_provider),
model, request (model, messages, optional params), text, tool calls, tokens (read from
LiteLLM's OpenAI-shaped usage by ingest.sdk.provider_usage), cost priced by us (cost_source
"computed"; LiteLLM's own `response_cost` is kept in response_metadata["litellm_cost"]),
TTFT (LiteLLM's completion_start_time) and total time. The run: `ai_run_id` in the call's
`metadata`, else the innermost `with tracker.run(...)`, else the logger's `run`, else a
new run per call. `ai_task_id` in `metadata` sets the task id. Never raises.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from ingest.sdk.clients import json_of, response_text_and_tools
from ingest.sdk.task_writer import CallTracker

log = logging.getLogger("ingest.litellm_logger")


def _ms(later: Any, earlier: Any) -> int | None:
    if not isinstance(later, datetime) or not isinstance(earlier, datetime):
        return None
    return max(0, round((later - earlier).total_seconds() * 1000))


class AiRunsLogger(CustomLogger):
    """LiteLLM callback writing tasks of `tracker` (see the module docstring)."""

    def __init__(
        self, tracker: CallTracker, *, run: uuid.UUID | str | None = None, **task_fields: Any
    ) -> None:
        super().__init__()
        self.tracker = tracker
        self.run = run
        self.task_fields = task_fields

    def log_success_event(
        self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._record(kwargs, response_obj, start_time, end_time, failed=False)

    def log_failure_event(
        self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._record(kwargs, response_obj, start_time, end_time, failed=True)

    async def async_log_success_event(
        self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._record(kwargs, response_obj, start_time, end_time, failed=False)

    async def async_log_failure_event(
        self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._record(kwargs, response_obj, start_time, end_time, failed=True)

    def _record(self, kwargs: dict, response: Any, start: Any, end: Any, failed: bool) -> None:
        try:
            self._write(kwargs, response, start, end, failed)
        except Exception:
            log.exception("LiteLLM call not tracked")

    def _write(self, kwargs: dict, response: Any, start: Any, end: Any, failed: bool) -> None:
        params = kwargs.get("litellm_params") or {}
        metadata = params.get("metadata") or {}
        run_id = metadata.get("ai_run_id") or self.tracker.current_run_id() or self.run
        messages = kwargs.get("messages")
        if run_id is None:
            run_id = self.tracker.new_run("chat", messages=json_of(messages) or None)
        request = {
            "model": kwargs.get("model"),
            "messages": messages,
            **(kwargs.get("optional_params") or {}),
        }
        fields = {
            **self.task_fields,
            "provider": kwargs.get("custom_llm_provider") or self.task_fields.get("provider"),
            "model": kwargs.get("model"),
            "endpoint": str(kwargs.get("call_type") or "completion"),
            "request_data": json_of(request),
        }
        tasks = self.tracker.background
        task = tasks.create_task(run_id, task_id=metadata.get("ai_task_id"), **fields)
        total = _ms(end, start)
        ttft = _ms(kwargs.get("completion_start_time"), start)
        if ttft is not None and total is not None:
            ttft = min(ttft, total)
        if failed:
            error = kwargs.get("exception") or "LiteLLM call failed"
            tasks.fail_task(task["task_id"], error, total_time=total)
            return
        response = kwargs.get("complete_streaming_response") or response
        text, tools = response_text_and_tools(response)
        litellm_cost = kwargs.get("response_cost")
        meta = {"litellm_cost": str(litellm_cost)} if litellm_cost is not None else None
        tasks.complete_task(
            task["task_id"],
            text,
            usage=getattr(response, "usage", None),
            response_data=json_of(response),
            tool_updates=tools or None,
            response_metadata=meta,
            time_to_first_token=ttft,
            total_time=total,
        )
