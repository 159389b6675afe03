"""Stand-in engines for the engine child (`LocalEngine(target="tests.pipeline.stand_in_engine:…")`).

They keep the real child machinery (process, protocol, kill, timeout) under test without
the cost of the real engine.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core.errors import NotAVideo


def _note_pid(options: Mapping[str, Any]) -> None:
    if options.get("pid_file"):
        Path(options["pid_file"]).write_text(str(os.getpid()))


def copy(
    input_path: str,
    output_path: str,
    options: Mapping[str, Any],
    progress: Callable[[float, str], None] | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Copy the input to the output, reporting progress like the engine does."""
    _note_pid(options)
    print("stand-in engine chatter on stdout must not break the protocol")
    for step, fraction in (("detecting", 0.2), ("removing", 0.6), ("encoding", 0.9)):
        if progress:
            progress(fraction, step)
    shutil.copyfile(input_path, output_path)
    return {"regions": [], "frames": 0, "device": "cpu", "stand_in": True}


def hang(
    input_path: str, output_path: str, options: Mapping[str, Any], progress: Any = None, **_: Any
) -> dict[str, Any]:
    """Never finish (a decoder stuck on a hostile file)."""
    _note_pid(options)
    if progress:
        progress(0.1, "removing")
    while True:
        time.sleep(0.05)


def crash(
    input_path: str, output_path: str, options: Mapping[str, Any], progress: Any = None, **_: Any
) -> dict[str, Any]:
    """Die the way a segfaulting native library does."""
    _note_pid(options)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def not_a_video(
    input_path: str, output_path: str, options: Mapping[str, Any], progress: Any = None, **_: Any
) -> dict[str, Any]:
    """Refuse the input as the real engine does for a non-video."""
    raise NotAVideo("this file is not a video we can read")
