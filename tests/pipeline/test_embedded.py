"""Embedded defaults: the private Redis and `blanklogo dev`."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from core.deps import build
from core.embedded_redis import free_loopback_port, start_embedded_redis
from core.jobs import Source
from core.settings import Settings


async def test_embedded_redis_answers_and_is_gone_after_stop() -> None:
    server = await start_embedded_redis()
    client = Redis.from_url(server.url)
    try:
        assert await client.ping()
        assert server.url.startswith("redis://127.0.0.1:")
    finally:
        await client.aclose()
        await server.stop()
    assert server.process.poll() is not None and not server.workdir.exists()


async def test_build_without_redis_url_starts_and_stops_a_private_redis(make_settings) -> None:
    settings = make_settings(redis_url=None)
    deps = await build(settings, engine=object(), notifiers={})
    try:
        assert await deps.queue.enqueue_run("some-job", 1)
        assert await deps.queue.depth() == 1
        assert set(deps.notifiers) == set()
    finally:
        await deps.close()


async def test_build_registers_the_webhook_notifier_and_only_enabled_channels(
    make_settings, redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url)
    deps = await build(settings, engine=object())
    try:
        assert Source.WEBHOOK in deps.notifiers
        assert Source.SLACK not in deps.notifiers and Source.TELEGRAM not in deps.notifiers
    finally:
        await deps.close()


async def test_dev_serves_web_and_worker_and_stops_cleanly(
    make_settings, small_clip: Path, capsys
) -> None:
    from core.dev import dev_api_key_path, serve, with_dev_api_key

    port = free_loopback_port()
    settings: Settings = with_dev_api_key(
        make_settings(redis_url=None, host="127.0.0.1", port=port, allow_loopback_urls=False)
    )
    key = dev_api_key_path(settings).read_text()
    stop = asyncio.Event()
    running = asyncio.create_task(serve(settings, stop=stop))
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base}/openapi.json") as answer:
                        if answer.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("dev server never answered")
            async with http.get(f"{base}/v1/jobs/nope") as answer:
                assert answer.status == 401
            bearer = {"Authorization": f"Bearer {key}"}
            async with http.get(f"{base}/v1/jobs/nope", headers=bearer) as answer:
                assert answer.status == 404
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
    printed = capsys.readouterr().out
    assert f"BlankLogo is running at http://127.0.0.1:{port}" in printed
    assert "channels on: webhook API" in printed
    assert "try it: curl" in printed and key not in printed


def test_dev_keeps_one_private_api_key_unless_intake_credentials_are_set(make_settings) -> None:
    from core.dev import dev_api_key_path, with_dev_api_key

    first = with_dev_api_key(make_settings())
    path = dev_api_key_path(first)
    assert path.stat().st_mode & 0o777 == 0o600
    again = with_dev_api_key(make_settings())
    assert [k.get_secret_value() for k in again.api_keys] == [path.read_text()]
    configured = with_dev_api_key(make_settings(api_keys="mine"))
    assert [k.get_secret_value() for k in configured.api_keys] == ["mine"]
