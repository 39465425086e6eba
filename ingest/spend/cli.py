"""`ai-runs prices ...`, `ai-runs reprice ...`, `ai-runs budgets ...`: spend control
(docs/spend-control.md)."""

from __future__ import annotations

import argparse
import sys
import time

from ingest.spend import budgets, price_books, repricing


def register(commands: argparse._SubParsersAction) -> None:
    """Add the prices, reprice and budgets subcommands to `ai-runs`."""
    _register_prices(commands)
    _register_reprice(commands)
    _register_budgets(commands)


def _register_prices(commands: argparse._SubParsersAction) -> None:
    prices = commands.add_parser("prices", help="price overrides with validity windows")
    actions = prices.add_subparsers(dest="prices_command", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="add an override (USD per million tokens, or per request)",
        description="Windows are [from, to) in UTC; two live overrides of the same provider "
        "and pattern may not overlap. Existing costs change only by `ai-runs reprice`.",
    )
    add.add_argument("--provider", required=True, help="provider id, e.g. openai")
    add.add_argument("--model", required=True, help="model name or pattern (* and ?)")
    add.add_argument("--from", dest="valid_from", required=True, help="start, e.g. 2026-10-01")
    add.add_argument("--to", dest="valid_to", help="end (exclusive); open-ended when left out")
    for name in price_books.RATE_FIELDS:
        flag = "--" + name.replace("_per_mtok", "").replace("_", "-")
        unit = "USD per request" if name == "per_request" else "USD per million tokens"
        add.add_argument(flag, dest=name, metavar="USD", help=unit)
    add.add_argument("--note", default="", help="why (e.g. the contract it comes from)")
    add.set_defaults(handler=_prices_add)
    listing = actions.add_parser("list", help="list overrides")
    listing.add_argument("--all", action="store_true", help="include removed overrides")
    listing.set_defaults(handler=_prices_list)
    remove = actions.add_parser("remove", help="retire an override (kept for the audit)")
    remove.add_argument("id", type=int)
    remove.set_defaults(handler=_prices_remove)


def _register_reprice(commands: argparse._SubParsersAction) -> None:
    reprice = commands.add_parser(
        "reprice",
        help="recompute past costs under today's price books (audited)",
        description="Uses the price in force when each task ran. A real run is recorded "
        "(who, when, rule, tasks, old and new totals); --dry-run prints before/after per "
        "model and writes nothing.",
    )
    reprice.add_argument("--since", help="tasks created at or after (UTC date or time)")
    reprice.add_argument("--until", help="tasks created before (UTC date or time)")
    reprice.add_argument("--model", help="only this model")
    reprice.add_argument("--dry-run", action="store_true", help="show, do not write")
    reprice.add_argument(
        "--include-reported",
        action="store_true",
        help="also replace costs the provider reported with the library's list price "
        "(by default only an override replaces them)",
    )
    reprice.add_argument("--batch-size", type=int, default=5000, help="tasks per transaction")
    reprice.set_defaults(handler=_reprice)


def _register_budgets(commands: argparse._SubParsersAction) -> None:
    budget = commands.add_parser("budgets", help="budgets by scope (all, team, user, ...)")
    actions = budget.add_subparsers(dest="budgets_command", required=True, metavar="ACTION")
    set_ = actions.add_parser("set", help="create or change the budget of a scope")
    set_.add_argument("--amount", required=True, help="USD per period")
    set_.add_argument("--period", default="month", choices=budgets.PERIODS)
    set_.add_argument("--scope", default="all", choices=budgets.SCOPE_KINDS)
    set_.add_argument("--value", help="the team, user, model, tag or source type")
    set_.set_defaults(handler=_budgets_set)
    actions.add_parser("list", help="list budgets").set_defaults(handler=_budgets_list)
    remove = actions.add_parser("remove", help="delete a budget and its alert rules")
    remove.add_argument("id", type=int)
    remove.set_defaults(handler=_budgets_remove)


def _prices_add(args: argparse.Namespace) -> int:
    rates = {name: getattr(args, name) for name in price_books.RATE_FIELDS}
    row = price_books.add_override(
        provider=args.provider,
        model_pattern=args.model,
        valid_from=args.valid_from,
        valid_to=args.valid_to,
        note=args.note,
        **rates,
    )
    print(f"added price override {row['id']}: {_override_line(row)}")
    print("existing costs are unchanged until `ai-runs reprice` (try --dry-run first)")
    return 0


def _override_line(row: dict) -> str:
    window = f"[{row['valid_from']:%Y-%m-%d %H:%M}, "
    window += f"{row['valid_to']:%Y-%m-%d %H:%M})" if row["valid_to"] else "open)"
    rates = ", ".join(
        f"{name}={row[name].normalize()}"
        for name in price_books.RATE_FIELDS
        if row[name] is not None
    )
    removed = f" REMOVED {row['removed_at']:%Y-%m-%d}" if row["removed_at"] else ""
    return f"{row['provider']} {row['model_pattern']} {window} {rates}{removed}"


def _prices_list(args: argparse.Namespace) -> int:
    rows = price_books.list_overrides(include_removed=args.all)
    if not rows:
        print("no price overrides: every cost comes from " + price_books.library_ref())
    for row in rows:
        print(f"{row['id']:>5}  {_override_line(row)}")
    return 0


def _prices_remove(args: argparse.Namespace) -> int:
    row = price_books.remove_override(override_id=args.id)
    print(f"removed price override {row['id']}; costs it produced stay until a reprice")
    return 0


class ProgressBar:
    """A one-line progress bar on stderr (redrawn at most 10 times a second)."""

    def __init__(self, label: str, width: int = 30) -> None:
        self.label, self.width, self.drawn = label, width, 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.drawn < 0.1:
            return
        self.drawn = now
        share = done / total if total else 1.0
        filled = int(share * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        sys.stderr.write(f"\r{self.label} [{bar}] {done:,}/{total:,} tasks")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _reprice(args: argparse.Namespace) -> int:
    result = repricing.reprice(
        since=args.since,
        until=args.until,
        model=args.model,
        dry_run=args.dry_run,
        batch_size=args.batch_size,
        progress=ProgressBar("dry run" if args.dry_run else "repricing"),
        include_reported=args.include_reported,
    )
    print(f"{'provider/model':40} {'tasks':>9} {'changed':>8} {'before $':>14} {'after $':>14}")
    for (provider, model), totals in sorted(result.by_model.items(), key=lambda kv: str(kv[0])):
        print(
            f"{f'{provider}/{model}':40} {totals.tasks:>9,} {totals.changed:>8,} "
            f"{totals.old_total:>14,.6f} {totals.new_total:>14,.6f}"
        )
    print(
        f"{'total':40} {result.tasks_examined:>9,} {result.tasks_changed:>8,} "
        f"{result.old_total:>14,.6f} {result.new_total:>14,.6f}"
    )
    if result.kept_reported:
        print(
            f"{result.kept_reported:,} provider-reported costs kept (no override covers them; "
            "--include-reported replaces them with the library's price)"
        )
    if result.dry_run:
        print("dry run: nothing was written")
    else:
        print(f"recorded as re-pricing {result.audit_id}; run `ai-runs sync` to refresh the mirror")
    return 0


def _budgets_set(args: argparse.Namespace) -> int:
    row = budgets.set_budget(
        amount=args.amount,
        period=args.period,
        scope_kind=args.scope,
        scope_value=args.value,
        created_by=price_books.who(),
    )
    print(f"budget {row['id']}: {_budget_line(row)}")
    return 0


def _budget_line(row: dict) -> str:
    scope = "all" if row["scope_kind"] == "all" else f"{row['scope_kind']}={row['scope_value']}"
    return f"{scope} ${row['amount']:,.2f} per {row['period']}"


def _budgets_list(args: argparse.Namespace) -> int:
    rows = budgets.list_budgets()
    if not rows:
        print("no budgets; add one with `ai-runs budgets set --amount USD [--scope team ...]`")
    for row in rows:
        print(f"{row['id']:>5}  {_budget_line(row)}")
    return 0


def _budgets_remove(args: argparse.Namespace) -> int:
    row = budgets.remove_budget(budget_id=args.id)
    print(f"removed budget {row['id']} ({_budget_line(row)}) and its alert rules")
    return 0
