"""A tiny deterministic codec for the eval tests: uniform scalar quantization + zlib.

Imported by name through an experiment's ``imports`` list, so that spawned pool workers
and Dask workers register it too. Rate and PSNR both fall as ``qp`` rises (step size
2**((qp-4)/6), as in HEVC), which is all the runner and the BD maths need; ``offset``
(the rounding offset) gives a second, different RD curve.
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass

import numpy as np

from codeclab.base.frame import Frame, VideoFormat
from codeclab.codecs import CodecSpec, Packet, register_codec


@dataclass(frozen=True)
class FakeOptions:
    qp: int = 32
    offset: float = 0.5
    fail_above: int = 99  # qp above this raises (to test failure recording)
    sleep: float = 0.0  # seconds per frame (to kill a run midway in tests)


class _Enc:
    def __init__(self, fmt: VideoFormat, opts: FakeOptions) -> None:
        self.fmt, self.o = fmt, opts
        self.step = 2.0 ** ((opts.qp - 4) / 6.0) * (1 << (fmt.bit_depth - 8))

    def encode(self, frame: Frame) -> list[Packet]:
        if self.o.qp > self.o.fail_above:
            raise RuntimeError(f"fake codec refuses qp {self.o.qp}")
        if self.o.sleep:
            time.sleep(self.o.sleep)
        parts = []
        for p in frame.planes:
            q = np.floor(p.astype(np.float64) / self.step + self.o.offset).astype(np.int32)
            parts.append(q.tobytes())
        data = zlib.compress(b"".join(parts), 6)
        return [Packet(struct.pack("<d", self.step) + data, frame.index, frame.pts)]

    def flush(self) -> list[Packet]:
        return []


class _Dec:
    def __init__(self, fmt: VideoFormat, opts: FakeOptions) -> None:
        self.fmt = fmt

    def decode(self, packet: Packet) -> list[Frame]:
        (step,) = struct.unpack("<d", packet.data[:8])
        raw = np.frombuffer(zlib.decompress(packet.data[8:]), np.int32)
        planes, pos = [], 0
        for h, w in self.fmt.plane_shapes:
            q = raw[pos : pos + h * w].reshape(h, w)
            pos += h * w
            planes.append(np.clip(np.rint(q * step), 0, self.fmt.max_value).astype(self.fmt.dtype))
        return [Frame(tuple(planes), self.fmt, packet.index, packet.pts)]

    def flush(self) -> list[Frame]:
        return []


register_codec(CodecSpec("fakeq", "test codec: uniform quantizer + zlib", FakeOptions, _Enc, _Dec, None, ".fq"))
