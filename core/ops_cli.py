"""`blanklogo ops ...`: the operator commands in a terminal, same reports as in chat.

    blanklogo ops health
    blanklogo ops queue
    blanklogo ops retry-stuck [minutes] [--dry-run]
    blanklogo ops job ID | retry ID | cancel ID
    (any of them with --json for the figures as JSON)

Exit status: 0 done (health: ok), 1 the command could not do it (health: degraded),
2 health down, bad usage, or the service's parts could not be reached at all.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from core.errors import StoreError
from core.ops.commands import COMMANDS, OpsReply, OpsRequest
from core.settings import Settings

if TYPE_CHECKING:
    from core.deps import Deps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `blanklogo ops`."""
    parser.add_argument("ops_command", metavar="command", choices=sorted(COMMANDS), help=_help())
    parser.add_argument("ops_args", metavar="args", nargs="*", help="job id, or [minutes]")
    parser.add_argument(
        "--dry-run", action="store_true", help="retry-stuck: list what it would do, change nothing"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def _help() -> str:
    return "; ".join(f"{name} {synopsis}".strip() for name, (synopsis, _) in COMMANDS.items())


def request_of(args: argparse.Namespace) -> OpsRequest:
    """The OpsRequest a command line stands for (the actor is the local user)."""
    words = list(args.ops_args)
    if args.dry_run:
        words.append("--dry-run")
    return OpsRequest(
        channel="cli", actor=_local_user(), command=args.ops_command, args=" ".join(words)
    )


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def exit_status(command: str, reply: OpsReply) -> int:
    """0 / 1 / 2 as the module docstring says."""
    if reply.data.get("usage"):
        return 2
    if command == "health":
        return {"ok": 0, "degraded": 1}.get(str(reply.data.get("status")), 2)
    return 0 if reply.ok else 1


def run(args: argparse.Namespace) -> int:
    """Run one ops command against the configured service and print its report."""
    return asyncio.run(_run(args, Settings()))


async def _run(args: argparse.Namespace, settings: Settings, **overrides: Any) -> int:
    from core.ops.service import execute

    try:
        deps = await _open(settings, args.ops_command, overrides)
    except Exception as exc:  # noqa: BLE001 - say what is unreachable instead of a trace
        print(f"blanklogo ops: cannot reach the service's parts: {exc}", file=sys.stderr)
        return 2
    try:
        fmt = "terminal" if sys.stdout.isatty() and not args.json else "text"
        reply = await execute(deps, request_of(args), fmt)
    finally:
        await deps.close()
    if args.json:
        print(json.dumps(reply.data, indent=2, default=str))
    else:
        print(reply.text)
    return exit_status(args.ops_command, reply)


async def _open(settings: Settings, command: str, overrides: dict[str, Any]) -> Deps:
    """Wire the service; for `health`, stand in for a database or Redis that cannot be reached,
    so the report names them instead of the command failing."""
    from core.deps import build

    try:
        return await build(settings, **overrides)
    except Exception as exc:
        if command != "health":
            raise
        first = exc
    parts = dict(overrides)
    closers: list[Callable[[], Awaitable[None]]] = []
    if "store" not in parts:
        from core.store import open_store

        try:
            store = await open_store(settings, migrate=False)
            closers.append(store.close)
            parts["store"] = store
        except Exception as exc:  # noqa: BLE001 - reported by the database check
            parts["store"] = UnreachableStore(f"{exc.__class__.__name__}: {exc}")
    if "redis" not in parts and settings.redis_url:
        from arq.connections import ArqRedis

        # connects lazily: each check that needs it reports Redis down in its own words
        lazy = ArqRedis.from_url(settings.redis_url, socket_connect_timeout=2)
        closers.append(lazy.aclose)
        parts["redis"] = lazy
    try:
        deps = await build(settings, **parts)
    except Exception:
        for close in reversed(closers):
            await close()
        raise first from None
    deps.closers[:0] = closers
    return deps


class UnreachableStore:
    """Stands in for a database `blanklogo ops health` could not open: every call fails."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def unreachable(*args: Any, **kwargs: Any) -> Any:
            raise StoreError(f"the database could not be opened ({self.reason})")

        return unreachable
