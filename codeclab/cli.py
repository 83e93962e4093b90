"""The ``codeclab`` command: argument parsing only; every command is a thin call into the layers.

Adding a command
    Write ``add_<name>(subparsers)`` that adds a sub-parser and sets ``func(args) -> int``,
    and list it in :data:`COMMANDS`. Commands defined in other modules are listed in
    :data:`PLUGIN_COMMANDS` as ``"module:adder"`` and imported only when invoked (so
    ``codeclab info`` never imports torch).

Codec flags
    ``transcode`` flags that set codec options are declared once in :data:`CODEC_FLAGS`
    (``codec_flag(...)`` adds one). Every such flag, and every ``-x key=value``, goes
    through :func:`~codeclab.codecs.base.make_options`, so a flag the chosen codec does not
    have is a usage error listing the options it does have.

Errors
    Exit 0 on success, 2 on usage errors (argparse's and :class:`UsageError`), 1 on any
    other failure, 130 on Ctrl-C. Every :class:`CodeclabError` and ``OSError`` is printed
    as one line ``codeclab: error: <message>`` on stderr; ``CODECLAB_DEBUG=1`` shows the
    traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import __version__

__all__ = ["main", "build_parser", "COMMANDS", "PLUGIN_COMMANDS", "CODEC_FLAGS", "CodecFlag", "codec_flag"]

PROG = "codeclab"


# ---------------------------------------------------------------------------------------
# shared option groups


def _nonneg(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return v


def _positive(text: str) -> int:
    v = _nonneg(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text}")
    return v


def _size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) < 1 or int(h) < 1:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1920x1080, got {text!r}")
    return int(w), int(h)


def _add_source_options(p: argparse.ArgumentParser, *, convert: bool = True) -> None:
    """``--start --frames --step`` and the raw-input options shared by convert/transcode/metrics."""
    g = p.add_argument_group("frames")
    g.add_argument("--start", type=_nonneg, default=0, metavar="N", help="first frame (0-based, default 0)")
    g.add_argument("--frames", type=_positive, default=None, metavar="N", help="at most N frames (default: all)")
    g.add_argument("--step", type=_positive, default=1, metavar="N", help="every N-th frame (default 1; JVET AI: 8)")
    r = p.add_argument_group("raw input (.yuv; also checked against other files)")
    r.add_argument("--size", type=_size, metavar="WxH", help="frame size, e.g. 1920x1080 (default: from a "
                   "JVET-style name such as Name_1920x1080_50fps_10bit_420.yuv)")
    r.add_argument("--fps", metavar="RATE", help="frame rate, e.g. 50, 30000/1001 or 29.97 (overrides the file)")
    r.add_argument("--pix-fmt", metavar="FMT", help="pixel format, e.g. yuv420p, yuv420p10le, yuv444p")
    if convert:
        c = p.add_argument_group("conversion")
        c.add_argument("--to-pix-fmt", metavar="FMT", help="convert every frame (swscale), e.g. yuv420p10le")
        c.add_argument("--matrix", metavar="M", help="RGB->YUV matrix[:range] (bt709, bt601, bt2020nc; "
                       "e.g. bt709:full), or the tag of raw files")


def _source_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return dict(size=args.size, fps=args.fps, pix_fmt=args.pix_fmt,
                to_pix_fmt=getattr(args, "to_pix_fmt", None), matrix=getattr(args, "matrix", None))


def _frame_range(args: argparse.Namespace) -> Any:
    from .pipeline.sources import FrameRange

    return FrameRange(args.start, args.frames, args.step)


def _progress_on(args: argparse.Namespace) -> bool:
    return not args.quiet


# ---------------------------------------------------------------------------------------
# codec flags


@dataclass(frozen=True)
class CodecFlag:
    """A command-line flag that sets the codec option ``option`` (see the module docstring)."""

    flag: str
    option: str
    help: str
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra argparse keywords (metavar, action, const)


#: Flags of ``transcode`` that set codec options; a codec that lacks the option rejects the flag.
CODEC_FLAGS: list[CodecFlag] = [
    CodecFlag("--qp", "qp", "quantisation parameter of every picture (x265/x264 default 32)", {"metavar": "QP"}),
    CodecFlag("--crf", "crf", "constant rate factor instead of a fixed QP (x265/x264)", {"metavar": "CRF"}),
    CodecFlag("--preset", "preset", "encoder speed preset (x265/x264: ultrafast ... veryslow; hevc: fast, medium, slow; default medium)",
              {"metavar": "NAME"}),
    CodecFlag("--tune", "tune", "encoder tuning (x265/x264: psnr, ssim, grain ...)", {"metavar": "NAME"}),
    CodecFlag("--keyint", "keyint", "intra period (x265/x264 default 1 = all-intra; >1 gives I+P)", {"metavar": "N"}),
    CodecFlag("--bit-depth", "bit_depth", "internal bit depth of the codec (default: the source's)", {"metavar": "B"}),
    CodecFlag("--quality", "quality", "rate point of the learned codec (lic)", {"metavar": "Q"}),
    # our HEVC encoder (codec hevc)
    CodecFlag("--ctb", "ctb", "CTB size 16, 32 or 64 (hevc, default 32)", {"metavar": "N"}),
    CodecFlag("--no-deblock", "deblock", "switch the deblocking filter off (hevc)",
              {"action": "store_const", "const": False}),
    CodecFlag("--no-sao", "sao", "switch SAO off (hevc)", {"action": "store_const", "const": False}),
    CodecFlag("--sign-hiding", "sign_hiding", "sign data hiding on (hevc default)",
              {"action": "store_const", "const": True}),
    CodecFlag("--no-sign-hiding", "sign_hiding", "sign data hiding off (hevc)",
              {"action": "store_const", "const": False}),
    CodecFlag("--transform-skip", "transform_skip", "allow 4x4 transform skip (hevc)",
              {"action": "store_const", "const": True}),
    CodecFlag("--quant", "quant", "quantiser of our HEVC encoder: sq (default), rdoq ...", {"metavar": "NAME"}),
]


def codec_flag(flag: str, option: str | None = None, help: str = "", **kwargs: Any) -> CodecFlag:
    """Declare one more codec flag, e.g. ``codec_flag("--no-deblock", "deblock", action="store_const", const=False)``."""
    f = CodecFlag(flag, option or flag.lstrip("-").replace("-", "_"), help, kwargs)
    CODEC_FLAGS.append(f)
    return f


def _add_codec_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("codec", "flags the chosen codec does not have are rejected; "
                             "`codeclab codecs` lists every codec's options")
    g.add_argument("--codec", "-c", default="x265", metavar="NAME", help="codec (default x265; see `codeclab codecs`)")
    for f in CODEC_FLAGS:
        kw = dict(f.kwargs)
        kw.setdefault("default", None)
        g.add_argument(f.flag, dest=f"codec_opt__{f.option}", help=f.help, **kw)
    g.add_argument("-x", dest="codec_x", action="append", default=[], metavar="KEY=VALUE",
                   help="any codec option by name, e.g. -x params=sao=0 (repeatable)")


def _codec_values(args: argparse.Namespace) -> dict[str, Any]:
    """Every codec flag given, plus ``-x`` pairs, as loosely typed values for ``make_options``."""
    from .errors import UsageError

    values: dict[str, Any] = {}
    for k, v in vars(args).items():
        if k.startswith("codec_opt__") and v is not None:
            values[k[len("codec_opt__"):]] = v
    for item in args.codec_x:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"-x {item!r}: expected KEY=VALUE")
        if key in values:
            raise UsageError(f"codec option {key!r} given twice")
        values[key] = value
    return values


# ---------------------------------------------------------------------------------------
# commands


def _cmd_info(args: argparse.Namespace) -> int:
    from .pipeline.sources import probe

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
    return 0


def add_info(sub: Any) -> None:
    p = sub.add_parser("info", help="describe video files (format, frames, fps, duration, codec)",
                       description="Print what codeclab sees in each file: container, codec, the planar "
                       "YUV format frames are delivered in, frame count, rate and duration.",
                       epilog="examples:\n  codeclab info clip.mp4\n"
                       "  codeclab info BasketballDrive_1920x1080_50fps_8bit_420.yuv\n"
                       "  codeclab info raw.yuv --size 352x288 --pix-fmt yuv420p --fps 30",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--size", type=_size, metavar="WxH", help="frame size of raw .yuv files")
    p.add_argument("--fps", metavar="RATE", help="frame rate of raw files")
    p.add_argument("--pix-fmt", metavar="FMT", help="pixel format of raw .yuv files")
    p.set_defaults(func=_cmd_info)


def _same_file(a: Path, b: Path) -> bool:
    return a.exists() and b.exists() and a.resolve() == b.resolve()


def _cmd_convert(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .errors import UsageError
    from .pipeline.sinks import open_sink
    from .pipeline.sources import open_source

    if _same_file(Path(args.input), Path(args.output)):
        raise UsageError(f"{args.output}: output would overwrite the input")
    rng = _frame_range(args)
    n = 0
    with open_source(args.input, frames=rng, **_source_kwargs(args)) as src:
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
    _add_source_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=_cmd_convert)


def _cmd_metrics(args: argparse.Namespace) -> int:
    from .errors import FormatError, InputError, UsageError
    from .pipeline.metrics import MetricsLog, frame_metrics
    from .pipeline.sources import open_source

    rng = _frame_range(args)
    kw = _source_kwargs(args)
    for out in (args.csv, args.json):
        if out is not None and (_same_file(Path(out), Path(args.ref)) or _same_file(Path(out), Path(args.dist))):
            raise UsageError(f"{out}: output would overwrite an input")
    log = MetricsLog()

    def opts_for(path: str) -> dict[str, Any]:  # --size/--pix-fmt describe raw files only
        raw = Path(path).suffix.lower() == ".yuv"
        return dict(kw, size=kw["size"] if raw else None, pix_fmt=kw["pix_fmt"] if raw else None)

    with open_source(args.ref, frames=rng, **opts_for(args.ref)) as ref:
        dist_kw = opts_for(args.dist)
        if Path(args.dist).suffix.lower() == ".yuv" and args.size is None and args.pix_fmt is None:
            try:  # a raw DIST that does not describe itself takes REF's geometry
                dist = open_source(args.dist, frames=rng, **dist_kw)
            except UsageError:
                dist_kw.update(size=(ref.format.width, ref.format.height), pix_fmt=ref.format.pix_fmt,
                               fps=args.fps or ref.format.fps)
                dist = open_source(args.dist, frames=rng, **dist_kw)
        else:
            dist = open_source(args.dist, frames=rng, **dist_kw)
        with dist:
            a, b = ref.format, dist.format
            if (a.width, a.height, a.chroma, a.bit_depth) != (b.width, b.height, b.chroma, b.bit_depth):
                raise FormatError(f"{args.dist}: is {b.width}x{b.height} {b.pix_fmt}, {args.ref} is "
                                  f"{a.width}x{a.height} {a.pix_fmt} (convert one with --to-pix-fmt)")
            it_ref, it_dist = iter(ref), iter(dist)
            for fr in it_ref:
                fd = next(it_dist, None)
                if fd is None:
                    raise InputError(f"{args.dist}: has {len(log)} frames (of those selected), {args.ref} has more "
                                     "(select a common range with --frames)")
                row = {"frame": fr.index}
                row.update(frame_metrics(fr, fd, ms_ssim=not args.no_ms_ssim))
                log.add(row)
            if next(it_dist, None) is not None:
                raise InputError(f"{args.dist}: has more frames than {args.ref} ({len(log)}) "
                                 "(select a common range with --frames)")
        fps = ref.format.fps / rng.step
    if not len(log):
        raise UsageError(f"{args.ref}: no frames selected")
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
    _add_source_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no table on stdout")
    p.set_defaults(func=_cmd_metrics)


def _summary_line(r: Any) -> str:
    s = r.summary
    parts = [f"{r.frames} frames {r.format.width}x{r.format.height} {r.format.pix_fmt}",
             f"{r.bitrate_kbps:.1f} kbit/s"]
    for key, label, fmt in (("psnr_y", "PSNR-Y", ".2f"), ("psnr_yuv", "PSNR-YUV", ".2f"), ("ms_ssim_y", "MS-SSIM", ".4f")):
        if key in s:
            parts.append(f"{label} {s[key]:{fmt}}")
    return f"{r.output}: {r.codec}, " + ", ".join(parts)


def _cmd_transcode(args: argparse.Namespace) -> int:
    from .codecs.base import get_codec, make_options
    from .pipeline.transcode import transcode

    spec = get_codec(args.codec)
    options = make_options(spec, _codec_values(args))  # usage errors before any file is opened
    r = transcode(args.input, args.output, spec, options, frames=_frame_range(args), metrics_path=args.metrics,
                  recon_path=args.recon, progress=_progress_on(args), ms_ssim=not args.no_ms_ssim,
                  **_source_kwargs(args))
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
                       "  codeclab transcode Seq_1920x1080_50fps_8bit_420.yuv -o a.mp4 --step 8 --frames 4 "
                       "-x params=sao=0",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    _add_codec_options(p)
    o = p.add_argument_group("outputs")
    o.add_argument("--metrics", metavar="FILE", help="per-frame metrics, .csv or .json (with a summary)")
    o.add_argument("--recon", metavar="FILE", help="decoded frames, .y4m/.yuv/.mkv (lossless FFV1)")
    o.add_argument("--no-ms-ssim", action="store_true", help="skip MS-SSIM (faster)")
    _add_source_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=_cmd_transcode)


def _cmd_demo(args: argparse.Namespace) -> int:
    from .pipeline.demo import demo_clip, run_demo

    runs = run_demo(args.out, progress=_progress_on(args))
    print(f"demo clip: {demo_clip()}")
    labels = [run.codec + "".join(f" {k}={v}" for k, v in run.options.items()) for run in runs]
    w = max(18, *(len(label) for label in labels))
    print(f"{'codec':<{w}} {'kbit/s':>9} {'PSNR-Y':>8} {'PSNR-YUV':>9} {'MS-SSIM':>8}")
    for run, label in zip(runs, labels):
        if run.result is None:
            print(f"{label:<{w}} skipped: {run.note}")
            continue
        s = run.result.summary
        print(f"{label:<{w}} {run.result.bitrate_kbps:9.1f} {s['psnr_y']:8.2f} {s['psnr_yuv']:9.2f} "
              f"{s.get('ms_ssim_y', float('nan')):8.4f}")
    print(f"outputs in {Path(args.out).resolve()}:")
    for run in runs:
        if run.result is not None:
            print(f"  {run.result.output.name}  {run.csv.name}  {run.json.name}")
    return 0


def add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="code the clip shipped with codeclab and print a summary table",
                       description="Transcode the small real clip shipped inside the package (12 frames, 320x240, "
                       "lossless FFV1; see codeclab/data/demo/PROVENANCE.md) with each demo codec, write the "
                       "coded files with per-frame metrics (CSV and JSON), and print rate and quality.",
                       epilog="example:\n  codeclab demo --out /tmp/demo",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="codeclab-demo", metavar="DIR", help="output folder (default ./codeclab-demo/)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_demo)


def _type_name(t: Any) -> str:
    if isinstance(t, type):
        return t.__name__
    return str(t).replace("typing.", "").replace("NoneType", "None")


def _cmd_codecs(args: argparse.Namespace) -> int:
    from .codecs.base import available_codecs, get_codec
    from .errors import CodeclabError

    flags: dict[str, list[str]] = {}
    for f in CODEC_FLAGS:
        flags.setdefault(f.option, []).append(f.flag)
    for name in available_codecs():
        try:
            spec = get_codec(name)
        except (CodeclabError, ImportError) as e:
            print(f"{name}: not available ({e})\n")
            continue
        stream = f"{spec.stream_codec} stream, raw {spec.raw_ext}" if spec.stream_codec else f"own container {spec.raw_ext}"
        print(f"{name}: {spec.description} [{stream}]")
        hints = typing.get_type_hints(spec.options)
        for f in dataclasses.fields(spec.options):
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else "(required)")
            flag = " ".join(flags.get(f.name, [])) or f"-x {f.name}=..."
            shown = f"{default:g}" if isinstance(default, float) else repr(default)
            print(f"  {f.name:<15} {_type_name(hints.get(f.name, f.type)):<12} {'default ' + shown:<20} {flag}")
        print()
    return 0


def add_codecs(sub: Any) -> None:
    p = sub.add_parser("codecs", help="list the registered codecs and their options",
                       description="List every codec codeclab can use, with each option's type, default and "
                       "the transcode flag that sets it.")
    p.set_defaults(func=_cmd_codecs)


#: Built-in commands, in the order `--help` lists them.
COMMANDS: list[Callable[[Any], None]] = [add_info, add_convert, add_metrics, add_transcode, add_demo, add_codecs]

#: Commands defined elsewhere: name -> ("module:adder", help). The adder may add more than
#: one command (eval also adds bdrate); it is imported only when one of its names is invoked.
PLUGIN_COMMANDS: dict[str, tuple[str, str]] = {
    "decode": ("codeclab.pipeline.clc_decode:add_decode_cli", "decode our own .clc container to .y4m/.yuv/.mkv"),
    "eval": ("codeclab.pipeline.eval.cli_commands:add_eval_cli", "batch evaluation of test sequences (JVET CTC style)"),
    "bdrate": ("codeclab.pipeline.eval.cli_commands:add_eval_cli", "BD-rate of TEST against ANCHOR from two RD CSVs"),
    "lic": ("codeclab.codecs.lic.train:add_cli", "learned intra codec tools (train, export)"),
    "nrdoq": ("codeclab.codecs.hevc.nrdoq.cli:add_cli", "neural RDOQ quantisers (training data, training)"),
}


def _command_word(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The full parser; plugin commands named in ``argv`` are imported, the others only listed."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="codeclab: a video coding lab. Decode any video with FFmpeg, code it with x265/x264 or "
        "our own codecs, get playable files and per-frame metrics.",
        epilog="examples:\n  codeclab demo\n  codeclab info clip.mp4\n"
        "  codeclab transcode clip.mp4 -o out.mp4 --codec x265 --qp 32 --metrics out.csv\n"
        "  codeclab metrics clip.mp4 out.mp4\n  codeclab convert clip.mp4 -o clip.y4m --frames 10\n\n"
        "`codeclab COMMAND --help` describes each command. CODECLAB_DEBUG=1 shows tracebacks.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in COMMANDS:
        add(sub)
    word = _command_word(sys.argv[1:] if argv is None else argv)
    if word in PLUGIN_COMMANDS:
        module, _, attr = PLUGIN_COMMANDS[word][0].partition(":")
        getattr(importlib.import_module(module), attr)(sub)
    for name, (_, help_) in PLUGIN_COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=help_, add_help=False)  # listed in --help; loaded when invoked
    return p


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        where = e.filename if e.filename is not None else ""
        return f"{where}: {e.strerror}" if where else e.strerror
    text = " ".join(str(e).split()) or type(e).__name__
    return text


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``codeclab`` script; returns the exit status."""
    from .errors import CodeclabError, UsageError

    debug = os.environ.get("CODECLAB_DEBUG", "") not in ("", "0")
    args_list = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(args_list)
        args = parser.parse_args(args_list)  # argparse errors exit 2 by themselves
        return int(args.func(args) or 0)
    except BrokenPipeError:  # stdout closed early (`codeclab codecs | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (CodeclabError, OSError) as e:
        if debug:
            raise
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return 2 if isinstance(e, UsageError) else 1


if __name__ == "__main__":
    sys.exit(main())
