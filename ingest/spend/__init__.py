"""Spend control (docs/spend-control.md).

- pricing: the genai-prices library's price of a task (`cost_of_task`);
- price_books: overrides with validity windows, and `price_new_tasks`, the one way every
  write path prices a finished task;
- repricing: re-pricing past tasks, audited (`recompute_costs`);
- budgets and alert_rules: budgets with a scope, and alert rules with their history;
- acting (used inside this package): whose rights a change of these settings uses, the
  viewer's under row-level security or the owner's (migration 0018);
- cli: `ai-runs prices | reprice | budgets`.
"""

from ingest.spend import alert_rules, budgets, cli, price_books, pricing, repricing

__all__ = ["alert_rules", "budgets", "cli", "price_books", "pricing", "repricing"]
