"""Track a streamed response by wrapping its chunks.

    stream = ingest.stream_task(tracker, run_id, provider_text_chunks(),
                                provider="openai", model="gpt-4o")
    for text in stream:          # the chunks pass through unchanged
        print(text, end="")
    stream.task                  # the finished task row: text, TTFT, total time, tokens, cost

The wrapper creates the task (pending) when called, writes the growing text while it
streams (debounced by the tracker), and finishes the task by itself:
- the source ends: completed, with the full text, TTFT, total time, usage and cost;
- the source raises: failed, with the error and the text so far; the error is re-raised;
- the consumer stops early (breaks out of the loop, closes the stream, leaves a `with`
  block, or the stream is garbage collected): cancelled, with the text so far.

Chunks are strings (text, passed through; "" counts for nothing) or usage objects/dicts
(not passed through; see ingest.usage). A final usage can also come from `usage=`, a
callable called once the source is exhausted (e.g. `lambda: stream.get_final_usage()`).
Times are in milliseconds on the tracker's clock, from `started_at` (default: when
stream_task was called; pass the clock value from just before the request was sent).
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import suppress
from typing import Any

from ingest.usage import normalize_usage

# An ingest.Tracker; not imported, not even for typing: the Tracker imports this module.
Tracker = Any


class TaskStream:
    """An iterable over the text chunks of one streamed response that tracks it as a task.

    Iterate it once. Attributes: task_id, text (so far), time_to_first_token and total_time
    (ms, None until known), usage (token columns), status (pending until finished), task
    (the task row once finished).
    """

    def __init__(
        self,
        tracker: Tracker,
        run_id: uuid.UUID | str,
        chunks: Iterable[Any],
        *,
        task_id: uuid.UUID | str | None = None,
        usage: Callable[[], Any] | None = None,
        started_at: float | None = None,
        **task_fields: Any,
    ) -> None:
        self.tracker = tracker
        self.started_at = tracker.clock() if started_at is None else started_at
        created = tracker.create_task(run_id, task_id=task_id, **task_fields)
        self.task_id: uuid.UUID = created["task_id"]
        self.task: dict[str, Any] | None = None
        self.status: str = created["status"]
        self.time_to_first_token: int | None = None
        self.total_time: int | None = None
        self.usage: dict[str, int] = {}
        self._chunks = chunks
        self._final_usage = usage
        self._parts: list[str] = []
        self._generator: weakref.ref[Generator[str, None, None]] | None = None

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self._parts)

    @property
    def finished(self) -> bool:
        return self.task is not None

    def __iter__(self) -> Iterator[str]:
        if self._generator is not None or self.finished:
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
            self._finish("cancelled")

    def _elapsed_ms(self) -> int:
        return max(0, round((self.tracker.clock() - self.started_at) * 1000))

    def _run(self) -> Generator[str, None, None]:
        source = iter(self._chunks)
        try:
            for item in source:
                if isinstance(item, str):
                    if item:
                        self._on_text(item)
                    yield item
                elif item is not None:
                    self.usage.update(normalize_usage(item))
            if self._final_usage is not None:
                final = self._final_usage()
                if final is not None:
                    self.usage.update(normalize_usage(final))
        except Exception as error:
            self._finish("failed", error)
            raise
        except BaseException:  # GeneratorExit (consumer stopped), KeyboardInterrupt, ...
            _close_quietly(source)
            self._finish("cancelled")
            raise
        self._finish("completed")

    def _on_text(self, text: str) -> None:
        if self.time_to_first_token is None:
            self.time_to_first_token = self._elapsed_ms()
        self._parts.append(text)
        if self.tracker.update_due(self.task_id):
            result = self.tracker.update_task(
                self.task_id, self.text, time_to_first_token=self.time_to_first_token
            )
            self.status = result.status

    def _finish(self, status: str, error: BaseException | None = None) -> None:
        if self.finished:
            return
        self.total_time = self._elapsed_ms()
        fields: dict[str, Any] = {
            "response_text": self.text,
            "total_time": self.total_time,
            **self.usage,
        }
        if self.time_to_first_token is not None:
            fields["time_to_first_token"] = self.time_to_first_token
        if status == "completed":
            self.task = self.tracker.complete_task(self.task_id, **fields)
        elif status == "failed":
            self.task = self.tracker.fail_task(self.task_id, error, **fields)
        else:
            self.task = self.tracker.cancel_task(
                self.task_id, "the consumer stopped reading the stream", **fields
            )
        self.status = self.task["status"]


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

    task_fields: create_task arguments (provider, model, service, task_name, endpoint,
    request_data, ...). usage: optional callable returning the final usage after the last
    chunk. started_at: tracker-clock seconds when the request was sent (default now).
    See the module docstring for how the task is finished.
    """
    return TaskStream(
        tracker,
        run_id,
        chunks,
        task_id=task_id,
        usage=usage,
        started_at=started_at,
        **task_fields,
    )
