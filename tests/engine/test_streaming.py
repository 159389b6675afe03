"""The streaming pass: frames reach the encoder exactly as decoded, read ahead or not."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

import gpu.probe
from core.errors import VideoTooLarge
from gpu.engine import Limits, process
from gpu.probe import count_video_frames, ffmpeg_exe, probe_video
from gpu.sampling import _decoded_samples, _strided_samples, sample_frames
from gpu.video_io import EncoderSettings, FrameReader, FrameWriter
from tests.media import decoded, make_clip


def _decode(path: Path) -> np.ndarray:
    """Every frame as planar 4:2:0 bytes, straight from ffmpeg (no pipes of ours)."""
    info = probe_video(path)
    return np.frombuffer(decoded(path), np.uint8).reshape(-1, info.width * info.height * 3 // 2)


def _read_all(path: Path, ahead: int) -> np.ndarray:
    with FrameReader(path, threads=1) as reader:
        frames = np.concatenate([b.copy() for b in reader.batches(4, ahead=ahead)])
        reader.finish()
    return frames


def test_frames_read_ahead_are_the_decoded_frames(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mp4", seconds=3, size="96x64", fps=10, audio=False)
    truth = _decode(src)
    assert truth.shape[0] == 30
    assert np.array_equal(_read_all(src, ahead=0), truth)
    assert np.array_equal(_read_all(src, ahead=2), truth)


def test_skipped_frames_leave_the_others_in_place(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mp4", seconds=2, size="96x64", fps=10, audio=False)
    truth = _decode(src)
    kept = []
    with FrameReader(src) as reader:
        buf = np.empty(reader.format.frame_bytes, np.uint8)
        index = 0
        while reader.skip_frame() if index % 3 else reader.read_frame(buf):
            if index % 3 == 0:
                kept.append(buf.copy())
            index += 1
        reader.finish()
    assert index == 20 and np.array_equal(np.stack(kept), truth[::3])


def test_stopping_early_ends_the_read_ahead_thread(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mp4", seconds=3, size="96x64", fps=10, audio=False)
    before = threading.active_count()
    with FrameReader(src) as reader:
        first = next(iter(reader.batches(2, ahead=1)))
        assert first.shape[0] == 2
    assert threading.active_count() <= before + 1  # only the finished stderr drain may linger
    assert not any(t.name == "read-ahead" and t.is_alive() for t in threading.enumerate())


def test_written_frames_come_back_unchanged_when_lossless(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mp4", seconds=2, size="96x64", fps=10, audio=False)
    truth = _decode(src)
    out = tmp_path / "out.mp4"
    with FrameReader(src) as reader:
        with FrameWriter(
            out, reader.format, probe_video(src), audio_from=None, encoder=EncoderSettings(crf=0)
        ) as writer:
            for batch in reader.batches(3, ahead=2):
                writer.write_batch(batch)
            reader.finish()
            writer.finish()
    assert np.array_equal(_decode(out), truth)


def test_engine_leaves_pixels_away_from_the_region_exactly_as_decoded(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mp4", seconds=2, size="160x120", fps=10, audio=False)
    out = tmp_path / "out.mp4"
    report = process(src, out, {"region": "96,72,48,32", "crf": 0})
    assert report["frames"] == 20
    before, after = _decode(src), _decode(out)
    assert before.shape == after.shape
    y_before = before[:, : 160 * 120].reshape(-1, 120, 160)
    y_after = after[:, : 160 * 120].reshape(-1, 120, 160)
    x, y, w, h = report["regions"][0]["box"]
    far = np.ones((120, 160), bool)
    far[max(0, y - 16) : y + h + 16, max(0, x - 16) : x + w + 16] = False
    assert np.array_equal(y_after[:, far], y_before[:, far])
    assert not np.array_equal(y_after, y_before)  # the region itself was worked on


def test_samples_span_the_whole_clip_by_every_route(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mp4", seconds=6, size="96x64", fps=20, audio=False)
    info = probe_video(src)
    truth = _decode(src)
    routes = {
        "chosen": sample_frames(src, info, max_samples=16),
        "noref": _strided_samples(src, info, 16, "noref", 1),
        "decoded": _decoded_samples(src, info, 16),
    }
    for name, samples in routes.items():
        assert samples is not None, name
        count = samples.frames.shape[0]
        assert 8 <= count <= 16, name
        assert samples.indices[0] <= 8 and samples.indices[-1] >= 120 - 16, name
        assert np.all(np.diff(samples.indices) > 0), name
    exact = routes["decoded"]  # the full decode knows each frame's number exactly
    assert np.array_equal(exact.frames, truth[exact.indices])


def test_samples_from_a_decode_that_skips_frames_know_each_frame_s_number(
    tmp_path: Path,
) -> None:
    """The frames a skipping decode gives lie unevenly: B-frames that no other frame rests
    on are skipped in runs, keyframes come where the scene cuts. Placed evenly, samples
    were up to 6 frames early on the engine_marks clips (a jumping mark's time ranges with
    them); each carries its own time now."""
    b_frames = make_clip(
        tmp_path / "b.mp4", seconds=6, size="96x64", fps=20, audio=False, x264=("-bf", "3")
    )
    keys = make_clip(
        tmp_path / "k.mp4",
        seconds=6,
        size="96x64",
        fps=20,
        audio=False,
        x264=("-g", "250", "-force_key_frames", "expr:lt(mod(n*n,17),3)"),
    )
    for src, skip in ((b_frames, "noref"), (keys, "nokey")):
        samples = _strided_samples(src, probe_video(src), 16, skip, 1)
        assert samples is not None
        assert np.array_equal(samples.frames, _decode(src)[samples.indices]), skip


def _sound_outlasting_picture(src: Path) -> Path:
    """3 s of picture with 8 s of sound: the container's duration is the sound's."""
    subprocess.run(
        [
            ffmpeg_exe(), "-v", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=20:duration=3",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050:duration=8",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
            str(src),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return src


def test_samples_are_placed_by_the_pictures_own_frames_when_the_audio_runs_longer(
    tmp_path: Path,
) -> None:
    """A container's duration is its longest stream's. The samples' frame numbers (which
    place a moving mark's time ranges) must come from the picture's frames, not from it."""
    src = _sound_outlasting_picture(tmp_path / "long_audio.mp4")
    info = probe_video(src)
    assert info.frames > 120  # the duration is the sound's
    samples = sample_frames(src, info)
    assert 40 <= samples.indices[-1] <= 59
    assert np.all(np.diff(samples.indices) > 0)


def test_progress_runs_to_the_end_of_the_picture_when_the_audio_runs_longer(
    tmp_path: Path,
) -> None:
    src = _sound_outlasting_picture(tmp_path / "long_audio.mp4")
    seen: list[float] = []
    report = process(
        src, tmp_path / "out.mp4", {"region": "8,8,32,24"}, lambda v, _s: seen.append(v)
    )
    assert report["frames"] == 60
    assert max(v for v in seen if v < 1.0) > 0.95  # was 0.43: 60 of the 160 frames expected


def test_the_duration_limit_is_judged_on_the_picture_not_on_longer_sound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 s of sound over 3 s of picture is a 3 s job: a 5 s limit lets it through (the
    container's duration, the sound's, would refuse it) and a 2 s limit still refuses it.
    The picture's frames are counted once (a demux), for the limit and the samples both."""
    src = _sound_outlasting_picture(tmp_path / "long_audio.mp4")
    assert probe_video(src).duration_s > 5
    counts: list[int | None] = []

    def counting(path: str | os.PathLike[str]) -> int | None:
        counts.append(count_video_frames(path))
        return counts[-1]

    # the frames counted for the limit are the ones the samples are placed by: one demux
    monkeypatch.setattr(gpu.probe, "count_video_frames", counting)
    report = process(
        src, tmp_path / "ok.mp4", {"region": "8,8,32,24"}, limits=Limits(max_duration_s=5)
    )
    assert report["frames"] == 60
    assert counts == [60]
    with pytest.raises(VideoTooLarge, match="lasts 3 s"):
        process(src, tmp_path / "no.mp4", {"region": "8,8,32,24"}, limits=Limits(max_duration_s=2))
    assert not (tmp_path / "no.mp4").exists()
