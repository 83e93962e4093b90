"""``transcode`` flags that set codec options, declared once.

Every flag here, and every ``-x key=value``, goes through
:func:`~codeclab.codecs.base.make_options`, so a flag the chosen codec does not have is a
usage error listing the options it does have. ``codec_flag(...)`` declares one more.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CodecFlag", "CODEC_FLAGS", "codec_flag", "add_codec_options", "codec_values"]


@dataclass(frozen=True)
class CodecFlag:
    """A command-line flag that sets the codec option ``option`` (see the module docstring)."""

    flag: str
    option: str
    help: str
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra argparse keywords (metavar, action, const)


#: Flags of ``transcode`` that set codec options; a codec that lacks the option rejects the flag.
CODEC_FLAGS: list[CodecFlag] = [
    CodecFlag("--qp", "qp", "quantization parameter of every picture (x265/x264 default 32)", {"metavar": "QP"}),
    CodecFlag("--crf", "crf", "constant rate factor instead of a fixed QP (x265/x264)", {"metavar": "CRF"}),
    CodecFlag("--preset", "preset", "encoder speed preset (x265/x264: ultrafast ... veryslow; hevc: fast, medium, slow; default medium)",
              {"metavar": "NAME"}),
    CodecFlag("--tune", "tune", "encoder tuning (x265/x264: psnr, ssim, grain ...)", {"metavar": "NAME"}),
    CodecFlag("--keyint", "keyint", "intra period (x265/x264 default 1 = all-intra; >1 gives I+P)", {"metavar": "N"}),
    CodecFlag("--bframes", "bframes", "up to N B-frames between I/P pictures (x265/x264, default 0)", {"metavar": "N"}),
    CodecFlag("--bit-depth", "bit_depth", "internal bit depth of the codec (default: the source's)", {"metavar": "B"}),
    CodecFlag("--quality", "quality", "rate point of the learned codec (lic)", {"metavar": "Q"}),
    # our HEVC encoder (codec hevc)
    CodecFlag("--ctb", "ctb", "CTB size 16, 32 or 64 (hevc, default 64)", {"metavar": "N"}),
    CodecFlag("--no-deblock", "deblock", "switch the deblocking filter off (hevc)",
              {"action": "store_const", "const": False}),
    CodecFlag("--no-sao", "sao", "switch SAO off (hevc)", {"action": "store_const", "const": False}),
    CodecFlag("--sign-hiding", "sign_hiding", "sign data hiding on (hevc default)",
              {"action": "store_const", "const": True}),
    CodecFlag("--no-sign-hiding", "sign_hiding", "sign data hiding off (hevc)",
              {"action": "store_const", "const": False}),
    CodecFlag("--transform-skip", "transform_skip", "allow 4x4 transform skip (hevc default)",
              {"action": "store_const", "const": True}),
    CodecFlag("--no-transform-skip", "transform_skip", "no 4x4 transform skip (hevc)",
              {"action": "store_const", "const": False}),
    CodecFlag("--md5", "md5", "decoded picture hash SEI (MD5) in every access unit: HM's decoder checks it (hevc)",
              {"action": "store_const", "const": True}),
    CodecFlag("--gop", "gop", "picture structure of our HEVC encoder (HM's configurations): ldp (low-delay P, "
              "default), ldb (low-delay B), ra (random access: hierarchical B, GOP 16, reordered) or ai "
              "(all-intra)", {"metavar": "NAME"}),
    CodecFlag("--refs", "refs", "reference pictures of a low-delay P/B picture (hevc, 1..4, default 4)",
              {"metavar": "N"}),
    CodecFlag("--intra-period", "intra_period", "an intra picture every N pictures (hevc: IDR in ldp/ldb, CRA "
              "in ra, where N is a multiple of 16; default 0: only the first)", {"metavar": "N"}),
    CodecFlag("--quant", "quant", "quantizer of our HEVC encoder: rdoq (default), sq, nrdoq-fcn ...", {"metavar": "NAME"}),
]


def codec_flag(flag: str, option: str | None = None, help: str = "", **kwargs: Any) -> CodecFlag:
    """Declare one more codec flag, e.g. ``codec_flag("--no-deblock", "deblock", action="store_const", const=False)``."""
    f = CodecFlag(flag, option or flag.lstrip("-").replace("-", "_"), help, kwargs)
    CODEC_FLAGS.append(f)
    return f


def add_codec_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("codec", "flags the chosen codec does not have are rejected; "
                             "`codeclab codecs` lists every codec's options")
    g.add_argument("--codec", "-c", default="x265", metavar="NAME", help="codec (default x265; see `codeclab codecs`)")
    for f in CODEC_FLAGS:
        kw = dict(f.kwargs)
        kw.setdefault("default", None)
        g.add_argument(f.flag, dest=f"codec_opt__{f.option}", help=f.help, **kw)
    g.add_argument("-x", dest="codec_x", action="append", default=[], metavar="KEY=VALUE",
                   help="any codec option by name, e.g. -x params=sao=0 (repeatable)")


def codec_values(args: argparse.Namespace) -> dict[str, Any]:
    """Every codec flag given, plus ``-x`` pairs, as loosely typed values for ``make_options``."""
    from codeclab.base.errors import UsageError

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
