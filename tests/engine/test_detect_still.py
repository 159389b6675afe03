"""Detection on a still background (static camera): the blend damps the picture's noise.

The clips are a fixed textured scene whose frame-to-frame noise follows its detail, as a
codec's does (flat areas carry less noise than textured ones), so a flat object of the
scene is as quiet as a mark and only the other fingerprints tell them apart.
"""

from __future__ import annotations

import cv2
import numpy as np

from gpu.detect import (
    Detection,
    _still_features,
    _still_region,
    detect_marks,
    noise_map,
    scenes,
)
from gpu.plan import _damped
from tests.engine.synth import Stamp, blend, coverage, panning_frames, text_mark, texture

H, W, T = 144, 256, 40


def _scene(seed: int = 3) -> np.ndarray:
    """A fixed picture with fine detail (float32, about 30..215)."""
    rng = np.random.default_rng(seed)
    fine = cv2.GaussianBlur(rng.normal(0, 1, (H, W)).astype(np.float32), (0, 0), 1.0) * 5
    return np.clip(texture(H, W, seed)[:H, :W] + fine, 30, 215).astype(np.float32)


def _still_clip(scene: np.ndarray, seed: int = 4) -> np.ndarray:
    """T frames of a static camera: noise whose strength follows the scene's local detail."""
    rng = np.random.default_rng(seed)
    detail = cv2.blur(np.abs(scene - cv2.blur(scene, (3, 3))), (3, 3))
    sigma = 0.2 + 1.0 * detail
    return np.stack(
        [scene + rng.normal(0, 1, scene.shape).astype(np.float32) * sigma for _ in range(T)]
    )


def _found(frames: np.ndarray) -> list[Detection]:
    return detect_marks(np.clip(frames + 0.5, 0, 255).astype(np.uint8))


def _cover(found: Detection, stamp: Stamp) -> tuple[float, float]:
    b = found.box
    return coverage((b.x, b.y, b.w, b.h), stamp.alpha)


def test_scene_noise_follows_detail() -> None:
    """The premise of the no-mark cases: a flat patch of the scene is quieter than texture."""
    scene = _scene()
    scene[90:125, 180:235] = 120.0
    frames = _still_clip(scene)
    noise = np.diff(frames, axis=0).std(0)
    assert np.median(noise[95:120, 185:230]) < 0.6 * np.median(noise[20:60, 60:200])


def test_a_semi_transparent_mark_on_a_still_background_is_found() -> None:
    scene = _scene()
    stamp = text_mark(H, W, 0.5, corner="bottom-right")
    found = detect_marks(blend(_still_clip(scene), stamp))
    assert len(found) == 1
    share, area = _cover(found[0], stamp)
    assert share >= 0.98 and area <= 2.0
    assert found[0].features["still_mark"] == 1.0
    assert found[0].features["damping"] < 0.72
    assert found[0].first_sample == 0 and found[0].last_sample == T - 1


def test_a_dark_mark_in_the_top_left_corner_is_found() -> None:
    scene = _scene(seed=5)
    stamp = text_mark(H, W, 0.5, corner="top-left", colour=20.0)
    found = detect_marks(blend(_still_clip(scene, seed=6), stamp))
    assert len(found) == 1
    share, area = _cover(found[0], stamp)
    assert share >= 0.98 and area <= 2.0


def test_a_still_scene_without_a_mark_gives_nothing() -> None:
    assert _found(_still_clip(_scene())) == []


def test_a_flat_object_near_a_corner_is_not_a_mark() -> None:
    """Quiet like a mark (flat, so its noise is low), crisp edges, near the corner, inside
    the picture: but bare of the scene's detail, which a blend would keep."""
    scene = _scene()
    scene[100:126, 196:236] = 200.0
    assert _found(_still_clip(scene)) == []


def test_a_clipped_white_area_is_not_a_mark() -> None:
    """Values at the range limit carry no noise at all."""
    scene = _scene()
    frames = _still_clip(scene)
    frames[:, 100:126, 196:236] = 255.0
    assert _found(frames) == []


def test_letterbox_bars_are_not_marks() -> None:
    frames = _still_clip(_scene())
    frames[:, :14] = 16.0
    frames[:, -14:] = 16.0
    assert _found(frames) == []


def test_a_lamp_on_the_dark_side_of_a_still_scene_is_not_a_mark() -> None:
    """Beside a still picture a dark, flat side may be scenery (a night sky) rather than a
    letterbox bar, and what stands in it (a lamp) scenery too: marks drawn on bars are
    looked for on bars that come in pairs, or beside a picture that moves."""
    scene = _scene()
    scene[:36] = 16.0
    scene[12:24, 200:230] = 200.0
    assert _found(_still_clip(scene)) == []


def test_a_shadow_cut_by_the_frame_edge_is_not_a_mark() -> None:
    """A static shadow dims the scene's detail and its noise alike, as a dark blend would,
    but it runs on out of the picture: scenery, not an overlay inside the frame."""
    scene = _scene()
    scene[96:136, 1:40] = 30 + 0.25 * (scene[96:136, 1:40] - 30)
    assert _found(_still_clip(scene)) == []


def test_a_mark_over_a_flat_object_needs_its_own_damping() -> None:
    """The stamp's text over a textured corner is found even with a flat object elsewhere."""
    scene = _scene()
    scene[10:40, 10:60] = 120.0
    stamp = text_mark(H, W, 0.5, corner="bottom-right")
    found = detect_marks(blend(_still_clip(scene), stamp))
    assert len(found) == 1
    share, _area = _cover(found[0], stamp)
    assert share >= 0.98


def test_a_quiet_strip_at_the_frame_edge_does_not_cut_a_mark_down_to_its_seed() -> None:
    """A moving picture with a static dark strip along its top: the damped area grown from
    part of a mark near the top reaches the frame through the strip. The strip is scenery;
    the mark is grown again without it, instead of being cut back to the part it grew from
    (what left the top ring of a logo on a handheld clip outside its box)."""
    frames = panning_frames(T, H, W)
    frames[:, :4, :] = 60.0
    alpha = np.zeros((H, W), np.float32)
    cv2.circle(alpha, (200, 26), 18, 0.8, -1, cv2.LINE_AA)
    stamp = Stamp(alpha=alpha, colour=235.0, box=(182, 8, 37, 37))
    ys = blend(frames, stamp)
    picture = ys.astype(np.float32)
    noise, mean = noise_map(picture), picture.mean(0)
    seed_box = (184, 26, 33, 18)  # the disc's lower half
    shape = alpha[26:44, 184:217] > 0.4
    feats = _still_features(noise, mean, shape, seed_box, 1)
    assert feats is not None and feats["score"] >= 1.0
    found = _still_region(ys, noise, mean, shape, seed_box, 1, feats)
    assert found is not None
    share, area = _cover(found, stamp)
    assert share >= 0.98 and area <= 2.0


def _door_frame(scene: np.ndarray) -> np.ndarray:
    """A dark vertical post from the top of the picture to its bottom, through the
    bottom-left corner where the mark goes: static scenery that runs out of the frame."""
    scene = scene.copy()
    scene[:, 40:44] = 35.0
    return scene


def test_a_mark_whose_outline_touches_scenery_running_out_of_the_frame_is_found() -> None:
    """The mark's edges and the post's are one shape that leaves the picture, so it is
    no mark as a whole; the edges where the noise is damped are cut out of it."""
    stamp = text_mark(H, W, 0.8, corner="bottom-left")
    assert stamp.box[0] < 40 < stamp.box[0] + stamp.box[2]
    found = detect_marks(blend(_still_clip(_door_frame(_scene())), stamp))
    assert len(found) == 1
    share, area = _cover(found[0], stamp)
    assert share >= 0.98 and area <= 2.0


def test_the_post_alone_is_not_a_mark() -> None:
    assert _found(_still_clip(_door_frame(_scene()))) == []


def _compilation(stamp: Stamp | None) -> np.ndarray:
    """Five still shots cut together (a compilation), 10 samples each, marked or not."""
    shots = [
        _still_clip(np.clip(_scene(seed) + shift, 20, 235), seed + 10)[:10]
        for seed, shift in ((3, -40), (5, 30), (7, -10), (9, 50), (11, 0))
    ]
    frames = np.concatenate(shots)
    return frames if stamp is None else blend(frames, stamp).astype(np.float32)


def test_scene_cuts_split_the_samples_into_their_shots() -> None:
    frames = _compilation(None)
    assert scenes(frames) == [(0, 10), (10, 20), (20, 30), (30, 40), (40, 50)]
    assert scenes(_still_clip(_scene())) == [(0, T)]
    assert scenes(panning_frames(T)) == [(0, T)]  # it changes everywhere, all the time


def test_pixels_clipped_to_white_do_not_set_the_noise_a_blend_damps() -> None:
    """Around a logo against a burnt-out sky most pixels sit at white and show no noise:
    the picture's noise is that of the others (the trees below), which the logo damps
    (tree/opencv/0.8 auto: its pixels were taken for scenery and left, 19.1 -> 27.1 dB)."""
    rng = np.random.default_rng(0)
    ys = np.full((T, 60, 80), 235.0)  # the sky, clipped to limited range's white
    ys[:, 40:] = 120.0 + rng.normal(0, 2.0, (T, 20, 80))  # the trees
    marked = np.zeros((60, 80), bool)
    marked[20:50, 20:60] = True
    ys[:, marked] = 0.8 * 60.0 + 0.2 * ys[:, marked]
    frames = np.clip(ys + 0.5, 0, 255).astype(np.uint8)

    damped = _damped(frames, marked, full_range=False)
    assert damped[marked].all()
    assert not damped[45:, :14].any()  # the trees beside it are not
