"""The FastAPI application of `ai-runs serve` (docs/server.md).

`create_app(url)` builds it over one database (None: DATABASE_URL, else the embedded
Postgres). Every /v1 endpoint needs `Authorization: Bearer <key>`; /health, /metrics,
/openapi.json and /docs do not (they read and write no data; /metrics holds counts only).
Errors are one JSON shape (ErrorBody): 422 for bad input naming the field and the allowed
values, 404 for a run or task that does not exist or that row-level security hides from
this key's user, 403 for one they may read but not change (the answer says who may), 413
for a body over the size limit (docs/limits.md), 401 for a missing or revoked key, 503 when
the database is unreachable; nothing is written in any of these.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from ingest.errors import AccessDeniedError, NotFoundError, ValidationError
from ingest.server import (
    metrics,
    models,
    routes_batch,
    routes_comments,
    routes_conversations,
    routes_otlp,
    routes_runs,
    routes_scores,
    routes_tasks,
)
from ingest.server.body_limit import BodyLimit, BodyTooLarge, too_large_response
from ingest.server.encoding import error_body, json_response
from ingest.server.otlp_spool import DEFAULT_WRITERS, SpoolWorker
from ingest.server.state import ServerState
from ingest.store import config


def create_app(
    url: str | None = None,
    *,
    debounce_seconds: float = 0.5,
    max_body: int | None = None,
    otlp_direct: bool = False,
    otlp_writers: int = DEFAULT_WRITERS,
) -> FastAPI:
    """The server application; its database connections open now and close at shutdown.
    max_body: the largest request body in bytes (None: AI_RUNS_MAX_BODY, docs/limits.md);
    a larger one is answered 413 before it is read whole. otlp_direct: write each OTLP
    trace export before answering it, instead of acknowledging it once it is spooled (the
    spool's writer processes write it then, `otlp_writers` of them;
    ingest/server/otlp_spool.py)."""
    limit = config.max_body_bytes() if max_body is None else max_body
    state = ServerState(url, debounce_seconds=debounce_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.spool is not None:
            with state.connection() as conn:
                app.state.spool.start_if_waiting(conn)
        yield
        if app.state.spool is not None:
            app.state.spool.close()
        state.close()

    app = FastAPI(
        title="AI Runs ingest server",
        version="1",
        description="Runs and tasks over HTTP, mirroring the Python ingest.Tracker, and an "
        "OTLP/HTTP receiver for GenAI spans. Authenticate with `Authorization: Bearer <key>` "
        "(`ai-runs keys create --user U`).",
        lifespan=lifespan,
    )
    app.state.server = state
    server_metrics = metrics.install(app)
    app.state.spool = None if otlp_direct else SpoolWorker(state.url, server_metrics, otlp_writers)
    _declare_json_value(app)
    app.state.max_body = limit
    app.add_middleware(BodyLimit, limit=limit)
    routes = (routes_runs, routes_tasks, routes_scores, routes_batch, routes_otlp)
    for module in (*routes, routes_conversations, routes_comments):
        app.include_router(module.router)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness: the process answers (no database access, no key needed)."""
        return {"status": "ok"}

    app.add_exception_handler(BodyTooLarge, _too_large)
    app.add_exception_handler(ValidationError, _validation_error)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(AccessDeniedError, _access_denied)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(psycopg.OperationalError, _database_down)
    return app


def _declare_json_value(app: FastAPI) -> None:
    """Add the JsonValue schema that the bodies' JSON fields refer to (models.Json)."""
    build = app.openapi

    def openapi() -> dict:
        document = build()
        if "JsonValue" not in document["components"]["schemas"]:
            _refer_to_components(document)
            document["components"]["schemas"]["JsonValue"] = models.JSON_VALUE_SCHEMA
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _refer_to_components(node: object) -> None:
    """Replace each mark {"x-ref": name} inside `node` (models.Json) by a reference to that
    component."""
    if isinstance(node, dict):
        pairs = list(node.items())
    elif isinstance(node, list):
        pairs = list(enumerate(node))
    else:
        return
    for key, value in pairs:
        if isinstance(value, dict) and "x-ref" in value:
            reference = {"$ref": f"#/components/schemas/{value['x-ref']}"}
            node[key] = {**reference, **{k: v for k, v in value.items() if k != "x-ref"}}  # type: ignore[index]
        else:
            _refer_to_components(value)


async def _too_large(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLarge)
    return too_large_response(exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    return json_response(error_body(exc.field, exc.problem, exc.allowed), 422)


async def _not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotFoundError)
    return json_response(error_body(exc.kind + "_id", str(exc)), 404)


async def _access_denied(request: Request, exc: Exception) -> Response:
    # Row-level security let this key's user read the run or task but not change it.
    assert isinstance(exc, AccessDeniedError)
    field = f"{exc.kind}_id" if exc.kind else "request"
    return json_response(error_body(field, str(exc)), 403)


async def _request_invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid"}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "path", "query")] or [
        "body"
    ]
    field = loc[0]
    for part in loc[1:]:
        field += f"[{part}]" if part.isdigit() else f".{part}"
    expected = (first.get("ctx") or {}).get("expected")
    allowed = None
    if isinstance(expected, str) and "'" in expected:
        allowed = [
            part.strip(" '")
            for part in expected.replace(" or ", ",").split(",")
            if part.strip(" '")
        ]
    if first.get("type") == "extra_forbidden":
        return json_response(error_body(field, "unknown field"), 422)
    return json_response(error_body(field, str(first.get("msg", "invalid")), allowed), 422)


async def _database_down(request: Request, exc: Exception) -> Response:
    # Retrying is safe: every write is one transaction and idempotent by its id.
    response = json_response(error_body("database", f"unreachable: {exc}".strip()), 503)
    response.headers["Retry-After"] = "1"
    return response


_PATH_PARAMETER = re.compile(r"\{[^}/]+\}")  # {run_id} in an OpenAPI path


def _allowed_methods(request: Request) -> list[str]:
    """Every method the OpenAPI document declares at the request's path, with OPTIONS, for
    `Allow` (the router's own 405 names only the first route's method)."""
    methods = {"OPTIONS"}
    for path, operations in request.app.openapi()["paths"].items():
        if re.fullmatch(_PATH_PARAMETER.sub("[^/]+", path), request.url.path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allow = ", ".join(_allowed_methods(request))
        if request.method == "OPTIONS":  # what this path answers; no key needed, no data
            return Response(status_code=204, headers={"Allow": allow})
        exc.headers = {**(exc.headers or {}), "Allow": allow}
    field = "Authorization" if exc.status_code == 401 else "request"
    allowed = ["Bearer <key>"] if exc.status_code == 401 else None
    response = json_response(error_body(field, str(exc.detail), allowed), exc.status_code)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response
