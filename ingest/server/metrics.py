"""/metrics: the server's Prometheus metrics, in the text format of prometheus_client
(docs/server.md). One registry per application, so several servers in one process (the
tests) count apart.

- ai_runs_otlp_spans_total{outcome, reason}: every span an export carried: `accepted`
  (a task, or a span of a call whose task another span makes: reason `task` or
  `same_call`), `skipped` (`not_llm`, `count_tokens`) or `refused` (reason: the field that
  made it unusable).
- ai_runs_otlp_log_events_total{outcome}: log records `joined` to a task, `waiting` for
  their span, or `ignored` (not GenAI content events).
- ai_runs_http_requests_total{route, method, status}: requests by route template.
- ai_runs_http_request_seconds{route}: time to answer (for /v1/traces, the exporter's ack).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest


class ServerMetrics:
    """The metrics of one application (see the module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.spans = Counter(
            "ai_runs_otlp_spans",
            "OTLP spans received, by outcome and reason",
            ["outcome", "reason"],
            registry=self.registry,
        )
        self.log_events = Counter(
            "ai_runs_otlp_log_events",
            "OTLP log records received: joined to a task, waiting for their span, ignored",
            ["outcome"],
            registry=self.registry,
        )
        self.requests = Counter(
            "ai_runs_http_requests",
            "HTTP requests answered, by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ai_runs_http_request_seconds",
            "Seconds to answer a request (for /v1/traces: the export's acknowledgement)",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

    def count_spans(self, outcome: str, reason: str, n: int = 1) -> None:
        if n:
            self.spans.labels(outcome, reason).inc(n)

    def count_log_events(self, outcome: str, n: int = 1) -> None:
        if n:
            self.log_events.labels(outcome).inc(n)

    def text(self) -> bytes:
        return generate_latest(self.registry)


def install(app: FastAPI) -> ServerMetrics:
    """Add the request middleware and the GET /metrics route to `app`; its metrics."""
    metrics = ServerMetrics()
    app.state.metrics = metrics

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]):
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            metrics.requests.labels(name, request.method, str(status)).inc()
            metrics.latency.labels(name).observe(time.perf_counter() - started)

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    def scrape() -> Response:
        """Prometheus metrics (no key: counts only, no data)."""
        return Response(metrics.text(), media_type=CONTENT_TYPE_LATEST)

    return metrics
