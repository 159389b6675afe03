"""Hostile media, made by the tests: broken, empty, enormous by declaration, endless."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

from tests.media import ffmpeg_exe, make_clip


def _y4m(path: Path, width: int, height: int, payload: int = 100_000) -> Path:
    """A raw YUV4MPEG2 file whose header declares `width`x`height` but holds a sliver of data."""
    header = f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode()
    path.write_bytes(header + os.urandom(payload))
    return path


def _encode(path: Path, source: str, seconds: float, *extra: str) -> Path:
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", source, "-t", str(seconds)]
        + ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *extra, str(path)],
        check=True,
        capture_output=True,
    )
    return path


def make_hostile(kind: str, folder: Path) -> Path:
    """Write the hostile file `kind` into `folder` and return its path."""
    path = folder / f"{kind}.mp4"
    if kind == "text":
        path.write_text("<html>this is a web page, not a video</html>\n" * 20)
    elif kind == "random_bytes":
        # seeded: about 1 in 100 draws of os.urandom probes as a video stream without a
        # picture size ("the file looks broken"), and the tests expect "not a video"
        path.write_bytes(random.Random(20261206).randbytes(64 * 1024))
    elif kind == "zero_bytes":
        path.write_bytes(b"")
    elif kind == "truncated":  # moov at the end, cut off: no index at all
        whole = make_clip(folder / "whole.mp4", audio=False).read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    elif kind == "truncated_faststart":  # index first, media data cut off
        whole = _encode(
            folder / "whole.mp4", "testsrc2=size=160x120:rate=10", 1, "-movflags", "+faststart"
        ).read_bytes()
        path.write_bytes(whole[:4000])
    elif kind == "very_long":  # two hours, in ~100 KB: 16x16 grey at 1 fps
        _encode(path, "color=c=gray:size=16x16:rate=1", 7200)
    elif kind == "extreme_tall":  # 2x8192 (libx264 needs even sizes)
        _encode(path, "testsrc2=size=2x8192:rate=5", 1)
    elif kind == "declared_16000_square":
        path = _y4m(folder / "huge.y4m", 16000, 16000)
    elif kind == "declared_20000_square":
        path = _y4m(folder / "huger.y4m", 20000, 20000)
    elif kind == "declared_frame_without_data":  # in limits, but a 24 MB frame of which 100 KB
        path = _y4m(folder / "partial.y4m", 4096, 4096)
    else:
        raise ValueError(kind)
    return path
