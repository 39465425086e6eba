"""Tracking: writing and reading runs and tasks as they happen (docs/tracking.md).

- tracker: `Tracker`, the live API (one transaction per call), with its methods mixed in
  from runs (runs, listing, users), tasks (create, stream, finish), background (tracked
  calls written by the background writer) and access_methods (sharing, audit, rules);
- task_row: the one piece of code that builds a finished task's row for every write path
  (the Tracker, the background writer, the server's batch and OTLP path, the importer);
- conversations: a run's messages in OpenAI, Anthropic or Gemini shape (resume_run);
- templates: prompt templates from runs (placeholders, versions, per-version rollup);
- comments: shared notes on runs and tasks (text limits, @mentions);
- naming: run names from a first user message; keywords: bad arguments as ValidationError;
- cli: `ai-runs user | share | redaction | audit | template`.
"""

from ingest.tracking import cli, comments, conversations, naming, task_row, templates
from ingest.tracking.runs import RunPage
from ingest.tracking.tasks import TaskUpdate
from ingest.tracking.tracker import Tracker

__all__ = [
    "RunPage",
    "TaskUpdate",
    "Tracker",
    "cli",
    "comments",
    "conversations",
    "naming",
    "task_row",
    "templates",
]
