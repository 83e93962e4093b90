"""``codeclab transcode`` (code a video, write it, measure it) and ``codeclab decode``
(our ``.clc`` container back to pictures)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from codeclab.cli.args import add_source_options, frame_range, nonneg, positive, progress_on, source_kwargs
from codeclab.cli.codec_flags import add_codec_options, codec_values

__all__ = ["add_transcode", "add_decode"]


def _summary_line(r: Any) -> str:
    s = r.summary
    parts = [f"{r.frames} frames {r.format.width}x{r.format.height} {r.format.pix_fmt}",
             f"{r.bitrate_kbps:.1f} kbit/s"]
    for key, label, fmt in (("psnr_y", "PSNR-Y", ".2f"), ("psnr_yuv", "PSNR-YUV", ".2f"), ("ms_ssim_y", "MS-SSIM", ".4f")):
        if key in s:
            parts.append(f"{label} {s[key]:{fmt}}")
    return f"{r.output}: {r.codec}, " + ", ".join(parts)


def _jobs(args: argparse.Namespace, spec: Any, options: Any) -> int:
    """--jobs, default the usable cores; a codec that codes in order gets one (a note if asked for more)."""
    from codeclab.base.pool import usable_cpus

    if not spec.parallel(options):
        if args.jobs is not None and args.jobs > 1 and not args.quiet:
            print(f"codeclab: note: codec {spec.name} codes frames in order; --jobs {args.jobs} is ignored",
                  file=sys.stderr)
        return 1
    return args.jobs if args.jobs is not None else usable_cpus()


def _cmd_transcode(args: argparse.Namespace) -> int:
    from codeclab.codecs.base import get_codec, make_options
    from codeclab.pipeline.transcode import transcode

    spec = get_codec(args.codec)
    options = make_options(spec, codec_values(args))  # usage errors before any file is opened
    r = transcode(args.input, args.output, spec, options, frames=frame_range(args), metrics_path=args.metrics,
                  recon_path=args.recon, progress=progress_on(args), ms_ssim=not args.no_ms_ssim,
                  jobs=_jobs(args, spec, options), **source_kwargs(args))
    if not args.quiet:
        print(_summary_line(r))
    return 0


def add_transcode(sub: Any) -> None:
    p = sub.add_parser("transcode", help="code a video with a codec, write a playable file, measure every frame",
                       description="Decode IN, code every selected frame with CODEC, write OUT (.mp4/.mkv/.mov or a "
                       "raw .hevc/.h264 stream for standard codecs, .clc for our own container), decode it back and "
                       "measure each decoded frame against the source. The source's chroma and bit depth are kept "
                       "(4:4:4 stays 4:4:4) unless --to-pix-fmt converts them. x265/x264 are all-intra at a flat QP "
                       "by default (the anchors of our intra codecs).",
                       epilog="examples:\n"
                       "  codeclab transcode clip.mp4 -o out.mp4 --codec x265 --qp 32 --metrics out.csv\n"
                       "  codeclab transcode clip.mp4 -o out.hevc --crf 28 --preset slow --keyint 50\n"
                       "  codeclab transcode clip.mp4 -o out.mkv --to-pix-fmt yuv420p10le --recon rec.y4m\n"
                       "  codeclab transcode clip.mp4 -o out.hevc --codec hevc --preset fast --jobs 2\n"
                       "  codeclab transcode Seq_1920x1080_50fps_8bit_420.yuv -o a.mp4 --step 8 --frames 4 "
                       "-x params=sao=0",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    add_codec_options(p)
    o = p.add_argument_group("outputs")
    o.add_argument("--metrics", metavar="FILE", help="per-frame metrics, .csv or .json (with a summary)")
    o.add_argument("--recon", metavar="FILE", help="decoded frames, .y4m/.yuv/.mkv (lossless FFV1)")
    o.add_argument("--no-ms-ssim", action="store_true", help="skip MS-SSIM (faster)")
    add_source_options(p)
    p.add_argument("-j", "--jobs", type=positive, default=None, metavar="N",
                   help="code N frames at once in worker processes, same bytes as one (codecs whose pictures "
                   "are independent: hevc, overfit; default: the usable cores; other codecs code in order)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=_cmd_transcode)


def _cmd_decode(args: argparse.Namespace) -> int:
    from codeclab.pipeline.clc.decode import decode_clc

    r = decode_clc(args.input, args.output, start=args.start, frames=args.frames, step=args.step,
                   progress=not args.quiet)
    if not args.quiet:
        kbps = r.bits * float(r.format.fps) / r.frames / 1000 if r.frames else 0.0
        print(f"{args.input}: {r.frames} frames of {r.format} decoded with {r.codec} "
              f"({kbps:.1f} kbit/s) -> {r.output}", file=sys.stderr)
    return 0


def add_decode(sub: Any) -> None:
    p = sub.add_parser(
        "decode",
        help="decode our own .clc container (learned codec) to .y4m/.yuv/.mkv",
        description="Decode a .clc file with the codec named in its header and write the frames.",
        epilog="examples:\n  codeclab decode out.clc -o out.y4m\n"
               "  codeclab decode out.clc -o part.mkv --start 10 --frames 5   # lossless FFV1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help=".clc file")
    p.add_argument("-o", "--output", required=True, help="output .y4m, .yuv or .mkv (lossless FFV1)")
    p.add_argument("--start", type=nonneg, default=0, help="first frame (0-based, default 0)")
    p.add_argument("--frames", type=nonneg, default=None, help="number of frames (default: to the end)")
    p.add_argument("--step", type=positive, default=1, help="take every N-th frame (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary line")
    p.set_defaults(func=_cmd_decode)
