"""The mark's pixels inside a box: level shift against the picture around it (gpu.shape)."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from gpu.plan import _found_still_mark, _specks
from gpu.shape import continued_scenery, dilate, level_shift, mark_shape
from tests.engine.synth import blend, text_mark, texture


def _scene_with_scenery_through_the_box() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A still scene (noise only) with a dark pole and a light, tilted line running through
    the bottom-right box, and a semi-transparent text mark drawn over both. Returns the
    marked frames, the mark's visible pixels (where it moves the picture by > 6 levels)
    and the scenery's pixels."""
    h, w = 144, 256
    rng = np.random.default_rng(3)
    scene = texture(h, w, seed=3)[:h, :w]
    frames = scene + rng.normal(0, 1.5, (12, h, w)).astype(np.float32)
    pole = np.zeros((h, w), np.uint8)
    cv2.line(pole, (w - 70, 0), (w - 58, h - 1), 1, 6)  # slightly tilted, through the whole frame
    line = np.zeros((h, w), np.uint8)
    cv2.line(line, (w - 140, h - 1), (w - 1, h - 70), 1, 3)  # a road line at about 27°
    frames = np.where(pole[None] > 0, 70.0, frames)
    frames = np.where(line[None] > 0, 190.0, frames).astype(np.float32)
    stamp = text_mark(h, w, 0.5)
    visible = stamp.alpha * np.abs(stamp.colour - frames.mean(0)) > 6.0
    return blend(frames, stamp), visible, (pole | line).astype(bool)


def test_the_shape_holds_the_mark_and_not_the_scenery_that_runs_through_the_box() -> None:
    marked, mark, scenery = _scene_with_scenery_through_the_box()
    h, w = mark.shape
    region = np.zeros((h, w), bool)
    region[h - 50 : h - 2, w - 130 : w - 2] = True  # the user's box around the mark
    median = torch.from_numpy(np.median(marked, axis=0).astype(np.float32))[None].repeat(3, 1, 1)
    median[1:] = 128.0  # grey: the shift is all in luma
    shape = mark_shape(median, region)
    taken = dilate(shape, 1)  # with the rim, as plan.py takes it
    # a few mark pixels over the pole and the line are taken for scenery (gpu.shape says why)
    assert (taken & mark).sum() / mark.sum() > 0.95
    bare_scenery = (
        scenery & region & ~cv2.dilate(mark.astype(np.uint8), np.ones((5, 5))).astype(bool)
    )
    assert (shape & bare_scenery).sum() < 0.1 * bare_scenery.sum()


def test_a_smooth_fill_alone_takes_the_scenery_for_the_mark() -> None:
    """Why the lines are there: without them the pole and the road line look shifted."""
    marked, mark, scenery = _scene_with_scenery_through_the_box()
    h, w = mark.shape
    region = np.zeros((h, w), bool)
    region[h - 50 : h - 2, w - 130 : w - 2] = True
    median = torch.from_numpy(np.median(marked, axis=0).astype(np.float32))[None].repeat(3, 1, 1)
    median[1:] = 128.0
    bare = scenery & region & ~cv2.dilate(mark.astype(np.uint8), np.ones((9, 9))).astype(bool)
    smooth = level_shift(median, region, lines=False)
    with_lines = level_shift(median, region)
    assert np.median(smooth[bare]) > 12.0
    assert np.median(with_lines[bare]) < np.median(smooth[bare]) / 3


def _mark_joined_to_a_dark_object() -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """A still light wall with a dark object (a picture frame's inside) that comes into the
    box from its left and ends under a semi-transparent light text mark. Returns the
    median, the box, the mark's visible pixels and the object's pixels."""
    h, w = 144, 256
    wall = 200.0 + (texture(h, w, seed=5)[:h, :w] - 128.0) * 0.1
    dark = np.zeros((h, w), bool)
    dark[h - 44 : h - 12, : w - 90] = True  # comes in across the box's left edge only
    scene = np.where(dark, 60.0 + (wall - 200.0), wall).astype(np.float32)
    stamp = text_mark(h, w, 0.5)
    visible = stamp.alpha * np.abs(stamp.colour - scene) > 6.0
    marked = blend(scene[None], stamp)[0].astype(np.float32)
    median = torch.from_numpy(marked)[None].repeat(3, 1, 1)
    median[1:] = 128.0
    region = np.zeros((h, w), bool)
    region[h - 50 : h - 2, w - 130 : w - 2] = True
    return median, region, visible, dark


def test_scenery_joined_to_the_mark_is_told_apart_by_continuing_its_surroundings() -> None:
    median, region, mark, dark = _mark_joined_to_a_dark_object()
    taken = dilate(mark_shape(median, region), 1) & region
    bare = dark & region & ~dilate(mark, 2)
    # the dark object departs from the fill as much as the mark and is joined to it
    assert (taken & bare).sum() > 0.5 * bare.sum()
    scenery = continued_scenery(taken, median)
    kept = taken & ~scenery
    assert (kept & bare).sum() < 0.1 * bare.sum()
    assert (kept & mark).sum() / mark.sum() > 0.97


def test_a_mark_over_a_plain_wall_is_not_taken_for_scenery() -> None:
    median, region, mark, dark = _mark_joined_to_a_dark_object()
    median = median.clone()
    median[0][torch.from_numpy(dark)] += 140.0  # no dark object: the wall all round
    taken = dilate(mark_shape(median, region), 1) & region
    assert (continued_scenery(taken, median) & mark).sum() < 0.01 * mark.sum()


def test_specks_beside_a_still_mark_are_dropped_but_not_a_letters_dot() -> None:
    """Level shifts of the scenery's texture a few pixels from a mark found on a still
    background stretched the box reported around it; an i's dot, 2 pixels above its stem,
    is part of the mark."""
    marked = np.zeros((40, 80), bool)
    marked[10:30, 10:40] = True  # the mark's letters
    marked[12:28, 46:49] = True  # an i's stem ...
    marked[7:10, 46:49] = True  # ... and its dot, 2 pixels above it
    marked[36:38, 60:62] = True  # a speck of scenery
    marked[2:4, 2:4] = True  # another
    specks = _specks(marked)
    assert specks[36:38, 60:62].all() and specks[2:4, 2:4].all()
    assert not specks[:30, 8:50].any()


def test_a_found_marks_pixels_that_damp_the_noise_are_not_taken_for_scenery() -> None:
    """continued_scenery flags both parts below; only the one whose noise is damped against
    the picture around, as under a blend, is the mark's (a logo's ring whose colour runs on
    from the scenery beside it), and stays marked."""
    rng = np.random.default_rng(7)
    ys = (120 + rng.normal(0, 2.0, (24, 40, 80))).astype(np.float32)
    ring = np.zeros((40, 80), bool)
    cv2.circle(ring.view(np.uint8), (20, 20), 10, 1, 4)
    ys[:, ring] = 120 + rng.normal(0, 0.5, (24, int(ring.sum())))  # damped: α about 0.75
    scenery = np.zeros((40, 80), bool)
    scenery[12:28, 50:66] = True  # a patch of the picture, its noise untouched
    marked = ring | scenery
    kept = _found_still_mark(marked, marked.copy(), ys, full_range=False)
    assert kept[ring].mean() > 0.9
    assert not kept[scenery].any()


def test_a_scenery_line_beside_a_found_still_mark_is_dropped_but_not_its_strokes() -> None:
    """A pillar's edge beside a logo (or a window frame's running down from its ring) shifts
    levels like the mark but passes the picture's noise unchanged: the long thin group of
    such pixels away from the damped ones is scenery. The mark's thin strokes damp the
    noise and stay, and so does an undamped piece too short to be a line (a letter's
    rim)."""
    rng = np.random.default_rng(3)
    ys = (120 + rng.normal(0, 2.0, (24, 80, 100))).astype(np.float32)
    body = np.zeros((80, 100), bool)
    body[10:40, 30:60] = True  # the logo
    body[46:49, 30:90] = True  # a long thin stroke of it (a text's baseline)
    ys[:, body] = 120 + rng.normal(0, 0.5, (24, int(body.sum())))  # damped: α about 0.75
    line = np.zeros((80, 100), bool)
    line[5:75, 20:22] = True  # a scenery edge 8 px left of the logo, its noise untouched
    line[20:22, 22:30] = True  # ... touching the logo by a short arm
    rim = np.zeros((80, 100), bool)
    rim[12:30, 61:63] = True  # an undamped rim 18 px long, right beside the logo
    marked = body | line | rim
    kept = _found_still_mark(marked, np.zeros_like(marked), ys, full_range=False)
    assert kept[body].all()
    assert not kept[line & ~dilate(body, 3)].any()
    assert kept[rim].all()


def test_scenery_a_mark_cuts_off_is_reached_along_a_line_across_it() -> None:
    """A dark pole runs through a ring's open inside; its piece there went with the mark
    (shaded along its length, the fill's lines missed it by more than a mark's faintest
    shift). No walk from the picture around reaches it: the ring cuts it off, and the wall
    inside the ring is too far from its colour. A line along the pole, across the ring,
    continues it; in a user's box (`across`) it is scenery, and the ring stays the mark."""
    h, w = 96, 128
    rng = np.random.default_rng(2)
    scene = 200.0 + rng.normal(0, 1.0, (h, w))
    scene[:, 60:67] = 40.0 + np.linspace(-12, 12, h)[:, None]
    ring = np.zeros((h, w), np.uint8)
    cv2.circle(ring, (63, 48), 24, 1, 10)
    inside = np.zeros((h, w), np.uint8)
    cv2.circle(inside, (63, 48), 19, 1, -1)
    picture = np.where(ring > 0, 0.6 * 235 + 0.4 * scene, scene).astype(np.float32)
    piece = (inside > 0) & (ring == 0)
    piece[:, :60] = piece[:, 67:] = False
    marked = (ring > 0) | piece
    median = torch.from_numpy(picture)[None].repeat(3, 1, 1)
    median[1:] = 128.0
    assert not continued_scenery(marked, median)[piece].any()
    scenery = continued_scenery(marked, median, across=True)
    assert scenery[piece].all()
    assert scenery[ring > 0].mean() < 0.05  # measured: 0.03
