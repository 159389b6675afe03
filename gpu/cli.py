"""`blanklogo remove IN -o OUT`: remove the watermark from one video file.

torch and the engine are imported inside `run`, so `blanklogo --help` stays light.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from core.errors import BlankLogoError, InputError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `blanklogo remove`."""
    parser.add_argument("input", type=Path, help="the video with a watermark")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="where to write the cleaned MP4"
    )
    parser.add_argument(
        "--region",
        default="auto",
        help="auto (default), a box x,y,w,h in pixels of the picture as shown, or top-left|top-right|bottom-left|bottom-right",
    )
    parser.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="torch device"
    )
    parser.add_argument("--report", type=Path, help="also write the engine's report as JSON here")
    parser.add_argument(
        "--max-duration", type=float, default=None, help="refuse videos longer than this (s)"
    )
    parser.add_argument(
        "--max-size", type=int, default=None, help="refuse videos with a side longer than this"
    )


class _Bar:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.last = -1

    def __call__(self, value: float, step: str) -> None:
        if not self.enabled:
            return
        percent = int(max(0.0, min(1.0, value)) * 100)
        if percent == self.last:
            return
        self.last = percent
        filled = percent * 30 // 100
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {percent:3d}% {step:<28}")
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled and self.last >= 0:
            sys.stderr.write("\n")


def _summary(report: dict, elapsed: float) -> str:
    regions = report.get("regions") or []
    if regions:
        found = "; ".join(
            f"{r['method']} at {','.join(str(v) for v in r['box'])} (opacity {r['opacity']:.2f}, "
            f"{r['start_s']:.1f}-{r['end_s']:.1f}s)"
            for r in regions
        )
        what = f"removed {len(regions)} mark(s): {found}"
    else:
        what = "no watermark found; picture left as it was (re-encoded)"
    return f"{what} | {report['frames']} frames {report['width']}x{report['height']} | {elapsed:.1f}s on {report['device']}"


def run(args: argparse.Namespace) -> int:
    """Run the engine on one file; 0 on success, 2 for unusable input, 1 for engine failures."""
    from gpu.engine import Limits, process

    defaults = Limits()
    limits = Limits(
        max_width=args.max_size or defaults.max_width,
        max_height=args.max_size or defaults.max_height,
        max_duration_s=args.max_duration or defaults.max_duration_s,
    )
    output: Path = args.output
    if output.exists() and output.is_dir():
        print(f"blanklogo remove: {output} is a directory; give a file name", file=sys.stderr)
        return 2
    if not output.parent.is_dir():
        print(f"blanklogo remove: the folder {output.parent} does not exist", file=sys.stderr)
        return 2
    bar = _Bar(sys.stderr.isatty())
    started = time.monotonic()
    try:
        report = process(
            args.input, output, {"region": args.region}, bar, device=args.device, limits=limits
        )
    except InputError as exc:
        bar.end()
        print(f"blanklogo remove: {args.input}: {exc}", file=sys.stderr)
        return 2
    except BlankLogoError as exc:
        bar.end()
        print(f"blanklogo remove: failed: {exc}", file=sys.stderr)
        return 1
    bar.end()
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(_summary(report, time.monotonic() - started))
    return 0
