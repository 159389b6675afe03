"""The Modal app: the removal engine on a cloud GPU (`modal deploy gpu/modal_app.py`).

Deploy-time settings come from the environment of the machine running `modal deploy`
(MODAL_APP_NAME, MODAL_FUNCTION_NAME, MODAL_GPU, MODAL_TIMEOUT_S, MODAL_SCALEDOWN_WINDOW_S,
MODAL_MAX_CONTAINERS). Inside the container the Modal secret `blanklogo` supplies
SUPABASE_URL / SUPABASE_SERVICE_KEY / SUPABASE_BUCKET, and the image sets
STORAGE_BACKEND=supabase.

Importing this module only declares the app: no network, no Modal credentials, no torch.
The GPU function's body is `run_removal`, a plain coroutine that tests (and `.local()`)
run on this machine.

Modal 1.x names: `scaledown_window` (was container_idle_timeout), `max_containers` (was
concurrency_limit), `@modal.concurrent` (was allow_concurrent_inputs), `gpu="A10G"` (was
modal.gpu.A10G()).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import modal

from core.errors import BlankLogoError, EngineError, VideoTooLarge
from core.settings import Settings
from gpu.remote import progress_dict_name

logger = logging.getLogger(__name__)

#: the Modal secret holding SUPABASE_URL, SUPABASE_SERVICE_KEY and SUPABASE_BUCKET
SECRET_NAME = "blanklogo"
#: our own packages copied into the image (the engine imports only these two)
SOURCE_PACKAGES = ("core", "gpu")
#: what the container needs: the [gpu] extra plus what core and gpu import, and fastapi for
#: the health endpoint (tests check this list against pyproject.toml)
IMAGE_REQUIREMENTS = (
    "torch>=2.4",
    "opencv-python-headless>=4.9",
    "numpy>=1.26",
    "imageio-ffmpeg>=0.5",
    "pydantic>=2.6",
    "pydantic-settings>=2.2",
    "supabase>=2.10",
    "aiohttp>=3.9",
    "fastapi[standard]>=0.110",
)
#: seconds between two progress writes from the GPU container
PROGRESS_EVERY_S = 2.0
#: the first input a container serves is a cold start
_CONTAINER = {"started_at": time.time(), "inputs": 0}


def container_env(settings: Settings) -> dict[str, str]:
    """Environment baked into the image: the container re-imports this module and must
    declare the same app and function names (and limits) as the deploy did."""
    return {
        "STORAGE_BACKEND": "supabase",
        "GPU_BACKEND": "local",
        "DATA_DIR": "/tmp/blanklogo",
        "MODAL_APP_NAME": settings.modal_app_name,
        "MODAL_FUNCTION_NAME": settings.modal_function_name,
        "MODAL_GPU": settings.modal_gpu,
        "MODAL_TIMEOUT_S": str(settings.modal_timeout_s),
        "MODAL_SCALEDOWN_WINDOW_S": str(settings.modal_scaledown_window_s),
        "MODAL_MAX_CONTAINERS": str(settings.modal_max_containers),
        "MAX_UPLOAD_MB": str(settings.max_upload_mb),
        "MAX_WIDTH": str(settings.max_width),
        "MAX_HEIGHT": str(settings.max_height),
        "MAX_DURATION_S": str(settings.max_duration_s),
    }


def build_image(settings: Settings) -> modal.Image:
    """debian-slim with ffmpeg, the [gpu] dependencies and our code (declared, built by Modal)."""
    return (
        modal.Image.debian_slim(python_version="3.11")
        .apt_install("ffmpeg")
        .pip_install(*IMAGE_REQUIREMENTS)
        .env(container_env(settings))
        .add_local_python_source(*SOURCE_PACKAGES)
    )


def gpu_function_options(settings: Settings, image: modal.Image) -> dict[str, Any]:
    """Keyword arguments of `app.function` for the GPU function, from settings."""
    return {
        "image": image,
        "name": settings.modal_function_name,
        "gpu": settings.modal_gpu,
        "timeout": settings.modal_timeout_s,
        "scaledown_window": settings.modal_scaledown_window_s,
        "max_containers": settings.modal_max_containers,
        "secrets": [modal.Secret.from_name(SECRET_NAME)],
    }


_settings = Settings()
app = modal.App(_settings.modal_app_name)
image = build_image(_settings)


# --- the job body --------------------------------------------------------------------------


async def run_removal(
    *,
    output_key: str,
    options: Mapping[str, Any],
    input_url: str | None = None,
    input_key: str | None = None,
    limits: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Fetch the input, run the engine (CUDA when present), store the output, return the report.

    Our own errors come back as {"error": {"type", "message"}} so that the caller can raise
    the same class (an InputError stays permanent); anything else propagates to Modal.
    """
    started = time.time()
    cold = _CONTAINER["inputs"] == 0
    _CONTAINER["inputs"] += 1
    settings = settings or Settings()
    try:
        result = await _run(settings, output_key, options, input_url, input_key, limits, progress)
    except BlankLogoError as exc:
        logger.info("job for %s ended with %s: %s", output_key, type(exc).__name__, exc)
        return {"error": {"type": type(exc).__name__, "message": str(exc)}}
    result["modal"] = {
        **result["modal"],
        "cold_start": cold,
        "container_started_at": _CONTAINER["started_at"],
        "started_at": started,
        "finished_at": time.time(),
    }
    return result


async def _run(
    settings: Settings,
    output_key: str,
    options: Mapping[str, Any],
    input_url: str | None,
    input_key: str | None,
    limits: Mapping[str, Any] | None,
    progress: Callable[[float, str], None] | None,
) -> dict[str, Any]:
    from core.storage import open_storage
    from gpu import engine

    storage = open_storage(settings)
    if asyncio.iscoroutine(storage):
        storage = await storage
    try:
        with tempfile.TemporaryDirectory(prefix="blanklogo-") as tmp:
            src, dst = Path(tmp) / "input", Path(tmp) / "output.mp4"
            t0 = time.monotonic()
            if input_url:
                await _download(input_url, src, settings.max_upload_bytes)
            elif input_key:
                await storage.get_file(input_key, src)
            else:
                raise EngineError("the GPU function got neither an input URL nor a key")
            t1 = time.monotonic()
            device = _device(settings)
            engine_limits = engine.Limits(
                **(
                    dict(limits)
                    if limits
                    else {
                        "max_width": settings.max_width,
                        "max_height": settings.max_height,
                        "max_duration_s": settings.max_duration_s,
                    }
                )
            )
            report = await asyncio.to_thread(
                engine.process,
                src,
                dst,
                dict(options),
                progress,
                device=device,
                limits=engine_limits,
            )
            t2 = time.monotonic()
            size = await storage.put_file(output_key, dst, "video/mp4")
            t3 = time.monotonic()
    finally:
        close = getattr(storage, "close", None)
        if close is not None:
            await close()
    return {
        "output_key": output_key,
        "output_size_bytes": size,
        "report": report,
        "modal": {
            "device": device,
            "gpu_name": _gpu_name(),
            "fetch_s": round(t1 - t0, 3),
            "gpu_s": round(t2 - t1, 3),
            "upload_s": round(t3 - t2, 3),
        },
    }


async def _download(url: str, dest: Path, max_bytes: int) -> None:
    """Stream a signed URL (our own storage's) to disk, refusing more than max_bytes."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=300)
    total = 0
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url) as response,
        ):
            if response.status != 200:
                raise EngineError(f"fetching the input failed: HTTP {response.status}")
            with dest.open("wb") as out:
                async for chunk in response.content.iter_chunked(1024 * 1024):
                    total += len(chunk)
                    if total > max_bytes:
                        raise VideoTooLarge(
                            f"The video is larger than the {max_bytes // (1024 * 1024)} MB limit."
                        )
                    out.write(chunk)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise EngineError(f"fetching the input failed: {exc.__class__.__name__}") from exc


def _device(settings: Settings) -> str:
    """ "cuda" when this container has a usable GPU, else what the settings ask for."""
    try:
        import torch
    except ImportError:
        return "cpu"
    if settings.engine_device == "cpu":
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def _gpu_name() -> str | None:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - a name is a nicety, never a failure
        return None


def gpu_facts() -> dict[str, Any]:
    """torch version, whether CUDA works here, and the GPU's name and free memory."""
    try:
        import torch
    except ImportError:
        return {"torch": None, "cuda": False, "gpu_name": None}
    facts: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    facts["gpu_name"] = _gpu_name()
    if facts["cuda"]:
        free, total = torch.cuda.mem_get_info()
        facts["vram_free_mb"] = free // (1024 * 1024)
        facts["vram_total_mb"] = total // (1024 * 1024)
    return facts


class _ProgressPublisher:
    """Engine progress → the app's modal.Dict, at most every PROGRESS_EVERY_S (best effort)."""

    def __init__(self, app_name: str) -> None:
        self._call_id = modal.current_function_call_id()
        self._store = modal.Dict.from_name(progress_dict_name(app_name), create_if_missing=True)
        self._last = 0.0

    def __call__(self, fraction: float, step: str) -> None:
        now = time.monotonic()
        if self._call_id is None or now - self._last < PROGRESS_EVERY_S:
            return
        self._last = now
        try:  # called from the engine's thread: the blocking API is the right one here
            self._store.put(self._call_id, {"fraction": fraction, "step": step, "at": time.time()})
        except Exception as exc:  # noqa: BLE001 - progress must never fail a job
            logger.warning("progress not published: %s", exc.__class__.__name__)


# --- Modal functions -------------------------------------------------------------------------


@app.function(**gpu_function_options(_settings, image))
async def remove_watermark(
    output_key: str,
    options: dict[str, Any],
    input_url: str | None = None,
    input_key: str | None = None,
    limits: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One job on the GPU: signed URL or key in, output key written, report back."""
    publisher = None if modal.is_local() else _ProgressPublisher(_settings.modal_app_name)
    return await run_removal(
        output_key=output_key,
        options=options,
        input_url=input_url,
        input_key=input_key,
        limits=limits,
        progress=publisher,
    )


@app.function(
    image=image,
    gpu=_settings.modal_gpu,
    timeout=120,
    scaledown_window=_settings.modal_scaledown_window_s,
    max_containers=1,
)
def probe_gpu() -> dict[str, Any]:
    """The GPU container's own view: torch, CUDA, device name, free memory."""
    return gpu_facts()


@app.function(image=image, timeout=60, scaledown_window=60)
@modal.concurrent(max_inputs=20)
@modal.fastapi_endpoint(method="GET")
async def health(deep: bool = False) -> dict[str, Any]:
    """Health JSON {status, gpu, torch, cuda, ...}; `?deep=true` asks a GPU container too."""
    return await health_report(deep=deep)


async def health_report(*, deep: bool = False) -> dict[str, Any]:
    """What the health endpoint answers (a CPU container; `deep` starts a GPU one)."""
    facts = gpu_facts()
    answer: dict[str, Any] = {
        "status": "ok",
        "app": _settings.modal_app_name,
        "function": _settings.modal_function_name,
        "gpu": _settings.modal_gpu,
        "torch": facts["torch"],
        "cuda": facts["cuda"],
    }
    if modal.is_local():
        return answer
    try:
        stats = await remove_watermark.get_current_stats.aio()
        answer["backlog"] = stats.backlog
        answer["runners"] = stats.num_total_runners
    except Exception as exc:  # noqa: BLE001 - stats are informative only
        answer["stats_error"] = exc.__class__.__name__
    if deep:
        try:
            probe = await probe_gpu.remote.aio()
            answer.update({"cuda": probe["cuda"], "gpu_name": probe.get("gpu_name")})
            answer["vram_free_mb"] = probe.get("vram_free_mb")
            if not probe["cuda"]:
                answer["status"] = "degraded"
        except Exception as exc:  # noqa: BLE001 - a failed probe is a degraded GPU
            answer.update({"status": "degraded", "probe_error": exc.__class__.__name__})
    return answer
