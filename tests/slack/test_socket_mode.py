"""Socket Mode: with SLACK_APP_TOKEN the bot opens a WebSocket and handles events from it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

from bots.slack import SLACK_BOT_KEY, setup
from bots.slack.app import SlackBot
from bots.slack.socket_mode import build_socket_mode_handler
from core.deps import build
from core.settings import Settings
from tests.slack.conftest import EngineNotUsed, build_web_app
from tests.slack.fake_slack import APP_TOKEN, FakeSlack
from tests.slack.slack_http import event_envelope, message_event
from tests.slack.test_events import fake_mp4

pytestmark = pytest.mark.redis


async def test_without_an_app_token_there_is_no_socket_mode(
    slack_settings: Callable[..., Settings],
) -> None:
    deps = await build(slack_settings(), engine=EngineNotUsed(), notifiers={})
    try:
        assert build_socket_mode_handler(SlackBot(deps).bolt, deps.settings) is None
    finally:
        await deps.close()


async def test_an_app_token_builds_an_aiohttp_socket_mode_handler_on_the_same_bolt_app(
    slack_settings: Callable[..., Settings], fake_slack: FakeSlack
) -> None:
    deps = await build(
        slack_settings(slack_app_token=APP_TOKEN), engine=EngineNotUsed(), notifiers={}
    )
    try:
        bot = SlackBot(deps)
        handler = build_socket_mode_handler(bot.bolt, deps.settings)
        assert isinstance(handler, AsyncSocketModeHandler)
        assert handler.app is bot.bolt
        assert handler.app_token == APP_TOKEN
        # it opens its connection through SLACK_API_BASE_URL, like every other call
        assert handler.client.web_client.base_url == fake_slack.api_base_url
    finally:
        await deps.close()


async def test_a_video_event_over_socket_mode_is_acked_and_becomes_a_job(
    aiohttp_client: Any, slack_settings: Callable[..., Settings], fake_slack: FakeSlack
) -> None:
    deps = await build(
        slack_settings(slack_app_token=APP_TOKEN), engine=EngineNotUsed(), notifiers={}
    )
    try:
        app = build_web_app(deps)
        client = await aiohttp_client(app)  # on_startup connects the WebSocket
        file = fake_slack.host_file(fake_mp4(), "socket.mp4")
        envelope_id = await fake_slack.send_over_socket(event_envelope(message_event(files=[file])))
        for _ in range(300):
            if fake_slack.socket_acks:
                break
            await asyncio.sleep(0.01)
        assert fake_slack.socket_acks[0]["envelope_id"] == envelope_id
        await app[SLACK_BOT_KEY].background.drain(timeout=30)
        [job] = await deps.store.list_jobs()
        assert job.input_filename == "socket.mp4"
        await client.close()
    finally:
        await deps.close()


async def test_with_only_an_app_token_the_bot_runs_over_socket_mode_and_serves_no_http(
    aiohttp_client: Any, slack_settings: Callable[..., Settings], fake_slack: FakeSlack
) -> None:
    settings = slack_settings(slack_app_token=APP_TOKEN, slack_signing_secret=None)
    deps = await build(settings, engine=EngineNotUsed(), notifiers={})
    try:
        app = web.Application()
        setup(app, deps)
        client = await aiohttp_client(app)
        resp = await client.post("/slack/events", data=b"{}")
        assert resp.status == 404  # nothing unsigned is ever served
        file = fake_slack.host_file(fake_mp4(), "only-socket.mp4")
        await fake_slack.send_over_socket(event_envelope(message_event(files=[file])))
        for _ in range(300):
            if fake_slack.socket_acks:
                break
            await asyncio.sleep(0.01)
        await app[SLACK_BOT_KEY].background.drain(timeout=30)
        [job] = await deps.store.list_jobs()
        assert job.input_filename == "only-socket.mp4"
        await client.close()
    finally:
        await deps.close()
