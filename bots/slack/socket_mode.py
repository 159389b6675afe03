"""Socket Mode: events over a WebSocket that the bot opens, for installs without a public URL.

With SLACK_APP_TOKEN (xapp-…) set, the web process connects at start-up; the same bolt app
and listeners handle what arrives, so behaviour is identical to the HTTP endpoint.
"""

from __future__ import annotations

import logging

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from core.settings import Settings

logger = logging.getLogger(__name__)


def build_socket_mode_handler(bolt: AsyncApp, settings: Settings) -> AsyncSocketModeHandler | None:
    """A Socket Mode handler for `bolt`, or None when SLACK_APP_TOKEN is unset."""
    if settings.slack_app_token is None:
        return None
    # the app's web client (SLACK_API_BASE_URL) also opens the connection (apps.connections.open)
    return AsyncSocketModeHandler(bolt, app_token=settings.slack_app_token.get_secret_value())


async def connect(handler: AsyncSocketModeHandler) -> None:
    """Open the WebSocket; the client reconnects by itself when it drops."""
    await handler.connect_async()
    logger.info("slack socket mode connected")


async def close(handler: AsyncSocketModeHandler) -> None:
    """Close the WebSocket and its session."""
    await handler.close_async()
    logger.info("slack socket mode closed")
