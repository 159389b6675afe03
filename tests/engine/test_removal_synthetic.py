"""Detection, matting, inversion and inpainting on frames with a mark stamped in (truth known)."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from gpu.detect import (
    FAINT_MAX_DAMPING,
    FAINT_MIN_DAMPED,
    SCALED_RATIO,
    Detection,
    _blend_features,
    _split_by_presence,
    _two_levels,
    detect_marks,
)
from gpu.engine import _remove
from gpu.fill import push_pull
from gpu.matting import estimate_matte
from gpu.plan import _hand_over, _not_invertible, expand_box, plan_marks
from gpu.probe import VideoInfo
from gpu.regions import Box, region_box
from gpu.removal import Matte, PreparedMatte
from gpu.sampling import Samples
from gpu.shape import dilate
from gpu.video_io import FrameFormat
from tests.engine.synth import (
    Stamp,
    blend,
    coverage,
    drifting_frames,
    panning_frames,
    psnr,
    ring_mark,
    static_frames,
    text_mark,
    texture,
)

H, W, T = 144, 256, 40


def _remove_with_truth_box(
    frames: np.ndarray, stamp_alpha: np.ndarray, box: tuple[int, int, int, int]
):
    """Estimate the matte inside the (grown) true box and remove it; return (output, clean-crop slice)."""
    x, y, w, h = box
    crop = expand_box(Box(x, y, w, h), 8, W, H)
    sl = (slice(crop.y, crop.y + crop.h), slice(crop.x, crop.x + crop.w))
    marked = stamp_alpha[sl] > 0.01
    support = (
        torch.nn.functional.max_pool2d(torch.from_numpy(marked).float()[None, None], 5, 1, 2)[0, 0]
        > 0
    )
    ys = frames[:, sl[0], sl[1]]
    uv = np.full((len(ys), crop.h // 2, crop.w // 2), 128, np.uint8)
    est = estimate_matte(ys, uv, uv, support.numpy())
    matte = Matte(
        box=crop,
        alpha_y=est.alpha_y,
        a_y=est.a_y,
        alpha_c=est.alpha_c,
        a_u=est.a_u,
        a_v=est.a_v,
        opacity=est.opacity,
    )
    out = ys.copy()
    PreparedMatte(matte, torch.device("cpu"), (0.0, 255.0)).apply([out, uv.copy(), uv.copy()])
    return out, sl, est


@pytest.mark.parametrize("opacity", [0.5, 0.8, 1.0])
def test_detection_box_covers_the_mark(opacity: float) -> None:
    stamp = text_mark(H, W, opacity)
    found = detect_marks(blend(panning_frames(T), stamp))
    assert len(found) == 1
    share, area = coverage(found[0].box.as_list(), stamp.alpha)
    assert share >= 0.98 and area <= 2.0
    assert found[0].first_sample == 0 and found[0].last_sample == T - 1


def test_no_mark_on_a_panning_clip_is_reported_as_none() -> None:
    assert detect_marks(np.clip(panning_frames(T), 0, 255).astype(np.uint8)) == []


def test_static_scene_with_crisp_objects_and_motion_is_not_a_mark() -> None:
    assert detect_marks(np.clip(static_frames(T), 0, 255).astype(np.uint8)) == []


def test_a_faint_marks_changes_show_damped_against_those_around_each_pixel() -> None:
    """A large ring at 0.3 over a drifting picture: measured against the fill of its whole
    box its changes are not scaled (the fill averages the changes around it away), but
    against the changes around each pixel they are, and the unmarked picture's are not."""
    frames = drifting_frames(48)
    stamp = ring_mark(160, 200, 0.3, centre=(100, 80), radius=35, thickness=12)
    w, h = stamp.box[2:]
    comp = np.ones((h, w), bool)
    marked = _blend_features(blend(frames, stamp).astype(np.float32), comp, stamp.box)
    unmarked = _blend_features(np.round(frames), comp, stamp.box)
    assert marked["ratio"] > SCALED_RATIO
    assert marked["change_damping"] <= FAINT_MAX_DAMPING
    assert marked["change_damped"] >= FAINT_MIN_DAMPED
    assert unmarked["change_damping"] > FAINT_MAX_DAMPING
    assert unmarked["change_damped"] < FAINT_MIN_DAMPED / 2


@pytest.mark.parametrize(("opacity", "max_err"), [(0.3, 0.12), (0.5, 0.1), (0.8, 0.06)])
def test_alpha_estimate_is_close_to_the_truth(opacity: float, max_err: float) -> None:
    stamp = text_mark(H, W, opacity)
    frames = blend(panning_frames(T), stamp)
    _out, sl, est = _remove_with_truth_box(frames, stamp.alpha, stamp.box)
    truth = stamp.alpha[sl]
    marked = truth > 0.05
    assert float(np.abs(est.alpha_y - truth)[marked].mean()) < max_err
    assert est.opacity == pytest.approx(opacity, abs=0.15)


@pytest.mark.parametrize("opacity", [0.3, 0.5, 0.8])
def test_inversion_recovers_the_picture_under_a_semi_transparent_mark(opacity: float) -> None:
    clean = panning_frames(T)
    stamp = text_mark(H, W, opacity)
    frames = blend(clean, stamp)
    out, sl, _ = _remove_with_truth_box(frames, stamp.alpha, stamp.box)
    truth = np.clip(clean[:, sl[0], sl[1]] + 0.5, 0, 255).astype(np.uint8)
    before = psnr(frames[:, sl[0], sl[1]], truth)
    after = psnr(out, truth)
    assert after > 38.0 and after > before + 15.0


def test_opaque_mark_is_inpainted_without_flicker() -> None:
    clean = panning_frames(T)
    stamp = text_mark(H, W, 1.0)
    out, sl, est = _remove_with_truth_box(blend(clean, stamp), stamp.alpha, stamp.box)
    truth = np.clip(clean[:, sl[0], sl[1]] + 0.5, 0, 255).astype(np.uint8)
    assert est.opacity > 0.9
    assert psnr(out, truth) > 33.0
    flicker_out = np.abs(np.diff(out.astype(np.float32), axis=0)).mean()
    flicker_clean = np.abs(np.diff(truth.astype(np.float32), axis=0)).mean()
    assert flicker_out <= 1.2 * flicker_clean


def test_an_opaque_mark_found_without_the_user_is_filled_not_inverted() -> None:
    """Found without the user, a mark's α is pulled towards 0 where the picture's changes
    are modest (no level-shift prior stands in); an opaque mark must still read as opaque,
    or its core is inverted (noise scaled up, the mark's ghost left) instead of filled."""
    clean = panning_frames(T)
    stamp = text_mark(H, W, 1.0)
    frames = blend(clean, stamp)
    [matte] = plan_marks(*_sampled(frames))
    assert matte.method == "invert+inpaint" and matte.opacity > 0.9

    box = matte.box
    rows, cols = slice(box.y, box.y + box.h), slice(box.x, box.x + box.w)
    out = frames[:, rows, cols].copy()
    uv = np.full((T, box.h // 2, box.w // 2), 128, np.uint8)
    PreparedMatte(matte, torch.device("cpu"), (16.0, 235.0)).apply([out, uv.copy(), uv.copy()])
    truth = np.clip(clean[:, rows, cols] + 0.5, 0, 255).astype(np.uint8)
    assert psnr(out, truth) > 39.0  # inverted as 0.57 opaque: 38.2 dB


def test_pixels_the_mark_never_touches_pass_through_unchanged() -> None:
    stamp = text_mark(H, W, 0.5)
    frames = blend(panning_frames(T), stamp)
    out, sl, est = _remove_with_truth_box(frames, stamp.alpha, stamp.box)
    untouched = est.alpha_y == 0
    grown = (
        torch.nn.functional.max_pool2d(torch.from_numpy(~untouched).float()[None, None], 5, 1, 2)[
            0, 0
        ]
        > 0
    )
    far = ~grown.numpy()
    assert far.any()
    assert np.array_equal(out[:, far], frames[:, sl[0], sl[1]][:, far])


def _filled_block() -> Matte:
    """A 48x40 matte filled whole (α = 1, no αW) over a 16x12 block at (16, 14)."""
    alpha = np.zeros((40, 48), np.float32)
    alpha[14:26, 16:32] = 1.0
    chroma = np.zeros((20, 24), np.float32)
    return Matte(
        box=Box(0, 0, 48, 40),
        alpha_y=alpha,
        a_y=np.zeros_like(alpha),
        alpha_c=chroma,
        a_u=chroma,
        a_v=chroma,
        opacity=1.0,
        method="inpaint",
    )


def test_a_mark_filled_whole_is_not_grown_into_the_picture_around_it() -> None:
    """A matte filled whole (α = 1 on the mark's shape with its rim, as a still mark's is)
    has no anti-aliased rim left outside it: the hole is that shape, not a pixel more, so
    the pixels next to it are the fill's known surroundings and come back unchanged."""
    frames = np.clip(panning_frames(4), 0, 255).astype(np.uint8)[:, :40, :48]
    matte = _filled_block()
    out = frames.copy()
    uv = np.full((4, 20, 24), 128, np.uint8)
    PreparedMatte(matte, torch.device("cpu"), (0.0, 255.0)).apply([out, uv.copy(), uv.copy()])
    ring = np.zeros((40, 48), bool)
    ring[13:27, 15:33] = True
    ring[14:26, 16:32] = False  # the pixels just outside the shape
    assert np.array_equal(out[:, ring], frames[:, ring])
    assert not np.array_equal(out[:, 14:26, 16:32], frames[:, 14:26, 16:32])


def test_a_filled_mark_is_told_present_by_how_it_looked() -> None:
    """Near a mark's coming and going each frame is judged on its own. A mark that is
    filled has no αW to predict it by (a still background gives none; its α is 1): such a
    frame shows it when it looks as the samples that showed it did (every frame of a
    jumping mark's first place on the car clip's asphalt was judged without it, and the
    mark stayed up to 0.4 s after each jump)."""
    clean = np.clip(panning_frames(6), 0, 255).astype(np.uint8)[:, :40, :48]
    marked = clean.copy()
    marked[:, 14:26, 16:32] = np.clip(0.6 * 230 + 0.4 * clean[:, 14:26, 16:32], 0, 255)
    seen = np.median(marked, axis=0).astype(np.float32)
    grey = np.full_like(seen, 128)
    matte = replace(_filled_block(), reference=np.stack([seen, grey, grey]))
    prepared = PreparedMatte(matte, torch.device("cpu"), (0.0, 255.0))
    assert prepared.present(marked).all()
    assert not prepared.present(clean).any()


def _assert_found_at_each_place(clean: np.ndarray, opacity: float) -> None:
    """A mark at the top left for the first half of `clean`, the bottom right after: each
    place found over its own time range."""
    half = len(clean) // 2
    first, second = text_mark(H, W, opacity, "top-left"), text_mark(H, W, opacity, "bottom-right")
    frames = np.concatenate([blend(clean[:half], first), blend(clean[half:], second)])
    found = sorted(detect_marks(frames), key=lambda d: d.first_sample)
    assert len(found) == 2
    spans = ((0, half - 1), (half, len(clean) - 1))
    for det, stamp, (lo, hi) in zip(found, (first, second), spans, strict=True):
        share, area = coverage(det.box.as_list(), stamp.alpha)
        assert share >= 0.98 and area <= 2.0
        assert abs(det.first_sample - lo) <= 2 and abs(det.last_sample - hi) <= 2


def test_mark_that_jumps_between_corners_is_found_per_time_range() -> None:
    _assert_found_at_each_place(panning_frames(64), 0.8)


@pytest.mark.parametrize("comes_in", [True, False], ids=["comes-in", "goes-away"])
def test_a_mark_for_part_of_the_clip_is_found_over_that_part(comes_in: bool) -> None:
    """A logo that comes in after an intro (or leaves before the end) stays in one place:
    it hands over to no other place, as a jumping mark does, and was not found at all."""
    clean, stamp = panning_frames(64), text_mark(H, W, 0.6, "top-right")
    start, end = (24, 63) if comes_in else (0, 39)
    frames = clean.copy()
    frames[start : end + 1] = blend(clean[start : end + 1], stamp)
    (det,) = detect_marks(np.clip(frames + 0.5, 0, 255).astype(np.uint8))
    share, area = coverage(det.box.as_list(), stamp.alpha)
    assert share >= 0.98 and area <= 2.0
    assert abs(det.first_sample - start) <= 2 and abs(det.last_sample - end) <= 2


def test_a_jumping_mark_is_followed_to_a_place_where_the_picture_stands_still() -> None:
    """At its second place nothing moves under the mark, so the blend fingerprint is silent
    there; its shape, the same as at its first place, shows where it went."""
    clean = panning_frames(64)
    clean[32:, H // 2 :, W // 2 :] = clean[32, H // 2 :, W // 2 :]  # a parked car, say
    _assert_found_at_each_place(clean, 0.6)


def test_a_matte_that_would_amplify_the_pictures_changes_is_not_inverted() -> None:
    """Where α is overestimated, inverting scales the picture's changes up by
    (1 − α_true) / (1 − α) against those around the mark: such a matte is filled instead."""
    stamp = text_mark(H, W, 0.3)
    frames = blend(panning_frames(T), stamp)
    x, y, w, h = stamp.box
    crop = expand_box(Box(x, y, w, h), 8, W, H)
    ys = frames[:, crop.y : crop.y + crop.h, crop.x : crop.x + crop.w]
    _out, _sl, est = _remove_with_truth_box(frames, stamp.alpha, stamp.box)
    assert not _not_invertible(est, ys)
    right = est.alpha_y
    est.alpha_y = np.where(right > 0, 0.75, 0.0).astype(np.float32)  # 1−α: 0.25, not 0.7
    assert _not_invertible(est, ys)
    # overestimated over patches only (every fourth row of the mark), with the αW such an
    # estimate comes with (the inverted pixels stay in range, the median pixel is right)
    patches = (right > 0) & (np.arange(right.shape[0])[:, None] % 4 == 0)
    est.alpha_y = np.where(patches, 0.75, right).astype(np.float32)
    est.a_y = np.where(patches, 0.75 * np.median(ys, 0), est.a_y).astype(np.float32)
    assert _not_invertible(est, ys)


def test_push_pull_fills_a_hole_smoothly_from_its_surroundings() -> None:
    ramp = torch.linspace(0, 100, 64).repeat(32, 1)[None, None]
    known = torch.ones(1, 1, 32, 64)
    known[..., 10:20, 20:40] = 0
    filled = push_pull(ramp * known, known)
    assert torch.allclose(filled[..., known[0, 0] > 0], ramp[..., known[0, 0] > 0])
    assert float((filled - ramp)[..., 10:20, 20:40].abs().mean()) < 6.0


def _sampled(ys: np.ndarray) -> tuple[Samples, VideoInfo]:
    """Luma frames (T, H, W) as the engine's samples of a 20 fps clip (grey chroma)."""
    fmt = FrameFormat(W, H, b"YUV4MPEG2 W256 H144 F20:1 C420jpeg\n", full_range=False)
    frames = np.full((len(ys), fmt.frame_bytes), 128, np.uint8)
    fmt.planes(frames)[0][...] = ys
    samples = Samples(frames=frames, indices=np.arange(len(ys)), fmt=fmt, clip_frames=len(ys))
    info = VideoInfo(
        width=W, height=H, fps=20.0, frames=len(ys), duration_s=len(ys) / 20.0, has_audio=False
    )
    return samples, info


def _alpha_on_frame(matte: Matte) -> np.ndarray:
    """A matte's luma α placed in a whole frame."""
    canvas = np.zeros((H, W), np.float32)
    canvas[matte.box.y : matte.box.y + matte.box.h, matte.box.x : matte.box.x + matte.box.w] = (
        matte.alpha_y
    )
    return canvas


def test_a_jumping_mark_takes_the_matte_of_its_first_place_where_the_picture_stands_still() -> None:
    """Under the mark's second place nothing moves, so α cannot be measured there; it is the
    same mark as at its first place, whose matte (measured where the picture moved) is moved
    over to it, to where its shape matches: the same α over the mark's second place."""
    clean = panning_frames(64)
    clean[32:, H // 2 :, W // 2 :] = clean[32, H // 2 :, W // 2 :]  # a parked car, say
    first, second = text_mark(H, W, 0.6, "top-left"), text_mark(H, W, 0.6, "bottom-right")
    ys = np.concatenate([blend(clean[:32], first), blend(clean[32:], second)])
    samples, info = _sampled(ys)
    mattes = sorted(plan_marks(samples, info), key=lambda m: m.start_frame)
    # the frames next to the jump are judged one by one (PreparedMatte.present)
    assert [(m.start_frame, m.end_frame) for m in mattes] == [(0, 33), (31, None)]
    assert [m.unsure for m in mattes] == [((31, 33),), ((31, 33),)]
    canvases = [_alpha_on_frame(m) for m in mattes]
    dx, dy = second.box[0] - first.box[0], second.box[1] - first.box[1]
    assert canvases[0].max() > 0
    assert np.array_equal(canvases[1][dy:, dx:], canvases[0][: H - dy, : W - dx])
    assert mattes[1].method == mattes[0].method


def test_a_box_around_both_places_of_a_jumping_mark_removes_each_over_its_own_time() -> None:
    """A user who boxes the whole area a jumping mark visits (the two corners it jumps
    between) means the mark: each place is removed over its own time range, as found, not
    the box as one mark over the whole clip (which was filled, or inverted where the mark
    had gone: car/white/0.5/moving, box given, 32.8 dB in the box, found 42.8)."""
    clean = panning_frames(64)
    first, second = text_mark(H, W, 0.6, "top-left"), text_mark(H, W, 0.6, "bottom-right")
    ys = np.concatenate([blend(clean[:32], first), blend(clean[32:], second)])
    samples, info = _sampled(ys)
    x0, y0 = first.box[0], first.box[1]
    x1, y1 = second.box[0] + second.box[2], second.box[1] + second.box[3]
    mattes = sorted(
        plan_marks(samples, info, explicit=Box(x0, y0, x1 - x0, y1 - y0)),
        key=lambda m: m.start_frame,
    )
    assert [(m.start_frame, m.end_frame) for m in mattes] == [(0, 33), (31, None)]
    for matte, stamp in zip(mattes, (first, second), strict=True):
        share, area = coverage(matte.reported_box.as_list(), stamp.alpha)
        assert share >= 0.98 and area <= 2.0


def _still_scene(rng: np.random.Generator) -> np.ndarray:
    """A scene that stands still (fine grain, a road marking), before its sensor noise."""
    scene = 0.3 * texture(H, W, 5)[:H, :W] + 80 + 4 * rng.normal(0, 1, (H, W)).astype(np.float32)
    cv2.line(scene, (2, 30), (30, 18), 230.0, 3)
    return scene


def _noisy(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return picture + rng.normal(0, 1.5, picture.shape).astype(np.float32)


def _found_at_each_stay(frames: np.ndarray, places: list[Stamp], stay: int) -> None:
    """Detection finds the mark that visits `places` in turn, `stay` frames each, at each
    place over its own time ranges (its box over the mark there, at most 1.5× its area)."""
    found = sorted(detect_marks(frames), key=lambda d: d.first_sample)
    assert [(d.first_sample, d.last_sample) for d in found] == [
        (first, first + stay - 1) for first in range(0, len(frames), stay)
    ]
    for i, det in enumerate(found):
        share, area = coverage(det.box.as_list(), places[i % len(places)].alpha)
        assert share >= 0.98 and area <= 1.5


def _asphalt_with_a_mark_jumping(phase: int) -> tuple[np.ndarray, Stamp, Stamp]:
    """64 frames of a still scene (fine grain, road markings, sensor noise) with something
    moving under the bottom right only, and a mark at 0.6 that jumps between the top left
    and the bottom right every `phase` frames."""
    rng = np.random.default_rng(3)
    scene = _still_scene(rng)
    passing = texture(H, W, 9)
    first, second = text_mark(H, W, 0.6, "top-left"), text_mark(H, W, 0.6, "bottom-right")
    frames = np.empty((64, H, W), np.uint8)
    for t in range(64):
        picture = _noisy(scene, rng)
        picture[H - 50 :, W - 110 :] = passing[3 * t : 3 * t + 50, 2 * t : 2 * t + 110]
        frames[t] = blend(picture, first if (t // phase) % 2 == 0 else second)
    return frames, first, second


def test_a_mark_jumping_over_a_still_scene_is_followed_by_its_coming_and_going() -> None:
    """Where the picture stands still the mark's edges at its other place are faint beside
    the scenery's and its runs blur (white text jumping between two corners of the car
    clip's asphalt was not found at all); the level of its pixels switching between two
    steady values gives each place's time ranges and, the still scenery cancelling out, its
    shape at both (the road marking beside it stays out)."""
    frames, first, second = _asphalt_with_a_mark_jumping(phase=16)
    _found_at_each_stay(frames, [first, second], 16)


def test_a_mark_jumping_over_a_picture_that_stands_still_all_over_is_found() -> None:
    """Nothing moves anywhere (a product shot, a talking head's background): no time
    segment shows a blend to start a track from, and "Sora" jumping between the corners
    of four still engine_marks clips was not found. Its pixels switch between two steady
    levels at the same samples at both places (one up where the other is down), which
    gives each place and its time ranges."""
    rng = np.random.default_rng(7)
    scene = _still_scene(rng)
    first, second = text_mark(H, W, 0.7, "top-left"), text_mark(H, W, 0.7, "bottom-right")
    frames = np.stack(
        [blend(_noisy(scene, rng), first if (t // 16) % 2 == 0 else second) for t in range(64)]
    )
    _found_at_each_stay(frames, [first, second], 16)


def test_a_mark_visiting_three_places_over_a_still_picture_is_found_at_each() -> None:
    """Each place of a mark that visits three switches at the samples of its own stays, so
    no one pattern of samples holds two of them (the pairing of two places found nothing):
    the places whose stays lie apart in time are paired each with the next."""
    rng = np.random.default_rng(9)
    scene = _still_scene(rng)
    places = [text_mark(H, W, 0.7, corner) for corner in ("top-left", "bottom-right", "top-right")]
    frames = np.stack([blend(_noisy(scene, rng), places[(t // 16) % 3]) for t in range(96)])
    _found_at_each_stay(frames, places, 16)


def test_a_mark_visiting_three_places_one_over_a_moving_picture_is_found_at_each() -> None:
    """The place where the picture moves under the mark gives a track, and its toggle
    pairs it with one of the other two: that place's runs took the third's stays too (the
    top right was removed while the mark was at the top left, which was never removed).
    Each place now keeps the stays its own pixels show it in."""
    rng = np.random.default_rng(3)
    scene = _still_scene(rng)
    passing = texture(H, W, 9)
    places = [text_mark(H, W, 0.6, corner) for corner in ("top-left", "bottom-right", "top-right")]
    frames = []
    for t in range(96):
        picture = _noisy(scene, rng)
        k = t % 64
        picture[H - 50 :, W - 110 :] = passing[3 * k : 3 * k + 50, 2 * k : 2 * k + 110]
        frames.append(blend(picture, places[(t // 16) % 3]))
    found = sorted(detect_marks(np.stack(frames)), key=lambda d: d.first_sample)
    assert [(d.first_sample, d.last_sample) for d in found] == [
        (first, first + 15) for first in range(0, 96, 16)
    ]
    for i, det in enumerate(found):
        share, area = coverage(det.box.as_list(), places[i % 3].alpha)
        assert share >= 0.8 and area <= 1.5


def test_a_mark_that_jumps_over_a_still_picture_is_filled_from_it_as_seen_without_the_mark() -> (
    None
):
    """Where the picture stands still, each place of a jumping mark shows it as it is in
    the samples the mark spends elsewhere: its hole is filled from that (levelled to each
    frame's pixels around it), not guessed from around it (23.1 and 38.5 dB at its two
    places from the fill, 47.4 now). Where the picture moves under it, what it was then
    is not what it is now: no such fill."""
    rng = np.random.default_rng(7)
    scene = _still_scene(rng)
    first, second = text_mark(H, W, 1.0, "top-left"), text_mark(H, W, 1.0, "bottom-right")
    still = np.stack([_noisy(scene, rng) for _ in range(64)])
    moving = panning_frames(64).astype(np.float32)
    for clean, plated in ((still, True), (moving, False)):
        ys = np.stack(
            [blend(c, first if (t // 16) % 2 == 0 else second) for t, c in enumerate(clean)]
        )
        samples, info = _sampled(ys)
        mattes = plan_marks(samples, info)
        assert len(mattes) == 4
        assert all((m.plate is not None) == plated for m in mattes)
        if not plated:
            continue
        frames = samples.frames.copy()
        _remove(
            frames,
            0,
            samples.fmt,
            [PreparedMatte(m, torch.device("cpu"), (0.0, 255.0)) for m in mattes],
        )
        out = samples.fmt.planes(frames)[0]
        for stamp in (first, second):
            x, y, w, h = stamp.box
            truth = clean[:, y : y + h, x : x + w].clip(0, 255).round()
            assert psnr(out[:, y : y + h, x : x + w].astype(np.float32), truth) >= 44.0


def test_scenery_that_comes_and_goes_over_a_still_picture_is_no_jumping_mark() -> None:
    """What switches between two steady levels over a still picture without being a mark:
    a hand held at one of two places a little apart (a signer's); a lamp that lights while
    a flickering one elsewhere dims (the change is undone there, but its pixels do not
    switch at the lamp's samples); two shots that alternate (every pixel switches)."""
    rng = np.random.default_rng(8)
    scene = _still_scene(rng)
    hand = np.zeros((H, W), np.float32)
    cv2.ellipse(hand, (180, 80), (9, 24), 10, 0, 360, 1.0, -1)
    moved = np.roll(hand, -40, axis=1)
    lamp, dimmed = np.zeros((H, W), np.float32), np.zeros((H, W), np.float32)
    cv2.circle(lamp, (40, 110), 10, 1.0, -1)
    cv2.circle(dimmed, (200, 40), 10, 1.0, -1)
    lit = [on for on in (0, 1) for _ in range(12)] * 2
    clips = {
        "hand": [scene * (1 - h) + 200 * h for h in (hand, moved) for _ in range(12)] * 2,
        "lamps": [
            scene * (1 - lamp * on - dimmed)
            + 250 * lamp * on
            + dimmed * rng.normal(150 - 60 * on, 12)
            for on in lit
        ],
        "shots": [picture for picture in (scene, 255 - scene) for _ in range(12)] * 2,
    }
    for name, pictures in clips.items():
        frames = np.stack([_noisy(p, rng).clip(0, 255).astype(np.uint8) for p in pictures])
        assert detect_marks(frames) == [], name


def test_one_sample_that_misses_a_stay_does_not_cut_it_in_two() -> None:
    """A sample whose edges match a jumping mark's poorly between two that match well is
    misread (the picture's own edges blur the match): cut there, one stay gave two mattes,
    and the second, dropped as a twin of the first, left the mark up for 1.3 s."""
    rng = np.random.default_rng(5)
    grads = rng.random((24, 40, 60)).astype(np.float32)
    shape = np.zeros((12, 20), np.float32)
    shape[3:9, 2:18] = 8.0
    shown = [i for i in range(4, 20) if i != 11]
    grads[shown, 10:22, 20:40] += shape
    track = Detection(Box(20, 10, 20, 12), np.ones((12, 20), bool), 4, 19, 1.5)
    runs = _split_by_presence(track, grads, 1)
    assert [(r.first_sample, r.last_sample) for r in runs] == [(4, 19)]


def test_a_mark_whose_level_differs_between_its_stays_still_toggles() -> None:
    """The light changing between a jumping mark's stays at one place changes its level
    there (21 and 35 for the matplotlib logo over the car clip's asphalt, which failed the
    two-level test on their pooled spread); the picture without it stays steady. A level
    that drifts with noise and no steady state is no toggle."""
    rng = np.random.default_rng(6)
    away, first, second = (rng.normal(m, s, 12) for m, s in ((1, 0.3), (21, 0.5), (35, 2)))
    level = np.concatenate([away, first, rng.normal(1, 0.3, 12), second])
    on = _two_levels(level)
    assert on is not None
    assert on.tolist() == [False] * 12 + [True] * 12 + [False] * 12 + [True] * 12
    assert _two_levels(rng.normal(0, 5, 48) + np.linspace(0, 20, 48)) is None


def test_only_finds_that_hand_over_to_each_other_are_a_jumping_mark() -> None:
    """Places found one after another over the whole clip (a sample or two apart) are one
    mark jumping; a find over part of it alone, or finds with a gap between, are not."""

    def found(first: int, last: int) -> Detection:
        return Detection(
            box=Box(0, 0, 8, 8),
            mask=np.ones((8, 8), bool),
            first_sample=first,
            last_sample=last,
            score=1.0,
        )

    assert _hand_over([found(25, 47), found(0, 23)], 48)
    assert not _hand_over([found(0, 23)], 48)  # comes and goes
    assert not _hand_over([found(0, 15), found(30, 47)], 48)  # a gap: something else


def _comes_in(start: int) -> tuple[np.ndarray, Stamp]:
    """A panning clip of 64 frames with a text mark at the top right from frame `start`."""
    clean, stamp = panning_frames(64), text_mark(H, W, 0.6, "top-right")
    frames = clean.copy()
    frames[start:] = blend(clean[start:], stamp)
    return np.clip(frames + 0.5, 0, 255).astype(np.uint8), stamp


def test_a_box_around_a_mark_that_comes_in_removes_it_from_when_it_came() -> None:
    """A logo that comes in after an intro, boxed by the user: removed over its own time
    range, as found, not over the intro too (where there is nothing to remove, and the
    box's one matte filled or inverted the picture)."""
    ys, stamp = _comes_in(24)
    samples, info = _sampled(ys)
    x, y, w, h = stamp.box
    (matte,) = plan_marks(samples, info, explicit=Box(x - 4, y - 4, w + 8, h + 8))
    assert abs(matte.start_frame - 24) <= 3 and matte.end_frame is None


def test_a_find_over_part_of_the_clip_in_a_much_larger_box_leaves_the_box_one_mark() -> None:
    """The same find in a box four times its size may be something else beside the user's
    mark: the box stays one mark over the whole clip."""
    ys, stamp = _comes_in(24)
    samples, info = _sampled(ys)
    (matte,) = plan_marks(samples, info, explicit=Box(W // 2, 0, W // 2, H // 2))
    assert (matte.start_frame, matte.end_frame) == (0, None)


def test_a_box_around_a_mark_over_the_whole_clip_is_that_marks_one_matte() -> None:
    """The same box over a mark that stays put: the box's own matte, over the whole clip."""
    clean = panning_frames(64)
    stamp = text_mark(H, W, 0.6, "bottom-right")
    samples, info = _sampled(blend(clean, stamp))
    x, y, w, h = stamp.box
    (matte,) = plan_marks(samples, info, explicit=Box(x - 4, y - 4, w + 8, h + 8))
    assert (matte.start_frame, matte.end_frame, matte.mark_box) == (0, None, None)


def test_an_opaque_marks_box_pixels_the_matte_sees_clear_of_it_are_not_filled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In a user's box an opaque mark's support (its shape by level shift, with a rim) is
    filled where the matte sees the mark; a part of the support the matte finds clear of
    it (scenery the level shift flagged, here put in by hand) keeps the picture."""
    import gpu.plan

    clean = panning_frames(T)
    stamp = text_mark(H, W, 1.0, "bottom-right")
    ys = blend(clean, stamp).astype(np.uint8)
    x, y, w, h = stamp.box
    shape = gpu.plan._box_mask
    # the box's pixels 2 or more from the letters (inside the O, between the letters)
    patch = ~dilate(stamp.alpha[y : y + h, x : x + w] > 0, 2)

    def with_scenery(median, box, crop):  # type: ignore[no-untyped-def]
        return shape(median, box, crop) | patch

    monkeypatch.setattr(gpu.plan, "_box_mask", with_scenery)
    samples, info = _sampled(ys)
    assert patch.sum() > 40
    (matte,) = plan_marks(samples, info, explicit=Box(x, y, w, h))
    assert matte.method == "invert+inpaint"
    canvas = _alpha_on_frame(matte)
    assert (canvas[stamp.alpha > 0.9] == 1.0).all()
    assert (canvas[y : y + h, x : x + w][patch] < 0.5).all()


def test_a_logo_in_a_letterbox_bar_is_found_in_the_named_corner_not_the_pictures_edge() -> None:
    """The picture's edge along a black bar is as persistent as a mark's: a corner search
    took it for the mark (and the fill smeared the picture into the bar)."""
    frames = _barred(panning_frames(T), "letterbox", 30)
    stamp = text_mark(H, W, 0.8, corner="bottom-right")
    assert stamp.box[1] >= H - 30  # the logo sits in the bottom bar
    found = detect_marks(blend(frames, stamp), search=region_box("bottom-right", W, H))
    assert len(found) == 1
    share, _area = coverage(found[0].box.as_list(), stamp.alpha)
    assert share >= 0.98
    assert found[0].box.y >= H - 32  # not the picture above the bar


def _barred(frames: np.ndarray, side: str, depth: int) -> np.ndarray:
    """The frames with black (16) bars `depth` deep: top and bottom ("letterbox") or left
    and right ("pillarbox")."""
    if side == "letterbox":
        frames[:, :depth] = frames[:, -depth:] = 16.0
    else:
        frames[:, :, :depth] = frames[:, :, -depth:] = 16.0
    return frames


@pytest.mark.parametrize("corner", ["top-left", "top-right", "bottom-left", "bottom-right"])
@pytest.mark.parametrize("side", ["letterbox", "pillarbox"])
def test_a_logo_on_a_bar_is_found_without_the_user(side: str, corner: str) -> None:
    """Nothing moves under a mark on a black bar, so neither the blend's fingerprint nor
    the damped noise shows it; it was found only in a corner the user named."""
    frames = _barred(panning_frames(T), side, 30 if side == "letterbox" else 90)
    stamp = text_mark(H, W, 0.8, corner=corner)
    found = detect_marks(blend(frames, stamp))
    assert len(found) == 1, [d.box for d in found]
    share, area = coverage(found[0].box.as_list(), stamp.alpha)
    assert share >= 0.98 and area <= 2.0


def test_subtitles_on_a_bar_come_and_go_and_are_not_marks() -> None:
    frames = _barred(panning_frames(T), "letterbox", 30)
    lines = [
        text_mark(H, W, 1.0, corner, text)
        for corner, text in (
            ("bottom-left", "ONE"),
            ("bottom-right", "TWO"),
            ("bottom-left", "SIX"),
            ("bottom-right", "TEN"),
            ("bottom-left", "AND"),
        )
    ]
    spoken = np.concatenate(
        [blend(part, lines[i % len(lines)]) for i, part in enumerate(np.array_split(frames, 8))]
    )
    assert detect_marks(spoken) == []


def test_each_frame_near_a_marks_coming_and_going_is_judged_on_its_own() -> None:
    """Samples lie frames apart, so a mark's time range is only known to within them: near
    its ends the frames without it must come back untouched (an inverted frame without the
    mark shows a dark ghost of it) and those with it cleaned."""
    clean = panning_frames(24)
    stamp = text_mark(H, W, 0.6, "top-right")
    crop = expand_box(Box(*stamp.box), 8, W, H)
    rows, cols = crop.slices_in(Box(0, 0, W, H))
    alpha = stamp.alpha[rows, cols]
    matte = Matte(
        box=crop,
        alpha_y=alpha,
        a_y=alpha * stamp.colour,
        alpha_c=alpha[::2, ::2],
        a_u=alpha[::2, ::2] * 128,
        a_v=alpha[::2, ::2] * 128,
        opacity=0.6,
    )
    prepared = PreparedMatte(matte, torch.device("cpu"), (0.0, 255.0))
    marked = blend(clean, stamp)[:, rows, cols]
    bare = np.clip(clean + 0.5, 0, 255).astype(np.uint8)[:, rows, cols]
    assert prepared.present(marked).all()
    assert not prepared.present(bare).any()


def test_one_mark_found_twice_is_removed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two detections of one mark at the same time would invert its blend twice, leaving
    the picture worse than the mark did: the plan keeps one matte per place and time."""
    import gpu.plan

    stamp = text_mark(H, W, 0.6, "top-right")
    samples, info = _sampled(blend(panning_frames(T), stamp))
    found = detect_marks(samples.planes()[0])
    assert len(found) == 1
    twin = replace(found[0], box=found[0].box.moved(2, 0), mask=found[0].mask.copy())
    monkeypatch.setattr(gpu.plan, "detect_marks", lambda ys, search=None: [found[0], twin])
    (matte,) = plan_marks(samples, info)
    assert matte.box.shared_area(Box(*stamp.box)) > 0
