"""Ops commands against a real arq worker in-process: cancel stops a running job, and a job
/retry-stuck requeues really runs again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.deps import Deps, build
from core.intake import accept
from core.jobs import Job, JobState
from core.ops import OpsRequest, handle_command
from core.ports import EngineResult, ProgressFn
from core.processing import Policy
from core.settings import Settings
from core.worker import build_worker
from tests.ops.conftest import SLACK_ADMIN, drop_redis_keys, new_job

pytestmark = [pytest.mark.redis]

QUICK = Policy(lease_s=30, heartbeat_s=0.1, retry_base_s=0.1)


class ScriptedEngine:
    """Our Engine port: hangs on the first run when told to, else writes a tiny output."""

    def __init__(self, hang: bool) -> None:
        self.hang = hang
        self.started = asyncio.Event()
        self.cancelled = 0
        self.runs = 0

    def attach(self, deps: Deps) -> None:
        self.deps = deps

    async def process(self, job: Job, progress: ProgressFn) -> EngineResult:
        self.runs += 1
        await progress(10, "removing")
        self.started.set()
        if self.hang:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        key = f"outputs/{job.id}.mp4"

        async def chunks() -> AsyncIterator[bytes]:
            yield b"not really a video"

        size = await self.deps.storage.put_stream(key, chunks())
        return EngineResult(output_key=key, output_size_bytes=size)

    async def health(self) -> dict[str, Any]:
        return {"status": "ok"}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


async def deps_with(settings: Settings, engine: ScriptedEngine) -> Deps:
    built = await build(settings, engine=engine, notifiers={})
    engine.attach(built)
    return built


async def with_input(deps: Deps) -> Any:
    job = new_job()
    key = f"inputs/{job.id}/clip.mp4"

    async def chunks() -> AsyncIterator[bytes]:
        yield b"input bytes"

    await deps.storage.put_stream(key, chunks())
    return await accept(deps, replace(job, input_key=key))


async def run_worker(deps: Deps, **options: Any) -> None:
    worker = build_worker(
        deps.settings, deps=deps, policy=QUICK, poll_delay=0, handle_signals=False, **options
    )
    try:
        await worker.async_run()
    finally:
        with contextlib.suppress(Exception):
            await worker.close()


async def test_cancel_from_slack_stops_the_running_job_on_its_worker(settings: Settings) -> None:
    engine = ScriptedEngine(hang=True)
    deps = await deps_with(settings, engine)
    try:
        accepted = await with_input(deps)
        worker = asyncio.create_task(run_worker(deps, burst=True))
        await asyncio.wait_for(engine.started.wait(), 10)
        assert (await deps.store.get(accepted.job.id)).status == JobState.PROCESSING

        reply = await handle_command(
            deps, OpsRequest("slack", SLACK_ADMIN, "/cancel", accepted.job.id)
        )
        assert reply.ok, reply.text
        await asyncio.wait_for(worker, 10)

        job = await deps.store.get(accepted.job.id)
        assert job.status == JobState.CANCELLED
        assert job.output_key is None
        assert engine.cancelled == 1
    finally:
        await drop_redis_keys(deps.redis, settings.redis_prefix)
        await deps.close()


async def test_a_job_retry_stuck_requeues_runs_to_completion(settings: Settings) -> None:
    engine = ScriptedEngine(hang=False)
    deps = await deps_with(settings, engine)
    try:
        accepted = await with_input(deps)
        # its first worker died mid-job: claimed, then silent past its lease
        claimed = await deps.store.claim(accepted.job.id, "dead-worker", 0)
        assert claimed is not None
        await asyncio.sleep(0.01)

        reply = await handle_command(deps, OpsRequest("cli", "alice", "retry-stuck"))
        assert [a["action"] for a in reply.data["actions"]] == ["requeued"]
        await run_worker(deps, burst=True)

        job = await deps.store.get(accepted.job.id)
        assert job.status == JobState.COMPLETED, job.error_message
        assert job.attempts == 2
        assert engine.runs == 1
        now = datetime.now(UTC)
        assert job.completed_at is not None and now - job.completed_at < timedelta(seconds=30)
    finally:
        await drop_redis_keys(deps.redis, settings.redis_prefix)
        await deps.close()
