"""Anything FFmpeg reads, decoded through PyAV.

Files keep their native sampling and bit depth (10-bit stays uint16, 4:4:4 stays 4:4:4,
gray stays 4:0:0). Semi-planar and packed YUV (nv12, p010, yuyv422...) is rearranged into
the planar format of the same sampling and depth, which is lossless. **RGB sources** (PNG,
rgb24, gbrp...) are converted to YUV **4:4:4** at the source's bit depth by
:func:`codeclab.base.convert.rgb_to_yuv` (the published Kr/Kb equations, rounded to
nearest, in numpy; swscale's full-range chroma is biased by half a step) with an explicit
matrix: **BT.709 limited range** unless ``matrix`` says otherwise (``"bt601"``,
``"bt2020nc"``, optionally ``":full"``). No chroma is subsampled unless ``to_pix_fmt`` asks.

Frame ranges decode through the skipped frames, except that an MP4/MOV stream with a
constant frame rate seeks to the keyframe before a far ``start`` (the landing point is
verified from timestamps; anything unexpected falls back to decoding from the top).
Timestamps are counted from the first frame in units of ``1/fps`` (the stream's average
rate), rounded: a variable-rate file may repeat a pts.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from codeclab.base.convert import parse_matrix, rgb_to_yuv
from codeclab.base.errors import FormatError, InputError
from codeclab.base.frame import CHROMA_SHIFT, Frame, VideoFormat
from codeclab.pipeline.io.avframes import FROM_AVCOL_SPC, avframe_planes, ffmpeg_msg, reformat_yuv, sws_convert
from codeclab.pipeline.io.sources import DEFAULT_FPS, FrameRange, Source, check_agrees, target_format

__all__ = ["AvSource"]


def _native_layout(name: str, width: int, height: int) -> tuple[str, int] | None:
    """(chroma, depth) of a YUV/gray pixel format from FFmpeg's descriptor; None for RGB."""
    import av

    desc = av.VideoFormat(name, width, height)
    if desc.is_rgb or desc.has_palette:
        return None
    comps = [c for c in desc.components if not c.is_alpha]
    depth = max(8, min(16, comps[0].bits))
    if len(comps) == 1:
        return "400", depth
    c = comps[1]
    shift = ((width + c.width - 1) // c.width).bit_length() - 1, ((height + c.height - 1) // c.height).bit_length() - 1
    chroma = {v: k for k, v in CHROMA_SHIFT.items() if k != "400"}.get(shift)
    if chroma is None:
        raise FormatError(f"pixel format {name} has chroma subsampling codeclab cannot represent "
                          "(use to_pix_fmt, e.g. yuv420p)")
    return chroma, depth


class AvSource(Source):
    """A video or image file decoded by FFmpeg through PyAV."""

    def __init__(self, path: Path, *, size: tuple[int, int] | None, fps: Fraction | None, pix_fmt: str | None,
                 frames: FrameRange, to_pix_fmt: str | None, matrix: str | None) -> None:
        import av

        super().__init__()
        self.path = path
        self._range = frames
        try:
            container = av.open(str(path), "r")
        except av.FFmpegError as e:
            raise InputError(f"{path}: not a video file, or damaged ({ffmpeg_msg(e)})") from None
        try:
            if not container.streams.video:
                raise InputError(f"{path}: not a video file (no video stream)")
            stream = container.streams.video[0]
            cc = stream.codec_context
            self.container_name = container.format.name
            self.codec_name = cc.name
            name = cc.pix_fmt
            width, height = cc.width, cc.height
            if not name or not width:  # not in the header: decode the first frame to learn it
                first = next(iter(self._decode(container, stream)), None)
                if first is None:
                    raise InputError(f"{path}: no decodable video frames")
                name, width, height = first.format.name, first.width, first.height
            self.source_pix_fmt = name
            is_image = container.format.name.endswith("_pipe") or container.format.name == "image2"
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            file_fps = Fraction(rate) if rate else None
            # Sample counts equal displayed frames only where every packet is one picture
            # (MP4/MOV); AVI/Matroska/TS counts include e.g. VP9's hidden frames, or are absent.
            counted = "mp4" in container.format.name.split(",")
            total = (stream.frames if counted else 0) or (1 if is_image else 0)
            self._duration = (float(container.duration) / 1e6) if container.duration else None
            # seeking is trusted only where the sample count and duration say constant frame rate
            self._seekable = bool(counted and total > 1 and stream.duration and file_fps and abs(
                stream.duration * stream.time_base * file_fps - total) <= Fraction(1, 2))
            spc = FROM_AVCOL_SPC.get(int(cc.colorspace or 2))
            full = name.startswith("yuvj") or int(cc.color_range or 0) == 2
        except av.FFmpegError as e:
            raise InputError(f"{path}: not a video file, or damaged ({ffmpeg_msg(e)})") from None
        finally:
            container.close()

        try:
            layout = _native_layout(name, width, height)
        except (ValueError, av.FFmpegError):
            raise FormatError(f"{path}: unknown pixel format {name!r}") from None
        except FormatError as e:
            if to_pix_fmt is None:
                raise FormatError(f"{path}: {e}") from None
            layout = ("444", 8)
        mat, rng = parse_matrix(matrix, path)
        self._rgb = layout is None
        if self._rgb:  # RGB: convert with an explicit matrix, 4:4:4 at the source's depth
            self._matrix, self._mrange = mat or "bt709", rng or "limited"
            bits = max(c.bits for c in av.VideoFormat(name).components if not c.is_alpha)
            depth = next(d for d in (8, 9, 10, 12, 14, 16) if d >= min(bits, 16))
            self._gbrp = "gbrp" if depth == 8 else f"gbrp{depth}le"
            chroma = "444"
        else:  # YUV: a matrix= option only overrides the recorded tag
            self._matrix = mat or spc or "bt709"
            self._mrange = rng if (matrix and ":" in matrix) else ("full" if full else "limited")
            chroma, depth = layout
        kw = dict(fps=fps or file_fps or DEFAULT_FPS, matrix=self._matrix, range=self._mrange)
        try:
            native = VideoFormat(width, height, chroma, depth, **kw)  # type: ignore[arg-type]
        except FormatError as e:
            raise FormatError(f"{path}: {e}") from None
        check_agrees(path, native, size, pix_fmt)
        self._file_fps = file_fps
        self.format = native if to_pix_fmt is None else target_format(to_pix_fmt, width, height, path, **kw)
        self._native = native
        if total:
            self.total_frames: int | None = total
            self._indices: range | None = frames.indices(total)
            self.num_frames = len(self._indices)
        else:
            self.total_frames, self._indices = None, None
            self.num_frames = 0 if frames.count == 0 else None

    @property
    def duration(self) -> float | None:
        """The container's duration for the whole file, else frames / fps."""
        if self._duration is not None and self._range == FrameRange():
            return self._duration
        return super().duration

    @staticmethod
    def _decode(container: Any, stream: Any) -> Iterator[Any]:
        if not stream.codec_context.is_open:
            # Strict decoding: FFmpeg otherwise conceals damage and hands out patched pictures,
            # which would silently skew every metric measured against them.
            stream.codec_context.options = {"err_detect": "explode"}
            stream.thread_type = "AUTO"
        return container.decode(stream)

    def _convert(self, vf: Any) -> tuple[np.ndarray, ...]:
        fmt = self.format
        if self._rgb:  # planar G, B, R at the source depth (a lossless rearrangement), then our matrix
            g, b, r = (np.from_dlpack(p) for p in vf.reformat(format=self._gbrp).planes)
            planes = rgb_to_yuv(r, g, b, self._native.bit_depth, self._matrix, self._mrange)
            return planes if fmt == self._native else sws_convert(planes, self._native, fmt)
        if vf.format.name == fmt.pix_fmt or (
                vf.format.name == "yuvj" + fmt.pix_fmt[3:] and fmt.range == "full"):
            out = vf
        else:
            out = reformat_yuv(vf, self._native, fmt.pix_fmt)
        return avframe_planes(out, fmt)

    #: a range starting this many frames in may seek instead of decoding through (see _seek_to)
    seek_min_start = 32
    #: seek this many frames before the wanted one (B-frame reordering, leading pictures)
    seek_margin = 16

    def _open(self) -> tuple[Any, Any]:
        import av

        try:
            container = av.open(str(self.path), "r")
        except av.FFmpegError as e:
            raise InputError(f"{self.path}: not a video file, or damaged ({ffmpeg_msg(e)})") from None
        return container, container.streams.video[0]

    def _next(self, it: Iterator[Any], i: int) -> Any:
        """Next decoded frame (None at the end); decoder errors name the frame."""
        import av

        try:
            return next(it)
        except StopIteration:
            return None
        except av.FFmpegError as e:
            raise InputError(f"{self.path}: damaged stream, decoding failed at frame {i} "
                             f"(with frame threading: at or a few frames after it) ({ffmpeg_msg(e)})") from None

    def _seek_to(self, start: int) -> tuple[Any, Iterator[Any], Any, Any] | None:
        """Decoder positioned on frame ``start`` by seeking, or None to decode from the top.

        Only used for MP4/MOV streams whose duration matches frames / rate. A frame's index
        is its timestamp in frames from the first frame's; the attempt is given up (None)
        unless that is a whole number, the seek landed at or before ``start`` and every
        frame up to ``start`` follows its predecessor by exactly one frame.
        """
        container, stream = self._open()
        try:
            it = self._decode(container, stream)
            first = self._next(it, 0)
            if first is None or first.pts is None or not self._file_fps:
                return None
            origin = first.pts
            per_frame = 1 / (stream.time_base * self._file_fps)  # timestamp units per frame
            container.seek(int(origin + max(0, start - self.seek_margin) * per_frame), backward=True, stream=stream)
            it = self._decode(container, stream)
            prev = None
            while True:
                vf = self._next(it, start)
                if vf is None or vf.pts is None:
                    return None
                pos = (vf.pts - origin) / per_frame
                if pos.denominator != 1 or (prev is None and pos > start) or (prev is not None and pos != prev + 1):
                    return None
                prev = int(pos)
                if prev == start:
                    result = container, it, vf, origin
                    container = None
                    return result
        finally:
            if container is not None:
                container.close()

    def _frames(self) -> Iterator[Frame]:
        import av

        fr = self._range
        last = fr.last()
        fps = self.format.fps
        seeked = self._seek_to(fr.start) if self._seekable and fr.start >= self.seek_min_start else None
        if seeked is None:
            container, stream = self._open()
            it, pending, origin, i = self._decode(container, stream), None, None, -1
        else:
            container, it, pending, origin = seeked
            i = fr.start - 1
        try:
            while last is None or i < last:
                vf, pending = (pending, None) if pending is not None else (self._next(it, i + 1), None)
                if vf is None:
                    break
                i += 1
                if vf.is_corrupt:
                    raise InputError(f"{self.path}: frame {i} is damaged (the decoder flagged it corrupt)")
                if origin is None and vf.pts is not None:  # timestamps count from the first frame
                    origin = vf.pts
                if not fr.selects(i):
                    continue
                if vf.pts is not None and vf.time_base is not None and origin is not None:
                    pts = round((vf.pts - origin) * vf.time_base * (self._file_fps or fps))
                else:
                    pts = i
                try:
                    planes = self._convert(vf)
                except av.FFmpegError as e:
                    raise InputError(f"{self.path}: converting frame {i} failed ({ffmpeg_msg(e)})") from None
                if planes[0].shape != self.format.plane_shapes[0]:
                    raise InputError(f"{self.path}: frame {i} is {planes[0].shape[1]}x{planes[0].shape[0]}, "
                                     f"the stream said {self.format.width}x{self.format.height} "
                                     "(size changes mid-stream are not supported)")
                yield Frame(planes, self.format, i, pts)
        finally:
            container.close()
        if self.total_frames is not None and self._indices is not None and len(self._indices) and \
                i < self._indices[-1]:
            raise InputError(f"{self.path}: only {i + 1} frames could be decoded, the container says "
                             f"{self.total_frames} (truncated or damaged file)")
