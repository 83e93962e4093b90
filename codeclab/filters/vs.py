"""codeclab for VapourSynth scripts: codecs and metrics as functions on VideoNodes.

Use it like any Python plugin collection (VapourSynth has no registration API for pure-Python
plugin namespaces, so this is a module of functions, as vsmlrt and vs-jetpack do)::

    import vapoursynth as vs
    import codeclab.filters.vs as cl

    src = cl.source("clip.mp4")                      # anything codeclab reads
    enc = cl.hevc(src, qp=32, quant="rdoq")           # decoded clip + per-frame props
    enc = cl.psnr(enc, src)                           # CodeclabPSNRY/U/V/YUV props
    enc.set_output()

Conventions: snake_case, the clip first, keyword options; errors name the function the
user called. Every frame is coded on its own (our codecs and the anchors run all-intra),
so frames may be requested in any order and from several threads and give the same
pixels and props; heavy state (models) is cached by the codecs themselves.

Props set by the codec filters: ``CodeclabBits``, ``CodeclabPSNRY``/``U``/``V``/``YUV``,
``CodeclabMSSSIM`` (when ``ms_ssim=True``), ``CodeclabQP`` (when the codec has a QP),
``CodeclabCodec``, ``CodeclabEncodeTime``, ``CodeclabDecodeTime`` (seconds).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import vapoursynth as vs

from codeclab.base.errors import FormatError
from codeclab.base.frame import Frame
from codeclab.codecs.base import get_codec, make_options
from codeclab.pipeline.io.vapoursynth_io import (
    MATRIX_CODES,
    codeclab_format_of,
    frame_from_vs,
    vs_format_of,
    write_vs_frame,
)

__all__ = ["source", "codec", "hevc", "x265", "x264", "lic", "psnr", "msssim"]

_MODULE = "codeclab.filters.vs"

#: metrics row key -> frame prop
_PSNR_PROPS = (("psnr_y", "CodeclabPSNRY"), ("psnr_u", "CodeclabPSNRU"), ("psnr_v", "CodeclabPSNRV"),
               ("psnr_yuv", "CodeclabPSNRYUV"))
_CODEC_PROPS = _PSNR_PROPS + (("ms_ssim_y", "CodeclabMSSSIM"), ("encode_s", "CodeclabEncodeTime"),
                              ("decode_s", "CodeclabDecodeTime"))


def _matrix_props(out: vs.VideoFrame, frame: Frame) -> None:
    if frame.format.matrix in MATRIX_CODES and frame.format.chroma != "400":
        out.props["_Matrix"] = MATRIX_CODES[frame.format.matrix]
    out.props["_Range"] = 0 if frame.format.range == "full" else 1


class _RandomAccessReader:
    """Serves frame n of a pipeline source to VapourSynth's out-of-order, parallel requests.

    Decoding is sequential underneath (one iterator, under a lock); a small cache absorbs
    the usual jitter of frame-parallel requests, a short jump forward decodes through, and
    anything else reopens the source at frame n (raw/y4m readers seek; PyAV files decode
    from the start — correct, just slower).
    """

    _AHEAD = 48

    def __init__(self, path: str, options: dict[str, Any]) -> None:
        from codeclab.pipeline.io.sources import open_source

        self._open = lambda start: open_source(path, **options, frames=_range(start))
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, Frame] = OrderedDict()
        self._src: Any = None
        self._it: Any = None
        self._next = 0

    def _restart(self, n: int) -> None:
        if self._src is not None:
            self._src.close()
        self._src = self._open(n)
        self._it = iter(self._src)
        self._next = n

    def get(self, n: int) -> Frame:
        with self._lock:
            if n in self._cache:
                self._cache.move_to_end(n)
                return self._cache[n]
            if self._it is None or not (self._next <= n <= self._next + self._AHEAD):
                self._restart(n)
            while True:
                frame = next(self._it)
                self._next += 1
                self._cache[self._next - 1] = frame
                if len(self._cache) > 16:
                    self._cache.popitem(last=False)
                if self._next - 1 == n:
                    return frame


def _range(start: int) -> Any:
    from codeclab.pipeline.io.sources import FrameRange

    return FrameRange(start=start)


def source(path: str, *, size: tuple[int, int] | None = None, fps: Any = None, pix_fmt: str | None = None,
           to_pix_fmt: str | None = None, matrix: str | None = None) -> vs.VideoNode:
    """Anything codeclab reads (PyAV files, JVET-named .yuv, .y4m, .clc) as a clip.

    Args:
        path: the file. Raw ``.yuv`` takes its geometry from its JVET name or ``size``/``fps``/``pix_fmt``.
        to_pix_fmt: ask for a conversion at decode time (e.g. ``"yuv420p"``); otherwise frames keep
            their native layout and bit depth.

    Returns:
        A clip with the file's format, frame rate and length; frames are decoded lazily.
    """
    from codeclab.pipeline.io.sources import open_source

    options = {k: v for k, v in dict(size=size, fps=fps, pix_fmt=pix_fmt, to_pix_fmt=to_pix_fmt, matrix=matrix).items() if v is not None}
    with open_source(path, **options) as src:
        fmt = src.format
        length = src.num_frames
        if length is None:  # container without a frame count: count once
            length = sum(1 for _ in src)
    if not length:
        raise FormatError(f"{_MODULE}.source: {path} has no frames")
    reader = _RandomAccessReader(path, options)
    blank = vs.core.std.BlankClip(width=fmt.width, height=fmt.height, format=vs_format_of(fmt).id, length=length,
                                  fpsnum=fmt.fps.numerator, fpsden=fmt.fps.denominator, keep=True)

    def _get(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        frame = reader.get(n)
        out = f.copy()
        write_vs_frame(out, frame)
        _matrix_props(out, frame)
        return out

    return vs.core.std.ModifyFrame(blank, blank, _get)


def codec(clip: vs.VideoNode, name: str, *, ms_ssim: bool = False, **options: Any) -> vs.VideoNode:
    """Round-trip every frame through a registered codec; returns the decoded clip.

    Options are the codec's own (``codeclab codecs`` lists them) and are checked now, at
    script time. Bits and quality of each frame are attached as props (module docstring).
    """
    from codeclab.pipeline.transcode import code_frames

    func = f"{_MODULE}.{name}"
    spec = get_codec(name)
    opts = make_options(spec, options)  # None values keep the codec's default
    codeclab_format_of(clip, func)  # reject unsupported formats at script time
    qp = getattr(opts, "qp", None)

    def _get(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        src = frame_from_vs(f, codeclab_format_of(clip, func, f.props), n)
        coded = next(iter(code_frames([src], spec, opts, ms_ssim=ms_ssim)))
        out = f.copy()
        write_vs_frame(out, coded.decoded)
        row = coded.row
        out.props["CodeclabCodec"] = name
        out.props["CodeclabBits"] = int(row["bits"])
        for key, prop in _CODEC_PROPS:
            if row.get(key) is not None:
                out.props[prop] = float(row[key])
        if qp is not None:
            out.props["CodeclabQP"] = int(qp)
        return out

    return vs.core.std.ModifyFrame(clip, clip, _get)


def hevc(clip: vs.VideoNode, qp: int = 32, quant: str = "rdoq", preset: str | None = None,
         **options: Any) -> vs.VideoNode:
    """codeclab's own HEVC encoder, decoded by FFmpeg (what a player shows); all-intra, as
    every frame is coded on its own when VapourSynth asks for it."""
    return codec(clip, "hevc", qp=qp, quant=quant, preset=preset, **{"gop": "ai", **options})


def x265(clip: vs.VideoNode, qp: int | None = 32, preset: str = "medium", **options: Any) -> vs.VideoNode:
    """libx265 through PyAV, all-intra by default (the anchor)."""
    return codec(clip, "x265", qp=qp, preset=preset, **options)


def x264(clip: vs.VideoNode, qp: int | None = 32, preset: str = "medium", **options: Any) -> vs.VideoNode:
    """libx264 through PyAV, all-intra by default."""
    return codec(clip, "x264", qp=qp, preset=preset, **options)


def overfit(clip: vs.VideoNode, quality: int = 4, preset: str = "fast", **options: Any) -> vs.VideoNode:
    """The overfitted learned codec (per-frame latents and decoder, MSP probability model).
    Encoding fits every frame: seconds (preset fast) to minutes per frame."""
    return codec(clip, "overfit", quality=quality, preset=preset, progress=False, **options)


def lic(clip: vs.VideoNode, quality: int = 3, lof_steps: int | None = None, **options: Any) -> vs.VideoNode:
    """The learned intra codec (auto-encoder + hyper-prior, MSP model, optional latent overfitting)."""
    return codec(clip, "lic", quality=quality, lof_steps=lof_steps, **options)


def _check_pair(clip: vs.VideoNode, ref: vs.VideoNode, func: str) -> None:
    codeclab_format_of(clip, func)
    codeclab_format_of(ref, func)
    if (clip.format.id, clip.width, clip.height) != (ref.format.id, ref.width, ref.height):
        raise FormatError(f"{func}: clip ({clip.format.name} {clip.width}x{clip.height}) and ref "
                          f"({ref.format.name} {ref.width}x{ref.height}) differ in format or size")
    if clip.num_frames != ref.num_frames:
        raise FormatError(f"{func}: clip has {clip.num_frames} frames, ref has {ref.num_frames}")


def psnr(clip: vs.VideoNode, ref: vs.VideoNode) -> vs.VideoNode:
    """Attach ``CodeclabPSNRY/U/V/YUV`` (dB, peak from the bit depth, capped for identical planes)."""
    from codeclab.pipeline.metrics import frame_metrics

    func = f"{_MODULE}.psnr"
    _check_pair(clip, ref, func)
    fmt = codeclab_format_of(clip, func)

    def _m(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        m = frame_metrics(frame_from_vs(f[1], fmt, n), frame_from_vs(f[0], fmt, n), ms_ssim=False)
        out = f[0].copy()
        for key, prop in _PSNR_PROPS:
            if key in m:
                out.props[prop] = float(m[key])
        return out

    return vs.core.std.ModifyFrame(clip, [clip, ref], _m)


def msssim(clip: vs.VideoNode, ref: vs.VideoNode) -> vs.VideoNode:
    """Attach ``CodeclabMSSSIM`` (luma MS-SSIM)."""
    from codeclab.pipeline.metrics import ms_ssim

    func = f"{_MODULE}.msssim"
    _check_pair(clip, ref, func)
    depth = clip.format.bits_per_sample

    def _m(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        out = f[0].copy()
        out.props["CodeclabMSSSIM"] = float(ms_ssim(np.asarray(f[1][0]), np.asarray(f[0][0]), depth))
        return out

    return vs.core.std.ModifyFrame(clip, [clip, ref], _m)
