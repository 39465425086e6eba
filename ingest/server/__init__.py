"""The ingest server (`ai-runs serve`): REST API mirroring ingest.Tracker, an OTLP/HTTP
receiver for GenAI spans, and API keys. See docs/server.md.

Modules: app (the FastAPI application), state (connections, writers, the flush loop),
viewer_trackers (the REST routes' Trackers, one per key's user, under row-level security), auth
(Bearer keys), keys (key store), models (request bodies), routes_* (one per resource),
batch (the bulk endpoint and the OTLP writer), otlp_parse / otlp_map (spans to tasks),
cli (`ai-runs serve`, `ai-runs keys`).
"""

from ingest.server import cli, keys
from ingest.server.app import create_app

__all__ = ["cli", "create_app", "keys"]
