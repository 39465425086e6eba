"""The bookkeeping of one tracked streamed response (ingest/sdk/streaming.py wraps the stream):
read each item into the text, usage and tool calls so far (ingest.sdk.stream_shapes), write the
growing text while it streams, and finish the task (completed, failed or cancelled) exactly
once. Also what decides which text can be stored and how an error is recorded."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from ingest.errors import ValidationError
from ingest.sdk.stream_shapes import StreamState
from ingest.sdk.task_writer import TaskWriter

log = logging.getLogger("ingest.streaming")  # the logger of the stream wrappers
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


class TrackedStream:
    """State and bookkeeping shared by the sync and async stream wrappers (TaskStream,
    AsyncTaskStream): `_take` reads one item, `_end` and `_finish_quietly` finish the task."""

    def __init__(
        self,
        tracker: TaskWriter,
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
        from ingest.sdk.provider_usage import normalize_usage

        return {} if self.state.usage is None else normalize_usage(self.state.usage)

    @property
    def finished(self) -> bool:
        return self.task is not None or not self._tracking

    def abandon(self) -> None:
        """The consumer let go of the stream before its end (closed or released it):
        finish the task as cancelled now, with the text so far and total_time measured
        now. Nothing when it already finished."""
        self._finish_quietly("cancelled")

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
        fields.update(response_identity(self.state.model, self.state.response_id,
                                        self.state.finish_reason))  # fmt: skip
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


def response_identity(model: Any, response_id: Any, finish_reason: Any) -> dict[str, Any]:
    """model_id (the model the provider says answered, e.g. a dated version of the one
    asked for) and response_info ({"id", "finish_reason"}: the provider's response id and
    why it stopped), for what is known."""
    info = {"id": response_id, "finish_reason": finish_reason}
    info = {key: str(value) for key, value in info.items() if value}
    fields: dict[str, Any] = {"model_id": str(model)} if model else {}
    return fields | ({"response_info": info} if info else {})


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
