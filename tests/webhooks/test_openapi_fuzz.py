"""Schemathesis fuzzes the intake API from its own OpenAPI document: no 5xx, answers as documented.

The real app (real Redis queue, SQLite, local storage) runs in a thread of its own, because
schemathesis calls it synchronously.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from core.deps import build
from tests.conftest import free_port
from tests.webhooks.conftest import (
    API_KEY,
    WEBHOOK_SECRET,
    IdleEngine,
    _forget_redis_keys,
)
from webhooks.openapi import document
from webhooks.server import build_app

pytestmark = [pytest.mark.redis, pytest.mark.slow]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


class LiveServer:
    """The real app served from its own thread and event loop."""

    def __init__(self, make_settings: Callable[..., Any], redis_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = make_settings(
            redis_url=redis_url,
            api_keys=API_KEY,
            webhook_secret=WEBHOOK_SECRET,
            public_base_url=self.url,
            max_upload_mb=1,
        )
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"the app did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        deps = await build(self.settings, engine=IdleEngine())
        runner = web.AppRunner(build_app(deps))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
            await _forget_redis_keys(deps)
            await deps.close()


@pytest.fixture
def live_server(make_settings: Callable[..., Any], redis_url: str) -> Iterator[LiveServer]:
    with LiveServer(make_settings, redis_url) as server:
        yield server


#: the document as served; the base URL is given per call
SCHEMA = schemathesis.openapi.from_dict(document("http://127.0.0.1"))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_intake_api_answers_fuzzed_requests_as_documented(
    operation: Any, live_server: LiveServer
) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def fuzz(case: Any) -> None:
        response = case.call(
            base_url=live_server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
        )
        case.validate_response(response, checks=CHECKS)

    fuzz()
