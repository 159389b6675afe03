"""Push-pull fill: smooth, linear interpolation of unknown pixels from known ones.

Linear in the known pixels, so a fixed hole filled in every frame changes only as the
surroundings change (no flicker of its own), and it runs batched on CPU or CUDA.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-6


def push_pull(image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Fill pixels where `known` is 0 from those where it is 1; image (n,c,h,w), known (1|n,1,h,w)."""
    known = known.to(image.dtype)
    if image.shape[-1] <= 1 or image.shape[-2] <= 1 or bool((known > 0.999).all()):
        if bool((known > 0).any()):
            total = (image * known).sum(dim=(-1, -2), keepdim=True)
            weight = known.sum(dim=(-1, -2), keepdim=True).clamp(min=_EPS)
            mean = total / weight
            return image * known + mean * (1 - known)
        return image
    weighted = F.avg_pool2d(image * known, 2, ceil_mode=True)
    # pooled once where every frame shares `known` (broadcast below), not once per frame
    weight = F.avg_pool2d(known, 2, ceil_mode=True)
    coarse = weighted / weight.clamp(min=_EPS)
    coarse_known = (weight > _EPS).to(image.dtype)
    filled = push_pull(coarse, coarse_known)
    up = F.interpolate(filled, size=image.shape[-2:], mode="bilinear", align_corners=False)
    return image * known + up * (1 - known)
