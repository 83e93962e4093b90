"""Codecs: contract, registry and implementations (hevc/, lic/, ffmpeg.py)."""

from codeclab.codecs.base import (
    CodecSpec,
    Decoder,
    Encoder,
    Packet,
    available_codecs,
    get_codec,
    make_options,
    register_codec,
)

__all__ = ["CodecSpec", "Decoder", "Encoder", "Packet", "available_codecs", "get_codec", "make_options", "register_codec"]
