"""A lossless ``frame_parallel`` codec for the frame-parallel tests (raw planes as packets).

A module of its own so that spawned workers can import it (they inherit ``sys.path``).
Options make a worker slow (early frames slower than late ones, so workers finish out
of order), fail with an ordinary exception, or die without a word.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from codeclab.base.frame import Frame, VideoFormat
from codeclab.codecs.base import CodecSpec, Packet, register_codec


@dataclass(frozen=True)
class ParOptions:
    sleep: float = 0.0  # seconds for frame 0, less for later ones (sleep / (1 + index))
    fail_at: int = -1   # frame whose encode raises RuntimeError
    die_at: int = -1    # frame whose encode kills its process (os._exit)


class _Enc:
    def __init__(self, fmt: VideoFormat, opts: ParOptions) -> None:
        self.opts = opts

    def encode(self, frame: Frame) -> list[Packet]:
        o = self.opts
        if frame.index == o.fail_at:
            raise RuntimeError(f"fake failure on frame {frame.index}")
        if frame.index == o.die_at:
            os._exit(3)
        if o.sleep:
            time.sleep(o.sleep / (1 + frame.index))
        data = b"".join(p.tobytes() for p in frame.planes)
        return [Packet(data, frame.index, frame.pts, True, {"pid": os.getpid()})]

    def flush(self) -> list[Packet]:
        return []


class _Dec:
    def __init__(self, fmt: VideoFormat, opts: ParOptions) -> None:
        self.fmt = fmt

    def decode(self, p: Packet) -> list[Frame]:
        buf = np.frombuffer(p.data, self.fmt.dtype)
        planes, pos = [], 0
        for h, w in self.fmt.plane_shapes:
            planes.append(buf[pos:pos + h * w].reshape(h, w).copy())
            pos += h * w
        return [Frame(tuple(planes), self.fmt, p.index, p.pts)]

    def flush(self) -> list[Frame]:
        return []


SPEC = register_codec(CodecSpec("par-test", "lossless raw planes, frame-parallel", ParOptions, _Enc, _Dec, None,
                                ".clc", frame_parallel=True))
