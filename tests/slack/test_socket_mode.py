"""Socket Mode: with SLACK_APP_TOKEN the bot opens a WebSocket and handles events from it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

from bots.slack import SLACK_BOT_KEY, setup, socket_mode
from bots.slack.app import SlackBot
from bots.slack.socket_mode import build_socket_mode_handler
from core.deps import build
from core.settings import Settings
from tests.conftest import free_port
from tests.slack.conftest import EngineNotUsed, build_web_app
from tests.slack.fake_slack import APP_TOKEN, BOT_TOKEN, FakeSlack
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


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket_mode, "RETRY_FIRST_S", 0.01)


@pytest.fixture
def one_second_tries(quick_retries: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quick retries, each try cut after 1 s: a WebSocket that does not open keeps slack_sdk
    retrying inside one try until the cut."""
    monkeypatch.setattr(socket_mode, "CONNECT_TRY_S", 1.0)


async def wait_for_records(caplog: pytest.LogCaptureFixture, needle: str, count: int) -> None:
    for _ in range(1000):
        if sum(needle in r.getMessage() for r in caplog.records) >= count:
            return
        await asyncio.sleep(0.01)


def socket_mode_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == socket_mode.__name__ and r.levelno == logging.WARNING
    ]


async def test_the_app_starts_and_serves_while_slack_cannot_be_reached(
    aiohttp_client: Any,
    slack_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
    quick_retries: None,
) -> None:
    caplog.set_level(logging.INFO)
    nowhere = f"http://127.0.0.1:{free_port()}/api/"  # nothing listens: connection refused
    settings = slack_settings(slack_app_token=APP_TOKEN, slack_api_base_url=nowhere)
    deps = await build(settings, engine=EngineNotUsed(), notifiers={})
    try:
        app = build_web_app(deps)
        # before: start-up waited on slack_sdk's connect(), which retries forever
        client = await asyncio.wait_for(aiohttp_client(app), 60)
        resp = await client.get("/health")
        assert resp.status in (200, 503) and "status" in await resp.json()

        await wait_for_records(caplog, "slack socket mode not connected", 3)
        warnings = socket_mode_warnings(caplog)
        assert warnings[:3] == [
            f"slack socket mode not connected (try {n}: Slack unreachable, "
            f"ClientConnectorError); trying again in {wait}s"
            for n, wait in ((1, 0.01), (2, 0.02), (3, 0.04))
        ]
        await asyncio.wait_for(client.close(), 60)  # shutdown does not wait on Slack either
        assert "slack socket mode closed" in caplog.text
        assert APP_TOKEN not in caplog.text and BOT_TOKEN not in caplog.text
    finally:
        await deps.close()


async def test_socket_mode_keeps_trying_until_slack_answers_then_handles_events(
    aiohttp_client: Any,
    slack_settings: Callable[..., Settings],
    fake_slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
    one_second_tries: None,
) -> None:
    caplog.set_level(logging.INFO)
    fake_slack.fail("apps.connections.open", error="internal_error")
    fake_slack.socket_urls.append(f"ws://127.0.0.1:{free_port()}/socket")  # refuses
    deps = await build(
        slack_settings(slack_app_token=APP_TOKEN), engine=EngineNotUsed(), notifiers={}
    )
    try:
        app = build_web_app(deps)
        client = await asyncio.wait_for(aiohttp_client(app), 60)
        file = fake_slack.host_file(fake_mp4(), "late.mp4")
        envelope_id = await fake_slack.send_over_socket(event_envelope(message_event(files=[file])))
        await wait_for_records(caplog, "slack socket mode connected", 1)
        for _ in range(300):
            if fake_slack.socket_acks:
                break
            await asyncio.sleep(0.01)
        assert fake_slack.socket_acks[0]["envelope_id"] == envelope_id
        assert [w.split(";")[0] for w in socket_mode_warnings(caplog)] == [
            "slack socket mode not connected (try 1: apps.connections.open answered internal_error)",
            "slack socket mode not connected (try 2: no connection within 1s)",
        ]
        assert "slack socket mode connected (try 3)" in caplog.text
        assert len(fake_slack.calls_of("apps.connections.open")) == 3
        await app[SLACK_BOT_KEY].background.drain(timeout=30)
        [job] = await deps.store.list_jobs()
        assert job.input_filename == "late.mp4"
        await asyncio.wait_for(client.close(), 60)
        assert APP_TOKEN not in caplog.text and BOT_TOKEN not in caplog.text
    finally:
        await deps.close()


#: what apps.connections.open hands out: a one-time ticket that opens the app's event stream
TICKET = "SEKRIT-ticket-5f5f-1a2b"


async def test_a_failed_handshake_leaves_no_ticket_or_token_in_any_log_record(
    aiohttp_client: Any,
    slack_settings: Callable[..., Settings],
    fake_slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
    one_second_tries: None,
) -> None:
    caplog.set_level(logging.DEBUG)
    # the fake answers this upgrade with 404: aiohttp's handshake error names the whole URL
    socket_root = fake_slack.root.replace("http://", "ws://")
    fake_slack.socket_urls.append(f"{socket_root}/not-a-socket?ticket={TICKET}&app_id=A0BL")
    deps = await build(
        slack_settings(slack_app_token=APP_TOKEN), engine=EngineNotUsed(), notifiers={}
    )
    try:
        client = await asyncio.wait_for(aiohttp_client(build_web_app(deps)), 60)
        await wait_for_records(caplog, "slack socket mode connected", 1)  # on the next URL
        await asyncio.wait_for(client.close(), 60)
    finally:
        await deps.close()

    # slack_sdk did log the failed handshake, at ERROR, and the response that carried the URL
    failed = [r for r in caplog.records if r.getMessage().startswith("Failed to connect")]
    assert failed and all(r.levelno == logging.ERROR for r in failed)
    assert f"{socket_root}/not-a-socket?[redacted]" in failed[0].getMessage()
    assert failed[0].exc_text is not None and "WSServerHandshakeError" in failed[0].exc_text
    assert any(
        "/not-a-socket?[redacted]" in r.getMessage() for r in caplog.records if r not in failed
    )
    everything = caplog.text + "".join(repr(vars(r)) for r in caplog.records)
    assert [s for s in (TICKET, APP_TOKEN, BOT_TOKEN) if s in everything] == []
