"""ModalEngine: the Engine port on the deployed Modal GPU function (GPU_BACKEND=modal).

The worker never sends video bytes: it signs a URL for the job's input, spawns the
deployed function with that URL and the output key, and polls the call. The GPU
container writes the output into the same storage and returns the engine's report.

Modal's failures are translated here:

    builtin TimeoutError (poll)     → not finished yet: poll again until ENGINE_TIMEOUT_S
    FunctionTimeoutError            → EngineTimeout (the function hit MODAL_TIMEOUT_S)
    ConnectionError, ServiceError,  → retried (spawn and poll) with backoff, then EngineError
    InternalError, ResourceExhausted
    InternalFailure                 → the call died inside Modal: spawned again, then EngineError
    NotFoundError, AuthError        → EngineError saying what to fix (deploy / credentials)
    {"error": {"type": "NotAVideo"}}→ the same class from core.errors (InputError stays permanent)
    anything else from the function → EngineError with its type and message
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import modal
import modal.exception as modal_errors

from core import errors
from core.errors import BlankLogoError, ConfigError, EngineError, EngineTimeout
from core.jobs import Job
from core.ports import EngineResult, ProgressFn, Storage
from core.settings import Settings

logger = logging.getLogger(__name__)

#: failures of the Modal control plane that a later try may not meet
TRANSIENT = (
    modal_errors.ConnectionError,
    modal_errors.ServiceError,
    modal_errors.InternalError,
    modal_errors.ResourceExhaustedError,
    ConnectionError,
    OSError,
)
#: seconds a health check may spend asking Modal
HEALTH_TIMEOUT_S = 4.0
#: job options the GPU never needs (the worker already fetched the video)
_LOCAL_OPTIONS = frozenset({"video_url"})
#: progress shown while the job waits for, then runs on, the GPU
_WAITING_PCT = 10
_DONE_PCT = 95


class ModalEngine:
    """Runs each job on the deployed Modal function `MODAL_APP_NAME`/`MODAL_FUNCTION_NAME`."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        *,
        poll_interval_s: float = 2.0,
        retry_delays_s: Sequence[float] = (1.0, 4.0, 15.0),
    ) -> None:
        if settings.storage_backend != "supabase":
            # the GPU container reads and writes the Supabase bucket; a worker on local
            # storage would never see the output
            raise ConfigError("GPU_BACKEND=modal needs STORAGE_BACKEND=supabase")
        self.settings = settings
        self.storage = storage
        self.poll_interval_s = poll_interval_s
        self.retry_delays_s = tuple(retry_delays_s)

    @property
    def target(self) -> str:
        return f"{self.settings.modal_app_name}/{self.settings.modal_function_name}"

    async def process(self, job: Job, progress: ProgressFn) -> EngineResult:
        """Spawn the GPU function on the job's signed input URL and wait for its report."""
        if not job.input_key:
            raise EngineError(f"job {job.id} has no stored input to send to the GPU")
        url_ttl = self.settings.engine_timeout_s + 3600
        arguments = {
            "output_key": f"outputs/{job.id}.mp4",
            "options": {k: v for k, v in job.options.items() if k not in _LOCAL_OPTIONS},
            "input_url": await self.storage.signed_url(job.input_key, expires_in=url_ttl),
            "limits": {
                "max_width": self.settings.max_width,
                "max_height": self.settings.max_height,
                "max_duration_s": self.settings.max_duration_s,
            },
        }
        await progress(_WAITING_PCT, "waiting for GPU")
        deadline = time.monotonic() + self.settings.engine_timeout_s
        respawns = 0
        while True:
            spawned_at = time.time()
            call = await self._spawn(arguments)
            logger.info("job %s spawned on Modal %s as %s", job.id, self.target, call.object_id)
            try:
                answer = await self._wait(call, progress, deadline)
            except modal_errors.InternalFailure as exc:
                respawns += 1
                if respawns > len(self.retry_delays_s):
                    raise EngineError(f"Modal kept failing the GPU call: {exc}") from exc
                logger.warning("job %s: Modal internal failure, spawning again", job.id)
                await asyncio.sleep(self.retry_delays_s[respawns - 1])
                continue
            return self._result(job, answer, call.object_id, spawned_at)

    async def _spawn(self, arguments: dict[str, Any]) -> Any:
        """`Function.from_name(...).spawn.aio(...)`, retrying transient control-plane errors."""
        for attempt in range(len(self.retry_delays_s) + 1):
            try:
                function = modal.Function.from_name(
                    self.settings.modal_app_name, self.settings.modal_function_name
                )
                return await function.spawn.aio(**arguments)
            except modal_errors.NotFoundError as exc:
                raise EngineError(
                    f"the Modal function {self.target} is not deployed "
                    "(run `modal deploy gpu/modal_app.py`)"
                ) from exc
            except modal_errors.AuthError as exc:
                raise EngineError(
                    "Modal refused our credentials (check MODAL_TOKEN_ID / MODAL_TOKEN_SECRET)"
                ) from exc
            except TRANSIENT as exc:
                if attempt == len(self.retry_delays_s):
                    raise EngineError(f"cannot reach Modal to start the job: {exc}") from exc
                logger.warning("Modal spawn failed (%s), retrying", exc.__class__.__name__)
                await asyncio.sleep(self.retry_delays_s[attempt])
        raise AssertionError("unreachable")

    async def _wait(self, call: Any, progress: ProgressFn, deadline: float) -> dict[str, Any]:
        """Poll the call until it answers, reporting GPU progress.

        If we stop waiting for any other reason than the call's own answer (deadline,
        cancellation, a failing progress callback) the call is cancelled so that the GPU
        does not keep running for nobody.
        """
        failures = 0
        shown: tuple[int, str] = (_WAITING_PCT, "waiting for GPU")
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise EngineTimeout(
                        f"the GPU did not finish within {self.settings.engine_timeout_s} s"
                    )
                try:
                    answer = await call.get.aio(timeout=min(self.poll_interval_s, remaining))
                except TimeoutError:
                    failures = 0
                    now = await self._progress_of(call.object_id, shown)
                    if now != shown:
                        shown = now
                        await progress(*now)
                    continue
                except TRANSIENT as exc:
                    failures += 1
                    if failures > len(self.retry_delays_s):
                        raise EngineError(f"lost contact with Modal: {exc}") from exc
                    await asyncio.sleep(self.retry_delays_s[failures - 1])
                    continue
                except Exception as exc:
                    raise _CallEnded(exc) from exc
                await progress(_DONE_PCT, "GPU finished")
                return answer
        except _CallEnded as ended:
            error = _translate(ended.error, self.settings.modal_timeout_s)
            if error is ended.error:
                raise error from None
            raise error from ended.error
        except BaseException:
            await asyncio.shield(_cancel(call))
            raise

    async def _progress_of(self, call_id: str, shown: tuple[int, str]) -> tuple[int, str]:
        """What the GPU container last published for this call (see gpu.modal_app)."""
        try:
            store = modal.Dict.from_name(progress_dict_name(self.settings.modal_app_name))
            entry = await store.get.aio(call_id)
        except Exception:  # noqa: BLE001 - progress is best effort
            return shown
        if not entry:
            return shown
        fraction = float(entry.get("fraction", 0.0))
        fraction = fraction / 100 if fraction > 1 else fraction
        pct = _WAITING_PCT + int(max(0.0, min(1.0, fraction)) * (_DONE_PCT - _WAITING_PCT))
        step = str(entry.get("step") or "working")
        return pct, f"processing on GPU: {step}"

    def _result(self, job: Job, answer: Any, call_id: str, spawned_at: float) -> EngineResult:
        if not isinstance(answer, dict):
            raise EngineError(f"the GPU function answered {type(answer).__name__}, not a report")
        if "error" in answer:
            problem = answer["error"]
            raise _error_named(str(problem.get("type")), str(problem.get("message")))
        timings = dict(answer.get("modal") or {})
        started_at = float(timings.get("started_at") or spawned_at)
        wait_s = max(0.0, started_at - spawned_at)
        timings.update(
            {
                "call_id": call_id,
                "wait_s": round(wait_s, 3),
                "cold_start_s": round(wait_s, 3) if timings.get("cold_start") else 0.0,
                "total_s": round(time.time() - spawned_at, 3),
            }
        )
        report = {**dict(answer.get("report") or {}), "modal": timings}
        logger.info(
            "job %s done on Modal: gpu %.1fs, wait %.1fs%s",
            job.id,
            float(timings.get("gpu_s") or 0.0),
            wait_s,
            " (cold start)" if timings.get("cold_start") else "",
        )
        return EngineResult(
            output_key=str(answer["output_key"]),
            output_size_bytes=int(answer["output_size_bytes"]),
            report=report,
        )

    async def health(self) -> dict[str, Any]:
        """ok when the function is deployed and Modal answers; down when it is not deployed."""
        facts: dict[str, Any] = {
            "backend": "modal",
            "app": self.settings.modal_app_name,
            "function": self.settings.modal_function_name,
            "gpu": self.settings.modal_gpu,
            "device": f"Modal {self.settings.modal_gpu}",
        }
        try:
            function = modal.Function.from_name(
                self.settings.modal_app_name, self.settings.modal_function_name
            )
            await asyncio.wait_for(function.hydrate.aio(), HEALTH_TIMEOUT_S)
            stats = await asyncio.wait_for(function.get_current_stats.aio(), HEALTH_TIMEOUT_S)
        except modal_errors.NotFoundError:
            return {**facts, "status": "down", "error": "not deployed"}
        except modal_errors.AuthError:
            return {**facts, "status": "down", "error": "Modal credentials refused"}
        except Exception as exc:  # noqa: BLE001 - any other failure: Modal is not answering well
            return {**facts, "status": "degraded", "error": exc.__class__.__name__}
        runners = int(getattr(stats, "num_total_runners", 0))
        backlog = int(getattr(stats, "backlog", 0))
        warmth = (
            f"{runners} container(s) up" if runners else "no container up: next job cold-starts"
        )
        return {
            **facts,
            "status": "ok",
            "backlog": backlog,
            "runners": runners,
            "warm": runners > 0,
            "detail": f"{self.target}: {backlog} waiting for a GPU, {warmth}",
        }


def progress_dict_name(app_name: str) -> str:
    """The modal.Dict where the GPU function publishes progress by function-call id."""
    return f"{app_name}-progress"


class _CallEnded(Exception):
    """The call itself answered with an exception (nothing left to cancel)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _translate(exc: Exception, modal_timeout_s: int) -> Exception:
    """Modal's or the function's exception → ours (InternalFailure passes for a respawn)."""
    if isinstance(exc, modal_errors.InternalFailure | BlankLogoError):
        return exc
    if isinstance(exc, modal_errors.FunctionTimeoutError):
        return EngineTimeout(
            f"the GPU function ran past its {modal_timeout_s} s limit (MODAL_TIMEOUT_S)"
        )
    if isinstance(exc, modal_errors.Error):
        return EngineError(f"the GPU function failed: {exc}")
    return _error_named(type(exc).__name__, str(exc))


def _error_named(kind: str, message: str) -> BlankLogoError:
    """Our exception class of that name (so an InputError stays permanent), else EngineError."""
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, BlankLogoError):
        return cls(message)
    return EngineError(f"the GPU function failed: {kind}: {message[:500]}")


async def _cancel(call: Any) -> None:
    try:
        await call.cancel.aio()
    except Exception as exc:  # noqa: BLE001 - the call may already be gone
        logger.warning("could not cancel Modal call: %s", exc.__class__.__name__)
