"""SIGTERM to a real worker process mid-job: the job is handed back at once, the engine killed."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from core.deps import Deps
from core.intake import accept
from core.jobs import JobState
from tests.pipeline.conftest import new_job, store_clip
from tests.pipeline.test_local_engine import gone

WORKER_SCRIPT = """
import asyncio
from core.deps import build
from core.engines import LocalEngine
from core.settings import Settings
from core.storage import open_storage
from core.worker import build_worker, close_worker

async def main():
    settings = Settings()
    storage = open_storage(settings)
    engine = LocalEngine(settings, storage, target="tests.pipeline.stand_in_engine:hang")
    deps = await build(settings, storage=storage, engine=engine, notifiers={})
    worker = build_worker(settings, deps=deps, poll_delay=0.05)
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        pass
    finally:
        await close_worker(worker)
        await deps.close()

asyncio.run(main())
"""


async def test_sigterm_hands_the_running_job_back_and_kills_the_engine(
    deps: Deps, small_clip: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "engine.pid"
    job = new_job(options={"region": "auto", "pid_file": str(pid_file)})
    accepted = await accept(deps, await store_clip(deps, job, small_clip))
    s = deps.settings
    env = {
        **os.environ,
        "REDIS_URL": s.redis_url or "",
        "REDIS_PREFIX": s.redis_prefix,
        "DATABASE_URL": s.database_url or "",
        "STORAGE_DIR": str(s.storage_dir),
        "DATA_DIR": str(s.data_dir),
        "JOB_LEASE_SECONDS": "300",
    }
    log_path = tmp_path / "worker.log"
    log = log_path.open("wb")
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WORKER_SCRIPT,
        env=env,
        cwd=str(Path(__file__).parents[2]),
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists():
            assert time.monotonic() < deadline, "the engine never started"
            await asyncio.sleep(0.05)
        running = await deps.store.get(accepted.job.id)
        assert running is not None and running.status == JobState.PROCESSING

        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 15) == 0, log_path.read_text()
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
        log.close()

    job_now = await deps.store.get(accepted.job.id)
    assert job_now is not None and job_now.status == JobState.QUEUED, log_path.read_text()
    assert job_now.attempts == 0 and job_now.lease_owner is None
    assert await deps.queue.holds(job_now.id, 1)
    assert gone(int(pid_file.read_text()))
