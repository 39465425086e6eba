"""A real ingest server (uvicorn) on 127.0.0.1 in a thread, for the server tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import psycopg
import uvicorn

from ingest.server.app import create_app
from ingest.server.keys import create_key
from ingest.server.otlp_spool import waiting_exports


@dataclass
class Served:
    base: str
    key: str
    url: str  # database

    def client(self, key: str | None = "default") -> httpx.Client:
        token = self.key if key == "default" else key
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_spool(db_url: str, timeout: float = 30.0) -> None:
    """Until the server's spool worker has written every acknowledged OTLP export (the
    spool row goes in the transaction that writes it)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(db_url, autocommit=True) as conn:
        while waiting_exports(conn):
            if time.monotonic() > deadline:
                raise TimeoutError("the OTLP spool was not written in time")
            time.sleep(0.01)


class AnswerWhenWritten:
    """ASGI wrapper for tests that read the database as soon as an exporter returns: the
    answer to POST /v1/traces (acknowledged once spooled) is held until the spool worker
    has written the export. The tests of the hand-off itself do without it."""

    def __init__(self, app, db_url: str) -> None:
        self.app = app
        self.db_url = db_url

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/traces":
            return await self.app(scope, receive, send)
        held = []

        async def hold(message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        await asyncio.to_thread(wait_for_spool, self.db_url)
        for message in held:
            await send(message)


@contextmanager
def serve(
    db_url: str,
    user: str = "ada",
    debounce_seconds: float = 0.5,
    max_body: int | None = None,
    *,
    otlp_direct: bool = False,
    answer_when_written: bool = True,
) -> Iterator[Served]:
    """Start the server over db_url with a key for `user`; stop it afterwards.
    otlp_direct: the server writes OTLP exports before answering (`serve --otlp-direct`);
    answer_when_written: with the hand-off, hold each /v1/traces answer until the export
    is written (AnswerWhenWritten)."""
    key, _ = create_key(user, "tests", url=db_url)
    port = free_port()
    app = create_app(
        db_url, debounce_seconds=debounce_seconds, max_body=max_body, otlp_direct=otlp_direct
    )
    served_app = AnswerWhenWritten(app, db_url) if answer_when_written else app
    server = uvicorn.Server(
        uvicorn.Config(served_app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", key, db_url)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
