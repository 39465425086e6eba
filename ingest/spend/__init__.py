"""Spend: prices, price books, re-pricing, budgets and alert rules
(docs/spend-control.md)."""
