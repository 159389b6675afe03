"""Which torch device the engine runs on, and how many frames fit in one batch."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

log = logging.getLogger(__name__)

#: frames per batch on CPU (memory stays flat: one batch is held at a time)
CPU_BATCH = 8
MAX_GPU_BATCH = 64


def resolve_device(requested: str = "auto") -> Any:
    """torch.device for "auto" | "cpu" | "cuda"; "cuda" without a GPU is an EngineError."""
    import torch

    from core.errors import EngineError

    if requested not in ("auto", "cpu", "cuda") and not str(requested).startswith("cuda:"):
        raise EngineError(f"unknown device {requested!r}: use auto, cpu or cuda")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(requested).startswith("cuda") and not torch.cuda.is_available():
        raise EngineError("--device cuda was asked for, but torch sees no CUDA GPU here")
    return torch.device(requested)


def batch_size_for(device: Any, frame_pixels: int, region_pixels: int) -> int:
    """Frames per batch: fixed on CPU; on CUDA sized from the free VRAM (a quarter of it)."""
    if getattr(device, "type", "cpu") != "cuda":
        return CPU_BATCH
    import torch

    free, _total = torch.cuda.mem_get_info(device)
    # per frame on the GPU: the region's planes as float32, about 12 working copies
    per_frame = max(1, region_pixels) * 1.5 * 4 * 12
    fit = int((free // 4) // per_frame)
    return max(CPU_BATCH, min(MAX_GPU_BATCH, fit))


#: decoded frames kept ready ahead of the removal: reading in a thread keeps the decoder
#: and the encoder both busy while the removal works; deeper than about two batches
#: bought nothing measurable, only memory
READ_AHEAD_BYTES = 32 * 1024 * 1024
MAX_READ_AHEAD = 8


def read_ahead(batch: int, frame_bytes: int) -> int:
    """Batches the streaming decoder may run ahead: about READ_AHEAD_BYTES, at least one."""
    return max(1, min(MAX_READ_AHEAD, READ_AHEAD_BYTES // max(1, batch * frame_bytes)))


def prefer_sleeping_threads() -> bool:
    """Ask OpenMP (torch's CPU threads) to let idle threads sleep rather than spin; True when
    it does in this process, so that more threads than the cores left free cannot steal
    time from the decoder and the encoder. OpenMP reads this once, as torch is imported."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"


def cpu_threads(*, streaming: bool, sleeping: bool) -> int:
    """torch threads on CPU: while finding the marks nothing else runs, so every core (when
    idle threads sleep); while streaming the decoder and the encoder need the cores more
    than the small region's maths."""
    cores = os.cpu_count() or 2
    if streaming or not sleeping:
        return max(1, cores // 4)
    return cores
