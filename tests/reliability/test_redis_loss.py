"""Redis flushed or restarted while jobs wait: the reconciler rebuilds the queue from the database.

Each test starts its own redis-server on a free port (never the shared one) and stops it.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from core import upkeep
from core.deps import Deps
from core.embedded_redis import EmbeddedRedis, _wait_until_ready, start_embedded_redis
from core.errors import QueueError
from core.intake import accept
from core.jobs import JobState
from core.settings import Settings
from tests.pipeline.conftest import build_deps, new_job, store_clip
from tests.pipeline.fakes import CountingNotifier, ScriptedEngine
from tests.reliability.helpers import run_worker_until

pytestmark = pytest.mark.postgres

JOBS = 6


@pytest.fixture
async def private_redis() -> AsyncIterator[EmbeddedRedis]:
    """A redis-server of this test's own, on a free loopback port."""
    server = await start_embedded_redis()
    yield server
    await server.stop()


async def restart(server: EmbeddedRedis) -> None:
    """Stop the server and start a fresh one (empty) on the same port."""
    args = list(server.process.args)  # type: ignore[arg-type]
    server.process.terminate()
    server.process.wait(timeout=5)
    server.process = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    await _wait_until_ready(server)


@pytest.fixture
async def world(
    make_settings: Callable[..., Settings], pg_url: str, private_redis: EmbeddedRedis
) -> AsyncIterator[tuple[Deps, ScriptedEngine, CountingNotifier]]:
    settings = make_settings(database_url=pg_url, redis_url=private_redis.url, job_lease_seconds=2)
    notifier = CountingNotifier()
    from core.storage import open_storage

    engine = ScriptedEngine(open_storage(settings), delay_s=0.05)
    deps = await build_deps(settings, notifier, engine=engine)
    engine.storage = deps.storage
    yield deps, engine, notifier
    await deps.close()


async def _all_ended(deps: Deps) -> bool:
    jobs = await deps.store.list_jobs(limit=100)
    return len(jobs) == JOBS and all(j.delivered_at is not None for j in jobs)


async def _run_two_workers_until_all_delivered(deps: Deps) -> None:
    await asyncio.gather(
        run_worker_until(deps, lambda: _all_ended(deps), 30),
        run_worker_until(deps, lambda: _all_ended(deps), 30),
    )


def _assert_each_ran_and_was_delivered_once(
    deps_jobs: list, engine: ScriptedEngine, notifier: CountingNotifier
) -> None:
    ids = sorted(j.id for j in deps_jobs)
    assert sorted(engine.calls) == ids, "every job ran exactly once"
    assert sorted(jid for jid, _ in notifier.delivered) == ids, "and was delivered once"
    assert all(j.status == JobState.COMPLETED and j.attempts == 1 for j in deps_jobs)


async def test_flushed_redis_loses_no_job_and_runs_none_twice(
    world: tuple[Deps, ScriptedEngine, CountingNotifier], small_clip: Path, private_redis
) -> None:
    deps, engine, notifier = world
    for _ in range(JOBS):
        await accept(deps, await store_clip(deps, new_job(), small_clip))
    assert await deps.queue.depth() == JOBS

    admin = Redis.from_url(private_redis.url)
    try:
        await admin.flushall()  # a PRIVATE server: the shared Redis is never flushed
    finally:
        await admin.aclose()
    assert await deps.queue.depth() == 0

    requeued = await upkeep.reconcile_queue(deps)
    assert len(requeued) == JOBS
    assert await upkeep.reconcile_queue(deps) == [], "a second pass queues nothing twice"

    await _run_two_workers_until_all_delivered(deps)
    _assert_each_ran_and_was_delivered_once(await deps.store.list_jobs(), engine, notifier)
    assert engine.max_running <= 2


async def test_restarted_redis_keeps_jobs_accepted_while_it_was_down(
    world: tuple[Deps, ScriptedEngine, CountingNotifier], small_clip: Path, private_redis
) -> None:
    deps, engine, notifier = world
    for _ in range(JOBS // 2):
        await accept(deps, await store_clip(deps, new_job(), small_clip))

    private_redis.process.terminate()
    private_redis.process.wait(timeout=5)
    with pytest.raises(QueueError):
        await deps.queue.ping()
    # intake keeps what it stored; the enqueue failure is left to the reconciler
    for _ in range(JOBS - JOBS // 2):
        accepted = await accept(deps, await store_clip(deps, new_job(), small_clip))
        assert accepted.created and accepted.job.status == JobState.QUEUED

    await restart(private_redis)
    await deps.queue.ping()
    assert await deps.queue.depth() == 0, "the restarted server remembers nothing"
    # the worker's start-up reconciler (run_at_startup) rebuilds the queue by itself
    await _run_two_workers_until_all_delivered(deps)
    _assert_each_ran_and_was_delivered_once(await deps.store.list_jobs(), engine, notifier)
