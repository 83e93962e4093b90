"""Packet: one coded access unit, the unit codecs emit and containers store.

It lives in the base layer because both sides of a codec use it: codecs produce packets,
and the ``.clc`` container and muxers (which must not know codecs) read and write them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Packet"]


@dataclass
class Packet:
    """One coded access unit (one frame). Codecs that reorder pictures emit packets in
    decoding order with their ``dts`` (None: decoded when presented, ``dts`` = ``pts``)."""

    data: bytes
    index: int
    pts: int | None = None
    keyframe: bool = True
    props: dict[str, Any] = field(default_factory=dict)  # bits, qp, encode_s ...
    dts: int | None = None

    @property
    def bits(self) -> int:
        return 8 * len(self.data)
