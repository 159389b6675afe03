"""Fakes of our own ports for the pipeline tests (Engine and Notifier)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.jobs import Job
from core.ports import EngineResult, ProgressFn, Storage


@dataclass
class ScriptedEngine:
    """Engine whose calls follow a script: "ok", "hang", or an exception to raise."""

    storage: Storage
    script: list[Any] = field(default_factory=list)
    default: Any = "ok"
    delay_s: float = 0.0
    calls: list[str] = field(default_factory=list)
    running: int = 0
    max_running: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: int = 0

    async def process(self, job: Job, progress: ProgressFn) -> EngineResult:
        self.calls.append(job.id)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.started.set()
        try:
            action = self.script.pop(0) if self.script else self.default
            await progress(10, "removing")
            if action == "hang":
                await asyncio.sleep(3600)
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if isinstance(action, BaseException):
                raise action
            await progress(90, "encoding")
            key = f"outputs/{job.id}.mp4"
            source = self.storage.path_for(job.input_key)  # type: ignore[attr-defined]
            size = await self.storage.put_file(key, source)
            return EngineResult(output_key=key, output_size_bytes=size, report={"regions": []})
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1

    async def health(self) -> dict[str, Any]:
        return {"status": "ok", "backend": "scripted"}


@dataclass
class CountingNotifier:
    """Notifier that records deliveries; `failures` DeliveryErrors come first."""

    failures: int = 0
    delivered: list[tuple[str, str]] = field(default_factory=list)
    progress_seen: list[tuple[str, int, str | None]] = field(default_factory=list)

    async def progress(self, job: Job) -> None:
        self.progress_seen.append((job.id, job.progress, job.current_step))

    async def deliver(self, job: Job) -> None:
        from core.errors import DeliveryError

        if self.failures > 0:
            self.failures -= 1
            raise DeliveryError("the receiver is down")
        self.delivered.append((job.id, job.status.value))

    def count(self, job_id: str) -> int:
        return sum(1 for jid, _ in self.delivered if jid == job_id)


def ids(jobs: Iterable[Job]) -> list[str]:
    return [job.id for job in jobs]
