"""The bolt AsyncApp built from Deps, with its event listeners and slash commands.

process_before_response stays False: bolt acks each event before its listener runs, and the
listeners only hand the message to a tracked background task, so Slack gets its answer in
milliseconds however slow the download is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bots.slack.background import BackgroundTasks
from bots.slack.client import close_pooled_session, make_web_client, use_pooled_session
from bots.slack.commands import register_commands
from bots.slack.intake import VideoIntake
from core.deps import Deps
from core.errors import ConfigError

logger = logging.getLogger(__name__)

#: message subtypes that a person posting something produces; the rest are edits, joins, bots…
PERSON_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
#: how long shutdown waits for downloads in flight before it gives up on them
DRAIN_TIMEOUT_S = 30.0


def is_from_bot(event: Mapping[str, Any], context: AsyncBoltContext) -> bool:
    """Whether a message was posted by a bot (ours above all: its results carry files too)."""
    if event.get("bot_id") or event.get("subtype") == "bot_message" or event.get("bot_profile"):
        return True
    user = event.get("user")
    return user is not None and user == context.bot_user_id


class SlackBot:
    """The Slack channel inside the web process: bolt app, video intake, background work."""

    def __init__(self, deps: Deps) -> None:
        settings = deps.settings
        secret = settings.slack_signing_secret
        if secret is None and settings.slack_app_token is None:
            raise ConfigError("SLACK_SIGNING_SECRET is not set (and no SLACK_APP_TOKEN either)")
        #: whether the HTTP endpoint may be served (Socket Mode alone needs no signing secret)
        self.serves_http = secret is not None
        self.deps = deps
        self.client = make_web_client(settings)
        self.background = BackgroundTasks()
        self.intake = VideoIntake(deps, self.client)
        self.bolt = AsyncApp(
            client=self.client,
            # "" keeps bolt from reading the environment; without a secret nothing is served
            # over HTTP (see serves_http), so bolt's verification only ever sees a real one
            signing_secret=secret.get_secret_value() if secret is not None else "",
            process_before_response=False,
            logger=logging.getLogger("bots.slack.bolt"),
            name="blanklogo",
        )
        self._register_events()
        register_commands(self.bolt, deps, self.background)

    def _register_events(self) -> None:
        self.bolt.event("message")(self._on_message)
        self.bolt.event("app_mention")(self._on_mention)

    async def _on_message(
        self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if event.get("subtype") not in PERSON_SUBTYPES or is_from_bot(event, context):
            return
        if not event.get("files"):
            # plain chat in a channel is not for us (mentions come as app_mention); in a DM it
            # is, so it gets the how-to
            if event.get("channel_type") == "im" and not event.get("subtype"):
                self._spawn(event, body, mentioned=True)
            return
        self._spawn(event, body, mentioned=False)

    async def _on_mention(
        self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if is_from_bot(event, context):
            return
        self._spawn(event, body, mentioned=True)

    def _spawn(self, event: dict[str, Any], body: dict[str, Any], *, mentioned: bool) -> None:
        event_id = body.get("event_id")
        self.background.spawn(
            self.intake.handle_message(event, event_id=event_id, mentioned=mentioned),
            name=f"slack-event-{event_id}",
        )

    async def start(self) -> None:
        """Open the pooled HTTP session (inside the event loop)."""
        use_pooled_session(self.client)

    async def close(self, timeout: float = DRAIN_TIMEOUT_S) -> None:
        """Let work in flight finish (up to `timeout`), then close the HTTP sessions."""
        await self.background.drain(timeout)
        await self.intake.close()
        await close_pooled_session(self.client)
