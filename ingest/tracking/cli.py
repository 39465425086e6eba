"""`ai-runs user ...`, `ai-runs share ...`, `ai-runs redaction ...`, `ai-runs audit`: who
sees what (docs/access.md); `ai-runs template ...`: templates from runs (docs/tracking.md);
`ai-runs eval score`: rule evaluators, `ai-runs eval dataset ...` / `eval run`: datasets and
experiments (ingest/tracking/experiments_cli.py; docs/quality.md). These run as the owner (the
operator at the terminal): this is how the first admin is made when the dashboard signs
people in with OIDC or a header."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from ingest.store.vocabulary import USER_ROLES
from ingest.tracking import experiments_cli, templates
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

    evaluation = commands.add_parser("eval", help="evaluators: score tasks (docs/quality.md)")
    eval_actions = evaluation.add_subparsers(dest="eval_command", required=True, metavar="ACTION")
    score = eval_actions.add_parser("score", help="run a rule evaluator over stored tasks")
    score.add_argument("--evaluator", required=True, choices=rule_evaluators.RULES)
    score.add_argument("--since", required=True, type=_moment, help="ISO date or time (UTC)")
    score.add_argument("--until", type=_moment, help="ISO date or time (UTC), exclusive")
    score.add_argument("--model", action="append", default=[], help="only this model (repeat)")
    score.add_argument("--name", default="", help="score name (default: the evaluator)")
    score.add_argument("--pattern", help="regex: a Python regular expression")
    score.add_argument("--min-chars", type=int, help="length: at least this many characters")
    score.add_argument("--max-chars", type=int, help="length: at most this many characters")
    score.add_argument("--text", help="contains: the text to look for")
    score.add_argument("--absent", action="store_true", help="contains: must NOT contain it")
    score.add_argument("--max-ms", type=int, help="latency: total time at most (ms)")
    score.add_argument("--max-usd", help="cost: cost at most (USD)")
    score.set_defaults(handler=_eval_score)
    experiments_cli.register_eval(eval_actions)

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


def _eval_score(args: argparse.Namespace) -> int:
    settings = {
        name: getattr(args, name)
        for name in ("pattern", "min_chars", "max_chars", "text", "max_ms", "max_usd")
        if getattr(args, name) is not None
    }
    if args.evaluator == "contains":
        settings["absent"] = args.absent
    applicable = {
        k: v for k, v in settings.items() if k in rule_evaluators.settings_of(args.evaluator)
    }
    rule = rule_evaluators.make_rule(args.evaluator, args.name, **applicable)
    done = rule_evaluators.score_tasks(rule, args.since, args.until, models=tuple(args.model))
    print(
        f"{rule.kind} {rule.version} as {rule.score_name!r}: {done.tasks} tasks, "
        f"{done.written} scores written ({done.replaced} replaced), {done.skipped} skipped"
    )
    return 0


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
