"""Sampled frames from across the whole clip, for detection and matting.

A bounded number of frames (evenly spaced), so memory does not grow with the clip.
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.errors import NotAVideo
from gpu.probe import VideoInfo, with_counted_frames
from gpu.video_io import FrameFormat, FrameReader

MAX_SAMPLES = 48
MAX_SAMPLE_BYTES = 256 * 1024 * 1024


@dataclass
class Samples:
    """Frames (T, frame_bytes) uint8 with the index of each in the full decode."""

    frames: np.ndarray
    indices: np.ndarray
    fmt: FrameFormat
    #: the clip's frame count as the samples were placed by it (0: unknown)
    clip_frames: int = 0

    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.fmt.planes(self.frames)


def sample_cap(frame_bytes: int, max_samples: int = MAX_SAMPLES) -> int:
    """How many frames to sample: `max_samples`, fewer for frames so large that they would
    take more than MAX_SAMPLE_BYTES, and at least 8."""
    return max(8, min(max_samples, MAX_SAMPLE_BYTES // max(frame_bytes, 1)))


MIN_KEYFRAMES = 24
#: how often (in frames read) the kept frames are thinned out
_CHECK_EVERY = 16


def sample_frames(
    path: str | os.PathLike[str], info: VideoInfo, max_samples: int = MAX_SAMPLES
) -> Samples:
    """About `max_samples` frames spread over the clip: its keyframes when it has enough of
    them (decoding only those is far cheaper), otherwise evenly spaced decoded frames."""
    cap = sample_cap(info.width * info.height * 3 // 2, max_samples)
    if info.has_audio:
        # the strided routes place their samples by the clip's frame count; with audio the
        # container's duration may be the audio's, longer than the picture (a moving mark's
        # time ranges landed seconds late on such a clip)
        info = with_counted_frames(path, info)
    return replace(_sampled(path, info, cap), clip_frames=info.frames)


def _sampled(path: str | os.PathLike[str], info: VideoInfo, cap: int) -> Samples:
    if info.fps > 0 and info.duration_s > 0:
        for skip, least in (("nokey", MIN_KEYFRAMES), ("noref", MIN_KEYFRAMES)):
            try:
                found = _strided_samples(path, info, cap, skip, least)
            except NotAVideo:
                found = None  # the full decode below has the last word on broken files
            if found is not None:
                return found
    return _decoded_samples(path, info, cap)


def _strided_samples(
    path: str | os.PathLike[str], info: VideoInfo, cap: int, skip: str, least: int
) -> Samples | None:
    """Frames from a cheap decode that skips frames (`-skip_frame nokey`: keyframes only;
    `noref`: no non-reference frames, about half the decoding work), at most `cap` of them,
    evenly picked; None when it yields fewer than `least`."""
    total = 0
    stride = 1  # keep every stride-th frame, so memory stays bounded however many there are
    args = ("-skip_frame", skip)
    out_args = ("-fps_mode", "passthrough")
    # the decoder passes on only every step-th of the frames it decodes (about 2×cap reach
    # us when none is skipped): piping frames only to drop them here costs about as much
    # as decoding the ones that are skipped. Too few left: None, and the full decode runs
    step = max(1, max(info.frames, 1) // (2 * cap)) if skip == "noref" else 1
    with (
        tempfile.TemporaryDirectory(prefix="blanklogo-times-") as tmp,
        FrameReader(
            path,
            input_args=args,
            output_args=out_args,
            video_filter=",".join(filter(None, (_every(step), _timed(Path(tmp) / "t")))) or None,
        ) as reader,
    ):
        fmt = reader.format
        # frames are read straight into a free slot (thinning out frees slots, moves nothing);
        # the frames passed over never reach this process
        store = np.empty((2 * cap + _CHECK_EVERY, fmt.frame_bytes), dtype=np.uint8)
        free = list(range(store.shape[0] - 1, -1, -1))
        kept: list[int] = []  # slots of the kept frames, in order
        while True:
            if total % stride == 0:
                slot = free.pop()
                if not reader.read_frame(store[slot]):
                    break
                kept.append(slot)
            elif not reader.skip_frame():
                break
            total += 1
            if total % _CHECK_EVERY == 0 and len(kept) >= 2 * cap:
                free += kept[1::2]
                kept, stride = kept[::2], stride * 2
        try:
            reader.proc.wait(timeout=30)  # the times are written as the decoder ends
        except subprocess.TimeoutExpired:
            pass  # none then: the even guess below
        times = _times(Path(tmp) / "t")
    if len(kept) < least:
        return None
    pick = np.linspace(0, len(kept) - 1, min(cap, len(kept))).round().astype(int)
    frames = store[[kept[i] for i in pick]]
    if len(times) == total and info.fps > 0:
        # each frame's own time: the frames decoded lie unevenly (a reference frame is
        # followed by the others that rest on it), up to 6 frames from an even guess
        indices = np.round((times[pick * stride] - times[0]) * info.fps).astype(int)
    else:
        # decoded frame number i of `total` sits at about i/total of the way through
        indices = (pick * stride * max(info.frames, 1) / max(total, 1)).astype(int)
    return Samples(frames=frames, indices=indices, fmt=fmt)


def pick_by_pictures(pictures: Sequence[tuple[bool, str]], frames: int, cap: int) -> np.ndarray:
    """The frame numbers `sample_frames` samples from a clip of `frames` frames whose kinds
    (keyframe, picture type), in order, are `pictures`: what the skipping decodes above
    would give, worked out from a full decode's pictures instead of decoded again (without
    them, or with fewer than MIN_KEYFRAMES of those: every step-th frame, as a full decode)."""
    if len(pictures) == frames:
        keys = [i for i, (key, _kind) in enumerate(pictures) if key]
        refs = _reference_frames([kind for _key, kind in pictures])
        for pool, step in ((keys, 1), (refs, max(1, frames // (2 * cap)))):
            passed = pool[::step]
            kept = [passed[i] for i in _thinned(len(passed), cap)]
            if len(kept) >= MIN_KEYFRAMES:
                pick = np.linspace(0, len(kept) - 1, min(cap, len(kept))).round().astype(int)
                return np.asarray(kept, int)[pick]
    return np.arange(0, frames, _decoded_step(frames, cap))


def _reference_frames(kinds: Sequence[str]) -> list[int]:
    """The frames `-skip_frame noref` decodes, told by picture type: all but B-frames, and
    of each run of B-frames the one the others rest on (x264's B-pyramid: the middle one of
    three, the first of two). Exact on the clips this ffmpeg's x264 writes; an older x264
    rests a pair on its second (cockatoo.mp4: one sample of 48 a frame earlier)."""
    refs: list[int] = []
    run: list[int] = []
    for i, kind in enumerate([*kinds, ""]):
        if kind == "B":
            run.append(i)
            continue
        if len(run) >= 2:
            refs.append(run[(len(run) - 1) // 2])
        run = []
        if kind:
            refs.append(i)
    return refs


def _thinned(total: int, cap: int) -> list[int]:
    """Which of `total` frames passed on, one by one, `_strided_samples` keeps to the end:
    every stride-th, the stride doubling as 2×cap are kept (checked every _CHECK_EVERY)."""
    kept: list[int] = []
    stride = 1
    for i in range(total):
        if i % stride == 0:
            kept.append(i)
        if (i + 1) % _CHECK_EVERY == 0 and len(kept) >= 2 * cap:
            kept, stride = kept[::2], stride * 2
    return kept


def _decoded_step(frames: int, cap: int) -> int:
    """Every how many frames a full decode of `frames` keeps one, for at most `cap`."""
    return max(1, math.ceil(max(frames, 1) / cap))


def _decoded_samples(path: str | os.PathLike[str], info: VideoInfo, cap: int) -> Samples:
    """Evenly spaced frames from a full decode (select filter), at most `cap` of them."""
    step = _decoded_step(info.frames, cap)
    with FrameReader(
        path, video_filter=_every(step), output_args=("-fps_mode", "passthrough")
    ) as reader:
        fmt = reader.format
        kept = np.empty((2 * cap + _CHECK_EVERY, fmt.frame_bytes), dtype=np.uint8)
        n = 0
        complete = True
        while reader.read_frame(kept[n]):
            n += 1
            if n % _CHECK_EVERY == 0 and n >= cap * 2:
                complete = False  # the header under-reported the length; enough is enough
                break
        if complete:
            reader.finish()
    if n > cap:
        pick = np.linspace(0, n - 1, cap).round().astype(int)
        return Samples(frames=kept[pick], indices=pick * step, fmt=fmt)
    return Samples(frames=kept[:n].copy(), indices=np.arange(n) * step, fmt=fmt)


def _timed(log: Path) -> str | None:
    """The ffmpeg filters that write each frame's time to `log` (a metadata filter prints a
    frame's header only when it carries some: a key is added first); None where the path
    holds a character a filter string gives a meaning to."""
    if any(ch in str(log) for ch in ":,;'[]\\= "):
        return None
    return f"metadata=mode=add:key=blanklogo:value=1,metadata=mode=print:file={log}"


def _times(log: Path) -> np.ndarray:
    """The frame times (seconds) written by `_timed`, in order; empty when unreadable."""
    try:
        lines = log.read_text().splitlines()
    except OSError:
        return np.zeros(0)
    times = []
    for line in lines:
        if line.startswith("frame:"):
            _, _, value = line.partition("pts_time:")
            try:
                times.append(float(value.split()[0]))
            except (ValueError, IndexError):
                return np.zeros(0)
    return np.asarray(times, np.float64)


def _every(step: int) -> str | None:
    """The ffmpeg filter that passes on every step-th decoded frame (None: all of them)."""
    return f"select='not(mod(n\\,{step}))'" if step > 1 else None
