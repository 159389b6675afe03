"""Ops fixtures: real stores (SQLite file and PostgreSQL) on a hand-moved clock, real Redis,
real local storage, and a stand-in for our Engine port (its health is all ops reads)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.deps import Deps, build
from core.jobs import Job, JobState, NewJob, Source
from core.ports import EngineResult, ProgressFn
from core.settings import Settings

SLACK_ADMIN = "UADMIN"
TELEGRAM_ADMIN = "4242"


class Clock:
    """The store's clock; tests move it by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def at(self, when: datetime) -> None:
        self.now = when


@dataclass
class StandInEngine:
    """Our Engine port with a health answer the test chooses (the engine is not under test)."""

    answer: dict[str, Any] = field(default_factory=lambda: {"status": "ok", "device": "cpu"})
    delay_s: float = 0.0

    async def process(self, job: Job, progress: ProgressFn) -> EngineResult:
        raise AssertionError("ops tests never run the engine")

    async def health(self) -> dict[str, Any]:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return dict(self.answer)


@pytest.fixture
def now() -> datetime:
    """The moment the test's report is taken (the real now, to the second)."""
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


async def open_store(url: str, clock: Clock) -> Any:
    if url.startswith("sqlite:///"):
        from core.store.sqlite import SqliteJobStore

        store: Any = await SqliteJobStore.open(url.removeprefix("sqlite:///"), clock=clock)
    else:
        from core.store.postgres import PostgresJobStore

        store = await PostgresJobStore.connect(url, clock=clock)
    await store.migrate()
    return store


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ops.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ops.db'}"


@pytest.fixture
async def store(database_url: str, clock: Clock) -> AsyncIterator[Any]:
    opened = await open_store(database_url, clock)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def settings(make_settings: Callable[..., Settings], redis_url: str) -> Settings:
    return make_settings(
        redis_url=redis_url,
        slack_admin_user_ids=[SLACK_ADMIN],
        telegram_admin_user_ids=[TELEGRAM_ADMIN],
    )


@pytest.fixture
def engine() -> StandInEngine:
    return StandInEngine()


@pytest.fixture
async def deps(settings: Settings, store: Any, engine: StandInEngine) -> AsyncIterator[Deps]:
    built = await build(settings, store=store, engine=engine, notifiers={})
    try:
        yield built
    finally:
        await drop_redis_keys(built.redis, settings.redis_prefix)
        await built.close()


async def drop_redis_keys(redis: Any, prefix: str) -> None:
    """Remove every key this test made (ours and arq's, which embed our prefix)."""
    keys = [key async for key in redis.scan_iter(match=f"*{prefix}*", count=500)]
    if keys:
        await redis.delete(*keys)


# -- building jobs at chosen times ---------------------------------------------------------


def new_job(source: Source = Source.WEBHOOK, **overrides: Any) -> NewJob:
    values: dict[str, Any] = {
        "source": source,
        "requester": f"{source.value}-user",
        "reply_to": {},
        "options": {"region": "auto"},
        "input_key": "inputs/x/clip.mp4",
        "input_filename": "clip.mp4",
    }
    values.update(overrides)
    return NewJob(**values)


async def queued_at(store: Any, clock: Clock, when: datetime, **kw: Any) -> Job:
    clock.at(when)
    job, _ = await store.create(new_job(**kw))
    return job


async def processing_at(
    store: Any,
    clock: Clock,
    created: datetime,
    started: datetime,
    *,
    lease_s: int = 300,
    owner: str = "worker-1",
    progress: int | None = None,
    step: str | None = None,
    beat_at: datetime | None = None,
    **kw: Any,
) -> Job:
    job = await queued_at(store, clock, created, **kw)
    clock.at(started)
    claimed = await store.claim(job.id, owner, lease_s)
    assert claimed is not None
    if beat_at is not None or progress is not None:
        clock.at(beat_at or started)
        claimed = await store.heartbeat(job.id, owner, lease_s, progress=progress, step=step)
        assert claimed is not None
    return claimed


async def ended_at(
    store: Any,
    clock: Clock,
    created: datetime,
    duration_s: float,
    status: JobState = JobState.COMPLETED,
    error: str = "engine crashed",
    **kw: Any,
) -> Job:
    """A job created at `created` that ended (completed/failed) `duration_s` later."""
    report = kw.pop("report", None)
    job = await processing_at(store, clock, created, created + timedelta(seconds=1), **kw)
    clock.at(created + timedelta(seconds=duration_s))
    fields: dict[str, Any] = {}
    if status == JobState.FAILED:
        fields["error_message"] = error
    if report is not None:
        fields["report"] = report
    moved = await store.move(job.id, status, expected=[JobState.PROCESSING], **fields)
    assert moved is not None
    return moved
