"""Small clips made by the tests themselves (no ../shared needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def make_clip(
    path: Path,
    *,
    seconds: float = 1.0,
    size: str = "160x120",
    fps: int = 10,
    audio: bool = True,
    source: str = "testsrc2",
    x264: tuple[str, ...] = ("-preset", "ultrafast"),
) -> Path:
    """Write a small H.264 MP4 (with an AAC tone when `audio`) and return its path."""
    cmd = [
        ffmpeg_exe(),
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"{source}=size={size}:rate={fps}",
    ]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050"]
    cmd += ["-t", str(seconds), "-c:v", "libx264", "-pix_fmt", "yuv420p", *x264]
    if audio:
        cmd += ["-c:a", "aac", "-shortest"]
    cmd.append(str(path))
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def count_frames(path: Path) -> int:
    """Decode the whole file and count its video frames."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    stats = [part for part in proc.stderr.replace("\r", "\n").splitlines() if "frame=" in part]
    return int(stats[-1].split("frame=")[1].split()[0]) if stats else 0


def make_m2ts(src: Path, path: Path) -> Path:
    """`src` remuxed as M2TS, as an AVCHD camcorder writes its .MTS files."""
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), "-c", "copy", "-f", "mpegts"]
    subprocess.run([*cmd, "-mpegts_m2ts_mode", "1", str(path)], check=True, capture_output=True)
    return path


def decoded(path: Path, pix_fmt: str = "yuv420p") -> bytes:
    """Every frame of `path` in one raw pixel format, straight from ffmpeg (no pipes of ours)."""
    cmd = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", pix_fmt]
    return subprocess.run([*cmd, "-"], capture_output=True, check=True).stdout


def decoded_luma(path: Path) -> np.ndarray:
    """Every frame's luma of `path`, (frames, height, width) float32, straight from ffmpeg."""
    from gpu.probe import probe_video

    info = probe_video(path)
    luma = np.frombuffer(decoded(path, "gray"), np.uint8)
    return luma.reshape(-1, info.height, info.width).astype(np.float32)
