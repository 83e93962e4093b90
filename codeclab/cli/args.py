"""Argument helpers every command shares: number and size types, the source options.

One copy of each, so ``--frames`` means the same in ``convert``, ``metrics``,
``transcode`` and ``decode``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["nonneg", "positive", "frame_size", "add_source_options", "source_kwargs", "frame_range",
           "progress_on", "same_file"]


def nonneg(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return v


def positive(text: str) -> int:
    v = nonneg(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text}")
    return v


def frame_size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) < 1 or int(h) < 1:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1920x1080, got {text!r}")
    return int(w), int(h)


def add_source_options(p: argparse.ArgumentParser, *, convert: bool = True) -> None:
    """``--start --frames --step`` and the raw-input options shared by convert/transcode/metrics."""
    g = p.add_argument_group("frames")
    g.add_argument("--start", type=nonneg, default=0, metavar="N", help="first frame (0-based, default 0)")
    g.add_argument("--frames", type=positive, default=None, metavar="N", help="at most N frames (default: all)")
    g.add_argument("--step", type=positive, default=1, metavar="N", help="every N-th frame (default 1; JVET AI: 8)")
    r = p.add_argument_group("raw input (.yuv; also checked against other files)")
    r.add_argument("--size", type=frame_size, metavar="WxH", help="frame size, e.g. 1920x1080 (default: from a "
                   "JVET-style name such as Name_1920x1080_50fps_10bit_420.yuv)")
    r.add_argument("--fps", metavar="RATE", help="frame rate, e.g. 50, 30000/1001 or 29.97 (overrides the file)")
    r.add_argument("--pix-fmt", metavar="FMT", help="pixel format, e.g. yuv420p, yuv420p10le, yuv444p")
    if convert:
        c = p.add_argument_group("conversion")
        c.add_argument("--to-pix-fmt", metavar="FMT", help="convert every frame (swscale), e.g. yuv420p10le")
        c.add_argument("--matrix", metavar="M", help="RGB->YUV matrix[:range] (bt709, bt601, bt2020nc; "
                       "e.g. bt709:full), or the tag of raw files")


def source_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return dict(size=args.size, fps=args.fps, pix_fmt=args.pix_fmt,
                to_pix_fmt=getattr(args, "to_pix_fmt", None), matrix=getattr(args, "matrix", None))


def frame_range(args: argparse.Namespace) -> Any:
    from codeclab.pipeline.io.sources import FrameRange

    return FrameRange(args.start, args.frames, args.step)


def progress_on(args: argparse.Namespace) -> bool:
    return not args.quiet



def same_file(a: Path, b: Path) -> bool:
    return a.exists() and b.exists() and a.resolve() == b.resolve()
