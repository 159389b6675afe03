"""Estimating a mark's α and αW from the clip itself (multi-frame matting).

In `J_t = αW + (1−α)I_t` α and W are fixed while I_t changes. The surroundings of the
mark, filled into it (push-pull), give a smooth guess F_t of I_t. Per pixel the slope of
J_t against F_t over time is (1−α) where F_t predicts the changes well; where it does not
(wide holes) the amount of change against that around the mark gives 1−α instead (it
varies smoothly in space even where the picture does not). αW is then the median of
J − (1−α)F, so the static part of the picture under the mark becomes the fill rather
than a ghost of a wrong α. Where the background never changes, α cannot be measured: for
a box the user named it comes from the level shift under a white or black mark; for a
detected mark it stays 0 (scenery shifts levels too).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gpu.fill import push_pull
from gpu.removal import ALPHA_MAX

log = logging.getLogger(__name__)

#: temporal variance (summed over Y, U, V) below which a pixel's background counts as static
STATIC_VARIANCE = 30.0
MIN_ALPHA = 0.03
#: α from which a pixel counts as part of the mark in its opacity
MARKED_ALPHA = 0.1
#: confidence from which α measured over time is taken as it is (an opaque mark's)
TRUST_CONFIDENCE = 0.5
DEBUG_MAPS: dict[str, torch.Tensor] = {}


@dataclass
class MatteEstimate:
    alpha_y: np.ndarray
    a_y: np.ndarray
    alpha_c: np.ndarray
    a_u: np.ndarray
    a_v: np.ndarray
    opacity: float
    moving_share: float  # share of the mark's pixels whose background changed enough to measure α
    confidence: float = 0.0  # mean confidence of the temporal estimate over the support


def temporal_median(frames: torch.Tensor) -> torch.Tensor:
    """The median over the first axis, the lower of the two middle values for an even count
    (as torch.median): on the CPU by numpy's partial sort, about 4× faster than torch's."""
    if frames.device.type != "cpu":
        return frames.median(0).values
    middle = (frames.shape[0] - 1) // 2
    values = np.partition(frames.numpy(), middle, axis=0)[middle]
    return torch.from_numpy(np.ascontiguousarray(values))


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    if radius <= 0:
        return mask
    m = mask.float()[None, None]
    return F.max_pool2d(m, 2 * radius + 1, stride=1, padding=radius)[0, 0] > 0


def _up(chroma: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(chroma[:, None], size=shape, mode="nearest")[:, 0]


def _down_alpha(alpha: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    pooled = F.avg_pool2d(alpha[None, None], 2, ceil_mode=True)[0, 0]
    return pooled[: shape[0], : shape[1]]


def estimate_matte(
    ys: np.ndarray,
    us: np.ndarray,
    vs: np.ndarray,
    support: np.ndarray,
    *,
    full_range: bool = False,
    device: torch.device | None = None,
    still_prior: bool = True,
) -> MatteEstimate:
    """α and αW for the pixels of `support` from sampled crops (T,h,w) Y and (T,h/2,w/2) U, V.

    `still_prior`: where the background does not change, take α from the level shift under
    a white or black mark (right for a box the user named; off for detected marks).
    """
    device = device or torch.device("cpu")
    y = torch.from_numpy(np.ascontiguousarray(ys)).to(device).float()
    u = torch.from_numpy(np.ascontiguousarray(us)).to(device).float()
    v = torch.from_numpy(np.ascontiguousarray(vs)).to(device).float()
    sup = torch.from_numpy(np.ascontiguousarray(support)).to(device).bool()
    h, w = sup.shape
    ch, cw = u.shape[-2:]
    hole = _dilate(sup, 2)
    known = (~hole).float()[None, None]
    known_c = (F.avg_pool2d(known, 2, ceil_mode=True)[..., :ch, :cw] > 0.999).float()

    fy = push_pull(y[:, None], known)[:, 0]
    fu = push_pull(u[:, None], known_c)[:, 0]
    fv = push_pull(v[:, None], known_c)[:, 0]

    # joint slope over the three planes (chroma brought to luma resolution one plane at a
    # time: the working copies of a large crop are 48 frames each)
    sff = torch.zeros((h, w), device=device)
    sjf = torch.zeros((h, w), device=device)
    sjj = torch.zeros((h, w), device=device)
    for j, f in ((y, fy), (u, fu), (v, fv)):
        if j.shape[-2:] != (h, w):
            j, f = _up(j, (h, w)), _up(f, (h, w))
        jc = j - j.mean(0)
        fc = f - f.mean(0)
        sff += (fc * fc).mean(0)
        sjf += (jc * fc).mean(0)
        sjj += (jc * jc).mean(0)
        del jc, fc
    slope = sjf / sff.clamp(min=1e-3)
    alpha_t = (1.0 - slope).clamp(0, 1)
    # the slope only means 1−α where the fill predicts the picture's changes well; elsewhere
    # (a wide hole) compare the amount of change with that around the mark, which varies
    # smoothly in space even where the picture does not: inside, it is scaled by 1−α
    corr = sjf / (sjj * sff).sqrt().clamp(min=1e-3)
    around = push_pull(sjj.sqrt()[None, None], known)[0, 0]
    alpha_v = (1.0 - sjj.sqrt() / around.clamp(min=1e-3)).clamp(0, 1)
    trust_slope = ((corr - 0.5) / 0.4).clamp(0, 1)
    alpha_t = trust_slope * alpha_t + (1 - trust_slope) * alpha_v
    variation = around.pow(2)
    confidence = variation / (variation + STATIC_VARIANCE)

    # without the user's word that a mark is here, a still pixel's level shift is no
    # evidence of a blend (scenery shifts too): only measured α counts then
    alpha_s = (
        _level_shift_alpha((y, u, v), (fy, fu, fv), full_range)
        if still_prior
        else torch.zeros_like(alpha_t)
    )
    alpha = confidence * alpha_t + (1 - confidence) * alpha_s
    if not still_prior:
        # without the prior, (1 − confidence) pulls α towards 0: a little where the
        # background moves, which damps the noise that inverting amplifies (kept for a
        # semi-transparent mark), but an opaque mark then reads as semi-transparent and its
        # core is inverted instead of filled (car/white/1.0 auto: opacity 0.84, 27.9 dB;
        # as measured 0.96, filled, 39.8 dB): an opaque mark keeps α as measured
        measured = alpha_t * (confidence / TRUST_CONFIDENCE).clamp(max=1)
        if _opacity(torch.where(sup, measured, torch.zeros_like(measured))) > ALPHA_MAX:
            alpha = measured
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "matte: confidence %.2f alpha_t %.2f alpha_s %.2f (means over the support)",
            float(confidence[sup].mean()),
            float(alpha_t[sup].mean()),
            float(alpha_s[sup].mean()),
        )
        DEBUG_MAPS.update(confidence=confidence, alpha_t=alpha_t, alpha_s=alpha_s, alpha_v=alpha_v)
    alpha = torch.where(sup & (alpha >= MIN_ALPHA), alpha, torch.zeros_like(alpha))

    alpha_c = _down_alpha(alpha, (ch, cw))
    a_y = temporal_median(y - (1 - alpha) * fy) * (alpha > 0)
    a_u = temporal_median(u - (1 - alpha_c) * fu) * (alpha_c > 0)
    a_v = temporal_median(v - (1 - alpha_c) * fv) * (alpha_c > 0)

    marked = alpha > MARKED_ALPHA
    opacity = _opacity(alpha)
    moving = float((confidence[marked] > 0.5).float().mean()) if bool(marked.any()) else 0.0
    return MatteEstimate(
        alpha_y=alpha.cpu().numpy(),
        a_y=a_y.cpu().numpy(),
        alpha_c=alpha_c.cpu().numpy(),
        a_u=a_u.cpu().numpy(),
        a_v=a_v.cpu().numpy(),
        opacity=opacity,
        moving_share=moving,
        confidence=float(confidence[sup].mean()) if bool(sup.any()) else 0.0,
    )


def luma_range(full_range: bool) -> tuple[float, float]:
    """The luma of black and of white: 0-255 in full range, 16-235 in limited range."""
    return (0.0, 255.0) if full_range else (16.0, 235.0)


def _opacity(alpha: torch.Tensor) -> float:
    """A mark's opacity: the 90th percentile of α over its pixels (0: none)."""
    marked = alpha > MARKED_ALPHA
    return float(torch.quantile(alpha[marked], 0.9)) if bool(marked.any()) else 0.0


def _level_shift_alpha(
    planes: tuple[torch.Tensor, ...], fills: tuple[torch.Tensor, ...], full_range: bool
) -> torch.Tensor:
    """α from the level shift of the Y, U, V samples against their fills, for a white or
    black mark (at luma resolution)."""
    y, u, v = planes
    fy, fu, fv = fills
    h, w = y.shape[-2:]
    # medians of the chroma at its own resolution, then brought up (the same values as the
    # medians of the upsampled planes, at a quarter of the cost)
    shift = [
        temporal_median(y - fy),
        *(_up(temporal_median(c - fc)[None], (h, w))[0] for c, fc in ((u, fu), (v, fv))),
    ]
    f_med = [temporal_median(fy), *(_up(temporal_median(fc)[None], (h, w))[0] for fc in (fu, fv))]
    black, white = luma_range(full_range)
    w_y = torch.where(
        shift[0] >= 0, torch.full_like(shift[0], white), torch.full_like(shift[0], black)
    )
    targets = [w_y, torch.full_like(w_y, 128.0), torch.full_like(w_y, 128.0)]
    num = torch.stack([d * (t - fm) for d, t, fm in zip(shift, targets, f_med, strict=True)]).sum(0)
    den = torch.stack([(t - fm) ** 2 for t, fm in zip(targets, f_med, strict=True)]).sum(0)
    return (num / den.clamp(min=1.0)).clamp(0, 1)
