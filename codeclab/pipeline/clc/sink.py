"""Packet sink for codecs without a standard elementary stream: our ``.clc`` container.

``transcode`` uses :func:`open_packet_sink` (sinks.py) when ``spec.stream_codec`` names an
FFmpeg stream and :func:`open_clc_sink` when it is ``None``. The returned writer has the
same shape as a ``PacketSink`` — ``write(packet)``, ``close()`` (atomic rename), ``abort()``,
context manager — plus an optional per-frame metrics record: ``write(packet, metrics)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from codeclab.base.errors import UsageError
from codeclab.base.frame import VideoFormat
from codeclab.codecs.base import CodecSpec, Packet, get_codec
from codeclab.pipeline.clc.container import ClcWriter, StreamHeader

__all__ = ["ClcPacketSink", "open_clc_sink"]


class ClcPacketSink(ClcWriter):
    """A :class:`ClcWriter` that takes the model id from the first packet if nobody gave one.

    Learned codecs know their weights' identity only once the encoder has loaded them; they
    report it as ``packet.props["model_id"]`` (``lic`` does), and the header records it.
    """

    def __init__(self, path: str | os.PathLike[str], header: StreamHeader, *, model_from_packets: bool) -> None:
        super().__init__(path, header)
        self._model_from_packets = model_from_packets

    def write(self, packet: Packet, metrics: Mapping[str, Any] | None = None) -> None:
        if self._model_from_packets and not len(self):
            mid = packet.props.get("model_id")
            if isinstance(mid, str) and mid:
                self.amend_header(model=mid[:256])
        super().write(packet, metrics)


def open_clc_sink(path: str | os.PathLike[str], codec: CodecSpec | str, fmt: VideoFormat, options: Any = None, *,
                  codec_version: str | None = None, model: str | None = None) -> ClcPacketSink:
    """A streaming, atomic ``.clc`` writer whose header lets ``codeclab decode`` rebuild the decoder.

    Args:
        codec: the codec (spec or registry name) that made the packets.
        fmt: format of the coded frames (what the decoder will return).
        options: the codec's options dataclass (or a dict); stored so the decoder gets the same.
        codec_version: bitstream version of the codec; default ``spec.version`` if the spec has one.
        model: model/weights id; default the first packet's ``props["model_id"]``, else the
            ``model`` option if it is a string, else ``""``.
    """
    if Path(path).suffix.lower() != ".clc":
        raise UsageError(f"{path}: codec {getattr(codec, 'name', codec)} has no standard stream; "
                         "its packets go into our container: name the output .clc")
    spec = get_codec(codec) if isinstance(codec, str) else codec
    header = StreamHeader(spec.name, fmt, options or {})
    if codec_version is None:
        codec_version = str(getattr(spec, "version", "") or "")
    given = model is not None
    if model is None:
        m = header.options.get("model")
        model = m if isinstance(m, str) else ""
    header = StreamHeader(spec.name, fmt, header.options, codec_version, model)
    return ClcPacketSink(path, header, model_from_packets=not given)
