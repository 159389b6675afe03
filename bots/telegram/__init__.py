"""The Telegram channel: videos in, cleaned videos back in the same chat.

`setup(app, deps)` mounts `POST /telegram/webhook` on the service's aiohttp app;
`blanklogo telegram-poll` (bots.telegram.poll) runs the same bot with long polling.
"""

from __future__ import annotations

from bots.telegram.webhook import setup

__all__ = ["setup"]
