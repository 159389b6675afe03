"""The command menu and the operator commands, which the shared ops functions answer."""

from __future__ import annotations

import logging

from telegram import Bot, BotCommand

from core.deps import Deps
from core.ops import COMMANDS

logger = logging.getLogger(__name__)

#: Telegram command -> ops command (Telegram commands cannot contain a hyphen)
OPS_COMMANDS: dict[str, str] = {name.replace("-", "_"): name for name in COMMANDS}

MENU: tuple[BotCommand, ...] = (
    BotCommand("start", "What this bot does"),
    BotCommand("help", "How to use it, options and limits"),
    BotCommand("health", "Service health (admins)"),
    BotCommand("queue", "Queue report (admins)"),
    BotCommand("retry_stuck", "Requeue stuck jobs (admins)"),
    BotCommand("job", "Show a job: /job <id> (admins)"),
    BotCommand("retry", "Retry a job: /retry <id> (admins)"),
    BotCommand("cancel", "Cancel a job: /cancel <id> (admins)"),
)


async def publish_menu(bot: Bot) -> None:
    """Publish the command menu (setMyCommands)."""
    await bot.set_my_commands(list(MENU))


async def answer_ops_command(deps: Deps, actor: str, command: str, args: str) -> str:
    """Run one operator command through the shared ops functions; return the reply text."""
    try:
        from core.ops import OpsRequest, handle_command
    except ImportError:  # the ops part is deployed separately from the bot in some set-ups
        logger.error("ops command /%s from telegram:%s but core.ops is unavailable", command, actor)
        return "Operator commands are not available on this installation."
    reply = await handle_command(
        deps,
        OpsRequest(channel="telegram", actor=actor, command=OPS_COMMANDS[command], args=args),
    )
    return reply.text
