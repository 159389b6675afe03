"""GPU_BACKEND=modal: ModalEngine against a stand-in for the Modal SDK."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import modal
import modal.exception as modal_errors
import pytest

from core.errors import (
    ConfigError,
    EngineError,
    EngineTimeout,
    InputError,
    NotAVideo,
    VideoTooLarge,
)
from core.jobs import Job, JobState, Source
from core.ops.reports import cold_start_of
from gpu.remote import ModalEngine
from tests.deploy.fake_modal import POLL, FakeModal, Stats


class SigningStorage:
    """Our Storage port, reduced to what ModalEngine uses: signing."""

    def __init__(self) -> None:
        self.signed: list[tuple[str, int]] = []

    async def signed_url(self, key: str, expires_in: int = 3600) -> str:
        self.signed.append((key, expires_in))
        return f"https://storage.example/sign/{key}?token=t"

    async def put_file(self, key: str, path: Path, content_type: str = "video/mp4") -> int:
        raise AssertionError("ModalEngine must not move video bytes itself")

    async def put_stream(self, *args: Any, **kwargs: Any) -> int:
        raise AssertionError("ModalEngine must not move video bytes itself")

    async def get_file(self, key: str, dest: Path) -> None:
        raise AssertionError("ModalEngine must not move video bytes itself")

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool:
        return True


@pytest.fixture
def fake_modal(monkeypatch: pytest.MonkeyPatch) -> FakeModal:
    fake = FakeModal()
    monkeypatch.setattr(modal.Function, "from_name", fake.function_from_name)
    monkeypatch.setattr(modal.Dict, "from_name", fake.dict_from_name)
    return fake


@pytest.fixture
def storage() -> SigningStorage:
    return SigningStorage()


@pytest.fixture
def engine(
    make_settings: Callable[..., Any], storage: SigningStorage
) -> Callable[..., ModalEngine]:
    def factory(**overrides: Any) -> ModalEngine:
        settings = make_settings(
            gpu_backend="modal",
            storage_backend="supabase",
            supabase_url="https://project.supabase.co",
            supabase_service_key="service-key",
            **overrides,
        )
        return ModalEngine(settings, storage, poll_interval_s=0.01, retry_delays_s=(0, 0, 0))

    return factory


def make_job(**changes: Any) -> Job:
    now = datetime.now(UTC)
    job = Job(
        id="job123",
        source=Source.WEBHOOK,
        requester="client",
        reply_to={},
        status=JobState.PROCESSING,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(days=7),
        options={"region": "top-right", "video_url": "https://example.com/v.mp4"},
        input_key="inputs/job123/v.mp4",
    )
    return job.replace(**changes)


class Progress:
    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    async def __call__(self, pct: int, step: str) -> None:
        self.seen.append((pct, step))


def success(started_at: float | None = None, cold: bool = True) -> dict[str, Any]:
    return {
        "output_key": "outputs/job123.mp4",
        "output_size_bytes": 4321,
        "report": {"frames": 10, "device": "cuda", "regions": []},
        "modal": {
            "device": "cuda",
            "gpu_s": 1.5,
            "fetch_s": 0.2,
            "upload_s": 0.1,
            "cold_start": cold,
            "started_at": started_at if started_at is not None else time.time(),
        },
    }


async def test_job_runs_on_the_deployed_function_by_signed_url_and_reports_gpu_time(
    fake_modal: FakeModal, engine: Callable[..., ModalEngine], storage: SigningStorage
) -> None:
    fake_modal.calls = [[POLL, POLL, POLL, success(started_at=time.time() + 3.0)]]
    fake_modal.progress_script = [{}, {"fraction": 0.5, "step": "removing"}]
    progress = Progress()

    result = await engine(modal_app_name="bl-test-app", modal_function_name="rm").process(
        make_job(), progress
    )

    assert fake_modal.looked_up[0] == ("bl-test-app", "rm")
    sent = fake_modal.spawned[0]
    assert sent["input_url"] == "https://storage.example/sign/inputs/job123/v.mp4?token=t"
    assert sent["output_key"] == "outputs/job123.mp4"
    assert sent["options"] == {"region": "top-right"}  # the user's URL stays home
    assert sent["limits"] == {"max_width": 4096, "max_height": 4096, "max_duration_s": 600}
    assert not any(isinstance(v, bytes) for v in sent.values())
    assert storage.signed[0][0] == "inputs/job123/v.mp4"
    assert result.output_key == "outputs/job123.mp4"
    assert result.output_size_bytes == 4321
    assert result.report["frames"] == 10
    timings = result.report["modal"]
    assert timings["gpu_s"] == 1.5
    assert timings["cold_start"] is True
    assert 2.5 < timings["cold_start_s"] < 4.0
    assert timings["call_id"] == fake_modal.made[0].object_id
    assert progress.seen[0] == (10, "waiting for GPU")
    assert (52, "processing on GPU: removing") in progress.seen
    assert progress.seen[-1] == (95, "GPU finished")
    assert cold_start_of(result.report) == timings["cold_start_s"]  # what /queue reads
    assert fake_modal.dicts[0] == "bl-test-app-progress"
    assert not fake_modal.made[0].cancelled


async def test_warm_container_reports_no_cold_start(
    fake_modal: FakeModal, engine: Callable[..., ModalEngine]
) -> None:
    fake_modal.calls = [[success(cold=False)]]
    result = await engine().process(make_job(), Progress())
    assert result.report["modal"]["cold_start_s"] == 0.0


async def test_function_timeout_becomes_engine_timeout(
    fake_modal: FakeModal, engine: Callable[..., ModalEngine]
) -> None:
    fake_modal.calls = [[POLL, modal_errors.FunctionTimeoutError("timed out after 1800s")]]
    with pytest.raises(EngineTimeout, match="MODAL_TIMEOUT_S"):
        await engine().process(make_job(), Progress())


async def test_call_still_running_at_the_deadline_is_cancelled_and_times_out(
    fake_modal: FakeModal, engine: Callable[..., ModalEngine]
) -> None:
    fake_modal.calls = [[POLL]]
    started = time.monotonic()
    with pytest.raises(EngineTimeout, match="within 1 s"):
        await engine(engine_timeout_s=1).process(make_job(), Progress())
    assert time.monotonic() - started < 3
    assert fake_modal.made[0].cancelled
    assert max(t for t in fake_modal.poll_timeouts if t is not None) <= 0.01 + 1e-9


async def test_transient_spawn_errors_are_retried(
    fake_modal: FakeModal, engine: Callable[..., ModalEngine]
) -> None:
    fake_modal.spawn_errors = [
        modal_errors.ConnectionError("reset"),
        modal_errors.ServiceError("unavailable"),
    ]
    fake_modal.calls = [[success()]]
    result = await engine().process(make_job(), Progress())
    assert result.output_size_bytes == 4321
    assert len(fake_modal.spawned) == 3


async def test_modal_unreachable_after_retries_is_a_temporary_engine_error(
    fake_modal: FakeModal, engine: Callable[..., ModalEngine]
) -> None:
    fake_modal.spawn_errors = [modal_errors.ConnectionError("reset")] * 4
    with pytest.raises(EngineError, match="cannot reach Modal") as caught:
        await engine().process(make_job(), Progress())
    assert caught.value.temporary
    assert len(fake_modal.spawned) == 4


async def test_undeployed_function_says_how_to_deploy(
    fake_modal: FakeModal, engine: Callable[..., ModalEngine]
) -> None:
    fake_modal.spawn_errors = [modal_errors.NotFoundError("App not found")]
    with pytest.raises(EngineError, match="modal deploy gpu/modal_app.py"):
        await engine().process(make_job(), Progress())
    assert len(fake_modal.spawned) == 1


async def test_lost_contact_while_polling_is_retried(
    fake_modal: FakeModal, engine: Callable[..., ModalEngine]
) -> None:
    fake_modal.calls = [[POLL, modal_errors.ConnectionError("blip"), POLL, success()]]
    result = await engine().process(make_job(), Progress())
    assert result.output_key == "outputs/job123.mp4"


async def test_modal_internal_failure_spawns_the_job_again(
    fake_modal: FakeModal, engine: Callable[..., ModalEngine]
) -> None:
    fake_modal.calls = [[modal_errors.InternalFailure("worker lost")], [success()]]
    result = await engine().process(make_job(), Progress())
    assert result.output_size_bytes == 4321
    assert len(fake_modal.spawned) == 2


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"error": {"type": "NotAVideo", "message": "That file is not a video."}}, NotAVideo),
        ({"error": {"type": "VideoTooLarge", "message": "Too long."}}, VideoTooLarge),
        (NotAVideo("That file is not a video."), NotAVideo),
    ],
)
async def test_input_errors_from_the_gpu_come_back_as_the_same_permanent_class(
    fake_modal: FakeModal,
    engine: Callable[..., ModalEngine],
    answer: Any,
    expected: type[InputError],
) -> None:
    fake_modal.calls = [[answer]]
    with pytest.raises(expected) as caught:
        await engine().process(make_job(), Progress())
    assert isinstance(caught.value, InputError)
    assert not caught.value.temporary
    assert len(fake_modal.spawned) == 1


async def test_unexpected_gpu_exception_is_an_engine_error_with_its_message(
    fake_modal: FakeModal, engine: Callable[..., ModalEngine]
) -> None:
    fake_modal.calls = [[RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")]]
    with pytest.raises(EngineError, match="RuntimeError: CUDA out of memory"):
        await engine().process(make_job(), Progress())


async def test_modal_remote_error_is_an_engine_error(
    fake_modal: FakeModal, engine: Callable[..., ModalEngine]
) -> None:
    fake_modal.calls = [[modal_errors.RemoteError("container crashed")]]
    with pytest.raises(EngineError, match="container crashed"):
        await engine().process(make_job(), Progress())


async def test_cancelled_job_cancels_the_modal_call(
    fake_modal: FakeModal, engine: Callable[..., ModalEngine]
) -> None:
    fake_modal.calls = [[POLL]]
    task = asyncio.create_task(engine().process(make_job(), Progress()))
    while not fake_modal.made:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fake_modal.made[0].cancelled


async def test_job_without_input_is_refused_before_calling_modal(
    fake_modal: FakeModal, engine: Callable[..., ModalEngine]
) -> None:
    with pytest.raises(EngineError, match="no stored input"):
        await engine().process(make_job(input_key=None), Progress())
    assert fake_modal.spawned == []


def test_modal_backend_refuses_local_storage(make_settings: Callable[..., Any]) -> None:
    with pytest.raises(ConfigError, match="STORAGE_BACKEND=supabase"):
        ModalEngine(make_settings(gpu_backend="modal"), SigningStorage())


async def test_health_is_ok_with_runner_counts_when_deployed(
    fake_modal: FakeModal, engine: Callable[..., ModalEngine]
) -> None:
    fake_modal.stats = Stats(backlog=2, num_total_runners=1)
    health = await engine().health()
    assert health["status"] == "ok"
    assert health["backlog"] == 2
    assert health["warm"] is True
    assert health["gpu"] == "A10G"
    assert "2 waiting" in health["detail"]


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (modal_errors.NotFoundError("no such app"), "down"),
        (modal_errors.AuthError("bad token"), "down"),
        (modal_errors.ConnectionError("unreachable"), "degraded"),
    ],
)
async def test_health_reports_down_or_degraded(
    fake_modal: FakeModal, engine: Callable[..., ModalEngine], outcome: Exception, status: str
) -> None:
    fake_modal.hydrate_outcome = outcome
    assert (await engine().health())["status"] == status


async def test_progress_lookup_failures_never_fail_the_job(
    fake_modal: FakeModal, engine: Callable[..., ModalEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    class MissingDict:
        class get:  # noqa: N801 - shaped like Modal's method object
            @staticmethod
            async def aio(key: str) -> None:
                raise modal_errors.NotFoundError("Dict not found")

    monkeypatch.setattr(modal.Dict, "from_name", lambda *a, **k: MissingDict())
    fake_modal.calls = [[POLL, POLL, success()]]
    progress = Progress()

    result = await engine().process(make_job(), progress)

    assert result.output_size_bytes == 4321
    assert progress.seen == [(10, "waiting for GPU"), (95, "GPU finished")]
