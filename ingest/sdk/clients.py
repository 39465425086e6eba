"""Drop-in tracking of an SDK client: every call through it becomes a task.

    client = ingest.track(openai.OpenAI(), tracker)
    client.chat.completions.create(model="gpt-4o", messages=[...])   # tracked

Tracked calls: OpenAI `chat.completions.create` / `parse` / `stream` and `responses.create` /
`parse` / `stream`, Anthropic `messages.create` and `messages.stream`, and each one's
`with_raw_response.create` (and `.parse`), sync and async (`AsyncOpenAI`, `AsyncAnthropic`),
streamed or not. `with_streaming_response` is not tracked: its first use logs a warning.
Everything else on the client is the client's own.

- The application gets the SDK's own return values. A stream is the SDK's own stream
  object: its item iterator is wrapped in place, so `for`, `text_stream`,
  `get_final_message()` and `close()` keep working and its items are untouched.
- Run: `ai_run_id=` on the call, else the innermost `with tracker.run(...)`, else
  track's `run=`, else a new run per call (named from its first user message).
  `ai_task_id=` makes the task id the application's own stream/socket id. Both keywords
  are removed before the SDK sees the call.
- Stored: request_data = the call's keyword arguments as sent (JSON), response_data = the
  response as received (`model_dump`, non-streamed calls), model_id (the model the
  provider says answered) and response_info (its response id and finish reason), text,
  tool calls, usage, cost
  (ingest.sdk.provider_usage / ingest.spend.pricing), TTFT and total time from just before
  the request.
- A stream the application lets go of before its end is finished as cancelled at that
  moment (text so far, total_time then): on `close()`, on leaving its `with` block, or
  when its last reference is dropped (`released_when_dropped`), not at the next garbage
  collection.
- Writes go through the tracker's background writer (ingest.tracking.background): nothing
  touches the database in the application's call, and a tracking problem is logged,
  never raised. An error of the call itself is recorded (failed task) and re-raised.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from ingest.sdk.stream_tracking import TrackedStream, response_identity
from ingest.sdk.streaming import AsyncTaskStream, TaskStream
from ingest.sdk.task_writer import CallTracker

log = logging.getLogger("ingest.client_tracking")

# How a tracked method answers: the response itself (or its stream when stream=True), a
# stream helper's manager (entered with `with`), or a raw response whose parse() gives one.
CALL, HELPER, RAW = "call", "helper", "raw"
# path of the SDK method -> (endpoint name stored on the task, how it answers)
_METHODS = {
    "openai": {
        ("chat", "completions", "create"): ("chat.completions", CALL),
        ("chat", "completions", "parse"): ("chat.completions", CALL),
        ("chat", "completions", "stream"): ("chat.completions", HELPER),
        ("chat", "completions", "with_raw_response", "create"): ("chat.completions", RAW),
        ("chat", "completions", "with_raw_response", "parse"): ("chat.completions", RAW),
        ("responses", "create"): ("responses", CALL),
        ("responses", "parse"): ("responses", CALL),
        ("responses", "stream"): ("responses", HELPER),
        ("responses", "with_raw_response", "create"): ("responses", RAW),
        ("responses", "with_raw_response", "parse"): ("responses", RAW),
    },
    "anthropic": {
        ("messages", "create"): ("messages", CALL),
        ("messages", "stream"): ("messages", HELPER),
        ("messages", "with_raw_response", "create"): ("messages", RAW),
    },
}
# Ways to call a tracked method that are not tracked: the first use of each logs a warning.
_UNTRACKED = ("with_streaming_response",)
_warned: set[tuple[str, ...]] = set()


def track(
    client: Any, tracker: CallTracker, *, run: uuid.UUID | str | None = None, **task_fields: Any
) -> Any:
    """Return `client` (an OpenAI or Anthropic client, sync or async) wrapped so that every
    call through it is tracked as a task of `tracker` (see the module docstring).
    task_fields: create_task fields stored on every task (service, task_name, ...)."""
    provider = type(client).__module__.split(".")[0]
    if provider not in _METHODS:
        raise TypeError(f"track() supports OpenAI and Anthropic clients, got {type(client)!r}")
    return _Proxy(client, _Recorder(tracker, provider, run, task_fields), ())


class _Proxy:
    """The client (or one of its resources) with the tracked methods replaced."""

    def __init__(self, target: Any, recorder: _Recorder, path: tuple[str, ...]) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_recorder", recorder)
        object.__setattr__(self, "_path", path)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        path = (*self._path, name)
        methods = _METHODS[self._recorder.provider]
        if path in methods:
            return self._recorder.wrap(value, *methods[path])
        if any(key[: len(path)] == path for key in methods):
            return _Proxy(value, self._recorder, path)
        if name in _UNTRACKED and any(key[: len(self._path)] == self._path for key in methods):
            _warn_once((self._recorder.provider, *path))
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __repr__(self) -> str:
        return f"tracked({self._target!r})"


class _Recorder:
    def __init__(self, tracker: CallTracker, provider: str, run: Any, fields: dict) -> None:
        self.tracker = tracker
        self.provider = provider
        self.run = run
        self.fields = fields

    def wrap(self, method: Callable[..., Any], endpoint: str, kind: str) -> Callable:
        def tracked(*args: Any, **kwargs: Any) -> Any:
            call = _Call(self, endpoint, kwargs, kind=kind)
            try:
                result = method(*args, **kwargs)
            except Exception as error:
                call.failed(error)
                raise
            if inspect.isawaitable(result):  # an async client's call
                return _received_later(call, result)
            return call.received(result)

        return tracked


def _warn_once(path: tuple[str, ...]) -> None:
    if path not in _warned:
        _warned.add(path)
        log.warning(
            "ingest.track: %s.%s calls are not tracked (use the method without it, or "
            "with_raw_response)",
            path[0],
            ".".join(path[1:]),
        )


async def _received_later(call: _Call, pending: Any) -> Any:
    try:
        result = await pending
    except Exception as error:
        call.failed(error)
        raise
    if call.kind == RAW and call.run_id is not None:
        try:  # an async raw response's parse() may be a coroutine (Anthropic)
            parsed = result.parse()
            call.received_parsed(await parsed if inspect.isawaitable(parsed) else parsed)
        except Exception:
            log.exception("tracked call: its result could not be recorded")
        return result
    return call.received(result)


class _Call:
    """One tracked call: its run, task id, request, and how its result is recorded."""

    def __init__(
        self, recorder: _Recorder, endpoint: str, kwargs: dict[str, Any], kind: str = CALL
    ) -> None:
        self.recorder = recorder
        self.tracker = recorder.tracker
        self.sent = self.tracker.clock()
        self.run_id = kwargs.pop("ai_run_id", None)
        self.task_id = kwargs.pop("ai_task_id", None) or uuid.uuid4()
        self.kind = kind
        self.streamed = bool(kwargs.get("stream")) or kind == HELPER
        self.fields = {
            **recorder.fields,
            "provider": recorder.fields.get("provider", recorder.provider),
            "endpoint": endpoint,
            "model": kwargs.get("model"),
            "request_data": json_of(kwargs),
        }
        try:
            self.run_id = self._resolve_run(kwargs)
        except Exception:
            log.exception("tracked call: no run; the call is not tracked")
            self.run_id = None

    def _resolve_run(self, kwargs: dict[str, Any]) -> uuid.UUID:
        given = self.run_id or self.tracker.current_run_id() or self.recorder.run
        if given is not None:
            return uuid.UUID(str(given))
        messages = kwargs.get("messages")
        if not isinstance(messages, list) and isinstance(kwargs.get("input"), str):
            messages = [{"role": "user", "content": kwargs["input"]}]
        return self.tracker.new_run("chat", messages=json_of(messages) or None)

    def failed(self, error: BaseException) -> None:
        """The request itself failed: a failed task (never raises)."""
        if self.run_id is None:
            return
        try:
            tasks = self.tracker.background
            tasks.create_task(self.run_id, task_id=self.task_id, **self.fields)
            tasks.fail_task(self.task_id, error, total_time=self._elapsed())
        except Exception:
            log.exception("tracked call: its failure could not be recorded")

    def received(self, result: Any) -> Any:
        """Record the result (or wrap the stream) and return what the SDK returned."""
        if self.run_id is None:
            return result
        try:
            if self.kind == HELPER:
                return _TrackedManager(result, self)
            if self.kind == RAW:
                # parse() caches its answer: the application's own parse() gets this one.
                self.received_parsed(result.parse())
                return result
            if self.streamed:
                return self.wrap_stream(result)
            self._record_response(result)
        except Exception:
            log.exception("tracked call: its result could not be recorded")
        return result

    def received_parsed(self, parsed: Any) -> None:
        """Record what a raw response's parse() gave: a response, or a stream to track
        (the application gets that stream object from its own parse(): an abandoned one is
        finished when the garbage collector frees it)."""
        if self.streamed:
            self.wrap_stream(parsed, twin=False)
        else:
            self._record_response(parsed)

    def wrap_stream(self, stream: Any, twin: bool = True) -> Any:
        """Replace the SDK stream's item iterator by a tracked pass-through of it; return
        the stream the application gets (`released_when_dropped` unless `twin` is False)."""
        # A helper's stream of derived events (openai's ChatCompletionStream) is tracked on
        # the raw stream it reads, whose items are the provider's own.
        raw = getattr(stream, "_raw_stream", None)
        source = raw if hasattr(raw, "_iterator") else stream
        iterator = source._iterator
        is_async = hasattr(iterator, "__anext__")
        wrapper = AsyncTaskStream if is_async else TaskStream
        tracked = wrapper(
            self.tracker.background,
            self.run_id,
            iterator,
            task_id=self.task_id,
            started_at=self.sent,
            passthrough=True,
            **self.fields,
        )
        source._iterator = tracked.__aiter__() if is_async else iter(tracked)
        return released_when_dropped(stream, tracked) if twin else stream

    def _record_response(self, response: Any) -> None:
        elapsed = self._elapsed()
        tasks = self.tracker.background
        tasks.create_task(self.run_id, task_id=self.task_id, **self.fields)
        # Callables are evaluated in the writer thread: the response is read off the call.
        tasks.complete_task(
            self.task_id,
            lambda: response_text_and_tools(response)[0],
            usage=getattr(response, "usage", None),
            response_data=lambda: json_of(response),
            tool_updates=lambda: response_text_and_tools(response)[1] or None,
            model=self.fields["model"] or getattr(response, "model", None),
            time_to_first_token=elapsed,
            total_time=elapsed,
            **response_identity(
                getattr(response, "model", None),
                getattr(response, "id", None),
                finish_reason(response),
            ),
        )

    def _elapsed(self) -> int:
        return max(0, round((self.tracker.clock() - self.sent) * 1000))


class _TrackedManager:
    """A stream helper's manager (`chat.completions.stream()`, `responses.stream()`,
    Anthropic's `messages.stream()`): entering it tracks the stream it opens; leaving it
    finishes the task (cancelled unless read to the end)."""

    def __init__(self, manager: Any, call: _Call) -> None:
        self._manager = manager
        self._call = call
        self._stream: Any = None

    def __enter__(self) -> Any:
        return self._track(self._manager.__enter__())

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self._manager.__exit__(*exc)
        finally:
            _abandon(self._stream)

    async def __aenter__(self) -> Any:
        return self._track(await self._manager.__aenter__())

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self._manager.__aexit__(*exc)
        finally:
            _abandon(self._stream)

    def _track(self, stream: Any) -> Any:
        try:
            self._stream = self._call.wrap_stream(stream)
        except Exception:
            log.exception("tracked call: its stream could not be tracked")
            self._stream = stream
        return self._stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)


# ------------------------------------------------------------ an abandoned stream

_TRACKED = "_ai_runs_tracked_stream"  # the TaskStream of a released_when_dropped stream


def released_when_dropped(stream: Any, tracked: TrackedStream) -> Any:
    """The SDK stream as the application gets it: an instance of a subclass of the SDK's
    stream class that shares the stream's attributes (one `__dict__`), whose `close()`
    (also on leaving a `with` block) and release finish `tracked` as cancelled unless it
    finished already, with total_time measured then.

    Why a second instance: the SDK's stream object is in a reference cycle with its own
    item generator, so dropping it frees it only at the next cyclic garbage collection,
    possibly much later. The instance returned is in no cycle: when the application drops
    its last reference, `__del__` runs at once. The SDK keeps working on its own object."""
    twin = object.__new__(_twin_class(type(stream)))
    twin.__dict__ = stream.__dict__  # one set of attributes: iteration state is shared
    stream.__dict__[_TRACKED] = tracked
    return twin


def _abandon(stream: Any) -> None:
    """Finish the tracked task of `stream` as cancelled now, unless it finished (never
    raises: called from close(), a manager's exit and __del__)."""
    tracked = getattr(stream, "__dict__", {}).get(_TRACKED)
    if tracked is None or tracked.finished:
        return
    try:
        if isinstance(tracked, TaskStream):
            with contextlib.suppress(Exception):  # also closes the SDK's item generator
                tracked.close()
        tracked.abandon()
    except Exception:
        log.exception("tracked call: its abandoned stream could not be recorded")


@functools.cache
def _twin_class(base: type) -> type:
    """`base` (an SDK stream class) with close() and __del__ that finish the task."""
    base_close = getattr(base, "close", None)
    namespace: dict[str, Any] = {"__module__": base.__module__, "__qualname__": base.__qualname__}
    if inspect.iscoroutinefunction(base_close):

        async def aclose(self: Any) -> None:
            try:
                await base_close(self)
            finally:
                _abandon(self)

        namespace["close"] = aclose
    elif base_close is not None:

        def close(self: Any) -> None:
            try:
                base_close(self)
            finally:
                _abandon(self)

        namespace["close"] = close

    def __del__(self: Any) -> None:  # noqa: N807 (the finalizer this class exists for)
        _abandon(self)
        base_del = getattr(base, "__del__", None)
        if base_del is not None:
            base_del(self)

    namespace["__del__"] = __del__
    return type(base.__name__, (base,), namespace)


def finish_reason(response: Any) -> Any:
    """Why a non-streamed response stopped: OpenAI chat's finish_reason, Anthropic's
    stop_reason, or the Responses API's status."""
    for choice in (getattr(response, "choices", None) or [])[:1]:
        return getattr(choice, "finish_reason", None)
    return getattr(response, "stop_reason", None) or getattr(response, "status", None)


def response_text_and_tools(response: Any) -> tuple[str, list[dict[str, Any]]]:
    """Text and tool calls of a non-streamed OpenAI chat / responses or Anthropic message."""
    texts: list[str] = []
    tools: list[dict[str, Any]] = []
    for choice in (getattr(response, "choices", None) or [])[:1]:
        message = choice.message
        texts.append(message.content or "")
        for call in message.tool_calls or []:
            tools.append(
                {"id": call.id, "name": call.function.name, "arguments": call.function.arguments}
            )
    for item in getattr(response, "output", None) or []:
        if getattr(item, "type", None) == "message":
            texts += [c.text for c in item.content if getattr(c, "type", "") == "output_text"]
        elif getattr(item, "type", None) == "function_call":
            tools.append({"id": item.call_id, "name": item.name, "arguments": item.arguments})
    for block in getattr(response, "content", None) or []:
        kind = getattr(block, "type", None)
        if kind == "text":
            texts.append(block.text)
        elif kind == "tool_use":
            tools.append({"id": block.id, "name": block.name, "arguments": json.dumps(block.input)})
    return "".join(texts), tools


def json_of(value: Any) -> Any:
    """A JSON copy of request arguments or an SDK response (non-JSON values as strings)."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if value is None:
        return None
    return json.loads(
        json.dumps(value, default=lambda v: json_of(v) if hasattr(v, "model_dump") else str(v))
    )
