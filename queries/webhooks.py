"""Delivery of alert events to webhooks: JSON in a Slack-compatible body, retried up to a
bound (docs/spend-control.md).

The body is `{"text": ...}` (what Slack's incoming webhooks show) plus machine-readable
fields (rule, kind, event, value, threshold, scope, event_id, at) and a Slack attachment
with the same facts as `fields`. Every request carries `Idempotency-Key:
ai-runs-alert-<event id>`: an event is sent again only when an earlier attempt did not get
a 2xx answer, and a receiver can drop such a repeat by that key.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

USER_AGENT = "ai-runs-alerts/1"


@dataclass(frozen=True)
class Delivery:
    """Outcome of delivering one event: delivered, attempts made, last error (or None)."""

    delivered: bool
    attempts: int
    error: str | None


def slack_body(event: dict[str, Any], scope: str) -> dict[str, Any]:
    """The JSON body of one event (a row of ai_alert_events with rule_name and kind)."""
    firing = event["event"] == "firing"
    facts = {
        "rule": event["rule_name"],
        "kind": event["kind"],
        "event": event["event"],
        "value": None if event["value"] is None else float(event["value"]),
        "threshold": float(event["threshold"]),
        "scope": scope,
        "event_id": event["id"],
        "at": event["created_at"].isoformat(),
    }
    return {
        "text": event["message"],
        **facts,
        "attachments": [
            {
                "color": "danger" if firing else "good",
                "fields": [
                    {"title": key, "value": str(value), "short": True}
                    for key, value in facts.items()
                    if key in ("rule", "event", "value", "threshold", "scope")
                ],
            }
        ],
    }


def post_json(
    url: str,
    body: dict[str, Any],
    *,
    key: str,
    attempts: int = 3,
    backoff_seconds: float = 0.5,
    timeout_seconds: float = 5.0,
) -> Delivery:
    """POST `body` to `url` until a 2xx answer, at most `attempts` times, waiting
    backoff_seconds x 2^i between tries. Never raises for a failed delivery."""
    data = json.dumps(body).encode()
    error = None
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            url,
            data=data,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "Idempotency-Key": key,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
                if 200 <= response.status < 300:
                    return Delivery(True, attempt, None)
                error = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        if attempt < attempts:
            time.sleep(backoff_seconds * 2 ** (attempt - 1))
    return Delivery(False, attempts, error)
