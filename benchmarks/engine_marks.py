"""Marks as they come in uploads, on the real clips: what `auto` finds and what it leaves.

Run by hand:  python benchmarks/engine_marks.py [--data ../shared/data] [--clips car,tree]

Not issue 3's targets (engine_quality.py has those): a report of the engine on marks drawn
the way apps and generators draw them, where the benchmark's logos are stamped in corners.
Each clip's first 8 s at 640 px wide, encoded as an upload (H.264 crf 18), clean and with
one of these marks (text drawn by OpenCV, so no font files are needed):

* handle: white text "@blanklogo_user" at 0.6, bottom right (a short-video app's);
* shadow: white text at 0.8 with a dark shadow, top left;
* stock: large "SAMPLE" at 0.3 in the middle (a stock-footage preview's);
* jump: white "Sora" at 0.7 jumping between the top left and the bottom right every 2 s;
* visit: the same visiting three places in turn (top left, middle right, bottom left).

Per case: PSNR against the clean clip inside the mark's box (each of its places' boxes),
for the input and for the engine's output, and outside it for the output; and what the
engine reported. On the clean clips anything found is a false find: PSNR against the input
over the whole frame is printed then.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.engine_cases import Mark, read_rgb, stamp, write_clip  # noqa: E402
from benchmarks.engine_quality import (  # noqa: E402
    CLIPS,
    decode_rgb,
    psnr,
    run_engine_here,
)
from gpu.probe import probe_video  # noqa: E402

SECONDS = 8
WIDTH = 640
KINDS = ("handle", "shadow", "stock", "jump", "visit")


def text_mark(text: str, scale: float, opacity: float, shadow: bool = False) -> Mark:
    """White text (with a dark shadow 2 px down and right) as a mark at (0, 0)."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, 2)
    h, w = th + base + 8, tw + 8
    alpha = np.zeros((h, w), np.uint8)
    cv2.putText(alpha, text, (2, th + 2), cv2.FONT_HERSHEY_DUPLEX, scale, 255, 2, cv2.LINE_AA)
    colour = np.full((h, w, 3), 255.0, np.float32)
    if shadow:
        under = np.zeros_like(alpha)
        cv2.putText(under, text, (4, th + 4), cv2.FONT_HERSHEY_DUPLEX, scale, 255, 2, cv2.LINE_AA)
        colour[alpha < under] = 20.0
        alpha = np.maximum(alpha, under)
    return Mark(alpha=alpha.astype(np.float32) / 255.0 * opacity, colour=colour, x=0, y=0)


def marks_for(kind: str, w: int, h: int, frames: int, fps: float) -> list[Mark]:
    """The marks of one case, placed in a w×h frame."""
    if kind == "handle":
        m = text_mark("@blanklogo_user", 0.8, 0.6)
        m.x, m.y = w - m.alpha.shape[1] - 16, h - m.alpha.shape[0] - 16
        return [m]
    if kind == "shadow":
        m = text_mark("@blanklogo_user", 0.8, 0.8, shadow=True)
        m.x, m.y = 16, 16
        return [m]
    if kind == "stock":
        m = text_mark("SAMPLE", 2.2, 0.3)
        m.x, m.y = (w - m.alpha.shape[1]) // 2, (h - m.alpha.shape[0]) // 2
        return [m]
    step = int(round(2 * fps))
    out = []
    for i, start in enumerate(range(0, frames, step)):
        m = text_mark("Sora", 1.0, 0.7)
        mh, mw = m.alpha.shape
        places = [(16, 16), (w - mw - 16, h - mh - 16)]
        if kind == "visit":
            places[1:] = [(w - mw - 16, (h - mh) // 2), (16, h - mh - 16)]
        m.x, m.y = places[i % len(places)]
        m.start_frame, m.end_frame = start, start + step
        out.append(m)
    return out


def clean_clip(data: Path, clip: str) -> tuple[np.ndarray, float]:
    """The clip's first SECONDS at WIDTH px wide (even height), RGB."""
    path = data / "videos" / CLIPS[clip]
    frames, fps = read_rgb(path, max_frames=int(round(SECONDS * probe_video(path).fps)))
    h = int(round(frames.shape[1] * WIDTH / frames.shape[2] / 2)) * 2
    return np.stack([cv2.resize(f, (WIDTH, h), interpolation=cv2.INTER_AREA) for f in frames]), fps


def regions(report: dict) -> str:
    return (
        "; ".join(
            f"{r['method']} {r['box']} {r['start_s']:.1f}-{r['end_s'] or 0:.1f}s"
            for r in report["regions"]
        )
        or "none"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--clips", default=",".join(CLIPS), help="comma-separated clip names")
    args = parser.parse_args()
    print(f"{'case':18} {'input':>6} {'output':>7} {'outside':>8}  found")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for clip in args.clips.split(","):
            clean, fps = clean_clip(args.data, clip)
            n, h, w = clean.shape[:3]
            upload = decode_rgb(write_clip(clean, fps, tmp / "clean.mp4"), n)
            report, _wall = run_engine_here(tmp / "clean.mp4", tmp / "out.mp4", "auto")
            whole = psnr(decode_rgb(tmp / "out.mp4", n), upload)
            print(f"{clip + '/none':18} {'':>6} {'':>7} {whole:8.2f}  {regions(report)}")
            for kind in KINDS:
                marks = marks_for(kind, w, h, n, fps)
                marked = np.stack([stamp(f, marks, i) for i, f in enumerate(clean)])
                src = write_clip(marked, fps, tmp / "marked.mp4")
                report, _wall = run_engine_here(src, tmp / "out.mp4", "auto")
                out, given = decode_rgb(tmp / "out.mp4", n), decode_rgb(src, n)
                inside = np.zeros((h, w), bool)
                for x, y, bw, bh in (m.box for m in marks):  # a jumping mark's: each place's
                    inside[y : y + bh, x : x + bw] = True
                figures = [psnr(given[:, inside], clean[:, inside])]
                figures += [psnr(out[:, inside], clean[:, inside])]
                figures += [psnr(out[:, ~inside], clean[:, ~inside])]
                print(
                    f"{clip + '/' + kind:18} {figures[0]:6.2f} {figures[1]:7.2f} {figures[2]:8.2f}"
                    f"  {regions(report)}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
