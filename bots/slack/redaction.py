"""Keeping Slack secrets out of the logs that slack_sdk and bolt write for us.

slack_sdk's Socket Mode client logs "Failed to connect (error: …)" at ERROR, with a traceback,
when a WebSocket handshake fails, and aiohttp's handshake error names the connection URL,
whose query holds the one-time ticket that opens the app's event stream. At DEBUG its web
client logs every response body, apps.connections.open's URL included. `install` puts a
filter on those loggers that rewrites each record (message, traceback, stack) with every
ws/wss URL query and Slack token (xoxb-, xoxp-, xapp-, …) masked, before any handler sees it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

#: a WebSocket URL's query (Slack's `ticket=…&app_id=…`); the host and path are kept
_WS_QUERY = re.compile(r"(?i)\b(wss?://[^\s'\"?#]*)\?[^\s'\"#]*")
#: a Slack token: bot, user, app-level, refresh, configuration
_TOKEN = re.compile(r"\b(xox[a-z]|xapp)-[0-9A-Za-z-]+")
#: a ticket on its own, outside a URL
_TICKET = re.compile(r"(?i)\b(ticket=)[^\s&'\"]+")

MASK = "[redacted]"

#: the loggers slack_sdk's Socket Mode clients use when they are given none
SOCKET_MODE_LOGGERS = (
    "slack_sdk.socket_mode.aiohttp",
    "slack_sdk.socket_mode.async_client",
    "slack_sdk.socket_mode.builtin.client",
    "slack_sdk.socket_mode.websockets",
    "slack_sdk.socket_mode.websocket_client",
)


def redact(text: str) -> str:
    """`text` with ws/wss URL queries, tickets and Slack tokens masked."""
    text = _WS_QUERY.sub(rf"\1?{MASK}", text)
    text = _TICKET.sub(rf"\1{MASK}", text)
    return _TOKEN.sub(rf"\1-{MASK}", text)


class RedactSlackSecrets(logging.Filter):
    """Rewrites a record so that no ws URL query, ticket or Slack token is left in it.

    A traceback that needed masking is kept as masked text only (exc_info is dropped: the
    exception object itself still carries the URL for any handler that formats it anew).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - bad arguments: the handler reports them itself
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        text = record.exc_text
        if not text and record.exc_info:
            text = _FORMATTER.formatException(record.exc_info)
        if text:
            clean = redact(text)
            if clean != text:
                record.exc_text, record.exc_info = clean, None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FORMATTER = logging.Formatter()
_FILTER = RedactSlackSecrets()


def install(loggers: Iterable[logging.Logger]) -> None:
    """Put the redacting filter on each logger (once), and on slack_sdk's Socket Mode loggers.

    A logger's filters see only the records logged on that very logger, so every logger a
    Slack client was given must be named here.
    """
    named = [logging.getLogger(name) for name in SOCKET_MODE_LOGGERS]
    for logger in [*loggers, *named]:
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
