"""docs/schema.sql is the schema a fresh migration leaves (regenerate it with
`ai-runs db schema --out docs/schema.sql`), whichever PostgreSQL (15 to 18) produced it."""

from __future__ import annotations

from pathlib import Path

from ingest.store import schema_dump

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "schema.sql"


def test_docs_schema_sql_is_up_to_date(db_url):
    fresh = schema_dump.schema_sql(db_url)
    assert "CREATE TABLE ai_tasks (" in fresh and "CREATE TRIGGER" in fresh
    assert DOC_PATH.read_text() == fresh, (
        "docs/schema.sql is stale: run `ai-runs db schema --out docs/schema.sql`"
    )


def test_schema_command_prints_it(db_url, monkeypatch, capsys):
    from dashboard.command import main

    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["db", "schema"]) == 0
    assert capsys.readouterr().out == DOC_PATH.read_text()
