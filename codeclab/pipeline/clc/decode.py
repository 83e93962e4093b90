"""Our container back to pictures (what ``codeclab decode IN.clc -o OUT`` runs).

The codec comes from the registry by the name in the stream header, frames go to
``sinks.open_sink`` (atomic: nothing appears under OUT unless every frame was written).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from codeclab.base.frame import VideoFormat
from codeclab.pipeline.clc.source import ClcSource

__all__ = ["DecodeResult", "decode_clc"]


@dataclass(frozen=True)
class DecodeResult:
    output: Path
    codec: str
    format: VideoFormat
    frames: int
    bits: int


def decode_clc(path: str | os.PathLike[str], output: str | os.PathLike[str], *, start: int = 0,
               frames: int | None = None, step: int = 1, progress: bool = False) -> DecodeResult:
    """Decode ``frames`` frames of a ``.clc`` file from ``start`` (every ``step``-th) into ``output``.

    ``progress`` shows a tqdm bar on stderr when stderr is a terminal.
    """
    from tqdm import tqdm

    from codeclab.pipeline.io.sinks import open_sink
    from codeclab.pipeline.io.sources import FrameRange

    with ClcSource(path, frames=FrameRange(start, frames, step)) as src:
        n = bits = 0
        with open_sink(output, src.format) as sink, \
                tqdm(total=src.num_frames, unit="frame", file=sys.stderr, leave=False,
                     disable=not (progress and sys.stderr.isatty())) as bar:
            for frame in src:
                sink.write(frame)
                n += 1
                bits += int(frame.props.get("bits", 0))
                bar.update(1)
        return DecodeResult(Path(output), src.header.codec, src.format, n, bits)
