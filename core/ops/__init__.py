"""Operator commands, built once and exposed in Slack, Telegram, HTTP and the terminal.

    handle_command(deps, OpsRequest(channel, actor, command, args)) -> OpsReply(text, ok, data)

Modules: `commands` (requests, replies, argument parsing), `thresholds` (the runbook's
bands), `stats` and `reports` (figures), `render` (words per channel) are pure;
`service` does the work through `Deps`, and is imported lazily here so that importing
the pure parts never drags in the I/O side (and `core.health` may use them freely).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.ops.commands import COMMANDS, OpsReply, OpsRequest, UsageError, parse_command

if TYPE_CHECKING:
    from core.deps import Deps

__all__ = ["COMMANDS", "OpsReply", "OpsRequest", "UsageError", "handle_command", "parse_command"]


async def handle_command(deps: Deps, request: OpsRequest) -> OpsReply:
    """Gate, run, audit and render one operator command (see core.ops.service)."""
    from core.ops.service import handle_command as run_command

    return await run_command(deps, request)
