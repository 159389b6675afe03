"""From sampled frames to the list of mattes to remove: detection (or the user's box) + matting."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import cv2
import numpy as np
import torch

from gpu.detect import (
    STILL_DAMPED,
    Detection,
    change_damping,
    detect_marks,
    faint_blend,
    gradient_magnitude,
    mark_mask_in_box,
    noise_map,
)
from gpu.matting import MatteEstimate, estimate_matte, luma_range, temporal_median
from gpu.probe import VideoInfo
from gpu.regions import Box
from gpu.removal import ALPHA_MAX, Matte
from gpu.sampling import Samples
from gpu.shape import (
    continued_scenery,
    dilate,
    frame_band,
    level_shift,
    mark_shape,
    median_planes,
)

log = logging.getLogger(__name__)

MARGIN = 8
#: a filled mark away from its place in at least PLATE_SAMPLES samples (one that jumps,
#: comes or goes), where the picture around it stands still (the median over its pixels of
#: their spread over the samples, each sample levelled by its median, at most PLATE_STILL
#: Y levels): its hole is filled from how the place looked while the mark was away.
#: Measured at the places of marks jumping over the engine_marks clips: 0.4-1.5 where the
#: picture stands still, 5.0-47 where it moves (leaves, the cockatoo, a panning synthetic)
PLATE_SAMPLES = 3
PLATE_STILL = 2.5
#: in a mark found opaque, pixels above this share of its opacity are filled as its core
OPAQUE_CORE = 0.75
#: a detected mark is reported as its α support grown by this much (pixels)
REPORT_MARGIN = 2
#: in a user's box, an opaque mark's support pixels with at least this α are filled
RIM_FILL = 0.5
#: an explicit box in which less than this share of pixels looks marked is filled whole
EXPLICIT_MIN_MARKED = 0.02
#: below this temporal confidence a mark is filled rather than inverted (box given, the
#: fill won over the inversion in 4 of the 5 cases between 0.3 and 0.5: person/mpl/1.0
#: 28.4 -> 29.7 dB, tree/white/0.5 16.5 -> 20.0, bottle/opencv/0.5 20.3 -> 21.0,
#: tree/mpl/1.0 17.3 -> 18.1; bottle/white/1.0 21.8 -> 21.1)
STILL_CONFIDENCE = 0.5
#: above this share of out-of-range inverted pixels the matte is not trusted
MAX_IMPLAUSIBLE = 0.02
#: above this ratio of the inverted pixels' change over time to that of the picture around
#: the mark, α is not trusted (the mark jumping between two corners of a box given as one:
#: 2.6, inverting 29.6 dB, filling 32.4; the other 24 box-given cases: 0.3-1.0)
MAX_CHANGE_GAIN = 1.5
#: nor when more than MAX_AMPLIFIED_SHARE of the inverted pixels would change AMPLIFIED_GAIN
#: times as much as the picture around them (α overestimated over patches of texture:
#: tree/mpl/0.3, box given, 17 % of them, inverting 15.7 dB, filling 16.9, the input 22.8;
#: the box-given cases whose background moves: at most 1 %)
AMPLIFIED_GAIN = 2.0
MAX_AMPLIFIED_SHARE = 0.1
#: level shift (Y + U + V) against the box's fill that marks a pixel of a still mark
STILL_SHIFT = 10.0
#: the band outside a user's box where scenery crossing its edge is looked for (pixels)
CROSS_NEAR, CROSS_FAR = 2, 6
#: a crossing part is dropped only when smaller than this share of the marked pixels
CROSS_MAX_SHARE = 0.25
CROSS_MIN_TOUCH = 3
#: how far (pixels) a crossing structure is followed into the box along itself: in a box
#: drawn loosely the fill carries scenery on from outside over its first pixels, so the
#: matte's α on it starts some way in (car/opencv/0.5, a box 12 px looser on each side: a
#: line's α 9 px in; followed 6 px, it was taken for the mark's: 30.09 dB in the mark's
#: box, 37.62 followed 12 px; every tight-box and `auto` case the same)
CROSS_BRIDGE = 12
#: α above which a detected mark's pixels are tested for crossing its box's edge
CROSS_ALPHA = 0.05
#: α groups closer than this (pixels) are one mark; groups under this share of the largest
#: group's α mass are left out of a detected mark
BODY_GAP, BODY_SHARE = 9, 0.1
#: a jumped mark's matte is moved to where its shape matches best within this many pixels
#: of the shift detection found (which is in steps of its working resolution's pixels), if
#: it matches this well
MOVE_SEARCH, MOVE_MATCH = 6, 0.5
#: a group of a still mark's pixels smaller than this is a speck of scenery
SPECK = 12
#: a mark found on a still background: a thin structure (at most LINE_WIDTH pixels wide on
#: average, LINE_LENGTH or more long) of its pixels farther than LINE_REACH from any that
#: damp the picture's noise is a scenery line, not a stroke of the blend. Measured, auto,
#: outside the box against the plain re-encode: person/opencv/0.8 -0.12 -> +0.01 dB (a
#: pillar's edge beside the logo), asl/white/0.8 -0.13 -> -0.07 (a window frame's edge
#: running down from its ring); every other case unchanged (the pieces of marks away from
#: damped pixels are at most 28 pixels long, or 5 wide)
LINE_REACH, LINE_LENGTH, LINE_WIDTH = 2, 40, 3
#: a mark found on a still background takes level-shifted pixels up to this far beyond the
#: sides of its box that its mask runs into (over at least OPEN_SIDE of the side's length)
FOUND_REACH, OPEN_SIDE = 8, 0.15
#: in a user's box, the places of a jumping mark found over time ranges at most this many
#: samples apart are taken for it; a mark found over part of the clip is taken for the
#: box's when its box covers at least PART_COVER of the user's (`_found_for_part_in`)
JUMP_GAP, PART_COVER = 2, 0.5


def expand_box(box: Box, margin: int, width: int, height: int) -> Box:
    """Grow a box by `margin`, clip it to the frame and align it to even pixels (4:2:0)."""
    x0 = max(0, box.x - margin) // 2 * 2
    y0 = max(0, box.y - margin) // 2 * 2
    x1 = min(width, box.x + box.w + margin)
    y1 = min(height, box.y + box.h + margin)
    x1 = min(width, x1 + (x1 - x0) % 2)
    y1 = min(height, y1 + (y1 - y0) % 2)
    return Box(x0, y0, x1 - x0, y1 - y0)


def plan_marks(
    samples: Samples,
    info: VideoInfo,
    *,
    explicit: Box | None = None,
    search: Box | None = None,
    device: Any = None,
) -> list[Matte]:
    """The mattes to remove: the user's box, or every mark detected (within `search` if given)."""
    fmt = samples.fmt
    ys, us, vs = samples.planes()
    fps = fmt.fps or info.fps or 1.0
    whole_box = False
    explicit_median = None
    for_part = [] if explicit is None else _found_for_part_in(ys, explicit)
    if explicit is not None and for_part:
        # the user's box holds a mark over part of the clip (one that jumps between places,
        # or comes or goes): each is removed over its own time range, as found
        log.info("the box %s holds a mark over part of the clip", explicit.as_list())
        detections, explicit = for_part, None
    elif explicit is not None:
        detections, whole_box, explicit_median = _user_box(ys, us, vs, explicit)
    else:
        detections = detect_marks(ys, search=search)
    made: dict[int, Matte] = {}  # by id(det), in the detections' order
    copies = _copies_by_home(detections, ys)
    for det in detections:
        crop = expand_box(det.box, MARGIN, fmt.width, fmt.height)
        sl = slice(det.first_sample, det.last_sample + 1)
        cy, cx = slice(crop.y, crop.y + crop.h), slice(crop.x, crop.x + crop.w)
        # the temporal median of the crop: the mark's shape, the scenery crossing its box
        # and the reference for continuing lines through its fill all read it
        median = (
            explicit_median
            if explicit_median is not None
            else _median_of(ys[sl], us[sl], vs[sl], crop)
        )
        median_box = crop
        support = np.zeros((crop.h, crop.w), dtype=bool)
        support[det.box.slices_in(crop)] = det.mask
        if explicit is None:
            support |= _found_support(det, crop, ys[sl], median)
        est = _estimate(
            (ys, us, vs),
            det,
            crop,
            copies.get(id(det), []),
            support,
            partial(
                estimate_matte,
                full_range=fmt.full_range,
                device=device,
                still_prior=explicit is not None,
            ),
        )
        method = "invert" if est.opacity <= ALPHA_MAX else "invert+inpaint"
        alpha_y, alpha_c = est.alpha_y, est.alpha_c
        if method == "invert+inpaint":
            # an opaque mark's core reads low where the fill mispredicts the picture (α is
            # underestimated, and inverting it amplifies noise): fill all of its core
            alpha_y = np.where(alpha_y > OPAQUE_CORE * est.opacity, 1.0, alpha_y).astype(np.float32)
            if explicit is not None:
                # in a user's box the support is the mark's shape with its rim: fill where
                # the matte sees the mark (the rim's α beside an opaque core inverts badly:
                # cockatoo/opencv/1.0, box given, 36.9 dB inverting the rim, 42.3 filling
                # it; PreparedMatte fills the rim's pixels next to the core anyway), not
                # the rim's pixels that it finds clear of it (cockatoo/opencv/1.0, box
                # given: 26.6 -> 27.8 dB; car/white/1.0 40.8 -> 40.6)
                seen = support & (alpha_y >= RIM_FILL)
                alpha_y = np.where(seen, 1.0, alpha_y).astype(np.float32)
            alpha_c = _mean_half(alpha_y)
        # α that runs on out of the box (or, found without the user, the frame) belongs to
        # scenery next to the mark, whose changes the fill predicted badly
        scenery = _crossing_scenery(
            alpha_y > CROSS_ALPHA,
            median,
            det.box,
            crop,
            frame=None if explicit is not None else (fmt.width, fmt.height),
            alpha=alpha_y,
        )
        cleaned = np.where(dilate(scenery, 1), 0.0, alpha_y)
        # and faint α apart from the mark's body (a cable crossing the box) is scenery
        cleaned = np.where(_main_body(cleaned), cleaned, 0.0).astype(np.float32)
        if explicit is None or not np.array_equal(cleaned, alpha_y):
            alpha_y, alpha_c = cleaned, _mean_half(cleaned)
        still = _not_invertible(est, ys[sl, cy, cx])
        if (
            explicit is None
            and still
            and _over_the_whole_clip(det, len(ys))
            and _touches_edge(det.box, fmt.width, fmt.height)
        ):
            # found without the user on a still background over the whole clip, and running
            # into the frame's edge: scenery cut by the frame (a picture frame's border, a
            # shadow) looks the same, and filling it would do more harm than leaving it; the
            # user can name the corner or the box. (A mark found over part of the clip has
            # shown itself coming and going: a jumping mark's place next to a road marking
            # the frame cuts, left alone, kept it up for half of the car clip's 8 s)
            log.info(
                "mark at %s touches the frame on a still background; left alone", det.box.as_list()
            )
            continue
        if not whole_box and still:
            # the background (nearly) never changes under the mark, so α cannot be measured
            # there, or the inversion would leave the range of real pictures (α or αW is
            # off): fill the mark's pixels (its structure and its level shift) instead.
            # A detected mark is filled too, whichever fingerprint found it: its shape
            # leaves out scenery that runs through or out of its box (gpu/shape.py)
            marked = support
            if explicit is None:
                # found on a still background: its pixels by the same level shift as in a
                # user's box, near what the detection found
                marked = _level_shifted(median, det, crop, support)
            marked &= ~_crossing_scenery(
                marked,
                median,
                det.box,
                crop,
                frame=None if explicit is not None else (fmt.width, fmt.height),
            )
            # and scenery joined to the mark (a picture frame's dark inside next to a logo)
            # that carries on the colours beside it; but, in a mark found without the user,
            # not what damps the picture's noise as a blend does (a ring of a logo whose
            # colour runs on from the scenery's beside it: asl/white/0.8 auto, 20.4 dB
            # inside with it taken for scenery, 24.3 without), and not specks of texture
            # beside it (person/mpl/1.0 auto: they stretched its box to 2.1× the mark's)
            scenery = continued_scenery(marked, median, across=explicit is not None)
            if explicit is None:
                marked = _found_still_mark(marked, scenery, ys[sl, cy, cx], fmt.full_range)
            else:
                marked &= ~scenery
            alpha_y = marked.astype(np.float32)
            alpha_c = _half(alpha_y)
            method = "inpaint"
        elif explicit is not None and whole_box:
            # the user says a mark is there but the clip shows no overlay: fill the whole box
            alpha_y = support.astype(np.float32)
            alpha_c = _half(alpha_y)
            method = "inpaint"
        a_y, a_u, a_v = est.a_y, est.a_u, est.a_v
        mark_box: Box | None = None
        if explicit is None:
            mark_box = _tight_box(alpha_y, crop, fmt.width, fmt.height, REPORT_MARGIN)
            # the box reported and worked on: the mark's α support with a margin
            tight = _tight_box(alpha_y, crop, fmt.width, fmt.height, MARGIN)
            if tight is not None and tight.area < crop.area:
                oy, ox = tight.y - crop.y, tight.x - crop.x
                luma = (slice(oy, oy + tight.h), slice(ox, ox + tight.w))
                chroma = (slice(oy // 2, (oy + tight.h) // 2), slice(ox // 2, (ox + tight.w) // 2))
                alpha_y, a_y = alpha_y[luma], a_y[luma]
                alpha_c, a_u, a_v = alpha_c[chroma], a_u[chroma], a_v[chroma]
                crop = tight
        start, end, unsure = _time_range(samples.indices, det.first_sample, det.last_sample)
        made[id(det)] = Matte(
            box=crop,
            alpha_y=alpha_y,
            a_y=np.where(alpha_y > 0, a_y, 0.0).astype(np.float32),
            alpha_c=alpha_c,
            a_u=np.where(alpha_c > 0, a_u, 0.0).astype(np.float32),
            a_v=np.where(alpha_c > 0, a_v, 0.0).astype(np.float32),
            opacity=est.opacity if method != "inpaint" else 1.0,
            start_frame=start,
            end_frame=end,
            unsure=unsure,
            start_s=start / fps,
            end_s=None if end is None else end / fps,
            method=method,
            mark_box=mark_box,
            reference=_reference(median, median_box, ys[sl], us[sl], vs[sl], crop)
            if bool((alpha_y > ALPHA_MAX).any())  # only a filled hole uses it
            else None,
        )
        log.info(
            "mark at %s opacity %.2f frames %s-%s (%s)",
            crop.as_list(),
            est.opacity,
            start,
            end,
            method,
        )
    return _with_plates(_one_per_place(_with_moved_mattes(detections, made, samples)), samples)


def _user_box(
    ys: np.ndarray, us: np.ndarray, vs: np.ndarray, box: Box
) -> tuple[list[Detection], bool, Any]:
    """The user's box as the one mark over the whole clip: ([its detection], whether it is
    filled whole for want of a mark's shape in it, the temporal median of its crop)."""
    height, width = ys.shape[1:]
    crop = expand_box(box, MARGIN, width, height)
    median = _median_of(ys, us, vs, crop)
    mask = _box_mask(median, box, crop)
    whole = bool(mask.mean() < EXPLICIT_MIN_MARKED)
    if whole:
        mask = np.ones((box.h, box.w), dtype=bool)
    det = Detection(box=box, mask=mask, first_sample=0, last_sample=len(ys) - 1, score=1.0)
    return [det], whole, median


def _found_for_part_in(ys: np.ndarray, box: Box) -> list[Detection]:
    """The marks found in sampled luma `ys` (mostly inside a user's `box`) when the box
    holds a mark over part of the clip only, each over its own time range; none when the
    box is to be removed as one mark over the whole clip."""
    found = [d for d in detect_marks(ys) if d.box.shared_area(box) > 0.5 * d.box.area]
    if not found or any(_over_the_whole_clip(d, len(ys)) for d in found):
        return []
    if _hand_over(found, len(ys)):
        return found  # a mark jumping between places in the box
    # a mark that comes or goes, found over most of the box; a find over part of the clip
    # that covers little of it may be something else, and the user's mark missed
    covered = np.zeros((box.h, box.w), bool)
    for d in found:
        part = d.box.moved(-box.x, -box.y).within(box.w, box.h)
        covered[part.y : part.y + part.h, part.x : part.x + part.w] = True
    return found if covered.mean() >= PART_COVER else []


def _over_the_whole_clip(det: Detection, samples: int) -> bool:
    """Whether a detection is seen in every one of the clip's `samples`."""
    return det.first_sample == 0 and det.last_sample == samples - 1


def _hand_over(detections: list[Detection], samples: int) -> bool:
    """Whether `detections` (two or more) see a mark over all the `samples` between them,
    one after another (at most JUMP_GAP samples apart): a mark jumping between places."""
    if len(detections) < 2:
        return False
    seen = -1
    for d in sorted(detections, key=lambda d: d.first_sample):
        if d.first_sample > seen + 1 + JUMP_GAP:
            return False
        seen = max(seen, d.last_sample)
    return seen >= samples - 1 - JUMP_GAP


def _with_plates(mattes: list[Matte], samples: Samples) -> list[Matte]:
    """The mattes, each filled one over a picture that stands still with its plate: how its
    box looked in the samples where no mark was there (see PLATE_SAMPLES)."""
    ys, us, vs = samples.planes()
    out = []
    for m in mattes:
        if not bool((m.alpha_y > ALPHA_MAX).any()):
            out.append(m)
            continue
        busy = np.zeros(len(samples.indices), bool)
        for k in mattes:
            if k.box.shared_area(m.box) > 0:
                busy |= _near(samples.indices, k)
        ring = m.alpha_y == 0
        if int((~busy).sum()) < PLATE_SAMPLES or not ring.any():
            out.append(m)
            continue
        spread = _spread(_crops(ys, us, vs, m.box)[0], ring)
        if spread <= PLATE_STILL:
            log.info(
                "mark at %s filled from the picture without it (%.1f)", m.box.as_list(), spread
            )
            m = replace(m, plate=_plate(ys, us, vs, m.box, ~busy))
        out.append(m)
    return out


def _spread(crops: np.ndarray, ring: np.ndarray) -> float:
    """How much the picture moves in luma `crops` (T, h, w) at the pixels of `ring`: the
    median of their spread over the samples, each sample levelled by its median (the light
    changes over the clip)."""
    around = crops[:, ring].astype(np.float32)
    around -= np.median(around, axis=1, keepdims=True)
    return float(np.median(around.std(0)))


def _near(indices: np.ndarray, m: Matte) -> np.ndarray:
    """Which samples (by their frame `indices`) lie in the matte's time range or around its
    coming and going (where its presence is judged frame by frame)."""
    inside = (indices >= m.start_frame) & (indices < _until(m))
    for lo, hi in m.unsure:
        inside |= (indices >= lo) & (indices < hi)
    return inside


def _plate(
    ys: np.ndarray, us: np.ndarray, vs: np.ndarray, box: Box, chosen: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The temporal median of an even-aligned box over the `chosen` samples, each plane at
    its own resolution."""
    y, u, v = (
        temporal_median(torch.from_numpy(c[chosen]).float()).numpy()
        for c in _crops(ys, us, vs, box)
    )
    return y, u, v


def _one_per_place(mattes: list[Matte]) -> list[Matte]:
    """The mattes, less any over the pixels of one kept before it (half of the smaller box)
    at overlapping times: removing one mark twice inverts its blend twice, which leaves
    the picture worse than the mark did."""
    kept: list[Matte] = []
    for m in mattes:
        twin = next(
            (
                k
                for k in kept
                if 2 * k.box.shared_area(m.box) > min(k.box.area, m.box.area)
                and m.start_frame < _until(k)
                and k.start_frame < _until(m)
            ),
            None,
        )
        if twin is None:
            kept.append(m)
        else:
            log.warning("a second matte over the mark at %s is dropped", twin.box.as_list())
    return kept


def _until(m: Matte) -> int:
    """The frame a matte's time range ends before (a bound past any clip when it runs on)."""
    return m.end_frame if m.end_frame is not None else 1 << 62


def _with_moved_mattes(
    detections: list[Detection], made: dict[int, Matte], samples: Samples
) -> list[Matte]:
    """The mattes made, in order. A mark that jumped is the same mark at its new place:
    each copy takes the matte of the place it jumped from, measured where the picture moved
    under it, rather than its own, measured where the picture may have stood still (a
    parked car under it)."""
    out = []
    for det in detections:
        if id(det) not in made:
            continue
        moved = _moved_matte(det, detections, made, samples) if "shift_x" in det.features else None
        out.append(made[id(det)] if moved is None else moved)
    return out


def _moved_matte(
    det: Detection, detections: list[Detection], made: dict[int, Matte], samples: Samples
) -> Matte | None:
    """The matte of the place the copy `det` jumped from, moved to where its shape matches
    best (within MOVE_SEARCH pixels of the detection's shift), over the copy's frames."""
    home_det = _home_of(det, [d for d in detections if id(d) in made])
    if home_det is None:
        return None
    home = made[id(home_det)]
    fmt = samples.fmt
    ys, us, vs = samples.planes()
    shift = _shift_from(ys, home_det, home.reported_box, det)
    if shift is None:
        return None
    dx, dy = shift
    box = home.box
    # the home matte at luma resolution, moved, in an even-aligned box that holds it
    up = [home.alpha_y, home.a_y, *(_double(c, (box.h, box.w)) for c in (home.a_u, home.a_v))]
    moved_box = box.moved(dx, dy)
    inside = moved_box.within(fmt.width, fmt.height)
    new = expand_box(inside, 0, fmt.width, fmt.height)
    if new.w < 4 or new.h < 4 or new.w % 2 or new.h % 2:
        return None
    planes = []
    for plane in up:
        canvas = np.zeros((new.h, new.w), np.float32)
        canvas[inside.slices_in(new)] = plane[inside.slices_in(moved_box)]
        planes.append(canvas)
    alpha_y, a_y, a_u, a_v = planes
    alpha_c = _mean_half(alpha_y)
    sl = slice(det.first_sample, det.last_sample + 1)
    mark = home.mark_box
    log.info("mark moved by %d,%d to %s: its matte from %s", dx, dy, new.as_list(), box.as_list())
    copy = made[id(det)]
    return replace(
        home,
        box=new,
        alpha_y=alpha_y,
        a_y=a_y,
        alpha_c=alpha_c,
        a_u=np.where(alpha_c > 0, _mean_half(a_u), 0.0).astype(np.float32),
        a_v=np.where(alpha_c > 0, _mean_half(a_v), 0.0).astype(np.float32),
        start_frame=copy.start_frame,
        end_frame=copy.end_frame,
        unsure=copy.unsure,
        start_s=copy.start_s,
        end_s=copy.end_s,
        mark_box=None if mark is None else mark.moved(dx, dy).within(fmt.width, fmt.height),
        reference=None
        if home.reference is None
        else _median_of(ys[sl], us[sl], vs[sl], new).numpy(),
    )


def _estimate(
    planes: tuple[np.ndarray, np.ndarray, np.ndarray],
    det: Detection,
    crop: Box,
    copies: list[tuple[Detection, int, int]],
    support: np.ndarray,
    matte_of: Callable[..., MatteEstimate],
) -> MatteEstimate:
    """The matte of `det` over the pixels of `support` in `crop` (`matte_of` the Y, U, V
    crops and the support) from its own samples; for a mark that jumps, from those of its
    copies too, the crop moved with each (inside the frame) over the copy's samples: it is
    the same mark at each place, and the pictures under it there tell its α and αW apart
    better together than one place's few samples alone. (A shift by an odd number of
    pixels takes the copy's chroma half a pixel off.) Only where its own samples tell α
    apart (where its picture stands still it is filled, from how the place looked without
    it: car/jump 39.4 dB, 31.4 inverted with the matte of every place) and the copy's
    picture moves under it (one that stands still adds nothing but the fill's guess of
    it, the same in every sample: the benchmark's moving mark 42.8 -> 40.7 dB with it)."""
    ys, us, vs = planes
    height, width = ys.shape[1:]
    sl = slice(det.first_sample, det.last_sample + 1)
    own = _crops(ys[sl], us[sl], vs[sl], crop)
    est = matte_of(*own, support)
    ring = ~dilate(support, 2)
    stacks = [own]
    for copy, dx, dy in copies:
        at = crop.moved(dx, dy)
        if at.within(width, height) != at:
            continue
        seen = slice(copy.first_sample, copy.last_sample + 1)
        crops = _crops(ys[seen], us[seen], vs[seen], at)
        if _spread(crops[0], ring) > PLATE_STILL:
            stacks.append(crops)
    if len(stacks) > 1 and not _not_invertible(est, own[0]):
        joined = [np.concatenate(plane) for plane in zip(*stacks, strict=True)]
        est = matte_of(*joined, support)
    return est


def _copies_by_home(
    detections: list[Detection], ys: np.ndarray
) -> dict[int, list[tuple[Detection, int, int]]]:
    """For each place a jumping mark jumped from (by id), its copies at the other places
    and how far each moved from it."""
    out: dict[int, list[tuple[Detection, int, int]]] = {}
    for det in detections:
        home = _home_of(det, detections) if "shift_x" in det.features else None
        shift = None if home is None else _shift_from(ys, home, home.box, det)
        if home is not None and shift is not None:
            out.setdefault(id(home), []).append((det, *shift))
    return out


def _home_of(copy: Detection, detections: list[Detection]) -> Detection | None:
    """The place the copy `copy` of a jumping mark jumped from: of `detections` that are
    no copy, the one its detection's shift moves most onto it (None: none does)."""
    nominal = (int(copy.features["shift_x"]), int(copy.features["shift_y"]))
    home = max(
        (d for d in detections if "shift_x" not in d.features),
        key=lambda d: d.box.moved(*nominal).shared_area(copy.box),
        default=None,
    )
    if home is None or home.box.moved(*nominal).shared_area(copy.box) == 0:
        return None
    return home


def _shift_from(
    ys: np.ndarray, home: Detection, shape: Box, copy: Detection
) -> tuple[int, int] | None:
    """How far the mark moved from `home` to its `copy`: where the edges of `shape` (the
    mark's box at home) over home's samples match best those over the copy's, within
    MOVE_SEARCH pixels of the detection's shift (None: no match of MOVE_MATCH)."""
    height, width = ys.shape[1:]
    nominal = (int(copy.features["shift_x"]), int(copy.features["shift_y"]))
    own = _edges(ys[home.first_sample : home.last_sample + 1], shape)
    search = Box(
        shape.x + nominal[0] - MOVE_SEARCH,
        shape.y + nominal[1] - MOVE_SEARCH,
        shape.w + 2 * MOVE_SEARCH,
        shape.h + 2 * MOVE_SEARCH,
    ).within(width, height)
    if search.h < shape.h or search.w < shape.w:
        return None
    window = _edges(ys[copy.first_sample : copy.last_sample + 1], search)
    scores = cv2.matchTemplate(window, own, cv2.TM_CCOEFF_NORMED)
    _lo, best, _at, (bx, by) = cv2.minMaxLoc(scores)
    if best < MOVE_MATCH:
        return None
    return search.x + bx - shape.x, search.y + by - shape.y


def _edges(ys: np.ndarray, box: Box) -> np.ndarray:
    """|∇| of the temporal median of sampled luma `ys` (T, H, W) inside `box`, as over the
    whole frame (one pixel of context each side where the frame has it)."""
    h, w = ys.shape[1:]
    x0, y0 = max(0, box.x - 1), max(0, box.y - 1)
    x1, y1 = min(w, box.x + box.w + 1), min(h, box.y + box.h + 1)
    grad = gradient_magnitude(np.median(ys[:, y0:y1, x0:x1], axis=0))
    return grad[box.y - y0 : box.y - y0 + box.h, box.x - x0 : box.x - x0 + box.w]


def _double(chroma: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A 4:2:0 plane at luma resolution (each value over its 2×2 block)."""
    out = np.repeat(np.repeat(chroma, 2, axis=0), 2, axis=1)
    return np.pad(out, ((0, shape[0] - out.shape[0]), (0, shape[1] - out.shape[1])), mode="edge")


def _median_of(ys: np.ndarray, us: np.ndarray, vs: np.ndarray, box: Box) -> Any:
    """The temporal median of an even-aligned box of the samples, (3, h, w) at luma resolution."""
    return median_planes(_crops(ys, us, vs, box), (box.h, box.w))


def _crops(ys: np.ndarray, us: np.ndarray, vs: np.ndarray, box: Box) -> list[np.ndarray]:
    """The Y, U, V crops of an even-aligned box of the samples, each at its own resolution."""
    luma = (slice(box.y, box.y + box.h), slice(box.x, box.x + box.w))
    chroma = (slice(box.y // 2, (box.y + box.h) // 2), slice(box.x // 2, (box.x + box.w) // 2))
    return [ys[:, luma[0], luma[1]], us[:, chroma[0], chroma[1]], vs[:, chroma[0], chroma[1]]]


def _touches_edge(box: Box, width: int, height: int) -> bool:
    return box.x <= 0 or box.y <= 0 or box.x + box.w >= width or box.y + box.h >= height


def _reference(
    median: Any, median_box: Box, ys: np.ndarray, us: np.ndarray, vs: np.ndarray, crop: Box
) -> np.ndarray:
    """The line-fill reference for the final working box: the crop's median when the box
    was not tightened, else the median of the tightened box itself."""
    return (median if crop == median_box else _median_of(ys, us, vs, crop)).numpy()


def _found_support(det: Detection, crop: Box, ys: np.ndarray, median: Any) -> np.ndarray:
    """More of a detected mark's pixels in its `crop` than the detection's own mask: every
    part inside its final box (a detection joined from parts) and, for a faint mark, its
    level shift against the picture around it, as in a user's box (its edges and damping
    outline only part of it; cockatoo/opencv/0.3 auto: 27.1 -> 34.3 dB in its box)."""
    support = np.zeros((crop.h, crop.w), dtype=bool)
    support[det.box.slices_in(crop)] = mark_mask_in_box(ys, det.box)
    if faint_blend(det.features):
        support |= _shape_in(median, det.box, crop)
    return support


def _box_mask(median: Any, box: Box, crop: Box) -> np.ndarray:
    """The mark's pixels inside its box, (box.h, box.w): `_shape_in` cut to the box."""
    return _shape_in(median, box, crop)[box.slices_in(crop)]


def _shape_in(median: Any, box: Box, crop: Box) -> np.ndarray:
    """The mark's pixels inside `box`, as a mask of `crop` (the box grown by MARGIN, whose
    temporal median is `median`): their level shift against the picture around them
    (gpu.shape), with a one-pixel rim for the anti-aliased edge."""
    region = _within(box, crop, (crop.h, crop.w))
    return dilate(mark_shape(median, region), 1) & region


def _damped(ys: np.ndarray, marked: np.ndarray, full_range: bool) -> np.ndarray:
    """Pixels of sampled crops `ys` (T, h, w) whose sample-to-sample noise is damped against
    that of the pixels outside `marked`, as under a blend (gpu.detect's still fingerprint).
    Pixels clipped to white or black show no noise, and tell nothing of the picture's (a
    logo against a burnt-out sky: tree/opencv/0.8 auto, 42 % of the pixels around it; the
    mark's pixels were taken for scenery that does not damp the noise, and left, 19.1 dB)."""
    noise = noise_map(ys.astype(np.float32))
    black, white = luma_range(full_range)
    level = np.median(ys, axis=0)
    outside = ~dilate(marked, 2) & (level > black + 1) & (level < white - 1)
    if outside.sum() < 16:
        return np.zeros_like(marked)
    return noise < STILL_DAMPED * float(np.median(noise[outside]))


def _level_shifted(median: Any, det: Detection, crop: Box, support: np.ndarray) -> np.ndarray:
    """A detected mark's pixels in `crop` by their level shift (as in a user's box), near its
    `support`; and beyond the sides of its box that its mask runs into (up to FOUND_REACH
    pixels out), the level-shifted pixels joined to them: a rim cut off by the box's edge is
    left standing by the fill and its colour smeared into the hole. Measured, auto:
    asl/opencv/1.0's box takes the left of its ring (cover 0.96 -> 1.00); asl/opencv/0.3,
    outside the box -0.31 -> -0.01 dB against the plain re-encode (its box no longer takes
    17 px of scenery on its left); the other still finds within 0.1 dB."""
    marked = _shape_in(median, det.box, crop) & dilate(support, 3)
    near = _open_sides(det, crop, FOUND_REACH)
    if near != det.box:
        beyond = _shape_in(median, near, crop) & ~_within(det.box, crop, support.shape)
        _count, labels = cv2.connectedComponents((marked | beyond).astype(np.uint8), connectivity=8)
        marked |= beyond & np.isin(labels, np.unique(labels[marked]))
    return marked


def _open_sides(det: Detection, crop: Box, reach: int) -> Box:
    """The detection's box grown by `reach` (within `crop`) on each side its mask runs into."""
    m = det.mask
    grow = [reach if edge.mean() >= OPEN_SIDE else 0 for edge in (m[:, 0], m[0], m[:, -1], m[-1])]
    x0, y0 = max(crop.x, det.box.x - grow[0]), max(crop.y, det.box.y - grow[1])
    x1 = min(crop.x + crop.w, det.box.x + det.box.w + grow[2])
    y1 = min(crop.y + crop.h, det.box.y + det.box.h + grow[3])
    return Box(x0, y0, x1 - x0, y1 - y0)


def _found_still_mark(
    marked: np.ndarray, scenery: np.ndarray, ys: np.ndarray, full_range: bool
) -> np.ndarray:
    """The pixels of a mark found on a still background: `marked` less the `scenery` that
    does not damp the noise of sampled crops `ys` as a blend does, less scenery lines
    away from its damped pixels, and less specks."""
    damped = _damped(ys, marked, full_range)
    marked = marked & ~(scenery & ~damped)
    marked = marked & ~_scenery_lines(marked, damped)
    return marked & ~_specks(marked)


def _scenery_lines(marked: np.ndarray, damped: np.ndarray) -> np.ndarray:
    """The thin, long groups of `marked` pixels farther than LINE_REACH from its `damped`
    ones: an edge of the scene next to the mark (a pillar, a window frame), which passes
    the picture's noise unchanged where a blend's strokes damp it."""
    far = marked & ~dilate(marked & damped, LINE_REACH)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(far.astype(np.uint8), connectivity=8)
    length = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    line = (length >= LINE_LENGTH) & (stats[:, cv2.CC_STAT_AREA] <= LINE_WIDTH * length)
    line[0] = False
    return line[labels] & far


def _specks(marked: np.ndarray) -> np.ndarray:
    """Groups of marked pixels (parts closer than 2 pixels joined) of fewer than SPECK
    pixels: level shifts of the scenery's texture beside a mark, not its strokes."""
    count, labels = cv2.connectedComponents(dilate(marked, 1).astype(np.uint8), connectivity=8)
    sizes = np.bincount(labels[marked], minlength=count)
    small = sizes < SPECK
    small[0] = False
    return small[labels] & marked


def _not_invertible(est: MatteEstimate, ys: np.ndarray) -> bool:
    """Whether the matte cannot be trusted to invert the blend on sampled crops `ys`: the
    background (nearly) never changes under the mark; or inverted pixels would leave the
    range of real pictures; or they would change far more over time than the picture
    around the mark (α overestimated: inverting would stamp its negative over the
    picture)."""
    return (
        est.confidence < STILL_CONFIDENCE
        or _implausible_share(ys, est.alpha_y, est.a_y) > MAX_IMPLAUSIBLE
        or _amplified(_change_gains(ys, est.alpha_y))
    )


def _implausible_share(ys: np.ndarray, alpha: np.ndarray, a: np.ndarray) -> float:
    """Share of inverted sample pixels far outside 0..255: a sign that α or αW is wrong."""
    on = _inverted(alpha)
    if not on.any():
        return 0.0
    inverted = (ys[:, on].astype(np.float32) - a[on]) / (1.0 - alpha[on])
    return float(((inverted < -12) | (inverted > 267)).mean())


def _crossing_scenery(
    marked: np.ndarray,
    median: Any,
    box: Box,
    crop: Box,
    frame: tuple[int, int] | None = None,
    alpha: np.ndarray | None = None,
) -> np.ndarray:
    """Parts of `marked` that are scenery crossing the box's edge: the mark lies inside its
    box, so a structure that goes on outside it (a road line, a roof edge) is the scene's.
    Outside the box, structure is a level shift of the crop's temporal `median` (Y, U, V
    summed; chroma counts: a blue logo on grey asphalt has the asphalt's luma) against a
    smooth fill.
    With `frame` (width, height), a part cut by the frame's edge counts as crossing too
    (a detected mark sits inside the picture; scenery runs out of it). A part is dropped
    only when it is small beside the rest (the mark itself is kept even if something
    outside touches it).
    With the matte's `alpha`, a faint part (mean α under half the mark's) also counts as
    crossing when the structure reaches it along itself from outside: the matte gives a
    crossing road line weak α only some pixels inside the box."""
    h, w = marked.shape
    near = expand_box(box, CROSS_NEAR, crop.x + crop.w, crop.y + crop.h)
    far = expand_box(box, CROSS_FAR, crop.x + crop.w, crop.y + crop.h)
    band = _within(far, crop, (h, w)) & ~_within(near, crop, (h, w))
    outside = np.zeros((h, w), bool)
    structure = np.zeros((h, w), bool)
    if band.any():
        structure = level_shift(median, _within(far, crop, (h, w)), lines=False) > STILL_SHIFT
        outside = structure & band
    if frame is not None:
        outside |= frame_band((h, w), crop.x, crop.y, frame[1], frame[0], 1) & marked
    if not outside.any():
        return np.zeros((h, w), bool)
    count, labels = cv2.connectedComponents((marked | outside).astype(np.uint8), connectivity=8)
    drop = np.zeros((h, w), bool)
    total = int(marked.sum())
    # bridge the narrow gap between the box and the band along each structure's direction:
    # a part counts as crossing when the band's structure lies within reach of its edge pixels
    reach = dilate(outside, CROSS_NEAR + 1)
    along = outside
    faint = 0.0
    if alpha is not None:
        # follow the structure into the box over unmarked pixels (through marked ones it
        # would go on through the mark's own level shift)
        for _ in range(CROSS_BRIDGE):
            along = along | (dilate(along, 1) & structure & ~marked)
        along = dilate(along, 1)
        faint = 0.5 * float(alpha[marked].mean()) if marked.any() else 0.0
    for label in range(1, count):
        part = (labels == label) & marked
        size = int(part.sum())
        if size == 0 or size > CROSS_MAX_SHARE * total:
            continue
        if int((part & reach).sum()) >= CROSS_MIN_TOUCH or (
            alpha is not None
            and int((part & along).sum()) >= CROSS_MIN_TOUCH
            and float(alpha[part].mean()) < faint
        ):
            drop |= part
    return drop


def _within(box: Box, crop: Box, shape: tuple[int, ...]) -> np.ndarray:
    inside = np.zeros(shape[:2], bool)
    inside[box.slices_in(crop)] = True
    return inside


def _half(alpha: np.ndarray) -> np.ndarray:
    """α on the 4:2:0 chroma grid: the largest of each 2×2 block (a fill must cover it all)."""
    h, w = alpha.shape
    return alpha[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2).max(axis=(1, 3)).copy()


def _tight_box(alpha: np.ndarray, crop: Box, width: int, height: int, margin: int) -> Box | None:
    """The box of α's support (in frame pixels) grown by `margin`, within `crop`, even-aligned."""
    rows, cols = np.nonzero(alpha > 0)
    if rows.size == 0:
        return None
    inner = Box(
        crop.x + int(cols.min()),
        crop.y + int(rows.min()),
        int(cols.max() - cols.min()) + 1,
        int(rows.max() - rows.min()) + 1,
    )
    grown = expand_box(inner, margin, width, height)
    x0, y0 = max(grown.x, crop.x), max(grown.y, crop.y)
    x1 = min(grown.x + grown.w, crop.x + crop.w)
    y1 = min(grown.y + grown.h, crop.y + crop.h)
    if (x0 - crop.x) % 2 or (y0 - crop.y) % 2 or (x1 - x0) % 2 or (y1 - y0) % 2:
        return None
    return Box(x0, y0, x1 - x0, y1 - y0)


def _main_body(alpha: np.ndarray) -> np.ndarray:
    """Where the mark's body is: groups of α (parts closer than BODY_GAP joined) holding at
    least BODY_SHARE of the largest group's α mass; a mark's letters stay together, faint
    α far from them (scenery the fill mispredicted) is left out."""
    support = (alpha > CROSS_ALPHA).astype(np.uint8)
    if not support.any():
        return support.astype(bool)
    grown = cv2.dilate(support, np.ones((BODY_GAP, BODY_GAP), np.uint8))
    count, labels = cv2.connectedComponents(grown, connectivity=8)
    mass = np.bincount(labels.ravel(), weights=(alpha * support).ravel(), minlength=count)
    mass[0] = 0.0
    keep = mass >= BODY_SHARE * mass.max()
    keep[0] = False
    return keep[labels]


def _mean_half(alpha: np.ndarray) -> np.ndarray:
    """α on the 4:2:0 chroma grid: the mean of each 2×2 block (as the matting gives it)."""
    h, w = alpha.shape
    return alpha[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def _time_range(
    indices: np.ndarray, first: int, last: int
) -> tuple[int, int | None, tuple[tuple[int, int], ...]]:
    """The frames [start, end) of a mark seen from sample `first` to sample `last` (end None:
    to the end of the clip), and the frame ranges around its coming and going where each
    frame is judged on its own (the samples lie frames apart, and the one next to a change
    can be misread): from two samples before the first one seen to the sample after it,
    and from the sample before the last one seen to two samples after it."""
    n = len(indices)
    unsure = []
    start = 0
    if first > 0:
        start = int(indices[max(first - 2, 0)]) + 1
        unsure.append((start, int(indices[min(first + 1, n - 1)])))
    end = None
    if last < n - 1:
        end = int(indices[min(last + 2, n - 1)])
        unsure.append((int(indices[max(last - 1, 0)]) + 1, end))
    return start, end, tuple((lo, hi) for lo, hi in unsure if hi > lo)


def _change_gains(ys: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Per inverted pixel, how much more the inverted picture changes over time than the
    picture around the mark: about 1 where α is right; the inversion amplifies the changes
    by (1−α_true)/(1−α) where α is overestimated."""
    on = _inverted(alpha)
    if not on.any():
        return np.ones(0, np.float32)
    known = torch.from_numpy(~dilate(alpha > 0, 2)).float()[None, None]
    damping = change_damping(torch.from_numpy(ys.astype(np.float32)), known, floor=0.5).numpy()
    return damping[on] / np.maximum(1.0 - alpha[on], 1e-3)


def _amplified(gains: np.ndarray) -> bool:
    """Whether inverting would make the picture change far more than around the mark: over
    the inverted pixels as a whole (median), or over many of them."""
    if not gains.size:
        return False
    return bool(
        np.median(gains) > MAX_CHANGE_GAIN or (gains > AMPLIFIED_GAIN).mean() > MAX_AMPLIFIED_SHARE
    )


def _inverted(alpha: np.ndarray) -> np.ndarray:
    """The pixels a matte inverts (the others are left alone or filled)."""
    return (alpha > 0.05) & (alpha <= ALPHA_MAX)
