"""`ai-runs serve` and `ai-runs keys create|list|revoke`."""

from __future__ import annotations

import argparse

from ingest.server import keys


def register(commands: argparse._SubParsersAction) -> None:
    """Add this area's subcommands to `ai-runs`."""
    p = commands.add_parser("serve", help="the HTTP ingest server (REST API + OTLP receiver)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8400, help="port (default 8400)")
    p.add_argument(
        "--otlp-direct",
        action="store_true",
        help="write each OTLP trace export before answering it (default: answer once it is "
        "spooled, write it in the background; docs/server.md)",
    )
    p.add_argument(
        "--otlp-writers",
        type=int,
        default=None,
        metavar="N",
        help="processes that write spooled OTLP exports (default 1; docs/server.md)",
    )
    p.set_defaults(handler=_serve)

    k = commands.add_parser("keys", help="API keys of the ingest server: create, list, revoke")
    actions = k.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    c = actions.add_parser("create", help="make a key for a user and print it (shown once)")
    c.add_argument(
        "--user",
        required=True,
        help="user_id the key acts as (added to ai_users as a member when missing)",
    )
    c.add_argument("--name", default="", help="a label, e.g. the application")
    c.set_defaults(handler=_create)
    ls = actions.add_parser("list", help="list keys (never the keys themselves)")
    ls.add_argument("--user", default=None, help="only this user's keys")
    ls.set_defaults(handler=_list)
    r = actions.add_parser("revoke", help="revoke a key by its id or prefix (immediate)")
    r.add_argument("key", help="the key's id or prefix as `keys list` shows it")
    r.set_defaults(handler=_revoke)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ingest.server.app import create_app
    from ingest.server.otlp_spool import DEFAULT_WRITERS

    if args.otlp_writers is not None and args.otlp_writers < 1:
        raise SystemExit("ai-runs serve: --otlp-writers must be at least 1")
    writers = DEFAULT_WRITERS if args.otlp_writers is None else args.otlp_writers
    app = create_app(otlp_direct=args.otlp_direct, otlp_writers=writers)
    print(f"ai-runs ingest server on http://{args.host}:{args.port} (OpenAPI: /docs)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _create(args: argparse.Namespace) -> int:
    key, row = keys.create_key(args.user, args.name)
    print(key)
    print(f"(key {row['prefix']} for user {row['user_id']}; shown once, only its hash is kept)")
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = keys.list_keys(args.user)
    if not rows:
        print("no API keys")
    for row in rows:
        state = f"revoked {row['revoked_at']:%Y-%m-%d %H:%M}" if row["revoked_at"] else "active"
        print(
            f"{row['prefix']}  {row['id']}  user={row['user_id']}  name={row['name'] or '-'}  "
            f"created {row['created_at']:%Y-%m-%d %H:%M}  {state}"
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    for row in keys.revoke_key(args.key):
        print(f"revoked {row['prefix']} ({row['id']}) of user {row['user_id']}")
    return 0
