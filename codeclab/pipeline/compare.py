"""Two videos compared frame by frame: what ``codeclab metrics REF DIST`` computes.

Both files are opened lazily as sources with the same frame selection and paired in
order; sizes, chroma and bit depth must match, and so must the number of selected frames.
A raw ``.yuv`` DIST that does not describe itself (no JVET-style name, no size given)
takes REF's geometry.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

from codeclab.base.errors import FormatError, InputError, UsageError
from codeclab.pipeline.io.sources import FrameRange, Source, open_source
from codeclab.pipeline.metrics import MetricsLog, frame_metrics

__all__ = ["compare_videos"]


def _raw(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() == ".yuv"


def _open_dist(dist: str | os.PathLike[str], ref: Source, frames: FrameRange, kw: dict[str, Any]) -> Source:
    if _raw(dist) and kw["size"] is None and kw["pix_fmt"] is None:
        try:
            return open_source(dist, frames=frames, **kw)
        except UsageError:  # a raw DIST that does not describe itself takes REF's geometry
            kw = dict(kw, size=(ref.format.width, ref.format.height), pix_fmt=ref.format.pix_fmt,
                      fps=kw["fps"] or ref.format.fps)
    return open_source(dist, frames=frames, **kw)


def compare_videos(ref_path: str | os.PathLike[str], dist_path: str | os.PathLike[str], *,
                   frames: FrameRange | None = None, ms_ssim: bool = True, size: tuple[int, int] | None = None,
                   fps: Fraction | float | str | None = None, pix_fmt: str | None = None,
                   to_pix_fmt: str | None = None, matrix: str | None = None) -> tuple[MetricsLog, Fraction]:
    """Per-frame metrics of DIST against REF, and the frame rate of the selected frames.

    ``size``/``pix_fmt`` describe raw ``.yuv`` files only; the other options apply to both.
    """
    rng = frames or FrameRange()
    kw: dict[str, Any] = dict(size=size, fps=fps, pix_fmt=pix_fmt, to_pix_fmt=to_pix_fmt, matrix=matrix)

    def opts_for(path: str | os.PathLike[str]) -> dict[str, Any]:
        return dict(kw, size=size if _raw(path) else None, pix_fmt=pix_fmt if _raw(path) else None)

    log = MetricsLog()
    with open_source(ref_path, frames=rng, **opts_for(ref_path)) as ref:
        with _open_dist(dist_path, ref, rng, opts_for(dist_path)) as dist:
            a, b = ref.format, dist.format
            if (a.width, a.height, a.chroma, a.bit_depth) != (b.width, b.height, b.chroma, b.bit_depth):
                raise FormatError(f"{dist_path}: is {b.width}x{b.height} {b.pix_fmt}, {ref_path} is "
                                  f"{a.width}x{a.height} {a.pix_fmt} (convert one with --to-pix-fmt)")
            it_dist = iter(dist)
            for fr in ref:
                fd = next(it_dist, None)
                if fd is None:
                    raise InputError(f"{dist_path}: has {len(log)} frames (of those selected), {ref_path} has more "
                                     "(select a common range with --frames)")
                row = {"frame": fr.index}
                row.update(frame_metrics(fr, fd, ms_ssim=ms_ssim))
                log.add(row)
            if next(it_dist, None) is not None:
                raise InputError(f"{dist_path}: has more frames than {ref_path} ({len(log)}) "
                                 "(select a common range with --frames)")
        fps_out = ref.format.fps / rng.step
    if not len(log):
        raise UsageError(f"{ref_path}: no frames selected")
    return log, fps_out
