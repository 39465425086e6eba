"""Demo data at any scale, reproducible for a seed, written with the bulk path
(ingest.transfer.bulk).

- generate.py: `generate(url, tasks=N, ...)`: chunks made in the background, the writers;
- plan.py: what a seed fixes before sampling (window, users, calendar, prices);
- sample_tasks.py: one chunk's runs and tasks sampled with numpy;
- copy_rows.py: the sampled values as COPY lines;
- catalog.py: what the demo draws from (sources, teams, models, errors, texts);
- quality.py: the A/B variants and the scores (`generate(..., quality=True)`);
- cli.py: `ai-runs demo`.
"""

from ingest.demo import catalog, cli, copy_rows, quality
from ingest.demo.generate import (
    CHUNK_TASKS,
    RUN_COLUMNS,
    TASK_COLUMNS,
    DemoSummary,
    generate,
)
from ingest.demo.plan import Plan
from ingest.demo.sample_tasks import make_chunk

__all__ = [
    "CHUNK_TASKS",
    "RUN_COLUMNS",
    "TASK_COLUMNS",
    "DemoSummary",
    "catalog",
    "cli",
    "copy_rows",
    "Plan",
    "generate",
    "make_chunk",
    "quality",
]
