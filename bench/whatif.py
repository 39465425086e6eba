"""Benchmark: the what-if (a slice on another model, and a routed share) at scale (issue 12).

    python bench/whatif.py [--tasks 1000000] [--days 90] [--sample 20000]

The what-if reads only the mirror, so this builds a synthetic mirror `tasks` table in a
temporary DuckDB file (the real schema, queries/mirror/sql/tables.sql; realistic provider/model
mix and token counts, ordered by created_at as the sync keeps it) instead of generating
Postgres demo data. In the same run it measures two baselines:

- floor:   `sum(cost)` of the same slice (one scan; no what-if can beat it);
- naive:   pricing every task on its own with genai-prices `calc_price`, measured on
           --sample tasks and scaled linearly to --tasks.

It prints medians of 3 warm runs and the ratios, and the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genai_prices import Usage, calc_price  # noqa: E402

from bench.queries import timed  # noqa: E402
from queries import whatif  # noqa: E402
from queries.filters import Filters  # noqa: E402
from queries.mirror import open_mirror  # noqa: E402
from queries.mirror.sync import duck_sql as mirror_sql  # noqa: E402

MODELS = [
    ("openai", "gpt-4o", 0.30),
    ("openai", "gpt-4o-mini", 0.25),
    ("openai", "gpt-4.1", 0.10),
    ("anthropic", "claude-sonnet-4-5", 0.20),
    ("google", "gemini-2.5-flash", 0.15),
]


def build_mirror(path: Path, tasks: int, days: int, end: datetime):
    con = open_mirror(path)
    con.execute(mirror_sql()["create_tasks"].sql)
    cases = " ".join(
        f"WHEN pick < {sum(w for _, _, w in MODELS[: i + 1]):.2f} THEN {i}"
        for i in range(len(MODELS))
    )
    providers = "[" + ", ".join(f"'{p}'" for p, _, _ in MODELS) + "]"
    models = "[" + ", ".join(f"'{m}'" for _, m, _ in MODELS) + "]"
    start = end - timedelta(days=days)
    con.execute(
        f"""
        INSERT INTO tasks (id, task_id, run_id, user_id, team, source_type, tags, provider,
                           model, status, tokens_input, tokens_output, tokens_cached_input,
                           tokens_reasoning, tokens_total, cost, created_at, day, month_day)
        SELECT uuid(), uuid(), uuid(), 'user' || (i % 300), 'team' || (i % 12), 'chat', [],
               {providers}[k + 1], {models}[k + 1],
               CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'completed' END,
               ti, tout, ti // 4, 0, ti + tout, (ti * 2.5 + tout * 10) / 1e6, ts,
               (epoch(ts) // 86400)::INTEGER, 0
          FROM (SELECT i, CASE {cases} ELSE 0 END AS k,
                       (50 + random() ** 3 * 60000)::BIGINT AS ti,
                       (20 + random() ** 2 * 3000)::BIGINT AS tout,
                       TIMESTAMPTZ '{start.isoformat()}'
                         + to_microseconds((i * {days * 86_400_000_000 // tasks})::BIGINT) AS ts
                  FROM (SELECT i, random() AS pick FROM range({tasks}) t(i)))
         ORDER BY ts
        """
    )
    return con


def naive_ms_per_task(con, sample: int) -> float:
    rows = con.execute(
        "SELECT tokens_input, tokens_output, tokens_cached_input FROM tasks USING SAMPLE "
        f"{int(sample)} ROWS"
    ).fetchall()
    started = time.perf_counter()
    for tokens_in, tokens_out, cached in rows:
        usage = Usage(input_tokens=tokens_in, output_tokens=tokens_out, cache_read_tokens=cached)
        calc_price(usage, "gpt-4o-mini", provider_id="openai")
    return (time.perf_counter() - started) * 1000 / len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--sample", type=int, default=20_000)
    args = parser.parse_args(argv)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with tempfile.TemporaryDirectory(prefix="ai-runs-whatif-") as folder:
        started = time.perf_counter()
        con = build_mirror(Path(folder) / "m.duckdb", args.tasks, args.days, end)
        print(f"synthetic mirror: {args.tasks:,} tasks in {time.perf_counter() - started:.1f}s")
        every = Filters(start=end - timedelta(days=args.days + 1), end=end + timedelta(days=1))
        month = Filters.last_days(30, now=end)
        team = Filters.last_days(30, now=end, teams=("team3",))
        floor_ms, _ = timed(lambda: con.execute("SELECT sum(cost) FROM tasks").fetchall(), 3)
        cases = [
            ("all tasks on openai/gpt-4o-mini", every, None, 1.0),
            ("30 days on openai/gpt-4o-mini", month, None, 1.0),
            ("route 30% of gpt-4o to gpt-4o-mini, all", every, "gpt-4o", 0.3),
            ("one team, 30 days, route 30% of gpt-4o", team, "gpt-4o", 0.3),
        ]
        naive = naive_ms_per_task(con, args.sample)
        header = f"{'median ms':>10} {'x floor':>8} {'naive est. ms':>14} {'speed-up':>9}"
        print(f"\n{'what-if':44} {header}")
        print(f"{'floor: sum(cost) over all tasks':44} {floor_ms:>10.1f}")
        for label, filters, source, share in cases:
            ms, plan = timed(
                lambda f=filters, s=source, r=share: whatif.what_if_mix(
                    con, f, "openai", "gpt-4o-mini", source_model=s, share=r
                ),
                3,
            )
            assert plan.ok, plan.explanation
            mix = whatif.what_if_cost(con, filters, "openai", "gpt-4o-mini")
            tasks = int(mix["tasks"].sum())  # the slice the naive way would price one by one
            naive_ms = naive * tasks
            print(
                f"{label:44} {ms:>10.1f} {ms / floor_ms:>8.1f} {naive_ms:>14,.0f} "
                f"{naive_ms / ms:>8,.0f}x"
            )
        con.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nnaive pricing: {naive:.3f} ms per task (sample of {args.sample:,})")
    print(f"peak RSS of this process: {peak:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
