"""Turn one chunk of the demo generator's numpy arrays into COPY text lines.

The catalog (ingest.demo.catalog) holds no character that JSON or COPY would escape, so lines
are assembled with f-strings; `tests/test_demo.py` checks every row against
`ingest.store.validation` and the round trip through the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace

import numpy as np

from ingest.demo import catalog as cat
from ingest.demo import quality
from ingest.demo.plan import Plan, iso
from ingest.store.vocabulary import RUN_STATUSES

NULL = "\\N"
STATUS_NAMES = cat.TASK_STATUS_CODES
TEMPERATURES = ("0", "0.2", "0.5", "0.7", "1")
MAX_TOKENS = ("1024", "2048", "4096", "8192")


@dataclass
class Chunk:
    run_lines: list[str]
    run_ids: list[str]
    run_parents: list[str | None]
    task_lines: list[str]
    task_ids: list[str]
    task_runs: list[str]
    status_counts: np.ndarray
    cost_e10: int
    cost_extra: Decimal
    tokens_total: int


def uuids(rng: np.random.Generator, n: int) -> list[str]:
    """`n` random version-4 UUID strings from `rng` (reproducible)."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    h = raw.tobytes().hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-"
        f"{h[i + 20 : i + 32]}"
        for i in range(0, 32 * n, 32)
    ]


def _pick(rng: np.random.Generator, options: tuple, n: int) -> list:
    return [options[i] for i in rng.integers(0, len(options), n)]


def _questions(rng: np.random.Generator, n: int) -> list[str]:
    return [
        q.format(verb=v, thing=t, topic=p, tone=o, audience=a)
        for q, v, t, p, o, a in zip(
            _pick(rng, cat.QUESTIONS, n),
            _pick(rng, cat.VERBS, n),
            _pick(rng, cat.THINGS, n),
            _pick(rng, cat.TOPICS, n),
            _pick(rng, cat.TONES, n),
            _pick(rng, cat.AUDIENCES, n),
            strict=True,
        )  # fmt: skip
    ]


def _answers(rng: np.random.Generator, n: int) -> list[str]:
    return [
        f"{o} {b.format(verb=v, thing=t, topic=p, tone=x, audience=a)} {c}".rstrip()
        for o, b, c, v, t, p, x, a in zip(
            _pick(rng, cat.ANSWER_OPENINGS, n),
            _pick(rng, cat.ANSWER_BODIES, n),
            _pick(rng, cat.ANSWER_CLOSINGS, n),
            _pick(rng, cat.VERBS, n),
            _pick(rng, cat.THINGS, n),
            _pick(rng, cat.TOPICS, n),
            _pick(rng, cat.TONES, n),
            _pick(rng, cat.AUDIENCES, n),
            strict=True,
        )  # fmt: skip
    ]


def _attachments(rng: np.random.Generator, n_runs: int) -> list[str]:
    has = rng.random(n_runs) < 0.18
    result = ["[]"] * n_runs
    kinds = ("file", "url", "image", "youtube")
    for r in np.flatnonzero(has):
        items = []
        for kind in rng.choice(kinds, size=int(rng.integers(1, 4)), p=[0.4, 0.25, 0.2, 0.15]):
            if kind == "file":
                template, files = cat.ATTACHMENTS["file"]
                name, mime = files[int(rng.integers(0, len(files)))]
                items.append(template % (name, mime, int(rng.integers(2_000, 4_000_000))))
            elif kind == "url":
                page, title = cat.URL_PAGES[int(rng.integers(0, len(cat.URL_PAGES)))]
                items.append(cat.ATTACHMENTS["url"] % (page, title))
            elif kind == "image":
                size = (int(rng.integers(1, 999)), int(rng.integers(400, 2400)), 900)
                items.append(cat.ATTACHMENTS["image"] % size)
            else:
                video = cat.YOUTUBE_IDS[int(rng.integers(0, len(cat.YOUTUBE_IDS)))]
                items.append(cat.ATTACHMENTS["youtube"] % (video, video, "Product walkthrough"))
        result[r] = "[" + ",".join(items) + "]"
    return result


def _tags(rng: np.random.Generator, n_runs: int) -> list[str]:
    count = rng.choice(4, size=n_runs, p=[0.35, 0.35, 0.2, 0.1])
    picks = rng.integers(0, len(cat.TAGS), (n_runs, 3))
    result = []
    for k, row in zip(count.tolist(), picks.tolist(), strict=True):
        chosen = sorted({cat.TAGS[i] for i in row[:k]})
        result.append("{" + ",".join(f'"{t}"' for t in chosen) + "}")
    return result


# Over 60 lines: one vectorised pass that turns a chunk's numpy columns into COPY lines;
# split, its dozen arrays would travel between the parts.
def chunk_lines(plan: Plan, rng: np.random.Generator, a: SimpleNamespace) -> Chunk:
    """COPY lines for the runs and tasks of one chunk (`a` holds the chunk's arrays)."""
    n, n_runs = len(a.status), len(a.stype)
    run_ids, row_ids, task_ids = uuids(rng, n_runs), uuids(rng, n), uuids(rng, n)
    hexes = rng.bytes(6 * n).hex()
    questions, answers = _questions(rng, n), _answers(rng, n)
    created, finished, updated = iso(a.created), iso(a.finished), iso(a.updated)
    completed = a.status == 0
    cut = np.where(completed, 1.0, rng.uniform(0.05, 0.8, n))
    cut[a.pre_stream | (a.status == 4)] = 0
    temperature = rng.integers(0, len(TEMPERATURES), n_runs)
    max_tokens = rng.integers(0, len(MAX_TOKENS), n_runs)
    region = rng.integers(0, len(cat.REGIONS), n)
    attempt = np.where(rng.random(n) < 0.04, 2, 1)
    finish_reason = np.where(rng.random(n) < 0.04, "length", "stop")
    tools = (rng.random(n) < np.where(np.isin(a.src, [2, 3, 4, 5]), 0.25, 0.06)) & completed
    tool_pick = rng.integers(0, len(cat.TOOLS), n)
    tool_ms = rng.lognormal(np.log(400), 0.9, n).astype(np.int64) + 20

    user_ids = [plan.user_ids[u] for u in a.user.tolist()]
    task_user = [user_ids[r] for r in a.run_of.tolist()]
    models = plan.models
    sources = cat.SOURCES
    run_of = a.run_of.tolist()
    task_lines = []
    for i in range(n):
        m = models[a.model[i]]
        r = run_of[i]
        src = sources[a.src[i]]
        status = int(a.status[i])
        q = questions[i]
        text = answers[i][: int(len(answers[i]) * cut[i])]
        usage = (int(a.inp[i]), int(a.out[i]), int(a.cached[i]), int(a.reasoning[i]))
        request = (
            f'{{"model":"{m.name}","stream":true,"temperature":{TEMPERATURES[temperature[r]]},'
            f'"max_tokens":{MAX_TOKENS[max_tokens[r]]},'
            f'"messages":[{{"role":"user","content":"{q}"}}]}}'
        )
        if status >= 3 or a.pre_stream[i]:
            response_data = response_info = NULL
        else:
            response_data = (
                f'{{"id":"resp_{hexes[12 * i : 12 * i + 12]}",'
                f'"finish_reason":"{finish_reason[i] if status == 0 else "cancelled"}"}}'
            )
            response_info = (
                f'{{"usage":{{"input_tokens":{usage[0]},"output_tokens":{usage[1]},'
                f'"cached_tokens":{usage[2]},"reasoning_tokens":{usage[3]}}}}}'
            )
        if status == 1:
            kind, code, message, retryable, _ = cat.ERRORS[a.error[i]]
            errors = (
                f'{{"type":"{kind}","status":{code},"message":"{message}",'
                f'"retryable":{"true" if retryable else "false"},"provider":"{m.provider}"}}'
            )
        else:
            errors = NULL
        tool = (
            f'[{{"tool":"{cat.TOOLS[tool_pick[i]]}","status":"completed",'
            f'"duration_ms":{tool_ms[i]}}}]'
            if tools[i]
            else NULL
        )
        meta = (
            f'{{"region":"{cat.REGIONS[region[i]]}","attempt":{attempt[i]},'
            f'"request_id":"req_{hexes[12 * i : 12 * i + 12]}"}}'
        )
        cost = a.cost_e10[i]
        if cost >= 0:
            cost_text = f"{cost // 10_000_000_000}.{cost % 10_000_000_000:010d}"
        elif i in a.extra and a.extra[i] is not None:
            cost_text = str(a.extra[i])
        else:
            cost_text = NULL
        task_name = src.task_names[0]
        if len(src.task_names) > 1:
            k = a.src[i] == 4  # workflow steps run in order; others mostly use the first
            step = (i - a.first[r]) % len(src.task_names) if k else int(hexes[12 * i], 16) // 14
            task_name = src.task_names[step]
        ttft = a.ttft_ms[i]
        total = a.total_ms[i]
        task_lines.append(
            f"{row_ids[i]}\t{run_ids[r]}\t{task_user[i]}\t{task_ids[i]}\t{src.service}\t"
            f"{task_name}\t{m.provider}\t{m.endpoint}\t{m.name}\t{plan.model_ids[a.model[i]]}\t"
            f"{request}\t{text}\t{response_data}\t{response_info}\t{errors}\t{tool}\t"
            f"{'t' if status == 0 else 'f'}\t{meta}\t{usage[0]}\t{usage[1]}\t{usage[2]}\t"
            f"{usage[3]}\t{usage[0] + usage[1]}\t{cost_text}\t"
            f"{ttft if ttft >= 0 else NULL}\t{total if total >= 0 else NULL}\t"
            f"{STATUS_NAMES[status]}\t{created[i]}\t{updated[i]}\t"
            f"{finished[i] if status == 0 else NULL}\t"
            # tokens_cache_write (the demo's calls write no cache), cost_source, variant (the
            # run's)
            f"0\t{NULL if cost_text == NULL else 'computed'}\t{NULL}"
        )

    parents = _forks(rng, a, run_ids)
    lines = _run_lines(plan, rng, a, run_ids, task_ids, questions, answers, user_ids, parents)
    cost_extra = sum((v for v in a.extra.values() if v is not None), Decimal(0))
    priced = a.cost_e10[a.cost_e10 >= 0]
    return Chunk(
        run_lines=lines,
        run_ids=run_ids,
        run_parents=[parents[r][0] if r in parents else None for r in range(n_runs)],
        task_lines=task_lines,
        task_ids=task_ids,
        task_runs=[run_ids[r] for r in run_of],
        status_counts=np.bincount(a.status, minlength=5),
        cost_e10=int(priced.sum(dtype=object)) if len(priced) else 0,
        cost_extra=cost_extra,
        tokens_total=int((a.inp + a.out).sum()),
    )


# Over 60 lines: the run columns, vectorised, in table order (one block per column).
def _run_lines(
    plan: Plan,
    rng: np.random.Generator,
    a: SimpleNamespace,
    run_ids: list[str],
    task_ids: list[str],
    questions: list[str],
    answers: list[str],
    user_ids: list[str],
    parents: dict[int, tuple[str, int]],
) -> list[str]:
    n_runs = len(a.stype)
    created, finished = iso(a.created), iso(a.finished)
    # The last message is the last task's prompt or the last completed task's answer.
    candidate = np.where(a.status == 0, a.finished, a.created)
    last_message = np.maximum.reduceat(candidate, a.first)
    updated = np.maximum(np.maximum.reduceat(a.updated, a.first), last_message)
    run_start, last_iso, updated_iso = iso(a.run_start), iso(last_message), iso(updated)
    item = rng.integers(0, 100, n_runs)
    topic = _pick(rng, cat.TOPICS, n_runs)
    temperature = rng.integers(0, len(TEMPERATURES), n_runs)
    max_tokens = rng.integers(0, len(MAX_TOKENS), n_runs)
    has_vars = rng.random(n_runs) < 0.9
    has_broker = rng.random(n_runs) < 0.4
    described = rng.random(n_runs) < 0.25
    status = rng.choice(3, size=n_runs, p=[0.85, 0.12, 0.03])
    starred = rng.random(n_runs) < 0.07 + 0.01 * np.minimum(a.ntask, 8)
    client = _pick(rng, cat.CLIENTS, n_runs)
    tone, audience = _pick(rng, cat.TONES, n_runs), _pick(rng, cat.AUDIENCES, n_runs)
    attachments, tags = _attachments(rng, n_runs), _tags(rng, n_runs)
    status_list, first, ntask = a.status.tolist(), a.first.tolist(), a.ntask.tolist()
    outputs = a.out.tolist()
    variants = _variants(plan, run_ids, a.run_start)
    lines = []
    for r in range(n_runs):
        src = cat.SOURCES[a.stype[r]]
        m = plan.models[a.run_model[r]]
        team = cat.TEAMS[plan.user_team[a.user[r]]]
        messages = []
        if src.source_type in ("prompt", "applet", "cockpit"):
            messages.append(
                f'{{"role":"system","content":"You help the {team} team. Be accurate and '
                f'brief.","timestamp":"{run_start[r]}"}}'
            )
        for j in range(first[r], first[r] + ntask[r]):
            messages.append(
                f'{{"role":"user","content":"{questions[j]}","timestamp":"{created[j]}"}}'
            )
            if status_list[j] == 0:
                messages.append(
                    f'{{"role":"assistant","content":"{answers[j]}","task_id":"{task_ids[j]}",'
                    f'"timestamp":"{finished[j]}","metadata":{{"model":"{plan.models[a.model[j]].name}",'
                    f'"output_tokens":{outputs[j]}}}}}'
                )
        name = questions[first[r]]
        name = name if len(name) <= 60 else name[:57].rstrip() + "..."
        source_item = src.items[item[r] % len(src.items)]
        variables = (
            f'{{"topic":"{topic[r]}","tone":"{tone[r]}","audience":"{audience[r]}"}}'
            if has_vars[r] and src.source_type not in ("chat", "custom")
            else "{}"
        )
        broker = (
            f'{{"currentDate":"{run_start[r][:10]}","userName":"{plan.user_names[a.user[r]]}",'
            f'"locale":"en-US","team":"{team}"}}'
            if has_broker[r]
            else "{}"
        )
        settings = (
            f'{{"model":"{m.name}","model_id":"{plan.model_ids[a.run_model[r]]}",'
            f'"provider":"{m.provider}","temperature":{TEMPERATURES[temperature[r]]},'
            f'"max_tokens":{MAX_TOKENS[max_tokens[r]]},"stream":true}}'
        )
        description = f"{source_item} on {topic[r]}" if described[r] else NULL
        parent, fork_message = parents.get(r, (NULL, NULL))
        lines.append(
            f"{run_ids[r]}\t{user_ids[r]}\t{src.source_type}\t{src.source_type}-{source_item}\t"
            f"{name}\t{description}\t{tags[r]}\t[{','.join(messages)}]\t{settings}\t"
            f"{variables}\t{broker}\t{attachments[r]}\t"
            f'{{"client":"{client[r]}","app_version":"3.{item[r] % 7}.{item[r] % 3}"}}\t'
            f"{RUN_STATUSES[status[r]]}\t{'t' if starred[r] else 'f'}\t{parent}\t{fork_message}\t"
            f"{run_start[r]}\t{updated_iso[r]}\t{last_iso[r]}\t{variants[r]}"
        )
    return lines


def _variants(plan: Plan, run_ids: list[str], run_start: np.ndarray) -> list[str]:
    """Each run's A/B variant as COPY text: NULL unless the plan asks for quality data."""
    if not plan.quality:
        return [NULL] * len(run_ids)
    starts = run_start.tolist()
    return [
        quality.run_variant(run_id, started, plan.end_us) or NULL
        for run_id, started in zip(run_ids, starts, strict=True)
    ]


def _forks(rng: np.random.Generator, a: SimpleNamespace, run_ids: list[str]) -> dict:
    """{run index: (parent run id, forked_from_message)} for ~1.5% of chat/cockpit runs."""
    n_runs = len(a.stype)
    order = np.argsort(a.run_start, kind="stable")
    position = np.empty(n_runs, dtype=np.int64)
    position[order] = np.arange(n_runs)
    forks = np.flatnonzero(np.isin(a.stype, [0, 3]) & (rng.random(n_runs) < 0.015) & (position > 0))
    completed = np.add.reduceat((a.status == 0).astype(np.int64), a.first)
    system = np.isin(a.stype, [1, 2, 3]).astype(np.int64)
    message_count = system + a.ntask + completed
    result = {}
    for f in forks.tolist():
        parent = int(order[rng.integers(0, position[f])])
        result[f] = (run_ids[parent], int(rng.integers(0, message_count[parent])))
    return result
