"""A stand-in for the Modal SDK at its boundary: Function.from_name, spawn.aio, get.aio,
cancel.aio, Dict.from_name(...).get.aio, hydrate.aio, get_current_stats.aio.

Each fake call follows a script of outcomes: an exception class or instance is raised,
`POLL` raises the builtin TimeoutError that `FunctionCall.get(timeout=...)` raises while
the call is still running, anything else is returned.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

POLL = object()
_ids = itertools.count(1)


class _Method:
    """Something with an `.aio` coroutine, like Modal's synchronicity-wrapped methods."""

    def __init__(self, fn: Callable[..., Awaitable[Any]]) -> None:
        self.aio = fn


def _play(outcome: Any) -> Any:
    if outcome is POLL:
        raise TimeoutError()
    if isinstance(outcome, BaseException) or (
        isinstance(outcome, type) and issubclass(outcome, BaseException)
    ):
        raise outcome
    return outcome


class FakeCall:
    def __init__(self, outcomes: list[Any], modal: FakeModal) -> None:
        self.object_id = f"fc-{next(_ids)}"
        self._outcomes = list(outcomes)
        self._modal = modal
        self.cancelled = False
        self.get = _Method(self._get)
        self.cancel = _Method(self._cancel)

    async def _get(self, timeout: float | None = None) -> Any:
        self._modal.poll_timeouts.append(timeout)
        outcome = self._outcomes.pop(0) if len(self._outcomes) > 1 else self._outcomes[0]
        if outcome is POLL:
            await asyncio.sleep(timeout or 0)  # Modal waits up to `timeout` for the answer
            if self._modal.progress_script:
                self._modal.progress[self.object_id] = self._modal.progress_script.pop(0)
        return _play(outcome)

    async def _cancel(self) -> None:
        self.cancelled = True


class FakeFunction:
    def __init__(self, modal: FakeModal) -> None:
        self._modal = modal
        self.spawn = _Method(self._spawn)
        self.hydrate = _Method(self._hydrate)
        self.get_current_stats = _Method(self._stats)

    async def _spawn(self, *args: Any, **kwargs: Any) -> FakeCall:
        self._modal.spawned.append(kwargs)
        if self._modal.spawn_errors:
            raise self._modal.spawn_errors.pop(0)
        call = FakeCall(self._modal.calls.pop(0), self._modal)
        self._modal.made.append(call)
        return call

    async def _hydrate(self) -> FakeFunction:
        return _play(self._modal.hydrate_outcome) or self

    async def _stats(self) -> Any:
        return self._modal.stats


class FakeDict:
    def __init__(self, modal: FakeModal) -> None:
        self._modal = modal
        self.get = _Method(self._get)

    async def _get(self, key: str) -> Any:
        return self._modal.progress.get(key)


@dataclass
class Stats:
    backlog: int = 0
    num_total_runners: int = 0


@dataclass
class FakeModal:
    """Scripts and records: `calls` is one outcome list per spawned call."""

    calls: list[list[Any]] = field(default_factory=list)
    spawn_errors: list[BaseException] = field(default_factory=list)
    progress_script: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    hydrate_outcome: Any = None
    stats: Stats = field(default_factory=Stats)
    looked_up: list[tuple[str, str]] = field(default_factory=list)
    dicts: list[str] = field(default_factory=list)
    spawned: list[dict[str, Any]] = field(default_factory=list)
    made: list[FakeCall] = field(default_factory=list)
    poll_timeouts: list[float | None] = field(default_factory=list)

    def function_from_name(self, app_name: str, name: str, **_: Any) -> FakeFunction:
        self.looked_up.append((app_name, name))
        return FakeFunction(self)

    def dict_from_name(self, name: str, **_: Any) -> FakeDict:
        self.dicts.append(name)
        return FakeDict(self)
