"""Frame and VideoFormat: the one data type every layer passes around.

A frame is a tuple of 2-D numpy planes (Y, U, V; or Y only for 4:0:0) in their native
resolution and bit depth: uint8 for 8-bit, uint16 (values in the low bits) for 9-16-bit.
Nothing is packed, upsampled or padded, unlike PyAV's ``to_ndarray``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from codeclab.base.errors import FormatError

__all__ = ["Chroma", "VideoFormat", "Frame", "CHROMA_SHIFT", "PIX_FMTS"]

Chroma = Literal["420", "422", "444", "400"]

#: (horizontal shift, vertical shift) of the chroma planes for each chroma format.
CHROMA_SHIFT: dict[str, tuple[int, int]] = {"420": (1, 1), "422": (1, 0), "444": (0, 0), "400": (0, 0)}

#: FFmpeg pixel-format names we deliver and accept, keyed by (chroma, bit depth).
PIX_FMTS: dict[tuple[str, int], str] = {}
for _c, _base in (("420", "yuv420p"), ("422", "yuv422p"), ("444", "yuv444p"), ("400", "gray")):
    PIX_FMTS[(_c, 8)] = _base
    for _d in (9, 10, 12, 14, 16):
        PIX_FMTS[(_c, _d)] = f"{_base}{_d}le"
del _c, _base, _d
_FROM_PIX_FMT = {v: k for k, v in PIX_FMTS.items()}
# Aliases FFmpeg also uses for the same layout (full-range JPEG variants).
_FROM_PIX_FMT.update({"yuvj420p": ("420", 8), "yuvj422p": ("422", 8), "yuvj444p": ("444", 8), "gray8": ("400", 8)})


@dataclass(frozen=True)
class VideoFormat:
    """Geometry, sampling and colour description of a stream of frames."""

    width: int
    height: int
    chroma: Chroma = "420"
    bit_depth: int = 8
    fps: Fraction = Fraction(25)
    matrix: str = "bt709"  # colour matrix of the YUV data: bt601, bt709, bt2020nc ...
    range: Literal["limited", "full"] = "limited"

    def __post_init__(self) -> None:
        if self.chroma not in CHROMA_SHIFT:
            raise FormatError(f"unknown chroma format {self.chroma!r} (want 420, 422, 444 or 400)")
        if not 8 <= self.bit_depth <= 16:
            raise FormatError(f"bit depth {self.bit_depth} outside 8..16")
        if self.width <= 0 or self.height <= 0:
            raise FormatError(f"bad frame size {self.width}x{self.height}")
        sx, sy = CHROMA_SHIFT[self.chroma]
        if self.chroma != "400" and (self.width % (1 << sx) or self.height % (1 << sy)):
            raise FormatError(f"{self.width}x{self.height} is not a valid size for {self.chroma} chroma (odd dimension)")
        object.__setattr__(self, "fps", Fraction(self.fps))

    @classmethod
    def from_pix_fmt(cls, pix_fmt: str, width: int, height: int, **kw: Any) -> VideoFormat:
        """Build a format from an FFmpeg pixel-format name such as ``yuv420p10le``."""
        try:
            chroma, depth = _FROM_PIX_FMT[pix_fmt]
        except KeyError:
            raise FormatError(f"unsupported pixel format {pix_fmt!r} (planar YUV or gray, 8-16 bit)") from None
        if pix_fmt.startswith("yuvj"):
            kw.setdefault("range", "full")
        return cls(width, height, chroma, depth, **kw)  # type: ignore[arg-type]

    @property
    def pix_fmt(self) -> str:
        """FFmpeg pixel-format name of this layout."""
        return PIX_FMTS[(self.chroma, self.bit_depth)]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.bit_depth == 8 else np.uint16)

    @property
    def num_planes(self) -> int:
        return 1 if self.chroma == "400" else 3

    @property
    def chroma_shift(self) -> tuple[int, int]:
        return CHROMA_SHIFT[self.chroma]

    @property
    def plane_shapes(self) -> tuple[tuple[int, int], ...]:
        """(rows, columns) of each plane."""
        sx, sy = self.chroma_shift
        c = (-(-self.height // (1 << sy)), -(-self.width // (1 << sx)))
        return ((self.height, self.width),) + ((c, c) if self.num_planes == 3 else ())

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame in a raw planar file (.yuv)."""
        return sum(h * w for h, w in self.plane_shapes) * self.dtype.itemsize

    @property
    def max_value(self) -> int:
        return (1 << self.bit_depth) - 1

    def with_(self, **changes: Any) -> VideoFormat:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def __str__(self) -> str:
        return f"{self.width}x{self.height} {self.pix_fmt} @ {float(self.fps):g} fps"


@dataclass
class Frame:
    """One picture: planes in native layout plus where it sits in its stream."""

    planes: tuple[np.ndarray, ...]
    format: VideoFormat
    index: int = 0
    pts: int | None = None
    props: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.planes = tuple(self.planes)
        fmt = self.format
        shapes = fmt.plane_shapes
        if len(self.planes) != len(shapes):
            raise FormatError(f"frame has {len(self.planes)} planes, {fmt.chroma} needs {len(shapes)}")
        for i, (p, s) in enumerate(zip(self.planes, shapes)):
            if p.shape != s:
                raise FormatError(f"plane {i} has shape {p.shape}, {fmt} needs {s}")
            if p.dtype != fmt.dtype:
                raise FormatError(f"plane {i} has dtype {p.dtype}, {fmt.bit_depth}-bit needs {fmt.dtype}")

    @classmethod
    def blank(cls, fmt: VideoFormat, value: int | None = None, index: int = 0) -> Frame:
        """A flat frame (mid-grey by default) — handy in tests."""
        v = (1 << (fmt.bit_depth - 1)) if value is None else value
        return cls(tuple(np.full(s, v, fmt.dtype) for s in fmt.plane_shapes), fmt, index)

    def with_planes(self, planes: tuple[np.ndarray, ...], fmt: VideoFormat | None = None) -> Frame:
        """Same index/pts/props, new pixels (and optionally a new format)."""
        return Frame(planes, fmt or self.format, self.index, self.pts, dict(self.props))

    def copy(self) -> Frame:
        return Frame(tuple(p.copy() for p in self.planes), self.format, self.index, self.pts, dict(self.props))

    @property
    def y(self) -> np.ndarray:
        return self.planes[0]
