"""Transfer: many rows in and out (docs/import-format.md, docs/imports.md).

- bulk: the bulk path, users, runs and tasks written with COPY in batches, exactly once;
- import_export: `ai-runs import` / `export` of our JSONL and CSV format;
- foreign: imports from Langfuse exports and LiteLLM spend logs into that format;
- cli: `ai-runs import | export`.
"""

from ingest.transfer import bulk, cli, foreign, import_export

__all__ = ["bulk", "cli", "foreign", "import_export"]
