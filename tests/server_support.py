"""A real ingest server (uvicorn) on 127.0.0.1 in a thread, for the server tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from ingest.server.app import create_app
from ingest.server.keys import create_key


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


@contextmanager
def serve(
    db_url: str, user: str = "ada", debounce_seconds: float = 0.5, max_body: int | None = None
) -> Iterator[Served]:
    """Start the server over db_url with a key for `user`; stop it afterwards."""
    key, _ = create_key(user, "tests", url=db_url)
    port = free_port()
    app = create_app(db_url, debounce_seconds=debounce_seconds, max_body=max_body)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
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
