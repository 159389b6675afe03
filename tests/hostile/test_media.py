"""Hostile media fail fast, with a clear error, inside time and memory limits, through the
engine library (gpu.probe / gpu.engine.process) and through the worker's LocalEngine child."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from core.engines import LocalEngine
from core.errors import InputError, NotAVideo, VideoTooLarge
from core.storage import open_storage
from gpu import probe
from gpu.engine import Limits, process
from tests.hostile.media_files import make_hostile
from tests.pipeline.test_local_engine import Progress, a_job

LIMITS = Limits(max_width=4096, max_height=4096, max_duration_s=600)

#: kind -> (error class, words the sender sees)
CASES = {
    "text": (NotAVideo, "not a video"),
    "random_bytes": (NotAVideo, "not a video"),
    "zero_bytes": (NotAVideo, "empty"),
    "truncated": (NotAVideo, "truncated"),
    "truncated_faststart": (NotAVideo, "could not be decoded"),
    "very_long": (VideoTooLarge, "7200 s"),
    "extreme_tall": (VideoTooLarge, "2x8192"),
    "declared_16000_square": (VideoTooLarge, "16000x16000"),
    "declared_20000_square": (NotAVideo, "not a video"),
    "declared_frame_without_data": (NotAVideo, "truncated"),
}


def _mb(kb: int) -> int:
    return kb // 1024


@pytest.mark.parametrize("kind", sorted(CASES))
def test_hostile_file_fails_fast_and_clearly_in_the_engine(kind: str, tmp_path: Path) -> None:
    error, words = CASES[kind]
    path = make_hostile(kind, tmp_path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(error) as caught:
        process(path, tmp_path / "out.mp4", {"region": "auto"}, device="cpu", limits=LIMITS)
    took = time.monotonic() - started
    grown = _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    assert words in str(caught.value), str(caught.value)
    assert "Traceback" not in str(caught.value) and len(str(caught.value)) < 600
    assert took < 5, f"{kind} took {took:.1f}s"
    assert grown < 300, f"{kind} grew the process by {grown} MB"
    assert not (tmp_path / "out.mp4").exists(), "no half-written output is left behind"


def test_a_decoder_that_hangs_on_a_file_is_stopped_by_the_probe_timeout(
    tmp_path: Path, small_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # stands in for an ffmpeg stuck on a file (exec: no grandchild keeps the pipes open)
    stuck = tmp_path / "stuck-ffmpeg"
    stuck.write_text("#!/bin/sh\nexec sleep 60\n")
    stuck.chmod(0o755)
    monkeypatch.setattr(probe, "ffmpeg_exe", lambda: str(stuck))
    monkeypatch.setattr(probe, "PROBE_TIMEOUT_S", 1)
    started = time.monotonic()
    with pytest.raises(NotAVideo, match="took too long"):
        probe.probe_video(small_clip)
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("kind", ["random_bytes", "very_long", "declared_16000_square"])
async def test_hostile_file_through_the_local_engine_child_fails_clearly(
    kind: str, make_settings, small_clip: Path, tmp_path: Path
) -> None:
    settings = make_settings(engine_device="cpu", engine_timeout_s=60)
    storage = open_storage(settings)
    await storage.put_file("inputs/hostile/file", make_hostile(kind, tmp_path))
    await storage.put_file("inputs/good/clip.mp4", small_clip)
    engine = LocalEngine(settings, storage)
    error, words = CASES[kind]
    started = time.monotonic()
    with pytest.raises(error) as caught:
        await engine.process(a_job("inputs/hostile/file"), Progress())
    assert isinstance(caught.value, InputError), "permanent: the job fails at once, no retries"
    assert words in str(caught.value)
    assert time.monotonic() - started < 30
    child_peak_mb = _mb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    assert child_peak_mb < 2048, f"an engine child used {child_peak_mb} MB"
