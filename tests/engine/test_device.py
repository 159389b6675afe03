"""Device choice: auto picks CUDA only when torch sees it; asking for CUDA without one is an error."""

from __future__ import annotations

import pytest
import torch

from core.errors import EngineError
from gpu.device import CPU_BATCH, batch_size_for, resolve_device


def test_auto_device_follows_torch() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_a_clear_engine_error() -> None:
    with pytest.raises(EngineError, match="CUDA"):
        resolve_device("cuda")


def test_unknown_device_is_refused() -> None:
    with pytest.raises(EngineError):
        resolve_device("tpu")


def test_cpu_batches_are_small_and_fixed() -> None:
    assert batch_size_for(torch.device("cpu"), 1280 * 720, 200 * 100) == CPU_BATCH
