"""Every environment variable the product reads, declared once with its default.

| variable        | default        | meaning                                                       |
|-----------------|----------------|---------------------------------------------------------------|
| DATABASE_URL    | (unset)        | Postgres to use; unset means the embedded server below.       |
| AI_RUNS_HOME    | ./.ai-runs     | Folder for the embedded Postgres (pgdata) and the mirror.     |
| AI_RUNS_MIRROR  | $AI_RUNS_HOME/analytics.duckdb | Path of the DuckDB analytics mirror.          |
| AI_RUNS_LAKE    | $AI_RUNS_HOME/lake | The Delta Lake tables: a folder or s3://bucket/prefix. |
| AI_RUNS_LAKE_S3_ENDPOINT | (unset) | URL of an S3-compatible store (unset: AWS).   |
| AI_RUNS_LAKE_RETENTION | 1h | How long the lake keeps files a newer version replaced (vacuum). |
| AI_RUNS_MAX_BODY | 8M | Largest request body of `ai-runs serve` (after gzip); K/M/G.   |

AI_RUNS_APP_DATABASE_URL (unset): how the application role (ai_runs_app, under row-level
security) connects; unset means the same server and database as user ai_runs_app.
"""

from __future__ import annotations

import os
from pathlib import Path

EMBEDDED_DATABASE = "ai_runs"


def database_url_setting() -> str | None:
    """The DATABASE_URL environment variable, or None when unset or empty."""
    value = os.environ.get("DATABASE_URL", "").strip()
    return value or None


def home() -> Path:
    """The AI_RUNS_HOME folder (absolute), created on first use (0700: its owner only)."""
    path = Path(os.environ.get("AI_RUNS_HOME", "").strip() or ".ai-runs").expanduser().resolve()
    if not path.exists():  # private: the mirror and the lake in it hold every user's data
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)
    return path


def pgdata() -> Path:
    """Data directory of the embedded Postgres server."""
    return home() / "pgdata"


def mirror_path() -> Path:
    """Path of the DuckDB analytics mirror file."""
    value = os.environ.get("AI_RUNS_MIRROR", "").strip()
    return Path(value).expanduser().resolve() if value else home() / "analytics.duckdb"


def lake_target() -> str:
    """Where `ai-runs lake sync` writes: AI_RUNS_LAKE (a folder or s3://bucket/prefix),
    default $AI_RUNS_HOME/lake."""
    value = os.environ.get("AI_RUNS_LAKE", "").strip()
    return value or str(home() / "lake")


def lake_s3_endpoint() -> str | None:
    """AI_RUNS_LAKE_S3_ENDPOINT: the URL of an S3-compatible store, None for AWS itself.
    Credentials come from the usual AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables."""
    value = os.environ.get("AI_RUNS_LAKE_S3_ENDPOINT", "").strip()
    return value or None


def lake_retention_hours() -> int:
    """AI_RUNS_LAKE_RETENTION as whole hours ("1h", "36h", "7d"; default 1 hour): files
    that a newer lake version replaced are vacuumed once they are this old, so readers of
    an older version have that long to finish, and time travel reaches back that far
    (docs/lake.md, "Versions and vacuum"). ValueError naming the variable otherwise."""
    raw = os.environ.get("AI_RUNS_LAKE_RETENTION", "").strip().lower() or "1h"
    units = {"h": 1, "d": 24}
    number, unit = (raw[:-1], raw[-1]) if raw[-1] in units else (raw, "h")
    if not number.isdigit():
        raise ValueError(
            f"AI_RUNS_LAKE_RETENTION: {raw!r} is not a duration; use whole hours or days, "
            "e.g. 1h, 36h or 7d"
        )
    return int(number) * units[unit]


DEFAULT_MAX_BODY = 8 * 1024 * 1024
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def max_body_bytes() -> int:
    """AI_RUNS_MAX_BODY: the largest request body the server reads, in bytes ("8388608",
    "512K", "8M", "1G"; binary units; default 8M). Counted after gzip decompression too
    (docs/limits.md). ValueError naming the variable otherwise."""
    raw = os.environ.get("AI_RUNS_MAX_BODY", "").strip().lower().removesuffix("b")
    if not raw:
        return DEFAULT_MAX_BODY
    number, unit = (raw[:-1], raw[-1]) if raw[-1] in "kmg" else (raw, "")
    if not number.isdigit() or int(number) < 1:
        raise ValueError(
            f"AI_RUNS_MAX_BODY: {raw!r} is not a size; use bytes or K/M/G, e.g. 8M or 524288"
        )
    return int(number) * _SIZE_UNITS[unit]


def app_database_url_setting() -> str | None:
    """AI_RUNS_APP_DATABASE_URL, or None when unset or empty (docs/access.md)."""
    value = os.environ.get("AI_RUNS_APP_DATABASE_URL", "").strip()
    return value or None
