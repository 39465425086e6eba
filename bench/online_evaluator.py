"""Benchmark: does an online rule evaluator keep up with 1,000 tasks/s of ingest (issue 23)?

    python bench/online_evaluator.py [--seconds 10] [--rate 1000] [--sample 1.0] [--dir PATH]

Starts a fresh embedded Postgres in PATH (default a new temporary folder). Ingest writes
finished tasks at a paced `--rate` for `--seconds`, 100 per transaction (one INSERT, the
task triggers keeping the run totals: what the batch endpoint's writes are to the
database), half of them with a JSON answer. In the same run:

1. baseline: the ingest alone; its achieved rate (tasks written per second, until flushed);
2. with the worker: the same ingest while an `OnlineEvaluator` (the `json` rule, `--sample`
   of the tasks, a pass every 0.2 s) runs in a background thread of the same process; the
   ingest's achieved rate, and the evaluator's lag: from the ingest's last write until every
   sampled task has its score;
3. capacity: a new worker over every task so far as a backlog (its position set before
   them): the tasks of ingest per second it goes through (sampling, evaluating and scoring
   its share) when nothing else runs.

Prints the rates, the ratio of the ingest with the worker to the ingest alone, and the
evaluator's capacity as a multiple of `--rate`. It keeps up when the lag stays small
(a pass or two) and the capacity is above the rate times the sample. Run on demand, not in
the tests; the machine is shared, so repeat for stable numbers.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from ingest.store import database, embedded  # noqa: E402
from ingest.tracking import online_eval, rules  # noqa: E402

BATCH = 100  # tasks per ingest transaction
INSERT_TASKS = """
INSERT INTO ai_tasks (run_id, task_id, provider, endpoint, model, request_data, response_text,
                      tokens_input, tokens_output, cost, total_time, status, completed_at)
SELECT %(run_id)s, gen_random_uuid(), 'openai', 'chat.completions', 'gpt-4o',
       jsonb_build_object('messages', jsonb_build_array(
           jsonb_build_object('role', 'user', 'content', 'question ' || i))),
       CASE WHEN i %% 2 = 0 THEN '{"answer": "Row level security", "confidence": 0.9}'
            ELSE 'Row level security is ...' END,
       812, 356, 0.00559, 900, 'completed', now()
  FROM generate_series(1, %(count)s) AS i
"""


def ingest(url: str, seconds: float, rate: float) -> tuple[uuid.UUID, int, float]:
    """Write rate * seconds finished tasks into a new run, BATCH per transaction, paced;
    (the run, tasks, seconds until all were written)."""
    total = int(rate * seconds)
    with psycopg.connect(url, autocommit=True) as conn:
        run_id = conn.execute(
            "INSERT INTO ai_runs (source_type, name) VALUES ('chat', 'bench ingest') RETURNING id"
        ).fetchone()[0]
        start = time.perf_counter()
        for done in range(0, total, BATCH):
            conn.execute(INSERT_TASKS, {"run_id": run_id, "count": min(BATCH, total - done)})
            ahead = (done + BATCH) / rate - (time.perf_counter() - start)
            if ahead > 0:  # paced: never ahead of the rate
                time.sleep(ahead)
        return run_id, total, time.perf_counter() - start


def scored(url: str, version: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM ai_scores WHERE evaluator = 'json' AND evaluator_version = %s",
            (version,),
        ).fetchone()[0]


def sampled_tasks(url: str, run_id: uuid.UUID, sample: float) -> int:
    """The tasks of `run_id` in the sample."""
    with psycopg.connect(url) as conn:
        ids = [r[0] for r in conn.execute("SELECT task_id FROM ai_tasks WHERE run_id = %s",
                                          (run_id,))]  # fmt: skip
    return sum(online_eval.in_sample(task_id, sample) for task_id in ids)


def with_worker(url: str, seconds: float, rate: float, sample: float) -> dict[str, float]:
    rule = rules.make_rule("json", name="bench_json")
    worker = online_eval.OnlineEvaluator(rule, sample=sample, url=url, interval=0.2)
    worker.run_once()  # its position: the present
    before = scored(url, rule.version)
    with worker:
        run_id, tasks, took = ingest(url, seconds, rate)
        written = time.perf_counter()
        wanted = before + sampled_tasks(url, run_id, sample)
        while scored(url, rule.version) < wanted:
            time.sleep(0.02)
        lag = time.perf_counter() - written
    return {"tasks": tasks, "seconds": took, "lag": lag, "scored": wanted - before}


def capacity(url: str, sample: float) -> tuple[int, int, float]:
    """A new worker over every task as its backlog: (tasks scored, tasks of ingest it went
    through, seconds)."""
    rule = rules.make_rule("json", name="bench_capacity")
    worker = online_eval.OnlineEvaluator(rule, sample=sample, url=url)
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO ai_eval_cursors (worker, after_xid, after_id) VALUES (%s, '1', %s)",
            (worker.worker, uuid.UUID(int=0)),
        )
        backlog = conn.execute("SELECT count(*) FROM ai_tasks").fetchone()[0]
    start = time.perf_counter()
    done = worker.run_once()
    return done.written, backlog, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="ingest tasks per second")
    parser.add_argument("--sample", type=float, default=1.0, help="share of tasks evaluated")
    parser.add_argument("--dir", type=Path, help="folder for the embedded Postgres")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench-online-eval-"))
    pgdata = folder / "pgdata"
    url = embedded.ensure_database(embedded.start(pgdata), "bench_online_eval")
    database.migrate(url)
    try:
        _run, base_tasks, base_seconds = ingest(url, args.seconds, args.rate)
        run = with_worker(url, args.seconds, args.rate, args.sample)
        cap_scored, cap_tasks, cap_seconds = capacity(url, args.sample)
    finally:
        embedded.stop(pgdata)
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    alone, together = base_tasks / base_seconds, run["tasks"] / run["seconds"]
    print(f"target ingest rate           {args.rate:10.0f} tasks/s, sample {args.sample:g}")
    print(f"ingest alone                 {alone:10.0f} tasks/s ({base_tasks} tasks)")
    print(f"ingest with the worker       {together:10.0f} tasks/s ({run['tasks']} tasks)")
    print(f"ratio (with / alone)         {together / alone:10.2f}")
    print(f"evaluator lag after ingest   {run['lag']:10.2f} s ({run['scored']} tasks scored)")
    print(f"evaluator capacity           {cap_tasks / cap_seconds:10.0f} tasks of ingest/s "
          f"({cap_tasks} tasks, {cap_scored} scored, in {cap_seconds:.2f} s)")  # fmt: skip
    print(f"capacity / target rate       {cap_tasks / cap_seconds / args.rate:10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
