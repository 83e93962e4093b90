"""``codeclab decode IN.clc -o OUT.y4m|.yuv|.mkv``: our container back to pictures.

The codec comes from the registry by the name in the stream header, frames go to
``sinks.open_sink`` (atomic: nothing appears under OUT unless every frame was written).
``add_decode_cli(subparsers)`` adds the command to the main CLI; it sets ``func(args) -> int``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..frame import VideoFormat
from .clc_source import ClcSource

__all__ = ["DecodeResult", "decode_clc", "add_decode_cli"]


@dataclass(frozen=True)
class DecodeResult:
    output: Path
    codec: str
    format: VideoFormat
    frames: int
    bits: int


def decode_clc(path: str | os.PathLike[str], output: str | os.PathLike[str], *, start: int = 0,
               frames: int | None = None, step: int = 1, progress: bool = False) -> DecodeResult:
    """Decode ``frames`` frames of a ``.clc`` file from ``start`` (every ``step``-th) into ``output``.

    ``progress`` shows a tqdm bar on stderr when stderr is a terminal.
    """
    from tqdm import tqdm

    from .sinks import open_sink
    from .sources import FrameRange

    with ClcSource(path, frames=FrameRange(start, frames, step)) as src:
        n = bits = 0
        with open_sink(output, src.format) as sink, \
                tqdm(total=src.num_frames, unit="frame", file=sys.stderr, leave=False,
                     disable=not (progress and sys.stderr.isatty())) as bar:
            for frame in src:
                sink.write(frame)
                n += 1
                bits += int(frame.props.get("bits", 0))
                bar.update(1)
        return DecodeResult(Path(output), src.header.codec, src.format, n, bits)


def _cmd_decode(args: argparse.Namespace) -> int:
    r = decode_clc(args.input, args.output, start=args.start, frames=args.frames, step=args.step,
                   progress=not args.quiet)
    if not args.quiet:
        kbps = r.bits * float(r.format.fps) / r.frames / 1000 if r.frames else 0.0
        print(f"{args.input}: {r.frames} frames of {r.format} decoded with {r.codec} "
              f"({kbps:.1f} kbit/s) -> {r.output}", file=sys.stderr)
    return 0


def _nonneg(text: str) -> int:
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return v


def _positive(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text}")
    return v


def add_decode_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``decode`` to the main CLI's sub-parsers."""
    p = subparsers.add_parser(
        "decode",
        help="decode our own .clc container (learned codec) to .y4m/.yuv/.mkv",
        description="Decode a .clc file with the codec named in its header and write the frames.",
        epilog="examples:\n  codeclab decode out.clc -o out.y4m\n"
               "  codeclab decode out.clc -o part.mkv --start 10 --frames 5   # lossless FFV1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help=".clc file")
    p.add_argument("-o", "--output", required=True, help="output .y4m, .yuv or .mkv (lossless FFV1)")
    p.add_argument("--start", type=_nonneg, default=0, help="first frame (0-based, default 0)")
    p.add_argument("--frames", type=_nonneg, default=None, help="number of frames (default: to the end)")
    p.add_argument("--step", type=_positive, default=1, help="take every N-th frame (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary line")
    p.set_defaults(func=_cmd_decode)
    return p
