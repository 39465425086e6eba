"""Experiments: a dataset replayed through a model, its answers scored by rule evaluators
(docs/quality.md, "Experiments"). `ai-runs eval run`. SQL: ingest/tracking/sql/experiments.sql.

    outcome = run_experiment(tracker, "support-faq", model="gpt-4o-mini", name="mini-v2",
                             rules=[make_rule("length", max_chars=2000)])

- The experiment (name, dataset, provider, model, prompt, evaluators, created) is stored
  once per owner and name; running it again with the same name continues it: items
  already answered are not sent again (resumable, idempotent).
- One run per experiment (its id is the experiment's; variant = the experiment's name,
  tag `experiment`), one task per item through a tracked SDK client (ingest.track): the
  provider's usage priced like every other call (exact cost). A task's id is derived from
  (experiment, item), so an answer written before an interruption is linked, not asked
  for again.
- Each answered item's task is linked to its item (ai_experiment_items) and scored by
  every rule given: one boolean score per rule and task (replaced, not added, on a re-run).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ingest.errors import ValidationError
from ingest.sdk import track
from ingest.store.validation import label_field, long_text_field
from ingest.tracking.evaluation import evaluate_tasks
from ingest.tracking.rules import Rule
from ingest.tracking.tracker import Tracker

PROVIDERS = ("openai", "anthropic")
MAX_OUTPUT_TOKENS = 1024  # Anthropic requires max_tokens; the answer's bound
NAMESPACE = uuid.UUID("0b6f4d1e-52a4-4c0f-9a35-6f7e2d8c1a90")


@dataclass
class ExperimentOutcome:
    """What one `run_experiment` call did: the experiment and its run, items of the dataset,
    items answered now, items already answered before, tasks that failed (of all answered),
    scores written (new or replaced)."""

    experiment: dict[str, Any]
    run_id: uuid.UUID
    items: int = 0
    answered: int = 0
    already: int = 0
    failed: int = 0
    scores: int = 0


def task_id_of(experiment_id: uuid.UUID, item_id: uuid.UUID) -> uuid.UUID:
    """The task id of an item's answer in an experiment (the same on every re-run)."""
    return uuid.uuid5(NAMESPACE, f"{experiment_id}:{item_id}")


def run_experiment(
    tracker: Tracker,
    dataset: uuid.UUID | str,
    *,
    model: str,
    provider: str = "openai",
    name: str | None = None,
    prompt: str | None = None,
    rules: Sequence[Rule] = (),
    base_url: str | None = None,
    api_key: str | None = None,
    client: Any = None,
) -> ExperimentOutcome:
    """Replay every item of `dataset` through `model` of `provider` (openai: chat
    completions; anthropic: messages), with `prompt` as the system message when given;
    store and score as the module docstring says. `client`: an OpenAI/Anthropic client to
    use (default: one made with base_url and api_key, else the SDK's environment). The
    tracker's user owns the experiment and its run. ValidationError for a bad name, model,
    provider or a name already used otherwise; NotFoundError for a dataset the viewer does
    not have."""
    _check(provider, model)
    if prompt is not None:
        prompt = long_text_field("prompt", prompt)
    found = tracker.get_dataset(dataset)
    evaluators = [{"kind": r.kind, "version": r.version, "name": r.score_name} for r in rules]
    experiment = tracker.store_experiment(
        label_field("name", name or _default_name(found["name"], model)),
        dataset_id=found["id"], provider=provider, model=model, prompt=prompt,
        evaluators=evaluators, user_id=tracker.user_id or found["user_id"],
    )  # fmt: skip
    run = tracker.create_run(
        "custom",
        run_id=experiment["id"],
        name=f"experiment {experiment['name']}",
        variant=experiment["name"],
        tags=["experiment"],
        metadata={"experiment": experiment["name"], "dataset": found["name"], "model": model},
        settings={"model": model, "provider": provider},
        user_id=experiment["user_id"],
    )
    tracker.set_experiment_run(experiment["id"], run["id"])
    outcome = ExperimentOutcome(experiment, run["id"], items=len(found["items"]))
    pending = tracker.unanswered_items(experiment)
    outcome.already = outcome.items - len(pending)
    ids = {item["id"]: task_id_of(experiment["id"], item["id"]) for item in pending}
    stored = tracker.finished_tasks(list(ids.values()))
    asked = [item for item in pending if ids[item["id"]] not in stored]
    if asked:
        sdk = client or _client(provider, base_url, api_key)
        tracked = track(sdk, tracker, run=run["id"], service="experiment")
        for item in asked:
            _ask(tracked, provider, model, prompt, item, ids[item["id"]])
        tracker.flush()
    written = tracker.finished_tasks(list(ids.values()))
    links = [(item_id, task_id) for item_id, task_id in ids.items() if task_id in written]
    tracker.link_items(experiment["id"], links)
    outcome.answered = len(links)
    tasks = tracker.experiment_tasks(experiment["id"])
    outcome.failed = sum(1 for task in tasks if task["status"] != "completed")
    outcome.scores = _score(tracker, rules, tasks)
    return outcome


def _check(provider: str, model: str) -> None:
    if provider not in PROVIDERS:
        raise ValidationError("provider", f"unknown provider {provider!r}", PROVIDERS)
    if not isinstance(model, str) or not model.strip() or len(model) > 200:
        raise ValidationError("model", f"must be a model name (1..200 characters), got {model!r}")


def _default_name(dataset: str, model: str) -> str:
    text = "".join(c if c.isalnum() or c in "_.:/@+-" else "-" for c in f"{dataset}-{model}")
    return text[:100]


def _client(provider: str, base_url: str | None, api_key: str | None) -> Any:
    """An SDK client of `provider` (the package must be installed)."""
    try:
        if provider == "openai":
            import openai

            return openai.OpenAI(base_url=base_url, api_key=api_key or None, max_retries=1)
        import anthropic

        return anthropic.Anthropic(base_url=base_url, api_key=api_key or None, max_retries=1)
    except ImportError:
        raise ValidationError(
            "provider", f"the {provider} package is not installed (pip install {provider})"
        ) from None


def _ask(
    client: Any,
    provider: str,
    model: str,
    prompt: str | None,
    item: dict[str, Any],
    task_id: uuid.UUID,
) -> None:
    """Send one item; a failed call is recorded as a failed task by the tracked client."""
    messages = [
        {"role": m["role"], "content": m.get("content")}
        for m in item["input"]
        if m.get("role") in ("system", "developer", "user", "assistant")
    ]
    try:
        if provider == "openai":
            system = [{"role": "system", "content": prompt}] if prompt else []
            client.chat.completions.create(
                model=model, messages=system + messages, ai_task_id=task_id
            )
            return
        systems = [prompt] if prompt else []
        systems += [str(m["content"]) for m in messages if m["role"] in ("system", "developer")]
        kwargs: dict[str, Any] = {"system": "\n\n".join(systems)} if systems else {}
        client.messages.create(
            model=model,
            max_tokens=MAX_OUTPUT_TOKENS,
            messages=[m for m in messages if m["role"] in ("user", "assistant")],
            ai_task_id=task_id,
            **kwargs,
        )
    except Exception:  # noqa: BLE001 (the failure is the task's: recorded, not raised)
        return


def _score(tracker: Tracker, rules: Sequence[Rule], tasks: list[dict[str, Any]]) -> int:
    """One score per rule per task (replaced on a re-run), checked as every evaluator's
    (evaluation.evaluate_tasks); the number written."""
    scores = [
        result
        for rule in rules
        for _task, result in evaluate_tasks(rule, tasks)
        if isinstance(result, dict)
    ]
    return len(tracker.write_scores(scores)) if scores else 0
