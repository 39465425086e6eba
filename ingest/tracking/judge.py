"""The LLM judge: a model scores a task's answer with a versioned prompt (docs/quality.md).

The judge's calls go through our own tracked SDK clients (`ingest.track` on the real
`openai` or `anthropic` SDK, pointed at `base_url`), so each call is itself a task,
priced like any other: in one run per judge version (source type `custom`, tag
`evaluation`, its prompt, model and scale in the run's metadata), with service
`evaluation` and task_name `judge <score name>`. Evaluators never read tasks of service
`evaluation` (ingest/tracking/sql/evaluation.sql): a judge is never judged.

- The prompt has a name and a version (`JudgePrompt`); its text fills `{{input}}` (the
  task's last user message), `{{output}}` (its answer), `{{low}}` and `{{high}}` (the scale).
  The evaluator version is `<prompt name>@<prompt version>-` and a hash of the prompt text,
  provider, model and scale: a new prompt version, model or scale is a new evaluator
  version beside the old one.
- The answer is read as JSON `{"score": n, "reason": "..."}` (also inside a code fence or
  other text) or a bare number. An answer that cannot be read, or a score outside
  [low, high], is an EvaluatorError of kind `answer` (stored as an evaluator error, never as
  a score).
- A provider outage (connection error, timeout, 429, 5xx) is retried `attempts` times in
  all, waiting `backoff` seconds, doubled after each failure; then it is an EvaluatorError
  of kind `provider` with the attempts made (recorded; a later pass tries the task again).
  Another refusal (4xx) is a `provider` error at once.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.errors import ValidationError
from ingest.sdk import track
from ingest.store.score_checks import ScoreScale
from ingest.tracking.evaluation import EvaluatorError
from ingest.tracking.tracker import Tracker

PROVIDERS = ("openai", "anthropic")
MAX_TEXT = 8000  # characters of the task's input and answer put in the prompt
MAX_ANSWER_TOKENS = 300
SERVICE = "evaluation"  # the service of every judge call (never judged)
RUN_NAMESPACE = uuid.UUID("0a7c2f4e-4f0f-4d0c-9a56-61d1b5a5e0a1")  # judge run ids (uuid5)
DEFAULT_PROMPT_TEXT = """You grade an AI assistant's answer to a request.
Rate how well the answer serves the request, from {{low}} (useless or wrong) to {{high}}
(complete, correct and clear).
Reply with JSON only: {"score": <a number from {{low}} to {{high}}>, "reason": "<one sentence>"}

Request:
{{input}}

Answer:
{{output}}
"""
_PROMPT_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
_FENCE = re.compile(r"^```[A-Za-z]*\s*|\s*```$")
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True)
class JudgePrompt:
    """A versioned judge prompt: name and version (1..40 letters, digits, `_ . -`), text."""

    name: str = "quality"
    version: str = "1"
    text: str = DEFAULT_PROMPT_TEXT

    def __post_init__(self) -> None:
        for key in ("name", "version"):
            value = getattr(self, key)
            if not isinstance(value, str) or not _PROMPT_PART.fullmatch(value):
                raise ValidationError(
                    f"prompt_{key}", f"must be 1..40 letters, digits, _ . -, got {value!r}"
                )
        if "{{output}}" not in self.text:
            raise ValidationError("prompt", "the prompt must contain {{output}} (the answer)")

    @classmethod
    def from_file(cls, path: str | Path, name: str, version: str) -> JudgePrompt:
        """The prompt in file `path` as version `version` of prompt `name`."""
        try:
            text = Path(path).read_text()
        except OSError as error:
            raise ValidationError("prompt", f"cannot read {path}: {error.strerror}") from None
        return cls(name, version, text)

    def fill(self, request: str, answer: str, scale: ScoreScale) -> str:
        return (
            self.text.replace("{{low}}", f"{scale.low:g}")
            .replace("{{high}}", f"{scale.high:g}")
            .replace("{{input}}", request[:MAX_TEXT])
            .replace("{{output}}", answer[:MAX_TEXT])
        )


@dataclass
class Judge:
    """An LLM judge (see the module docstring). low/high: the scale its scores lie in."""

    model: str
    provider: str = "openai"
    prompt: JudgePrompt = field(default_factory=JudgePrompt)
    low: float = 1.0
    high: float = 5.0
    name: str = ""
    base_url: str | None = None
    api_key: str | None = None
    attempts: int = 3
    backoff: float = 0.5
    timeout: float = 60.0
    batch: int = 50  # tasks per transaction (each waits for its calls)
    evaluator = "judge"
    source = "model"
    skip_done = True  # a judged task is not judged again (its calls cost money)
    reads_request = True

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValidationError("provider", f"unknown value {self.provider!r}", PROVIDERS)
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValidationError("model", "the judge needs a model")
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise ValidationError("attempts", f"must be a whole number, got {self.attempts!r}")
        if not 1 <= self.attempts <= 10:
            raise ValidationError("attempts", f"must be 1..10, got {self.attempts}")
        if not 0 <= self.backoff <= 60:
            raise ValidationError("backoff", f"must be 0..60 seconds, got {self.backoff}")
        self.scale = ScoreScale("numeric", self.low, self.high)
        if self.low is None or self.high is None:
            raise ValidationError("min", "the judge's scale needs both bounds")
        self._session: tuple[Tracker, Any, uuid.UUID] | None = None

    @property
    def score_name(self) -> str:
        return self.name or self.prompt.name

    @property
    def declared_settings(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt.name, "prompt_version": self.prompt.version,
            "prompt_text": self.prompt.text, "provider": self.provider, "model": self.model,
            "low": self.low, "high": self.high, **({"name": self.name} if self.name else {}),
        }  # fmt: skip

    @property
    def version(self) -> str:
        text = json.dumps(self.declared_settings, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        return f"{self.prompt.name}@{self.prompt.version}-{digest}"

    @contextmanager
    def session(self, url: str | None = None) -> Iterator[uuid.UUID]:
        """Open the tracked client and the judge's run; yields the run id. Every call made
        inside is written (flushed) when the session ends."""
        with Tracker(url) as tracker:
            run = tracker.create_run(
                "custom", run_id=uuid.uuid5(RUN_NAMESPACE, self.version),
                name=f"Evaluation: judge {self.score_name} {self.version}",
                tags=["evaluation", "judge"],
                metadata={"evaluation": {"evaluator": self.evaluator,
                                         "evaluator_version": self.version,
                                         **self.declared_settings}},
            )  # fmt: skip
            client = track(
                self._client(), tracker, run=run["id"], service=SERVICE,
                task_name=f"judge {self.score_name}",
            )  # fmt: skip
            self._session = (tracker, client, run["id"])
            try:
                yield run["id"]
            finally:
                self._session = None
                tracker.flush()

    def evaluate(self, task: dict[str, Any]) -> tuple[float, str | None]:
        """(score, reason) for one task row (request_data, response_text); EvaluatorError
        when the answer cannot be read or the provider keeps failing."""
        if self._session is None:
            raise RuntimeError("Judge.evaluate needs an open session(): with judge.session():")
        prompt = self.prompt.fill(request_text(task.get("request_data")),
                                  task.get("response_text") or "", self.scale)  # fmt: skip
        answer, attempts = self._ask(prompt)
        try:
            return read_answer(answer, self.scale)
        except ValidationError as error:
            raise EvaluatorError("answer", f"{error.problem}", attempts) from None

    def _client(self) -> Any:
        if self.provider == "anthropic":
            import anthropic

            return anthropic.Anthropic(api_key=self.api_key, base_url=self.base_url,
                                       max_retries=0, timeout=self.timeout)  # fmt: skip
        import openai

        return openai.OpenAI(api_key=self.api_key, base_url=self.base_url, max_retries=0,
                             timeout=self.timeout)  # fmt: skip

    def _ask(self, prompt: str) -> tuple[str, int]:
        """The model's answer text and the attempts it took (see the module docstring)."""
        assert self._session is not None
        client = self._session[1]
        retried, refused = _provider_errors(self.provider)
        wait = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return self._call(client, prompt), attempt
            except retried as error:
                problem = _describe(error)
                if attempt < self.attempts:
                    time.sleep(wait)
                    wait *= 2
            except refused as error:
                raise EvaluatorError("provider", _describe(error), attempt) from None
        raise EvaluatorError(
            "provider", f"failed {self.attempts} times, last: {problem}", self.attempts
        )

    def _call(self, client: Any, prompt: str) -> str:
        messages = [{"role": "user", "content": prompt}]
        if self.provider == "anthropic":
            reply = client.messages.create(model=self.model, max_tokens=MAX_ANSWER_TOKENS,
                                           messages=messages)  # fmt: skip
            return "".join(getattr(block, "text", "") for block in reply.content)
        reply = client.chat.completions.create(model=self.model, messages=messages)
        return reply.choices[0].message.content or ""


def _provider_errors(provider: str) -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(errors that are retried: an outage; errors that are not: another refusal)."""
    sdk: Any
    if provider == "anthropic":
        import anthropic as sdk
    else:
        import openai as sdk
    retried = (sdk.APIConnectionError, sdk.RateLimitError, sdk.InternalServerError)
    return retried, (sdk.APIStatusError,)


def _describe(error: Exception) -> str:
    status = getattr(error, "status_code", None)
    return f"{type(error).__name__}" + (f" {status}" if status else "") + f": {error}"[:300]


def read_answer(answer: str, scale: ScoreScale) -> tuple[float, str | None]:
    """(score, reason) read from a judge's answer; ValidationError naming `value` when it
    holds no score or one outside the scale."""
    text = _FENCE.sub("", answer.strip())
    score, reason = _json_score(text)
    if score is None:
        try:
            score = float(text)
        except ValueError:
            raise ValidationError(
                "value", f"no score in the judge's answer: {answer[:200]!r}"
            ) from None
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise ValidationError("value", f"the judge's score is not a number: {score!r}")
    fields = {"data_type": "numeric", "value": float(score), "evaluator": "judge"}
    scale.check(fields)
    return float(score), reason if isinstance(reason, str) else None


def _json_score(text: str) -> tuple[Any, Any]:
    """(score, reason) of a JSON object in `text`; (None, None) when there is none."""
    for candidate in (text, *_OBJECT.findall(text)):
        try:
            parsed = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(parsed, dict) and "score" in parsed:
            return parsed["score"], parsed.get("reason")
    return None, None


def request_text(request: Any) -> str:
    """What the task was asked: its last user message's text (chat messages or a
    Responses `input`), else its request as JSON."""
    if isinstance(request, dict):
        messages = request.get("messages")
        if isinstance(request.get("input"), str):
            return request["input"]
        if isinstance(messages, list):
            for message in reversed(messages):
                if isinstance(message, dict) and message.get("role") == "user":
                    return _content_text(message.get("content"))
    return json.dumps(request, default=str)[:MAX_TEXT] if request else ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return json.dumps(content, default=str)
