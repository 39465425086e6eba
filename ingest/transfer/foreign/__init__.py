"""Imports from the tools teams leave: Langfuse exports and LiteLLM spend logs
(`ai-runs import --from langfuse|litellm FILE...`). Field mappings: docs/imports.md.

Each source module turns its records into rows of our own import format
(docs/import-format.md); `records.write_rows` hands them to ingest.transfer, so the
import is checked line by line, written by the bulk path, and idempotent (ids are derived
from the source's ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ingest.transfer.foreign import langfuse, litellm_spend_logs
from ingest.transfer.foreign.records import ForeignImport

SOURCES = ("langfuse", "litellm")


def import_from(source: str, paths: Sequence[str | Path], url: str | None = None) -> ForeignImport:
    """Import `paths` exported by `source` (langfuse or litellm); return what happened."""
    if source == "langfuse":
        return langfuse.import_files(paths, url)
    if source == "litellm":
        return litellm_spend_logs.import_files(paths, url)
    raise ValueError(f"--from: unknown source {source!r} (allowed: {', '.join(SOURCES)})")


__all__ = ["SOURCES", "ForeignImport", "import_from"]
