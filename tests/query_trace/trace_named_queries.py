"""Which named queries each test file sends to Postgres (docs/testing.md, "Which tests run
on both engines"): `pytest --trace-named-queries DIR` records, in every process of the run
(the workers and every Python process they start), one line per use of a query's Postgres
text: the test file that was running (PYTEST_CURRENT_TEST, which subprocesses inherit) and
the query (`file.name` of its `.sql` file). `python tests/query_trace/trace_named_queries.py
DIR` then prints the queries that only the files marked `through_the_layers` send. Name the
folder `tests` on the command line when tracing the whole suite with xdist workers: with
the PYTHONPATH this sets, they did not find the conftest from `testpaths` alone."""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from pathlib import Path


def install(folder: str) -> None:
    """Wrap `Query.psycopg` so that each use appends a line to this process's file."""
    from ingest.store import sqlfiles

    original = sqlfiles.Query.psycopg.fget
    out = Path(folder) / f"{os.getpid()}.tsv"

    def traced(query: sqlfiles.Query) -> str:
        test = os.environ.get("PYTEST_CURRENT_TEST", "").split("::")[0]
        with open(out, "a") as lines:
            lines.write(f"{test}\t{query.file}.{query.name}\n")
        return original(query)

    sqlfiles.Query.psycopg = property(traced)


def _marked_files() -> set[str]:
    tests = Path(__file__).resolve().parent.parent
    return {
        f"tests/{path.name}"
        for path in tests.glob("test_*.py")
        if "mark.through_the_layers" in path.read_text()
    }


def main(folder: str) -> int:
    """Print the queries sent only by marked files, with the files that send them."""
    senders: dict[str, set[str]] = defaultdict(set)
    for path in Path(folder).glob("*.tsv"):
        for line in path.read_text().splitlines():
            test, _, query = line.partition("\t")
            senders[query].add(test)
    marked = _marked_files()
    only = {q: files for q, files in senders.items() if files and files <= marked}
    print(f"{len(senders)} named queries sent; {len(only)} only by marked files")
    for query, files in sorted(only.items()):
        print(f"  {query}: {', '.join(sorted(files))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
