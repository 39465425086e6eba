"""What the foreign importers share: reading records (JSON array, JSONL or CSV), small value
helpers, and writing mapped rows through ingest.transfer (checks, bulk path, idempotence).
"""

from __future__ import annotations

import csv
import json
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ingest.transfer import import_export as transfer

NAMESPACE = uuid.UUID("0b6c9f2e-4d8a-4c1e-9b7f-3e2a1d5c8f40")


@dataclass
class Record:
    """One source record and where it came from (for error messages)."""

    fields: dict[str, Any]
    path: str
    line: int


@dataclass
class ForeignImport:
    """The transfer summary (rows inserted, duplicates, rejected lines at their source
    position) plus records skipped because they are not LLM calls."""

    summary: transfer.ImportSummary
    skipped: int = 0
    skipped_kinds: dict[str, int] = field(default_factory=dict)
    scores: Any = None  # what became of the source's scores (one line of text), if any

    def text(self) -> str:
        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(self.skipped_kinds.items()))
        extra = f"\nskipped (not LLM calls): {self.skipped:,}" + (f" ({kinds})" if kinds else "")
        scores = f"\n{self.scores.text()}" if self.scores is not None else ""
        return self.summary.text() + (extra if self.skipped else "") + scores


def derived_id(kind: str, source_id: Any) -> uuid.UUID:
    """A stable uuid for a source id: the same record imports to the same row."""
    return uuid.uuid5(NAMESPACE, f"{kind}:{source_id}")


def _cell(value: str) -> Any:
    """A CSV cell: JSON objects/arrays parsed, empty as None, the rest as text."""
    text = value.strip()
    if text == "":
        return None
    if text[0] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return value
    return value


def read_records(path: Path) -> Iterator[Record]:
    """Records of a .json (array, or an object with a `data` array), .jsonl/.ndjson or .csv
    file. A line that is not a JSON object comes back as a Record with fields None."""
    name = str(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as file:
            for line, row in enumerate(csv.DictReader(file), start=2):
                yield Record({k: _cell(v or "") for k, v in row.items() if k}, name, line)
        return
    if suffix == ".json":
        document = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(document, dict):
            document = document.get("data", [document])
        for i, item in enumerate(document if isinstance(document, list) else [], start=1):
            yield Record(item if isinstance(item, dict) else None, name, i)
        return
    if suffix in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as file:
            for line, text in enumerate(file, start=1):
                if text.strip():
                    try:
                        item = json.loads(text)
                    except ValueError:
                        item = None
                    yield Record(item if isinstance(item, dict) else None, name, line)
        return
    raise ValueError(f"{path}: unknown format {suffix!r} (allowed: .json, .jsonl, .ndjson, .csv)")


def first(fields: dict[str, Any], *names: str) -> Any:
    """The first of `names` present and not None/"" in fields (camelCase and snake_case
    spellings of one export field are listed together)."""
    for name in names:
        value = fields.get(name)
        if value is not None and value != "":
            return value
    return None


def moment(value: Any) -> datetime | None:
    """A timestamp: ISO 8601 or 'YYYY-MM-DD HH:MM:SS.ffffff' (naive = UTC); None if absent
    or unreadable (the row keeps the raw value in its metadata)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def ms_between(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None or end < start:
        return None
    return round((end - start).total_seconds() * 1000)


def decimal(value: Any) -> Decimal | None:
    """A USD amount (number or numeric string) as Decimal; None if absent or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def whole(value: Any) -> int | None:
    """A token count (int, whole float or digit string); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def text_of(output: Any) -> str | None:
    """The assistant text of an output: a string, {"content": ...}, a list of messages,
    or an OpenAI response ({"choices": [{"message": {"content": ...}}]})."""
    if output is None:
        return None
    if isinstance(output, str):
        return output
    if isinstance(output, dict):
        if isinstance(output.get("choices"), list):
            return text_of(
                [c.get("message") or c for c in output["choices"] if isinstance(c, dict)]
            )
        content = output.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(p.get("text", "") for p in content if isinstance(p, dict)) or None
        return None
    if isinstance(output, list):
        texts = [text_of(item) for item in output]
        return "".join(t for t in texts if t) or None
    return None


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_rows(
    rows: Sequence[tuple[dict[str, Any], Record]], url: str | None = None
) -> transfer.ImportSummary:
    """Import rows of our format ({"type": "run"|"task", column: value}) with
    ingest.transfer; rejections are reported at the source record's file and line."""
    with tempfile.TemporaryDirectory(prefix="ai-runs-import-") as folder:
        staged = Path(folder) / "rows.jsonl"
        with staged.open("w", encoding="utf-8") as out:
            for row, _ in rows:
                out.write(json.dumps(row, default=_json_default, ensure_ascii=False) + "\n")
        summary = transfer.import_files([staged], url)
    for rejection in summary.rejected:
        origin = rows[rejection.line - 1][1]
        rejection.path, rejection.line = origin.path, origin.line
    summary.rejected.sort(key=lambda r: (r.path, r.line))
    return summary
