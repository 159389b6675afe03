"""Removing a mark from a batch of frames, given its matte (α and αW per pixel).

Where the mark is semi-transparent the blend `J = αW + (1−α)I` is inverted,
`I = (J − αW) / (1 − α)`, which recovers the real pixels; where it is (nearly) opaque
there is nothing left to recover and the hole is filled from its surroundings: the fill
starts from the very pixels around the hole, so it meets them without a seam. α and αW
are fixed over the clip, so the result is steady frame to frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gpu.fill import push_pull
from gpu.lines import plan_line_fill
from gpu.regions import Box

#: above this opacity inversion amplifies noise too much (×1/(1−α)); inpaint instead
ALPHA_MAX = 0.85
#: the pixels whose blend tells a frame with the mark from one without it
PRESENCE_ALPHA = 0.1


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
    #: frame ranges [lo, hi) around the mark's coming and going where each frame is
    #: judged on its own (PreparedMatte.present)
    unsure: tuple[tuple[int, int], ...] = ()
    start_s: float = 0.0
    end_s: float | None = None
    method: str = "invert"
    mark_box: Box | None = None  # the mark itself, when known tighter than the working box
    #: the temporal median of the box (Y, U, V at luma resolution, (3, h, w)): where the
    #: mark is filled, the scenery lines it shows are continued through the hole
    reference: np.ndarray | None = None
    #: how the box (Y, U, V, each at its own resolution) looked while the mark was away,
    #: where the picture stands still: its hole is filled from that, levelled to the
    #: pixels around it in each frame
    plate: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def reported_box(self) -> Box:
        """The box shown to users: the mark's own when known, else the working box."""
        return self.mark_box or self.box

    def active(self, first: int, count: int) -> tuple[int, int] | None:
        """The slice of a batch [first, first+count) where this mark is present, or None."""
        lo = max(first, self.start_frame)
        hi = first + count if self.end_frame is None else min(first + count, self.end_frame)
        return (lo - first, hi - first) if hi > lo else None

    def unsure_in(self, first: int, lo: int, hi: int) -> np.ndarray:
        """Which frames of a batch slice [lo, hi) (the batch starts at frame `first`) lie
        where the mark's presence is judged frame by frame."""
        frames = np.arange(first + lo, first + hi)
        out = np.zeros(hi - lo, bool)
        for a, b in self.unsure:
            out |= (frames >= a) & (frames < b)
        return out


class PreparedMatte:
    """A matte moved to the torch device once, with its fill masks."""

    def __init__(
        self, matte: Matte, device: torch.device, value_range: tuple[float, float]
    ) -> None:
        self.matte = matte
        self.device = device
        #: the first and the last frame this mark was removed from (None: none yet)
        self.cleaned: tuple[int, int] | None = None
        self.lo, self.hi = value_range
        # lines continue scenery in luma only: in the half-resolution chroma a line copies
        # the colour error of its two end pixels across the hole (measured: cockatoo/opencv/
        # 1.0 box 33.1 dB with chroma lines, 36.9 without), where push-pull averages it out
        plate = matte.plate or (None, None, None)
        self.planes = [
            self._plane(matte.alpha_y, matte.a_y, matte.reference, plate[0]),
            self._plane(matte.alpha_c, matte.a_u, None, plate[1]),
            self._plane(matte.alpha_c, matte.a_v, None, plate[2]),
        ]

    def _plane(
        self,
        alpha: np.ndarray,
        a: np.ndarray,
        reference: np.ndarray | None,
        plate: np.ndarray | None,
    ) -> dict[str, Any]:
        al = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32)).to(self.device)
        av = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(self.device)
        opaque = (al > ALPHA_MAX).float()[None, None]
        # grow the hole by one pixel over the mark's rim: anti-aliased rims next to opaque
        # cores invert badly (a mark filled whole has no rim left outside its hole)
        marked = al > 0.004
        hole = torch.maximum(
            opaque, (F.max_pool2d(opaque, 3, stride=1, padding=1) > 0).float() * marked
        )
        safe = torch.where(hole[0, 0] > 0, torch.zeros_like(al), al).clamp(0, ALPHA_MAX)
        # the fill only needs the hole and a margin of known pixels around it
        rows = torch.nonzero(hole[0, 0].any(dim=1)).flatten()
        cols = torch.nonzero(hole[0, 0].any(dim=0)).flatten()
        margin = 16
        if rows.numel():
            window = (
                slice(max(0, int(rows[0]) - margin), int(rows[-1]) + margin + 1),
                slice(max(0, int(cols[0]) - margin), int(cols[-1]) + margin + 1),
            )
        else:
            window = (slice(0, 0), slice(0, 0))
        lines = None
        if plate is not None:
            reference = None  # the plate shows the scenery's lines as they were
        if reference is not None and rows.numel():
            in_window = hole[0, 0][window].cpu().numpy() > 0
            plan = plan_line_fill(reference[:, window[0], window[1]], in_window)
            if plan.pixels.size:
                lines = [
                    torch.from_numpy(v).to(self.device)
                    for v in (plan.pixels, plan.a, plan.b, plan.share)
                ]
        return {
            "lines": lines,
            "plate": None
            if plate is None
            else torch.from_numpy(np.ascontiguousarray(plate[window], np.float32)).to(self.device),
            "inv_scale": (1.0 / (1.0 - safe))[None],
            "a": torch.where(hole[0, 0] > 0, torch.zeros_like(av), av)[None],
            "known": (1.0 - hole)[..., window[0], window[1]],
            "hole": hole[0][..., window[0], window[1]],
            "window": window,
            "any_hole": torch.tensor(bool(hole.any())),
        }

    def note_cleaned(self, first: int, last: int) -> None:
        """Count frames first..last as cleaned of this mark."""
        if self.cleaned is None:
            self.cleaned = (first, last)
        else:
            self.cleaned = (min(self.cleaned[0], first), max(self.cleaned[1], last))

    def present(self, ys: np.ndarray) -> np.ndarray:
        """Per (n, h, w) luma crop, whether the mark is in it: the picture under the mark is
        guessed from around it (a push-pull fill), and the blend of that guess with the
        mark explains the crop better than the guess alone."""
        m = self.matte
        alpha = torch.from_numpy(np.ascontiguousarray(m.alpha_y, dtype=np.float32))
        marked = alpha > PRESENCE_ALPHA
        if not bool(marked.any()):
            return np.ones(len(ys), bool)
        j = torch.from_numpy(np.ascontiguousarray(ys)).float()
        known = (alpha < 0.02).float()[None, None]
        under = _filled(j, known, m.plate[0] if m.plate is not None else None)
        a = torch.from_numpy(np.ascontiguousarray(m.a_y, dtype=np.float32))
        shown = a + (1 - alpha) * under
        if m.reference is not None:
            # where the mark is filled its αW says nothing (a still background gives none):
            # there it looks as it did in the samples that showed it
            seen = torch.from_numpy(np.ascontiguousarray(m.reference[0], dtype=np.float32))
            shown = torch.where(alpha > ALPHA_MAX, seen, shown)
        with_mark = (j - shown)[:, marked].pow(2).mean(1)
        without = (j - under)[:, marked].pow(2).mean(1)
        return (with_mark <= without).numpy()

    def apply(self, crops: list[np.ndarray]) -> None:
        """Remove the mark in place from (n, h, w) uint8 crops of Y, U, V.

        Where α = 0 and no fill reaches, a = 0 and the scale is 1, so those pixels come
        back exactly as they went in.
        """
        on_cpu = self.device.type == "cpu"
        for crop, plane in zip(crops, self.planes, strict=True):
            if crop.shape[0] == 0:
                continue
            j = torch.from_numpy(crop)
            out = (j if on_cpu else j.to(self.device, non_blocking=True)).float()
            out.sub_(plane["a"]).mul_(plane["inv_scale"])
            if bool(plane["any_hole"]):
                rows, cols = plane["window"]
                part = out[:, rows, cols]
                filled = _filled(part, plane["known"], plane["plate"])
                if plane["lines"] is not None:
                    pixels, start, end, share = plane["lines"]
                    flat = part.reshape(part.shape[0], -1)
                    filled.view(part.shape[0], -1)[:, pixels] = torch.lerp(
                        flat[:, start], flat[:, end], share
                    )
                part.add_((filled - part).mul_(plane["hole"]))
            out = out.clamp_(self.lo, self.hi).round_().to(torch.uint8)
            if on_cpu:
                j.copy_(out)
            else:
                crop[...] = out.cpu().numpy()


def _filled(frames: torch.Tensor, known: torch.Tensor, plate: Any) -> torch.Tensor:
    """(n, h, w) frames with their pixels outside `known` (1, 1, h, w) filled in from those
    inside it: a push-pull fill, or, with a `plate` (h, w) of the picture as it stands
    still there, the plate levelled to each frame (the fill of their difference)."""
    if plate is None:
        return push_pull(frames[:, None], known)[:, 0]
    base = torch.as_tensor(plate, dtype=frames.dtype, device=frames.device)
    return base + push_pull((frames - base)[:, None], known)[:, 0]
