"""Prompt templates made from runs (docs/tracking.md, "Templates from runs").

A run becomes a version of a named template: its messages with the run's variable_values
put back as `{{placeholders}}` (`to_template`, pure), and its settings. A run made from a
template (`create_run_from_template`) has its placeholders filled (`fill`, pure: a
placeholder without a value is a ValidationError naming the missing ones) and records the
template and version, so `template_rollup` compares cost, latency and quality scores per
version. Templates are kept in Postgres (migration 0019) under row-level security like runs.
TemplateMethods mixes these into Tracker. SQL: ingest/tracking/sql/templates.sql.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ingest.errors import NotFoundError, ValidationError
from ingest.store.limits import check_text
from ingest.store.validation import parse_uuid

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")
_BOOKKEEPING = ("task_id", "timestamp", "metadata")
NAME_LIMIT = 200
INT4_MAX = 2_147_483_647  # a version is a Postgres integer


def to_template(
    messages: Sequence[Mapping[str, Any]], variable_values: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[str]]:
    """(messages with each variable's value replaced by `{{name}}`, the placeholders they
    hold, sorted). Values are text or numbers; longer values are put back first, so a value
    inside another does not split it. Our bookkeeping keys (task_id, timestamp, metadata)
    are left out."""
    values = sorted(
        (
            (str(value), name)
            for name, value in variable_values.items()
            if isinstance(value, str | int | float) and not isinstance(value, bool)
            and str(value).strip()
        ),
        key=lambda pair: -len(pair[0]),
    )  # fmt: skip

    def put_back(text: str) -> str:
        if not values:
            return text
        pattern = re.compile("|".join(re.escape(value) for value, _ in values))
        names = dict(values)
        return pattern.sub(lambda match: "{{" + names[match.group(0)] + "}}", text)

    result = [
        _map_text({k: v for k, v in m.items() if k not in _BOOKKEEPING}, put_back) for m in messages
    ]
    return result, placeholders_of(result)


def placeholders_of(messages: Any) -> list[str]:
    """The names of every {{placeholder}} in the texts of `messages`, sorted."""
    return sorted(set(PLACEHOLDER.findall(json.dumps(messages, ensure_ascii=False))))


def fill(messages: Sequence[Mapping[str, Any]], values: Mapping[str, Any]) -> list[dict]:
    """`messages` with each {{placeholder}} replaced by its value. ValidationError on
    variable_values naming the placeholders that have no value."""
    missing = [name for name in placeholders_of(list(messages)) if name not in values]
    if missing:
        raise ValidationError(
            "variable_values",
            "no value for the placeholders " + ", ".join(missing),
            missing,
        )

    def put_in(text: str) -> str:
        return PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), text)

    return [_map_text(dict(m), put_in) for m in messages]


def _map_text(value: Any, change: Callable[[str], str]) -> Any:
    """`value` with `change` applied to every string inside it (keys and roles kept)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, Mapping):
        return {
            k: v if k in ("role", "type", "id", "tool_call_id") else _map_text(v, change)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_map_text(item, change) for item in value]
    return value


def export_json(template: Mapping[str, Any]) -> str:
    """A template version (as get_template returns it) as JSON text."""
    return json.dumps(template, indent=2, ensure_ascii=False, default=str)


class TemplateMethods:
    """Tracker mix-in: templates from runs (see module docstring)."""

    user_id: str | None
    _queries: dict[str, Any]
    _transaction: Callable[..., AbstractContextManager[psycopg.Connection]]
    _one: Callable[..., dict | None]
    create_run: Callable[..., dict[str, Any]]

    def template_from_run(
        self, run_id: uuid.UUID | str, name: str, *, user_id: str | None = None
    ) -> dict[str, Any]:
        """Make run `run_id` the next version of template `name` (created when the owner has
        none of that name): its messages with its variable_values as {{placeholders}}, its
        settings. Owner: user_id, else this tracker's user, else the run's owner. Returns
        the version as get_template does. NotFoundError for a run the viewer may not read."""
        name = _checked_name(name)
        run = parse_uuid("run_id", run_id)
        with self._transaction() as conn:
            row = self._one(conn, "get_run", run_id=run)
            if row is None:
                raise NotFoundError("run", run)
            owner = user_id or self.user_id or row.get("user_id")
            if not owner:
                raise ValidationError("user_id", "is required: the run has no owner to inherit")
            check_text("user_id", owner)
            template = self._one(conn, "insert_template", user_id=owner, name=name) or self._one(
                conn, "template_by_name", user_id=owner, name=name
            )
            if template is None:
                raise NotFoundError("template", name)
            messages, placeholders = to_template(row["messages"], row["variable_values"] or {})
            self._one(conn, "lock_template", template_id=template["id"])
            version = self._one(
                conn,
                "insert_template_version",
                template_id=template["id"],
                messages=Jsonb(messages),
                settings=Jsonb(row["settings"] or {}),
                placeholders=placeholders,
                source_run_id=run,
                created_by=self.user_id or owner,
            )
        return _version_body(template, version)

    def get_template(self, template: uuid.UUID | str, version: int | None = None) -> dict[str, Any]:
        """One version of a template (the latest by default), by id or by the name of one of
        this tracker's user's templates: {template_id, name, owner, version, messages,
        settings, placeholders, source_run_id, created_by, created_at, versions}. A version the
        template does not have is a ValidationError listing those it has."""
        _check_version(version)
        with self._transaction(consistent=True) as conn:
            found = self._template(conn, template)
            row = self._one(conn, "template_version", template_id=found["id"], version=version)
            history = conn.execute(
                self._queries["template_versions"].psycopg, {"template_id": found["id"]}
            ).fetchall()
            if row is None:  # the template exists and is readable: the number is wrong
                numbers = [h["version"] for h in history]
                raise ValidationError(
                    "version", f"{found['name']} has no version {version}", numbers
                )
        return {**_version_body(found, row), "versions": history}

    def create_run_from_template(
        self,
        template: uuid.UUID | str,
        variable_values: Mapping[str, Any],
        *,
        version: int | None = None,
        source_type: str = "prompt",
        **run_fields: Any,
    ) -> dict[str, Any]:
        """A new run from a template version (the latest by default): its messages with
        the placeholders filled from variable_values, its settings, the variable values;
        the run records template and version. ValidationError (field variable_values)
        naming the placeholders without a value, and nothing written."""
        chosen = self.get_template(template, version)
        if not isinstance(variable_values, Mapping):
            raise ValidationError("variable_values", "must be an object of name -> value")
        messages = fill(chosen["messages"], variable_values)
        with self._transaction() as conn:  # the run and its link, or neither
            run = self.create_run(
                source_type,
                messages=messages,
                settings=chosen["settings"],
                variable_values=dict(variable_values),
                **run_fields,
            )
            conn.execute(
                self._queries["link_template_run"].psycopg,
                {
                    "run_id": run["id"],
                    "template_id": chosen["template_id"],
                    "version": chosen["version"],
                },
            )
        return {**run, "template_id": chosen["template_id"], "template_version": chosen["version"]}

    def run_template(self, run_id: uuid.UUID | str) -> dict[str, Any] | None:
        """{template_id, name, version} of the template a run was made from, or None."""
        run = parse_uuid("run_id", run_id)
        with self._transaction() as conn:
            return self._one(conn, "run_template", run_id=run)

    def template_rollup(self, template: uuid.UUID | str) -> list[dict[str, Any]]:
        """Per version of a template: runs, tasks, total_cost, total_tokens, cost_per_run,
        mean_total_time, p95_total_time, mean_time_to_first_token (ms), failed_tasks, and
        scores ({name: {"count", "mean"}} of the scores of those runs and their tasks; a
        boolean's mean is its share of true, a categorical's None), over the runs made
        from it that this viewer may read."""
        with self._transaction(consistent=True) as conn:
            found = self._template(conn, template)
            return conn.execute(
                self._queries["template_rollup"].psycopg, {"template_id": found["id"]}
            ).fetchall()

    def _template(self, conn: psycopg.Connection, template: uuid.UUID | str) -> dict[str, Any]:
        try:
            template_id = uuid.UUID(str(template))
        except ValueError:
            row = self._one(conn, "template_by_name", user_id=self.user_id, name=str(template))
        else:
            row = self._one(conn, "template_by_id", template_id=template_id)
        if row is None:
            raise NotFoundError("template", template)
        return row


def _checked_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name", f"must be a non-empty string, got {name!r}")
    if len(name.strip()) > NAME_LIMIT:
        raise ValidationError("name", f"must be at most {NAME_LIMIT} characters")
    return check_text("name", name.strip())


def _check_version(version: Any) -> None:
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= INT4_MAX
    ):
        raise ValidationError("version", f"must be a whole number 1..{INT4_MAX}, got {version!r}")


def _version_body(template: Mapping[str, Any], version: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "template_id": template["id"],
        "name": template["name"],
        "owner": template["user_id"],
        "version": version["version"],
        "messages": version["messages"],
        "settings": version["settings"],
        "placeholders": list(version["placeholders"]),
        "source_run_id": version["source_run_id"],
        "created_by": version["created_by"],
        "created_at": version["created_at"],
    }
