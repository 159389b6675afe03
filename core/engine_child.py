"""`python -m core.engine_child`: runs the removal engine on one file in its own process.

The worker starts this child so that a hung or crashing engine can be killed without
harming the worker. Protocol:

* stdin: one JSON object {"input", "output", "options", "device", "limits", "target"};
* stdout: JSON lines; {"progress": 0-100, "step": str} while working, and as the last line
  either {"ok": true, "report": {...}} or {"ok": false, "error": ClassName, "message": str};
* anything else the engine prints goes to stderr (fd 1 is redirected there).

`target` ("module:function", default "gpu.engine:process") exists so tests can run a
stand-in engine through the very same child machinery.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import time
from typing import IO, Any

DEFAULT_TARGET = "gpu.engine:process"
PROGRESS_EVERY_S = 0.25
PARENT_CHECK_S = 0.5


def _stop_when_orphaned(parent: int) -> None:
    """Kill this child (and its ffmpeg children) once the worker that started it is gone."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    if os.getpgrp() == os.getpid():  # our own group (LocalEngine starts a new session)
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _limits(values: dict[str, Any] | None) -> Any:
    if not values:
        return None
    from gpu.engine import Limits

    return Limits(**values)


class _Reporter:
    """Writes throttled progress lines; the engine reports a fraction 0-1 or a percent."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.last_at = 0.0
        self.last: tuple[int, str] | None = None

    def __call__(self, value: float, step: str = "processing") -> None:
        percent = int(round(value * 100 if value <= 1.0 else value))
        percent = max(0, min(100, percent))
        now = time.monotonic()
        current = (percent, step)
        step_changed = self.last is None or step != self.last[1]
        if current == self.last or (not step_changed and now - self.last_at < PROGRESS_EVERY_S):
            return
        self.last, self.last_at = current, now
        write(self.out, {"progress": percent, "step": step})


def write(out: IO[str], message: dict[str, Any]) -> None:
    out.write(json.dumps(message, default=str) + "\n")
    out.flush()


def main() -> int:
    # a SIGKILLed worker cannot kill us; nobody would read our result, so stop as well
    threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), daemon=True).start()
    # keep the protocol channel private: whatever the engine prints goes to stderr
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        request = json.loads(sys.stdin.read())
        process = _load(request.get("target") or DEFAULT_TARGET)
        kwargs: dict[str, Any] = {"device": request.get("device", "auto")}
        limits = _limits(request.get("limits"))
        if limits is not None:
            kwargs["limits"] = limits
        report = process(
            request["input"],
            request["output"],
            request.get("options") or {},
            _Reporter(out),
            **kwargs,
        )
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the parent
        write(out, {"ok": False, "error": exc.__class__.__name__, "message": str(exc)[:2000]})
        return 1
    write(out, {"ok": True, "report": report if isinstance(report, dict) else {}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
