"""The invariant of docs/design.md (Exactness): every run's derived columns equal a GROUP BY
over its tasks, after any sequence of writes and with concurrent writers on the same runs."""

from __future__ import annotations

import random
import threading
import uuid
from decimal import Decimal

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.store import database

RUNS = 3

operation = st.one_of(
    st.tuples(
        st.just("insert"),
        st.integers(0, RUNS - 1),
        st.integers(0, 10_000),
        st.one_of(st.none(), st.decimals(0, 5, places=6)),
    ),
    st.tuples(st.just("retokens"), st.integers(0, 50), st.integers(0, 10_000)),
    st.tuples(
        st.just("reprice"), st.integers(0, 50), st.one_of(st.none(), st.decimals(0, 5, places=6))
    ),
    st.tuples(st.just("complete"), st.integers(0, 50)),
    st.tuples(st.just("move"), st.integers(0, 50), st.integers(0, RUNS - 1)),
    st.tuples(st.just("delete"), st.integers(0, 50)),
    st.tuples(st.just("bulk_insert"), st.integers(0, RUNS - 1), st.integers(1, 20)),
    st.tuples(st.just("bulk_update"), st.integers(0, RUNS - 1)),
    st.tuples(st.just("append_message"), st.integers(0, RUNS - 1)),
)


def apply(conn: psycopg.Connection, runs: list[uuid.UUID], op: tuple) -> None:
    kind = op[0]
    tasks = [r[0] for r in conn.execute("SELECT id FROM ai_tasks ORDER BY created_at, id")]

    def pick(i: int):
        return tasks[i % len(tasks)] if tasks else None

    if kind == "insert":
        conn.execute(
            "INSERT INTO ai_tasks (run_id, task_id, tokens_input, cost) VALUES (%s, %s, %s, %s)",
            (runs[op[1]], uuid.uuid4(), op[2], op[3]),
        )
    elif kind == "bulk_insert":
        with conn.cursor().copy(
            "COPY ai_tasks (run_id, task_id, tokens_output, cost) FROM STDIN"
        ) as cp:
            for i in range(op[2]):
                cp.write_row((runs[op[1]], uuid.uuid4(), i, Decimal("0.001") * i))
    elif kind == "bulk_update":
        conn.execute(
            "UPDATE ai_tasks SET tokens_total = tokens_total + 1, cost = coalesce(cost, 0) + 0.01 "
            "WHERE run_id = %s",
            (runs[op[1]],),
        )
    elif kind == "append_message":
        conn.execute(
            'UPDATE ai_runs SET messages = messages || \'[{"role": "user", "content": "x"}]\' '
            "WHERE id = %s",
            (runs[op[1]],),
        )
    elif pick(op[1]) is None:
        return
    elif kind == "retokens":
        conn.execute("UPDATE ai_tasks SET tokens_total = %s WHERE id = %s", (op[2], pick(op[1])))
    elif kind == "reprice":
        conn.execute("UPDATE ai_tasks SET cost = %s WHERE id = %s", (op[2], pick(op[1])))
    elif kind == "complete":
        conn.execute("UPDATE ai_tasks SET status = 'completed' WHERE id = %s", (pick(op[1]),))
    elif kind == "move":
        conn.execute("UPDATE ai_tasks SET run_id = %s WHERE id = %s", (runs[op[2]], pick(op[1])))
    elif kind == "delete":
        conn.execute("DELETE FROM ai_tasks WHERE id = %s", (pick(op[1]),))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=st.lists(operation, min_size=1, max_size=25))
def test_invariant_after_any_sequence(db_url, ops):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE ai_runs CASCADE")
        runs = [
            conn.execute(
                "INSERT INTO ai_runs (source_type) VALUES ('chat') RETURNING id"
            ).fetchone()[0]
            for _ in range(RUNS)
        ]
        for op in ops:
            apply(conn, runs, op)
    assert database.run_totals_mismatches(db_url) == []


def test_invariant_with_concurrent_writers_on_the_same_runs(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        runs = [
            conn.execute(
                "INSERT INTO ai_runs (source_type) VALUES ('chat') RETURNING id"
            ).fetchone()[0]
            for _ in range(2)
        ]
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def writer(seed: int) -> None:
        # One statement per transaction: run rows are locked in id order by the triggers,
        # so single statements never deadlock each other, whatever runs they touch.
        rng = random.Random(seed)
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                barrier.wait()
                for _ in range(80):
                    kind = rng.choice(["insert", "insert", "update", "move", "delete", "copy"])
                    write(conn, rng, runs, kind)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert database.run_totals_mismatches(db_url) == []
    with psycopg.connect(db_url) as conn:
        assert (
            conn.execute("SELECT sum(task_count) FROM ai_runs").fetchone()[0]
            == conn.execute("SELECT count(*) FROM ai_tasks").fetchone()[0]
        )


def write(conn: psycopg.Connection, rng: random.Random, runs: list[uuid.UUID], kind: str) -> None:
    run = rng.choice(runs)
    if kind == "insert":
        conn.execute(
            "INSERT INTO ai_tasks (run_id, task_id, tokens_input, cost) VALUES (%s, %s, %s, %s)",
            (run, uuid.uuid4(), rng.randint(0, 1000), Decimal(rng.randint(0, 10**6)) / 10**6),
        )
    elif kind == "copy":
        with conn.cursor().copy("COPY ai_tasks (run_id, task_id, tokens_input) FROM STDIN") as cp:
            for _ in range(rng.randint(1, 5)):
                cp.write_row((rng.choice(runs), uuid.uuid4(), rng.randint(0, 100)))
    elif kind == "update":
        conn.execute(
            "UPDATE ai_tasks SET tokens_total = tokens_total + 3, status = 'completed' "
            "WHERE id = (SELECT id FROM ai_tasks WHERE run_id = %s ORDER BY random() LIMIT 1)",
            (run,),
        )
    elif kind == "move":
        conn.execute(
            "UPDATE ai_tasks SET run_id = %s "
            "WHERE id = (SELECT id FROM ai_tasks ORDER BY random() LIMIT 1)",
            (run,),
        )
    elif kind == "delete":
        conn.execute(
            "DELETE FROM ai_tasks WHERE id = (SELECT id FROM ai_tasks ORDER BY random() LIMIT 1)"
        )
