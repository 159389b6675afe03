"""Which pixels of a box belong to the mark: its level shift against the picture around it.

Over the sampled frames the temporal median keeps what stays put: the mark, drawn over
the median of a moving background (smooth) or over a still one. Filled in from around the
box, the picture under the mark is predicted; where the median departs from that fill
(in Y, U or V: a blue logo on grey asphalt shifts only the chroma) is the mark. The
hole then shrinks to the parts found so far, so each part's surroundings come from ever
closer to it and scenery between the parts stops looking shifted.

Scenery that runs through the box (a pole, a road line) is continued by straight-line
fills, so it is not taken for the mark. The price: a mark pixel that happens to equal its
surroundings along some line (a white half-opaque mark over a black pole comes out grey,
like the wall beside it) is taken for scenery; the one-pixel rim plan.py adds and the
part's other pixels usually cover it, a lone pixel stays.

Scenery that ends inside the box next to the mark (a picture frame's dark inside, a
bottle) joins the mark's part; on a still background plan.py drops the pixels of it that
carry on the colours beside them (`continued_scenery`).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from gpu.fill import push_pull
from gpu.lines import line_shift
from gpu.matting import temporal_median

#: level shift (Y + U + V levels) that seeds a part of the mark, and where a part may grow to
SHIFT_SEED, SHIFT_GROW = 12.0, 9.0
ROUNDS = 3
#: a step into a marked pixel continues the scenery when smaller than this share of the
#: pixel's level shift (plan.py drops such pixels from a still mark)
CONTINUE_SHARE = 0.35
#: a marked pixel that a straight line across the mark (from unmarked pixels on both
#: sides) predicts within this share of its level shift against the smooth fill is scenery
#: running through the mark (`continued_scenery` with `across`). Box given, dB in the box:
#: asl/opencv/1.0 23.97 / 24.17 / 24.20 at 0.1 / 0.15 / 0.2, asl/mpl/0.5 41.65 / 41.39 /
#: 41.11 (41.70 without), person/white/0.5 17.89 / 17.81 / 17.74 (16.63 without)
LINE_SHARE = 0.15


def median_planes(planes: list[np.ndarray], shape: tuple[int, int]) -> torch.Tensor:
    """The temporal median of sampled Y, U, V crops, all at luma resolution: (3, h, w)."""
    out = []
    for plane in planes:
        median = temporal_median(torch.from_numpy(np.ascontiguousarray(plane)).float())
        if tuple(median.shape) != shape:
            median = F.interpolate(
                median[None, None], size=shape, mode="bilinear", align_corners=False
            )[0, 0]
        out.append(median)
    return torch.stack(out)


def level_shift(median: torch.Tensor, hole: np.ndarray, *, lines: bool = True) -> np.ndarray:
    """Σ over Y, U, V of |median − the hole filled in from around it|, (h, w).

    With `lines`, each pixel takes the best of a smooth fill and of straight lines through
    the hole: scenery that runs through the box (a pole, a road line, floor boards) is
    continued by the line along it, while a mark, which ends inside the box, departs from
    every fill.
    """
    known = torch.from_numpy(~hole).float()[None, None]
    fill = push_pull(median[:, None], known)[:, 0]
    smooth = (median - fill).abs().sum(0).numpy()
    return np.minimum(smooth, line_shift(median.numpy(), hole)) if lines else smooth


def mark_shape(median: torch.Tensor, region: np.ndarray) -> np.ndarray:
    """The mark's pixels inside `region` (h, w) from the temporal median (3, h, w)."""
    hole = region.copy()
    shape = np.zeros_like(region)
    for _ in range(ROUNDS):
        shape = _hysteresis(level_shift(median, hole), SHIFT_SEED, SHIFT_GROW) & region
        hole = dilate(shape, 2) & region
    return shape


def continued_scenery(
    marked: np.ndarray, median: torch.Tensor, *, across: bool = False
) -> np.ndarray:
    """The pixels of `marked` (h, w) that carry on the scenery beside them rather than
    belong to a mark, from the temporal median (3, h, w).

    A still scene's object that runs into the mark (a picture frame's dark inside, a
    bottle) departs from the smooth fill as much as the mark does, and joins it in one
    part. What tells it apart is that it continues the colours of the unmarked pixels it
    touches: a marked pixel is scenery when it is reached from an unmarked one by steps
    each smaller than CONTINUE_SHARE of its own level shift against the smooth fill, and
    stays that close to the colour where the path left the unmarked pixels. A mark shifts
    its pixels away from what is beside it by about its whole level shift, so the walk
    stops at its edge; and the colour it left from keeps it from drifting into a mark's
    flat inside. (A walk is followed for at most h + w rounds of single steps.)

    With `across`, scenery the mark cuts off from the rest (a door's edge between a logo's
    rings, a pole through a ring's inside) is reached too: walks also start from the marked
    pixels a straight line across the mark continues (LINE_SHARE) and go on over those it
    continues nearly as well (CONTINUE_SHARE), not into a flat part of the mark beside
    them. plan.py asks for it in a user's box; for a still mark found without the user
    (whose pixels that damp the noise are kept anyway) it measured mixed: person/mpl/1.0
    29.75 -> 29.17 dB, asl/opencv/1.0 17.02 -> 17.28, the rest within 0.1.
    """
    med = median.numpy()
    smooth = level_shift(median, dilate(marked, 2), lines=False)
    limit = CONTINUE_SHARE * smooth
    reached = _walk(med, marked, ~marked, limit)
    if across:
        lines = line_shift(med, marked)
        seeds = marked & (lines < LINE_SHARE * smooth)
        reached |= _walk(med, marked & (lines < CONTINUE_SHARE * smooth), seeds, limit)
    return reached


def _walk(
    med: np.ndarray, walkable: np.ndarray, start: np.ndarray, limit: np.ndarray
) -> np.ndarray:
    """The pixels of `walkable` reached from `start` by `continued_scenery`'s steps."""
    reached = start.copy()
    origin = med.copy()  # the colour where each reached pixel's path left the start
    h, w = walkable.shape
    steps = (
        ((slice(0, h), slice(1, w)), (slice(0, h), slice(0, w - 1))),
        ((slice(0, h), slice(0, w - 1)), (slice(0, h), slice(1, w))),
        ((slice(1, h), slice(0, w)), (slice(0, h - 1), slice(0, w))),
        ((slice(0, h - 1), slice(0, w)), (slice(1, h), slice(0, w))),
    )
    for _ in range(h + w):
        grew = False
        for to, frm in steps:
            ok = walkable[to] & ~reached[to] & reached[frm]
            ok &= np.abs(med[:, to[0], to[1]] - med[:, frm[0], frm[1]]).sum(0) < limit[to]
            ok &= np.abs(med[:, to[0], to[1]] - origin[:, frm[0], frm[1]]).sum(0) < limit[to]
            if ok.any():
                grew = True
                reached[to] |= ok
                sub = origin[:, to[0], to[1]]
                sub[:, ok] = origin[:, frm[0], frm[1]][:, ok]
        if not grew:
            break
    return reached & walkable


def frame_band(shape: tuple[int, ...], x0: int, y0: int, h: int, w: int, margin: int) -> np.ndarray:
    """The pixels of a crop (top-left at x0, y0 in an h×w frame) within `margin` of the frame's edge."""
    band = np.zeros(shape, bool)
    band[: max(0, margin - y0)] = True
    band[:, : max(0, margin - x0)] = True
    band[max(0, h - margin - y0) :] = True
    band[:, max(0, w - margin - x0) :] = True
    return band


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """`mask` grown by `radius` pixels (a square)."""
    size = 2 * radius + 1
    return cv2.dilate(mask.astype(np.uint8), np.ones((size, size), np.uint8)).astype(bool)


def _hysteresis(value: np.ndarray, seed: float, grow: float) -> np.ndarray:
    """Connected areas above `grow` that reach above `seed` somewhere."""
    count, labels = cv2.connectedComponents((value > grow).astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[np.unique(labels[value > seed])] = True
    keep[0] = False
    return keep[labels]
