"""Sampled frames from across the whole clip, for detection and matting.

A bounded number of frames (evenly spaced), so memory does not grow with the clip.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from gpu.probe import VideoInfo
from gpu.video_io import FrameFormat, FrameReader

MAX_SAMPLES = 64
MAX_SAMPLE_BYTES = 256 * 1024 * 1024


@dataclass
class Samples:
    """Frames (T, frame_bytes) uint8 with the index of each in the full decode."""

    frames: np.ndarray
    indices: np.ndarray
    fmt: FrameFormat

    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.fmt.planes(self.frames)


def sample_frames(
    path: str | os.PathLike[str], info: VideoInfo, max_samples: int = MAX_SAMPLES
) -> Samples:
    """Decode about `max_samples` evenly spaced frames of the clip."""
    frame_bytes = info.width * info.height * 3 // 2
    cap = max(8, min(max_samples, MAX_SAMPLE_BYTES // max(frame_bytes, 1)))
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
