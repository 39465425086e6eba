"""A LiteLLM custom logger that records every LiteLLM call as a task.

    import litellm
    litellm.callbacks = [ingest.sdk.litellm_logger.AiRunsLogger(tracker)]

Success and failure, sync and async (LiteLLM calls the matching hook; streamed calls are
logged once, complete). Each call becomes a task written through the tracker's
background writer (ingest.tracking.background): provider (LiteLLM's custom_llm_provider),
model, request (model, messages, optional params), text, tool calls, tokens (read from
LiteLLM's OpenAI-shaped usage by ingest.sdk.provider_usage), cost priced by us (cost_source
"computed"; LiteLLM's own `response_cost` is kept in response_metadata["litellm_cost"]),
TTFT and total time. The run: `ai_run_id` in the call's `metadata`, else the innermost
`with tracker.run(...)`, else the logger's `run`, else a new run per call. `ai_task_id` in
`metadata` sets the task id. Never raises.

Streams (docs/tracking.md):
- usage is the provider's: when no chunk carried usage, LiteLLM's own estimate (it counts
  tokens itself) is not stored: tokens and cost stay NULL, as for any call without usage;
- TTFT is taken at the first chunk with text or a tool call (LiteLLM's
  completion_start_time is its first chunk, often an empty role chunk);
- a stream the application stops reading (LiteLLM then logs nothing) is recorded as
  cancelled, with the text seen, when LiteLLM's stream object is freed.
"""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from collections import OrderedDict
from datetime import datetime
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from ingest.sdk.clients import finish_reason, json_of, response_text_and_tools
from ingest.sdk.stream_shapes import StreamState
from ingest.sdk.stream_tracking import response_identity
from ingest.sdk.task_writer import CallTracker, TaskWriter

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
        # Per LiteLLM call id, from its start (the application's thread, where the run of
        # `with tracker.run(...)` is known) until LiteLLM logs it: that run, and the
        # finalizer watching its stream object.
        self._calls: OrderedDict[str, tuple[Any, weakref.finalize | None]] = OrderedDict()
        self._lock = threading.Lock()

    def log_post_api_call(
        self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        try:
            self._remember_call(kwargs)
        except Exception:
            log.exception("LiteLLM call start not recorded")

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
        run_id = self._forget_call(kwargs.get("litellm_call_id"))
        try:
            self._write(kwargs, response, start, end, failed, run_id)
        except Exception:
            log.exception("LiteLLM call not tracked")

    # ------------------------------------------------------------ one call

    def _start(self, kwargs: dict, run_id: Any = None) -> tuple[TaskWriter, Any]:
        """The task of this call, created (pending) in the background writer. run_id: the
        run of `with tracker.run(...)` where the call was made (LiteLLM may log from
        another thread)."""
        params = kwargs.get("litellm_params") or {}
        metadata = params.get("metadata") or {}
        run_id = metadata.get("ai_run_id") or run_id or self.tracker.current_run_id() or self.run
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
        return tasks, task["task_id"]

    def _write(
        self, kwargs: dict, response: Any, start: Any, end: Any, failed: bool, run_id: Any
    ) -> None:
        tasks, task_id = self._start(kwargs, run_id)
        total = _ms(end, start)
        chunks = _stream_chunks(kwargs)
        first_text = _first_text_at(chunks) if chunks is not None else None
        ttft = _ms(first_text or kwargs.get("completion_start_time"), start)
        if ttft is not None and total is not None:
            ttft = min(ttft, total)
        if failed:
            error = kwargs.get("exception") or "LiteLLM call failed"
            tasks.fail_task(task_id, error, total_time=total)
            return
        response = kwargs.get("complete_streaming_response") or response
        text, tools = response_text_and_tools(response)
        usage = getattr(response, "usage", None)
        if chunks is not None and not any(_attr(c, "usage") for c in chunks):
            usage = None  # LiteLLM's own count, not the provider's: unknown
        litellm_cost = kwargs.get("response_cost")
        meta = {"litellm_cost": str(litellm_cost)} if litellm_cost is not None else None
        tasks.complete_task(
            task_id,
            text,
            usage=usage,
            response_data=json_of(response),
            tool_updates=tools or None,
            response_metadata=meta,
            time_to_first_token=ttft,
            total_time=total,
            **response_identity(
                getattr(response, "model", None),
                getattr(response, "id", None),
                finish_reason(response),
            ),
        )

    # ------------------------------------------------------------ an abandoned stream

    def _remember_call(self, kwargs: dict) -> None:
        """Keep the call's run; for a stream, watch LiteLLM's stream object: if it is freed
        before the stream finished and LiteLLM logged the call, record it as cancelled."""
        call_id = kwargs.get("litellm_call_id")
        if call_id is None:
            return
        run_id = self.tracker.current_run_id()
        wrapper = kwargs.get("original_response")
        chunks = getattr(wrapper, "chunks", None)
        finalizer = None
        if kwargs.get("stream") and isinstance(chunks, list):
            seen = {key: kwargs.get(key) for key in _CALL_KEYS}
            finalizer = weakref.finalize(wrapper, self._released, call_id, chunks, seen)
        with self._lock:
            self._calls[call_id] = (run_id, finalizer)
            while len(self._calls) > _CALLS_KEPT:  # calls LiteLLM never logged
                self._calls.popitem(last=False)

    def _forget_call(self, call_id: Any) -> Any:
        """The run of a call LiteLLM logs now; its stream is no longer watched."""
        with self._lock:
            run_id, finalizer = self._calls.pop(call_id, (None, None))
        if finalizer is not None:
            finalizer.detach()
        return run_id

    def _released(self, call_id: str, chunks: list[Any], seen: dict[str, Any]) -> None:
        if any(_finished(chunk) for chunk in chunks):
            return  # read to its end: LiteLLM logs it
        with self._lock:
            if call_id not in self._calls:
                return  # LiteLLM logged the call: recorded there
            run_id, _ = self._calls.pop(call_id)
        try:
            tasks, task_id = self._start(seen, run_id)
            start = seen.get("start_time")
            total = _ms(datetime.now(), start)
            ttft = _ms(_first_text_at(chunks), start)
            text, tools = _chunks_text_and_tools(chunks)
            tasks.cancel_task(
                task_id,
                "the application stopped reading the stream",
                response_text=text,
                tool_updates=tools or None,
                time_to_first_token=None if ttft is None else min(ttft, total or ttft),
                total_time=total,
            )
        except Exception:
            log.exception("abandoned LiteLLM stream not tracked")


_CALLS_KEPT = 10_000
# What an abandoned stream's task is built from, copied when the call starts.
_CALL_KEYS = ("litellm_params", "messages", "model", "optional_params", "custom_llm_provider",
              "call_type", "start_time")  # fmt: skip


def _attr(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def _stream_chunks(kwargs: dict) -> list[Any] | None:
    """The chunks LiteLLM's stream object kept, for a streamed call; None otherwise."""
    chunks = getattr(kwargs.get("original_response"), "chunks", None)
    return chunks if kwargs.get("stream") and isinstance(chunks, list) else None


def _deltas(chunk: Any) -> list[Any]:
    return [_attr(choice, "delta") for choice in (_attr(chunk, "choices") or [])[:1]]


def _finished(chunk: Any) -> bool:
    return any(_attr(c, "finish_reason") for c in (_attr(chunk, "choices") or []))


def _first_text_at(chunks: list[Any]) -> datetime | None:
    """When LiteLLM made the first chunk with text or a tool call (its hidden
    `created_at`, epoch seconds), or None."""
    for chunk in chunks:
        if any(_attr(d, "content") or _attr(d, "tool_calls") for d in _deltas(chunk)):
            made = (getattr(chunk, "_hidden_params", None) or {}).get("created_at")
            return datetime.fromtimestamp(made) if isinstance(made, int | float) else None
    return None


def _chunks_text_and_tools(chunks: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    """Text and tool calls of the chunks seen so far (OpenAI chat chunk shape)."""
    state = StreamState()
    for chunk in chunks:
        state.parts.append(state.read(chunk) or "")
    return state.text, state.tool_updates() or []
