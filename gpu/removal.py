"""Removing a mark from a batch of frames, given its matte (α and αW per pixel).

Where the mark is semi-transparent the blend `J = αW + (1−α)I` is inverted,
`I = (J − αW) / (1 − α)`, which recovers the real pixels; where it is (nearly) opaque
there is nothing left to recover and the hole is filled from its surroundings, with a
feathered seam. α and αW are fixed over the clip, so the result is steady frame to frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gpu.fill import push_pull
from gpu.regions import Box

#: above this opacity inversion amplifies noise too much (×1/(1−α)); inpaint instead
ALPHA_MAX = 0.85


@dataclass
class Matte:
    """One mark: where it is, when, and its α / αW per pixel, for the Y plane and the 4:2:0 chroma."""

    box: Box  # even-aligned, in luma pixels
    alpha_y: np.ndarray  # (h, w) float32
    a_y: np.ndarray  # αW in luma, (h, w)
    alpha_c: np.ndarray  # (h/2, w/2)
    a_u: np.ndarray
    a_v: np.ndarray
    opacity: float
    start_frame: int = 0
    end_frame: int | None = None  # exclusive; None = to the end
    start_s: float = 0.0
    end_s: float | None = None
    method: str = "invert"

    def active(self, first: int, count: int) -> tuple[int, int] | None:
        """The slice of a batch [first, first+count) where this mark is present, or None."""
        lo = max(first, self.start_frame)
        hi = first + count if self.end_frame is None else min(first + count, self.end_frame)
        return (lo - first, hi - first) if hi > lo else None


class PreparedMatte:
    """A matte moved to the torch device once, with its fill masks and seam weights."""

    def __init__(
        self, matte: Matte, device: torch.device, value_range: tuple[float, float]
    ) -> None:
        self.matte = matte
        self.device = device
        self.lo, self.hi = value_range
        self.planes = [
            self._plane(matte.alpha_y, matte.a_y),
            self._plane(matte.alpha_c, matte.a_u),
            self._plane(matte.alpha_c, matte.a_v),
        ]

    def _plane(self, alpha: np.ndarray, a: np.ndarray) -> dict[str, torch.Tensor]:
        al = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32)).to(self.device)
        av = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self.device)
        opaque = (al > ALPHA_MAX).float()[None, None]
        # grow the hole by one pixel: anti-aliased rims next to opaque cores invert badly
        hole = (F.max_pool2d(opaque, 3, stride=1, padding=1) > 0).float()
        seam = F.avg_pool2d(F.pad(hole, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        seam = torch.maximum(seam, hole)
        safe = torch.where(hole[0, 0] > 0, torch.zeros_like(al), al).clamp(0, ALPHA_MAX)
        return {
            "inv_scale": (1.0 / (1.0 - safe))[None],
            "a": torch.where(hole[0, 0] > 0, torch.zeros_like(av), av)[None],
            "known": 1.0 - hole,
            "seam": seam[0],
            "any_hole": torch.tensor(bool(hole.any())),
            "touch": (al > 0.004)[None] | (seam[0] > 0),
        }

    def apply(self, crops: list[np.ndarray]) -> None:
        """Remove the mark in place from (n, h, w) uint8 crops of Y, U, V."""
        for crop, plane in zip(crops, self.planes, strict=True):
            if crop.shape[0] == 0:
                continue
            j = torch.from_numpy(crop).to(self.device, non_blocking=True).float()
            out = (j - plane["a"]) * plane["inv_scale"]
            if bool(plane["any_hole"]):
                filled = push_pull(out[:, None], plane["known"])[:, 0]
                out = out + (filled - out) * plane["seam"]
            out = torch.where(plane["touch"], out, j)
            out = out.clamp(self.lo, self.hi).round_().to(torch.uint8)
            crop[...] = out.cpu().numpy()
