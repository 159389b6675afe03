"""One decode of a short clip, kept beside the output: the samples and the stream both come
from it, and a clip that does not fit is decoded twice, as before."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import gpu.engine
import gpu.spill
from core.errors import EngineError
from gpu.engine import process
from gpu.probe import probe_video
from gpu.sampling import sample_frames
from gpu.spill import Spill, decode_once
from tests.media import decoded, make_clip


def _decode(path: Path) -> np.ndarray:
    info = probe_video(path)
    return np.frombuffer(decoded(path), np.uint8).reshape(-1, info.width * info.height * 3 // 2)


def test_one_decode_gives_every_frame(tmp_path: Path) -> None:
    src = make_clip(
        tmp_path / "in.mp4", seconds=6, size="96x64", fps=20, audio=False, x264=("-bf", "3")
    )
    spill = decode_once(src, probe_video(src), tmp_path / "clip.y4m")
    assert spill is not None and spill.frames == 120 and len(spill.pictures) == 120
    batches = [(first, chunk.copy()) for first, chunk in spill.batches(7)]
    assert [first for first, _chunk in batches] == list(range(0, 120, 7))
    assert np.array_equal(np.concatenate([chunk for _first, chunk in batches]), _decode(src))
    spill.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.parametrize(
    ("seconds", "x264", "route"),
    [
        (6, ("-bf", "3"), "reference frames"),  # x264's B-pyramid
        (6, ("-g", "4"), "keyframes"),
        (1.5, ("-bf", "3"), "every step-th frame"),  # too few of either
    ],
)
def test_the_samples_are_those_a_decode_of_their_own_picks(
    tmp_path: Path, seconds: float, x264: tuple[str, ...], route: str
) -> None:
    """Detection and matting were built on the frames `sample_frames` picks (the reference
    frames of a B-frame clip; all but its B-frames found 13 of the benchmark's 25 marks,
    not 17): the one decode gives the same frames, each at its number."""
    src = make_clip(
        tmp_path / "in.mp4", seconds=seconds, size="96x64", fps=20, audio=False, x264=x264
    )
    info = probe_video(src)
    spill = decode_once(src, info, tmp_path / "clip.y4m")
    assert spill is not None
    kinds = [kind for _key, kind in spill.pictures]
    own = sample_frames(src, info, max_samples=16)
    samples = spill.samples(max_samples=16)
    assert samples is not None and samples.clip_frames == spill.frames
    assert np.array_equal(samples.indices, own.indices), route
    assert np.array_equal(samples.frames, own.frames), route
    picked = [spill.pictures[i] for i in samples.indices]
    if route == "keyframes":
        assert all(key for key, _kind in picked)
    elif route == "reference frames":
        assert kinds.count("B") >= 30 and 0 < [k for _key, k in picked].count("B") < 8
    else:
        assert np.array_equal(samples.indices, np.arange(0, 30, 2))


def test_a_clip_too_long_to_keep_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_clip(tmp_path / "in.mp4", seconds=3, size="96x64", fps=20, audio=False)
    info = probe_video(src)
    frame = 96 * 64 * 3 // 2 + 6
    monkeypatch.setattr(gpu.spill, "SPILL_MAX_BYTES", 40 * frame)
    # longer than the limit by its header: not decoded here at all
    assert decode_once(src, info, tmp_path / "clip.y4m") is None
    # a header that says less than the clip holds: the decoder stops at the limit
    assert decode_once(src, replace(info, frames=10, duration_s=0.5), tmp_path / "c.y4m") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
    monkeypatch.setattr(gpu.spill, "SPILL_MAX_BYTES", 61 * frame + 200)
    kept = decode_once(src, info, tmp_path / "clip.y4m")
    assert kept is not None and kept.frames == 60


def test_a_clip_is_not_kept_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file on tmpfs (/tmp in many containers) is memory, which the stream keeps flat;
    and a file larger than a tenth of the free memory would be written out to the disk."""
    assert gpu.spill._filesystem(Path("/proc/self")) == "proc"  # from the mount table
    src = make_clip(tmp_path / "in.mp4", seconds=2, size="96x64", fps=20, audio=False)
    info = probe_video(src)
    kept = decode_once(src, info, tmp_path / "clip.y4m")
    assert kept is not None
    kept.discard()
    with monkeypatch.context() as patch:
        patch.setattr(gpu.spill, "_filesystem", lambda _directory: "tmpfs")
        assert decode_once(src, info, tmp_path / "clip.y4m") is None
    frame = 96 * 64 * 3 // 2 + 6
    monkeypatch.setattr(gpu.spill, "_free_memory", lambda: 10 * 30 * frame)
    assert decode_once(src, info, tmp_path / "clip.y4m") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_a_truncated_clip_is_left_to_the_usual_decode(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mp4", seconds=3, size="96x64", fps=20, audio=False)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size * 2 // 3])
    assert decode_once(cut, probe_video(src), tmp_path / "clip.y4m") is None
    assert not (tmp_path / "clip.y4m").exists()


@pytest.mark.parametrize("kept", [True, False], ids=["decoded-once", "decoded-twice"])
def test_the_engine_streams_from_the_one_decode_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kept: bool
) -> None:
    """Kept, the frames are read back from the decoded clip's file, cleaned and streamed to
    the encoder; not kept, the clip is decoded again. The file is gone after a success or
    a failure."""
    src = make_clip(tmp_path / "in.mp4", seconds=2, size="160x120", fps=10, audio=True)
    edited: list[Spill] = []
    real_batches = Spill.batches

    def batches(spill: Spill, batch: int) -> object:
        edited.append(spill)
        return real_batches(spill, batch)

    monkeypatch.setattr(Spill, "batches", batches)
    if not kept:
        monkeypatch.setattr(gpu.spill, "SPILL_MAX_BYTES", 0)
    out = tmp_path / "out" / "clean.mp4"
    out.parent.mkdir()
    seen: list[float] = []
    report = process(src, out, {"region": "96,72,48,32", "crf": 0}, lambda v, _s: seen.append(v))
    assert report["frames"] == 20 and len(edited) == int(kept)
    assert report["audio"] == "copy" and max(v for v in seen if v < 1.0) > 0.9
    before, after = (_decode(p)[:, : 160 * 120].reshape(-1, 120, 160) for p in (src, out))
    far = np.ones((120, 160), bool)
    far[72 - 16 :, 96 - 16 :] = False
    assert np.array_equal(after[:, far], before[:, far])
    assert not np.array_equal(after, before)  # the region itself was worked on
    assert [p.name for p in out.parent.iterdir()] == ["clean.mp4"]

    def failing(*_args: object) -> list[object]:
        raise EngineError("finding the watermark failed")

    monkeypatch.setattr(gpu.engine, "_find_marks", failing)
    with pytest.raises(EngineError):
        process(src, out.with_name("again.mp4"), {"region": "auto"})
    assert [p.name for p in out.parent.iterdir()] == ["clean.mp4"]


def test_the_one_decode_changes_nothing_but_the_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same samples, the same frames: the same mattes and the same output either way."""
    src = make_clip(
        tmp_path / "in.mp4", seconds=4, size="160x120", fps=20, audio=True, x264=("-bf", "3")
    )
    once = process(src, tmp_path / "once.mp4", {"region": "96,72,48,32"})
    monkeypatch.setattr(gpu.spill, "SPILL_MAX_BYTES", 0)
    twice = process(src, tmp_path / "twice.mp4", {"region": "96,72,48,32"})
    assert once["regions"] == twice["regions"] and once["frames"] == twice["frames"] == 80
    assert decoded(tmp_path / "once.mp4") == decoded(tmp_path / "twice.mp4")
