"""The Slack channel: videos shared with the bot become jobs; results go back to the thread.

`setup(app, deps)` mounts `POST /slack/events` (Events API and slash commands, through
bolt's aiohttp adapter) and, when SLACK_APP_TOKEN is set, starts Socket Mode with the app.
"""

from __future__ import annotations

import logging

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from bots.slack import socket_mode
from bots.slack.app import SlackBot
from core.deps import Deps

logger = logging.getLogger(__name__)

SLACK_BOT_KEY = web.AppKey("slack_bot", SlackBot)
EVENTS_PATH = "/slack/events"


async def slack_events(request: web.Request) -> web.Response:
    """Hand a Slack HTTP request to bolt (signature check, ack, listeners) and return its answer."""
    bot = request.app[SLACK_BOT_KEY]
    bolt_response = await bot.bolt.async_dispatch(await to_bolt_request(request))
    if bolt_response.status == 401:
        logger.info("slack request from %s refused: bad or expired signature", request.remote)
    return await to_aiohttp_response(bolt_response)


def setup(app: web.Application, deps: Deps) -> None:
    """Mount the Slack bot on `app` (call only when settings.slack_enabled).

    The HTTP route needs SLACK_SIGNING_SECRET; with only SLACK_APP_TOKEN the bot runs over
    Socket Mode alone and `/slack/events` does not exist (nothing unsigned is ever served).
    """
    bot = SlackBot(deps)
    app[SLACK_BOT_KEY] = bot
    if bot.serves_http:
        app.router.add_post(EVENTS_PATH, slack_events)
    handler = socket_mode.build_socket_mode_handler(bot.bolt, deps.settings)
    connection = socket_mode.SocketModeConnection(handler) if handler is not None else None

    async def start(_: web.Application) -> None:
        await bot.start()
        if connection is not None:
            # in the background: the app serves (health, webhooks) while Slack is away
            connection.start()

    async def stop(_: web.Application) -> None:
        if connection is not None:
            await connection.close()
        await bot.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    logger.info(
        "slack bot mounted: http %s, socket mode %s",
        EVENTS_PATH if bot.serves_http else "off (no SLACK_SIGNING_SECRET)",
        "on" if handler else "off",
    )


__all__ = ["EVENTS_PATH", "SLACK_BOT_KEY", "SlackBot", "setup"]
