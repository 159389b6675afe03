"""Fixtures of the Telegram tests: the fake Bot API, settings pointed at it, the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from core.deps import Deps, build
from core.settings import Settings
from tests.redis_keys import forget_keys
from tests.telegram.fake_botapi import TOKEN, FakeBotApi
from tests.telegram.updates import ADMIN_ID

SECRET = "s3cret-token_for-tests"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeBotApi]:
    """A started fake Bot API server."""
    api = await FakeBotApi().start()
    yield api
    await api.stop()


@pytest.fixture
def tg_settings(
    make_settings: Callable[..., Settings], redis_url: str, fake_api: FakeBotApi
) -> Callable[..., Settings]:
    """Settings with the Telegram channel on, pointed at the fake Bot API."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": redis_url,
            "telegram_bot_token": TOKEN,
            "telegram_webhook_secret": SECRET,
            "telegram_api_base_url": fake_api.api_base_url,
            "telegram_file_base_url": fake_api.file_base_url,
            "telegram_admin_user_ids": str(ADMIN_ID),
        }
        values.update(overrides)
        return make_settings(**values)

    return factory


@pytest.fixture
async def make_deps() -> AsyncIterator[Callable[..., Any]]:
    """Build real Deps (SQLite, local storage, real Redis); all are closed afterwards."""
    built: list[Deps] = []

    async def factory(settings: Settings, **overrides: Any) -> Deps:
        deps = await build(settings, **overrides)
        built.append(deps)
        return deps

    yield factory
    for deps in reversed(built):
        await forget_keys(deps.redis, deps.settings.redis_prefix)
        await deps.close()


def build_web_app(deps: Deps) -> web.Application:
    """The service's aiohttp app (with bots.telegram mounted by its own setup)."""
    from webhooks.server import build_app

    return build_app(deps)


@pytest.fixture
async def tg_client(
    tg_settings: Callable[..., Settings],
    make_deps: Callable[..., Any],
    aiohttp_client: Callable[..., Any],
) -> Callable[..., Any]:
    """Start the real app with Telegram on; returns (client, deps)."""

    async def factory(**overrides: Any) -> tuple[TestClient, Deps]:
        deps = await make_deps(tg_settings(**overrides))
        client = await aiohttp_client(build_web_app(deps))
        return client, deps

    return factory
