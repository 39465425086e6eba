"""Tracking: the Tracker (runs, tasks, users, access) and its background task writer
(docs/tracking.md)."""
