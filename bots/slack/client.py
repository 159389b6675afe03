"""The Slack Web API client we use everywhere, and how its errors map onto ours."""

from __future__ import annotations

import asyncio

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from core.errors import ConfigError
from core.settings import Settings

#: Slack `error` codes that say "not now" rather than "never"
TEMPORARY_API_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
API_TIMEOUT_S = 30


def make_web_client(settings: Settings, *, timeout: int = API_TIMEOUT_S) -> AsyncWebClient:
    """An AsyncWebClient with the bot token, talking to SLACK_API_BASE_URL."""
    if settings.slack_bot_token is None:
        raise ConfigError("SLACK_BOT_TOKEN is not set")
    base_url = settings.slack_api_base_url
    if not base_url.endswith("/"):
        base_url += "/"
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=base_url, timeout=timeout
    )


def use_pooled_session(client: AsyncWebClient) -> None:
    """Give the client one keep-alive HTTP session (else slack_sdk opens one per call).

    Call inside the running event loop; `close_pooled_session` closes it.
    """
    if client.session is None or client.session.closed:
        client.session = aiohttp.ClientSession()


async def close_pooled_session(client: AsyncWebClient) -> None:
    """Close the session `use_pooled_session` gave the client."""
    session, client.session = client.session, None
    if session is not None and not session.closed:
        await session.close()


def api_error(exc: SlackApiError) -> str:
    """The `error` code of a failed Web API call."""
    data = getattr(exc.response, "data", None)
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def is_temporary(exc: BaseException) -> bool:
    """Whether retrying the same Slack call later may succeed (rate limit, 5xx, network)."""
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", 200)
        return status == 429 or status >= 500 or api_error(exc) in TEMPORARY_API_ERRORS
    if isinstance(exc, SlackRequestError):
        # files_upload_v2 raises this when the upload URL answers anything but 200
        return "Failed to upload a file" in str(exc)
    return isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError)
