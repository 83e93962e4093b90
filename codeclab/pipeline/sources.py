"""Frame sources: anything FFmpeg reads, raw ``.yuv`` and ``.y4m``, as lazy streams of Frames.

Every source delivers :class:`~codeclab.frame.Frame` objects in a planar YUV layout
(``format``), one frame at a time, so memory stays bounded by a few frames whatever the
file length. ``Frame.index`` is the frame's position in the file, ``Frame.pts`` its time
in units of ``1/fps``.

- **PyAV files** keep their native sampling and bit depth (10-bit stays uint16, 4:4:4
  stays 4:4:4, gray stays 4:0:0). Semi-planar and packed YUV (nv12, p010, yuyv422...) is
  rearranged into the planar format of the same sampling and depth, which is lossless.
  **RGB sources** (PNG, rgb24, gbrp...) are converted to YUV **4:4:4** at the source's
  bit depth by :func:`rgb_to_yuv` (the published Kr/Kb equations, rounded to nearest, in
  numpy; swscale's full-range chroma is biased by half a step) with an explicit matrix:
  **BT.709 limited range** unless ``matrix`` says otherwise (``"bt601"``, ``"bt2020nc"``,
  optionally ``":full"`` for full range, e.g. ``"bt709:full"``). No chroma is subsampled
  unless ``to_pix_fmt`` asks for it.
- **Raw ``.yuv``**: geometry from a JVET-style name (see :mod:`.jvet_names`) or from
  ``size``/``fps``/``pix_fmt`` (explicit values win); >8-bit samples are little-endian
  uint16. Frames are read by seeking, so skipped frames are never read.
- **``.y4m``**: header and frame markers parsed here, samples read with numpy by seeking.
- **Frame ranges** on PyAV files decode through the skipped frames, except that an MP4/MOV
  stream with a constant frame rate seeks to the keyframe before a far ``start`` (the
  landing point is verified from timestamps; anything unexpected falls back to decoding
  from the top). Timestamps are counted from the first frame in units of ``1/fps`` (the
  stream's average rate), rounded: a variable-rate file may repeat a pts.
- ``to_pix_fmt`` converts every frame with swscale (``frame.reformat``): bit-depth changes
  are exact shifts, chroma resampling (e.g. 4:4:4 -> 4:2:0) uses swscale's default
  (bilinear) filter, so its output is FFmpeg's, not a filter of ours.

Other containers plug in through :func:`register_source`; ``.vpy`` (VapourSynth scripts) and
``.clc`` (our container) are wired lazily by "module:attribute" name, so opening one needs
no import beforehand. ``_sws_convert``, ``_target_format`` and ``parse_matrix`` are shared
with those sources.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import FormatError, InputError, UsageError
from ..frame import CHROMA_SHIFT, PIX_FMTS, Frame, VideoFormat
from .jvet_names import NTSC_RATES, JvetName, parse_jvet_name

__all__ = [
    "FrameRange",
    "Source",
    "SourceInfo",
    "open_source",
    "probe",
    "register_source",
    "parse_jvet_name",
    "JvetName",
    "RawSource",
    "Y4mSource",
    "AvSource",
    "parse_matrix",
    "rgb_to_yuv",
]

_DEFAULT_FPS = Fraction(25)


# ---------------------------------------------------------------------------------------
# Frame selection


@dataclass(frozen=True)
class FrameRange:
    """Which frames to deliver: ``start``, then every ``step``-th, at most ``count`` of them.

    JVET's all-intra common test conditions code every 8th frame: ``FrameRange(step=8)``.
    """

    start: int = 0
    count: int | None = None
    step: int = 1

    def __post_init__(self) -> None:
        if self.start < 0 or self.step < 1 or (self.count is not None and self.count < 0):
            raise UsageError(f"bad frame range start={self.start} count={self.count} step={self.step} "
                             "(start >= 0, count >= 0, step >= 1)")

    def indices(self, total: int) -> range:
        """The selected frame indices of a file with ``total`` frames."""
        r = range(self.start, total, self.step)
        return r if self.count is None else r[: self.count]

    def selects(self, i: int) -> bool:
        return i >= self.start and (i - self.start) % self.step == 0 and (
            self.count is None or (i - self.start) // self.step < self.count)

    def last(self) -> int | None:
        """Highest index that can be selected (None: unbounded)."""
        return None if self.count is None else self.start + (self.count - 1) * self.step


# ---------------------------------------------------------------------------------------
# The Source interface and its registry


@dataclass(frozen=True)
class SourceInfo:
    """What ``codeclab info`` prints about a file."""

    path: Path
    format: VideoFormat  # what the frames will be (after any conversion asked for)
    num_frames: int | None
    container: str
    codec: str
    source_pix_fmt: str
    duration: float | None  # seconds

    def __str__(self) -> str:
        n = "?" if self.num_frames is None else str(self.num_frames)
        d = "?" if self.duration is None else f"{self.duration:.3f} s"
        return (f"{self.path}: {self.container}/{self.codec} {self.source_pix_fmt} -> {self.format}, "
                f"{self.format.matrix} {self.format.range} range, {n} frames, {d}")


class Source:
    """A lazy, re-iterable stream of frames; also a context manager.

    Subclasses set ``path``, ``format``, ``num_frames`` and the info fields, and implement
    ``_frames``. Each ``iter()`` opens its own file handle, closed when the iteration ends,
    when the generator is dropped, or by :meth:`close`.
    """

    path: Path
    format: VideoFormat
    num_frames: int | None
    container_name: str = "?"
    codec_name: str = "?"
    source_pix_fmt: str = "?"

    def __init__(self) -> None:
        self._live: list[Any] = []

    def _frames(self) -> Iterator[Frame]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        gen = self._frames()
        self._live = [g for g in self._live if g.gi_frame is not None] + [gen]
        return gen

    @property
    def duration(self) -> float | None:
        return None if self.num_frames is None else float(self.num_frames / self.format.fps)

    def info(self) -> SourceInfo:
        return SourceInfo(self.path, self.format, self.num_frames, self.container_name, self.codec_name,
                          self.source_pix_fmt, self.duration)

    def close(self) -> None:
        """Stop every running iteration and release its file handle."""
        for g in self._live:
            g.close()
        self._live = []

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path} {self.format} frames={self.num_frames}>"


#: opener(path, *, size, fps, pix_fmt, frames, to_pix_fmt, matrix) -> Source
SourceOpener = Callable[..., Source]
_OPENERS: dict[str, SourceOpener | str] = {
    ".vpy": "codeclab.pipeline.vapoursynth_io:VpySource",
    ".clc": "codeclab.pipeline.clc_source:open_clc_source",
}


def register_source(ext: str, opener: SourceOpener | str) -> None:
    """Route files ending in ``ext`` (e.g. ``".clc"``) to ``opener``.

    ``opener`` is called as ``opener(path, size=, fps=, pix_fmt=, frames=, to_pix_fmt=,
    matrix=)`` and returns a :class:`Source` (or anything with the same attributes). It may
    be given as ``"package.module:attribute"`` so that the module is imported only when
    such a file is opened.
    """
    ext = ext.lower()
    if not ext.startswith("."):
        ext = "." + ext
    _OPENERS[ext] = opener


def _resolve(opener: SourceOpener | str) -> SourceOpener:
    if isinstance(opener, str):
        module, _, attr = opener.partition(":")
        return getattr(importlib.import_module(module), attr)
    return opener


def open_source(path: str | os.PathLike[str], *, size: tuple[int, int] | None = None,
                fps: Fraction | float | str | None = None, pix_fmt: str | None = None,
                frames: FrameRange | None = None, to_pix_fmt: str | None = None,
                matrix: str | None = None) -> Source:
    """Open a video/image file as a lazy :class:`Source` (see the module docstring).

    Args:
        size, pix_fmt: geometry of raw ``.yuv`` files (override the name); for other files
            they must agree with the file if given.
        fps: frame rate; overrides what the file says.
        frames: which frames to deliver (default: all).
        to_pix_fmt: convert every frame to this planar YUV/gray format (swscale).
        matrix: colour matrix[:range] of RGB->YUV conversion, or the tag to record for
            files that carry none (raw, y4m).

    Raises:
        InputError: missing, unreadable, truncated or non-video file.
        FormatError: a pixel format or size codeclab cannot represent.
        UsageError: missing or contradictory options (e.g. a raw file with no size).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a video file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{p}: permission denied")
    opts: dict[str, Any] = dict(size=size, fps=_as_fps(fps, p), pix_fmt=pix_fmt, frames=frames or FrameRange(),
                                to_pix_fmt=to_pix_fmt, matrix=matrix)
    ext = p.suffix.lower()
    if ext in _OPENERS:
        return _resolve(_OPENERS[ext])(p, **opts)
    if ext == ".yuv":
        return RawSource(p, **opts)
    if ext == ".y4m":
        return Y4mSource(p, **opts)
    return AvSource(p, **opts)


def probe(path: str | os.PathLike[str], **options: Any) -> SourceInfo:
    """Describe a file (format after conversion, frame count, container, codec, duration)."""
    with open_source(path, **options) as src:
        info = getattr(src, "info", None)
        if callable(info):
            return info()
        n = src.num_frames
        return SourceInfo(Path(path), src.format, n, Path(path).suffix.lstrip("."), "?", src.format.pix_fmt,
                          None if n is None else float(n / src.format.fps))


# ---------------------------------------------------------------------------------------
# Shared helpers

_MATRICES = {"bt709": "bt709", "709": "bt709", "bt601": "bt601", "601": "bt601", "smpte170m": "bt601",
             "bt470bg": "bt601", "bt2020nc": "bt2020nc", "bt2020": "bt2020nc", "2020": "bt2020nc"}
#: our matrix name -> swscale Colorspace value (av.video.reformatter.Colorspace)
_SWS_COLORSPACE = {"bt709": 1, "bt601": 5, "bt2020nc": 9}
#: FFmpeg AVColorSpace -> our name (unspecified/other: None)
_FROM_AVCOL_SPC = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020nc"}


def parse_matrix(matrix: str | None, where: Path | str = "") -> tuple[str, str] | tuple[None, None]:
    """``"bt709"``, ``"bt601:full"`` ... -> (matrix, range); ``None`` -> (None, None)."""
    if matrix is None:
        return None, None
    name, _, rng = matrix.lower().replace("/", ":").partition(":")
    rng = {"": "limited", "limited": "limited", "tv": "limited", "mpeg": "limited",
           "full": "full", "pc": "full", "jpeg": "full"}.get(rng, "?")
    if name not in _MATRICES or rng == "?":
        raise UsageError(f"{where}: unknown colour matrix {matrix!r} "
                         "(want bt709, bt601 or bt2020nc, optionally followed by :limited or :full)")
    return _MATRICES[name], rng


def _as_fps(fps: Fraction | float | str | None, path: Path) -> Fraction | None:
    if fps is None:
        return None
    try:
        f = Fraction(fps).limit_denominator(1_000_000) if isinstance(fps, float) else Fraction(fps)
    except (ValueError, ZeroDivisionError):
        raise UsageError(f"{path}: bad frame rate {fps!r}") from None
    if not isinstance(fps, Fraction):  # "29.97" / 59.94 mean the NTSC rates N*1000/1001
        f = next((n for n in NTSC_RATES if abs(f - n) < Fraction(1, 1000)), f)
    if f <= 0:
        raise UsageError(f"{path}: frame rate must be positive, got {fps!r}")
    return f


def _target_format(to_pix_fmt: str, width: int, height: int, path: Path, **kw: Any) -> VideoFormat:
    try:
        return VideoFormat.from_pix_fmt(to_pix_fmt, width, height, **kw)
    except FormatError as e:
        raise FormatError(f"{path}: to_pix_fmt: {e}") from None


def _pix_fmt_format(pix_fmt: str, width: int, height: int, path: Path, **kw: Any) -> VideoFormat:
    try:
        return VideoFormat.from_pix_fmt(pix_fmt, width, height, **kw)
    except FormatError as e:
        raise FormatError(f"{path}: {e}") from None


def _check_agrees(path: Path, fmt: VideoFormat, size: tuple[int, int] | None, pix_fmt: str | None) -> None:
    """Self-describing files: an explicit size/pix_fmt must agree (conversion is to_pix_fmt's job)."""
    if size is not None and tuple(size) != (fmt.width, fmt.height):
        raise UsageError(f"{path}: the file is {fmt.width}x{fmt.height}, not {size[0]}x{size[1]} "
                         "(size applies to raw .yuv files only)")
    if pix_fmt is not None:
        want = _pix_fmt_format(pix_fmt, fmt.width, fmt.height, path)
        if (want.chroma, want.bit_depth) != (fmt.chroma, fmt.bit_depth):
            raise UsageError(f"{path}: the file is {fmt.pix_fmt}, not {pix_fmt} (use to_pix_fmt to convert)")


def _planes_to_avframe(planes: tuple[np.ndarray, ...], fmt: VideoFormat) -> Any:
    """numpy planes -> av.VideoFrame of ``fmt.pix_fmt`` (rows padded to PyAV's line size)."""
    import av

    vf = av.VideoFrame(fmt.width, fmt.height, fmt.pix_fmt)
    for plane, arr in zip(vf.planes, planes):
        h, w = arr.shape
        row = plane.line_size // arr.itemsize
        if row == w:
            plane.update(np.ascontiguousarray(arr))
        else:
            padded = np.zeros((h, row), arr.dtype)
            padded[:, :w] = arr
            plane.update(padded)
    return vf


def _avframe_planes(vf: Any, fmt: VideoFormat) -> tuple[np.ndarray, ...]:
    """Writable copies of the planes of an av.VideoFrame in ``fmt``'s planar layout."""
    planes = tuple(np.from_dlpack(p).copy() for p in vf.planes[: fmt.num_planes])
    return tuple(p if p.dtype == fmt.dtype else p.view(fmt.dtype) for p in planes)


def _sws_convert(planes: tuple[np.ndarray, ...], src: VideoFormat, dst: VideoFormat) -> tuple[np.ndarray, ...]:
    """YUV -> YUV layout/depth conversion through swscale, keeping matrix and range."""
    vf = _planes_to_avframe(planes, src)
    return _avframe_planes(_reformat_yuv(vf, src, dst.pix_fmt), dst)


def _reformat_yuv(vf: Any, src: VideoFormat, pix_fmt: str) -> Any:
    cs = _SWS_COLORSPACE.get(src.matrix, 1)
    rng = 2 if src.range == "full" else 1
    return vf.reformat(format=pix_fmt, src_colorspace=cs, dst_colorspace=cs, src_color_range=rng,
                       dst_color_range=rng)


#: (Kr, Kb) of each matrix (ITU-R BT.709, BT.601, BT.2020 non-constant luminance)
KR_KB = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114), "bt2020nc": (0.2627, 0.0593)}


def rgb_to_yuv(r: np.ndarray, g: np.ndarray, b: np.ndarray, depth: int, matrix: str = "bt709",
               range: str = "limited") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R'G'B' samples of ``depth`` bits -> Y'CbCr 4:4:4 planes of ``depth`` bits.

    Y = Kr R + Kg G + Kb B, Cb = (B - Y) / (2 - 2 Kb), Cr = (R - Y) / (2 - 2 Kr) on
    normalised values; limited range scales to 219/224 steps above 16/128 (times
    2^(depth-8)), full range to 2^depth - 1 with chroma centred on 2^(depth-1).
    """
    kr, kb = KR_KB[matrix]
    peak = (1 << depth) - 1
    x = np.stack([r, g, b]).astype(np.float64) / peak
    y = kr * x[0] + (1 - kr - kb) * x[1] + kb * x[2]
    cb = (x[2] - y) / (2 - 2 * kb)
    cr = (x[0] - y) / (2 - 2 * kr)
    scale = 1 << (depth - 8)
    if range == "full":
        ys, yo, cs = peak, 0.0, peak
    else:
        ys, yo, cs = 219 * scale, 16 * scale, 224 * scale
    dtype = np.uint8 if depth == 8 else np.uint16
    half = 1 << (depth - 1)
    return tuple(np.clip(np.rint(v), 0, peak).astype(dtype)  # type: ignore[return-value]
                 for v in (yo + ys * y, half + cs * cb, half + cs * cr))


def av_error() -> type[Exception]:
    """FFmpeg's exception base class (PyAV imported lazily)."""
    import av

    return av.FFmpegError


def _split_planes(buf: np.ndarray, fmt: VideoFormat) -> tuple[np.ndarray, ...]:
    planes, pos = [], 0
    for h, w in fmt.plane_shapes:
        planes.append(buf[pos: pos + h * w].reshape(h, w))
        pos += h * w
    return tuple(planes)


class _PlanarFileSource(Source):
    """Raw planar frames at byte offsets in a file (shared by .yuv and .y4m)."""

    def __init__(self, path: Path, native: VideoFormat, frames: FrameRange, to_pix_fmt: str | None) -> None:
        super().__init__()
        self.path = path
        self._native = native
        self._range = frames
        self.format = native if to_pix_fmt is None else _target_format(
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
                planes = _split_planes(buf, fmt)
                if self.format != fmt:
                    try:
                        planes = _sws_convert(planes, fmt, self.format)
                    except av_error() as e:
                        raise FormatError(f"{self.path}: converting frame {i} to {self.format.pix_fmt} "
                                          f"failed ({_msg(e)})") from None
                yield Frame(planes, self.format, i, i)


# ---------------------------------------------------------------------------------------
# Raw .yuv


class RawSource(_PlanarFileSource):
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
        kw = dict(fps=fps or (name and name.fps) or _DEFAULT_FPS, matrix=mat or "bt709", range=rng or "limited")
        if pix_fmt is not None:
            native = _pix_fmt_format(pix_fmt, int(width), int(height), path, **kw)
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


# ---------------------------------------------------------------------------------------
# .y4m

#: Y4M colour-space tag -> (chroma, bit depth). 4:2:0 siting variants are the same samples.
_Y4M_C: dict[str, tuple[str, int]] = {"420jpeg": ("420", 8), "420paldv": ("420", 8), "420mpeg2": ("420", 8),
                                      "420": ("420", 8), "422": ("422", 8), "444": ("444", 8), "mono": ("400", 8)}
for _c in ("420", "422", "444"):
    for _d in (9, 10, 12, 14, 16):
        _Y4M_C[f"{_c}p{_d}"] = (_c, _d)
for _d in (9, 10, 12, 14, 16):
    _Y4M_C[f"mono{_d}"] = ("400", _d)
del _c, _d
_Y4M_MAGIC = b"YUV4MPEG2"
_MAX_HEADER = 4096


def y4m_tag(fmt: VideoFormat) -> str:
    """The ``C`` tag value that describes ``fmt`` (as FFmpeg writes it)."""
    if fmt.chroma == "400":
        return "mono" if fmt.bit_depth == 8 else f"mono{fmt.bit_depth}"
    if fmt.bit_depth == 8:
        return "420jpeg" if fmt.chroma == "420" else fmt.chroma
    return f"{fmt.chroma}p{fmt.bit_depth}"


class Y4mSource(_PlanarFileSource):
    """YUV4MPEG2 read with numpy: header parsed here, frames located by seeking."""

    container_name = "yuv4mpegpipe"
    codec_name = "rawvideo"

    def __init__(self, path: Path, *, size: tuple[int, int] | None, fps: Fraction | None, pix_fmt: str | None,
                 frames: FrameRange, to_pix_fmt: str | None, matrix: str | None) -> None:
        with open(path, "rb") as f:
            head = f.read(_MAX_HEADER)
        nl = head.find(b"\n")
        if not head.startswith(_Y4M_MAGIC) or nl < 0:
            raise InputError(f"{path}: not a YUV4MPEG2 file (bad or missing 'YUV4MPEG2 ...' header line)")
        tags: dict[str, str] = {}
        for tok in head[len(_Y4M_MAGIC):nl].decode("ascii", "replace").split():
            if tok[0] == "X":
                key, _, val = tok[1:].partition("=")
                tags["X" + key.upper()] = val
            else:
                tags.setdefault(tok[0], tok[1:])
        try:
            width, height = int(tags["W"]), int(tags["H"])
        except (KeyError, ValueError):
            raise InputError(f"{path}: broken y4m header (W and H tags missing or not numbers)") from None
        ctag = tags.get("C") or tags.get("XYSCSS", "420jpeg")
        if ctag.lower() not in _Y4M_C:
            raise FormatError(f"{path}: unsupported y4m colour space C{ctag} "
                              f"(supported: {', '.join('C' + k for k in _Y4M_C)})")
        chroma, depth = _Y4M_C[ctag.lower()]
        file_fps = None
        if "F" in tags:
            num, _, den = tags["F"].partition(":")
            try:
                file_fps = Fraction(int(num), int(den or 1))
            except (ValueError, ZeroDivisionError):
                raise InputError(f"{path}: broken y4m header (frame rate F{tags['F']})") from None
            if file_fps <= 0:
                raise InputError(f"{path}: broken y4m header (frame rate F{tags['F']})")
        mat, rng = parse_matrix(matrix, path)
        if rng is None or matrix is None or ":" not in matrix:
            rng = "full" if tags.get("XCOLORRANGE", "").upper() == "FULL" else "limited"
        try:
            native = VideoFormat(width, height, chroma, depth, fps=fps or file_fps or _DEFAULT_FPS,  # type: ignore[arg-type]
                                 matrix=mat or "bt709", range=rng)  # type: ignore[arg-type]
        except FormatError as e:
            raise InputError(f"{path}: broken y4m header: {e}") from None
        _check_agrees(path, native, size, pix_fmt)
        super().__init__(path, native, frames, to_pix_fmt)
        self.interlace = tags.get("I", "p")
        self._data0 = nl + 1
        self._offsets = self._index(head)
        self.total_frames = len(self._offsets)
        self._indices = frames.indices(self.total_frames)
        self.num_frames = len(self._indices)

    def _index(self, head: bytes) -> list[int] | range:
        """Byte offset of each frame's samples: arithmetic when every marker is ``FRAME\\n``."""
        fb = self._native.frame_bytes
        size = self.path.stat().st_size
        body = size - self._data0
        if body == 0:
            raise InputError(f"{self.path}: y4m file has a header but no frames")
        first = head[self._data0:self._data0 + 6]
        if first == b"FRAME\n" and body % (fb + 6) == 0:
            return range(self._data0 + 6, size, fb + 6)
        offsets: list[int] = []  # markers with parameters: walk them (reads a few bytes per frame)
        pos = self._data0
        with open(self.path, "rb") as f:
            while pos < size:
                f.seek(pos)
                line = f.read(256)
                end = line.find(b"\n")
                if not line.startswith(b"FRAME") or end < 0:
                    raise InputError(f"{self.path}: broken y4m frame header at byte {pos} (frame {len(offsets)}); "
                                     f"expected 'FRAME' for {self._native} frames of {fb} bytes")
                start = pos + end + 1
                if start + fb > size:
                    raise InputError(f"{self.path}: frame {len(offsets)} is truncated: {size - start} of its "
                                     f"{fb} bytes present ({self._native})")
                offsets.append(start)
                pos = start + fb
        return offsets

    def _offset(self, f: Any, i: int) -> int:
        off = self._offsets[i]
        if isinstance(self._offsets, range):
            f.seek(off - 6)
            if f.read(6) != b"FRAME\n":
                raise InputError(f"{self.path}: broken y4m frame header before frame {i}")
        return off


# ---------------------------------------------------------------------------------------
# Anything FFmpeg reads


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
            raise InputError(f"{path}: not a video file, or damaged ({_msg(e)})") from None
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
            spc = _FROM_AVCOL_SPC.get(int(cc.colorspace or 2))
            full = name.startswith("yuvj") or int(cc.color_range or 0) == 2
        except av.FFmpegError as e:
            raise InputError(f"{path}: not a video file, or damaged ({_msg(e)})") from None
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
        kw = dict(fps=fps or file_fps or _DEFAULT_FPS, matrix=self._matrix, range=self._mrange)
        try:
            native = VideoFormat(width, height, chroma, depth, **kw)  # type: ignore[arg-type]
        except FormatError as e:
            raise FormatError(f"{path}: {e}") from None
        _check_agrees(path, native, size, pix_fmt)
        self._file_fps = file_fps
        self.format = native if to_pix_fmt is None else _target_format(to_pix_fmt, width, height, path, **kw)
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
            return planes if fmt == self._native else _sws_convert(planes, self._native, fmt)
        if vf.format.name == fmt.pix_fmt or (
                vf.format.name == "yuvj" + fmt.pix_fmt[3:] and fmt.range == "full"):
            out = vf
        else:
            out = _reformat_yuv(vf, self._native, fmt.pix_fmt)
        return _avframe_planes(out, fmt)

    #: a range starting this many frames in may seek instead of decoding through (see _seek_to)
    seek_min_start = 32
    #: seek this many frames before the wanted one (B-frame reordering, leading pictures)
    seek_margin = 16

    def _open(self) -> tuple[Any, Any]:
        import av

        try:
            container = av.open(str(self.path), "r")
        except av.FFmpegError as e:
            raise InputError(f"{self.path}: not a video file, or damaged ({_msg(e)})") from None
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
                             f"(with frame threading: at or a few frames after it) ({_msg(e)})") from None

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
                    raise InputError(f"{self.path}: converting frame {i} failed ({_msg(e)})") from None
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


def _msg(e: BaseException) -> str:
    """An FFmpeg error as one short line."""
    s = getattr(e, "strerror", None) or str(e)
    return re.sub(r"\s+", " ", str(s)).strip()
