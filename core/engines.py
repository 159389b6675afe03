"""LocalEngine: the Engine port on this machine, with the removal engine in a child process.

The input comes from storage into a temporary directory, `python -m core.engine_child`
runs `gpu.engine.process` on it (so a hang or a crash can be killed without harming the
worker), and the output goes back to storage at `outputs/{job_id}.mp4`. ENGINE_TIMEOUT_S
bounds the child; a cancelled run (lost lease, cancel, worker stopping) kills it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

from core import errors
from core.errors import BlankLogoError, EngineError, EngineTimeout
from core.jobs import Job
from core.ports import EngineResult, ProgressFn, Storage
from core.settings import Settings

logger = logging.getLogger(__name__)

#: exceptions the child may report by name that keep their class (InputError stays permanent)
_KNOWN_ERRORS = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, BlankLogoError)
}
STDERR_TAIL_LINES = 20


def output_key(job_id: str) -> str:
    """Storage key of a job's cleaned video."""
    return f"outputs/{job_id}.mp4"


class LocalEngine:
    """Runs `gpu.engine.process` on this machine in a killable child process."""

    def __init__(self, settings: Settings, storage: Storage, *, target: str | None = None) -> None:
        self.settings = settings
        self.storage = storage
        #: "module:function" run by the child; None means gpu.engine:process
        self.target = target

    async def process(self, job: Job, progress: ProgressFn) -> EngineResult:
        """Fetch the input, run the engine in a child, store the output; raise our errors."""
        if not job.input_key:
            raise EngineError(f"job {job.id} has no stored input")
        workdir = self._workdir()
        try:
            source = workdir / "input"
            result_path = workdir / "output.mp4"
            await progress(0, "fetching input")
            await self.storage.get_file(job.input_key, source)
            report = await self._run_child(job, source, result_path, progress)
            if not result_path.is_file() or result_path.stat().st_size == 0:
                raise EngineError("the engine finished without writing a video")
            await progress(99, "storing result")
            key = output_key(job.id)
            size = await self.storage.put_file(key, result_path, "video/mp4")
            return EngineResult(output_key=key, output_size_bytes=size, report=report)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def health(self) -> dict[str, Any]:
        """{"status": ok|down, device, backend, versions, problems}."""
        return await local_health(self.settings)

    def _workdir(self) -> Path:
        base = (self.settings.data_dir / "work").resolve()
        base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="job-", dir=base))

    def _request(self, job: Job, source: Path, result_path: Path) -> dict[str, Any]:
        options = {k: v for k, v in job.options.items() if k != "video_url"}
        return {
            "input": str(source),
            "output": str(result_path),
            "options": options,
            "device": self.settings.engine_device,
            "limits": {
                "max_width": self.settings.max_width,
                "max_height": self.settings.max_height,
                "max_duration_s": self.settings.max_duration_s,
            },
            "target": self.target,
        }

    async def _run_child(
        self, job: Job, source: Path, result_path: Path, progress: ProgressFn
    ) -> dict[str, Any]:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "core.engine_child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: ffmpeg children die with it
            cwd=str(Path(__file__).resolve().parents[1]),
        )
        assert child.stdin is not None and child.stdout is not None and child.stderr is not None
        stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        drain = asyncio.create_task(_collect(child.stderr, stderr_tail))
        try:
            child.stdin.write(json.dumps(self._request(job, source, result_path)).encode())
            await child.stdin.drain()
            child.stdin.close()
            final = await asyncio.wait_for(
                _read_protocol(child.stdout, progress), timeout=self.settings.engine_timeout_s
            )
            await child.wait()
        except TimeoutError:
            logger.warning(
                "job %s: engine ran past %d s, killed", job.id, self.settings.engine_timeout_s
            )
            raise EngineTimeout(
                f"the engine took longer than {self.settings.engine_timeout_s} s on this video"
            ) from None
        finally:
            _kill(child)
            await _reap(child)
            drain.cancel()
            with contextlib.suppress(BaseException):
                await drain
        return _outcome(final, child.returncode, stderr_tail)


async def _read_protocol(
    stream: asyncio.StreamReader, progress: ProgressFn
) -> dict[str, Any] | None:
    """Forward progress lines; return the final {"ok": ...} line (None if the child died first)."""
    while True:
        line = await stream.readline()
        if not line:
            return None
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if "ok" in message:
            return message
        if "progress" in message:
            await progress(int(message["progress"]), str(message.get("step") or "processing"))


async def _collect(stream: asyncio.StreamReader, tail: deque[str]) -> None:
    while True:
        line = await stream.readline()
        if not line:
            return
        text = line.decode(errors="replace").rstrip()
        tail.append(text)
        logger.debug("engine: %s", text)


def _outcome(
    final: dict[str, Any] | None, returncode: int | None, tail: deque[str]
) -> dict[str, Any]:
    if final is None:
        how = (
            f"was killed by signal {-returncode}"
            if returncode and returncode < 0
            else f"exited with code {returncode}"
        )
        last = tail[-1] if tail else "no output"
        raise EngineError(f"the engine process {how} ({last[:300]})")
    if final.get("ok"):
        report = final.get("report")
        return report if isinstance(report, dict) else {}
    name = str(final.get("error") or "EngineError")
    message = str(final.get("message") or name)
    cls = _KNOWN_ERRORS.get(name)
    if cls is not None:
        raise cls(message)
    raise EngineError(f"the engine failed: {name}: {message[:500]}")


def _kill(child: asyncio.subprocess.Process) -> None:
    if child.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        child.kill()


async def _reap(child: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(Exception):
        await asyncio.shield(asyncio.wait_for(child.wait(), timeout=10))


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cuda_present() -> bool:
    """Whether CUDA looks usable, without importing torch into a process that has not."""
    if "torch" in sys.modules:
        return bool(sys.modules["torch"].cuda.is_available())
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return Path("/proc/driver/nvidia/version").exists()


def _ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:  # noqa: BLE001 - a missing binary is what we report
        return shutil.which("ffmpeg")


async def local_health(settings: Settings) -> dict[str, Any]:
    """Facts about the local engine: device, torch / OpenCV / ffmpeg found, versions."""
    has_torch = importlib.util.find_spec("torch") is not None
    has_cv2 = importlib.util.find_spec("cv2") is not None
    has_engine = importlib.util.find_spec("gpu.engine") is not None
    ffmpeg = await asyncio.to_thread(_ffmpeg)
    wanted = settings.engine_device
    cuda = has_torch and await asyncio.to_thread(cuda_present)
    device = "cuda" if (wanted == "cuda" or (wanted == "auto" and cuda)) else "cpu"
    problems = [
        what
        for what, ok in (
            ("torch not installed (pip install '.[gpu]')", has_torch),
            ("opencv not installed (pip install '.[gpu]')", has_cv2),
            ("gpu.engine missing", has_engine),
            ("ffmpeg not found", ffmpeg is not None),
            ("CUDA requested but not present", wanted != "cuda" or cuda),
        )
        if not ok
    ]
    return {
        "status": "ok" if not problems else "down",
        "backend": "local",
        "device": device,
        "cuda": cuda,
        "ffmpeg": ffmpeg,
        "versions": {
            "torch": _version("torch"),
            "opencv": _version("opencv-python-headless") or _version("opencv-python"),
            "imageio-ffmpeg": _version("imageio-ffmpeg"),
        },
        "problems": problems,
    }
