"""``.clc`` files as a video source: read the container, decode with the codec it names.

``open_source("x.clc")`` lands here (the sources' registry names it for ``.clc``), so
everything that reads video — ``convert``, ``metrics``, ``transcode``, the VapourSynth
``source`` — reads our own container too. The codec comes from the registry by the name in
the stream header, with the options the encoder stored there.

Frame selection uses the index: decoding starts at the last keyframe at or before
``start`` and, between wanted frames, jumps over whole keyframe intervals; for our intra
codecs (every packet a keyframe) only the selected packets are read and decoded.
Assumes one frame per packet in presentation order — true of every codec we have.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

from codeclab.base.convert import parse_matrix
from codeclab.base.errors import CodecError, CodeclabError, FormatError, UsageError
from codeclab.base.frame import Frame, VideoFormat
from codeclab.codecs.base import Packet, get_codec, make_options
from codeclab.pipeline.clc.container import ClcReader, StreamHeader
from codeclab.pipeline.io.avframes import sws_convert
from codeclab.pipeline.io.sources import FrameRange, Source, target_format

__all__ = ["ClcSource", "open_clc_source"]


class ClcSource(Source):
    """A decoded ``.clc`` file: context manager and lazy, re-iterable stream of :class:`Frame`.

    ``format`` is the stream's format (after ``to_pix_fmt``; ``fps`` may be overridden),
    ``num_frames`` the number of frames the selection yields. ``Frame.index`` is the
    packet's position in the file (what ``FrameRange`` counts), ``Frame.pts`` the stored
    pts (else the position), and ``Frame.props`` carries ``bits`` and the metrics the
    encoder stored.
    """

    container_name = "clc"
    header: StreamHeader

    def __init__(self, path: str | os.PathLike[str], *, size: tuple[int, int] | None = None,
                 fps: Fraction | float | None = None, pix_fmt: str | None = None, frames: FrameRange | None = None,
                 to_pix_fmt: str | None = None, matrix: str | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self._reader = ClcReader(self.path)
        try:
            hdr = self.header = self._reader.header
            native = hdr.format
            if size is not None and tuple(size) != (native.width, native.height):
                raise UsageError(f"{self.path}: the file is {native.width}x{native.height}, not {size[0]}x{size[1]} "
                                 "(a .clc file describes itself; leave --size out)")
            if pix_fmt is not None and pix_fmt != native.pix_fmt:
                raise UsageError(f"{self.path}: the file is {native.pix_fmt}, not {pix_fmt} (use to_pix_fmt to convert)")
            mat, rng = parse_matrix(matrix, self.path)  # relabels: the stored tags are the encoder's word
            fmt = native.with_(fps=fps or native.fps, matrix=mat or native.matrix, range=rng or native.range)
            self._native = fmt
            self.format: VideoFormat = fmt if to_pix_fmt is None else target_format(
                to_pix_fmt, fmt.width, fmt.height, self.path, fps=fmt.fps, matrix=fmt.matrix, range=fmt.range)
            self.codec_name = hdr.codec + (f" ({hdr.model})" if hdr.model else "")
            self.source_pix_fmt = native.pix_fmt
            self.total_frames = len(self._reader)
            self._wanted = (frames or FrameRange()).indices(self.total_frames)
            self.num_frames: int | None = len(self._wanted)
        except BaseException:
            self._reader.close()
            raise

    def _frames(self) -> Iterator[Frame]:
        wanted = self._wanted
        if not wanted:
            return
        spec = get_codec(self.header.codec)
        options = make_options(spec, self.header.options)
        try:
            dec = spec.make_decoder(self.header.format, options)
        except CodeclabError as e:
            raise type(e)(f"{self.path}: {e}") from None
        r = self._reader
        fed: deque[tuple[int, Packet]] = deque()  # (position, packet) still owed a frame, oldest first
        done = 0
        end = -1  # last packet fed
        for w in wanted:
            start = _last_keyframe(r, w, end + 1)  # > end + 1: skip packets no wanted frame needs
            for i in range(start, w + 1):
                packet = r.read_packet(i)
                fed.append((i, packet))
                for frame in self._call(dec.decode, packet, i):
                    frame = self._match(frame, fed)
                    if frame.index in wanted:
                        yield self._convert(frame)
                        done += 1
                        if done == len(wanted):
                            return
            end = w
        for frame in self._call(dec.flush, None, end):
            frame = self._match(frame, fed)
            if frame.index in wanted:
                yield self._convert(frame)
                done += 1
                if done == len(wanted):
                    return
        raise CodecError(f"{self.path}: decoder {self.header.codec!r} returned no frame for packet {fed[0][0]}")

    def _call(self, fn: Any, packet: Packet | None, i: int) -> list[Frame]:
        try:
            return list(fn(packet) if packet is not None else fn())
        except CodeclabError as e:
            raise type(e)(f"{self.path}: packet {i}: {e}") from None
        except Exception as e:  # a crafted payload behind a valid CRC must not leak a traceback
            raise CodecError(f"{self.path}: packet {i}: decoder {self.header.codec!r} failed: "
                             f"{type(e).__name__}: {e}") from e

    def _match(self, frame: Frame, fed: deque[tuple[int, Packet]]) -> Frame:
        """Pair a decoded frame with the oldest packet still owed a frame; check its layout."""
        if not fed:
            raise CodecError(f"{self.path}: decoder {self.header.codec!r} returned more frames than packets")
        pos, packet = fed.popleft()
        want = self.header.format
        if frame.format.plane_shapes != want.plane_shapes or frame.format.dtype != want.dtype:
            raise FormatError(f"{self.path}: decoder {self.header.codec!r} returned {frame.format} "
                              f"for packet {pos}, the stream header says {want}")
        frame.format = self._native
        frame.index = pos
        if frame.pts is None:
            frame.pts = pos if packet.pts is None else packet.pts
        frame.props = {**frame.props, **packet.props, "bits": packet.bits}
        return frame

    def _convert(self, frame: Frame) -> Frame:
        """``to_pix_fmt``, applied only to frames that are delivered."""
        if self.format == self._native:
            return frame
        return frame.with_planes(sws_convert(frame.planes, self._native, self.format), self.format)

    def close(self) -> None:
        super().close()
        self._reader.close()


def _last_keyframe(reader: ClcReader, i: int, lowest: int) -> int:
    """The last keyframe in ``lowest..i``, or ``lowest`` if there is none (decode on from there)."""
    for j in range(i, lowest - 1, -1):
        if reader.is_keyframe(j):
            return j
    return max(lowest, 0)


def open_clc_source(path: str | os.PathLike[str], **options: Any) -> ClcSource:
    """The opener ``open_source`` uses for ``.clc`` files (same keyword arguments).

    A ``.clc`` file describes itself: ``size``/``pix_fmt`` may only repeat what it says,
    ``fps`` overrides the stored rate, ``matrix`` relabels the stored colour tags, and
    ``to_pix_fmt`` converts the decoded frames with swscale like every other source.
    """
    return ClcSource(path, **options)

