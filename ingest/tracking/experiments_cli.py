"""`ai-runs eval dataset create|import|export|list` and `ai-runs eval run`: datasets and
experiments (docs/quality.md). They run as the owner (the operator at the terminal); a
dataset and an experiment belong to `--user` (default: the login name)."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.errors import ValidationError
from ingest.tracking import rules as rule_evaluators
from ingest.tracking.experiments import PROVIDERS, run_experiment
from ingest.tracking.tracker import Tracker


def register_eval(actions: argparse._SubParsersAction) -> None:
    """Add `dataset ...` and `run` to the `ai-runs eval` actions."""
    dataset = actions.add_parser("dataset", help="datasets: create, import, export, list")
    verbs = dataset.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    create = verbs.add_parser("create", help="a dataset from the tasks a filter selects")
    create.add_argument("name")
    create.add_argument("--since", required=True, type=_moment, help="ISO date or time (UTC)")
    create.add_argument("--until", type=_moment, help="ISO date or time (UTC), exclusive")
    create.add_argument("--model", action="append", default=[], help="only this model (repeat)")
    create.add_argument("--variant", action="append", default=[], help="only this variant")
    create.add_argument("--run", help="only the tasks of this run id")
    create.add_argument("--limit", type=int, default=1000, help="at most this many items")
    create.add_argument("--description")
    _owner(create)
    create.set_defaults(handler=_dataset_create)
    load = verbs.add_parser("import", help="add items from a JSONL file ('-': stdin)")
    load.add_argument("name")
    load.add_argument("file")
    _owner(load)
    load.set_defaults(handler=_dataset_import)
    export = verbs.add_parser("export", help="the items as JSONL ('-' or none: stdout)")
    export.add_argument("name")
    export.add_argument("file", nargs="?", default="-")
    _owner(export)
    export.set_defaults(handler=_dataset_export)
    verbs.add_parser("list", help="every dataset").set_defaults(handler=_dataset_list)

    run = actions.add_parser("run", help="replay a dataset through a model (an experiment)")
    run.add_argument("--dataset", required=True, help="dataset name (or id)")
    run.add_argument("--model", required=True)
    run.add_argument("--provider", choices=PROVIDERS, default="openai")
    run.add_argument("--prompt", type=Path, help="a file whose text is the system prompt")
    run.add_argument("--name", help="experiment name (default: dataset-model)")
    run.add_argument(
        "--evaluator",
        action="append",
        default=[],
        help="KIND[:setting=value,...], e.g. json, length:max_chars=2000 (repeat)",
    )
    run.add_argument("--base-url", help="the provider's API base URL (default: the SDK's)")
    _owner(run)
    run.set_defaults(handler=_eval_run)


def parse_evaluator(text: str) -> rule_evaluators.Rule:
    """A rule from `KIND[:setting=value,...]` (whole numbers and true/false converted);
    ValidationError naming the setting that is wrong."""
    kind, _, rest = text.partition(":")
    settings: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValidationError("evaluator", f"{part!r} is not setting=value")
        settings[key.strip()] = _setting(value.strip())
    return rule_evaluators.make_rule(kind.strip(), **settings)


def _setting(value: str) -> Any:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return int(value) if value.isdigit() else value


def _owner(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", default=getpass.getuser(), help="owner (default: login name)")


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _dataset_create(args: argparse.Namespace) -> int:
    with Tracker(user_id=args.user) as tracker:
        dataset = tracker.create_dataset(args.name, description=args.description)
        added = tracker.dataset_from_tasks(
            dataset["id"], since=args.since, until=args.until, models=args.model,
            variants=args.variant, run_id=args.run, limit=args.limit,
        )  # fmt: skip
    print(f"dataset {args.name}: {added} items added")
    return 0


def _dataset_import(args: argparse.Namespace) -> int:
    stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    with stream, Tracker(user_id=args.user) as tracker:
        lines = [line for line in stream if line.strip()]
        counts = tracker.import_dataset(args.name, lines)
    print(f"dataset {args.name}: {counts['inserted']} added, {counts['replaced']} replaced")
    return 0


def _dataset_export(args: argparse.Namespace) -> int:
    with Tracker(user_id=args.user) as tracker:
        lines = list(tracker.export_dataset(args.name))
    text = "".join(line + "\n" for line in lines)
    if args.file == "-":
        sys.stdout.write(text)
    else:
        Path(args.file).write_text(text, encoding="utf-8")
    return 0


def _dataset_list(args: argparse.Namespace) -> int:
    with Tracker() as tracker:
        for row in tracker.list_datasets():
            print(f"{row['user_id']}\t{row['name']}\t{row['items']} items\t{row['id']}")
    return 0


def _eval_run(args: argparse.Namespace) -> int:
    rules = [parse_evaluator(text) for text in args.evaluator]
    prompt = args.prompt.read_text(encoding="utf-8") if args.prompt else None
    with Tracker(user_id=args.user) as tracker:
        done = run_experiment(
            tracker, args.dataset, model=args.model, provider=args.provider, name=args.name,
            prompt=prompt, rules=rules, base_url=args.base_url,
        )  # fmt: skip
    print(
        f"experiment {done.experiment['name']} (run {done.run_id}): {done.items} items, "
        f"{done.answered} answered now, {done.already} before, {done.failed} failed, "
        f"{done.scores} scores"
    )
    return 0
