"""Access: connections as a viewer under row-level security, and redaction
(docs/access.md)."""
