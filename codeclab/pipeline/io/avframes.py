"""PyAV frames <-> numpy planes, swscale conversion and FFmpeg's errors as one line.

Shared by the sources, the sinks and the ``.clc`` source, which all hand planes to FFmpeg
or take them back.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from codeclab.base.frame import VideoFormat

__all__ = ["SWS_COLORSPACE", "FROM_AVCOL_SPC", "planes_to_avframe", "avframe_planes", "sws_convert",
           "reformat_yuv", "av_error", "ffmpeg_msg"]

#: our matrix name -> swscale Colorspace value (av.video.reformatter.Colorspace)
SWS_COLORSPACE = {"bt709": 1, "bt601": 5, "bt2020nc": 9}
#: FFmpeg AVColorSpace -> our name (unspecified/other: None)
FROM_AVCOL_SPC = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020nc"}


def planes_to_avframe(planes: tuple[np.ndarray, ...], fmt: VideoFormat) -> Any:
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


def avframe_planes(vf: Any, fmt: VideoFormat) -> tuple[np.ndarray, ...]:
    """Writable copies of the planes of an av.VideoFrame in ``fmt``'s planar layout."""
    planes = tuple(np.from_dlpack(p).copy() for p in vf.planes[: fmt.num_planes])
    return tuple(p if p.dtype == fmt.dtype else p.view(fmt.dtype) for p in planes)


def sws_convert(planes: tuple[np.ndarray, ...], src: VideoFormat, dst: VideoFormat) -> tuple[np.ndarray, ...]:
    """YUV -> YUV layout/depth conversion through swscale, keeping matrix and range."""
    vf = planes_to_avframe(planes, src)
    return avframe_planes(reformat_yuv(vf, src, dst.pix_fmt), dst)


def reformat_yuv(vf: Any, src: VideoFormat, pix_fmt: str) -> Any:
    cs = SWS_COLORSPACE.get(src.matrix, 1)
    rng = 2 if src.range == "full" else 1
    return vf.reformat(format=pix_fmt, src_colorspace=cs, dst_colorspace=cs, src_color_range=rng,
                       dst_color_range=rng)


def av_error() -> type[Exception]:
    """FFmpeg's exception base class (PyAV imported lazily)."""
    import av

    return av.FFmpegError


def ffmpeg_msg(e: BaseException) -> str:
    """An FFmpeg error as one short line."""
    s = getattr(e, "strerror", None) or str(e)
    return re.sub(r"\s+", " ", str(s)).strip()
