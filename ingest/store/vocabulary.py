"""The schema's words, declared once: source types, statuses, roles and column lists.

Every module that names one of these imports it from here. The database says the same in
its CHECK constraints (ingest/store/migrations/, as migrated: docs/schema.sql);
tests/test_vocabulary.py checks that a freshly migrated database agrees with this module.
"""

from __future__ import annotations

SOURCE_TYPES = ("prompt", "chat", "applet", "cockpit", "workflow", "custom")
RUN_STATUSES = ("active", "archived", "deleted")
TASK_STATUSES = ("pending", "streaming", "completed", "failed", "cancelled")
# A task is finished (its numbers are final) in one of these; unfinished in the others.
FINISHED_TASK_STATUSES = ("completed", "failed", "cancelled")
UNFINISHED_TASK_STATUSES = ("pending", "streaming")
# Where a task's cost came from (NULL: unpriced); docs/usage-and-cost.md.
COST_SOURCES = ("provider", "computed")
USER_ROLES = ("member", "manager", "admin")
# Scores (docs/quality.md): who or what gave one, and the kind of its value.
SCORE_SOURCES = ("human", "rule", "model", "api")
SCORE_DATA_TYPES = ("numeric", "boolean", "categorical")
# An ai_scores row as every reader gets it (sync_xid left out).
SCORE_COLUMNS = (
    "id", "run_id", "task_id", "name", "data_type", "value", "label", "source", "comment",
    "author", "evaluator", "evaluator_version", "created_at", "updated_at",
)  # fmt: skip
# An ai_comments row as every reader gets it (docs/tracking.md, "Shared notes").
COMMENT_COLUMNS = (
    "id", "run_id", "task_id", "author", "text", "mentions", "created_at", "edited_at",
)  # fmt: skip

# The columns a client writes and reads, in table order (sync_xid, the change-capture
# stamp, and the derived run totals are left out).
USER_COLUMNS = ("id", "display_name", "email", "team", "role", "created_at", "updated_at")
RUN_COLUMNS = (
    "id", "user_id", "source_type", "source_id", "name", "description", "tags", "messages",
    "settings", "variable_values", "broker_values", "attachments", "metadata", "status",
    "is_starred", "parent_run_id", "forked_from_message", "created_at", "updated_at",
    "last_message_at", "variant",
)  # fmt: skip
TASK_COLUMNS = (
    "id", "run_id", "user_id", "task_id", "service", "task_name", "provider", "endpoint",
    "model", "model_id", "request_data", "response_text", "response_data", "response_info",
    "response_errors", "tool_updates", "response_complete", "response_metadata",
    "tokens_input", "tokens_output", "tokens_cached_input", "tokens_reasoning", "tokens_total",
    "cost", "time_to_first_token", "total_time", "status", "created_at", "updated_at",
    "completed_at", "tokens_cache_write", "cost_source", "variant",
)  # fmt: skip
# jsonb columns (a CSV reader parses these from JSON text before validating).
RUN_JSON_COLUMNS = (
    "messages", "settings", "variable_values", "broker_values", "attachments", "metadata",
)  # fmt: skip
TASK_JSON_COLUMNS = (
    "request_data", "response_data", "response_info", "response_errors", "tool_updates",
    "response_metadata",
)  # fmt: skip
# Columns update/complete/fail/cancel may change (identity and timestamps are not theirs).
TASK_WRITABLE_COLUMNS = (
    "service", "task_name", "provider", "endpoint", "model", "model_id", "request_data",
    "response_text", "response_data", "response_info", "response_errors", "tool_updates",
    "response_complete", "response_metadata", "tokens_input", "tokens_output",
    "tokens_cached_input", "tokens_reasoning", "tokens_total", "tokens_cache_write", "cost",
    "cost_source", "time_to_first_token", "total_time", "status",
)  # fmt: skip
# Kept by the database's triggers (docs/design.md); exported for reading, never written.
RUN_DERIVED_COLUMNS = ("total_tokens", "total_cost", "message_count", "task_count")

# Written only by pricing (ingest/spend/price_books.py), never taken from input: which price
# produced a task's cost (docs/spend-control.md). Read with every task row.
TASK_DERIVED_COLUMNS = ("price_ref",)

# The defaults of the task columns that may not be NULL, as the migrations declare them
# (tests/test_vocabulary.py checks): a writer that leaves such a column out gets this.
TASK_COLUMN_DEFAULTS = {
    "id": "gen_random_uuid()",
    "request_data": "'{}'::jsonb",
    "response_text": "''::text",
    "response_complete": "false",
    "status": "'pending'::text",
    "created_at": "now()",
    "updated_at": "now()",
}

# Every task column a writer sets, in table order: a task row as the Tracker reads it back.
TASK_ROW_COLUMNS = (*TASK_COLUMNS, *TASK_DERIVED_COLUMNS)
SQL_COLUMN_LISTS = {
    "comment_columns": ", ".join(COMMENT_COLUMNS),
    "score_columns": ", ".join(SCORE_COLUMNS),
    "task_columns": ", ".join(TASK_ROW_COLUMNS),
    "task_updates": ", ".join(
        f"{c} = :{c}" for c in (*TASK_WRITABLE_COLUMNS, *TASK_DERIVED_COLUMNS)
    ),
    "task_values": ", ".join(
        f"coalesce({c}, {TASK_COLUMN_DEFAULTS[c]})" if c in TASK_COLUMN_DEFAULTS else c
        for c in TASK_ROW_COLUMNS
    ),
}
"""Column lists as SQL text, for `{{task_columns}}` (the columns), `{{task_values}}` (the
same columns of a row read from JSON, NULL meaning the table's default) and
`{{task_updates}}` (`column = :column` for every column a finished task's write sets: the
writable ones and price_ref) in the ingest SQL (sqlfiles.render)."""
