"""Sampled frames from across the whole clip, for detection and matting.

A bounded number of frames (evenly spaced), so memory does not grow with the clip.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from core.errors import NotAVideo
from gpu.probe import VideoInfo
from gpu.video_io import FrameFormat, FrameReader

MAX_SAMPLES = 48
MAX_SAMPLE_BYTES = 256 * 1024 * 1024


@dataclass
class Samples:
    """Frames (T, frame_bytes) uint8 with the index of each in the full decode."""

    frames: np.ndarray
    indices: np.ndarray
    fmt: FrameFormat

    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.fmt.planes(self.frames)


MIN_KEYFRAMES = 24


def sample_frames(
    path: str | os.PathLike[str], info: VideoInfo, max_samples: int = MAX_SAMPLES
) -> Samples:
    """About `max_samples` frames spread over the clip: its keyframes when it has enough of
    them (decoding only those is far cheaper), otherwise evenly spaced decoded frames."""
    frame_bytes = info.width * info.height * 3 // 2
    cap = max(8, min(max_samples, MAX_SAMPLE_BYTES // max(frame_bytes, 1)))
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
    kept: list[np.ndarray] = []
    total = 0
    stride = 1  # keep every stride-th frame, so memory stays bounded however many there are
    args = ("-skip_frame", skip)
    out_args = ("-fps_mode", "passthrough")
    with FrameReader(path, input_args=args, output_args=out_args) as reader:
        while True:
            batch = reader.read_batch(16)
            if batch.shape[0] == 0:
                break
            for frame in batch:
                if total % stride == 0:
                    kept.append(frame.copy())
                total += 1
            if len(kept) >= 2 * cap:
                kept = kept[::2]
                stride *= 2
        fmt = reader.format
    if len(kept) < MIN_KEYFRAMES:
        return None
    pick = np.linspace(0, len(kept) - 1, min(cap, len(kept))).round().astype(int)
    frames = np.stack([kept[i] for i in pick])
    # decoded frame number i of `total` sits at about i/total of the way through the clip
    indices = (pick * stride * max(info.frames, 1) / max(total, 1)).astype(int)
    return Samples(frames=frames, indices=indices, fmt=fmt)


def _decoded_samples(path: str | os.PathLike[str], info: VideoInfo, cap: int) -> Samples:
    """Evenly spaced frames from a full decode (select filter), at most `cap` of them."""
    expected = max(info.frames, 1)
    step = max(1, math.ceil(expected / cap))
    select = f"select='not(mod(n\\,{step}))'" if step > 1 else None
    kept: list[np.ndarray] = []
    complete = True
    with FrameReader(path, video_filter=select, output_args=("-fps_mode", "passthrough")) as reader:
        while True:
            batch = reader.read_batch(16)
            if batch.shape[0] == 0:
                break
            kept.append(batch.copy())
            if sum(b.shape[0] for b in kept) >= cap * 2:
                complete = False  # the header under-reported the length; enough is enough
                break
        if complete:
            reader.finish()
        fmt = reader.format
    frames = np.concatenate(kept) if kept else np.empty((0, fmt.frame_bytes), np.uint8)
    if frames.shape[0] > cap:
        pick = np.linspace(0, frames.shape[0] - 1, cap).round().astype(int)
        frames, indices = frames[pick], pick * step
    else:
        indices = np.arange(frames.shape[0]) * step
    return Samples(frames=frames, indices=indices, fmt=fmt)
