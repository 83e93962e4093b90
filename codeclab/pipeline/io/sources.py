"""Frame sources: the :class:`Source` interface, frame selection and the opener registry.

Every source delivers :class:`~codeclab.base.frame.Frame` objects in a planar YUV layout
(``format``), one frame at a time, so memory stays bounded by a few frames whatever the
file length. ``Frame.index`` is the frame's position in the file, ``Frame.pts`` its time
in units of ``1/fps``.

:func:`open_source` picks the source by file extension from one registry
(:func:`register_source`), whose entries are ``"module:attribute"`` names imported only
when such a file is opened:

- ``.yuv``: :mod:`.raw_source` (headerless planar YUV; geometry from a JVET-style name or
  from ``size``/``fps``/``pix_fmt``),
- ``.y4m``: :mod:`.y4m_source`,
- ``.vpy``: :mod:`.vapoursynth_io` (a VapourSynth script's output node),
- ``.clc``: :mod:`codeclab.pipeline.clc.source` (our container, decoded by its codec),
- anything else: :mod:`.pyav_source` (whatever FFmpeg reads, RGB pictures included).

``to_pix_fmt`` converts every frame with swscale (:func:`.avframes.sws_convert`): bit-depth
changes are exact shifts, chroma resampling uses swscale's default (bilinear) filter, so
its output is FFmpeg's, not a filter of ours. ``matrix`` names the RGB->YUV matrix
(:func:`codeclab.base.convert.rgb_to_yuv`) or the tag recorded for files that carry none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

from codeclab.base.errors import FormatError, InputError, UsageError
from codeclab.base.frame import Frame, VideoFormat
from codeclab.base.registry import Registry
from codeclab.pipeline.io.jvet_names import NTSC_RATES

__all__ = [
    "FrameRange",
    "Source",
    "SourceInfo",
    "open_source",
    "probe",
    "register_source",
    "DEFAULT_FPS",
    "as_fps",
    "target_format",
    "pix_fmt_format",
    "check_agrees",
]

#: frame rate of files that state none
DEFAULT_FPS = Fraction(25)


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
_OPENERS: Registry[SourceOpener] = Registry("source", {
    ".yuv": "codeclab.pipeline.io.raw_source:RawSource",
    ".y4m": "codeclab.pipeline.io.y4m_source:Y4mSource",
    ".vpy": "codeclab.pipeline.io.vapoursynth_io:VpySource",
    ".clc": "codeclab.pipeline.clc.source:open_clc_source",
    # files whose extension has no entry of their own: FFmpeg (PyAV) reads them
    "*": "codeclab.pipeline.io.pyav_source:AvSource",
})


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
    _OPENERS.register(ext, opener)


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
    opts: dict[str, Any] = dict(size=size, fps=as_fps(fps, p), pix_fmt=pix_fmt, frames=frames or FrameRange(),
                                to_pix_fmt=to_pix_fmt, matrix=matrix)
    ext = p.suffix.lower()
    return _OPENERS.get(ext if ext in _OPENERS else "*")(p, **opts)


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
# Helpers of every source kind


def as_fps(fps: Fraction | float | str | None, path: Path) -> Fraction | None:
    """A frame-rate option as a Fraction ("29.97" -> 30000/1001); None stays None."""
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


def target_format(to_pix_fmt: str, width: int, height: int, path: Path, **kw: Any) -> VideoFormat:
    """The format ``to_pix_fmt`` converts frames to; errors name the file."""
    try:
        return VideoFormat.from_pix_fmt(to_pix_fmt, width, height, **kw)
    except FormatError as e:
        raise FormatError(f"{path}: to_pix_fmt: {e}") from None


def pix_fmt_format(pix_fmt: str, width: int, height: int, path: Path, **kw: Any) -> VideoFormat:
    """The format a ``pix_fmt`` option names; errors name the file."""
    try:
        return VideoFormat.from_pix_fmt(pix_fmt, width, height, **kw)
    except FormatError as e:
        raise FormatError(f"{path}: {e}") from None


def check_agrees(path: Path, fmt: VideoFormat, size: tuple[int, int] | None, pix_fmt: str | None) -> None:
    """Self-describing files: an explicit size/pix_fmt must agree (conversion is to_pix_fmt's job)."""
    if size is not None and tuple(size) != (fmt.width, fmt.height):
        raise UsageError(f"{path}: the file is {fmt.width}x{fmt.height}, not {size[0]}x{size[1]} "
                         "(size applies to raw .yuv files only)")
    if pix_fmt is not None:
        want = pix_fmt_format(pix_fmt, fmt.width, fmt.height, path)
        if (want.chroma, want.bit_depth) != (fmt.chroma, fmt.bit_depth):
            raise UsageError(f"{path}: the file is {fmt.pix_fmt}, not {pix_fmt} (use to_pix_fmt to convert)")
