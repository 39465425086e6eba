"""Track a streamed response by wrapping its stream, as it is.

    stream = client.chat.completions.create(..., stream=True,
                                            stream_options={"include_usage": True})
    for chunk in ingest.stream_task(tracker, run_id, stream, provider="openai",
                                    model="gpt-4o", started_at=sent_at):
        ...                      # the SDK's own chunks, unchanged
    # async: `async for event in ingest.astream_task(tracker, run_id, async_stream, ...)`

Accepted streams (see ingest.sdk_streams): OpenAI Chat Completions and Responses streams,
Anthropic `messages.create(stream=True)` events and the `messages.stream()` helper (the
manager, entered for you, or the entered stream), google-genai `generate_content_stream`,
sync and async; and plain text chunks (str) with usage objects/dicts in between, as before.

The wrapper creates the task (pending) when called, writes the growing text while it
streams (debounced by the tracker), and finishes the task by itself:
- the source ends: completed, with the full text, tool calls (`tool_updates`), TTFT, total
  time, usage and cost; a stream without usage stores NULL tokens and NULL cost;
  an `error` event from the provider makes it failed instead;
- the source raises: failed, with the error and the text so far; the error is re-raised;
- the consumer stops early (breaks out of the loop, closes the stream, leaves a `with`
  block, or the stream is garbage collected): cancelled, with the text so far;
- a chunk is refused (NUL, lone surrogate, anything validation refuses): failed, with the
  reason and the text so far. For plain text chunks the consumer gets the ValidationError
  once and the stream ends. For SDK streams the application keeps receiving the SDK's
  items untouched and tracking of that stream stops: tracking never breaks the app (any
  tracking error of an SDK stream is logged, never raised).

Plain text chunks pass through ("" counts for nothing); usage chunks are not passed
through. A final usage can also come from `usage=`, a callable called once the source is
exhausted. Times are in milliseconds on the tracker's clock from `started_at`: take it
just before sending the request (`tracker.clock()`), otherwise the wait for response
headers is missed (default: when stream_task was called).
"""

from __future__ import annotations

import logging
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import suppress
from typing import Any

from ingest.errors import ValidationError
from ingest.sdk_streams import StreamState

# An ingest.Tracker; not imported, not even for typing: the Tracker imports this module.
Tracker = Any

log = logging.getLogger("ingest.streaming")
_SDK_MODULES = ("openai", "anthropic", "google", "litellm")
_CANCEL_REASON = "the consumer stopped reading the stream"


def is_sdk_stream(stream: Any) -> bool:
    """True for a stream object of a provider SDK (its items pass through untouched)."""
    return type(stream).__module__.split(".")[0] in _SDK_MODULES


def refused_text_reason(text: str) -> str | None:
    """Why a text chunk cannot be stored (NUL, lone surrogate), or None when it can."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode)"
    return None


class _Tracked:
    """State and bookkeeping shared by the sync and async stream wrappers."""

    def __init__(
        self,
        tracker: Tracker,
        run_id: uuid.UUID | str,
        chunks: Any,
        *,
        task_id: uuid.UUID | str | None = None,
        usage: Callable[[], Any] | None = None,
        started_at: float | None = None,
        passthrough: bool | None = None,
        **task_fields: Any,
    ) -> None:
        self.tracker = tracker
        self.started_at = tracker.clock() if started_at is None else started_at
        self.passthrough = is_sdk_stream(chunks) if passthrough is None else passthrough
        self.task: dict[str, Any] | None = None
        self.time_to_first_token: int | None = None
        self.total_time: int | None = None
        self.state = StreamState()
        self.refused: ValidationError | None = None
        self._chunks = chunks
        self._final_usage = usage
        self._task_model = task_fields.get("model")
        self._tracking = True
        try:
            created = tracker.create_task(run_id, task_id=task_id, **task_fields)
        except Exception:
            if not self.passthrough:
                raise
            log.exception("stream not tracked: its task could not be created")
            self._tracking = False
            self.task_id = None
            self.status = "untracked"
            return
        self.task_id: uuid.UUID | None = created["task_id"]
        self.status: str = created["status"]

    @property
    def text(self) -> str:
        """The text received so far."""
        return self.state.text

    @property
    def usage(self) -> dict[str, int]:
        """Token columns of the usage read so far ({} when none was reported)."""
        from ingest.usage import normalize_usage

        return {} if self.state.usage is None else normalize_usage(self.state.usage)

    @property
    def finished(self) -> bool:
        return self.task is not None or not self._tracking

    def _elapsed_ms(self) -> int:
        return max(0, round((self.tracker.clock() - self.started_at) * 1000))

    def _take(self, item: Any) -> bool:
        """Read one item; return whether to pass it to the consumer (text and SDK items
        are, usage chunks are not). Raises the refusal (ValidationError) for plain
        streams; never raises once the stream is known to be an SDK's."""
        if not self._tracking or self.finished:
            return self.passthrough or not _is_usage(item)
        try:
            text = self.state.read(item)
            self.passthrough = self.passthrough or self.state.sdk
            if text:
                reason = refused_text_reason(text)
                if reason is not None:
                    raise ValidationError("response_text", f"a streamed chunk {reason}")
                self._on_text(text)
        except ValidationError as error:
            self.refused = error
            self._finish_quietly("failed", error)
            if not self.passthrough:
                raise
        except Exception:
            if not self.passthrough:
                raise
            log.exception("tracking of stream task %s stopped", self.task_id)
            self._tracking = False
        return self.passthrough or isinstance(item, str)

    def _on_text(self, text: str) -> None:
        if self.time_to_first_token is None:
            self.time_to_first_token = self._elapsed_ms()
        self.state.parts.append(text)
        if self.tracker.update_due(self.task_id):
            result = self.tracker.update_task(
                self.task_id, self.text, time_to_first_token=self.time_to_first_token
            )
            self.status = result.status

    def _end(self) -> None:
        """The source is exhausted: read the final usage, then finish."""
        if self._final_usage is not None and not self.finished:
            try:
                final = self._final_usage()
                if final is not None:
                    self._take(final)
            except Exception as error:
                self._finish_quietly("failed", error)
                if not self.passthrough:
                    raise
        if self.state.errors:
            self._finish_quietly("failed", self.state.errors[-1])
        else:
            self._finish_quietly("completed")

    def _finish_quietly(self, status: str, error: Any = None) -> None:
        """Finish the task; for pass-through streams a tracking error is only logged."""
        try:
            self._finish(status, error)
        except Exception:
            self._tracking = False
            if not self.passthrough:
                raise
            log.exception("stream task %s could not be finished", self.task_id)

    def _finish(self, status: str, error: Any = None) -> None:
        if self.finished:
            return
        self.total_time = self._elapsed_ms()
        text = self.text if self.refused is None else self._storable_text()
        fields: dict[str, Any] = {"response_text": text, "total_time": self.total_time}
        if self.time_to_first_token is not None:
            fields["time_to_first_token"] = self.time_to_first_token
        if self.state.tool_updates():
            fields["tool_updates"] = self.state.tool_updates()
        if self._task_model is None and self.state.model:
            fields["model"] = self.state.model
        if self.state.usage is not None:
            fields["usage"] = self.state.usage
        tracker = self.tracker
        try:
            if status == "completed":
                self.task = tracker.complete_task(self.task_id, **fields)
            elif status == "failed":
                self.task = tracker.fail_task(self.task_id, storable_error(error), **fields)
            else:
                self.task = tracker.cancel_task(self.task_id, _CANCEL_REASON, **fields)
        except ValidationError:
            if "usage" not in fields:
                raise
            # An unreadable usage must not lose the task: finish it without usage.
            fields.pop("usage")
            self.task = tracker.fail_task(
                self.task_id, {"message": "the provider's usage could not be read"}, **fields
            )
        self.status = self.task["status"]

    def _storable_text(self) -> str:
        """The text so far without the parts validation refuses (kept as the reason)."""
        return "".join(p for p in self.state.parts if refused_text_reason(p) is None)


def _is_usage(item: Any) -> bool:
    return not isinstance(item, str) and (isinstance(item, dict) or not hasattr(item, "type"))


def storable_error(error: Any) -> Any:
    """An error as recorded in response_errors: a ValidationError names its field; an
    exception's message is made storable (no NUL, no lone surrogate)."""
    if isinstance(error, ValidationError):
        return {"type": "ValidationError", "field": error.field, "message": str(error)}
    if isinstance(error, BaseException):
        message = str(error).encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
        return {"type": type(error).__name__, "message": message}
    return error


class TaskStream(_Tracked):
    """An iterable over one streamed response that tracks it as a task.

    Iterate it once. Attributes: task_id, text (so far), time_to_first_token and total_time
    (ms, None until known), usage (token columns), status (pending until finished), task
    (the task row once finished), refused (the ValidationError of a refused chunk).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._generator: weakref.ref[Iterator[Any]] | None = None

    def __iter__(self) -> Iterator[Any]:
        if self._generator is not None or self.task is not None:
            raise RuntimeError("a TaskStream can be iterated only once")
        generator = self._run()
        # A weak reference: breaking out of the loop drops the generator, which closes it.
        self._generator = weakref.ref(generator)
        return generator

    def __enter__(self) -> TaskStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop early: cancel the task unless it already finished."""
        generator = self._generator() if self._generator is not None else None
        if generator is not None:
            generator.close()
        if not self.finished:
            self._finish_quietly("cancelled")

    def _run(self) -> Iterator[Any]:
        chunks = self._chunks
        manager = chunks if _is_stream_manager(chunks) else None
        source: Any = None
        try:
            source = iter(manager.__enter__() if manager is not None else chunks)
            for item in source:
                if self._take(item):
                    yield item
        except ValidationError as error:
            if error is not self.refused:
                self._finish_quietly("failed", error)
            raise
        except Exception as error:
            self._finish_quietly("failed", error)
            raise
        except BaseException:  # GeneratorExit (consumer stopped), KeyboardInterrupt, ...
            if source is not None:
                _close_quietly(source)
            self._finish_quietly("cancelled")
            raise
        finally:
            if manager is not None:
                with suppress(Exception):
                    manager.__exit__(None, None, None)
        self._end()


class AsyncTaskStream(_Tracked):
    """The async twin of TaskStream: `async for item in stream`; `await stream.aclose()`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._started = False

    def __aiter__(self) -> AsyncIterator[Any]:
        if self._started or self.task is not None:
            raise RuntimeError("an AsyncTaskStream can be iterated only once")
        self._started = True
        self._agen = self._run()
        return self._agen

    async def __aenter__(self) -> AsyncTaskStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop early: cancel the task unless it already finished."""
        if self._started:
            await self._agen.aclose()
        if not self.finished:
            self._finish_quietly("cancelled")

    async def _run(self) -> AsyncIterator[Any]:
        chunks = self._chunks
        manager = chunks if _is_stream_manager(chunks, is_async=True) else None
        source = await manager.__aenter__() if manager is not None else chunks
        iterator = source.__aiter__() if hasattr(source, "__aiter__") else None
        try:
            if iterator is None:  # a plain iterable given to the async wrapper
                for item in source:
                    if self._take(item):
                        yield item
            else:
                async for item in iterator:
                    if self._take(item):
                        yield item
        except ValidationError as error:
            if error is not self.refused:
                self._finish_quietly("failed", error)
            raise
        except Exception as error:
            self._finish_quietly("failed", error)
            raise
        except BaseException:
            close = getattr(source, "close", None) or getattr(source, "aclose", None)
            if callable(close):
                with suppress(Exception):
                    result = close()
                    if hasattr(result, "__await__"):
                        await result
            self._finish_quietly("cancelled")
            raise
        finally:
            if manager is not None:
                with suppress(Exception):
                    await manager.__aexit__(None, None, None)
        self._end()


def _is_stream_manager(chunks: Any, is_async: bool = False) -> bool:
    name = type(chunks).__name__
    if not name.endswith("StreamManager"):
        return False
    return hasattr(chunks, "__aenter__" if is_async else "__enter__")


def _close_quietly(source: Iterator[Any]) -> None:
    close = getattr(source, "close", None)
    if callable(close):
        # The source's own cleanup failing must not hide the cancellation.
        with suppress(Exception):
            close()


def stream_task(
    tracker: Tracker,
    run_id: uuid.UUID | str,
    chunks: Iterable[Any],
    *,
    task_id: uuid.UUID | str | None = None,
    usage: Callable[[], Any] | None = None,
    started_at: float | None = None,
    **task_fields: Any,
) -> TaskStream:
    """Create a task of `run_id` now and return a TaskStream that tracks `chunks`.

    chunks: an SDK stream (passed through untouched) or plain text chunks.
    task_fields: create_task arguments (provider, model, service, task_name, endpoint,
    request_data, ...). usage: optional callable returning the final usage after the last
    chunk. started_at: tracker-clock seconds taken just before the request was sent
    (default now). See the module docstring for how the task is finished.
    An async stream is a TypeError (use astream_task), raised before anything is written.
    """
    if hasattr(chunks, "__aiter__") and not hasattr(chunks, "__iter__"):
        raise TypeError(f"{type(chunks).__name__} is an async stream: use ingest.astream_task")
    return TaskStream(
        tracker,
        run_id,
        chunks,
        task_id=task_id,
        usage=usage,
        started_at=started_at,
        **task_fields,
    )


def astream_task(
    tracker: Tracker,
    run_id: uuid.UUID | str,
    chunks: Any,
    *,
    task_id: uuid.UUID | str | None = None,
    usage: Callable[[], Any] | None = None,
    started_at: float | None = None,
    **task_fields: Any,
) -> AsyncTaskStream:
    """The async twin of stream_task for async SDK streams (AsyncOpenAI, AsyncAnthropic,
    google-genai `aio`) and async iterables of text chunks: `async for item in ...`."""
    return AsyncTaskStream(
        tracker,
        run_id,
        chunks,
        task_id=task_id,
        usage=usage,
        started_at=started_at,
        **task_fields,
    )
