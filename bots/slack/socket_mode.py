"""Socket Mode: events over a WebSocket that the bot opens, for installs without a public URL.

With SLACK_APP_TOKEN (xapp-…) set, the web process opens the connection in the background
at start-up; the same bolt app and listeners handle what arrives, so behaviour is identical
to the HTTP endpoint. Start-up never waits on Slack: slack_sdk's own `connect()` retries
forever when Slack cannot be reached, so each try here is bounded, and failed tries are
repeated with backoff (one WARNING line each) while the web app serves health and webhooks.
Once connected, slack_sdk reconnects by itself when the connection drops. The connection
URL's ticket is a secret that slack_sdk logs when a handshake fails; `bots.slack.redaction`
masks it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bots.slack import redaction
from bots.slack.client import api_error
from core.settings import Settings

logger = logging.getLogger(__name__)

#: how long one try may take: apps.connections.open, then the WebSocket handshake
CONNECT_TRY_S = 10.0
#: the wait after the first failed try, doubled after each further one up to RETRY_MAX_S
RETRY_FIRST_S = 2.0
RETRY_MAX_S = 120.0


def build_socket_mode_handler(bolt: AsyncApp, settings: Settings) -> AsyncSocketModeHandler | None:
    """A Socket Mode handler for `bolt`, or None when SLACK_APP_TOKEN is unset."""
    if settings.slack_app_token is None:
        return None
    # the app's web client (SLACK_API_BASE_URL) also opens the connection (apps.connections.open)
    handler = AsyncSocketModeHandler(bolt, app_token=settings.slack_app_token.get_secret_value())
    # the connection URL's ticket is a secret: slack_sdk logs it when a handshake fails
    redaction.install([handler.client.logger, handler.client.web_client.logger])
    return handler


class SocketModeConnection:
    """The bot's Socket Mode WebSocket: opened in the background, tried again with backoff."""

    def __init__(self, handler: AsyncSocketModeHandler) -> None:
        self.handler = handler
        self._connecting: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start connecting; returns at once (call inside the running event loop)."""
        self._connecting = asyncio.get_running_loop().create_task(
            _keep_connecting(self.handler), name="slack-socket-mode-connect"
        )

    async def close(self) -> None:
        """Stop trying to connect, then close the WebSocket and its session."""
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.wait({self._connecting})
        await self.handler.close_async()
        logger.info("slack socket mode closed")


async def _keep_connecting(handler: AsyncSocketModeHandler) -> None:
    wait_s = RETRY_FIRST_S
    for attempt in itertools.count(1):
        try:
            await asyncio.wait_for(_connect_once(handler), CONNECT_TRY_S)
        except Exception as exc:  # noqa: BLE001 - any failure is one more try later
            logger.warning(
                "slack socket mode not connected (try %d: %s); trying again in %gs",
                attempt,
                _reason(exc),
                wait_s,
            )
        else:
            logger.info("slack socket mode connected (try %d)", attempt)
            return
        await asyncio.sleep(wait_s)
        wait_s = min(wait_s * 2, RETRY_MAX_S)


async def _connect_once(handler: AsyncSocketModeHandler) -> None:
    client = handler.client
    # a fresh URL each try (Slack's expire); asked for here so that its errors reach us,
    # whereas a WebSocket that does not open keeps slack_sdk's connect() retrying until
    # CONNECT_TRY_S cuts it short
    client.wss_uri = await client.issue_new_wss_url()
    await client.connect()


def _reason(exc: Exception) -> str:
    # never str(exc) of a handshake error: it carries the connection URL and its ticket
    if isinstance(exc, SlackApiError):
        return f"apps.connections.open answered {api_error(exc) or exc.response.status_code}"
    if isinstance(exc, TimeoutError):
        return f"no connection within {CONNECT_TRY_S:g}s"
    return f"Slack unreachable, {exc.__class__.__name__}"
