"""`POST /telegram/webhook`: check the secret token, drop redeliveries, hand the update to PTB.

The handler answers as soon as the update is queued; PTB processes updates concurrently
(`concurrent_updates`), so one slow download never holds up another chat.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging

from aiohttp import web
from redis.exceptions import RedisError
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application

from bots.telegram.application import ALLOWED_UPDATES, build_application
from bots.telegram.commands import publish_menu
from core.deps import Deps
from core.settings import Settings

logger = logging.getLogger(__name__)

ROUTE = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: Telegram gives up redelivering long before a day has passed
DEDUP_TTL_S = 24 * 3600
#: seconds between attempts to reach Telegram when it was down at start-up
START_RETRY_S = 30.0


class TelegramWebhook:
    """The PTB Application behind the webhook route, and its life cycle."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.application: Application = build_application(deps)
        self._starting: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.application.running

    async def start(self) -> None:
        """Initialise the bot (getMe), publish the menu, register the webhook, start."""
        await self.application.initialize()
        try:
            await publish_menu(self.application.bot)
        except TelegramError as exc:
            logger.warning("telegram command menu not published: %s", exc)
        await register_webhook(self.application, self.deps.settings)
        await self.application.start()
        logger.info("telegram bot @%s ready for webhooks", self.application.bot.username)

    async def on_startup(self, app: web.Application) -> None:
        if self.deps.settings.telegram_webhook_secret is None:
            logger.warning(
                "TELEGRAM_WEBHOOK_SECRET is not set: %s refuses every update (403); "
                "set it, or use `blanklogo telegram-poll`",
                ROUTE,
            )
        try:
            await self.start()
        except TelegramError as exc:
            # the rest of the service must come up even when Telegram is unreachable
            logger.error("telegram bot not started (%s); retrying every %ss", exc, START_RETRY_S)
            self._starting = asyncio.create_task(self._keep_starting())

    async def _keep_starting(self) -> None:
        while not self.ready:
            await asyncio.sleep(START_RETRY_S)
            try:
                await self.start()
            except TelegramError as exc:
                logger.warning("telegram bot still not started: %s", exc)

    async def on_cleanup(self, app: web.Application) -> None:
        if self._starting is not None:
            self._starting.cancel()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def handle(self, request: web.Request) -> web.Response:
        """Check, deduplicate and queue one update; never waits for its processing."""
        settings = self.deps.settings
        if settings.telegram_webhook_secret is None:
            logger.debug("telegram webhook refused: TELEGRAM_WEBHOOK_SECRET is not set")
            return web.Response(status=403, text="webhook secret not configured")
        given = request.headers.get(SECRET_HEADER, "").encode()
        expected = settings.telegram_webhook_secret.get_secret_value().encode()
        if not hmac.compare_digest(given, expected):
            return web.Response(status=403, text="bad secret token")
        if not self.ready:
            return web.Response(status=503, text="bot not started yet")
        try:
            data = json.loads(await request.read())
            update_id = data["update_id"]
            if not isinstance(update_id, int):
                raise TypeError("update_id is not an integer")
            update = Update.de_json(data, self.application.bot)
        except (ValueError, KeyError, TypeError) as exc:
            return web.Response(status=400, text=f"not a Telegram update: {exc}")
        try:
            first = await self.deps.redis.set(
                f"{settings.redis_prefix}:telegram:update:{update_id}",
                b"1",
                nx=True,
                ex=DEDUP_TTL_S,
            )
        except (RedisError, OSError) as exc:
            logger.warning(
                "telegram update %s not deduplicated, asking for redelivery: %s", update_id, exc
            )
            return web.Response(status=503, text="try again")
        if not first:
            logger.info("telegram update %s redelivered; already handled", update_id)
            return web.Response(text="duplicate")
        await self.application.update_queue.put(update)
        return web.Response(text="ok")


def webhook_url(settings: Settings) -> str | None:
    """Where Telegram should post updates: PUBLIC_BASE_URL + ROUTE, when it is https."""
    base = settings.public_base_url.rstrip("/")
    return f"{base}{ROUTE}" if base.startswith("https://") else None


async def register_webhook(application: Application, settings: Settings) -> None:
    """setWebhook with our secret token, when PUBLIC_BASE_URL is a public https URL."""
    url = webhook_url(settings)
    if url is None or settings.telegram_webhook_secret is None:
        logger.info(
            "telegram webhook not registered (needs an https PUBLIC_BASE_URL and "
            "TELEGRAM_WEBHOOK_SECRET); see docs/telegram.md"
        )
        return
    try:
        await application.bot.set_webhook(
            url,
            secret_token=settings.telegram_webhook_secret.get_secret_value(),
            allowed_updates=ALLOWED_UPDATES,
        )
    except TelegramError as exc:
        logger.warning("telegram webhook not registered at %s: %s", url, exc)
        return
    logger.info("telegram webhook registered at %s", url)


TELEGRAM_WEBHOOK = web.AppKey("telegram_webhook", TelegramWebhook)


def setup(app: web.Application, deps: Deps) -> None:
    """Mount POST /telegram/webhook and tie the bot's life cycle to the app's."""
    webhook = TelegramWebhook(deps)
    app[TELEGRAM_WEBHOOK] = webhook
    app.router.add_post(ROUTE, webhook.handle)
    app.on_startup.append(webhook.on_startup)
    app.on_cleanup.append(webhook.on_cleanup)
