"""Fixtures for the intake API: the real app on real Redis, SQLite and local storage."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from core.deps import Deps, build
from core.jobs import Job
from tests.conftest import free_port
from tests.redis_keys import forget_keys
from webhooks.server import build_app
from webhooks.signatures import signed_headers

API_KEY = "test-api-key-0123456789"
OTHER_KEY = "other-api-key-9876543210"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"a test secret of thirty-two bytes").decode()


class IdleEngine:
    """The intake never runs the engine; this stands in so Deps can be built without torch."""

    async def process(self, job: Job, progress: Any) -> Any:
        raise AssertionError("the intake API must not run the engine")

    async def health(self) -> dict[str, Any]:
        return {"status": "ok", "backend": "idle"}


@dataclass
class Api:
    """A test client on the real app, plus its Deps and auth helpers."""

    client: TestClient
    deps: Deps
    base_url: str

    def bearer(self, key: str = API_KEY) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def signed(
        self, body: bytes, msg_id: str | None = None, timestamp: int | None = None
    ) -> dict[str, str]:
        return signed_headers(
            WEBHOOK_SECRET,
            msg_id or f"msg_{uuid.uuid4().hex}",
            int(time.time()) if timestamp is None else timestamp,
            body,
        )

    async def post_json(
        self, payload: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        response = await self.client.post(
            "/v1/jobs",
            data=json.dumps(payload),
            headers={"Content-Type": "application/json", **(headers or self.bearer())},
        )
        return response.status, await response.json()


@dataclass
class ApiFactory:
    make_settings: Callable[..., Any]
    redis_url: str
    aiohttp_client: Callable[..., Awaitable[TestClient]]
    opened: list[Deps] = field(default_factory=list)

    async def __call__(self, *, real_engine: bool = False, **overrides: Any) -> Api:
        port = free_port()
        values: dict[str, Any] = {
            "redis_url": self.redis_url,
            "api_keys": f"{API_KEY},{OTHER_KEY}",
            "webhook_secret": WEBHOOK_SECRET,
            "public_base_url": f"http://127.0.0.1:{port}",
        }
        values.update(overrides)
        settings = self.make_settings(**values)
        deps = await build(settings) if real_engine else await build(settings, engine=IdleEngine())
        self.opened.append(deps)
        app: web.Application = build_app(deps)
        client = await self.aiohttp_client(TestServer(app, host="127.0.0.1", port=port))
        return Api(client=client, deps=deps, base_url=f"http://127.0.0.1:{port}")


@pytest.fixture
async def start_api(
    make_settings: Callable[..., Any], redis_url: str, aiohttp_client: Any
) -> AsyncIterator[ApiFactory]:
    """Start the real app (real Redis queue, SQLite store, local storage) with settings overrides."""
    factory = ApiFactory(make_settings, redis_url, aiohttp_client)
    yield factory
    for deps in factory.opened:
        await _forget_redis_keys(deps)
        await deps.close()


async def _forget_redis_keys(deps: Deps) -> None:
    await forget_keys(deps.redis, deps.settings.redis_prefix)


@pytest.fixture
async def api(start_api: ApiFactory) -> Api:
    """The app with API keys and a webhook secret configured."""
    return await start_api()
