"""Codec contract and registry.

A codec is one module that calls :func:`register_codec` with a :class:`CodecSpec`.
Built-in codecs are registry entries by ``"module:attribute"`` name (:mod:`codeclab.base.registry`),
imported only when first asked for, so ``import codeclab.codecs`` costs nothing (no torch,
no numba).

Contract
--------
- ``spec.make_encoder(fmt, options) -> Encoder`` with ``encode(frame) -> list[Packet]``
  and ``flush() -> list[Packet]``.
- ``spec.make_decoder(fmt, options) -> Decoder`` with ``decode(packet) -> list[Frame]``
  and ``flush() -> list[Frame]``. For codecs whose packets are a standard stream
  (``spec.stream_codec`` = ``"hevc"``/``"h264"``) the decoder is FFmpeg's, so metrics are
  measured on what a real decoder returns.
- Options are a frozen dataclass per codec (``spec.options``); the CLI maps ``--qp``,
  ``--preset``... and ``-x key=value`` onto its fields, with types checked here.
- ``spec.frame_parallel``: the codec promises that every picture is coded on its own, so
  ``transcode --jobs N`` may code frames in N worker processes (one encoder each) and
  still write the bytes one encoder would (``pipeline.frame_parallel``).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from codeclab.base.errors import UsageError
from codeclab.base.frame import Frame, VideoFormat
from codeclab.base.packet import Packet
from codeclab.base.registry import Registry

__all__ = [
    "Packet",
    "Encoder",
    "Decoder",
    "CodecSpec",
    "register_codec",
    "get_codec",
    "available_codecs",
    "make_options",
]


class Encoder(Protocol):
    def encode(self, frame: Frame) -> list[Packet]: ...
    def flush(self) -> list[Packet]: ...


class Decoder(Protocol):
    def decode(self, packet: Packet) -> list[Frame]: ...
    def flush(self) -> list[Frame]: ...


@dataclass(frozen=True)
class CodecSpec:
    """What the registry knows about one codec."""

    name: str
    description: str
    options: type  # a frozen dataclass; its fields are the codec's typed options
    make_encoder: Callable[[VideoFormat, Any], Encoder]
    make_decoder: Callable[[VideoFormat, Any], Decoder]
    #: FFmpeg codec name of the elementary stream ("hevc", "h264") or None for codecs
    #: that need our own container.
    stream_codec: str | None = None
    #: extension of the raw elementary stream / own container (".hevc", ".h264", ".clc").
    raw_ext: str = ".bin"
    #: every picture is independent of the others given the format and options:
    #: ``encode(frame)`` returns all of that frame's packets, the same bytes whatever the
    #: encoder coded before, and ``flush()`` returns nothing. Only such codecs are coded by
    #: several worker processes at once (``transcode --jobs``); the others run in order.
    #: A function of the options where that depends on them (``parallel(options)`` asks).
    frame_parallel: bool | Callable[[Any], bool] = False

    def parallel(self, options: Any) -> bool:
        """Whether pictures coded with ``options`` are independent (``frame_parallel``)."""
        fp = self.frame_parallel
        return bool(fp(options)) if callable(fp) else bool(fp)


#: the built-in codecs by "module:attribute", imported when first asked for
_CODECS: Registry[CodecSpec] = Registry("codec", {
    "x265": "codeclab.codecs.ffmpeg:X265_SPEC",
    "x264": "codeclab.codecs.ffmpeg:X264_SPEC",
    "hevc": "codeclab.codecs.hevc:SPEC",
    "lic": "codeclab.codecs.lic:SPEC",
    "overfit": "codeclab.codecs.overfit:SPEC",
    "hm": "codeclab.codecs.refsw:HM_SPEC",
    "vtm": "codeclab.codecs.refsw:VTM_SPEC",
})


def register_codec(spec: CodecSpec) -> CodecSpec:
    """Add a codec to the registry (plugins call it at import time; see the eval ``imports``)."""
    _CODECS.register(spec.name, spec)
    return spec


def get_codec(name: str) -> CodecSpec:
    """Look a codec up by name, importing its module on first use."""
    return _CODECS.get(name)


def available_codecs() -> list[str]:
    """Names of every codec that is registered or can be imported."""
    return _CODECS.names()


def _coerce(value: Any, typ: Any, name: str) -> Any:
    typ = {"int": int, "float": float, "str": str, "bool": bool}.get(typ, typ) if isinstance(typ, str) else typ
    if isinstance(typ, str) or typ is Any:
        return value
    origin_args = getattr(typ, "__args__", None)
    if origin_args:  # X | None
        if value is None:
            return None
        typ = next(a for a in origin_args if a is not type(None))
    if typ is bool and isinstance(value, str):
        low = value.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"option {name}: expected a boolean, got {value!r}")
    try:
        return typ(value)
    except (TypeError, ValueError):
        raise UsageError(f"option {name}: expected {getattr(typ, '__name__', typ)}, got {value!r}") from None


def make_options(spec: CodecSpec, values: dict[str, Any]) -> Any:
    """Build ``spec.options`` from loosely typed values (CLI strings, TOML, kwargs).

    Unknown names are a usage error that lists the codec's options; ``None`` values are
    ignored so callers can pass every CLI flag through.
    """
    fields = {f.name: f for f in dataclasses.fields(spec.options)}
    hints = typing.get_type_hints(spec.options)
    kw: dict[str, Any] = {}
    for k, v in values.items():
        if v is None:
            continue
        k2 = k.replace("-", "_")
        if k2 not in fields:
            raise UsageError(f"codec {spec.name} has no option {k!r} (options: {', '.join(fields)})")
        kw[k2] = _coerce(v, hints.get(k2, Any), k)
    try:
        return spec.options(**kw)
    except (TypeError, ValueError) as e:
        raise UsageError(f"codec {spec.name}: {e}") from None
