"""Track a streamed response by wrapping its stream, as it is.

    stream = client.chat.completions.create(..., stream=True,
                                            stream_options={"include_usage": True})
    for chunk in ingest.stream_task(tracker, run_id, stream, provider="openai",
                                    model="gpt-4o", started_at=sent_at):
        ...                      # the SDK's own chunks, unchanged
    # async: `async for event in ingest.astream_task(tracker, run_id, async_stream, ...)`

Accepted streams (see ingest.sdk.stream_shapes): OpenAI Chat Completions and Responses streams,
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
through, and several merge (Anthropic's message_start usage, then its message_delta usage:
a later value that is set wins, an unset one keeps the earlier value). A final usage can
also come from `usage=`, a callable called once the source is exhausted. Times are in
milliseconds on the tracker's clock from `started_at`: take it just before sending the
request (`tracker.clock()`), otherwise the wait for response headers is missed (default:
when stream_task was called).

This module holds the wrappers and the ways in; what they do with each item and how the
task is finished is ingest/sdk/stream_tracking.py.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import suppress
from typing import Any

from ingest.errors import ValidationError
from ingest.sdk.stream_tracking import (
    TrackedStream,
)
from ingest.sdk.task_writer import TaskWriter

__all__ = [
    "AsyncTaskStream",
    "TaskStream",
    "astream_task",
    "stream_task",
]


class TaskStream(TrackedStream):
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


class AsyncTaskStream(TrackedStream):
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
    tracker: TaskWriter,
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
    tracker: TaskWriter,
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
