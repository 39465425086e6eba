"""Started by every Python process of a traced test run (`--trace-named-queries`): record
the named queries this process sends to Postgres (tests/query_trace/trace.py)."""

import os

if os.environ.get("AI_RUNS_TRACE_QUERIES"):
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    import trace_named_queries

    trace_named_queries.install(os.environ["AI_RUNS_TRACE_QUERIES"])
