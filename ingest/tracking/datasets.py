"""Dataset methods of `ingest.Tracker`: named sets of inputs with expected answers, made from
the tasks a filter selects or imported from JSONL (docs/quality.md, "Datasets").
SQL: ingest/tracking/sql/datasets.sql.

An item is `input` (the messages sent: a list of {role, content, ...}), `expected_output`
(the answer kept as the expected one: text, editable, None when there is none) and
`metadata` (a JSON object). An item made from a task keeps the task's request messages as
its input, its response text as the expected output and the task in `source_task_id`
(a task becomes at most one item of a dataset, so making a dataset from a filter again adds
only the tasks not yet in it).

Row-level security (migration 0023): a dataset is read and changed by its owner and by
admins; to anyone else it does not exist (NotFoundError). Bad input is a ValidationError
naming the field (`items[3].input[0].role`); nothing is written then.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ingest.errors import NotFoundError, ValidationError
from ingest.store.limits import check_json_value
from ingest.store.validation import (
    label_field,
    long_text_field,
    parse_uuid,
    timestamp_field,
    validate_message,
)
from ingest.store.vocabulary import FINISHED_TASK_STATUSES

DATASET_FIELDS = ("id", "input", "expected_output", "metadata")
MAX_ITEMS_FROM_TASKS = 100_000  # items one `dataset_from_tasks` call adds at most


class DatasetMethods:
    """The dataset half of Tracker (see ingest.tracking.tracker for the shared contract)."""

    viewer: str | None
    user_id: str | None
    _queries: dict[str, Any]
    _transaction: Callable[..., AbstractContextManager[psycopg.Connection]]
    _one: Callable[..., dict | None]

    def create_dataset(
        self, name: str, *, description: str | None = None, user_id: str | None = None
    ) -> dict[str, Any]:
        """Create dataset `name` of user_id (default: this tracker's user); the owner's
        existing dataset of that name is returned as it is (a safe retry). Returns
        {id, user_id, name, description, created_at, updated_at}."""
        name = label_field("name", name)
        owner = self._dataset_owner(user_id)
        if description is not None:
            description = long_text_field("description", description)[:4000]
        with self._transaction() as conn:
            row = self._one(
                conn, "insert_dataset", user_id=owner, name=name, description=description
            )
            return row or self._dataset(conn, name, owner)

    def get_dataset(self, dataset: uuid.UUID | str, *, user_id: str | None = None) -> dict:
        """The dataset with this id, or this name of user_id (default: this tracker's
        user), with `items` (each {id, input, expected_output, metadata, source_task_id,
        created_at, updated_at}, in the order added). NotFoundError if the viewer has none."""
        with self._transaction(consistent=True) as conn:
            row = self._dataset(conn, dataset, user_id)
            items = conn.execute(
                self._queries["dataset_items"].psycopg, {"dataset_id": row["id"]}
            ).fetchall()
        return {**row, "items": items}

    def list_datasets(self) -> list[dict[str, Any]]:
        """The datasets the viewer may read, with `items` (their number)."""
        with self._transaction() as conn:
            return conn.execute(self._queries["list_datasets"].psycopg).fetchall()

    def dataset_from_tasks(
        self,
        dataset: uuid.UUID | str,
        *,
        since: datetime | str,
        until: datetime | str | None = None,
        models: Iterable[str] = (),
        variants: Iterable[str] = (),
        run_id: uuid.UUID | str | None = None,
        statuses: Iterable[str] = ("completed",),
        limit: int = MAX_ITEMS_FROM_TASKS,
    ) -> int:
        """Add to `dataset` (created first when a name the owner has none of) one item per
        task the filter selects and the dataset does not hold yet: finished tasks created
        in [since, until) of `models`, `variants`, run `run_id`, `statuses` (empty: any),
        at most `limit`, oldest first. Returns the number of items added."""
        params = _task_filter(since, until, models, variants, run_id, statuses, limit)
        with self._transaction() as conn:
            found = self._dataset(conn, dataset, None, create=True)
            tasks = conn.execute(
                self._queries["dataset_source_tasks"].psycopg,
                {**params, "dataset_id": found["id"]},
            ).fetchall()
            added = 0
            for task in tasks:
                item = item_from_task(task)
                row = self._one(
                    conn,
                    "upsert_dataset_item",
                    id=None,
                    dataset_id=found["id"],
                    input=Jsonb(item["input"]),
                    expected_output=item["expected_output"],
                    metadata=Jsonb(item["metadata"]),
                    source_task_id=task["task_id"],
                )
                added += row is not None
            self._one(conn, "touch_dataset", dataset_id=found["id"])
        return added

    def import_dataset(
        self, dataset: uuid.UUID | str, items: Iterable[Mapping[str, Any] | str]
    ) -> dict[str, int]:
        """Add items (dicts, or JSONL lines) to `dataset` (created when a name the owner has
        none of), in one transaction: all or none. An item with the `id` of an item of
        this dataset replaces it (an export imported again changes nothing twice).
        Returns {"inserted": n, "replaced": m}."""
        checked = [check_item(item, f"items[{i}]") for i, item in enumerate(items)]
        counts = {"inserted": 0, "replaced": 0}
        with self._transaction() as conn:
            found = self._dataset(conn, dataset, None, create=True)
            for i, item in enumerate(checked):
                inserted = self._put_item(conn, found["id"], item, f"items[{i}].id")
                counts["inserted" if inserted else "replaced"] += 1
            self._one(conn, "touch_dataset", dataset_id=found["id"])
        return counts

    def export_dataset(self, dataset: uuid.UUID | str) -> Iterator[str]:
        """The dataset's items as JSONL lines ({id, input, expected_output, metadata,
        source_task_id}), in the order added: what `import_dataset` reads back."""
        for item in self.get_dataset(dataset)["items"]:
            record = {key: item[key] for key in (*DATASET_FIELDS, "source_task_id")}
            yield json.dumps(record, default=str, ensure_ascii=False)

    def edit_dataset_item(
        self, item_id: uuid.UUID | str, *, expected_output: Any = ..., metadata: Any = None
    ) -> dict[str, Any]:
        """Change an item's expected output (None clears it; left out: unchanged) and/or
        metadata (a JSON object replacing it). Returns the item. NotFoundError when the
        viewer has no such item."""
        item = parse_uuid("item_id", item_id)
        set_expected = expected_output is not ...
        if set_expected and expected_output is not None:
            expected_output = long_text_field("expected_output", expected_output)
        if metadata is not None:
            metadata = Jsonb(_metadata("metadata", metadata))
        with self._transaction() as conn:
            row = self._one(
                conn,
                "edit_dataset_item",
                id=item,
                set_expected=set_expected,
                expected_output=expected_output if set_expected else None,
                metadata=metadata,
            )
        if row is None:
            raise NotFoundError("dataset item", item)
        return row

    # ------------------------------------------------------------ plumbing

    def _dataset_owner(self, user_id: str | None) -> str:
        owner = user_id or self.user_id or self.viewer
        if not owner:
            raise ValidationError("user_id", "a dataset needs its owner (an ai_users id)")
        return owner

    def _dataset(
        self,
        conn: psycopg.Connection,
        dataset: uuid.UUID | str,
        user_id: str | None,
        *,
        create: bool = False,
    ) -> dict[str, Any]:
        """The dataset by id, or by name of its owner (created when `create`)."""
        try:
            row = self._one(conn, "dataset_by_id", dataset_id=uuid.UUID(str(dataset)))
        except ValueError:
            name = label_field("dataset", str(dataset))
            owner = self._dataset_owner(user_id)
            row = self._one(conn, "dataset_by_name", user_id=owner, name=name)
            if row is None and create:
                row = self._one(conn, "insert_dataset", user_id=owner, name=name, description=None)
        if row is None:
            raise NotFoundError("dataset", dataset)
        return row

    def _put_item(
        self, conn: psycopg.Connection, dataset_id: uuid.UUID, item: dict[str, Any], field: str
    ) -> bool:
        """Write one checked item; True when new, False when it replaced one."""
        values = {
            "id": item["id"],
            "dataset_id": dataset_id,
            "input": Jsonb(item["input"]),
            "expected_output": item["expected_output"],
            "metadata": Jsonb(item["metadata"]),
        }
        if item["id"] is not None:
            row = self._one(conn, "replace_dataset_item", **values)
            if row is not None:
                return False
        row = self._one(conn, "upsert_dataset_item", **values, source_task_id=None)
        if row is None:
            raise ValidationError(field, f"{item['id']} is an item of another dataset")
        return True


def check_item(item: Mapping[str, Any] | str, field: str = "item") -> dict[str, Any]:
    """One dataset item as the table holds it ({id, input, expected_output, metadata}), from
    a dict or a JSON line; ValidationError naming the field (`item.input[2].role`)."""
    if isinstance(item, str):
        try:
            item = json.loads(item)
        except ValueError as error:
            raise ValidationError(field, f"is not JSON: {error}") from None
    if not isinstance(item, Mapping):
        raise ValidationError(field, f"must be a JSON object, got {type(item).__name__}")
    unknown = sorted(set(item) - {*DATASET_FIELDS, "source_task_id"})
    if unknown:
        raise ValidationError(f"{field}.{unknown[0]}", "unknown field", list(DATASET_FIELDS))
    messages = item.get("input")
    if not isinstance(messages, list) or not messages:
        raise ValidationError(f"{field}.input", "must be a non-empty list of messages")
    checked = [validate_message(m, field=f"{field}.input[{i}]") for i, m in enumerate(messages)]
    expected = item.get("expected_output")
    if expected is not None:
        expected = long_text_field(f"{field}.expected_output", expected)
    item_id = item.get("id")
    return {
        "id": None if item_id is None else parse_uuid(f"{field}.id", item_id),
        "input": checked,
        "expected_output": expected,
        "metadata": _metadata(f"{field}.metadata", item.get("metadata") or {}),
    }


def item_from_task(task: Mapping[str, Any]) -> dict[str, Any]:
    """An item from a task row (request_data, response_text, task_id, model, provider,
    variant): the request's messages (OpenAI chat `messages`, Anthropic `system` +
    `messages`, Responses `instructions` + `input`) as input, the response as expected."""
    request = task.get("request_data") or {}
    messages: list[Any] = []
    system = request.get("system") or request.get("instructions")
    if isinstance(system, str) and system:
        messages.append({"role": "system", "content": system})
    body = request.get("messages")
    if body is None:
        body = request.get("input")
    if isinstance(body, str):
        body = [{"role": "user", "content": body}]
    messages += [m for m in body or [] if isinstance(m, dict) and m.get("role")]
    source = {k: task.get(k) for k in ("task_id", "run_id", "provider", "model", "variant")}
    return {
        "input": messages or [{"role": "user", "content": ""}],
        "expected_output": task.get("response_text"),
        "metadata": {"source": {k: None if v is None else str(v) for k, v in source.items()}},
    }


def _metadata(field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(field, f"must be a JSON object, got {type(value).__name__}")
    check_json_value(field, value)
    return value


def _task_filter(
    since: datetime | str,
    until: datetime | str | None,
    models: Iterable[str],
    variants: Iterable[str],
    run_id: uuid.UUID | str | None,
    statuses: Iterable[str],
    limit: int,
) -> dict[str, Any]:
    statuses = list(statuses) or list(FINISHED_TASK_STATUSES)
    bad = [s for s in statuses if s not in FINISHED_TASK_STATUSES]
    if bad:
        raise ValidationError("statuses", f"unknown or unfinished {bad}", FINISHED_TASK_STATUSES)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10**6:
        raise ValidationError("limit", f"must be a whole number 1..1000000, got {limit!r}")
    return {
        "since": timestamp_field("since", since),
        "until": None if until is None else timestamp_field("until", until),
        "models": list(models),
        "variants": [label_field("variants", v) for v in variants],
        "run_id": None if run_id is None else parse_uuid("run_id", run_id),
        "statuses": statuses,
        "limit": limit,
    }
