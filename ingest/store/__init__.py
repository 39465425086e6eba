"""The store: the database and its words (docs/design.md, Package map).

- database: the database URL (DATABASE_URL, else the embedded server), migrations
  (migrations/NNNN_name.sql), connections, the run-totals invariant;
- embedded: the embedded PostgreSQL server in $AI_RUNS_HOME/pgdata;
- config: every environment variable, declared once;
- sqlfiles: named queries in `.sql` files, and how their fragments are filled;
- vocabulary: statuses, source types, roles and column lists, declared once;
- validation and limits: what a valid run or task is (ValidationError naming the field);
  score_checks: what a valid score is;
- retention: hard deletes of old runs, the mirror registry, pruning the deletion log;
- horizon: which open transactions hold back the change-capture horizon;
- schema_dump: docs/schema.sql from the catalogs; cli: `ai-runs db ...`.
"""

from ingest.store import (
    cli,
    config,
    database,
    embedded,
    horizon,
    limits,
    retention,
    schema_dump,
    score_checks,
    sqlfiles,
    validation,
    vocabulary,
)

__all__ = [
    "cli",
    "config",
    "database",
    "embedded",
    "horizon",
    "limits",
    "retention",
    "schema_dump",
    "score_checks",
    "sqlfiles",
    "validation",
    "vocabulary",
]
