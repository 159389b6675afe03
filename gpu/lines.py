"""Straight lines through a hole: for every pixel, the known pixels where the line through
it in a given direction enters and leaves the hole, and how far along it lies.

Scenery runs on through a box (a pole, a door frame, a road line, the edge of a screen),
and a smooth fill blurs it away. Along the right line the two ends agree and the linear
interpolation between them continues the structure. The spans depend only on the hole,
so a fill that uses them is a fixed linear map of each frame's known pixels: it changes
only as the picture around it changes (no flicker of its own), like push-pull.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

#: directions: dx per dy for lines mostly down the columns, and the same on the
#: transposed picture for lines mostly along the rows
SLOPES = (0.0, 0.125, -0.125, 0.25, -0.25, 0.5, -0.5, 1.0, -1.0)
#: the two ends of a line (levels, summed over the channels) that count as the same scenery
ENDS_AGREE = 24.0
#: and agree at most this share as well as the lines of the median direction do: a line
#: runs through the hole there. Where every direction agrees about as well (a wall's
#: texture) a line fill only streaks, and push-pull serves better (box given, against
#: every pixel whose ends agreed: tree/opencv/0.8 31.5 -> 33.5 dB, cockatoo/opencv/1.0
#: 24.7 -> 26.6, car/white/1.0 39.8 -> 40.8; asl/opencv/1.0, whose table edge the lines
#: continue, 21.86 -> 21.79)
LINE_CONTRAST = 0.2


@dataclass
class Spans:
    """Per pixel of an (h, w) picture, along one direction: flat indices of the known pixel
    before (`a`) and after (`b`) it on its line, its share of the way from a to b, and
    whether both exist."""

    a: np.ndarray
    b: np.ndarray
    share: np.ndarray
    bounded: np.ndarray

    def interpolate(self, values: np.ndarray) -> np.ndarray:
        """(c, h, w) values → (c, h, w) linear interpolation along the lines."""
        flat = values.reshape(values.shape[0], -1)
        start, end = flat[:, self.a], flat[:, self.b]
        return start + (end - start) * self.share

    def disagreement(self, values: np.ndarray) -> np.ndarray:
        """Σ over channels of |value at a − value at b|; inf where a line is unbounded."""
        flat = values.reshape(values.shape[0], -1)
        gap = np.abs(flat[:, self.a] - flat[:, self.b]).sum(0)
        return np.where(self.bounded, gap, np.inf)


def directions(known: np.ndarray) -> Iterator[Spans]:
    """The spans of every direction in SLOPES for a picture whose `known` pixels are set."""
    for slope in SLOPES:
        yield _spans(known, slope, transposed=False)
        if abs(slope) < 1.0:
            yield _spans(known, slope, transposed=True)


def _spans(known: np.ndarray, slope: float, *, transposed: bool) -> Spans:
    """Spans along x = x0 + slope·y (or, transposed, y = y0 + slope·x). The picture is
    sheared so that each line becomes a row of the sheared array."""
    h, w = known.shape
    flat_index = np.arange(h * w).reshape(h, w)
    if transposed:
        known, flat_index = known.T, flat_index.T
    rows_n, cols_n = known.shape
    offset = np.round(np.arange(rows_n) * slope).astype(int)
    offset -= offset.min()
    rows = np.arange(rows_n)[:, None]
    cols = np.arange(cols_n)[None, :] + offset[:, None]
    lines_n = cols_n + int(offset.max())
    sheared_known = np.zeros((lines_n, rows_n), bool)
    sheared_index = np.zeros((lines_n, rows_n), np.int64)
    sheared_known[cols, rows] = known
    sheared_index[cols, rows] = flat_index
    position = np.broadcast_to(np.arange(rows_n), (lines_n, rows_n))
    before = np.maximum.accumulate(np.where(sheared_known, position, -1), axis=1)
    after = np.minimum.accumulate(np.where(sheared_known, position, rows_n)[:, ::-1], axis=1)
    after = after[:, ::-1]
    bounded = (before >= 0) & (after < rows_n)
    lo, hi = before.clip(0, rows_n - 1), after.clip(0, rows_n - 1)
    line = np.arange(lines_n)[:, None]
    a, b = sheared_index[line, lo], sheared_index[line, hi]
    share = ((position - lo) / np.maximum(hi - lo, 1)).astype(np.float32)
    out = [arr[cols, rows] for arr in (a, b, share, bounded)]
    if transposed:
        out = [arr.T for arr in out]
    return Spans(*(np.ascontiguousarray(arr) for arr in out))


def line_shift(values: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """min over directions of Σ_c |values − the interpolation along the line| (inf where no
    line crosses the hole): near 0 where scenery runs straight through it."""
    best = np.full(hole.shape, np.inf, np.float32)
    for spans in directions(~hole):
        gap = np.abs(spans.interpolate(values) - values).sum(0)
        best = np.minimum(best, np.where(spans.bounded, gap, np.inf))
    return best


@dataclass
class LineFill:
    """Hole pixels filled along a line whose ends agree: flat indices of the pixels, of
    their two ends, and the share of the way along."""

    pixels: np.ndarray
    a: np.ndarray
    b: np.ndarray
    share: np.ndarray


def plan_line_fill(reference: np.ndarray, hole: np.ndarray) -> LineFill:
    """For each hole pixel, the line whose two ends agree best on the `reference` picture
    (c, h, w), averaged over a 5×5 neighbourhood so neighbours choose alike; pixels where
    no line's ends agree within ENDS_AGREE, or where the best line agrees hardly better
    than a typical direction (LINE_CONTRAST), are left out (a smooth fill serves them)."""
    best = np.full(hole.shape, np.inf, np.float32)
    chosen: list[np.ndarray] = [np.zeros(hole.shape, np.int64) for _ in range(2)]
    share = np.zeros(hole.shape, np.float32)
    every: list[np.ndarray] = []
    for spans in directions(~hole):
        gap = spans.disagreement(reference).astype(np.float32)
        finite = np.where(np.isfinite(gap), gap, 1e6).astype(np.float32)
        smooth = cv2.blur(finite, (5, 5))
        every.append(smooth)
        better = hole & spans.bounded & (smooth < best)
        best = np.where(better, smooth, best)
        chosen[0] = np.where(better, spans.a, chosen[0])
        chosen[1] = np.where(better, spans.b, chosen[1])
        share = np.where(better, spans.share, share)
    typical = np.median(np.stack(every), axis=0)
    use = hole & (best <= ENDS_AGREE) & (best <= LINE_CONTRAST * typical)
    pixels = np.flatnonzero(use)
    return LineFill(
        pixels=pixels,
        a=chosen[0].ravel()[pixels],
        b=chosen[1].ravel()[pixels],
        share=share.ravel()[pixels],
    )
