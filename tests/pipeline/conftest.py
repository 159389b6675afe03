"""Pipeline fixtures: real Redis (isolated by prefix), SQLite store, local storage, fakes at our ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.deps import Deps, build
from core.jobs import Job, NewJob, Source
from core.processing import Policy
from core.settings import Settings
from core.upkeep import reap_expired_leases, utcnow
from core.worker import build_worker, close_worker
from tests.pipeline.fakes import CountingNotifier, ScriptedEngine
from tests.redis_keys import forget_redis_keys as forget_prefix

#: short lease and retry waits so whole job lives fit in a test
FAST = Policy(lease_s=2, heartbeat_s=0.1, retry_base_s=0.02)

#: the lease a worker that dies holds: longer than a test runs before reaping it by hand,
#: so the worker's own reaper cron (due when a burst run crosses a minute) never takes it first
DEAD_LEASE_S = 60


@pytest.fixture
async def settings(
    make_settings: Callable[..., Settings], redis_url: str
) -> AsyncIterator[Settings]:
    s = make_settings(redis_url=redis_url, job_lease_seconds=FAST.lease_s)
    yield s
    await forget_prefix(redis_url, s.redis_prefix)


@pytest.fixture
def notifier() -> CountingNotifier:
    return CountingNotifier()


@pytest.fixture
async def deps(settings: Settings, notifier: CountingNotifier) -> AsyncIterator[Deps]:
    d = await build_deps(settings, notifier)
    yield d
    await d.close()


async def build_deps(settings: Settings, notifier: CountingNotifier, **overrides: Any) -> Deps:
    """Real store, storage, Redis and queue; a scripted engine and counting notifiers."""
    from core.storage import open_storage

    storage = open_storage(settings)
    overrides.setdefault("engine", ScriptedEngine(storage))
    notifiers = {source: notifier for source in Source}
    return await build(settings, storage=storage, notifiers=notifiers, **overrides)


async def run_worker(deps: Deps, policy: Policy = FAST, **options: Any) -> Any:
    """Run a real arq Worker in burst mode until the queue is empty; return it."""
    worker = build_worker(
        deps.settings,
        deps=deps,
        policy=policy,
        burst=True,
        poll_delay=0,
        handle_signals=False,
        **options,
    )
    try:
        await worker.async_run()
    finally:
        await close_worker(worker)
    return worker


async def claim_and_die(deps: Deps, job_id: str) -> Job:
    """Claim a job as a worker that then dies without a word."""
    claimed = await deps.store.claim(job_id, "dead-worker", DEAD_LEASE_S)
    assert claimed is not None
    return claimed


async def reap_dead(deps: Deps) -> list[Job]:
    """Run the reaper as it runs once a dead worker's lease has run out."""
    return await reap_expired_leases(deps, now=utcnow() + timedelta(seconds=DEAD_LEASE_S + 1))


def new_job(clip: Path | None = None, **changes: Any) -> NewJob:
    values: dict[str, Any] = {
        "source": Source.WEBHOOK,
        "requester": "test-client",
        "reply_to": {"callback_url": "http://127.0.0.1:9/callback"},
        "options": {"region": "auto"},
        "input_filename": "clip.mp4",
    }
    values.update(changes)
    return NewJob(**values)


async def store_clip(deps: Deps, job: NewJob, clip: Path) -> NewJob:
    """Put the clip where intake channels put uploads and point the job at it."""
    key = f"inputs/{job.id}/clip.mp4"
    size = await deps.storage.put_file(key, clip)
    return NewJob(**{**job.__dict__, "input_key": key, "input_size_bytes": size})
