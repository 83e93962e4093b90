"""Frame and packet sinks: raw ``.yuv``, ``.y4m``, lossless FFV1 ``.mkv``, viewable MP4/MKV, muxed streams.

Every sink writes to a hidden temporary file in the destination's folder (same extension,
container format named explicitly) and renames it onto the final name only in
:meth:`close`; :meth:`abort` deletes it. Used as a context manager a sink closes on success
and aborts on an exception, so a failed run never leaves a half-written file under the
final name.

``open_sink`` picks by extension:

============  ============================================================================
``.yuv``      raw planar samples, >8-bit as little-endian uint16 (no header)
``.y4m``      YUV4MPEG2 with the ``C`` tag FFmpeg uses (``420jpeg``, ``444p10``, ``mono``...),
              ``F`` from the frame rate, ``XCOLORRANGE=FULL`` for full-range data
``.mkv``      **FFV1** (lossless: bit-exact for every layout incl. 10-bit, 4:4:4, gray);
              ``codec="libx264"``/``"libx265"`` encodes instead
``.mp4/.mov`` H.264 (libx264, CRF 18: for viewing) or HEVC with ``codec="libx265"``
============  ============================================================================

``open_packet_sink`` muxes packets that are already coded (our HEVC encoder's Annex-B
access units) into MP4/MKV/MOV, or concatenates them into a raw Annex-B file.
"""

from __future__ import annotations

import os
import secrets
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from codeclab.base.errors import CodecError, FormatError, InputError, UsageError
from codeclab.base.frame import Frame, VideoFormat
from codeclab.pipeline.io.avframes import SWS_COLORSPACE, ffmpeg_msg, planes_to_avframe
from codeclab.pipeline.io.y4m_source import y4m_tag

__all__ = ["FrameSink", "PacketSink", "open_sink", "open_packet_sink", "ANNEXB_EXTS"]

#: extension -> FFmpeg muxer name
_MUXERS = {".mkv": "matroska", ".mp4": "mp4", ".mov": "mov"}
#: raw Annex-B elementary-stream extensions -> the stream codec they hold
ANNEXB_EXTS = {".hevc": "hevc", ".h265": "hevc", ".265": "hevc", ".h264": "h264", ".264": "h264"}
_ENCODER_ALIASES = {"x264": "libx264", "h264": "libx264", "x265": "libx265", "hevc": "libx265", "ffv1": "ffv1"}
_ENCODER_DEFAULTS: dict[str, dict[str, str]] = {
    "ffv1": {"level": "3", "slicecrc": "1"},
    "libx264": {"crf": "18"},
    "libx265": {"crf": "18", "x265-params": "log-level=error"},
}


class _AtomicFile:
    """A hidden temporary name next to ``path`` that becomes ``path`` on commit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.parent.is_dir():
            raise InputError(f"{path}: output folder {path.parent} does not exist")
        while True:  # like mkstemp, but with the umask's permissions rather than 0600
            tmp = path.parent / f".{path.stem}.{secrets.token_hex(4)}.part{path.suffix}"
            try:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                break
            except FileExistsError:
                continue
        self.tmp = tmp
        self.done = False

    def commit(self) -> None:
        os.replace(self.tmp, self.path)
        self.done = True

    def discard(self) -> None:
        self.done = True
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass


class _Sink:
    """Shared close/abort/context-manager logic."""

    path: Path
    _file: _AtomicFile

    def _finish(self) -> None:  # flush encoders, close handles
        raise NotImplementedError  # pragma: no cover

    def _release(self) -> None:  # close handles without finishing (abort)
        raise NotImplementedError  # pragma: no cover

    @property
    def closed(self) -> bool:
        return self._file.done

    def close(self) -> None:
        """Finish the file and give it its final name (idempotent)."""
        if self._file.done:
            return
        try:
            self._finish()
        except BaseException:
            self.abort()
            raise
        self._file.commit()

    def abort(self) -> None:
        """Drop everything written: no file appears under the final name."""
        if self._file.done:
            return
        try:
            self._release()
        finally:
            self._file.discard()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, exc_type: Any, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:  # dropped without close(): never leave a temp file behind
        file = getattr(self, "_file", None)
        if file is not None and not file.done:
            try:
                self.abort()
            except Exception:
                pass


class FrameSink(_Sink):
    """Writes Frames of one fixed format; ``write(frame)``, then ``close()`` or ``abort()``.

    Containers keep each frame's ``pts`` (units of ``1/fps``, so an every-8th-frame selection
    keeps its timing); a frame without one, or not after the previous one, gets previous + 1.
    Matrix and range are written as colour tags where the format has them (MKV/MP4, y4m range).
    """

    def __init__(self, path: Path, fmt: VideoFormat) -> None:
        self.path = path
        self.format = fmt
        self.frames_written = 0
        self._file = _AtomicFile(path)

    def write(self, frame: Frame) -> None:
        if self._file.done:
            raise UsageError(f"{self.path}: write after close")
        f = frame.format
        want = self.format
        if (f.width, f.height, f.chroma, f.bit_depth) != (want.width, want.height, want.chroma, want.bit_depth):
            raise FormatError(f"{self.path}: frame {frame.index} is {f}, this sink writes {want}")
        self._write(frame)
        self.frames_written += 1

    def _write(self, frame: Frame) -> None:
        raise NotImplementedError  # pragma: no cover


class _RawSink(FrameSink):
    def __init__(self, path: Path, fmt: VideoFormat, header: bytes = b"", marker: bytes = b"") -> None:
        super().__init__(path, fmt)
        self._fh = open(self._file.tmp, "wb")
        self._fh.write(header)
        self._marker = marker
        self._le = fmt.dtype.newbyteorder("<")

    def _write(self, frame: Frame) -> None:
        self._fh.write(self._marker)
        for p in frame.planes:
            self._fh.write(np.ascontiguousarray(p, self._le).tobytes())

    def _finish(self) -> None:
        self._fh.close()

    def _release(self) -> None:
        self._fh.close()


def _y4m_header(fmt: VideoFormat) -> bytes:
    fps = fmt.fps
    tag = y4m_tag(fmt)
    extra = f" XYSCSS={tag.upper()}" if fmt.bit_depth > 8 else ""
    rng = " XCOLORRANGE=FULL" if fmt.range == "full" else ""
    return f"YUV4MPEG2 W{fmt.width} H{fmt.height} F{fps.numerator}:{fps.denominator} Ip A1:1 C{tag}{extra}{rng}\n".encode()


class _AvSink(FrameSink):
    """Frames encoded by an FFmpeg encoder (FFV1, libx264, libx265) and muxed by PyAV."""

    def __init__(self, path: Path, fmt: VideoFormat, muxer: str, codec: str, options: dict[str, str]) -> None:
        import av

        super().__init__(path, fmt)
        self._tb = Fraction(1) / fmt.fps
        self._last_pts = -1
        try:
            self._out = av.open(str(self._file.tmp), "w", format=muxer)
        except av.FFmpegError as e:
            self._file.discard()
            raise InputError(f"{path}: cannot create ({ffmpeg_msg(e)})") from None
        try:
            st = self._out.add_stream(codec, rate=fmt.fps, options={**_ENCODER_DEFAULTS.get(codec, {}), **options})
            st.width, st.height, st.pix_fmt = fmt.width, fmt.height, fmt.pix_fmt
            st.time_base = self._tb
            cc = st.codec_context
            cc.time_base = self._tb
            cc.colorspace = SWS_COLORSPACE.get(fmt.matrix, 2)
            cc.color_range = 2 if fmt.range == "full" else 1
            if codec == "libx265" and muxer in ("mp4", "mov"):
                st.codec_tag = "hvc1"  # what Apple players want; parameter sets go to hvcC
            cc.thread_type = "AUTO"
        except (av.FFmpegError, ValueError, TypeError) as e:
            self._out.close()
            self._file.discard()
            raise FormatError(f"{path}: {codec} cannot write {fmt} ({ffmpeg_msg(e)})") from None
        self._stream = st
        self._codec = codec

    def _mux(self, packets: Any) -> None:
        for pkt in packets:
            self._out.mux(pkt)

    def _write(self, frame: Frame) -> None:
        import av

        pts = frame.pts if frame.pts is not None and frame.pts > self._last_pts else self._last_pts + 1
        self._last_pts = pts
        vf = planes_to_avframe(frame.planes, self.format)
        vf.pts = pts
        vf.time_base = self._tb
        vf.color_range = 2 if self.format.range == "full" else 1
        try:
            self._mux(self._stream.encode(vf))
        except av.FFmpegError as e:
            raise CodecError(f"{self.path}: {self._codec} failed on frame {frame.index} ({ffmpeg_msg(e)})") from None

    def _finish(self) -> None:
        import av

        try:
            self._mux(self._stream.encode(None))
        except av.FFmpegError as e:
            self._release()
            raise CodecError(f"{self.path}: {self._codec} failed while flushing ({ffmpeg_msg(e)})") from None
        try:
            self._out.close()
        except av.FFmpegError as e:
            raise FormatError(f"{self.path}: finishing the container failed ({ffmpeg_msg(e)})") from None

    def _release(self) -> None:
        try:
            self._out.close()
        except Exception:
            pass


def open_sink(path: str | os.PathLike[str], fmt: VideoFormat, *, codec: str | None = None,
              options: dict[str, str] | None = None) -> FrameSink:
    """A sink for frames of ``fmt``, chosen by extension (table in the module docstring).

    ``codec`` picks the FFmpeg encoder for ``.mkv``/``.mp4``/``.mov`` (``ffv1``, ``libx264``
    or ``x264``, ``libx265`` or ``x265``); ``options`` are that encoder's private options
    (e.g. ``{"crf": "23", "preset": "slow"}``) and override the defaults.
    """
    p = Path(path)
    ext = p.suffix.lower()
    options = dict(options or {})
    if ext in (".yuv", ".y4m"):
        if codec not in (None, "rawvideo") or options:
            raise UsageError(f"{p}: {ext} files hold raw samples; codec/options apply to .mkv/.mp4 only")
        if ext == ".yuv":
            return _RawSink(p, fmt)
        return _RawSink(p, fmt, header=_y4m_header(fmt), marker=b"FRAME\n")
    if ext not in _MUXERS:
        raise UsageError(f"{p}: cannot write {ext or 'files without extension'} "
                         "(want .yuv, .y4m, .mkv, .mp4 or .mov)")
    name = _ENCODER_ALIASES.get(codec or "", codec) or ("ffv1" if ext == ".mkv" else "libx264")
    if name not in _ENCODER_DEFAULTS:
        raise UsageError(f"{p}: unknown output codec {codec!r} (want ffv1, libx264 or libx265)")
    if name == "ffv1" and ext != ".mkv":
        raise UsageError(f"{p}: lossless FFV1 goes into .mkv")
    return _AvSink(p, fmt, _MUXERS[ext], name, options)


class PacketSink(_Sink):
    """Already-coded packets of a standard elementary stream (``hevc``/``h264``) into a file."""

    def __init__(self, path: Path, stream_codec: str, fmt: VideoFormat) -> None:
        self.path = path
        self.stream_codec = stream_codec
        self.format = fmt
        self.packets_written = 0
        self._last_dts: int | None = None
        self._file = _AtomicFile(path)
        self._out: Any = None
        self._fh: Any = None
        ext = path.suffix.lower()
        if ext in ANNEXB_EXTS:
            self._fh = open(self._file.tmp, "wb")
            return
        import av

        self._tb = Fraction(1) / fmt.fps  # a constant: the muxer rewrites the stream's time_base
        try:
            self._out = av.open(str(self._file.tmp), "w", format=_MUXERS[ext])
            self._st = self._out.add_mux_stream(stream_codec, rate=fmt.fps, width=fmt.width, height=fmt.height)
        except av.FFmpegError as e:
            if self._out is not None:
                self._out.close()
            self._file.discard()
            raise InputError(f"{path}: cannot create ({ffmpeg_msg(e)})") from None

    def write(self, packet: Any) -> None:
        """Append one access unit (Annex-B bytes with start codes) in decoding order: its
        ``pts`` and ``dts`` (``dts`` None: the packet is decoded when presented)."""
        if self._file.done:
            raise UsageError(f"{self.path}: write after close")
        if self._fh is not None:
            self._fh.write(packet.data)
            self.packets_written += 1
            return
        import av

        pts = packet.pts if packet.pts is not None else packet.index
        dts = pts if packet.dts is None else packet.dts
        if dts > pts:
            raise FormatError(f"{self.path}: packet {packet.index} has dts {dts} after its pts {pts} "
                              "(a picture cannot be decoded after it is shown)")
        if self._last_dts is not None and dts <= self._last_dts:
            raise FormatError(f"{self.path}: packet {packet.index} has dts {dts}, not after {self._last_dts} "
                              "(decoding times must increase: write packets in decoding order)")
        self._last_dts = dts
        p = av.Packet(bytes(packet.data))
        p.stream = self._st
        p.time_base = self._tb
        p.pts, p.dts = pts, dts
        p.duration = 1
        p.is_keyframe = bool(packet.keyframe)
        try:
            self._out.mux(p)
        except av.FFmpegError as e:
            raise FormatError(f"{self.path}: muxing packet {packet.index} failed ({ffmpeg_msg(e)})") from None
        self.packets_written += 1

    def _finish(self) -> None:
        import av

        if self._fh is not None:
            self._fh.close()
            return
        try:
            self._out.close()
        except av.FFmpegError as e:
            raise FormatError(f"{self.path}: finishing the container failed ({ffmpeg_msg(e)})") from None

    def _release(self) -> None:
        try:
            (self._fh or self._out).close()
        except Exception:
            pass


def open_packet_sink(path: str | os.PathLike[str], stream_codec: str, fmt: VideoFormat) -> PacketSink:
    """A sink for coded packets: ``.mp4``/``.mkv``/``.mov`` muxed, or raw Annex-B by extension."""
    p = Path(path)
    ext = p.suffix.lower()
    if stream_codec not in ("hevc", "h264"):
        raise UsageError(f"{p}: cannot mux a {stream_codec!r} stream (want hevc or h264)")
    if ext in ANNEXB_EXTS:
        if ANNEXB_EXTS[ext] != stream_codec:
            raise UsageError(f"{p}: {ext} is for {ANNEXB_EXTS[ext]} streams, not {stream_codec}")
    elif ext not in _MUXERS:
        raise UsageError(f"{p}: cannot write a {stream_codec} stream to {ext or 'a file without extension'} "
                         f"(want .mp4, .mkv, .mov or {', '.join(e for e, c in ANNEXB_EXTS.items() if c == stream_codec)})")
    return PacketSink(p, stream_codec, fmt)
