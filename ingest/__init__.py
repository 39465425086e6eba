"""Track every LLM interaction: runs (conversations) and tasks (requests) in Postgres.

    import ingest
    tracker = ingest.Tracker()          # DATABASE_URL, else an embedded Postgres
    run = tracker.create_run("chat", messages=[{"role": "user", "content": "Hello"}])
    for text in ingest.stream_task(tracker, run["id"], chunks, provider="openai",
                                   model="gpt-4o"):
        ...

Public API: database_url, migrate, Tracker (RunPage, TaskUpdate), stream_task (TaskStream),
astream_task (AsyncTaskStream), track (drop-in SDK client tracking),
recompute_costs, normalize_usage, ValidationError, NotFoundError, AccessDeniedError,
IngestError. The packages behind it: docs/design.md, Package map.
"""

from __future__ import annotations

from ingest.errors import AccessDeniedError, IngestError, NotFoundError, ValidationError
from ingest.sdk import AsyncTaskStream, TaskStream, astream_task, stream_task, track
from ingest.sdk.provider_usage import normalize_usage
from ingest.spend.repricing import recompute_costs
from ingest.store.database import database_url, migrate
from ingest.tracking import RunPage, TaskUpdate, Tracker

__all__ = [
    "AccessDeniedError",
    "AsyncTaskStream",
    "IngestError",
    "NotFoundError",
    "RunPage",
    "TaskStream",
    "TaskUpdate",
    "Tracker",
    "ValidationError",
    "database_url",
    "migrate",
    "normalize_usage",
    "astream_task",
    "recompute_costs",
    "stream_task",
    "track",
]
