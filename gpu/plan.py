"""From sampled frames to the list of mattes to remove: detection (or the user's box) + matting."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from gpu.detect import Detection, detect_marks, mark_mask_in_box
from gpu.matting import estimate_matte
from gpu.probe import VideoInfo
from gpu.regions import Box
from gpu.removal import Matte
from gpu.sampling import Samples

log = logging.getLogger(__name__)

MARGIN = 8
#: an explicit box in which less than this share of pixels looks marked is filled whole
EXPLICIT_MIN_MARKED = 0.02


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
    if explicit is not None:
        mask = mark_mask_in_box(ys, explicit)
        whole_box = mask.mean() < EXPLICIT_MIN_MARKED
        if whole_box:
            mask = np.ones((explicit.h, explicit.w), dtype=bool)
        detections = [
            Detection(box=explicit, mask=mask, first_sample=0, last_sample=len(ys) - 1, score=1.0)
        ]
    else:
        detections = detect_marks(ys, search=search)
    mattes: list[Matte] = []
    total = len(ys)
    for det in detections:
        crop = expand_box(det.box, MARGIN, fmt.width, fmt.height)
        support = np.zeros((crop.h, crop.w), dtype=bool)
        oy, ox = det.box.y - crop.y, det.box.x - crop.x
        support[oy : oy + det.box.h, ox : ox + det.box.w] = det.mask
        sl = slice(det.first_sample, det.last_sample + 1)
        cy, cx = slice(crop.y, crop.y + crop.h), slice(crop.x, crop.x + crop.w)
        cyc, cxc = (
            slice(crop.y // 2, (crop.y + crop.h) // 2),
            slice(crop.x // 2, (crop.x + crop.w) // 2),
        )
        est = estimate_matte(
            ys[sl, cy, cx],
            us[sl, cyc, cxc],
            vs[sl, cyc, cxc],
            support,
            full_range=fmt.full_range,
            device=device,
        )
        method = "invert" if est.opacity <= 0.85 else "invert+inpaint"
        alpha_y, alpha_c = est.alpha_y, est.alpha_c
        if explicit is not None and whole_box:
            # the user says a mark is there but the clip shows no overlay: fill the whole box
            alpha_y = support.astype(np.float32)
            alpha_c = alpha_y[::2, ::2].copy()
            method = "inpaint"
        start = 0 if det.first_sample == 0 else _boundary(samples.indices, det.first_sample)
        end = (
            None
            if det.last_sample >= total - 1
            else _boundary(samples.indices, det.last_sample + 1)
        )
        mattes.append(
            Matte(
                box=crop,
                alpha_y=alpha_y,
                a_y=est.a_y,
                alpha_c=alpha_c,
                a_u=est.a_u,
                a_v=est.a_v,
                opacity=est.opacity if method != "inpaint" else 1.0,
                start_frame=start,
                end_frame=end,
                start_s=start / fps,
                end_s=None if end is None else end / fps,
                method=method,
            )
        )
        log.info(
            "mark at %s opacity %.2f frames %s-%s (%s)",
            crop.as_list(),
            est.opacity,
            start,
            end,
            method,
        )
    return mattes


def _boundary(indices: np.ndarray, sample: int) -> int:
    """Frame index halfway between sample `sample-1` and sample `sample`."""
    return int((int(indices[sample - 1]) + int(indices[sample]) + 1) // 2)
