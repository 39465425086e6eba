"""SDK tracking: what provider SDKs say, read into tasks (docs/tracking.md).

- clients: `track(client, tracker)`, drop-in tracking of OpenAI and Anthropic clients;
- streaming and stream_tracking: `stream_task` / `astream_task` wrap a stream as it is and
  track it as a task; stream_shapes: the SDKs' stream items;
- provider_usage: the providers' usage payloads as token columns (docs/usage-and-cost.md);
- task_writer: `TaskWriter`, the task API a stream or a tracked client writes through
  (ingest.Tracker and `tracker.background` both offer it), and `CallTracker`;
- background_writer: `BackgroundWriter`, finished tasks written off the application's path
  in batches, with a disk spool while the database is down;
- litellm_logger: `AiRunsLogger` for `litellm.callbacks` (needs litellm, so it is imported
  on its own: `from ingest.sdk.litellm_logger import AiRunsLogger`).
"""

from ingest.sdk import provider_usage
from ingest.sdk.background_writer import BackgroundWriter
from ingest.sdk.clients import track
from ingest.sdk.stream_tracking import storable_error
from ingest.sdk.streaming import AsyncTaskStream, TaskStream, astream_task, stream_task
from ingest.sdk.task_writer import TaskWriter

__all__ = [
    "AsyncTaskStream",
    "BackgroundWriter",
    "TaskStream",
    "TaskWriter",
    "astream_task",
    "provider_usage",
    "storable_error",
    "stream_task",
    "track",
]
