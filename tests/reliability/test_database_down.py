"""The database unreachable: intake answers 503 and keeps nothing, bots say "try again", and all
resumes when it is back. PostgreSQL is reached through a loopback TCP proxy the test stops."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from bots.telegram import texts
from core.deps import build
from core.settings import Settings
from tests.reliability.helpers import TcpProxy
from tests.telegram.test_webhook import HEADERS, settle, telegram_jobs
from tests.telegram.updates import video_update
from tests.webhooks.conftest import API_KEY, IdleEngine
from webhooks.server import build_app

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
async def proxy(pg_url: str) -> AsyncIterator[TcpProxy]:
    target = URL(pg_url)
    p = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    await p.start()
    yield p
    await p.stop()


def through(pg_url: str, proxy: TcpProxy) -> str:
    return str(URL(pg_url).with_port(proxy.port))


async def _post(client: Any, key: str) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    response = await client.post(
        "/v1/jobs",
        data=json.dumps({"video_url": "http://93.184.216.34/clip.mp4"}),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {API_KEY}",
            "Idempotency-Key": key,
        },
    )
    return response.status, await response.json(), time.monotonic() - started


async def test_intake_answers_503_while_the_database_is_away_and_resumes_after(
    make_settings: Callable[..., Settings],
    pg_url: str,
    redis_url: str,
    proxy: TcpProxy,
    aiohttp_client: Any,
) -> None:
    settings = make_settings(
        database_url=through(pg_url, proxy), redis_url=redis_url, api_keys=API_KEY
    )
    deps = await build(settings, engine=IdleEngine())
    try:
        client = await aiohttp_client(TestServer(build_app(deps), host="127.0.0.1"))
        assert (await _post(client, "before"))[0] == 202

        await proxy.stop()
        for attempt in range(2):  # the broken pooled connection, then a refused new one
            status, body, took = await _post(client, "during")
            assert status == 503, body
            assert body["error"]["code"] == "database_unavailable"
            assert (
                "database" in body["error"]["message"] and "try again" in body["error"]["message"]
            )
            assert took < 5, f"answer {attempt} took {took:.1f}s"
        assert await deps.queue.depth() == 1, "nothing was queued for the refused requests"

        await proxy.start()
        status, body, _ = await _post(client, "during")  # the client retries, as told
        assert status == 202, body
        jobs = await deps.store.list_jobs()
        assert len(jobs) == 2
        assert {(j.idempotency_key or "").rsplit(":", 1)[-1] for j in jobs} == {"before", "during"}
        assert await deps.queue.depth() == 2
    finally:
        await deps.close()


async def test_telegram_tells_the_sender_to_try_again_while_the_database_is_away(
    tg_client: Any, fake_api: Any, pg_url: str, proxy: TcpProxy, small_clip: Path
) -> None:
    client, deps = await tg_client(database_url=through(pg_url, proxy))
    fake_api.add_file("v", small_clip.read_bytes())

    await proxy.stop()
    update = video_update(1, file_id="v", message_id=1)
    assert (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status == 200
    await settle(client)
    edits = [c.params["text"] for c in fake_api.calls_to("editMessageText")]
    assert edits and edits[-1] == texts.BUSY
    assert "again" in texts.BUSY
    assert not any(p.is_file() for p in Path(deps.settings.storage_dir).rglob("*"))

    await proxy.start()
    update = video_update(2, file_id="v", message_id=2)
    assert (await client.post("/telegram/webhook", json=update, headers=HEADERS)).status == 200
    await settle(client)
    (job,) = await telegram_jobs(deps)
    assert job.reply_to["message_id"] == 2
    assert "Queued" in fake_api.calls_to("editMessageText")[-1].params["text"]
