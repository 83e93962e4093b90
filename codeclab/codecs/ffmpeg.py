"""The anchors: libx265 and libx264 through PyAV, and FFmpeg's HEVC/H.264 decoders.

Encoders run on a bare ``av.CodecContext`` (no container), so every :class:`Packet`
carries one access unit as Annex-B bytes with the parameter sets in band: ready for a raw
``.hevc``/``.h264`` file or for muxing (``pipeline.io.sinks.open_packet_sink``).

Defaults and why:

- ``keyint=1`` (all-intra): these are the anchors for our intra codecs. ``keyint > 1``
  gives I + P pictures; ``bframes=N`` (default 0) lets the encoder put up to N B-frames
  between them (its own adaptive placement and pyramid), and packets then come in
  decoding order with their ``dts``.
- ``qp=32`` is the QP of *every* picture: ``ipratio=1:pbratio=1`` is passed, because both
  encoders otherwise code I pictures about 3 QP finer than the ``qp`` asked for.
  ``crf`` switches to constant-quality rate control instead (``qp`` is then ignored;
  giving both is a usage error, unless ``qp`` is the default).
- ``bit_depth=None`` follows the input (10-bit input -> Main10 / High10). A different
  depth is the encoder's *internal* depth, as HM's ``InternalBitDepth``: samples are
  shifted up (exactly) or down (rounded) before encoding, and the decoder shifts them back
  to the input depth, so metrics always compare frames of the source's format.
- Chroma 4:2:0, 4:2:2, 4:4:4 and 4:0:0 at 8/10 bit (x265 also 12 bit); other layouts
  raise :class:`~codeclab.base.errors.FormatError` naming what the encoder takes.

- x265 gets ``info=0``: by default it repeats an SEI with its whole settings string in
  every IDR access unit (about 2 KB), which in all-intra would be billed to every picture.

``params`` (extra ``x265-params``/``x264-params``) come after ours, so they win; FFmpeg
only warns about names the library does not know.

Packet ``props``: ``bits``, ``qp`` (average QP FFmpeg reports in the packet's
quality-stats side data), ``pict_type`` (``"I"``/``"P"``/``"B"``), ``encode_s`` (time of
the encode calls, attributed to the packets they returned).
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from codeclab.base.convert import convert_depth
from codeclab.base.errors import CodecError, FormatError, UsageError
from codeclab.base.frame import PIX_FMTS, Frame, VideoFormat
from codeclab.base.packet import Packet
from codeclab.codecs.base import CodecSpec

__all__ = ["X265_SPEC", "X264_SPEC", "X265Options", "X264Options", "FFmpegEncoder", "FFmpegDecoder", "PICT_TYPES"]

#: AVPictureType -> the letter packets and frames report
PICT_TYPES = {1: "I", 2: "P", 3: "B", 4: "S", 5: "SI", 6: "SP", 7: "BI"}
_FF_QP2LAMBDA = 118  # FFmpeg's quality unit: quality = qp * FF_QP2LAMBDA
#: presets and tunings the encoders accept (x265 --help, x264 --fullhelp)
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
TUNES = {
    "libx265": ("psnr", "ssim", "grain", "zerolatency", "fastdecode", "animation"),
    "libx264": ("film", "animation", "grain", "stillimage", "psnr", "ssim", "fastdecode", "zerolatency"),
}


@dataclass(frozen=True)
class _AnchorOptions:
    """Options shared by x265 and x264 (see the module docstring for the defaults)."""

    qp: int | None = 32
    crf: float | None = None
    preset: str = "medium"
    tune: str | None = None
    keyint: int = 1
    bframes: int = 0
    bit_depth: int | None = None
    params: str = ""  # extra x265-params / x264-params, "key=value:key=value"

    def __post_init__(self) -> None:
        if self.crf is not None and self.qp not in (None, 32):
            raise UsageError(f"give either qp ({self.qp}) or crf ({self.crf}), not both")
        if self.crf is not None:
            object.__setattr__(self, "qp", None)  # crf given: qp (its default) is ignored
        elif self.qp is None:
            raise UsageError("give qp or crf")
        if self.qp is not None and not 0 <= self.qp <= 51:
            raise UsageError(f"qp {self.qp} outside 0..51")
        if self.crf is not None and not 0 <= self.crf <= 51:
            raise UsageError(f"crf {self.crf} outside 0..51")
        if self.keyint < 1:
            raise UsageError(f"keyint {self.keyint} must be >= 1 (1 = all-intra)")
        if not 0 <= self.bframes <= 16:
            raise UsageError(f"bframes {self.bframes} outside 0..16")


@dataclass(frozen=True)
class X265Options(_AnchorOptions):
    """libx265 options (HEVC)."""


@dataclass(frozen=True)
class X264Options(_AnchorOptions):
    """libx264 options (H.264/AVC)."""


def _params(opts: _AnchorOptions, library: str) -> str:
    """The ``x265-params``/``x264-params`` string: GOP, B-frames, flat I/P/B QP, user extras."""
    keyint = opts.keyint
    base = [f"keyint={keyint}", f"min-keyint={keyint}", f"bframes={opts.bframes}", "ipratio=1", "pbratio=1"]
    if library == "libx265":
        base.append("log-level=error")
        base.append("info=0")  # no encoder-settings SEI: ~2 KB per IDR would be counted as picture bits
        if keyint > 1:
            base.append("scenecut=0")
    elif keyint > 1:
        base.append("scenecut=0")
    extra = [p for p in opts.params.split(":") if p]
    for p in extra:
        if "=" not in p and not p.startswith("no-"):
            raise UsageError(f"params: {p!r} is not key=value")
    return ":".join(base + extra)


class FFmpegEncoder:
    """libx265 / libx264 on a bare codec context; one Annex-B access unit per packet."""

    def __init__(self, library: str, depths: tuple[int, ...], fmt: VideoFormat, opts: _AnchorOptions) -> None:
        import av

        depth = opts.bit_depth or fmt.bit_depth
        if depth not in depths:
            raise FormatError(f"{library} codes {', '.join(map(str, depths))}-bit video, not {depth}-bit "
                              "(set bit_depth or convert with --to-pix-fmt)")
        self.library = library
        self.fmt = fmt
        self.coded = fmt.with_(bit_depth=depth)
        pix_fmt = PIX_FMTS[(fmt.chroma, depth)]
        codec = av.codec.Codec(library, "w")
        if pix_fmt not in {f.name for f in codec.video_formats}:
            ok = sorted({f.name for f in codec.video_formats if f.name in PIX_FMTS.values()})
            raise FormatError(f"{library} cannot code {pix_fmt} (it takes {', '.join(ok)})")
        if opts.preset not in PRESETS:
            raise UsageError(f"{library}: unknown preset {opts.preset!r} (want one of {', '.join(PRESETS)})")
        if opts.tune is not None and any(t not in TUNES[library] for t in opts.tune.split(",")):
            raise UsageError(f"{library}: unknown tune {opts.tune!r} (want one of {', '.join(TUNES[library])})")
        self.qp = opts.qp if opts.crf is None else None
        options = {"preset": opts.preset, f"{library[3:]}-params": _params(opts, library)}
        if opts.crf is not None:
            options["crf"] = f"{opts.crf:g}"
        else:
            options["qp"] = str(opts.qp)
        if opts.tune:
            options["tune"] = opts.tune
        ctx = av.CodecContext.create(library, "w")
        ctx.width, ctx.height, ctx.pix_fmt = fmt.width, fmt.height, pix_fmt
        ctx.time_base = Fraction(1) / fmt.fps
        ctx.framerate = fmt.fps
        ctx.color_range = 2 if fmt.range == "full" else 1
        ctx.options = options
        try:
            ctx.open()
        except av.FFmpegError as e:
            args = ", ".join(f"{k}={v}" for k, v in options.items())
            raise UsageError(f"{library} rejected its options ({args}): {e.strerror or e}") from None
        self._ctx = ctx
        self._pending_s = 0.0  # encode time not yet attributed to a packet
        self._flushed = False

    def _avframe(self, frame: Frame) -> Any:
        import av

        planes = convert_depth(frame.planes, self.fmt.bit_depth, self.coded.bit_depth)
        vf = av.VideoFrame(self.fmt.width, self.fmt.height, self.coded.pix_fmt)
        for plane, arr in zip(vf.planes, planes):
            h, w = arr.shape
            row = plane.line_size // arr.itemsize
            if row != w:
                padded = np.zeros((h, row), arr.dtype)
                padded[:, :w] = arr
                arr = padded
            plane.update(np.ascontiguousarray(arr))
        vf.pts = frame.index
        return vf

    def _packets(self, avpackets: list[Any], seconds: float) -> list[Packet]:
        self._pending_s += seconds
        if not avpackets:
            return []
        share, self._pending_s = self._pending_s / len(avpackets), 0.0
        out = []
        for p in avpackets:
            data = bytes(p)
            props: dict[str, Any] = {"bits": 8 * len(data), "encode_s": share}
            for sd in p.iter_sidedata():
                if sd.data_type == "quality_stats" and sd.data_size >= 5:
                    quality, pict = struct.unpack_from("<IB", bytes(sd))
                    props["qp"] = quality / _FF_QP2LAMBDA
                    props["pict_type"] = PICT_TYPES.get(pict, "?")
            if "qp" not in props and self.qp is not None:
                props["qp"] = float(self.qp)
            index = int(p.pts) if p.pts is not None else -1
            dts = int(p.dts) if p.dts is not None else None
            out.append(Packet(data, index, index, bool(p.is_keyframe), props, dts=dts))
        return out

    def encode(self, frame: Frame) -> list[Packet]:
        import av

        if self._flushed:
            raise CodecError(f"{self.library}: encode after flush")
        vf = self._avframe(frame)
        t0 = time.perf_counter()
        try:
            pk = self._ctx.encode(vf)
        except av.FFmpegError as e:
            raise CodecError(f"{self.library}: encoding frame {frame.index} failed ({e})") from None
        return self._packets(pk, time.perf_counter() - t0)

    def flush(self) -> list[Packet]:
        import av

        if self._flushed:
            return []
        self._flushed = True
        t0 = time.perf_counter()
        try:
            pk = self._ctx.encode(None)
        except av.FFmpegError as e:
            raise CodecError(f"{self.library}: flushing the encoder failed ({e})") from None
        return self._packets(pk, time.perf_counter() - t0)


class FFmpegDecoder:
    """FFmpeg's decoder for a standard stream (``"hevc"``, ``"h264"``, ``"vvc"``), frames in native layout.

    Used by every codec whose packets form a standard stream (the anchors, our own HEVC
    encoder, HM and VTM), so metrics are measured on what a real player shows. Frames come back in
    ``fmt`` (its depth, matrix, range, rate): a stream coded at another internal depth is
    shifted back. ``Frame.index``/``pts`` come from the packet's ``pts`` (or ``index``).
    """

    def __init__(self, stream_codec: str, fmt: VideoFormat) -> None:
        import av

        if stream_codec not in ("hevc", "h264", "vvc"):
            raise UsageError(f"FFmpegDecoder: unsupported stream codec {stream_codec!r} (want hevc, h264 or vvc)")
        self.stream_codec = stream_codec
        self.fmt = fmt
        self._ctx = av.CodecContext.create(stream_codec, "r")
        self._ctx.thread_type = "SLICE"  # frame threads would add a delay of several frames
        self._flushed = False

    def _frames(self, avframes: list[Any]) -> list[Frame]:
        out = []
        for vf in avframes:
            name = vf.format.name
            try:
                got = VideoFormat.from_pix_fmt(name, vf.width, vf.height)
            except FormatError:
                raise CodecError(f"{self.stream_codec} decoder returned {name}, not planar YUV") from None
            if self.fmt.chroma == "400":  # FFmpeg's H.264 decoder returns 4:0:0 as yuv420p
                got = got.with_(chroma="400")
            if (got.width, got.height, got.chroma) != (self.fmt.width, self.fmt.height, self.fmt.chroma):
                raise CodecError(f"{self.stream_codec} decoder returned {got}, expected {self.fmt}")
            planes = tuple(np.from_dlpack(p).copy() for p in vf.planes[: got.num_planes])
            planes = tuple(p if p.dtype == got.dtype else p.view(got.dtype) for p in planes)
            planes = convert_depth(planes, got.bit_depth, self.fmt.bit_depth)
            idx = int(vf.pts) if vf.pts is not None else -1
            props = {"pict_type": PICT_TYPES.get(int(vf.pict_type), "?"), "keyframe": bool(vf.key_frame)}
            out.append(Frame(planes, self.fmt, idx, idx, props))
        return out

    def decode(self, packet: Packet) -> list[Frame]:
        import av

        if self._flushed:
            raise CodecError(f"{self.stream_codec} decoder: decode after flush")
        p = av.Packet(bytes(packet.data))
        p.pts = p.dts = packet.pts if packet.pts is not None else packet.index
        try:
            return self._frames(self._ctx.decode(p))
        except av.FFmpegError as e:
            from codeclab.base.errors import BitstreamError

            raise BitstreamError(f"{self.stream_codec} decoder: packet {packet.index} is damaged ({e})") from None

    def flush(self) -> list[Frame]:
        import av

        if self._flushed:
            return []
        self._flushed = True
        try:
            return self._frames(self._ctx.decode(None))
        except av.FFmpegError as e:
            from codeclab.base.errors import BitstreamError

            raise BitstreamError(f"{self.stream_codec} decoder: stream is damaged at its end ({e})") from None


def _x265_encoder(fmt: VideoFormat, opts: X265Options) -> FFmpegEncoder:
    return FFmpegEncoder("libx265", (8, 10, 12), fmt, opts)


def _x264_encoder(fmt: VideoFormat, opts: X264Options) -> FFmpegEncoder:
    return FFmpegEncoder("libx264", (8, 10), fmt, opts)


#: codec ``x265`` of the registry
X265_SPEC = CodecSpec("x265", "HEVC by libx265 (FFmpeg), all-intra at a flat QP by default: the anchor",
                      X265Options, _x265_encoder, lambda fmt, _o: FFmpegDecoder("hevc", fmt), "hevc", ".hevc")
#: codec ``x264`` of the registry
X264_SPEC = CodecSpec("x264", "H.264/AVC by libx264 (FFmpeg), all-intra at a flat QP by default",
                      X264Options, _x264_encoder, lambda fmt, _o: FFmpegDecoder("h264", fmt), "h264", ".h264")
