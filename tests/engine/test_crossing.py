"""Scenery crossing a box's edge (gpu.plan._crossing_scenery): a structure that goes on
outside the box is the scene's, not the mark's, even where the matte gives it α only a
few pixels inside the box."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from gpu.plan import _crossing_scenery
from gpu.regions import Box

CROP = Box(0, 0, 96, 72)
BOX = Box(12, 12, 72, 48)  # the user's box inside the crop


def _median(line_value: float) -> torch.Tensor:
    """Y, U, V medians: a flat picture, a logo block inside the box and a bright line that
    comes in through the box's left edge."""
    y = np.full((CROP.h, CROP.w), 100.0, np.float32)
    y[24:48, 40:76] = 200.0  # the logo
    cv2.line(y, (0, 20), (34, 36), line_value, 3)
    grey = np.full_like(y, 128.0)
    return torch.from_numpy(np.stack([y, grey, grey]))


def _matte(line_alpha: float, inside: int = 3) -> np.ndarray:
    """The logo at α 0.5; the line's pixels from `inside` px inside the box at `line_alpha`."""
    alpha = np.zeros((CROP.h, CROP.w), np.float32)
    alpha[24:48, 40:76] = 0.5
    line = np.zeros_like(alpha, dtype=np.uint8)
    cv2.line(line, (0, 20), (34, 36), 1, 3)
    line[:, : BOX.x + inside] = 0
    alpha[line > 0] = line_alpha
    return alpha


def test_a_faint_line_crossing_the_box_edge_is_scenery_even_where_its_alpha_starts_inside() -> None:
    alpha = _matte(0.1)
    marked = alpha > 0.05
    drop = _crossing_scenery(marked, _median(180.0), BOX, CROP, alpha=alpha)
    line = marked & (alpha < 0.3)
    assert drop[line].all()
    assert not drop[alpha == 0.5].any()
    # without the matte's α only the gap next to the box's edge is bridged: the line stays
    assert not _crossing_scenery(marked, _median(180.0), BOX, CROP).any()


def test_a_faint_line_whose_alpha_starts_well_inside_a_loose_box_is_scenery() -> None:
    """Drawn loosely, a box takes in scenery next to the mark: where the box's outer pixels
    carry the line on from outside, the fill continues it and it shows no level shift, so
    its α starts several pixels in (car/opencv/0.5, a box 12 px looser on each side: 9 px
    in; the line was taken for the mark's, and replaced by the picture around it, 37.65 ->
    30.09 dB in the mark's box)."""
    alpha = _matte(0.1, inside=9)
    marked = alpha > 0.05
    drop = _crossing_scenery(marked, _median(180.0), BOX, CROP, alpha=alpha)
    assert drop[marked & (alpha < 0.3)].all()
    assert not drop[alpha == 0.5].any()


def test_a_part_as_strong_as_the_mark_is_kept_though_structure_reaches_it() -> None:
    """A letter of the mark that outside structure reaches along itself (the O of a logo at
    its box's edge) carries the mark's α, so it stays."""
    alpha = _matte(0.5)
    marked = alpha > 0.05
    assert not _crossing_scenery(marked, _median(180.0), BOX, CROP, alpha=alpha).any()
