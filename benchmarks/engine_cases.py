"""Watermarked test cases for the engine benchmark: stamp a logo into a clean clip.

`J = α·W + (1−α)·I` with α = opacity × the logo's own alpha, in RGB, then encoded as an
upload would be (H.264 crf 18, audio kept). The truth (α, W, box) is kept for scoring.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gpu.probe import ffmpeg_exe, probe_video

POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "center-left")


@dataclass
class Mark:
    """A logo placed in the frame: α (h,w) in [0,1], colour W (h,w,3) RGB, top-left corner."""

    alpha: np.ndarray
    colour: np.ndarray
    x: int
    y: int
    start_frame: int = 0
    end_frame: int | None = None

    @property
    def box(self) -> tuple[int, int, int, int]:
        ys, xs = np.nonzero(self.alpha > 0.004)
        return (
            self.x + int(xs.min()),
            self.y + int(ys.min()),
            int(np.ptp(xs)) + 1,
            int(np.ptp(ys)) + 1,
        )

    def alpha_full(self, height: int, width: int) -> np.ndarray:
        out = np.zeros((height, width), np.float32)
        h, w = self.alpha.shape
        out[self.y : self.y + h, self.x : self.x + w] = self.alpha
        return out


def load_logo(path: Path, width: int, opacity: float) -> tuple[np.ndarray, np.ndarray]:
    """(α, W) of an RGBA logo resized to `width` pixels wide."""
    rgba = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    h = max(2, int(round(rgba.shape[0] * width / rgba.shape[1])))
    rgba = cv2.resize(rgba, (width, h), interpolation=cv2.INTER_AREA)
    alpha = rgba[..., 3].astype(np.float32) / 255.0 * opacity
    colour = cv2.cvtColor(rgba[..., :3], cv2.COLOR_BGR2RGB).astype(np.float32)
    return alpha, colour


def place(
    alpha: np.ndarray, colour: np.ndarray, position: str, width: int, height: int, pad: int = 16
) -> Mark:
    h, w = alpha.shape
    x = pad if "left" in position else width - w - pad
    y = pad if position.startswith("top") else height - h - pad
    if position.startswith("center"):
        y = (height - h) // 2
    return Mark(alpha=alpha, colour=colour, x=x, y=y)


def stamp(frame: np.ndarray, marks: list[Mark], index: int) -> np.ndarray:
    """Blend the marks active at frame `index` into an RGB uint8 frame."""
    out = frame.astype(np.float32)
    for m in marks:
        if index < m.start_frame or (m.end_frame is not None and index >= m.end_frame):
            continue
        h, w = m.alpha.shape
        region = out[m.y : m.y + h, m.x : m.x + w]
        a = m.alpha[..., None]
        region[...] = a * m.colour + (1 - a) * region
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def read_rgb(path: Path, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """All frames of a clip as RGB uint8 (small clips only) and the frame rate."""
    info = probe_video(path)
    cmd = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0"]
    if max_frames:
        cmd += ["-frames:v", str(max_frames)]
    cmd += ["-vf", "crop=trunc(iw/2)*2:trunc(ih/2)*2", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    w, h = info.width // 2 * 2, info.height // 2 * 2
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3), info.fps


def write_clip(
    frames: np.ndarray,
    fps: float,
    path: Path,
    *,
    audio_from: Path | None = None,
    crf: int = 18,
    preset: str = "veryfast",
    lossless: bool = False,
) -> Path:
    """Encode RGB frames as an H.264 upload (crf 18, yuv420p), copying audio from `audio_from`."""
    n, h, w, _ = frames.shape
    cmd = [
        ffmpeg_exe(),
        "-v",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{w}x{h}",
        "-r",
        f"{fps:.6g}",
        "-i",
        "-",
    ]
    if audio_from is not None and probe_video(audio_from).has_audio:
        cmd += ["-i", str(audio_from), "-map", "0:v", "-map", "1:a:0", "-c:a", "copy", "-shortest"]
    if lossless:
        cmd += ["-c:v", "libx264rgb", "-qp", "0", "-preset", "ultrafast"]
    else:
        cmd += ["-c:v", "libx264", "-crf", str(crf), "-preset", preset, "-pix_fmt", "yuv420p"]
    cmd.append(str(path))
    subprocess.run(cmd, input=frames.tobytes(), check=True, capture_output=True)
    return path
