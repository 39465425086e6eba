"""Experiment methods of `ingest.Tracker`: what an experiment stores (docs/quality.md,
"Experiments"); the replay itself is ingest/tracking/experiments.py.
SQL: ingest/tracking/sql/experiments.sql.

An experiment is (owner, name) -> dataset, provider, model, prompt, the evaluators it was
scored with, its run, created; ai_experiment_items links each answered item to its task.
Row-level security (migration 0023): the owner's and admins'; NotFoundError for others.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ingest.errors import NotFoundError, ValidationError
from ingest.store.validation import label_field


class ExperimentMethods:
    """The experiment half of Tracker (see ingest.tracking.tracker for the shared contract)."""

    viewer: str | None
    user_id: str | None
    _queries: dict[str, Any]
    _transaction: Callable[..., AbstractContextManager[psycopg.Connection]]
    _one: Callable[..., dict | None]

    def store_experiment(
        self,
        name: str,
        *,
        dataset_id: uuid.UUID,
        provider: str,
        model: str,
        prompt: str | None = None,
        evaluators: Sequence[dict[str, Any]] = (),
        user_id: str | None = None,
    ) -> dict[str, Any]:
        """Experiment `name` of user_id (default: this tracker's user): created now, or the
        one stored before with the same dataset, provider, model and prompt (a re-run);
        ValidationError on `name` when it exists with others."""
        name = label_field("name", name)
        owner = user_id or self.user_id or self.viewer
        if not owner:
            raise ValidationError("user_id", "an experiment needs its owner (an ai_users id)")
        with self._transaction() as conn:
            row = self._one(
                conn, "insert_experiment", user_id=owner, name=name, dataset_id=dataset_id,
                provider=provider, model=model, prompt=prompt, evaluators=Jsonb(list(evaluators)),
            ) or self._one(conn, "experiment_by_name", user_id=owner, name=name)  # fmt: skip
            if row is None:
                raise NotFoundError("experiment", name)
            if (row["dataset_id"], row["provider"], row["model"], row["prompt"]) != (
                dataset_id, provider, model, prompt,
            ):  # fmt: skip
                raise ValidationError(
                    "name",
                    f"experiment {name!r} already exists with another dataset, provider, model "
                    "or prompt; choose another name",
                )
        return row

    def set_experiment_run(self, experiment_id: uuid.UUID, run_id: uuid.UUID) -> None:
        """Record the run an experiment's tasks belong to."""
        with self._transaction() as conn:
            self._one(conn, "set_experiment_run", experiment_id=experiment_id, run_id=run_id)

    def get_experiment(self, experiment: uuid.UUID | str) -> dict[str, Any]:
        """The experiment with this id, or this name of this tracker's user."""
        with self._transaction() as conn:
            try:
                row = self._one(conn, "experiment_by_id", experiment_id=uuid.UUID(str(experiment)))
            except ValueError:
                owner = self.user_id or self.viewer
                row = self._one(conn, "experiment_by_name", user_id=owner, name=str(experiment))
        if row is None:
            raise NotFoundError("experiment", experiment)
        return row

    def unanswered_items(self, experiment: dict[str, Any]) -> list[dict[str, Any]]:
        """The items of the experiment's dataset not yet linked to a task: id, input,
        expected_output, in the dataset's order."""
        with self._transaction() as conn:
            return conn.execute(
                self._queries["unanswered_items"].psycopg,
                {"dataset_id": experiment["dataset_id"], "experiment_id": experiment["id"]},
            ).fetchall()

    def finished_tasks(self, task_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these task ids are stored and finished (and visible to the viewer)."""
        if not task_ids:
            return set()
        with self._transaction() as conn:
            rows = conn.execute(
                self._queries["stored_tasks"].psycopg, {"task_ids": list(task_ids)}
            ).fetchall()
        return {row["task_id"] for row in rows}

    def link_items(
        self, experiment_id: uuid.UUID, links: Sequence[tuple[uuid.UUID, uuid.UUID]]
    ) -> None:
        """Record (item id, task id) answers of an experiment, in one transaction (an item
        already linked keeps its task)."""
        with self._transaction() as conn:
            for item_id, task_id in links:
                self._one(
                    conn, "link_item", experiment_id=experiment_id, item_id=item_id,
                    task_id=task_id,
                )  # fmt: skip

    def experiment_tasks(self, experiment_id: uuid.UUID) -> list[dict[str, Any]]:
        """Every answered item of an experiment: item_id, task_id, run_id, status,
        response_text, total_time, cost, expected_output; in the dataset's order."""
        with self._transaction() as conn:
            return conn.execute(
                self._queries["experiment_tasks"].psycopg, {"experiment_id": experiment_id}
            ).fetchall()

    def list_experiments(self) -> list[dict[str, Any]]:
        """The experiments the viewer may read: id, user_id, name, dataset (its name),
        provider, model, run_id, created_at, answered and items (counts)."""
        with self._transaction() as conn:
            return conn.execute(self._queries["list_experiments"].psycopg).fetchall()
