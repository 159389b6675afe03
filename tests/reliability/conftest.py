"""Fault-test fixtures: PostgreSQL-backed settings with a short lease, a callback receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from core.settings import Settings
from tests.pipeline.conftest import forget_prefix
from tests.reliability.helpers import Receiver


@pytest.fixture
async def pg_settings(
    make_settings: Callable[..., Settings], pg_url: str, redis_url: str
) -> AsyncIterator[Settings]:
    """Settings on real PostgreSQL and Redis, a 2 s lease; the test's Redis keys go afterwards."""
    settings = make_settings(database_url=pg_url, redis_url=redis_url, job_lease_seconds=2)
    yield settings
    await forget_prefix(redis_url, settings.redis_prefix)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A loopback callback receiver counting the POSTs it accepted."""
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


# the Telegram fixtures (fake Bot API, settings, real app) for the "bots say try again" tests
from tests.telegram.conftest import fake_api, make_deps, tg_client, tg_settings  # noqa: E402,F401
