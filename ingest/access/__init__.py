"""Access: who may read and change what (docs/access.md).

- viewer: connections that act as a viewer under row-level security, sign-in look-ups,
  the runs a viewer may see;
- redaction: masking e-mail addresses, keys and admin patterns before anything is stored,
  and the record of the masks applied per task.

The Tracker's sharing, audit and rule management (ingest.tracking) and `ai-runs user |
share | redaction | audit` (ingest/tracking/cli.py) build on these.
"""

from ingest.access import redaction, viewer

__all__ = ["redaction", "viewer"]
