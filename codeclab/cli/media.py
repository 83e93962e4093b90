"""``codeclab info``, ``convert`` and ``metrics``: looking at, converting and comparing videos."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from codeclab.cli.args import add_source_options, frame_range, frame_size, same_file, source_kwargs

__all__ = ["add_info", "add_convert", "add_metrics"]


def _cmd_info(args: argparse.Namespace) -> int:
    from codeclab.pipeline.io.sources import probe

    for path in args.files:
        info = probe(path, size=args.size, fps=args.fps, pix_fmt=args.pix_fmt)
        fmt = info.format
        n = "unknown" if info.num_frames is None else str(info.num_frames)
        dur = "unknown" if info.duration is None else f"{info.duration:.3f} s"
        rate = f"{float(fmt.fps):.6g}" + ("" if fmt.fps.denominator == 1 else f" ({fmt.fps})")
        print(f"{info.path}\n"
              f"  container  {info.container}\n"
              f"  codec      {info.codec} ({info.source_pix_fmt})\n"
              f"  format     {fmt.width}x{fmt.height} {fmt.pix_fmt} (chroma {fmt.chroma}, {fmt.bit_depth}-bit, "
              f"{fmt.matrix} {fmt.range} range)\n"
              f"  frames     {n}\n"
              f"  fps        {rate}\n"
              f"  duration   {dur}")
        if args.frames:
            _print_frames(Path(path), info.codec)
    return 0


def _print_frames(path: Path, codec: str) -> None:
    """One line per coded picture, in presentation order (``--frames``)."""
    from codeclab.pipeline.io.frame_list import list_frames

    if path.suffix.lower() == ".yuv" or codec == "rawvideo":
        print("  (uncompressed: every frame is stored as it is)")
        return
    print("  frame  decoded  type  key      bits      time")
    for f in list_frames(path):
        t = f"{f.time:9.3f}" if f.time is not None else f"{'-':>9}"
        print(f"  {f.index:5d}  {f.decode_index:7d}  {f.pict_type:>4}  {'*' if f.key else ' ':>3}  {f.bits:8d}  {t}")


def add_info(sub: Any) -> None:
    p = sub.add_parser("info", help="describe video files (format, frames, fps, duration, codec)",
                       description="Print what codeclab sees in each file: container, codec, the planar "
                       "YUV format frames are delivered in, frame count, rate and duration; with --frames "
                       "also each coded picture (the per-frame QP is in transcode's --metrics file).",
                       epilog="examples:\n  codeclab info clip.mp4\n  codeclab info --frames out.mp4\n"
                       "  codeclab info BasketballDrive_1920x1080_50fps_8bit_420.yuv\n"
                       "  codeclab info raw.yuv --size 352x288 --pix-fmt yuv420p --fps 30",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--size", type=frame_size, metavar="WxH", help="frame size of raw .yuv files")
    p.add_argument("--fps", metavar="RATE", help="frame rate of raw files")
    p.add_argument("--pix-fmt", metavar="FMT", help="pixel format of raw .yuv files")
    p.add_argument("--frames", action="store_true",
                   help="list every coded picture in presentation order: its place in decoding order, "
                   "type (I/P/B), random access point, bits and time")
    p.set_defaults(func=_cmd_info)


def _cmd_convert(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from codeclab.base.errors import UsageError
    from codeclab.pipeline.io.sinks import open_sink
    from codeclab.pipeline.io.sources import open_source

    if same_file(Path(args.input), Path(args.output)):
        raise UsageError(f"{args.output}: output would overwrite the input")
    rng = frame_range(args)
    n = 0
    with open_source(args.input, frames=rng, **source_kwargs(args)) as src:
        total = len(rng.indices(src.num_frames)) if src.num_frames is not None else None
        with open_sink(args.output, src.format) as sink, \
                tqdm(total=total, unit="frame", file=sys.stderr, leave=False,
                     disable=args.quiet or not sys.stderr.isatty()) as bar:
            for frame in src:
                sink.write(frame)
                n += 1
                bar.update(1)
            if n == 0:
                raise UsageError(f"{args.input}: no frames selected (start {rng.start}, step {rng.step})")
        fmt = src.format
    if not args.quiet:
        print(f"{args.output}: {n} frames of {fmt}")
    return 0


def add_convert(sub: Any) -> None:
    p = sub.add_parser("convert", help="decode any video and write .y4m/.yuv/.mkv (lossless FFV1)/.mp4",
                       description="Decode IN (anything FFmpeg reads, raw .yuv, .y4m, .vpy) and write its frames "
                       "to OUT, chosen by extension: .y4m, .yuv, .mkv (lossless FFV1), .mp4/.mov (x264 CRF 18, "
                       "for viewing).",
                       epilog="examples:\n  codeclab convert clip.mp4 -o clip.y4m\n"
                       "  codeclab convert clip.mp4 -o clip10.yuv --to-pix-fmt yuv420p10le --frames 10\n"
                       "  codeclab convert raw.yuv --size 1920x1080 --fps 50 -o raw.mkv",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    add_source_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=_cmd_convert)


def _cmd_metrics(args: argparse.Namespace) -> int:
    from codeclab.base.errors import UsageError
    from codeclab.pipeline.compare import compare_videos

    for out in (args.csv, args.json):
        if out is not None and (same_file(Path(out), Path(args.ref)) or same_file(Path(out), Path(args.dist))):
            raise UsageError(f"{out}: output would overwrite an input")
    log, fps = compare_videos(args.ref, args.dist, frames=frame_range(args), ms_ssim=not args.no_ms_ssim,
                              **source_kwargs(args))
    if args.csv:
        log.write_csv(args.csv)
    if args.json:
        log.write_json(args.json, fps)
    if not args.quiet:
        _print_metrics_table(log)
    return 0


def _print_metrics_table(log: Any) -> None:
    cols = [c for c in ("psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "ms_ssim_y") if c in log.columns]
    head = {"psnr_y": "PSNR-Y", "psnr_u": "PSNR-U", "psnr_v": "PSNR-V", "psnr_yuv": "PSNR-YUV", "ms_ssim_y": "MS-SSIM-Y"}
    print(f"{'frame':>7} " + " ".join(f"{head[c]:>10}" for c in cols))

    def cell(c: str, v: Any) -> str:
        return f"{v:10.6f}" if c == "ms_ssim_y" else f"{v:10.3f}"

    for r in log.rows:
        print(f"{r['frame']:>7} " + " ".join(cell(c, r[c]) if c in r else f"{'':>10}" for c in cols))
    s = log.summary()
    print(f"{'mean':>7} " + " ".join(cell(c, s[c]) for c in cols) + f"   ({len(log)} frames)")


def add_metrics(sub: Any) -> None:
    p = sub.add_parser("metrics", help="PSNR (Y/U/V/YUV) and MS-SSIM of DIST against REF, per frame",
                       description="Compare two videos frame by frame (same size, chroma and bit depth). PSNR "
                       "peak is 2^bitdepth-1; PSNR-YUV = (6Y+U+V)/8 (JVET); identical frames read 100 dB. "
                       "Prints a per-frame table and the means.",
                       epilog="examples:\n  codeclab metrics ref.y4m decoded.mp4\n"
                       "  codeclab metrics ref.mp4 out.mp4 --csv m.csv --json m.json\n"
                       "  codeclab metrics Seq_1920x1080_50fps_10bit_420.yuv rec.yuv --step 8",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ref", metavar="REF")
    p.add_argument("dist", metavar="DIST")
    p.add_argument("--csv", metavar="FILE", help="write per-frame rows as CSV")
    p.add_argument("--json", metavar="FILE", help="write per-frame rows and a summary as JSON")
    p.add_argument("--no-ms-ssim", action="store_true", help="skip MS-SSIM (faster)")
    add_source_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no table on stdout")
    p.set_defaults(func=_cmd_metrics)
