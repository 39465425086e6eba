"""Track every LLM interaction: runs (conversations) and tasks (requests) in Postgres.

    import ingest
    tracker = ingest.Tracker()          # DATABASE_URL, else an embedded Postgres
    run = tracker.create_run("chat", messages=[{"role": "user", "content": "Hello"}])
    for text in ingest.stream_task(tracker, run["id"], chunks, provider="openai",
                                   model="gpt-4o"):
        ...

Public API: database_url, migrate, Tracker (RunPage, TaskUpdate), stream_task (TaskStream),
astream_task (AsyncTaskStream), track (drop-in SDK client tracking),
recompute_costs, normalize_usage, ValidationError, NotFoundError, IngestError.
"""

from __future__ import annotations

from ingest.client_tracking import track
from ingest.database import database_url, migrate
from ingest.errors import IngestError, NotFoundError, ValidationError
from ingest.repricing import recompute_costs
from ingest.streaming import AsyncTaskStream, TaskStream, astream_task, stream_task
from ingest.tracker import RunPage, TaskUpdate, Tracker
from ingest.usage import normalize_usage

__all__ = [
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
