"""Database rows as JSON: uuids and timestamps as strings, Decimal cost as an exact string."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi.responses import Response


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # plain digits: never "0E-10"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def json_response(content: Any, status_code: int = 200) -> Response:
    """A JSON response of rows as the database returned them."""
    body = json.dumps(content, default=_default, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status_code=status_code, media_type="application/json")


def error_body(field: str, problem: str, allowed: list | None = None) -> dict[str, Any]:
    """The ErrorBody of every 4xx answer."""
    return {
        "error": {
            "field": field,
            "problem": problem,
            "allowed": [str(a) for a in allowed] if allowed is not None else None,
        }
    }
