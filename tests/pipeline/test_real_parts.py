"""The pipeline with its real parts: the real engine through the worker, and PostgreSQL."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from core.engines import LocalEngine
from core.intake import accept
from core.jobs import JobState
from tests.media import count_frames
from tests.pipeline.conftest import (
    build_deps,
    claim_and_die,
    forget_prefix,
    new_job,
    reap_dead,
    run_worker,
    store_clip,
)
from tests.pipeline.fakes import CountingNotifier


@pytest.mark.skipif(
    importlib.util.find_spec("gpu.engine") is None, reason="gpu.engine not there yet"
)
async def test_a_real_clip_goes_through_worker_and_real_engine(
    make_settings, redis_url: str, small_clip: Path, tmp_path: Path
) -> None:
    settings = make_settings(redis_url=redis_url, engine_device="cpu")
    notifier = CountingNotifier()
    from core.storage import open_storage

    storage = open_storage(settings)
    deps = await build_deps(settings, notifier, engine=LocalEngine(settings, storage))
    try:
        accepted = await accept(deps, await store_clip(deps, new_job(), small_clip))
        await run_worker(deps)

        job = await deps.store.get(accepted.job.id)
        assert job is not None and job.status == JobState.COMPLETED, job
        out = tmp_path / "cleaned.mp4"
        await deps.storage.get_file(job.output_key or "", out)
        assert count_frames(out) == count_frames(small_clip)
        assert job.report is not None and "regions" in job.report
        assert job.input_duration_sec is not None and 0.5 < job.input_duration_sec < 1.5
        assert notifier.delivered == [(job.id, "completed")]
    finally:
        await deps.close()
        await forget_prefix(redis_url, settings.redis_prefix)


@pytest.mark.postgres
async def test_on_postgres_a_reaped_job_runs_again_and_is_delivered_once(
    make_settings, redis_url: str, pg_url: str, small_clip: Path
) -> None:
    settings = make_settings(redis_url=redis_url, database_url=pg_url)
    notifier = CountingNotifier()
    deps = await build_deps(settings, notifier)
    try:
        first = await accept(deps, await store_clip(deps, new_job(), small_clip))
        second = await accept(deps, await store_clip(deps, new_job(), small_clip))
        await claim_and_die(deps, second.job.id)
        await run_worker(deps)
        await reap_dead(deps)
        await run_worker(deps)

        for accepted, attempts in ((first, 1), (second, 2)):
            job = await deps.store.get(accepted.job.id)
            assert job is not None and job.status == JobState.COMPLETED
            assert job.attempts == attempts and notifier.count(job.id) == 1
    finally:
        await deps.close()
        await forget_prefix(redis_url, settings.redis_prefix)
