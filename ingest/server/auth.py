"""Bearer API keys: every /v1 endpoint needs `Authorization: Bearer <key>`.

A missing, malformed, unknown or revoked key gets 401 before the endpoint runs, so nothing
is written. The scheme is case-insensitive (RFC 9110): `bearer <key>` is accepted too. The
key is looked up on every request (no cache): a revoked key is refused at once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="an API key from `ai-runs keys create`")


class Unauthorized(HTTPException):
    """401 with the standard ErrorBody."""

    def __init__(self, problem: str) -> None:
        super().__init__(401, problem, headers={"WWW-Authenticate": "Bearer"})


def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The user_id of the request's live API key; raises Unauthorized otherwise."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing; send Authorization: Bearer <key>")
    user = request.app.state.server.user_of_key(credentials.credentials.strip())
    if user is None:
        raise Unauthorized("unknown or revoked API key")
    return user
