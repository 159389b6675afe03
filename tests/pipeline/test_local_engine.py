"""LocalEngine: the engine in a killable child process, its errors mapped to ours."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import time
from pathlib import Path

import pytest

from core.engines import LocalEngine
from core.errors import EngineError, EngineTimeout, NotAVideo, VideoTooLarge
from core.jobs import Job, NewJob, Source
from core.settings import Settings
from core.storage import open_storage
from tests.media import count_frames

STAND_IN = "tests.pipeline.stand_in_engine"


def a_job(input_key: str, **options: object) -> Job:
    from datetime import UTC, datetime, timedelta

    new = NewJob(
        source=Source.CLI, requester="t", reply_to={}, options=dict(options), input_key=input_key
    )
    return new.to_job(datetime.now(UTC), timedelta(days=7))


async def stored_clip(settings: Settings, clip: Path) -> tuple[object, str]:
    storage = open_storage(settings)
    key = "inputs/test/clip.mp4"
    await storage.put_file(key, clip)
    return storage, key


class Progress:
    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    async def __call__(self, percent: int, step: str) -> None:
        self.seen.append((percent, step))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie that nobody reaped yet still answers kill(0); read its state
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "zombie" in status.read_text()


async def test_engine_child_stores_the_output_and_forwards_progress(
    make_settings, small_clip: Path
) -> None:
    settings = make_settings()
    storage, key = await stored_clip(settings, small_clip)
    engine = LocalEngine(settings, storage, target=f"{STAND_IN}:copy")  # type: ignore[arg-type]
    progress = Progress()

    result = await engine.process(a_job(key), progress)

    assert result.output_key.startswith("outputs/") and result.output_key.endswith(".mp4")
    assert result.output_size_bytes == small_clip.stat().st_size
    assert result.report["stand_in"] is True
    assert (20, "detecting") in progress.seen and (90, "encoding") in progress.seen
    assert not list((settings.data_dir / "work").iterdir())  # temporary files removed


async def test_a_hanging_engine_is_killed_at_the_timeout(
    make_settings, small_clip: Path, tmp_path: Path
) -> None:
    settings = make_settings(engine_timeout_s=1)
    storage, key = await stored_clip(settings, small_clip)
    engine = LocalEngine(settings, storage, target=f"{STAND_IN}:hang")  # type: ignore[arg-type]
    pid_file = tmp_path / "pid"

    started = time.monotonic()
    with pytest.raises(EngineTimeout, match="longer than 1 s"):
        await engine.process(a_job(key, pid_file=str(pid_file)), Progress())

    assert time.monotonic() - started < 5
    assert gone(int(pid_file.read_text()))


async def test_a_crashing_engine_becomes_a_temporary_engine_error(
    make_settings, small_clip: Path
) -> None:
    settings = make_settings()
    storage, key = await stored_clip(settings, small_clip)
    engine = LocalEngine(settings, storage, target=f"{STAND_IN}:crash")  # type: ignore[arg-type]

    with pytest.raises(EngineError, match="killed by signal 9") as caught:
        await engine.process(a_job(key), Progress())
    assert caught.value.temporary


async def test_input_errors_from_the_child_keep_their_class(
    make_settings, small_clip: Path
) -> None:
    settings = make_settings()
    storage, key = await stored_clip(settings, small_clip)
    engine = LocalEngine(settings, storage, target=f"{STAND_IN}:not_a_video")  # type: ignore[arg-type]

    with pytest.raises(NotAVideo, match="not a video we can read"):
        await engine.process(a_job(key), Progress())


async def test_cancelling_the_run_kills_the_child_at_once(
    make_settings, small_clip: Path, tmp_path: Path
) -> None:
    settings = make_settings()
    storage, key = await stored_clip(settings, small_clip)
    engine = LocalEngine(settings, storage, target=f"{STAND_IN}:hang")  # type: ignore[arg-type]
    pid_file = tmp_path / "pid"
    progress = Progress()
    run = asyncio.create_task(engine.process(a_job(key, pid_file=str(pid_file)), progress))
    for _ in range(200):
        if pid_file.exists() and progress.seen[-1:] == [(10, "removing")]:
            break
        await asyncio.sleep(0.05)

    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run

    assert gone(int(pid_file.read_text()))


async def test_health_reports_device_and_tools_without_importing_torch(make_settings) -> None:
    import sys

    settings = make_settings()
    engine = LocalEngine(settings, open_storage(settings))
    had_torch = "torch" in sys.modules

    facts = await engine.health()

    assert facts["backend"] == "local" and facts["device"] in ("cpu", "cuda")
    assert facts["ffmpeg"] and facts["versions"]["imageio-ffmpeg"]
    assert ("torch" in sys.modules) == had_torch
    expected = (
        "ok"
        if importlib.util.find_spec("gpu.engine") and importlib.util.find_spec("torch")
        else "down"
    )
    assert facts["status"] == expected


@pytest.mark.skipif(
    importlib.util.find_spec("gpu.engine") is None, reason="gpu.engine not there yet"
)
async def test_the_real_engine_runs_in_the_child_on_a_small_clip(
    make_settings, small_clip: Path, tmp_path: Path
) -> None:
    settings = make_settings(engine_device="cpu")
    storage, key = await stored_clip(settings, small_clip)
    engine = LocalEngine(settings, storage)  # type: ignore[arg-type]

    result = await engine.process(a_job(key, region="auto"), Progress())

    out = tmp_path / "out.mp4"
    await storage.get_file(result.output_key, out)  # type: ignore[attr-defined]
    assert count_frames(out) == count_frames(small_clip)
    assert "regions" in result.report


@pytest.mark.skipif(
    importlib.util.find_spec("gpu.engine") is None, reason="gpu.engine not there yet"
)
async def test_the_limits_from_settings_reach_the_engine(make_settings, small_clip: Path) -> None:
    settings = make_settings(engine_device="cpu", max_width=64)
    storage, key = await stored_clip(settings, small_clip)
    engine = LocalEngine(settings, storage)  # type: ignore[arg-type]

    with pytest.raises(VideoTooLarge):
        await engine.process(a_job(key), Progress())
