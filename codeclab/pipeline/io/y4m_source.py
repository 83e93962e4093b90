"""``.y4m`` files: header and frame markers parsed here, samples read with numpy by seeking."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

from codeclab.base.convert import parse_matrix
from codeclab.base.errors import FormatError, InputError
from codeclab.base.frame import VideoFormat
from codeclab.pipeline.io.raw_source import PlanarFileSource
from codeclab.pipeline.io.sources import DEFAULT_FPS, FrameRange, check_agrees

__all__ = ["Y4mSource", "y4m_tag"]


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


class Y4mSource(PlanarFileSource):
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
            native = VideoFormat(width, height, chroma, depth, fps=fps or file_fps or DEFAULT_FPS,  # type: ignore[arg-type]
                                 matrix=mat or "bt709", range=rng)  # type: ignore[arg-type]
        except FormatError as e:
            raise InputError(f"{path}: broken y4m header: {e}") from None
        check_agrees(path, native, size, pix_fmt)
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
