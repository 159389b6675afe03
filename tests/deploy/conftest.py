"""The loopback Supabase Storage API that the deploy tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from tests.deploy.fake_supabase import FakeStorage, build_app


@pytest.fixture
async def fake_supabase() -> AsyncIterator[tuple[FakeStorage, str]]:
    """A fake Supabase Storage server on a loopback port: (its recorded state, its base URL)."""
    state = FakeStorage()
    server = TestServer(build_app(state), host="127.0.0.1")
    await server.start_server()
    try:
        yield state, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
