"""`blanklogo telegram-poll`: run the bot with long polling, for installs without a public URL."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from bots.telegram.application import bot_token
from core.errors import ConfigError
from core.settings import Settings

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI options of `blanklogo telegram-poll`."""
    parser.add_argument(
        "--drop-pending",
        action="store_true",
        help="skip the updates Telegram kept while the bot was offline",
    )
    parser.add_argument(
        "--poll-timeout", type=int, default=30, help="long-poll timeout in seconds (default 30)"
    )


def run(args: argparse.Namespace) -> int:
    """Poll Telegram for updates until interrupted."""
    settings = Settings()
    try:
        bot_token(settings)
    except ConfigError as exc:
        print(f"{exc}; the Telegram bot is off.")
        return 2
    asyncio.run(poll(settings, drop_pending=args.drop_pending, timeout=args.poll_timeout))
    return 0


async def poll(
    settings: Settings,
    *,
    drop_pending: bool = False,
    timeout: int = 30,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the bot on getUpdates until `stop` is set (or SIGINT/SIGTERM)."""
    from bots.telegram.application import ALLOWED_UPDATES, build_application
    from bots.telegram.commands import publish_menu
    from core.deps import build

    stop = stop or _stop_on_signals()
    deps = await build(settings)
    try:
        application = build_application(deps, polling=True)
        async with application:
            await publish_menu(application.bot)
            assert application.updater is not None
            # start_polling removes any webhook first: Telegram allows one or the other
            await application.updater.start_polling(
                timeout=timeout, allowed_updates=ALLOWED_UPDATES, drop_pending_updates=drop_pending
            )
            await application.start()
            logger.info("telegram bot @%s polling for updates", application.bot.username)
            await stop.wait()
            await application.updater.stop()
            await application.stop()
    finally:
        await deps.close()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
