"""Synthetic clips with a mark stamped in, where the truth (α, W, box) is known."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Stamp:
    alpha: np.ndarray  # (H, W) float32, the mark's α over the whole frame
    colour: float  # W in luma
    box: tuple[int, int, int, int]


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random picture (float32, about 40..210) larger than the frame, for panning."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (height + 200, width + 200)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 3) * 40 + cv2.GaussianBlur(noise, (0, 0), 12) * 120
    return np.clip(125 + smooth, 30, 215).astype(np.float32)


def panning_frames(count: int, height: int = 144, width: int = 256, seed: int = 0) -> np.ndarray:
    """`count` frames (T,H,W) float32 of a camera panning over a textured scene."""
    scene = texture(height, width, seed)
    return np.stack(
        [
            scene[2 * t % 150 : 2 * t % 150 + height, 3 * t % 190 : 3 * t % 190 + width]
            for t in range(count)
        ]
    )


def drifting_frames(count: int, height: int = 160, width: int = 200, seed: int = 0) -> np.ndarray:
    """`count` frames (T,H,W) float32 of a handheld camera drifting smoothly over a scene of
    broad shapes with some detail."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (height + 300, width + 300)).astype(np.float32)
    broad = cv2.GaussianBlur(noise, (0, 0), 12) * 150 + cv2.GaussianBlur(noise, (0, 0), 2) * 20
    scene = np.clip(125 + broad, 20, 230)
    frames = []
    for t in range(count):
        y, x = int(100 + 60 * np.sin(t / 6)), int(100 + 80 * np.cos(t / 7))
        frames.append(scene[y : y + height, x : x + width])
    return np.stack(frames)


def ring_mark(
    height: int, width: int, opacity: float, centre: tuple[int, int], radius: int, thickness: int
) -> Stamp:
    """A ring (the strokes of a large logo, with its open inside) of the given opacity."""
    canvas = np.zeros((height, width), np.uint8)
    cv2.circle(canvas, centre, radius, 255, thickness, cv2.LINE_AA)
    alpha = canvas.astype(np.float32) / 255.0 * opacity
    ys, xs = np.nonzero(alpha > 0.01)
    box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    return Stamp(alpha=alpha, colour=230.0, box=box)


def static_frames(count: int, height: int = 144, width: int = 256, seed: int = 1) -> np.ndarray:
    """A static camera: fixed scene (with crisp static objects near corners) and sensor noise."""
    rng = np.random.default_rng(seed)
    scene = texture(height, width, seed)[:height, :width].copy()
    cv2.rectangle(scene, (width - 60, height - 40), (width - 12, height - 12), 230.0, -1)
    sign = np.zeros((height, width), np.uint8)
    cv2.putText(sign, "EXIT", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 2, cv2.LINE_AA)
    scene = np.where(sign > 0, 20.0, scene).astype(np.float32)
    out = np.stack(
        [scene + rng.normal(0, 1.5, scene.shape).astype(np.float32) for _ in range(count)]
    )
    out[:, 50:90, 100:150] += np.linspace(-30, 30, count, dtype=np.float32)[
        :, None, None
    ]  # someone moves
    return out


def text_mark(
    height: int,
    width: int,
    opacity: float,
    corner: str = "bottom-right",
    text: str = "LOGO",
    colour: float = 235.0,
) -> Stamp:
    """An anti-aliased text mark of the given opacity placed near a corner."""
    canvas = np.zeros((height, width), np.uint8)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, 0.9, 2)
    x = 10 if "left" in corner else width - tw - 10
    y = th + 8 if corner.startswith("top") else height - base - 8
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_DUPLEX, 0.9, 255, 2, cv2.LINE_AA)
    alpha = canvas.astype(np.float32) / 255.0 * opacity
    ys, xs = np.nonzero(alpha > 0.01)
    box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    return Stamp(alpha=alpha, colour=colour, box=box)


def blend(frames: np.ndarray, stamp: Stamp) -> np.ndarray:
    """J = αW + (1−α)I, rounded to uint8 as a decoder would deliver it."""
    out = stamp.alpha * stamp.colour + (1 - stamp.alpha) * frames
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def coverage(box: tuple[int, int, int, int], alpha: np.ndarray) -> tuple[float, float]:
    """(share of the mark's pixels inside `box`, box area / the mark's bounding-box area)."""
    x, y, w, h = box
    marked = alpha > 0.01
    inside = marked[y : y + h, x : x + w].sum()
    ys, xs = np.nonzero(marked)
    true_area = (xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)
    return float(inside / marked.sum()), float(w * h / true_area)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)
