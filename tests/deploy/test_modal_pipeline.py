"""GPU_BACKEND=modal + STORAGE_BACKEND=supabase through the real pipeline.

Real arq worker, real Redis, SQLite, `core.deps.build` choosing ModalEngine and
SupabaseStorage, the real `supabase` client against the loopback Storage server, and a
Modal stand-in at the SDK boundary whose `spawn` runs the GPU function's own body
(`gpu.modal_app.run_removal`) the way a container would: input by signed URL, output
written to the bucket, report returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import modal
import pytest

from core import intake
from core.deps import Deps, build
from core.jobs import JobState, NewJob, Source
from core.ops.reports import cold_start_of
from core.settings import Settings
from gpu import modal_app
from gpu.remote import ModalEngine
from tests.deploy.fake_supabase import FakeStorage
from tests.media import count_frames, make_clip
from tests.pipeline.conftest import FAST, forget_prefix, run_worker
from tests.pipeline.fakes import CountingNotifier

pytestmark = [pytest.mark.redis, pytest.mark.slow]


class _Method:
    def __init__(self, fn: Any) -> None:
        self.aio = fn


class ContainerCall:
    """A spawned call: the GPU function's body running as a task."""

    def __init__(self, task: asyncio.Task[Any], call_id: str) -> None:
        self.object_id = call_id
        self._task = task
        self.get = _Method(self._get)
        self.cancel = _Method(self._cancel)

    async def _get(self, timeout: float | None = None) -> Any:
        # like FunctionCall.get: the answer, the function's exception, or TimeoutError
        return await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def _cancel(self) -> None:
        self._task.cancel()

    @property
    def cancelled(self) -> bool:
        return self._task.cancelled()


class ModalCloud:
    """Function.from_name(...) whose spawn runs run_removal with the container's settings."""

    def __init__(self, container_settings: Settings) -> None:
        self.container_settings = container_settings
        self.spawned: list[dict[str, Any]] = []
        self.lookups: list[tuple[str, str]] = []
        self.calls: list[ContainerCall] = []
        #: when set, the "GPU" never answers (a job that runs and runs)
        self.hang = False
        self.started = asyncio.Event()

    def from_name(self, app_name: str, name: str, **_: Any) -> Any:
        self.lookups.append((app_name, name))
        cloud = self

        class Function:
            spawn = _Method(cloud._spawn)
            hydrate = _Method(cloud._hydrate)
            get_current_stats = _Method(cloud._stats)

        return Function()

    async def _hydrate(self) -> None:
        return None

    async def _stats(self) -> Any:
        class Stats:
            backlog = len([c for c in self.calls if not c._task.done()])
            num_total_runners = 1 if self.calls else 0

        return Stats()

    async def _spawn(self, **kwargs: Any) -> ContainerCall:
        self.spawned.append(kwargs)
        if self.hang:
            body: Any = asyncio.sleep(3600)
        else:
            body = modal_app.run_removal(settings=self.container_settings, **kwargs)
        call = ContainerCall(asyncio.ensure_future(body), f"fc-{len(self.spawned)}")
        self.calls.append(call)
        self.started.set()
        return call


class NoProgressYet:
    """modal.Dict.from_name(...): the stand-in container publishes no progress."""

    def __init__(self, *_: Any, **__: Any) -> None:
        self.get = _Method(self._get)

    async def _get(self, key: str) -> None:
        return None


@pytest.fixture
async def deps(
    make_settings: Callable[..., Settings],
    redis_url: str,
    fake_supabase: tuple[FakeStorage, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Deps, ModalCloud, CountingNotifier]]:
    supabase = {
        "storage_backend": "supabase",
        "supabase_url": fake_supabase[1],
        "supabase_service_key": "service-key",
        "supabase_bucket": "videos",
    }
    settings = make_settings(
        redis_url=redis_url, gpu_backend="modal", job_lease_seconds=FAST.lease_s, **supabase
    )
    cloud = ModalCloud(Settings(data_dir=tmp_path / "container", **supabase))
    monkeypatch.setattr(modal.Function, "from_name", cloud.from_name)
    monkeypatch.setattr(modal.Dict, "from_name", NoProgressYet)
    monkeypatch.setitem(modal_app._CONTAINER, "inputs", 0)  # a fresh container: cold
    notifier = CountingNotifier()
    built = await build(settings, notifiers={source: notifier for source in Source})
    try:
        yield built, cloud, notifier
    finally:
        await built.close()
        await forget_prefix(redis_url, settings.redis_prefix)


async def submit(deps: Deps, clip: Path, name: str) -> str:
    job = NewJob(
        source=Source.WEBHOOK,
        requester="test-client",
        reply_to={"callback_url": "http://127.0.0.1:9/callback"},
        options={"region": "auto"},
        input_filename=name,
    )
    key = f"inputs/{job.id}/{name}"
    size = await deps.storage.put_file(key, clip, "video/mp4")
    job = NewJob(**{**job.__dict__, "input_key": key, "input_size_bytes": size})
    return (await intake.accept(deps, job)).job.id


async def test_modal_jobs_run_on_the_gpu_function_and_land_in_the_bucket(
    deps: tuple[Deps, ModalCloud, CountingNotifier],
    fake_supabase: tuple[FakeStorage, str],
    tmp_path: Path,
) -> None:
    built, cloud, notifier = deps
    state, _ = fake_supabase
    assert isinstance(built.engine, ModalEngine)
    first = await submit(built, make_clip(tmp_path / "a.mp4"), "a.mp4")
    second = await submit(built, make_clip(tmp_path / "b.mp4", audio=False), "b.mp4")

    await run_worker(built)

    assert cloud.lookups[0] == ("blanklogo-watermark-removal", "remove_watermark")
    assert all("/object/sign/videos/inputs/" in s["input_url"] for s in cloud.spawned)
    jobs = {job_id: await built.store.get(job_id) for job_id in (first, second)}
    for job_id, job in jobs.items():
        assert job is not None and job.status == JobState.COMPLETED, job
        assert job.output_key == f"outputs/{job_id}.mp4"
        data, content_type = state.objects[("videos", job.output_key)]
        assert content_type == "video/mp4"
        assert job.output_size_bytes == len(data)
        out = tmp_path / f"{job_id}.mp4"
        out.write_bytes(data)
        assert count_frames(out) == 10
        assert job.report is not None and job.report["modal"]["gpu_s"] > 0
        assert notifier.count(job_id) == 1
    colds = sorted(bool(job.report["modal"]["cold_start"]) for job in jobs.values() if job.report)
    assert colds == [False, True]  # the second job found the container warm
    assert all(cold_start_of(job.report) is not None for job in jobs.values() if job)


async def test_a_non_video_fails_once_with_the_users_message_and_is_not_retried(
    deps: tuple[Deps, ModalCloud, CountingNotifier], tmp_path: Path
) -> None:
    built, cloud, notifier = deps
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"definitely not a video " * 200)
    job_id = await submit(built, junk, "junk.mp4")

    await run_worker(built)

    job = await built.store.get(job_id)
    assert job is not None and job.status == JobState.FAILED
    assert job.attempts == 1 and len(cloud.spawned) == 1
    assert job.error_message
    assert notifier.count(job_id) == 1


async def test_cancelling_a_job_cancels_its_modal_call(
    deps: tuple[Deps, ModalCloud, CountingNotifier], tmp_path: Path
) -> None:
    built, cloud, notifier = deps
    cloud.hang = True
    job_id = await submit(built, make_clip(tmp_path / "a.mp4"), "a.mp4")
    worker = asyncio.create_task(run_worker(built))
    await asyncio.wait_for(cloud.started.wait(), 10)

    await built.store.move(job_id, JobState.CANCELLED, expected=[JobState.PROCESSING])
    await asyncio.wait_for(worker, 10)

    await asyncio.sleep(0)
    assert cloud.calls[0].cancelled
    job = await built.store.get(job_id)
    assert job is not None and job.status == JobState.CANCELLED and job.output_key is None
    assert notifier.delivered == [(job_id, "cancelled")]


async def test_health_checks_the_bucket_round_trip_and_the_modal_function(
    deps: tuple[Deps, ModalCloud, CountingNotifier], fake_supabase: tuple[FakeStorage, str]
) -> None:
    from core.health import check_health
    from core.ops.render import render_health

    built, _, _ = deps
    state, _ = fake_supabase

    health = await check_health(built)

    assert health["services"]["storage"]["status"] == "ok"
    assert health["services"]["storage"]["backend"] == "supabase"
    gpu = health["services"]["gpu"]
    assert gpu["status"] == "ok" and gpu["backend"] == "modal" and gpu["runners"] == 0
    text = render_health(health)
    assert "backend modal" in text and "next job cold-starts" in text
    assert state.seen("POST", "/storage/v1/object/videos/health/")  # wrote,
    assert state.seen("GET", "/storage/v1/object/videos/health/")  # read back,
    assert state.seen("DELETE", "/storage/v1/object/videos")  # and removed its probe
    assert not [key for key in state.objects if key[1].startswith("health/")]
