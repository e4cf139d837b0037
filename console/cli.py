"""``operator-console``: serve the API, manage keys and deployments on the database directly.

Standard output carries only what a script needs (a key, an id, a listing); errors go to standard error
with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from console import ops, queries
from console.db import make_engine, migrate
from console.errors import ConsoleError
from console.plans import validate_plan
from console.settings import Settings, db_url_from

__all__ = ["main"]

T = TypeVar("T")


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {value!r}")
    return number


def _non_negative(value: str) -> float:
    """A number >= 0; 0 disables the corresponding rate limit."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value!r}")
    return number


def _db_args(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--db", metavar="PATH", help="SQLite database file (default ./console.db)")
    group.add_argument("--db-url", metavar="URL", help="SQLAlchemy URL, e.g. postgresql+psycopg://u@h/db")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="operator-console", description="Console API server and admin")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server")
    _db_args(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port (printed)")
    serve.add_argument("--lease-seconds", type=_positive, default=300.0)
    serve.add_argument("--rate-limits", choices=("on", "off"), default="on")
    serve.add_argument("--poll-interval-limit", type=_non_negative, default=10.0, metavar="S")
    serve.add_argument("--events-per-minute", type=_non_negative, default=100.0, metavar="N")
    serve.add_argument("--telemetry-interval-limit", type=_non_negative, default=30.0, metavar="S")
    serve.add_argument("--max-body-bytes", type=int, default=1 << 20)
    serve.add_argument("--key-cache-seconds", type=_non_negative, default=1.0)
    serve.add_argument("--sqlite-synchronous", choices=("full", "normal"), default="full")
    serve.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))

    keys = sub.add_parser("keys", help="create, revoke or list API keys")
    key_sub = keys.add_subparsers(dest="key_command", required=True)
    create = key_sub.add_parser("create", help="create a key and print it (shown once)")
    _db_args(create)
    create.add_argument("--name", required=True)
    create.add_argument("--scope", choices=("agent", "operator"), default="agent")
    create.add_argument("--test", action="store_true", help="rs_test_ prefix instead of rs_live_")
    revoke = key_sub.add_parser("revoke", help="revoke a key by name")
    _db_args(revoke)
    revoke.add_argument("name")
    klist = key_sub.add_parser("list", help="list keys (never the keys themselves)")
    _db_args(klist)

    deploy = sub.add_parser("deploy", help="create a deployment from a plan file; prints its id")
    _db_args(deploy)
    deploy.add_argument("plan", metavar="PLAN.json", type=Path)
    deploy.add_argument("--satellite", required=True, metavar="ID")
    deploy.add_argument("--mode", choices=("live", "simulated"), default="live")
    deploy.add_argument("--speed", type=_positive, default=100.0)

    deps = sub.add_parser("deployments", help="list deployments, or show one with its events")
    _db_args(deps)
    deps.add_argument("id", nargs="?")
    deps.add_argument("--json", action="store_true")

    cancel = sub.add_parser("cancel", help="cancel a deployment")
    _db_args(cancel)
    cancel.add_argument("id")
    return parser


def _open(args: argparse.Namespace) -> Engine:
    engine = make_engine(db_url_from(args.db, args.db_url), pool_size=1)
    migrate(engine)
    return engine


def _tx(engine: Engine, fn: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return fn(conn)


def _serve(args: argparse.Namespace) -> int:
    from console.server import serve

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings(
        db_url=db_url_from(args.db, args.db_url),
        lease_seconds=args.lease_seconds,
        rate_limits=args.rate_limits == "on",
        poll_min_interval_s=args.poll_interval_limit,
        events_per_minute=args.events_per_minute,
        telemetry_min_interval_s=args.telemetry_interval_limit,
        max_body_bytes=args.max_body_bytes,
        key_cache_s=args.key_cache_seconds,
        synchronous=args.sqlite_synchronous,
    )
    asyncio.run(serve(settings, args.host, args.port, log_level=args.log_level))
    return 0


def _show(engine: Engine, dep_id: str | None, as_json: bool) -> None:
    if dep_id is None:
        page = _tx(engine, lambda c: queries.list_deployments(c, limit=10_000))
        if as_json:
            print(json.dumps([d.model_dump() for d in page.deployments], indent=2))
        for d in [] if as_json else page.deployments:
            print(
                f"{d.id}\t{d.status}\t{d.mode}\t{d.satellite_id}\t{d.plan_id}\t{d.event_count}\t{d.created_at}"
            )
        return
    dep = _tx(engine, lambda c: queries.get_deployment(c, dep_id))
    evs = _tx(engine, lambda c: queries.list_events(c, dep_id, limit=1_000_000))
    if as_json:
        print(json.dumps({**dep.model_dump(), "events": [e.model_dump() for e in evs.events]}, indent=2))
        return
    for name, value in dep.model_dump().items():
        print(f"{name}: {value}")
    for e in evs.events:
        print(f"{e.event_timestamp}\t{e.event_type}\t{e.step_id or '-'}\t{json.dumps(e.payload)}")


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(args)
    engine = _open(args)
    try:
        if args.command == "keys" and args.key_command == "create":
            print(_tx(engine, lambda c: ops.create_key(c, args.name, args.scope, live=not args.test)))
        elif args.command == "keys" and args.key_command == "revoke":
            _tx(engine, lambda c: ops.revoke_key(c, args.name))
        elif args.command == "keys":
            for k in _tx(engine, ops.list_keys):
                print(f"{k.name}\t{k.scope}\t{'revoked' if k.revoked else 'active'}")
        elif args.command == "deploy":
            plan = _load_plan(args.plan)
            timeline = validate_plan(plan, args.plan.stem)
            print(
                _tx(
                    engine,
                    lambda c: ops.create_deployment(
                        c,
                        plan=plan,
                        satellite_id=args.satellite,
                        mode=args.mode,
                        speed=args.speed,
                        timeline=timeline,
                    ),
                )
            )
        elif args.command == "deployments":
            _show(engine, args.id, args.json)
        elif args.command == "cancel":
            _tx(engine, lambda c: ops.cancel_deployment(c, args.id))
        return 0
    finally:
        engine.dispose()


def _load_plan(path: Path) -> dict[str, Any]:
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConsoleError(f"cannot read plan {path}: {exc}") from None
    if not isinstance(plan, dict):
        raise ConsoleError(f"plan {path} is not a JSON object")
    return plan


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ConsoleError as exc:
        print(f"operator-console: {exc.message}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"operator-console: database error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
