"""Finding watermarks from frames sampled across the whole clip.

A mark is an overlay fixed in the frame while the picture under it changes. Its
fingerprints, all measured over time rather than in one frame:

* persistence: its edges are present in (nearly) every sample, so the temporal median
  of the gradient magnitude keeps them while moving content averages away;
* a blend: inside it the picture's temporal changes shrink by (1−α) (to nothing where
  opaque), while its surroundings keep changing;
* placement: marks sit near edges and corners, are compact, and have crisp edges.

Static scene content is as persistent as a mark, so persistence alone never makes a
detection: a candidate also needs the blend fingerprint against changing surroundings,
or, on a fully static background, crisp overlay edges in a corner band with a level
shift that is the same along its whole outline. Marks that jump between a few positions
(Sora-style) are found per time segment and tracked to a time range per position.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from gpu.regions import Box

log = logging.getLogger(__name__)

WORK_WIDTH = 640  # detection runs at about this width
SEGMENT_SAMPLES = 8  # samples per time segment when looking for moving marks
EDGE_THRESHOLD = 10.0  # median gradient (Y levels per pixel) that counts as a persistent edge
MOTION_STD = 4.0  # temporal std (Y levels) above which a pixel's picture "changes"
MAX_AREA_SHARE = 0.12  # a mark covers at most this share of the frame
NCC_PRESENT = 0.45  # a sample shows the mark when its gradient matches the template this well


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
    """|∇Y| per frame (central differences), float32 (T,H,W)."""
    f = frames.astype(np.float32)
    gx = np.zeros_like(f)
    gy = np.zeros_like(f)
    gx[:, :, 1:-1] = (f[:, :, 2:] - f[:, :, :-2]) * 0.5
    gy[:, 1:-1, :] = (f[:, 2:, :] - f[:, :-2, :]) * 0.5
    return np.sqrt(gx * gx + gy * gy)


def _downscale(ys: np.ndarray) -> tuple[np.ndarray, int]:
    t, h, w = ys.shape
    factor = max(1, math.ceil(w / WORK_WIDTH))
    if factor == 1:
        return ys, 1
    hs, ws = h // factor, w // factor
    out = np.empty((t, hs, ws), np.uint8)
    for i in range(t):
        out[i] = cv2.resize(ys[i, : hs * factor, : ws * factor], (ws, hs), interpolation=cv2.INTER_AREA)
    return out, factor


def detect_marks(ys: np.ndarray, search: Box | None = None) -> list[Detection]:
    """Every mark found in sampled luma frames (T,H,W) uint8, optionally only inside `search`."""
    t, h, w = ys.shape
    if t < 3:
        return []
    small, factor = _downscale(ys)
    grads = gradient_magnitude(small)
    std = small.astype(np.float32).std(0)
    segments = _segments(t)
    found: list[Detection] = []
    # static marks first (whole clip), then per-segment candidates for marks that move
    whole = _candidates(grads, std, small, (0, t), search, factor, w, h)
    for det in whole:
        found.append(det)
    if len(segments) > 1:
        tracks: list[Detection] = []
        for lo, hi in segments:
            for det in _candidates(grads[lo:hi], small[lo:hi].astype(np.float32).std(0), small[lo:hi],
                                   (lo, hi), search, factor, w, h):
                if any(_iou(det.box, d.box) > 0.3 for d in found):
                    continue
                same = next((tr for tr in tracks if _iou(tr.box, det.box) > 0.5), None)
                if same is None:
                    tracks.append(det)
                else:
                    same.first_sample = min(same.first_sample, det.first_sample)
                    same.last_sample = max(same.last_sample, det.last_sample)
        for track in tracks:
            found.extend(_split_by_presence(track, grads, factor))
    return found


def _segments(t: int) -> list[tuple[int, int]]:
    count = max(1, t // SEGMENT_SAMPLES)
    edges = np.linspace(0, t, count + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b - a >= 3]


def _iou(a: Box, b: Box) -> float:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / float(a.area + b.area - inter) if inter else 0.0


def _candidates(
    grads: np.ndarray,
    std: np.ndarray,
    frames: np.ndarray,
    span: tuple[int, int],
    search: Box | None,
    factor: int,
    full_w: int,
    full_h: int,
) -> list[Detection]:
    """Mark candidates from one time span, scored on the blend fingerprints."""
    h, w = std.shape
    gmed = np.median(grads, axis=0)
    persistent = gmed > EDGE_THRESHOLD
    if search is not None:
        allowed = np.zeros_like(persistent)
        allowed[search.y // factor : (search.y + search.h) // factor + 1,
                search.x // factor : (search.x + search.w) // factor + 1] = True
        persistent &= allowed
    # join the strokes of a logo or the letters of a text mark into one blob
    k = max(3, int(round(min(h, w) * 0.02)) | 1)
    blob = cv2.morphologyEx(persistent.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
    blob = cv2.dilate(blob, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(blob, connectivity=8)
    level = np.median(frames.astype(np.float32), axis=0)
    out: list[Detection] = []
    for label in range(1, count):
        x, y, bw, bh, area = (int(v) for v in stats[label])
        if area < 12 or bw * bh > MAX_AREA_SHARE * h * w or bw < 4 or bh < 3:
            continue
        comp = labels == label
        edges = comp & persistent
        feats = _features(comp, edges, gmed, std, level, (x, y, bw, bh))
        score = _score(feats, (x, y, bw, bh), (w, h))
        feats["score"] = score
        log.debug("candidate %s %s", (x * factor, y * factor, bw * factor, bh * factor), feats)
        if score < 1.0:
            continue
        mask = cv2.dilate(comp.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        box, full_mask = _to_full(mask, factor, full_w, full_h)
        out.append(Detection(box=box, mask=full_mask, first_sample=span[0], last_sample=span[1] - 1,
                             score=score, features=feats))
    return out


def _features(comp: np.ndarray, edges: np.ndarray, gmed: np.ndarray, std: np.ndarray, level: np.ndarray,
              bbox: tuple[int, int, int, int]) -> dict[str, float]:
    x, y, bw, bh = bbox
    h, w = comp.shape
    pad = max(4, int(0.5 * min(bw, bh)))
    ring = np.zeros_like(comp)
    ring[max(0, y - pad) : y + bh + pad, max(0, x - pad) : x + bw + pad] = True
    ring &= ~cv2.dilate(comp.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    ring_std = std[ring] if ring.any() else np.zeros(1, np.float32)
    inner_std = std[comp]
    ring_moving = float((ring_std > MOTION_STD).mean())
    # changes inside the mark relative to just around it (a blend shrinks them by 1−α)
    moving_ring = ring & (std > MOTION_STD)
    ratio = float(np.median(inner_std) / max(np.median(std[moving_ring]) if moving_ring.any() else 1.0, 1e-3))
    edge_strength = float(np.median(gmed[edges])) if edges.any() else 0.0
    ring_edges = float((gmed[ring] > EDGE_THRESHOLD).mean()) if ring.any() else 0.0
    return {
        "ring_moving": ring_moving,
        "inner_ratio": ratio,
        "edge_strength": edge_strength,
        "ring_edges": ring_edges,
        "edge_fill": float(edges.sum() / max(comp.sum(), 1)),
        "corner_dist": float(min(x, y, w - x - bw, h - y - bh) / max(min(h, w), 1)),
    }


def _score(f: dict[str, float], bbox: tuple[int, int, int, int], size: tuple[int, int]) -> float:
    """≥ 1 means: a mark. Blend against moving surroundings, or a crisp overlay in a quiet border band."""
    near_border = f["corner_dist"] < 0.2
    if f["ring_moving"] > 0.25 and f["inner_ratio"] < 0.75:
        return 1.0 + (0.75 - f["inner_ratio"]) + (0.5 if near_border else 0.0)
    if near_border and f["ring_edges"] < 0.05 and f["edge_strength"] > 3 * EDGE_THRESHOLD:
        return 1.0
    return 0.0


def _to_full(mask: np.ndarray, factor: int, full_w: int, full_h: int) -> tuple[Box, np.ndarray]:
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()) * factor, int(ys.min()) * factor
    x1 = min(full_w, (int(xs.max()) + 1) * factor)
    y1 = min(full_h, (int(ys.max()) + 1) * factor)
    sub = mask[y0 // factor : (y1 - 1) // factor + 1, x0 // factor : (x1 - 1) // factor + 1]
    if factor > 1:
        sub = np.kron(sub.astype(np.uint8), np.ones((factor, factor), np.uint8)).astype(bool)
    sub = sub[: y1 - y0, : x1 - x0]
    grown = cv2.dilate(sub.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return Box(x0, y0, x1 - x0, y1 - y0), grown


def _split_by_presence(track: Detection, grads: np.ndarray, factor: int) -> list[Detection]:
    """Cut a moving mark's track into the sample runs where its gradient template is present."""
    b = track.box
    sl = (slice(b.y // factor, (b.y + b.h) // factor + 1), slice(b.x // factor, (b.x + b.w) // factor + 1))
    patch = grads[:, sl[0], sl[1]]
    template = np.median(patch[track.first_sample : track.last_sample + 1], axis=0)
    tc = template - template.mean()
    present = []
    for g in patch:
        gc = g - g.mean()
        denom = float(np.sqrt((gc * gc).sum() * (tc * tc).sum())) or 1.0
        present.append(float((gc * tc).sum()) / denom > NCC_PRESENT)
    runs: list[Detection] = []
    start = None
    for i, flag in enumerate([*present, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - start >= 2:
                runs.append(Detection(box=track.box, mask=track.mask, first_sample=start, last_sample=i - 1,
                                      score=track.score, features=track.features))
            start = None
    return runs
