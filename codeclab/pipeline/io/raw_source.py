"""Headerless planar YUV (``.yuv``) and the planar-file reader it shares with ``.y4m``.

Geometry comes from a JVET-style name (see :mod:`.jvet_names`) or from
``size``/``fps``/``pix_fmt`` (explicit values win); >8-bit samples are little-endian
uint16. Frames are read by seeking, so skipped frames are never read.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from codeclab.base.convert import parse_matrix
from codeclab.base.errors import FormatError, InputError, UsageError
from codeclab.base.frame import Frame, VideoFormat
from codeclab.pipeline.io.avframes import av_error, ffmpeg_msg, sws_convert
from codeclab.pipeline.io.jvet_names import parse_jvet_name
from codeclab.pipeline.io.sources import DEFAULT_FPS, FrameRange, Source, pix_fmt_format, target_format

__all__ = ["PlanarFileSource", "RawSource", "split_planes"]


def split_planes(buf: np.ndarray, fmt: VideoFormat) -> tuple[np.ndarray, ...]:
    planes, pos = [], 0
    for h, w in fmt.plane_shapes:
        planes.append(buf[pos: pos + h * w].reshape(h, w))
        pos += h * w
    return tuple(planes)


class PlanarFileSource(Source):
    """Raw planar frames at byte offsets in a file (shared by .yuv and .y4m)."""

    def __init__(self, path: Path, native: VideoFormat, frames: FrameRange, to_pix_fmt: str | None) -> None:
        super().__init__()
        self.path = path
        self._native = native
        self._range = frames
        self.format = native if to_pix_fmt is None else target_format(
            to_pix_fmt, native.width, native.height, path, fps=native.fps, matrix=native.matrix, range=native.range)
        self.source_pix_fmt = native.pix_fmt

    def _offset(self, f: Any, i: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _frames(self) -> Iterator[Frame]:
        fmt = self._native
        count = fmt.frame_bytes // fmt.dtype.itemsize
        dtype = fmt.dtype.newbyteorder("<")
        with open(self.path, "rb") as f:
            for i in self._indices:
                f.seek(self._offset(f, i))
                buf = np.fromfile(f, dtype, count)
                if buf.size != count:
                    raise InputError(f"{self.path}: frame {i} is truncated")
                if buf.dtype != fmt.dtype:
                    buf = buf.astype(fmt.dtype)
                planes = split_planes(buf, fmt)
                if self.format != fmt:
                    try:
                        planes = sws_convert(planes, fmt, self.format)
                    except av_error() as e:
                        raise FormatError(f"{self.path}: converting frame {i} to {self.format.pix_fmt} "
                                          f"failed ({ffmpeg_msg(e)})") from None
                yield Frame(planes, self.format, i, i)


# ---------------------------------------------------------------------------------------
# Raw .yuv


class RawSource(PlanarFileSource):
    """Headerless planar YUV (``.yuv``), geometry from the name or the options."""

    container_name = "rawvideo"
    codec_name = "rawvideo"

    def __init__(self, path: Path, *, size: tuple[int, int] | None, fps: Fraction | None, pix_fmt: str | None,
                 frames: FrameRange, to_pix_fmt: str | None, matrix: str | None) -> None:
        name = parse_jvet_name(path.name)
        if size is None and name is None:
            raise UsageError(f"{path}: raw video needs its frame size: pass --size WxH (and --fps, --pix-fmt), "
                             "or name the file like Name_1920x1080_60_10bit_420.yuv")
        width, height = size if size is not None else (name.width, name.height)  # type: ignore[union-attr]
        mat, rng = parse_matrix(matrix, path)
        kw = dict(fps=fps or (name and name.fps) or DEFAULT_FPS, matrix=mat or "bt709", range=rng or "limited")
        if pix_fmt is not None:
            native = pix_fmt_format(pix_fmt, int(width), int(height), path, **kw)
        else:
            chroma = (name and name.chroma) or "420"
            depth = (name and name.bit_depth) or 8
            try:
                native = VideoFormat(int(width), int(height), chroma, depth, **kw)  # type: ignore[arg-type]
            except FormatError as e:
                raise FormatError(f"{path}: {e}") from None
        super().__init__(path, native, frames, to_pix_fmt)
        size_bytes = path.stat().st_size
        total, rest = divmod(size_bytes, native.frame_bytes)
        if rest:
            raise InputError(f"{path}: size {size_bytes} bytes is not a whole number of {native} frames "
                             f"({native.frame_bytes} bytes each): {total} frames and {rest} trailing bytes "
                             "(wrong --size/--pix-fmt, or a truncated file)")
        if total == 0:
            raise InputError(f"{path}: empty file (no frames)")
        self.total_frames = total
        self._indices = frames.indices(total)
        self.num_frames = len(self._indices)

    def _offset(self, f: Any, i: int) -> int:
        return i * self._native.frame_bytes
