"""Finding watermarks from frames sampled across the whole clip.

A mark is an overlay fixed in the frame while the picture under it changes. Its
fingerprints, all measured over time rather than in one frame:

* persistence: its edges are in every sample, so the gradient of the temporal mean is as
  strong as the mean of the gradients (coherent), while moving content averages away;
* a blend: the picture's changes pass through the mark scaled by (1−α) — inside it the
  temporal variation follows the surroundings' (correlated) but smaller, and vanishes
  where it is opaque — while a static object of the scene either does not change at all
  or is occluded wholesale;
* placement: marks sit near edges and corners, are compact, and are meant to be seen: a
  blend-fingerprint candidate's persistent edges carry at least MIN_EDGE_SHARE of the frame.

Persistence alone never makes a detection, because a static camera's background is as
persistent as a mark: a candidate also needs the blend fingerprint against a background
that changes under it (or, for an opaque mark, around it, near the border), or, where the
background stands still, the still fingerprint (_still_marks): the picture's
sample-to-sample noise passes a blend scaled by (1−α) too, so inside a mark it is damped
against the ring around it, all over its shape, while the ring is not; the picture keeps
its detail under it; it is not clipped; it lies inside the frame near its border. Such
marks are flagged `still_mark` (plan.py removes them like a user's box). Marks that jump
between positions (Sora-style) are found per time segment and cut into per-position time
ranges; where the picture under one of the positions hardly changes, the mark's shape,
the same at every position, shows where it went (_moved_copies), and where the picture
stands still, so does its coming and going (_toggled_runs; where it stands still all
over, no time segment starts a track, and the pixels that switch at the same samples at
two places across the picture do: _toggle_seeds).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import cv2
import numpy as np
import torch

from gpu.fill import push_pull
from gpu.regions import Box
from gpu.shape import dilate, frame_band

log = logging.getLogger(__name__)

WORK_WIDTH = 480  # detection runs at about this width, boxes are refined at full size
SEGMENT_SAMPLES = 10  # samples per time segment when looking for moving marks
EDGE_THRESHOLD = 6.0  # gradient of the temporal mean (Y levels / px) that counts as an edge
COHERENCE = 0.6  # |∇ mean| / mean |∇| above which an edge is persistent
MOTION_STD = 2.0  # temporal std (Y levels) above which the picture "changes" at a pixel
MIN_CORR = 0.65  # changes inside must follow the surroundings' at least this well
SCALED_RATIO = 0.8  # changes inside scaled to at most this share of the fill's: a blend
MIN_MOVING_SHARE = 0.2  # share of the mark's pixels whose background must change
MAX_AREA_SHARE = 0.15  # a mark covers at most this share of the frame
BORDER_BAND = 0.3  # marks lie within this fraction of the frame from an edge
NCC_PRESENT = 0.5  # a sample shows a moving mark when its gradient matches the template this well
APPEARING_SHARE = 0.3  # a mark in one place for part of the clip shows in this share of it
RELAY_MATCH = 0.65  # a moving mark's shape matches its edges at another place this well
#: a mark that jumps over a still background: at its place the picture switches between two
#: levels (with the mark, without it) TOGGLE_SEPARATION times the spread of the steadier
#: one apart (at least TOGGLE_STEADY Y levels), each level held by at least
#: TOGGLE_MIN_SHARE of the samples, and the change it makes there is undone at its other
#: place (the mean of the samples without it minus that of the samples with it) matching
#: at least TOGGLE_MATCH. Measured, marks jumping between two corners of the car clip's
#: asphalt: separation 20.6-52.0 (text, the OpenCV and matplotlib logos; the benchmark's
#: moving case 38.6), shares 0.46-0.52, match 0.97; scenery tracks on every benchmark
#: and engine_marks clip at most 7.6 (with a 0.35 share), matches at most 0.92
TOGGLE_SEPARATION = 12.0
TOGGLE_STEADY = 0.5
TOGGLE_MIN_SHARE = 0.2
TOGGLE_MATCH = 0.85
#: its shape: where the means of the samples with and without it differ by at least
#: TOGGLE_LEVEL (Y levels), one way at one place and the other way at the other
TOGGLE_LEVEL = 4.0
TOGGLE_SPECK = 12
#: over a still background with no track to start from, the most common patterns of
#: switching pixels (TOGGLE_PATTERNS) are tried as a mark's: its two places must lie
#: TOGGLE_FAR of the picture's width or height apart, at least TOGGLE_PIXELS of their
#: pixels (working resolution) switch at the pattern's samples at each, at the other place
#: at least TOGGLE_COPY_SHARE as many as at home, at home at least TOGGLE_OWN_SHARE of all
#: that switch there, and the undone change matches at least TOGGLE_SEED_MATCH. Measured,
#: "Sora" jumping between corners of the engine_marks clips: 0.82-0.86 apart, 160-249 and
#: 70-240 pixels (share 0.36-0.96), own share 1.00, match 0.77-0.93; the scenery's
#: patterns on every engine_marks clip, with and without marks: at most 14 pixels at the
#: other place (a signer's arm, 0.06 apart), 0 for all others; subtitles alternating
#: between the corners of a bar (a test's) 0.67 of what switches; matches up to 0.96, so
#: the match is only a floor
TOGGLE_PATTERNS = 6
TOGGLE_FAR = 0.25
TOGGLE_PIXELS = 36
TOGGLE_COPY_SHARE = 0.25
TOGGLE_OWN_SHARE = 0.9
TOGGLE_SEED_MATCH = 0.6
#: a mark that visits three places or more: each place's stays share at most this many
#: samples with another's
TOGGLE_ASIDE = 1
#: a jumping mark found by its tracks at places that span less than this share of the
#: samples is looked for by its coming and going too (a place where the picture stands
#: still gives no track: the car clip's middle right, where "Sora" visits three places)
TOGGLE_WHOLE = 0.95
#: a mark's persistent edge strength (summed over its pixels, working resolution) per pixel
#: of the frame: scenery too faint or too small to be a watermark anyone removes (a road
#: reflector, floor tile lines: 0.0035 on the full-length car and person clips; the faintest
#: mark found in the benchmark, car/white/0.3: 0.031)
MIN_EDGE_SHARE = 0.01
MIN_OFFSET = -0.25  # relative offset below which a damped candidate is darker scenery, not a blend
#: a faint mark over a picture that moves all over (a handheld camera): the picture's
#: changes under it are damped by 1−α, measured against the changes around each pixel
#: (the temporal std's own fill: the picture's fill over a wide box averages its changes
#: away, so every pixel inside looks livelier than that). A pixel is damped below
#: DAMPED_LEVEL of its surroundings; the candidate's tenth percentile is at most
#: FAINT_MAX_DAMPING, FAINT_MIN_DAMPED of its pixels are damped, its changes follow its
#: surroundings' (FAINT_MIN_CORR), the picture moves under FAINT_MIN_LOCAL of it, and its
#: persistent edges are strong (FAINT_MIN_EDGE_SHARE: scenery a moving camera passes over
#: leaves weak ones). Measured: a logo at 0.3 on the handheld cockatoo clip 0.69-0.74 /
#: 0.20-0.24 / 0.90-0.97 / 0.16-0.24; that clip's scenery (also mirrored, flipped,
#: reversed) with such changes and edges at best 0.80 / 0.10 over the whole clip; over
#: one time segment's samples one passed (0.69 / 0.20), a segment's find that made no track
DAMPED_LEVEL = 0.8
FAINT_MAX_DAMPING = 0.75
FAINT_MIN_DAMPED = 0.18
FAINT_MIN_CORR = 0.85
FAINT_MIN_EDGE_SHARE = 0.05
FAINT_MIN_LOCAL = 0.9
# still backgrounds: a blend damps the picture's sample-to-sample noise by (1−α)
STILL_EDGE = 3.0  # weaker persistent edges also outline candidates on a still background
STILL_RING = 12  # width (full-resolution pixels) of the ring whose noise is the reference
STILL_DAMPED = 0.75  # a pixel is damped when its noise is below this share of the ring's
STILL_MAX_RATIO = 0.72  # the candidate's median noise / the ring's median noise
STILL_MIN_CONTRAST = 0.4  # damped share inside minus damped share of the ring
STILL_PART_RATIO = 0.85  # a less damped part next to a mark found joins it
STILL_MIN_QUARTER = 0.3  # damped share in each quarter of the shape (damping all over it)
STILL_MAX_CLIPPED = 0.3  # share of pixels at the range limits (they carry no noise)
STILL_NOISE_FLOOR = 0.1  # the ring's noise (Y levels at working resolution) must be measurable
STILL_MAX_AREA = 0.05  # a mark on a still background covers at most this share of the frame
CORNER = 0.2  # a corner: within this share of the frame's width and height from two edges
#: damping (noise over that of a wide area around) below which edges are cut out of the
#: scenery: that of any blend, a strong one's (a line of scenery is damped a little) and an
#: opaque one's (a quiet wall next to it is damped a fair bit)
STILL_CUT_LEVELS = (STILL_DAMPED, 0.4, 0.15)
STILL_CUT_AREA = 0.004  # a shape cut out of the scenery covers at least this share of the frame
STILL_CUT_TEXTURE = 2.5  # and its detail is at least this many times its ring's
STILL_MARGIN = 2  # a mark sits inside the picture: at least this far (working px) from its edge
#: a scene cut between two samples changes at least CUT_SHARE of the picture (a grid of
#: CUT_GRID points) by CUT_LEVELS, and CUT_CONTRAST times the share the clip's samples
#: usually change
CUT_GRID = (64, 36)  # points across, down
CUT_LEVELS = 12.0
CUT_SHARE = 0.6
CUT_CONTRAST = 4.0
#: a letterbox (pillarbox) bar: lines along a side where BAR_SHARE of the pixels are dark
#: (mean below BAR_LEVEL), static (temporal std below BAR_STD) and flat (within BAR_FLAT of
#: the line's median); a logo in the bar takes the rest
BAR_LEVEL = 40.0
BAR_STD = 1.5
BAR_FLAT = 4.0
BAR_SHARE = 0.5
#: a mark on a bar: pixels BAR_MARK_LEVEL off the bar's level in BAR_MARK_SHARE of the
#: samples, at least BAR_MIN_PIXELS of them, on a bar at least BAR_MIN_DEPTH lines deep
BAR_MARK_LEVEL = 12.0
BAR_MARK_SHARE = 0.9
BAR_MIN_PIXELS = 40
BAR_MIN_DEPTH = 12


@dataclass
class Detection:
    """A mark: its box (full-resolution pixels), its mask inside the box, and its sample range."""

    box: Box
    mask: np.ndarray
    first_sample: int
    last_sample: int
    score: float
    features: dict[str, float] = field(default_factory=dict)


def gradient_magnitude(frames: np.ndarray) -> np.ndarray:
    """|∇Y| per frame (central differences), float32 (T,H,W) or (H,W)."""
    f = frames.astype(np.float32)
    gx = np.zeros_like(f)
    gy = np.zeros_like(f)
    # in place: the same values as the plain expression, without its temporaries
    np.subtract(f[..., :, 2:], f[..., :, :-2], out=gx[..., :, 1:-1])
    np.subtract(f[..., 2:, :], f[..., :-2, :], out=gy[..., 1:-1, :])
    gx *= 0.5
    gy *= 0.5
    gx *= gx
    gy *= gy
    gx += gy
    return np.sqrt(gx, out=gx)


def _downscale(ys: np.ndarray) -> tuple[np.ndarray, int]:
    t, h, w = ys.shape
    factor = max(1, math.ceil(w / WORK_WIDTH))
    if factor == 1:
        return ys.astype(np.float32), 1
    hs, ws = h // factor, w // factor
    out = np.empty((t, hs, ws), np.float32)
    for i in range(t):
        out[i] = cv2.resize(
            ys[i, : hs * factor, : ws * factor], (ws, hs), interpolation=cv2.INTER_AREA
        )
    return out, factor


def detect_marks(ys: np.ndarray, search: Box | None = None) -> list[Detection]:
    """Every mark found in sampled luma frames (T,H,W) uint8, optionally only inside `search`.

    With `search` (the user named a corner) the strongest persistent overlay there is taken
    even without the blend fingerprint: the user has told us a mark is there.
    """
    t, h, w = ys.shape
    if t < 3:
        return []
    small, factor = _downscale(ys)
    grads = gradient_magnitude(small)
    every = [
        d
        for d in _candidates(small, grads, (0, t), search, factor, ys, keep_all=True)
        if not _bright_scenery_at_the_edge(d)
    ]
    found = [d for d in every if d.score >= 1.0]
    if search is not None and not found and every:
        found = [max(every, key=lambda d: d.features.get("strength", 0.0))]
    gap = max(4, int(0.04 * min(h, w)))  # parts of one logo lie closer than this (pixels)
    found = _grow(found, [d for d in every if d.score < 1.0], gap=gap)
    for still in _still_marks(small, grads, factor, ys, search, gap=gap):
        home = next((d for d in found if _overlap(still.box, d.box) > 0.3), None)
        if home is None:
            found.append(still)
        else:
            # the damped parts a changing background did not show; and where the background
            # turns out still under it, the damping has confirmed the mark
            _merge(home, still)
            home.features["still_mark"] = 1.0
            home.features["damping"] = still.features["damping"]
    for drawn in _bar_marks(small, factor, ys, search, gap):
        if not any(_overlap(drawn.box, d.box) > 0.3 for d in found):
            found.append(drawn)
    segments = _segments(t)
    if len(segments) > 1:
        tracks = _segment_tracks(small, grads, ys, segments, search, factor, found, gap)
        found.extend(_moving_marks(tracks, small, grads, ys, segments, factor, found, gap))
    return found


def _bright_scenery_at_the_edge(d: Detection) -> bool:
    """Whether a find over the whole clip is scenery cut by the frame: it touches the
    frame's edge and the picture does not move under it on its own, so its changes are
    the whole picture's (the light changing), shrunk where the scenery is bright by the
    picture's range as a light mark's are by its blend (a road marking at the edge of the
    car clip: changes scaled to 0.72, offset 0.47, found and inverted, 14.9 dB there). A
    mark that jumps is judged by its hand-over instead."""
    f = d.features
    return d.score >= 1.0 and f["border"] <= 0.0 and f["local"] < MIN_MOVING_SHARE


def _segment_tracks(
    small: np.ndarray,
    grads: np.ndarray,
    full: np.ndarray,
    segments: list[tuple[int, int]],
    search: Box | None,
    factor: int,
    found: list[Detection],
    gap: int,
) -> list[Detection]:
    """Marks found in time segments away from the `found` ones, joined into tracks; a
    segment's candidate on a found mark that is part of it grows it (a part that shows
    only while the picture moves under it, its background standing still otherwise)."""
    tracks: list[Detection] = []
    for lo, hi in segments:
        for det in _candidates(
            small[lo:hi], grads[lo:hi], (lo, hi), search, factor, full[lo:hi], near=found
        ):
            home = next((d for d in found if _overlap(det.box, d.box) > 0.3), None)
            if home is None:
                # a faint blend needs the whole clip's samples to be told from scenery: a
                # segment's few may pass one (once, on the cockatoo clip), so it starts no
                # track
                if det.score >= 1.0 and not faint_blend(det.features):
                    _add_to_tracks(tracks, det)
            elif (
                det.score < 1.0
                and _could_be_part(det)
                and _joined_area(home, det) <= 2 * home.box.area
            ):
                _merge(home, det)
    return _join_parts(tracks, gap)


def _moving_marks(
    tracks: list[Detection],
    small: np.ndarray,
    grads: np.ndarray,
    full: np.ndarray,
    segments: list[tuple[int, int]],
    factor: int,
    found: list[Detection],
    gap: int,
) -> list[Detection]:
    """The runs of the tracks that hand over to one another (a mark that jumps)."""
    t = small.shape[0]
    runs = [run for track in tracks for run in _split_by_presence(track, grads, factor)]
    relayed = _relay(runs, t)
    if relayed:
        return _grow_runs(relayed, small, grads, full, factor, gap)
    # a mark that jumps looks the same at each of its places: where the picture under one
    # of them hardly changed, its shape still shows where it went. Each track with the
    # copies of its shape must hand over on its own
    edges = [gradient_magnitude(small[lo:hi].mean(0)) for lo, hi in segments] if tracks else []
    for track in tracks:
        # the whole of the shape, so that its copies are whole where part of them stood still
        _grow_runs([track], small, grads, full, factor, gap)
        family = [track]
        for det in _moved_copies(track, small, segments, edges, factor, full):
            if not any(_overlap(det.box, d.box) > 0.3 for d in found):
                _add_to_tracks(family, det)
        handed = (
            _relay([run for tr in family for run in _split_by_presence(tr, grads, factor)], t)
            if len(family) > 1
            else []
        )
        if not handed:
            # over a still background the edges of its copies may be too faint, and their
            # runs too blurred, to hand over: the mark's own coming and going may show it
            handed = _relay(_toggled_runs(track, small, factor, full), t)
        relayed += handed
    if _covered(relayed, t) < TOGGLE_WHOLE:
        # no track at all where the whole picture stands still, or none at a place where
        # it stands still while it moves at the others: the mark's coming and going is
        # the only sign of it there
        relayed += [
            run
            for run in _seeded_runs(small, factor, full, found)
            if not any(_overlap(run.box, other.box) > 0.3 for other in relayed)
        ]
    # no place hands over to another: a mark that stays in one place for part of the clip
    # (not across scene cuts, where each shot's scenery comes and goes with its shot)
    if not relayed and len(scenes(small)) < 3:
        relayed = _appearing(tracks, grads, factor)
    return _grow_runs(_distinct(relayed), small, grads, full, factor, gap)


def _seeded_runs(
    small: np.ndarray, factor: int, full: np.ndarray, found: list[Detection]
) -> list[Detection]:
    """The runs of a mark jumping over a still picture found from its coming and going
    alone (_toggle_seeds): two places that toggle with each other, or more that take turns
    (_visits); none when no places found so hand over to each other (_relay)."""
    t = small.shape[0]
    seeds = [
        seed
        for seed in _toggle_seeds(small, factor)
        if not any(_overlap(seed.home, d.box) > 0.3 for d in found)
    ]
    for seed in seeds:
        runs = _relay(
            _toggle_pair(seed.home, seed.with_mark, small, factor, full, 1.0, {}, seed), t
        )
        if runs:
            return runs
    return _relay(_visits(seeds, small, factor, full), t)


def _covered(runs: list[Detection], total: int) -> float:
    """The share of the `total` samples that some run spans."""
    return float((_spanned(runs, total) > 0).mean()) if total else 0.0


def _spanned(runs: list[Detection], total: int) -> np.ndarray:
    """How many of the `runs` span each of the `total` samples."""
    counts = np.zeros(total, int)
    for run in runs:
        counts[run.first_sample : run.last_sample + 1] += 1
    return counts


def _distinct(runs: list[Detection]) -> list[Detection]:
    """The runs with those of one place at overlapping times joined: each track's family
    hands over between the same places, so two tracks of one jumping mark gave each of its
    runs twice (removed twice: the blend inverted twice, worse than the input)."""
    return _joined(runs, lambda a, b: _overlap(a, b) > 0.5)


def _joined(dets: list[Detection], alike: Callable[[Box, Box], bool]) -> list[Detection]:
    """`dets`, each merged into the first one kept before it whose box it is `alike` at
    overlapping times."""
    out: list[Detection] = []
    for det in dets:
        home = next(
            (
                d
                for d in out
                if alike(d.box, det.box)
                and det.first_sample <= d.last_sample
                and d.first_sample <= det.last_sample
            ),
            None,
        )
        if home is None:
            out.append(det)
        else:
            _merge(home, det)
    return out


def _grow_runs(
    runs: list[Detection],
    small: np.ndarray,
    grads: np.ndarray,
    full: np.ndarray,
    factor: int,
    gap: int,
) -> list[Detection]:
    """Each run of a moving mark with the parts of it next to it in its own samples (as
    _grow does for a mark over the whole clip), up to twice its box."""
    for run in runs:
        if run.features.get("toggled"):
            continue  # its shape is known: what changes as it comes and goes
        lo, hi = run.first_sample, run.last_sample + 1
        limit = 2 * run.box.area
        others = _candidates(
            small[lo:hi], grads[lo:hi], (lo, hi), None, factor, full[lo:hi], keep_all=True
        )
        for other in sorted(others, key=lambda d: d.box.area):
            if (
                other.score < 1.0
                and _could_be_part(other)
                and _near(run.box, other.box, gap)
                and _joined_area(run, other) <= limit
            ):
                _merge(run, other)
    return runs


def _add_to_tracks(tracks: list[Detection], det: Detection) -> None:
    same = next((tr for tr in tracks if _overlap(tr.box, det.box) > 0.5), None)
    if same is None:
        tracks.append(det)
    else:
        _merge(same, det)


def _join_parts(tracks: list[Detection], gap: int) -> list[Detection]:
    """Tracks next to each other at the same time are parts of one logo: one track."""
    return _joined(sorted(tracks, key=lambda d: -d.box.area), lambda a, b: _near(a, b, gap))


def _moved_copies(
    track: Detection,
    small: np.ndarray,
    segments: list[tuple[int, int]],
    edges: list[np.ndarray],
    factor: int,
    full: np.ndarray,
) -> list[Detection]:
    """Where the track's shape shows at another place in time segments it has left: the
    persistent edges of each segment's mean (`edges`) matched against those of the track's
    own samples (normalised cross-correlation ≥ RELAY_MATCH, and < NCC_PRESENT at home)."""
    b = track.box
    rows, cols = _working(b, factor)
    y0, x0 = rows.start, cols.start
    own = gradient_magnitude(small[track.first_sample : track.last_sample + 1].mean(0))
    template = own[rows, cols]
    th, tw = template.shape
    if min(template.shape) < 4 or float(template.std()) < 1e-3:
        return []
    copies: list[Detection] = []
    for (lo, hi), seg_edges in zip(segments, edges, strict=True):
        if hi > track.first_sample and lo <= track.last_sample:
            continue
        scores = cv2.matchTemplate(seg_edges, template, cv2.TM_CCOEFF_NORMED)
        if scores[y0, x0] >= NCC_PRESENT:
            continue  # still at home: scenery that repeats, not a mark that moved
        best, (mx, my) = _best_away(scores, (y0, x0), (th, tw))
        if best < RELAY_MATCH:
            continue
        box, mask = _refine(full[lo:hi], (mx, my, tw, th), factor)
        if box is None:
            continue
        copy = Detection(
            box=box,
            mask=mask,
            first_sample=lo,
            last_sample=hi - 1,
            score=track.score,
            features=dict(track.features, relay_match=best),
        )
        # the same shape as at home: what of it stood still there is still the mark's
        shift = ((mx - x0) * factor, (my - y0) * factor)
        copy.features.update(shift_x=float(shift[0]), shift_y=float(shift[1]))
        _merge(copy, _shifted(track, shift, full.shape[1:], (lo, hi - 1)))
        log.debug("moved copy of %s at %s in samples %d-%d (%.2f)", b, copy.box, lo, hi - 1, best)
        copies.append(copy)
    return copies


def _best_away(
    scores: np.ndarray, home: tuple[int, int], size: tuple[int, ...]
) -> tuple[float, tuple[int, int]]:
    """The best of a template's match `scores` (and its place, x, y) more than the
    template's `size` (h, w) away from its `home` (y, x); the scores there are spent."""
    (y0, x0), (th, tw) = home, size
    scores[max(0, y0 - th) : y0 + th, max(0, x0 - tw) : x0 + tw] = -1.0
    _lo, best, _at, (mx, my) = cv2.minMaxLoc(scores)
    return float(best), (int(mx), int(my))


def _toggled_runs(
    track: Detection, small: np.ndarray, factor: int, full: np.ndarray
) -> list[Detection]:
    """The runs of a mark that jumps over a still background, at its `track`'s place and at
    the other; none when the track does not toggle so.

    Over a still background the edges a segment's mean shows at the other place are too
    faint beside the scenery's for _moved_copies, but the mark's coming and going is plain:
    the level of its pixels (against the rest of its box) switches between two steady
    values. The mean of the samples with it minus that of the samples without it is the
    mark itself at home, and its negative where it went: the still scenery cancels out, so
    it also gives the mark's own shape at both places (a road marking beside it in the
    track's box stays out).
    """
    rows, cols = _working(track.box, factor)
    if min(small[0, rows, cols].shape) < 4:
        return []
    on = _box_levels(track.box, track.mask, small, factor)
    if on is None:
        return []
    with_mark = on if _shows_track(track, small, on, factor) else ~on
    return _toggle_pair(track.box, with_mark, small, factor, full, track.score, track.features)


class ToggleSeed(NamedTuple):
    """Where a mark may jump over a still background, with no track behind it."""

    home: Box  # the pattern's largest group (full resolution)
    with_mark: np.ndarray  # the samples that show the mark there
    pattern: np.ndarray  # the pixels that switch at its samples (working resolution)
    switching: np.ndarray  # every pixel that switches between two steady levels


def _toggle_seeds(small: np.ndarray, factor: int) -> list[ToggleSeed]:
    """Places where a mark may jump over a still background: pixels that switch between two
    steady levels (see _two_levels), grouped by the samples they switch at; the mark's
    pixels at both its places share them (one upper where the other is lower), the
    scenery's seldom do. The TOGGLE_PATTERNS most common such patterns, the commonest
    first."""
    t, h, w = small.shape
    frames = small.astype(np.float32)
    upper = frames > (frames.min(0) + frames.max(0)) / 2
    count = upper.sum(0)
    # the values' and their squares' sums over the samples above the cut and below it
    above = np.sum(frames, axis=0, where=upper, dtype=np.float64)
    sums = [above, frames.sum(0, dtype=np.float64) - above]
    np.square(frames, out=frames)
    above = np.sum(frames, axis=0, where=upper, dtype=np.float64)
    squares = [above, frames.sum(0, dtype=np.float64) - above]
    del frames
    n = [np.maximum(count, 1), np.maximum(t - count, 1)]
    means = [total / k for total, k in zip(sums, n, strict=True)]
    spreads = [
        np.sqrt(np.maximum(sq / k - m * m, 0)) for sq, k, m in zip(squares, n, means, strict=True)
    ]
    gap = means[0] - means[1]
    steady = np.maximum(np.minimum(*spreads), TOGGLE_STEADY)
    share = count / t
    switching = (
        (np.minimum(share, 1 - share) >= TOGGLE_MIN_SHARE)
        & (gap >= TOGGLE_SEPARATION * steady)
        & (gap >= 2 * TOGGLE_LEVEL)
    )
    if switching.sum() < TOGGLE_SPECK:
        return []
    bits = upper[:, switching]
    bits ^= bits[:1]  # one pattern for both places: the first sample below
    patterns, which, counts = np.unique(
        np.packbits(bits, axis=0).T, axis=0, return_inverse=True, return_counts=True
    )
    which = which.reshape(-1)
    seeds = []
    for k in np.argsort(-counts)[:TOGGLE_PATTERNS]:
        if counts[k] < TOGGLE_SPECK or counts[k] > MAX_AREA_SHARE * h * w:
            continue  # a speck, or the whole picture switching (shots that alternate)
        mask = np.zeros((h, w), bool)
        mask[switching] = which == k
        _count, _labels, stats, _ = cv2.connectedComponentsWithStats(
            dilate(mask, 1).astype(np.uint8), connectivity=8
        )
        x, y, bw, bh, _area = stats[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))]
        home = Box(int(x) * factor, int(y) * factor, int(bw) * factor, int(bh) * factor)
        on = np.unpackbits(patterns[k])[:t].astype(bool)
        rows, cols = _working(home, factor)
        # the mark is in the samples whose mean shows more edges at its place
        edges = [float(gradient_magnitude(small[s, rows, cols].mean(0)).sum()) for s in (on, ~on)]
        seeds.append(ToggleSeed(home, on if edges[0] >= edges[1] else ~on, mask, switching))
    return seeds


def _visits(
    seeds: list[ToggleSeed], small: np.ndarray, factor: int, full: np.ndarray
) -> list[Detection]:
    """The runs of a mark that visits three places or more over a still picture: each
    place switches at the samples of its own stays, so each is a seed of its own (and a
    place where the picture moves under it is none: its other places are still found).
    The seeds of one mark show at samples apart from each other's (but for a sample or two
    where it jumps), lie across the picture from each other, and the change each makes
    (against the samples of the next place) is undone at the next (_toggle_pair)."""
    height, width = (n * factor for n in small.shape[1:])
    for first in seeds:
        group = [first]
        for seed in seeds:
            if all(
                int((seed.with_mark & other.with_mark).sum()) <= TOGGLE_ASIDE
                and _far(seed.home, other.home, width, height)
                for other in group
            ):
                group.append(seed)
        if len(group) < 2:
            continue
        homes: list[list[Detection]] = []  # per place: its runs
        copies: list[Detection | None] = []  # and one of its copy's at the next (the shift)
        for seed, partner in zip(group, group[1:] + group[:1], strict=True):
            pair = _toggle_pair(
                seed.home, seed.with_mark, small, factor, full, 1.0, {}, seed, partner
            )
            homes.append([run for run in pair if "shift_x" not in run.features])
            copies.append(next((run for run in pair if "shift_x" in run.features), None))
        runs = [run for place in homes for run in place]
        if runs and all(any(_overlap(run.box, seed.home) > 0 for run in runs) for seed in group):
            return _whole_shapes(homes, copies, height, width) or runs
    return []


def _whole_shapes(
    homes: list[list[Detection]], copies: list[Detection | None], height: int, width: int
) -> list[Detection]:
    """The runs at each place of a mark visiting three or more (`homes`, with one run of
    each place's copy at the next, which carries the shift), each place's shape grown by
    what all the others' show, moved to it: the mark is the same at each, and one place may
    show part of it only (a hand passing behind some of its letters there: engine_marks'
    bottle/visit, the top left found over its "S"), another the scenery beside it too
    (which the others do not share). None for two places, or one without runs or shift."""
    if len(homes) < 3 or not all(homes):
        return []
    offsets = [(0, 0)]  # each place from the first
    for copy in copies[:-1]:
        if copy is None:
            return []
        x, y = offsets[-1]
        offsets.append((x + int(copy.features["shift_x"]), y + int(copy.features["shift_y"])))
    shapes = [_frame_mask(runs[0], height, width) for runs in homes]
    out = []
    for i, runs in enumerate(homes):
        shared = np.ones((height, width), bool)
        for j, shape in enumerate(shapes):
            if j != i:
                dx, dy = offsets[i][0] - offsets[j][0], offsets[i][1] - offsets[j][1]
                shared &= dilate(_moved(shape, dx, dy), 1)
        box, mask = _cropped(shapes[i] | shared, 0, 0)
        out += runs if box is None else [replace(r, box=box, mask=mask) for r in runs]
    return out


def _frame_mask(det: Detection, height: int, width: int) -> np.ndarray:
    """A detection's mask placed in a whole frame."""
    out = np.zeros((height, width), bool)
    out[det.box.slices_in(Box(0, 0, width, height))] = det.mask
    return out


def _far(a: Box, b: Box, width: int, height: int) -> bool:
    """Whether two places lie across the picture from each other (TOGGLE_FAR)."""
    return max(abs(b.x - a.x) / width, abs(b.y - a.y) / height) >= TOGGLE_FAR


def _jumped(
    seed: ToggleSeed, dx: int, dy: int, factor: int, partner: ToggleSeed | None = None
) -> bool:
    """Whether the mark of a `seed` jumped (dx, dy) pixels (to its `partner`'s place, where
    it visits more than two): its two places lie across the picture from each other
    (TOGGLE_FAR); at both its pixels switch at the samples of its stays there (at least
    TOGGLE_PIXELS of them at each, at the other place at least TOGGLE_COPY_SHARE as many
    as at home: where scenery came and went, a hand or a leaf, the place the change is
    undone at is other scenery, which switches at other samples); and at home they are
    nearly all that switches (TOGGLE_OWN_SHARE: subtitles switch at the samples of the
    words each pixel is part of, a mark at the samples of its stays)."""
    height, width = (n * factor for n in seed.pattern.shape)
    moved = seed.home.moved(dx, dy)
    if not _far(seed.home, moved, width, height):
        return False
    home, copy = _working(seed.home, factor), _working(moved.within(width, height), factor)
    at_home = int(seed.pattern[home].sum())
    at_copy = int((partner or seed).pattern[copy].sum())
    return (
        at_home >= TOGGLE_PIXELS
        and at_copy >= max(TOGGLE_PIXELS, TOGGLE_COPY_SHARE * at_home)
        and at_home >= TOGGLE_OWN_SHARE * int(seed.switching[home].sum())
    )


def _toggle_pair(
    home: Box,
    with_mark: np.ndarray,
    small: np.ndarray,
    factor: int,
    full: np.ndarray,
    score: float,
    features: Mapping[str, float],
    seed: ToggleSeed | None = None,
    partner: ToggleSeed | None = None,
) -> list[Detection]:
    """The runs of a mark at `home` in the samples `with_mark` and at the one other place
    where the change it makes is undone in the others (see _toggled_runs), or in those of
    its `partner` seed's stays; none when no place undoes it. A `seed`'s (no track behind
    it) other place must also pass _jumped."""
    rows, cols = _working(home, factor)
    without = ~with_mark if partner is None else partner.with_mark
    coming = small[with_mark].mean(0) - small[without].mean(0)
    template = coming[rows, cols]
    scores = cv2.matchTemplate(-coming, template, cv2.TM_CCOEFF_NORMED)
    best, (mx, my) = _best_away(scores, (rows.start, cols.start), template.shape)
    dx, dy = (mx - cols.start) * factor, (my - rows.start) * factor
    if seed is None:
        if best < TOGGLE_MATCH:
            return []
    elif best < TOGGLE_SEED_MATCH or not _jumped(seed, dx, dy, factor, partner):
        return []
    # the mark is what changes at both places, one way at one and the other way at the
    # other: the scenery that changes between the two sets of samples (the light, a road
    # marking as the camera shifts a pixel, a car passing) does not. Looked for around the
    # home box, which may hold part of the mark only
    height, width = full.shape[1:]
    around = Box(home.x - home.w // 2, home.y - home.h // 2, 2 * home.w, 2 * home.h)
    change = _mean_of(full, with_mark) - _mean_of(full, without)
    at_home = _changed(change, around.within(width, height))
    at_copy = _changed(change, around.moved(dx, dy).within(width, height))
    here = _undone(at_home, at_copy, dx, dy, factor)
    there = _undone(at_copy, at_home, -dx, -dy, factor)
    # each kept only with its counterpart (a speck left out at one place leaves the other)
    home_box, home_mask = _cropped(dilate(here & _moved(dilate(there, factor), -dx, -dy), 1), 0, 0)
    copy_box, copy_mask = _cropped(dilate(there & _moved(dilate(here, factor), dx, dy), 1), 0, 0)
    if home_box is None or copy_box is None:
        return []
    log.debug("%s toggles with a copy at %s (%.2f)", home_box, copy_box, best)
    shift = {"shift_x": float(dx), "shift_y": float(dy)}
    toggled = dict(features, toggled=1.0)
    runs = [
        Detection(home_box, home_mask, first, last, score, dict(toggled))
        for first, last in _runs_of(with_mark)
    ]
    brighter = float(at_home[home_box.slices_in(Box(0, 0, width, height))][home_mask].mean()) > 0
    runs += [
        Detection(copy_box, copy_mask, first, last, score, dict(toggled, **shift))
        for first, last in _runs_of(
            _shown_at(copy_box, copy_mask, small, factor, without, brighter)
        )
    ]
    return runs


def _shown_at(
    box: Box, mask: np.ndarray, small: np.ndarray, factor: int, without: np.ndarray, brighter: bool
) -> np.ndarray:
    """Which of the samples `without` the mark at home show it at its other place `box`:
    all of them, but for the stays (of three samples or more) where the level of its
    pixels there (against the rest of the box) says it is away, at a third place (a mark
    that visits three: its second place's runs took the third's stays too)."""
    upper = _box_levels(box, mask, small, factor)
    if upper is None:
        return without
    away = without & (~upper if brighter else upper)
    shown = without.copy()
    for first, last in _runs_of(away):
        if last - first >= 2:
            shown[first : last + 1] = False
    return shown if shown.any() else without


def _box_levels(box: Box, mask: np.ndarray, small: np.ndarray, factor: int) -> np.ndarray | None:
    """The samples at the upper of two steady levels (_two_levels) of a shape's pixels
    (`mask`, in `box`) against the rest of the box; None when they do not switch so, or
    the shape fills the box or nothing of it."""
    rows, cols = _working(box, factor)
    crop = small[:, rows, cols]
    inside = (
        cv2.resize(mask.astype(np.float32), crop.shape[:0:-1], interpolation=cv2.INTER_AREA) > 0.3
    )
    if inside.all() or not inside.any():
        return None
    return _two_levels(crop[:, inside].mean(1) - crop[:, ~inside].mean(1))


def _changed(change: np.ndarray, box: Box) -> np.ndarray:
    """A frame-sized map of the `change` between two sets of samples' means inside `box`,
    less the change most of the box shows (the light changing over the clip), 0 elsewhere."""
    crop = change[box.y : box.y + box.h, box.x : box.x + box.w]
    out = np.zeros(change.shape, np.float32)
    out[box.y : box.y + box.h, box.x : box.x + box.w] = crop - float(np.median(crop))
    return out


def _undone(here: np.ndarray, there: np.ndarray, dx: int, dy: int, reach: int) -> np.ndarray:
    """The pixels that change by at least TOGGLE_LEVEL `here` and the other way `there`,
    (dx, dy) pixels away (give or take `reach`), less specks of fewer than TOGGLE_SPECK
    pixels (the scenery's own, where they meet by chance)."""
    up = _moved(dilate(there <= -TOGGLE_LEVEL, reach), -dx, -dy)
    down = _moved(dilate(there >= TOGGLE_LEVEL, reach), -dx, -dy)
    both = ((here >= TOGGLE_LEVEL) & up) | ((here <= -TOGGLE_LEVEL) & down)
    _count, labels, stats, _ = cv2.connectedComponentsWithStats(
        both.astype(np.uint8), connectivity=8
    )
    keep = stats[:, cv2.CC_STAT_AREA] >= TOGGLE_SPECK
    keep[0] = False
    return keep[labels]


def _mean_of(frames: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """The mean of the `chosen` frames (T,H,W), summed one at a time (no copy of them)."""
    total = np.zeros(frames.shape[1:], np.float32)
    for i in np.nonzero(chosen)[0]:
        total += frames[i]
    return total / max(int(chosen.sum()), 1)


def _moved(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """A mask moved by (dx, dy) pixels, what leaves the frame dropped."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    out[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)] = mask[
        max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)
    ]
    return out


def _two_levels(level: np.ndarray) -> np.ndarray | None:
    """Which samples sit at the upper of two steady values of `level` (two-means), or None
    when it does not switch between two such values (see TOGGLE_SEPARATION)."""
    cut = float(level.min() + level.max()) / 2
    for _ in range(16):
        upper = level > cut
        if upper.all() or not upper.any():
            return None
        cut = float(level[upper].mean() + level[~upper].mean()) / 2
    upper = level > cut
    share = float(upper.mean())
    if min(share, 1 - share) < TOGGLE_MIN_SHARE:
        return None
    # the steadier of the two: the picture without the mark stands still, while with it
    # the mark's level may differ between its stays (the light changed meanwhile)
    spread = max(min(float(level[upper].std()), float(level[~upper].std())), TOGGLE_STEADY)
    gap = float(level[upper].mean() - level[~upper].mean())
    return upper if gap >= TOGGLE_SEPARATION * spread else None


def _shows_track(track: Detection, small: np.ndarray, samples: np.ndarray, factor: int) -> bool:
    """Whether the mean of `samples` shows the track's edges at its place better than the
    mean of the others does."""
    rows, cols = _working(track.box, factor)
    own = gradient_magnitude(small[track.first_sample : track.last_sample + 1, rows, cols].mean(0))
    these = gradient_magnitude(small[samples, rows, cols].mean(0))
    others = gradient_magnitude(small[~samples, rows, cols].mean(0))
    return _ncc(these, own) >= _ncc(others, own)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two equal-sized arrays (-1..1)."""
    ac, bc = a - a.mean(), b - b.mean()
    return float((ac * bc).sum()) / (float(np.sqrt((ac * ac).sum() * (bc * bc).sum())) or 1.0)


def _runs_of(flags: np.ndarray) -> list[tuple[int, int]]:
    """The (first, last) indices of each run of True in `flags`."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    return [(int(a), int(b) - 1) for a, b in zip(starts, ends, strict=True)]


def _shifted(
    det: Detection, shift: tuple[int, int], size: tuple[int, int], span: tuple[int, int]
) -> Detection:
    """The detection's shape moved by `shift` (full-resolution pixels), cut to the frame of
    `size`, over the samples of `span`."""
    moved = det.box.moved(*shift)
    box = moved.within(size[1], size[0])
    return Detection(box, det.mask[box.slices_in(moved)], span[0], span[1], det.score)


def _relay(runs: list[Detection], total: int) -> list[Detection]:
    """Keep moving-mark runs only when they hand over to one another: the mark leaves one
    place as it appears at another, so together the runs cover most of the clip with little
    overlap. Scenery that stops moving for a while does not do that."""
    if len(runs) < 2:
        return []
    covered = _spanned(runs, total)
    share = float((covered > 0).mean())
    overlap = float((covered > 1).sum()) / max(int((covered > 0).sum()), 1)
    spans: list[tuple[Box, int]] = []
    for run in runs:
        length = run.last_sample - run.first_sample + 1
        home = next((i for i, (b, _n) in enumerate(spans) if _overlap(b, run.box) > 0.2), None)
        if home is None:
            spans.append((run.box, length))
        else:
            spans[home] = (spans[home][0], spans[home][1] + length)
    places = [n for _b, n in spans if n >= 0.15 * total]
    if len(places) < 2 or share < 0.7 or overlap > 0.25:
        return []
    return runs


def _appearing(tracks: list[Detection], grads: np.ndarray, factor: int) -> list[Detection]:
    """Marks that stay in one place for part of the clip (a logo that comes in after an
    intro, or leaves before the end): a run where the mark's edges are present over at
    least APPEARING_SHARE of the samples and absent from as many at the start or the end,
    on a track that scored as a blend over at least a time segment's worth of samples
    with real content moving under it."""
    total = len(grads)
    out = []
    for track, run in ((tr, r) for tr in tracks for r in _split_by_presence(tr, grads, factor)):
        spanned = track.last_sample - track.first_sample + 1
        length = run.last_sample - run.first_sample + 1
        if length < APPEARING_SHARE * total or spanned < SEGMENT_SAMPLES:
            continue
        # the samples next to the run where the mark is likelier there than not (the
        # picture's own edges blur the match as it comes in)
        likely = _presence(run, grads, factor) > NCC_PRESENT / 2
        while run.first_sample > 0 and likely[run.first_sample - 1]:
            run.first_sample -= 1
        while run.last_sample < total - 1 and likely[run.last_sample + 1]:
            run.last_sample += 1
        # it comes in or goes away: absent from a stretch at the start or the end, and
        # real content moves under it (not a change of exposure alone)
        before, after = likely[: run.first_sample], likely[run.last_sample + 1 :]
        absent = max(
            (len(side) for side in (before, after) if len(side) and side.mean() <= 0.2),
            default=0,
        )
        local = track.features.get("local", 0.0)
        if absent >= APPEARING_SHARE * total and local >= MIN_MOVING_SHARE:
            out.append(run)
    return out


def _normalise_gain(frames: np.ndarray) -> np.ndarray:
    """Divide out global exposure changes, which would otherwise mimic a blend everywhere."""
    reference = np.median(frames[:, ::4, ::4], axis=0) + 1.0
    gains = np.array([np.median((f[::4, ::4] + 1.0) / reference) for f in frames], np.float32)
    return frames / gains[:, None, None].clip(0.2, 5.0)


def _grow(marks: list[Detection], others: list[Detection], gap: int) -> list[Detection]:
    """Join parts of one logo: persistent pieces next to a mark whose background never
    contradicted a blend (static under it, or changes shrunk) join it, and touching marks merge."""
    pending = [o for o in others if _could_be_part(o)]
    merged: list[Detection] = []
    for mark in sorted(marks, key=lambda d: -d.box.area):
        home = next((m for m in merged if _near(m.box, mark.box, gap)), None)
        if home is None:
            merged.append(mark)
        else:
            _merge(home, mark)
    changed = True
    while changed:
        changed = False
        for other in list(pending):
            home = next((m for m in merged if _near(m.box, other.box, gap)), None)
            if home is not None:
                _merge(home, other)
                pending.remove(other)
                changed = True
    return merged


def _could_be_part(d: Detection) -> bool:
    """Whether a candidate's background never contradicted a blend: static under it, or
    its changes shrunk."""
    return d.features.get("moving", 0.0) < MIN_MOVING_SHARE or d.features.get("ratio", 1.0) <= 0.9


def _joined_area(a: Detection, b: Detection) -> int:
    return a.box.union(b.box).area


def _near(a: Box, b: Box, gap: int) -> bool:
    return not (
        a.x > b.x + b.w + gap
        or b.x > a.x + a.w + gap
        or a.y > b.y + b.h + gap
        or b.y > a.y + a.h + gap
    )


def _segments(t: int) -> list[tuple[int, int]]:
    count = max(1, t // SEGMENT_SAMPLES)
    edges = np.linspace(0, t, count + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b - a >= 4]


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box."""
    inter = a.shared_area(b)
    return inter / float(min(a.area, b.area)) if inter else 0.0


def _merge(track: Detection, det: Detection) -> None:
    box = track.box.union(det.box)
    mask = np.zeros((box.h, box.w), bool)
    for d in (track, det):
        mask[d.box.slices_in(box)] |= d.mask
    track.box, track.mask = box, mask
    track.first_sample = min(track.first_sample, det.first_sample)
    track.last_sample = max(track.last_sample, det.last_sample)


def scenes(frames: np.ndarray) -> list[tuple[int, int]]:
    """The runs [start, end) of samples between scene cuts; one run when there is none.

    A cut changes most of the picture at once (CUT_SHARE of it by CUT_LEVELS), far more
    than the clip usually changes between two samples (CUT_CONTRAST): a handheld or
    panning clip changes much of its picture every time and has no cuts by this test."""
    t = len(frames)
    if t < 4:
        return [(0, t)]
    h, w = frames.shape[1:]
    sy, sx = max(1, h // CUT_GRID[1]), max(1, w // CUT_GRID[0])
    tiny = frames[:, sy // 2 :: sy, sx // 2 :: sx]  # a grid of points: cheap, and enough
    share = (np.abs(np.diff(tiny, axis=0)) > CUT_LEVELS).mean(axis=(1, 2))
    cut = (share > CUT_SHARE) & (share > CUT_CONTRAST * float(np.median(share)))
    bounds = [0, *(np.nonzero(cut)[0] + 1).tolist(), t]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def bars(frames: np.ndarray, mean: np.ndarray) -> list[tuple[int, bool, int]]:
    """The letterbox and pillarbox bars (dark, flat and static bands along the frame's
    sides; `mean` is the frames' temporal mean): (axis, from_start, lines) for each, axis 1
    for a band of rows (top or bottom), 0 for one of columns."""
    t, h, w = frames.shape
    dark = mean < BAR_LEVEL
    sides = (dark[0], dark[-1], dark[:, 0], dark[:, -1])
    if t < 3 or all(side.mean() < BAR_SHARE for side in sides):
        return []  # no side of the frame is dark: no bar
    bar = (frames.std(0) < BAR_STD) & dark
    cols = _bar_depths(mean.T, bar.T, slice(None))
    # rows are bars across the picture between the side bars, and columns the other way
    # round: beside an upright picture's pillarbox every row is mostly bar
    rows = _bar_depths(mean, bar, slice(cols[0], w - cols[1]))
    cols = _bar_depths(mean.T, bar.T, slice(rows[0], h - rows[1]))
    found = [(1, True, rows[0]), (1, False, rows[1]), (0, True, cols[0]), (0, False, cols[1])]
    return [(axis, from_start, n) for axis, from_start, n in found if n]


def _bar_depths(along: np.ndarray, bar: np.ndarray, span: slice) -> tuple[int, int]:
    """How many of the lines (rows of `along`) from each end are bar lines over `span` of
    their length (0: none, or too few or too many to be a bar)."""
    lines_mean, lines_bar = along[:, span], bar[:, span]
    flat = np.abs(lines_mean - np.median(lines_mean, axis=1, keepdims=True)) < BAR_FLAT
    lines = (lines_bar & flat).mean(1) >= BAR_SHARE
    depths = []
    for edge in (lines, lines[::-1]):
        n = int(np.argmin(edge)) if not edge.all() else 0
        depths.append(n if 2 <= n < len(lines) // 2 else 0)
    return depths[0], depths[1]


def _bar_lines(
    shape: tuple[int, ...], axis: int, from_start: bool, start: int, stop: int
) -> tuple[slice, slice]:
    """The (rows, columns) of a frame of `shape` (h, w) in lines start..stop of a bar,
    counted from its side: rows (axis 1, top or bottom) or columns (axis 0)."""
    size = shape[0] if axis == 1 else shape[1]
    band = slice(start, stop) if from_start else slice(size - stop, size - start)
    return (band, slice(None)) if axis == 1 else (slice(None), band)


def bar_edges(frames: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The inner edges of letterbox and pillarbox bars, a few pixels wide: the picture's
    edge there is as persistent as a mark's, and a user's corner search took it for one
    (smearing the picture into the bar)."""
    out = np.zeros(mean.shape, bool)
    for axis, from_start, n in bars(frames, mean):
        out[_bar_lines(mean.shape, axis, from_start, n - 2, n + 3)] = True
    return out


def _bar_marks(
    small: np.ndarray, factor: int, full: np.ndarray, search: Box | None, gap: int
) -> list[Detection]:
    """Marks drawn on letterbox or pillarbox bars: what stands off a bar's flat level in
    nearly every sample. A bar has no picture under a mark to tell a blend by (the noise
    tests have nothing to see damped), but nothing of the picture lies there either:
    subtitles come and go, a channel's handle or logo stays. Only on bars that come in
    pairs (a picture padded to the frame's shape), or beside a picture that moves: a dark,
    flat side of a still scene may be scenery (a night sky with the moon in it)."""
    t, h, w = full.shape
    mean = small.mean(0)
    found = bars(small, mean)
    picture = mean >= BAR_LEVEL
    if not found or not picture.any():
        return []
    moving = float(np.median(small.std(0)[picture])) >= MOTION_STD
    axes = [axis for axis, _from_start, _n in found]
    out: list[Detection] = []
    for axis, from_start, n in found:
        if not moving and axes.count(axis) < 2:
            continue
        # full-resolution lines of the bar, less its inner edge's blur
        depth = (n - 1) * factor - 2
        if depth < BAR_MIN_DEPTH:
            continue
        rows, cols = _bar_lines((h, w), axis, from_start, 0, depth)
        crop = full[:, rows, cols].astype(np.float32)
        level = float(np.median(crop))
        steady = (np.abs(crop - level) > BAR_MARK_LEVEL).mean(0) >= BAR_MARK_SHARE
        y0, x0 = rows.start or 0, cols.start or 0
        steady &= ~frame_band(steady.shape, x0, y0, h, w, 1)  # the frame's own border
        if steady.sum() < BAR_MIN_PIXELS:
            continue
        joined = cv2.morphologyEx(
            steady.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((gap, gap), np.uint8)
        )
        count, labels = cv2.connectedComponents(joined, connectivity=8)
        for label in range(1, count):
            drawn = steady & (labels == label)
            if drawn.sum() < BAR_MIN_PIXELS:
                continue
            # with the rim its edges blur into (anti-aliasing, the encoder's ringing)
            box, mask = _cropped(dilate(drawn, 2), x0, y0)
            if box is None or (search is not None and not _near(box, search, 0)):
                continue
            features = {"bar_mark": 1.0, "still_mark": 1.0}
            out.append(Detection(box, mask, 0, t - 1, 1.0, features))
    return _join_parts(out, gap)  # a logo's words, a handle's icon and name


def edge_strength(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(temporal mean, |∇| of it). Across scene cuts the strength is the median over the
    scenes of |∇| of each scene's mean: a mark's edges are in every scene, a still scene's
    only in its own (a compilation of static shots would otherwise show every shot's
    scenery as persistent: each is flat in the others)."""
    mean = frames.mean(0)
    runs = [(a, b) for a, b in scenes(frames) if b - a >= 2]
    if len(runs) < 3:
        strength = gradient_magnitude(mean)
    else:
        per_scene = np.stack([gradient_magnitude(frames[a:b].mean(0)) for a, b in runs])
        strength = np.median(per_scene, axis=0)
    strength[bar_edges(frames, mean)] = 0.0
    return mean, strength


def within_scenes(frames: np.ndarray) -> np.ndarray:
    """The frames with each scene's mean replaced by the clip's (when there are cuts): the
    changes within the scenes. Across a cut every area changes with its surroundings, a
    wall as much as a blend, so the cuts themselves tell nothing about a blend."""
    runs = scenes(frames)
    if len(runs) < 3:
        return frames
    mean = frames.mean(0)
    out = frames - mean
    for a, b in runs:
        out[a:b] -= out[a:b].mean(0)
    return out + mean


def persistent_edges(frames: np.ndarray, grads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(edge mask, edge strength): edges of the temporal mean that are coherent over time."""
    _mean, strength = edge_strength(frames)
    coherence = strength / (grads.mean(0) + 1.0)
    return (strength > EDGE_THRESHOLD) & (coherence > COHERENCE), strength


def _candidates(
    frames: np.ndarray,
    grads: np.ndarray,
    span: tuple[int, int],
    search: Box | None,
    factor: int,
    full: np.ndarray,
    *,
    exclude: np.ndarray | None = None,
    keep_all: bool = False,
    near: Sequence[Detection] = (),
) -> list[Detection]:
    """Mark candidates in one time span with their blend features (all, or only accepted ones)."""
    t, h, w = frames.shape
    edges, strength = persistent_edges(frames, grads)
    if exclude is not None:
        edges &= ~exclude
    if search is not None:
        allowed = np.zeros_like(edges)
        allowed[
            search.y // factor : (search.y + search.h) // factor + 1,
            search.x // factor : (search.x + search.w) // factor + 1,
        ] = True
        edges &= allowed
    k = max(3, int(round(min(h, w) * 0.025)) | 1)
    blob = cv2.morphologyEx(edges.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(blob, connectivity=8)
    out: list[Detection] = []
    changes: np.ndarray | None = None  # the frames whose changes the blend features follow
    for label in range(1, count):
        x, y, bw, bh, area = (int(v) for v in stats[label])
        if area < 24 or bw * bh > MAX_AREA_SHARE * h * w or bw < 3 or bh < 3:
            continue
        comp = _fill_holes(labels[y : y + bh, x : x + bw] == label)
        feats = {
            "strength": float(strength[y : y + bh, x : x + bw][comp].mean()) * float(comp.sum()),
            "border": _border((x, y, bw, bh), h, w),
        }
        feats["edge_share"] = feats["strength"] / float(h * w)
        place = Box(x * factor, y * factor, bw * factor, bh * factor)
        wanted = keep_all or any(_overlap(place, d.box) > 0.3 for d in near)
        if not wanted and not _may_score(feats):
            continue  # no blend features could make it a mark (the costly part: a fill)
        if changes is None:
            changes = within_scenes(frames)
        feats.update(_blend_features(changes, comp, (x, y, bw, bh)))
        feats["score"] = _score(feats)
        log.debug("candidate %s %s", place.as_list(), {k_: round(v, 2) for k_, v in feats.items()})
        if feats["score"] < 1.0 and not wanted:
            continue
        box, mask = _refine(full, (x, y, bw, bh), factor)
        if box is None:
            continue
        out.append(
            Detection(
                box=box,
                mask=mask,
                first_sample=span[0],
                last_sample=span[1] - 1,
                score=feats["score"],
                features=feats,
            )
        )
    return out


def noise_map(frames: np.ndarray) -> np.ndarray:
    """Sample-to-sample noise per pixel, sqrt(mean (Y[t+1] − Y[t])² / 2), lightly smoothed;
    pairs across a scene cut are left out (a cut is not noise)."""
    runs = scenes(frames)
    pairs = [(i, i + 1) for a, b in runs for i in range(a, b - 1)]
    if not pairs:
        pairs = [(i, i + 1) for i in range(len(frames) - 1)]
    total = np.zeros(frames.shape[1:], np.float32)
    for i, j in pairs:
        d = frames[j] - frames[i]
        total += d * d
    return cv2.blur(np.sqrt(total / (2 * max(len(pairs), 1))), (3, 3))


def _still_marks(
    frames: np.ndarray,
    grads: np.ndarray,
    factor: int,
    full: np.ndarray,
    search: Box | None,
    gap: int,
) -> list[Detection]:
    """Marks on a still background, where the blend fingerprint of _blend_features has no
    changing picture to work with: inside a blend the picture's sample-to-sample noise
    passes scaled by (1−α). A candidate (a compact shape outlined by persistent edges, or,
    in a corner, by those of its edges where the noise is damped) near the border and inside
    the picture is a mark when its noise is damped against the ring around it, all over its
    shape, while the ring is not (a flat or clipped area of the scene, a letterbox bar, is
    quiet beyond its outline too), the ring's noise is measurable, and few of its pixels are
    clipped."""
    t, h, w = frames.shape
    noise = noise_map(frames)
    mean, strength = edge_strength(frames)
    coherent = strength / (grads.mean(0) + 1.0) > COHERENCE
    k = max(3, int(round(min(h, w) * 0.025)) | 1)
    layers = [(strength > thr) & coherent for thr in (EDGE_THRESHOLD, STILL_EDGE)]
    # a mark's outline often touches static scenery (a door frame, a table's edge) that runs
    # out of the picture and takes the mark's shape with it: the edges where the picture's
    # noise is damped against the area around them, cut out of it, in the frame's corners
    damping = _damping_here(noise)
    layers += [layers[-1] & dilate(damping < level, 1) for level in STILL_CUT_LEVELS]
    shapes: list[tuple[np.ndarray, tuple[int, int, int, int], bool]] = []
    for i, layer in enumerate(layers):
        # closed wide (a whole logo) and narrow (its pieces, when scenery lines touch it)
        for size in (k, 3):
            blob = cv2.morphologyEx(
                layer.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((size, size), np.uint8)
            )
            shapes += [(*s_, i >= 2) for s_ in _still_shapes(blob, search, factor, corner=i >= 2)]
    scored = []
    for shape, bbox, cut in shapes:
        feats = _still_features(noise, mean, shape, bbox, factor)
        # a shape cut out of the scenery is only a mark that brings its own strokes
        if feats and not (cut and feats["texture"] < STILL_CUT_TEXTURE):
            scored.append((shape, bbox, feats))
    scored = _confirmed_in_shots(frames, mean, scored, factor)
    out: list[Detection] = []
    for shape, bbox, feats in sorted(scored, key=lambda s_: -s_[2]["score"]):
        if feats["score"] < 1.0:
            break
        x, y, bw, bh = bbox
        seed = Box(x * factor, y * factor, bw * factor, bh * factor)
        if any(_overlap(d.box, seed) > 0.5 for d in out):
            continue
        det = _still_region(full, noise, mean, shape, bbox, factor, feats)
        if det is None:
            continue
        home = next((d for d in out if _near(d.box, det.box, gap)), None)
        if home is None:
            out.append(det)
        else:
            _merge(home, det)
    # parts of a mark damped less surely (a logo's text: thin strokes, damped only on them)
    # join a mark found next to them
    for _shape, bbox, feats in scored:
        if feats["score"] >= 1.0 or feats["damping"] > STILL_PART_RATIO:
            continue
        if feats["contrast"] < STILL_MIN_CONTRAST / 2:
            continue
        x, y, bw, bh = bbox
        part = Box(x * factor, y * factor, bw * factor, bh * factor)
        home = next((d for d in out if _near(d.box, part, gap)), None)
        if home is None or _overlap(home.box, part) > 0.9:
            continue
        box, mask = _refine(full, bbox, factor)
        if box is not None:
            _merge(home, Detection(box, mask, 0, t - 1, 0.0))
    return out


def _confirmed_in_shots(
    frames: np.ndarray,
    mean: np.ndarray,
    scored: list[tuple[np.ndarray, tuple[int, int, int, int], dict[str, float]]],
    factor: int,
) -> list[tuple[np.ndarray, tuple[int, int, int, int], dict[str, float]]]:
    """The still candidates, less those that score as a mark only in the mix of a
    compilation's shots (three or more of at least three samples): across scene cuts a
    mark damps the noise of every shot, while a quiet patch of one shot's scenery beside
    another shot's motion is damped only in the mix. A mark scores in at least half the
    shots' own noise."""
    shots = [noise_map(frames[a:b]) for a, b in scenes(frames) if b - a >= 3]
    if len(shots) < 3:
        return scored
    kept = []
    for shape, bbox, feats in scored:
        if feats["score"] >= 1.0:
            per_shot = [_still_features(noise, mean, shape, bbox, factor) for noise in shots]
            if 2 * sum(1 for f in per_shot if f and f["score"] >= 1.0) < len(shots):
                continue
        kept.append((shape, bbox, feats))
    return kept


def _damping_here(noise: np.ndarray) -> np.ndarray:
    """Each pixel's noise over the median noise of a wide area around it (half the frame's
    short side)."""
    k = (min(noise.shape) // 2) | 1
    scale = 32.0  # the median filter this wide needs 8 bits: 1/32 of a level is plenty
    quantised = np.clip(noise * scale, 0, 255).astype(np.uint8)
    around = cv2.medianBlur(quantised, k).astype(np.float32) / scale
    return noise / np.maximum(around, 1e-3)


def _still_shapes(
    blob: np.ndarray, search: Box | None, factor: int, *, corner: bool = False
) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Compact shapes near the border (`corner`: in a corner), inside the picture (working
    resolution)."""
    h, w = blob.shape
    count, labels, stats, _ = cv2.connectedComponentsWithStats(blob, connectivity=8)
    shapes = []
    for label in range(1, count):
        x, y, bw, bh, area = (int(v) for v in stats[label])
        if area < 24 or bw < 3 or bh < 3 or not _inside_picture((x, y, bw, bh), h, w):
            continue
        if _border((x, y, bw, bh), h, w) > BORDER_BAND:
            continue
        if corner and (
            min(x, w - x - bw) > CORNER * w
            or min(y, h - y - bh) > CORNER * h
            or bw * bh < STILL_CUT_AREA * h * w
        ):
            continue
        if search is not None and not _near(
            Box(x * factor, y * factor, bw * factor, bh * factor), search, 0
        ):
            continue
        shapes.append((_fill_holes(labels[y : y + bh, x : x + bw] == label), (x, y, bw, bh)))
    return shapes


def _border(bbox: tuple[int, int, int, int], h: int, w: int) -> float:
    """How far a box lies from the frame's nearest edge, as a share of the frame's size."""
    x, y, bw, bh = bbox
    return min(x / w, y / h, (w - x - bw) / w, (h - y - bh) / h)


def _inside_picture(bbox: tuple[int, int, int, int], h: int, w: int) -> bool:
    """Small enough, and not cut by the frame's edge (scenery runs out of the picture)."""
    x, y, bw, bh = bbox
    return bw * bh <= STILL_MAX_AREA * h * w and min(x, y, w - x - bw, h - y - bh) >= STILL_MARGIN


def _still_region(
    full: np.ndarray,
    noise: np.ndarray,
    mean: np.ndarray,
    shape: np.ndarray,
    bbox: tuple[int, int, int, int],
    factor: int,
    feats: dict[str, float],
) -> Detection | None:
    """A still mark grown from its seed shape over the damped pixels connected to it (parts
    of a logo too faint in luma to leave edges still damp the noise), at full resolution."""
    h, w = noise.shape
    x, y, bw, bh = bbox
    reach = max(bw, bh) + 4
    x0, y0 = max(0, x - reach), max(0, y - reach)
    x1, y1 = min(w, x + bw + reach), min(h, y + bh + reach)
    n = noise[y0:y1, x0:x1]
    strip = np.ones(n.shape, bool)
    r = max(3, STILL_RING // factor)
    strip[r:-r, r:-r] = False
    ref = max(feats["ring_noise"], float(np.median(n[strip])))
    # as damped as the seed, within its noise: a faint mark is damped little
    level = min(0.85, max(STILL_DAMPED, (1.0 + feats["damping"]) / 2))
    damped = cv2.blur((n < level * ref).astype(np.float32), (5, 5)) > 0.5
    seed = np.zeros(damped.shape, bool)
    seed[y - y0 : y - y0 + bh, x - x0 : x - x0 + bw] = shape
    band = frame_band(damped.shape, x0, y0, h, w, STILL_MARGIN)
    region = _grown(seed, damped)
    if ref >= MOTION_STD and _runs_out(region, band):
        # the picture moves around the mark, so what joins it to the frame's edge is a quiet
        # strip of static scenery there (a dark border): grow it again without that strip
        region = _grown(seed, damped & ~frame_band(damped.shape, x0, y0, h, w, 3 * STILL_MARGIN))
    cut = _runs_out(region, band)
    edge = np.concatenate([region[0], region[-1], region[:, 0], region[:, -1]])
    if region.sum() > seed.sum():
        # the grown mark must itself stand out as damped against its own ring; a quiet area
        # that runs on (flat or clipped scenery next to the mark) does not: keep the seed
        rows, cols = np.nonzero(region)
        gx, gy = int(cols.min()), int(rows.min())
        grown = region[gy : int(rows.max()) + 1, gx : int(cols.max()) + 1]
        gbox = (x0 + gx, y0 + gy, grown.shape[1], grown.shape[0])
        check = _still_features(noise, mean, grown, gbox, factor)
        if (
            edge.mean() > 0.1
            or cut
            or grown.shape[0] * grown.shape[1] > MAX_AREA_SHARE * h * w
            or check is None
            or check["score"] < 1.0
        ):
            region = seed
    rows, cols = np.nonzero(region)
    fh, fw = full.shape[1:]
    pad = factor + 1
    bx0, by0 = (
        max(0, (x0 + int(cols.min())) * factor - pad),
        max(0, (y0 + int(rows.min())) * factor - pad),
    )
    bx1 = min(fw, (x0 + int(cols.max()) + 1) * factor + pad)
    by1 = min(fh, (y0 + int(rows.max()) + 1) * factor + pad)
    box = Box(bx0, by0, bx1 - bx0, by1 - by0)
    big = cv2.resize(
        region.astype(np.uint8),
        ((x1 - x0) * factor, (y1 - y0) * factor),
        interpolation=cv2.INTER_NEAREST,
    )
    mask = mark_mask_in_box(full, box)
    canvas = np.zeros((fh, fw), bool)
    canvas[y0 * factor : y0 * factor + big.shape[0], x0 * factor : x0 * factor + big.shape[1]] = (
        big[: fh - y0 * factor, : fw - x0 * factor] > 0
    )
    mask |= canvas[by0:by1, bx0:bx1]
    tight, mask = _cropped(mask, bx0, by0)
    if tight is None:
        return None
    return Detection(tight, mask, 0, len(full) - 1, feats["score"], dict(feats))


def _grown(seed: np.ndarray, damped: np.ndarray) -> np.ndarray:
    """The seed with the damped parts touching it or within a few pixels (a logo's rings,
    letters), twice over."""
    _count, labels = cv2.connectedComponents(damped.astype(np.uint8), connectivity=8)
    region = seed
    for _ in range(2):
        keep = np.unique(labels[dilate(region, 3) & (labels > 0)])
        region = seed | np.isin(labels, keep)
    return region


def _runs_out(region: np.ndarray, band: np.ndarray) -> bool:
    """Whether a grown region runs on out of the picture: more than 1 % of it in `band`."""
    return bool((region & band).sum() > 0.01 * region.sum())


def _still_features(
    noise: np.ndarray,
    mean: np.ndarray,
    shape: np.ndarray,
    bbox: tuple[int, int, int, int],
    factor: int,
) -> dict[str, float] | None:
    """Damping of a candidate's noise against the ring around it, and the checks on it."""
    x, y, bw, bh = bbox
    h, w = noise.shape
    r = max(3, STILL_RING // factor)
    x0, y0, x1, y1 = (
        max(0, x - r - 2),
        max(0, y - r - 2),
        min(w, x + bw + r + 2),
        min(h, y + bh + r + 2),
    )
    inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
    inside[y - y0 : y - y0 + bh, x - x0 : x - x0 + bw] = shape
    ring = dilate(inside, r) & ~dilate(inside, 2)
    core = cv2.erode(inside, np.ones((3, 3), np.uint8)) > 0
    if core.sum() < 10 or ring.sum() < 10:
        return None
    n = noise[y0:y1, x0:x1]
    m = mean[y0:y1, x0:x1]
    ref = float(np.median(n[ring]))
    damped = n < STILL_DAMPED * ref
    ratio = float(np.median(n[core])) / max(ref, 1e-3)
    contrast = float(damped[core].mean() - damped[ring].mean())
    rows, cols = np.nonzero(core)
    cy, cx = np.median(rows), np.median(cols)
    quarters = [
        damped[rows[sel], cols[sel]].mean()
        for sel in (
            (rows < cy) & (cols < cx),
            (rows < cy) & (cols >= cx),
            (rows >= cy) & (cols < cx),
            (rows >= cy) & (cols >= cx),
        )
        if sel.sum() >= 3
    ]
    clipped = float(((m[core] < 18) | (m[core] > 237)).mean())
    detail = np.abs(m - cv2.blur(m, (5, 5)))
    texture = float(np.median(detail[core])) / max(float(np.median(detail[ring])), 1e-3)
    feats = {
        "damping": ratio,
        "contrast": contrast,
        "quarter": float(min(quarters)) if quarters else 0.0,
        "clipped": clipped,
        "texture": texture,
        "ring_noise": ref,
        "border": _border(bbox, h, w),
        "still_mark": 1.0,
    }
    ok = (
        ref >= STILL_NOISE_FLOOR
        and ratio <= STILL_MAX_RATIO
        and contrast >= STILL_MIN_CONTRAST
        and feats["quarter"] >= STILL_MIN_QUARTER
        and clipped <= STILL_MAX_CLIPPED
        # inside a blend the picture keeps its detail, scaled like its noise (or the mark
        # brings its own strokes); a flat object of the scene is quiet and bare
        and texture >= 0.5 * max(ratio, 0.4)
    )
    feats["score"] = (
        1.0 + (STILL_MAX_RATIO - ratio) + (contrast - STILL_MIN_CONTRAST) if ok else 0.0
    )
    log.debug("still candidate %s %s", bbox, {k_: round(v, 2) for k_, v in feats.items()})
    return feats


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask.astype(np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = (flood == 0)[1:-1, 1:-1]
    return mask | holes


def _blend_features(
    frames: np.ndarray, comp: np.ndarray, bbox: tuple[int, int, int, int]
) -> dict[str, float]:
    """How the picture's changes pass through the candidate compared with its surroundings."""
    x, y, bw, bh = bbox
    t, h, w = frames.shape
    pad = max(6, min(bw, bh) // 2)
    x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(w, x + bw + pad), min(h, y + bh + pad)
    step = max(1, t // 32)
    crop = torch.from_numpy(np.ascontiguousarray(frames[::step, y0:y1, x0:x1]))
    inside = np.zeros((y1 - y0, x1 - x0), bool)
    inside[y - y0 : y - y0 + bh, x - x0 : x - x0 + bw] = comp
    hole = dilate(inside, 2)
    none = {
        "moving": 0.0,
        "local": 0.0,
        "ratio": 1.0,
        "corr": 0.0,
        "offset": 0.0,
        "change_damping": 1.0,
        "change_damped": 0.0,
    }
    if hole.all():
        return none
    known = torch.from_numpy(~hole).float()[None, None]
    fill = push_pull(crop[:, None], known)[:, 0]
    # compare like with like: the fill is smooth, so smooth the picture before correlating
    smooth = torch.nn.functional.avg_pool2d(
        crop[:, None], 5, stride=1, padding=2, count_include_pad=False
    )[:, 0]
    jc = smooth - smooth.mean(0)
    fc = fill - fill.mean(0)
    s_j = jc.pow(2).mean(0).sqrt()
    s_f = fc.pow(2).mean(0).sqrt()
    corr = (jc * fc).mean(0) / (s_j * s_f).clamp(min=1e-3)
    inside_t = torch.from_numpy(inside)
    n_inside = max(int(inside.sum()), 1)
    sel = inside_t & (s_f > MOTION_STD)
    moving = float(sel.sum()) / n_inside
    if int(sel.sum()) < 4:
        return none | {"moving": moving}
    # the same after dividing out global exposure changes: does real content move under it?
    gain = (fill.flatten(1).median(1).values + 1.0) / (
        fill.flatten(1).median(1).values.mean() + 1.0
    )
    fn = fill / gain[:, None, None]
    local = (
        float((inside_t & ((fn - fn.mean(0)).pow(2).mean(0).sqrt() > MOTION_STD)).sum()) / n_inside
    )
    slope = (jc * fc).mean(0) / s_f.pow(2).clamp(min=1e-3)
    mean_j = crop.mean(0)
    offset = (mean_j - slope * fill.mean(0)) / mean_j.clamp(min=1.0)
    # the changes at each pixel against those around it (unsmoothed: a thin stroke's
    # damping survives)
    damping = change_damping(crop, known)[sel]
    return {
        "moving": moving,
        "local": local,
        "ratio": float(torch.quantile(s_j[sel] / s_f[sel], 0.3)),
        "corr": float(corr[sel].median()),
        "offset": float(offset[sel].median()),
        "change_damping": float(torch.quantile(damping, 0.1)),
        "change_damped": float((damping < DAMPED_LEVEL).float().mean()),
    }


def change_damping(frames: torch.Tensor, known: torch.Tensor, floor: float = 1e-3) -> torch.Tensor:
    """Each pixel's temporal std over that of the pixels around it (the std map's fill from
    the `known` ones, at least `floor`)."""
    s = (frames - frames.mean(0)).pow(2).mean(0).sqrt()
    return s / push_pull(s[None, None], known)[0, 0].clamp(min=floor)


def _may_score(f: dict[str, float]) -> bool:
    """Whether a candidate's place and edges leave it a chance to score as a mark."""
    return f["border"] <= BORDER_BAND and f.get("edge_share", MIN_EDGE_SHARE) >= MIN_EDGE_SHARE


def _score(f: dict[str, float]) -> float:
    """≥ 1 means a mark: changes pass through scaled (semi-transparent) or stop at it (opaque)."""
    if f["moving"] < MIN_MOVING_SHARE or not _may_score(f):
        return 0.0
    # a global exposure change also shrinks the change of darker scenery: then only an
    # additive offset (the αW of a light mark) tells a blend from a darker object
    real_motion = f["local"] >= MIN_MOVING_SHARE or f["offset"] > 0.15
    # and a blend only adds (αW ≥ 0): inside, the picture is not much darker than 1−α
    # times what its surroundings predict; a window frame or a shadow is
    additive = f["offset"] > MIN_OFFSET
    if 0.12 <= f["ratio"] <= SCALED_RATIO and f["corr"] > MIN_CORR and real_motion and additive:
        return 1.0 + (SCALED_RATIO - f["ratio"]) + (f["corr"] - MIN_CORR)
    if f["ratio"] < 0.12 and f["local"] >= MIN_MOVING_SHARE:
        return 1.0 + (0.12 - f["ratio"])
    if faint_blend(f) and additive:
        return (
            1.0
            + (FAINT_MAX_DAMPING - f["change_damping"])
            + (f["change_damped"] - FAINT_MIN_DAMPED)
        )
    return 0.0


def faint_blend(f: Mapping[str, float]) -> bool:
    """Whether a candidate's features show a faint blend over a picture that moves all over
    (see FAINT_MAX_DAMPING), one whose changes the fill does not show scaled."""
    return (
        f.get("ratio", 1.0) > SCALED_RATIO
        and f.get("local", 0.0) >= FAINT_MIN_LOCAL
        and f.get("corr", 0.0) >= FAINT_MIN_CORR
        and f.get("edge_share", 0.0) >= FAINT_MIN_EDGE_SHARE
        and f.get("change_damping", 1.0) <= FAINT_MAX_DAMPING
        and f.get("change_damped", 0.0) >= FAINT_MIN_DAMPED
    )


def _refine(
    full: np.ndarray, bbox: tuple[int, int, int, int], factor: int
) -> tuple[Box | None, np.ndarray]:
    """The mark's mask at full resolution inside the (grown) candidate box."""
    t, h, w = full.shape
    x, y, bw, bh = bbox
    pad = 2 * factor + 2
    x0, y0 = max(0, x * factor - pad), max(0, y * factor - pad)
    x1, y1 = min(w, (x + bw) * factor + pad), min(h, (y + bh) * factor + pad)
    return _cropped(mark_mask_in_box(full, Box(x0, y0, x1 - x0, y1 - y0)), x0, y0)


def _cropped(mask: np.ndarray, x0: int, y0: int) -> tuple[Box | None, np.ndarray]:
    """A mask whose top-left pixel sits at (x0, y0) in the frame, cut to its set pixels:
    their box in frame pixels and the mask inside it; (None, empty) when none is set."""
    if not mask.any():
        return None, np.zeros((0, 0), bool)
    ys_, xs_ = np.nonzero(mask)
    bx0, by0, bx1, by1 = xs_.min(), ys_.min(), xs_.max() + 1, ys_.max() + 1
    return Box(x0 + int(bx0), y0 + int(by0), int(bx1 - bx0), int(by1 - by0)), mask[by0:by1, bx0:bx1]


def mark_mask_in_box(ys: np.ndarray, box: Box) -> np.ndarray:
    """Pixels of a box that belong to the mark, as a (box.h, box.w) mask.

    Two fingerprints, either suffices: persistent overlay structure (its strokes and what
    they enclose), and a picture whose changes are damped against those around the box
    (changes pass through a blend scaled by 1−α).
    """
    crop = ys[:, box.y : box.y + box.h, box.x : box.x + box.w].astype(np.float32)
    mean = crop.mean(0)
    strength = gradient_magnitude(mean)
    coherence = strength / (gradient_magnitude(crop).mean(0) + 1.0)
    edges = (strength > EDGE_THRESHOLD) & (coherence > 0.35)
    k = max(5, (min(box.w, box.h) // 12) | 1)
    shaped = cv2.morphologyEx(edges.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
    mask = _fill_holes(shaped.astype(bool))
    std = torch.from_numpy(np.ascontiguousarray(crop.std(0)))
    ring = np.zeros_like(mask)
    ring[:2, :] = ring[-2:, :] = ring[:, :2] = ring[:, -2:] = True
    ring &= ~mask
    if ring.any():
        around = push_pull(std[None, None], torch.from_numpy(ring).float()[None, None])[
            0, 0
        ].numpy()
        damped = (around > 2 * MOTION_STD) & (std.numpy() < 0.85 * around)
        opened = cv2.morphologyEx(
            damped.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)
        )
        mask |= opened.astype(bool)
    return dilate(mask, 2)


def _presence(track: Detection, grads: np.ndarray, factor: int) -> np.ndarray:
    """Per sample, how well the gradient in the track's box matches the track's own
    template (normalised cross-correlation, -1..1)."""
    rows, cols = _working(track.box, factor)
    patch = grads[:, rows, cols]
    template = patch[track.first_sample : track.last_sample + 1].mean(0)
    return np.array([_ncc(g, template) for g in patch], np.float32)


def _working(box: Box, factor: int) -> tuple[slice, slice]:
    """The rows and columns of a box (full-resolution pixels) at working resolution."""
    return (
        slice(box.y // factor, (box.y + box.h) // factor + 1),
        slice(box.x // factor, (box.x + box.w) // factor + 1),
    )


def _split_by_presence(track: Detection, grads: np.ndarray, factor: int) -> list[Detection]:
    """Cut a moving mark's track into the sample runs (of three or more) where its gradient
    template is present. A single sample without it between two with it is misread (the
    picture's own edges blur the match): a mark that jumps stays away for longer (a run of
    the cockatoo clip's jumping text cut in two there gave two mattes over one stay, and the
    second, dropped as a twin, left the mark up for 1.3 s)."""
    present = _presence(track, grads, factor) > NCC_PRESENT
    present[1:-1] |= present[:-2] & present[2:]
    return [
        Detection(track.box, track.mask, first, last, track.score, track.features)
        for first, last in _runs_of(present)
        if last - first >= 2
    ]
