"""Fixtures for the Slack tests: the fake Slack, settings pointing at it, the real app."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bots.slack import SLACK_BOT_KEY, SlackBot
from core.deps import Deps, build
from core.ports import EngineResult
from core.settings import Settings
from tests.redis_keys import forget_redis_keys
from tests.slack.fake_slack import BOT_TOKEN, FakeSlack
from tests.slack.slack_http import SIGNING_SECRET, command_form, dumps, signed_headers

ADMIN = "U0ADMIN"


class EngineNotUsed:
    """These tests never run a job; the end-to-end test uses the real engine."""

    async def process(self, job: Any, progress: Any) -> EngineResult:
        raise AssertionError("the engine is not part of this test")

    async def health(self) -> dict[str, Any]:
        return {"status": "ok"}


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def slack_settings(
    make_settings: Callable[..., Settings], fake_slack: FakeSlack, redis_url: str
) -> AsyncIterator[Callable[..., Settings]]:
    prefixes: set[str] = set()

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": redis_url,
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_base_url": fake_slack.api_base_url,
            "slack_admin_user_ids": [ADMIN],
            "max_upload_mb": 2,
        }
        values.update(overrides)
        settings = make_settings(**values)
        prefixes.add(settings.redis_prefix)
        return settings

    yield factory
    for prefix in prefixes:
        await forget_redis_keys(redis_url, prefix)


@pytest.fixture
async def slack_deps(slack_settings: Callable[..., Settings]) -> AsyncIterator[Deps]:
    deps = await build(slack_settings(), engine=EngineNotUsed(), notifiers={})
    yield deps
    await deps.close()


@dataclass
class SlackApp:
    """The real aiohttp app, driven the way Slack drives it."""

    client: TestClient[web.Request, web.Application]
    bot: SlackBot

    async def post_event(
        self,
        envelope: dict[str, Any],
        *,
        retry_num: int | None = None,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
    ) -> tuple[int, str, float]:
        """POST an Events API envelope; return (status, body, seconds to answer)."""
        body = dumps(envelope)
        headers = signed_headers(
            body, "application/json", secret=secret, timestamp=timestamp, retry_num=retry_num
        )
        started = time.perf_counter()
        resp = await self.client.post("/slack/events", data=body, headers=headers)
        text = await resp.text()
        return resp.status, text, time.perf_counter() - started

    async def post_command(
        self, command: str, text: str, *, user_id: str, response_url: str
    ) -> tuple[int, dict[str, Any] | str, float]:
        body = command_form(command, text, user_id=user_id, response_url=response_url)
        headers = signed_headers(body, "application/x-www-form-urlencoded")
        started = time.perf_counter()
        resp = await self.client.post("/slack/events", data=body, headers=headers)
        elapsed = time.perf_counter() - started
        if resp.content_type == "application/json":
            return resp.status, await resp.json(), elapsed
        return resp.status, await resp.text(), elapsed

    async def settle(self) -> None:
        """Wait until the work started by the requests so far is done."""
        await self.bot.background.drain(timeout=30)


def build_web_app(deps: Deps) -> web.Application:
    """webhooks.server.build_app, which mounts bots.slack when Slack is configured."""
    from webhooks.server import build_app

    return build_app(deps)


@pytest.fixture
async def slack_app(aiohttp_client: Any, slack_deps: Deps) -> SlackApp:
    app = build_web_app(slack_deps)
    client = await aiohttp_client(app)
    return SlackApp(client=client, bot=app[SLACK_BOT_KEY])
