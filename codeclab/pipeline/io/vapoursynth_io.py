"""VapourSynth <-> codeclab: format and frame conversion, and ``.vpy`` scripts as a source.

A ``.vpy`` script is evaluated the way VapourSynth's own ``vsscript`` does it: as Python
with ``__name__ == "__vapoursynth__"``, after which its outputs are read back with
``vapoursynth.get_output``. ``vspipe --arg k=v`` arguments become string globals, as in
vspipe. Frames are then requested from the output node one by one, so memory stays
bounded whatever the clip length.

vapoursynth is imported lazily: ``import codeclab.pipeline`` must not need it.
"""

from __future__ import annotations

import runpy
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from codeclab.base.errors import FormatError, InputError
from codeclab.base.frame import Frame, VideoFormat

if TYPE_CHECKING:  # pragma: no cover
    import vapoursynth as vs

__all__ = ["MATRIX_CODES", "vs_format_of", "codeclab_format_of", "frame_from_vs", "write_vs_frame", "evaluate_script", "VpySource"]

#: codeclab matrix name -> VapourSynth ``_Matrix`` code, and back
MATRIX_CODES = {"bt709": 1, "bt601": 6, "bt470bg": 5, "smpte170m": 6, "bt2020nc": 9, "bt2020": 9}
_MATRIX_NAMES = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020nc"}


def vs_format_of(fmt: VideoFormat) -> "vs.VideoFormat":
    """The VapourSynth format with the same sampling and bit depth."""
    import vapoursynth as vs

    if fmt.chroma == "400":
        return vs.core.query_video_format(vs.GRAY, vs.INTEGER, fmt.bit_depth, 0, 0)
    sx, sy = fmt.chroma_shift
    return vs.core.query_video_format(vs.YUV, vs.INTEGER, fmt.bit_depth, sx, sy)


def codeclab_format_of(clip: "vs.VideoNode", func: str, props: Any = None) -> VideoFormat:
    """Validate a clip for codeclab and describe it as a VideoFormat.

    Raises FormatError naming ``func`` for what codeclab cannot code: variable format or
    size, RGB, float samples, or chroma subsampling other than 4:2:0/4:2:2/4:4:4/4:0:0.
    """
    import vapoursynth as vs

    f = clip.format
    if f is None or clip.width == 0 or clip.height == 0:
        raise FormatError(f"{func}: clips with variable format or size are not supported")
    if f.sample_type != vs.INTEGER or not 8 <= f.bits_per_sample <= 16:
        raise FormatError(f"{func}: {f.name} is not supported (integer samples of 8-16 bits only)")
    if f.color_family == vs.GRAY:
        chroma = "400"
    elif f.color_family == vs.YUV:
        chroma = {(1, 1): "420", (1, 0): "422", (0, 0): "444"}.get((f.subsampling_w, f.subsampling_h), "")
        if not chroma:
            raise FormatError(f"{func}: {f.name} has chroma subsampling codeclab does not support (4:2:0, 4:2:2, 4:4:4)")
    else:
        raise FormatError(f"{func}: {f.name} is not YUV or GRAY; convert first, e.g. core.resize.Bicubic(clip, format=vs.YUV420P8, matrix_s='709')")
    fps = Fraction(clip.fps) if clip.fps.numerator else Fraction(25)
    matrix, rng = "bt709", "limited"
    if props is not None:
        matrix = _MATRIX_NAMES.get(int(props.get("_Matrix", 1)), "bt709")
        rng = "full" if int(props.get("_Range", 1)) == 0 else "limited"
    return VideoFormat(clip.width, clip.height, chroma, f.bits_per_sample, fps, matrix, rng)  # type: ignore[arg-type]


def frame_from_vs(f: "vs.VideoFrame", fmt: VideoFormat, index: int) -> Frame:
    """Copy a VapourSynth frame's planes into a codeclab Frame."""
    planes = tuple(np.array(f[p], dtype=fmt.dtype, copy=True) for p in range(fmt.num_planes))
    return Frame(planes, fmt, index, index)


def write_vs_frame(dst: "vs.VideoFrame", frame: Frame) -> None:
    """Write a Frame's planes into a writable VapourSynth frame of the same format."""
    for p, plane in enumerate(frame.planes):
        np.asarray(dst[p])[...] = plane


def evaluate_script(path: str | Path, args: dict[str, str] | None = None, output: int = 0) -> "vs.VideoNode":
    """Run a ``.vpy`` script as vsscript does and return its video output node."""
    import vapoursynth as vs

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    vs.clear_outputs()
    init = {"__file__": str(path)}
    init.update({k: str(v) for k, v in (args or {}).items()})
    try:
        runpy.run_path(str(path), init_globals=init, run_name="__vapoursynth__")
    except (vs.Error, Exception) as e:  # a broken user script: report it on one line
        raise InputError(f"{path}: script failed: {type(e).__name__}: {e}") from e
    outputs = vs.get_outputs()
    if output not in outputs:
        raise InputError(f"{path}: script sets no output {output} (call clip.set_output({output}))")
    out = outputs[output]
    clip = getattr(out, "clip", out)
    if not isinstance(clip, vs.VideoNode):
        raise InputError(f"{path}: output {output} is not a video clip")
    return clip


class VpySource:
    """A ``.vpy`` script as a lazy frame source (the pipeline's Source interface)."""

    def __init__(self, path: str | Path, *, frames: Any = None, args: dict[str, str] | None = None, **_: Any) -> None:
        self.path = Path(path)
        self._clip = evaluate_script(self.path, args)
        first = self._clip.get_frame(0) if self._clip.num_frames else None
        self.format = codeclab_format_of(self._clip, f"{self.path}", first.props if first else None)
        start = getattr(frames, "start", 0) or 0
        step = getattr(frames, "step", 1) or 1
        count = getattr(frames, "count", None)
        self._indices = range(start, self._clip.num_frames, step)
        if count is not None:
            self._indices = self._indices[:count]
        self.num_frames: int | None = len(self._indices)

    def __iter__(self) -> Iterator[Frame]:
        for n in self._indices:
            yield frame_from_vs(self._clip.get_frame(n), self.format, n)

    def close(self) -> None:
        self._clip = None  # type: ignore[assignment]

    def __enter__(self) -> VpySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
