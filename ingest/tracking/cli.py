"""`ai-runs user ...`, `ai-runs share ...`, `ai-runs redaction ...`, `ai-runs audit`: who
sees what (docs/access.md); `ai-runs template ...`: templates from runs (docs/tracking.md);
`ai-runs eval score / worker`: evaluators, offline and online; `ai-runs eval dataset ...` /
`eval run`: datasets and experiments (ingest/tracking/experiments_cli.py; docs/quality.md).
These run as the owner (the operator at the terminal): this is how the first admin is made
when the dashboard signs people in with OIDC or a header."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from ingest.errors import ValidationError
from ingest.store.vocabulary import USER_ROLES
from ingest.tracking import evaluation, experiments_cli, judge, online_eval, templates
from ingest.tracking import rules as rule_evaluators
from ingest.tracking.tracker import Tracker


def register(commands: argparse._SubParsersAction) -> None:
    """Add this area's subcommands to `ai-runs`."""
    user = commands.add_parser("user", help="people: set (add or change), list")
    actions = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    put = actions.add_parser("set", help="add a person or change their e-mail, team or role")
    put.add_argument("id", help="ai_users id (what runs and tasks name as user_id)")
    put.add_argument("--email", help="what sign-in (OIDC e-mail or the proxy header) matches")
    put.add_argument("--name", help="display name")
    put.add_argument("--team")
    put.add_argument("--role", choices=USER_ROLES)
    put.set_defaults(handler=_user_set)
    actions.add_parser("list", help="every person").set_defaults(handler=_user_list)

    share = commands.add_parser("share", help="share a run with a person (or --remove)")
    share.add_argument("run_id")
    share.add_argument("user_id")
    share.add_argument("--permission", choices=("view", "edit"), default="view")
    share.add_argument("--remove", action="store_true", help="stop sharing instead")
    share.set_defaults(handler=_share)

    rules = commands.add_parser("redaction", help="redaction rules: list, enable, disable, add")
    rule_actions = rules.add_subparsers(dest="redaction_command", required=True, metavar="ACTION")
    rule_actions.add_parser("list", help="every rule").set_defaults(handler=_rules_list)
    for name, enabled in (("enable", True), ("disable", False)):
        one = rule_actions.add_parser(name, help=f"{name} a rule (email, secret, or yours)")
        one.add_argument("name")
        one.set_defaults(handler=_rule_switch, enabled=enabled)
    add = rule_actions.add_parser("add", help="add (and enable) a pattern of your own")
    add.add_argument("name")
    add.add_argument("pattern", help="a Python regular expression")
    add.add_argument("--replacement", default="[REDACTED]")
    add.set_defaults(handler=_rule_add)

    _register_eval(commands)

    audit = commands.add_parser("audit", help="recent deletes, restores, shares, role changes")
    audit.add_argument("--limit", type=int, default=50)
    audit.set_defaults(handler=_audit)
    _register_templates(commands)


def _register_templates(commands: argparse._SubParsersAction) -> None:
    template = commands.add_parser("template", help="prompt templates from runs")
    actions = template.add_subparsers(dest="template_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a run the next version of a template")
    create.add_argument("run_id")
    create.add_argument("name")
    create.add_argument("--user", help="owner (default: the run's owner)")
    create.set_defaults(handler=_template_create)
    export = actions.add_parser("export", help="a template version as JSON")
    export.add_argument("template", help="template id")
    export.add_argument("--version", type=int, help="default: the latest")
    export.set_defaults(handler=_template_export)
    rollup = actions.add_parser("rollup", help="cost and latency per version")
    rollup.add_argument("template", help="template id")
    rollup.set_defaults(handler=_template_rollup)


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _register_eval(commands: argparse._SubParsersAction) -> None:
    evaluation_command = commands.add_parser("eval", help="evaluators (docs/quality.md)")
    actions = evaluation_command.add_subparsers(dest="eval_command", required=True,
                                                metavar="ACTION")  # fmt: skip
    score = actions.add_parser("score", help="run an evaluator over stored tasks")
    score.add_argument("--since", required=True, type=_moment, help="ISO date or time (UTC)")
    score.add_argument("--until", type=_moment, help="ISO date or time (UTC), exclusive")
    score.add_argument("--model", action="append", default=[], help="only this model (repeat)")
    _evaluator_options(score)
    score.set_defaults(handler=_eval_score)
    worker = actions.add_parser("worker", help="score a sample of new tasks as they finish")
    worker.add_argument("--sample", type=float, default=0.1, help="share of tasks (0..1]")
    worker.add_argument("--interval", type=float, default=1.0, help="seconds between passes")
    worker.add_argument(
        "--retry-after",
        type=float,
        default=60.0,
        help="seconds before a task whose provider failed is tried again",
    )
    worker.add_argument("--once", action="store_true", help="one pass, then exit")
    _evaluator_options(worker)
    worker.set_defaults(handler=_eval_worker)
    experiments_cli.register_eval(actions)


def _evaluator_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--evaluator", required=True, choices=(*rule_evaluators.RULES, "judge"))
    command.add_argument("--name", default="", help="score name (default: the evaluator)")
    rule = command.add_argument_group("rules")
    rule.add_argument("--pattern", help="regex: a Python regular expression")
    rule.add_argument("--schema", type=Path, help="json-schema: a JSON Schema file")
    rule.add_argument("--min-chars", type=int, help="length: at least this many characters")
    rule.add_argument("--max-chars", type=int, help="length: at most this many characters")
    rule.add_argument("--text", help="contains: the text to look for")
    rule.add_argument("--absent", action="store_true", help="contains: must NOT contain it")
    rule.add_argument("--max-ms", type=int, help="latency: total time at most (ms)")
    rule.add_argument("--max-usd", help="cost: cost at most (USD)")
    model = command.add_argument_group("judge (the SDK reads its API key from its variable)")
    model.add_argument("--judge-model", help="the judge's model, e.g. gpt-4o-mini")
    model.add_argument("--provider", choices=judge.PROVIDERS, default="openai")
    model.add_argument("--base-url", help="the provider's base URL (default: the SDK's)")
    model.add_argument("--prompt", type=Path, help="prompt file ({{input}}, {{output}}, ...)")
    model.add_argument("--prompt-name", default="quality", help="the prompt's name")
    model.add_argument("--prompt-version", default="1", help="the prompt's version")
    model.add_argument("--min", type=float, default=1.0, help="lowest score")
    model.add_argument("--max", type=float, default=5.0, help="highest score")
    model.add_argument("--attempts", type=int, default=3, help="calls per task on an outage")
    model.add_argument("--backoff", type=float, default=0.5, help="first wait (s), doubled")
    model.add_argument("--threads", type=int, default=4, help="calls at once")


def _evaluator_of(args: argparse.Namespace) -> evaluation.Evaluator:
    if args.evaluator == "judge":
        if not args.judge_model:
            raise ValidationError("judge_model", "the judge needs --judge-model")
        prompt = (
            judge.JudgePrompt.from_file(args.prompt, args.prompt_name, args.prompt_version)
            if args.prompt else judge.JudgePrompt(args.prompt_name, args.prompt_version)
        )  # fmt: skip
        return judge.Judge(
            args.judge_model, args.provider, prompt, low=args.min, high=args.max,
            name=args.name, base_url=args.base_url, attempts=args.attempts,
            backoff=args.backoff,
        )  # fmt: skip
    settings = {
        name: getattr(args, name)
        for name in ("pattern", "min_chars", "max_chars", "text", "max_ms", "max_usd")
        if getattr(args, name) is not None
    }
    if args.evaluator == "contains":
        settings["absent"] = args.absent
    if args.evaluator == "json-schema" and args.schema is not None:
        settings["schema"] = _schema_file(args.schema)
    applicable = {
        k: v for k, v in settings.items() if k in rule_evaluators.settings_of(args.evaluator)
    }
    return rule_evaluators.make_rule(args.evaluator, args.name, **applicable)


def _schema_file(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except OSError as error:
        raise ValidationError("schema", f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise ValidationError("schema", f"{path} is not JSON: {error}") from None


def _eval_score(args: argparse.Namespace) -> int:
    evaluator = _evaluator_of(args)
    threads = args.threads if args.evaluator == "judge" else 1
    done = evaluation.score_tasks(
        evaluator, args.since, args.until, models=tuple(args.model), threads=threads
    )
    print(f"{evaluator.evaluator} {evaluator.version} as {evaluator.score_name!r}: "
          f"{_outcome(done)}")  # fmt: skip
    return 0


def _eval_worker(args: argparse.Namespace) -> int:
    evaluator = _evaluator_of(args)
    worker = online_eval.OnlineEvaluator(
        evaluator, sample=args.sample, interval=args.interval, retry_after=args.retry_after,
        threads=args.threads if args.evaluator == "judge" else 1,
    )  # fmt: skip
    print(f"{worker.worker}: sample {args.sample:g} as {evaluator.score_name!r}", flush=True)
    if args.once:
        print(_outcome(worker.run_once()))
        return 0
    worker.start()
    try:
        while True:
            time.sleep(60)
            print(_outcome(worker.total), flush=True)
    except KeyboardInterrupt:
        worker.stop()
    print(_outcome(worker.total))
    return 0


def _outcome(done: evaluation.EvalOutcome) -> str:
    return (f"{done.tasks} tasks, {done.written} scores written ({done.replaced} replaced), "
            f"{done.skipped} skipped, {done.errors} errors")  # fmt: skip


def _user_set(args: argparse.Namespace) -> int:
    with Tracker() as tracker:
        row = tracker.upsert_user(args.id, args.name, args.email, args.team, args.role)
    print(f"{row['id']}: {row['email'] or '-'} team {row['team'] or '-'} role {row['role']}")
    return 0


def _user_list(args: argparse.Namespace) -> int:
    with Tracker() as tracker:
        for row in tracker.list_users():
            print(f"{row['id']}\t{row['email'] or '-'}\t{row['team'] or '-'}\t{row['role']}")
    return 0


def _share(args: argparse.Namespace) -> int:
    with Tracker() as tracker:
        if args.remove:
            removed = tracker.unshare_run(args.run_id, args.user_id)
            print("share removed" if removed else "was not shared with them")
        else:
            tracker.share_run(args.run_id, args.user_id, args.permission)
            print(f"shared with {args.user_id} ({args.permission})")
    return 0


def _rules_list(args: argparse.Namespace) -> int:
    with Tracker() as tracker:
        for rule in tracker.redaction_rules():
            state = "on " if rule["enabled"] else "off"
            print(f"{state}\t{rule['name']}\t{rule['replacement']}\t{rule['pattern']}")
    return 0


def _rule_switch(args: argparse.Namespace) -> int:
    with Tracker() as tracker:
        rule = tracker.set_redaction_rule(args.name, enabled=args.enabled)
    print(f"{rule['name']}: {'enabled' if rule['enabled'] else 'disabled'}")
    return 0


def _rule_add(args: argparse.Namespace) -> int:
    with Tracker() as tracker:
        rule = tracker.set_redaction_rule(
            args.name, pattern=args.pattern, replacement=args.replacement
        )
    print(f"{rule['name']}: enabled ({rule['pattern']} -> {rule['replacement']})")
    return 0


def _audit(args: argparse.Namespace) -> int:
    with Tracker() as tracker:
        for entry in tracker.audit_log(args.limit):
            detail = json.dumps(entry["detail"], default=str)
            print(f"{entry['at']:%Y-%m-%d %H:%M:%S}\t{entry['actor']}\t{entry['action']}\t"
                  f"{entry['run_id'] or '-'}\t{entry['subject'] or '-'}\t{detail}")  # fmt: skip
    return 0


def _template_create(args: argparse.Namespace) -> int:
    with Tracker() as tracker:
        made = tracker.template_from_run(args.run_id, args.name, user_id=args.user)
    print(f"template {made['template_id']} {made['name']!r} version {made['version']} "
          f"placeholders: {', '.join(made['placeholders']) or '-'}")  # fmt: skip
    return 0


def _template_export(args: argparse.Namespace) -> int:
    with Tracker() as tracker:
        print(templates.export_json(tracker.get_template(args.template, args.version)))
    return 0


def _template_rollup(args: argparse.Namespace) -> int:
    with Tracker() as tracker:
        rows = tracker.template_rollup(args.template)
    print("version\truns\ttasks\ttotal_cost\tcost_per_run\tmean_total_time_ms\tp95_total_time_ms")
    for row in rows:
        print(f"{row['version']}\t{row['runs']}\t{row['tasks']}\t{row['total_cost']}\t"
              f"{row['cost_per_run'] or '-'}\t{row['mean_total_time'] or '-'}\t"
              f"{row['p95_total_time'] or '-'}")  # fmt: skip
    return 0
