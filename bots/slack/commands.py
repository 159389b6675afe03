"""Slash commands: each is translated into one call of the shared ops functions (core.ops).

core.ops does the admin gate (SLACK_ADMIN_USER_IDS) and the audit; this module only routes
and answers ephemerally: within the ack when the report is ready in time, else through
`respond` (the command's response_url) once it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp

from bots.slack.background import BackgroundTasks
from core.deps import Deps
from core.ops import COMMANDS as OPS_COMMAND_NAMES
from core.ops import OpsRequest, handle_command

logger = logging.getLogger(__name__)

#: Slack command -> ops command name (every shared ops command, as a slash command)
COMMANDS: Mapping[str, str] = {f"/{name}": name for name in OPS_COMMAND_NAMES}
#: how long the ack waits for the report before it answers "working on it" (Slack allows 3 s)
ANSWER_IN_ACK_S = 2.0


async def run_ops_command(deps: Deps, actor: str, command: str, args: str) -> str:
    """The text of core.ops' reply to one command (its refusal, for non-admins)."""
    try:
        reply = await handle_command(
            deps, OpsRequest(channel="slack", actor=actor, command=command, args=args)
        )
    except Exception:
        logger.exception("/%s from %s failed", command, actor)
        return f":x: `/{command}` failed on our side; the logs have the details."
    return str(reply.text)


def register_commands(bolt: AsyncApp, deps: Deps, background: BackgroundTasks) -> None:
    """Route every slash command in COMMANDS to the ops functions."""
    for slash, name in COMMANDS.items():
        bolt.command(slash)(_handler(deps, background, name))


def _handler(deps: Deps, background: BackgroundTasks, name: str) -> Callable[..., Awaitable[None]]:
    async def handle(ack: Any, command: Mapping[str, Any], respond: Any) -> None:
        actor, args = str(command.get("user_id", "")), str(command.get("text") or "").strip()
        logger.info("slack /%s from %s", name, actor)
        task = background.spawn(run_ops_command(deps, actor, name, args), name=f"slack-/{name}")
        done, _ = await asyncio.wait({task}, timeout=ANSWER_IN_ACK_S)
        if task in done:
            await ack(response_type="ephemeral", text=task.result())
            return
        await ack(response_type="ephemeral", text=f":hourglass_flowing_sand: Running `/{name}`…")
        background.spawn(_respond_when_done(task, respond, name), name=f"slack-/{name}-respond")

    handle.__name__ = f"slack_command_{name.replace('-', '_')}"
    return handle


async def _respond_when_done(task: asyncio.Task[str], respond: Any, name: str) -> None:
    text = await task
    try:
        await respond(response_type="ephemeral", text=text)
    except Exception as exc:  # noqa: BLE001 - the response_url may have expired (30 min)
        logger.warning("late answer to /%s not sent: %s", name, exc.__class__.__name__)
