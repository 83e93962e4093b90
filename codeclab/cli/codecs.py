"""``codeclab codecs``: every codec of the registry with its options and their flags."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from codeclab.cli import codec_flags

__all__ = ["add_codecs"]


def _type_name(t: Any) -> str:
    if isinstance(t, type):
        return t.__name__
    return str(t).replace("typing.", "").replace("NoneType", "None")


def _cmd_codecs(args: argparse.Namespace) -> int:
    from codeclab.base.errors import CodeclabError
    from codeclab.codecs.base import available_codecs, get_codec

    flags: dict[str, list[str]] = {}
    for f in codec_flags.CODEC_FLAGS:
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
