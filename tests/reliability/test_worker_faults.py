"""Workers dying mid-job: SIGKILL (lease expires, reaped, run again, delivered once) and SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core import upkeep
from core.deps import Deps, build
from core.engines import LocalEngine
from core.intake import accept
from core.jobs import Job, JobState
from core.settings import Settings
from core.storage import open_storage
from tests.pipeline.conftest import new_job, store_clip
from tests.pipeline.test_local_engine import gone
from tests.reliability.helpers import (
    Receiver,
    kill_pid,
    run_worker_until,
    start_worker_process,
    stop_process,
    wait_for,
    wait_for_file,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

HANG = "tests.pipeline.stand_in_engine:hang"


@pytest.fixture
async def deps(pg_settings: Settings) -> AsyncIterator[Deps]:
    """Real PostgreSQL, Redis, storage and webhook notifier; the engine child copies the input."""
    storage = open_storage(pg_settings)
    engine = LocalEngine(pg_settings, storage, target="tests.pipeline.stand_in_engine:copy")
    d = await build(pg_settings, storage=storage, engine=engine)
    yield d
    await d.close()


async def _delivered(deps: Deps, job_id: str) -> bool:
    job = await deps.store.get(job_id)
    return job is not None and job.delivered_at is not None


async def _job_running_in_a_worker_process(
    deps: Deps, clip: Path, receiver: Receiver, tmp_path: Path
) -> tuple[Job, asyncio.subprocess.Process, int]:
    pid_file = tmp_path / "engine.pid"
    new = new_job(
        options={"region": "auto", "pid_file": str(pid_file)},
        reply_to={"callback_url": receiver.url},
    )
    accepted = await accept(deps, await store_clip(deps, new, clip))
    worker = await start_worker_process(deps.settings, BL_TEST_ENGINE_TARGET=HANG)
    try:
        engine_pid = int(await wait_for_file(pid_file, 30))
    except BaseException:
        await stop_process(worker)
        raise
    pid_file.unlink()
    running = await deps.store.get(accepted.job.id)
    assert running is not None and running.status == JobState.PROCESSING
    return running, worker, engine_pid


async def test_sigkilled_worker_job_is_reaped_run_again_and_delivered_exactly_once(
    deps: Deps, small_clip: Path, receiver: Receiver, tmp_path: Path
) -> None:
    job, worker, engine_pid = await _job_running_in_a_worker_process(
        deps, small_clip, receiver, tmp_path
    )
    try:
        worker.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(worker.wait(), 10) == -signal.SIGKILL
        killed_at = time.monotonic()

        async def reaped() -> list[Job]:
            return await upkeep.reap_expired_leases(deps)

        moved = await wait_for(reaped, 10, "the reaper to requeue the job")
        assert [j.id for j in moved] == [job.id]
        # not before the 2 s lease ran out (the last heartbeat renewed it)
        assert time.monotonic() - killed_at >= 0.5
        requeued = await deps.store.get(job.id)
        assert requeued is not None and requeued.status == JobState.QUEUED
        assert requeued.attempts == 1 and requeued.lease_owner is None
        assert "worker stopped responding" in (requeued.error_message or "")
        assert await deps.queue.holds(job.id, 2)

        # another worker picks it up; it keeps running a while to show nothing runs twice
        await run_worker_until(deps, lambda: _delivered(deps, job.id), 20)
        await run_worker_until(deps, lambda: asyncio.sleep(1, True), 5)
        done = await deps.store.get(job.id)
        assert done is not None and done.status == JobState.COMPLETED, done
        assert done.attempts == 2 and done.delivered_at is not None
        assert receiver.delivered(job.id) == 1
        assert len(receiver.posts) == 1
    finally:
        await stop_process(worker)
        kill_pid(engine_pid)


async def test_engine_child_of_a_sigkilled_worker_stops_too(
    deps: Deps, small_clip: Path, receiver: Receiver, tmp_path: Path
) -> None:
    _, worker, engine_pid = await _job_running_in_a_worker_process(
        deps, small_clip, receiver, tmp_path
    )
    try:
        worker.send_signal(signal.SIGKILL)
        await asyncio.wait_for(worker.wait(), 10)

        async def engine_gone() -> bool:
            return gone(engine_pid)

        # an orphaned engine would keep the machine (or GPU) busy on a job nobody waits for
        await wait_for(engine_gone, 5, "the orphaned engine child to stop")
    finally:
        await stop_process(worker)
        kill_pid(engine_pid)


async def test_sigterm_hands_the_job_back_at_once_and_another_worker_finishes_it(
    deps: Deps, small_clip: Path, receiver: Receiver, tmp_path: Path
) -> None:
    job, worker, engine_pid = await _job_running_in_a_worker_process(
        deps, small_clip, receiver, tmp_path
    )
    try:
        worker.send_signal(signal.SIGTERM)
        signalled = time.monotonic()

        async def queued_again() -> bool:
            current = await deps.store.get(job.id)
            return current is not None and current.status == JobState.QUEUED

        await wait_for(queued_again, 2.0, "the job to be handed back")
        handed_back_s = time.monotonic() - signalled
        assert handed_back_s < 2.0
        assert await asyncio.wait_for(worker.wait(), 15) == 0
        back = await deps.store.get(job.id)
        assert back is not None and back.attempts == 0 and back.lease_owner is None
        assert await deps.queue.holds(job.id, 1)
        assert gone(engine_pid)

        await run_worker_until(deps, lambda: _delivered(deps, job.id), 20)
        done = await deps.store.get(job.id)
        assert done is not None and done.status == JobState.COMPLETED
        assert done.attempts == 1
        assert receiver.delivered(job.id) == 1
    finally:
        await stop_process(worker)
        kill_pid(engine_pid)
