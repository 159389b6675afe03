"""The store fixtures: every test in tests/store runs on SQLite (a real file) and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.jobs import NewJob, Source
from core.store.base import SqlJobStore


class Clock:
    """A clock the test moves by hand; starts at a time with microseconds."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each kind: a SQLite file in tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'jobs.db'}"
    return request.getfixturevalue("pg_url")


async def open_test_store(url: str, clock: Clock, *, migrate: bool = True) -> SqlJobStore:
    """A store on `url` with the test clock."""
    store: SqlJobStore
    if url.startswith("sqlite:///"):
        from core.store.sqlite import SqliteJobStore

        store = await SqliteJobStore.open(url.removeprefix("sqlite:///"), clock=clock)
    else:
        from core.store.postgres import PostgresJobStore

        store = await PostgresJobStore.connect(url, clock=clock)
    if migrate:
        await store.migrate()
    return store


@pytest.fixture
async def store(database_url: str, clock: Clock) -> AsyncIterator[SqlJobStore]:
    opened = await open_test_store(database_url, clock)
    try:
        yield opened
    finally:
        await opened.close()


def new_job(n: int = 0, **overrides: object) -> NewJob:
    """A webhook job with a few filled fields."""
    values: dict[str, object] = {
        "source": Source.WEBHOOK,
        "requester": f"client-{n}",
        "reply_to": {"callback_url": "https://example.com/hook", "metadata": {"n": n}},
        "options": {"region": "auto"},
        "input_key": f"inputs/job{n}/clip.mp4",
        "input_filename": "clip.mp4",
        "input_size_bytes": 12345,
    }
    values.update(overrides)
    return NewJob(**values)  # type: ignore[arg-type]
