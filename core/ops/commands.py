"""Ops command requests, replies and argument parsing. Pure: no I/O.

Commands (chat: `/health`, `/queue`, `/retry-stuck` (Telegram `/retry_stuck`), `/job <id>`,
`/retry <id>`, `/cancel <id>`; terminal: `blanklogo ops <command> ...`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: channels that may run commands ("http" only serves GET /health and /metrics)
COMMAND_CHANNELS = ("slack", "telegram", "cli")

COMMANDS: dict[str, tuple[str, str]] = {
    "health": ("", "check Redis, database, storage, engine and workers"),
    "queue": ("", "queue depth, jobs by state, completion time and error rate"),
    "retry-stuck": (
        "[minutes] [--dry-run]",
        "requeue jobs processing too long or with an expired lease",
    ),
    "job": ("<job id>", "state, progress, attempts, error and timings of one job"),
    "retry": ("<job id>", "put a failed or cancelled job back in the queue"),
    "cancel": ("<job id>", "cancel a queued or processing job"),
}

_ALIASES = {"retry_stuck": "retry-stuck", "retrystuck": "retry-stuck", "status": "job"}
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MINUTES = re.compile(r"^(\d+(?:\.\d+)?)\s*(m|min|mins|minutes?)?$", re.IGNORECASE)
_DRY_RUN = {"--dry-run", "--dryrun", "dry-run", "dryrun", "--dry", "dry", "-n"}
#: a week: beyond that "minutes" is surely a typo
MAX_MINUTES = 7 * 24 * 60


@dataclass(frozen=True)
class OpsRequest:
    """One operator command as a channel received it."""

    channel: str  # slack | telegram | cli
    actor: str  # the platform user id (with or without a "slack:" style prefix)
    command: str  # "health", "/retry-stuck", "retry_stuck", ...
    args: str = ""


@dataclass(frozen=True)
class OpsReply:
    """What to show the operator (`text`, already formatted for the channel) and the figures."""

    text: str
    ok: bool
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedCommand:
    name: str
    job_id: str | None = None
    minutes: float | None = None
    dry_run: bool = False


class UsageError(ValueError):
    """The command or its arguments do not parse; the message says how to write it."""


def normalize_command(command: str) -> str:
    """'/Retry_Stuck@blanklogo_bot' -> 'retry-stuck'; unknown names are returned cleaned."""
    name = command.strip().lstrip("/").split("@", 1)[0].strip().lower()
    return _ALIASES.get(name, name)


def usage(name: str | None = None, prefix: str = "/") -> str:
    """Usage of one command, or of all of them."""
    if name in COMMANDS:
        synopsis, what = COMMANDS[name]
        return f"Usage: {prefix}{name} {synopsis}".rstrip() + f" - {what}"
    lines = ["Ops commands:"]
    for cmd, (synopsis, what) in COMMANDS.items():
        lines.append(f"  {prefix}{cmd} {synopsis}".rstrip() + f" - {what}")
    return "\n".join(lines)


def parse_command(command: str, args: str) -> ParsedCommand:
    """Parse a command and its argument string; raise UsageError with a helpful message."""
    name = normalize_command(command)
    if name not in COMMANDS:
        shown = command.strip()[:40] or "(empty)"
        raise UsageError(f"Unknown command {shown!r}.\n{usage()}")
    tokens = (args or "").split()
    if name in ("health", "queue"):
        if tokens:
            raise UsageError(f"{name} takes no arguments.\n{usage(name)}")
        return ParsedCommand(name)
    if name == "retry-stuck":
        return _parse_retry_stuck(tokens)
    if len(tokens) != 1:
        raise UsageError(f"{name} needs exactly one job id.\n{usage(name)}")
    job_id = tokens[0].strip("`'\"<>")
    if not _JOB_ID.match(job_id):
        raise UsageError(f"{job_id[:40]!r} is not a job id.\n{usage(name)}")
    return ParsedCommand(name, job_id=job_id)


def _parse_retry_stuck(tokens: list[str]) -> ParsedCommand:
    dry_run = False
    minutes: float | None = None
    for token in tokens:
        if token.lower() in _DRY_RUN:
            dry_run = True
            continue
        match = _MINUTES.match(token)
        if match is None or minutes is not None:
            raise UsageError(f"I did not understand {token[:40]!r}.\n{usage('retry-stuck')}")
        minutes = float(match.group(1))
        if not 0 < minutes <= MAX_MINUTES:
            raise UsageError(
                f"minutes must be more than 0 and at most {MAX_MINUTES} (a week), got {token[:20]}.\n"
                f"{usage('retry-stuck')}"
            )
    return ParsedCommand("retry-stuck", minutes=minutes, dry_run=dry_run)
