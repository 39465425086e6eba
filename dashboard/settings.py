"""Dashboard settings remembered across sessions, in $AI_RUNS_HOME/dashboard.json (written
atomically). Only the legacy monthly budget lives here now; budgets are in Postgres."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ingest.store import config

SETTINGS_FILE = "dashboard.json"


def _settings_path():
    return config.home() / SETTINGS_FILE


def load_setting(name: str, default: Any = None) -> Any:
    """A remembered dashboard setting (e.g. the monthly budget), or `default`."""
    try:
        return json.loads(_settings_path().read_text()).get(name, default)
    except (OSError, ValueError, AttributeError):
        return default


def save_setting(name: str, value: Any) -> None:
    """Remember a dashboard setting; written atomically."""
    path = _settings_path()
    try:
        current = json.loads(path.read_text())
        if not isinstance(current, dict):
            current = {}
    except (OSError, ValueError):
        current = {}
    current[name] = value
    current["updated_at"] = datetime.now(UTC).isoformat()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current, indent=2))
    tmp.replace(path)
