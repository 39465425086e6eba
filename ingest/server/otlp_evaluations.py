"""OpenTelemetry GenAI evaluation events become scores (docs/quality.md, docs/server.md).

An evaluator reports its verdict on an LLM call as a `gen_ai.evaluation.result` event:
a log record to /v1/logs, or an event on a span to /v1/traces, parented to the span of the
call it evaluated. Its attributes (OpenTelemetry GenAI semantic conventions):

- `gen_ai.evaluation.name` (required): what was evaluated, e.g. `Relevance`: the score's
  name and its evaluator;
- `gen_ai.evaluation.score.value`: the number (a boolean value makes a boolean score);
- `gen_ai.evaluation.score.label`: the verdict in words (`pass`, `relevant`); without a
  value it is a categorical score, beside a value it is the value's label;
- `gen_ai.evaluation.explanation`: why, kept as the score's comment;
- `error.type`: the evaluation itself failed: no score is written.

The score belongs to the task of the evaluated span (the call's kept task, one call one
task: ingest/server/otlp_calls.py), authored by the key's user. Its source is `model` when
the event names the model that judged (`gen_ai.request.model`, `gen_ai.response.model`,
`gen_ai.provider.name` or `gen_ai.system`: an LLM judge), else `api`. The same event sent
again replaces the score (one per task, name, evaluator and author). Events that come
before their span wait with the content events (ingest/server/otlp_logs.py) and are
scored when the span is written.
"""

from __future__ import annotations

import math
from typing import Any

from ingest.errors import ValidationError
from ingest.store.score_checks import MAX_COMMENT, MAX_LABEL, validate_score

EVALUATION_EVENT = "gen_ai.evaluation.result"
NAME = "gen_ai.evaluation.name"
VALUE = "gen_ai.evaluation.score.value"
LABEL = "gen_ai.evaluation.score.label"
EXPLANATION = "gen_ai.evaluation.explanation"
ERROR = "error.type"
# Attributes naming the model that judged: the evaluator is an LLM judge.
JUDGE_MODEL = (
    "gen_ai.request.model", "gen_ai.response.model", "gen_ai.provider.name", "gen_ai.system",
)  # fmt: skip


def score_of(attributes: dict[str, Any], user: str, task_id: Any) -> dict[str, Any] | None:
    """The validated score of one evaluation event of task `task_id` (None when it holds no
    verdict: no value and no label, or the evaluation failed). ValidationError naming the
    attribute when the name, value or label cannot be stored."""
    if attributes.get(ERROR):
        return None
    value, label = attributes.get(VALUE), attributes.get(LABEL)
    if value is None and label in (None, ""):
        return None
    name = attributes.get(NAME)
    if not isinstance(name, str) or not name:
        raise ValidationError(NAME, "is required: the name of the evaluation")
    if value is not None and not isinstance(value, bool | int | float):
        raise ValidationError(VALUE, f"must be a number or a boolean, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(VALUE, f"must be finite, got {value!r}")
    if label is not None:
        label = str(label)[:MAX_LABEL] or None
    explanation = attributes.get(EXPLANATION)
    judged = any(attributes.get(key) for key in JUDGE_MODEL)
    fields = {
        "name": name, "evaluator": name, "task_id": task_id, "author": user,
        "value": value, "label": label if value is not None else None,
        "source": "model" if judged else "api",
        "comment": None if explanation is None else str(explanation)[:MAX_COMMENT],
    }  # fmt: skip
    if value is None:
        fields["value"] = label  # a category
    elif isinstance(value, bool):
        fields["label"] = None  # a boolean's label is its truth
    try:
        return validate_score(fields)
    except ValidationError as error:
        field = {"name": NAME, "value": VALUE, "label": LABEL}.get(error.field, error.field)
        raise ValidationError(field, error.problem, error.allowed) from None
