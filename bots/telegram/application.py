"""Build the python-telegram-bot Application from Deps (no web server of its own)."""

from __future__ import annotations

from telegram import Bot
from telegram.ext import Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from bots.telegram.handlers import register
from bots.telegram.limits import file_base_url
from core.deps import Deps
from core.errors import ConfigError
from core.settings import Settings

#: the update kinds the bot acts on (setWebhook / getUpdates `allowed_updates`)
ALLOWED_UPDATES = ["message"]
#: uploads of up to 50 MB (2000 MB with a local server) need more than PTB's 20 s default
MEDIA_WRITE_TIMEOUT_S = 300.0


def bot_token(settings: Settings) -> str:
    """The bot token, or ConfigError when the channel is off."""
    token = settings.telegram_bot_token
    if token is None or not token.get_secret_value().strip():
        raise ConfigError("TELEGRAM_BOT_TOKEN is not set")
    return token.get_secret_value().strip()


def build_bot(settings: Settings) -> Bot:
    """A plain Bot for sending (the notifier's), pointed at TELEGRAM_API_BASE_URL."""
    return Bot(
        bot_token(settings),
        base_url=settings.telegram_api_base_url,
        base_file_url=file_base_url(settings),
        local_mode=settings.telegram_local_mode,
        request=HTTPXRequest(
            connection_pool_size=16, read_timeout=60.0, media_write_timeout=MEDIA_WRITE_TIMEOUT_S
        ),
    )


def build_application(deps: Deps, *, polling: bool = False) -> Application:
    """The bot's Application with every handler; with its own Updater only for long polling."""
    settings = deps.settings
    builder = (
        ApplicationBuilder()
        .token(bot_token(settings))
        .base_url(settings.telegram_api_base_url)
        .base_file_url(file_base_url(settings))
        .local_mode(settings.telegram_local_mode)
        .media_write_timeout(MEDIA_WRITE_TIMEOUT_S)
        .read_timeout(60.0)
        # one slow download must not stall other chats
        .concurrent_updates(True)
    )
    if not polling:
        builder = builder.updater(None)
    application = builder.build()
    register(application, deps)
    return application
