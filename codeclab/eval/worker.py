"""What runs on a worker: code one job's frames and return small, picklable results.

Workers never touch the results database; the driver writes it (one writer, one
transaction per job), so a worker lost mid-job loses nothing already stored. A failing
job comes back as a :class:`JobResult` with ``error`` set rather than an exception, so
that the batch goes on and the failure is recorded with its message.
"""

from __future__ import annotations

import importlib
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from codeclab.eval.jobs import Job

__all__ = ["JobResult", "run_job", "FRAME_COLUMNS"]

#: Per-frame columns stored in the database, in this order.
FRAME_COLUMNS = ("bits", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "ms_ssim_y", "encode_s", "decode_s")


@dataclass
class JobResult:
    """Outcome of one job; ``frames`` holds one dict per coded frame (FRAME_COLUMNS + src_index)."""

    key: str
    ok: bool
    error: str | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, float] = field(default_factory=dict)
    bytes: int = 0
    wall_s: float = 0.0
    host: str = ""
    pid: int = 0


def _summary(frames: list[dict[str, Any]], fps: Fraction | None, step: int) -> dict[str, float]:
    """Sequence means of the per-frame rows, as HM/JVET report them (see metrics.MetricsLog).

    The rate is total bits over the source time span the coded frames stand for: with
    every ``step``-th frame coded, each coded frame stands for ``step`` source frames
    (frame rate ``fps / step``). A constant factor like this cancels in BD-rate.
    """
    from codeclab.pipeline.metrics import MetricsLog

    eff = None if fps is None else fps / step
    s = MetricsLog(frames).summary(eff)
    s.setdefault("bitrate_kbps", float("nan"))
    s["encode_s"] = float(sum(f.get("encode_s", 0.0) for f in frames))  # totals, not means
    s["decode_s"] = float(sum(f.get("decode_s", 0.0) for f in frames))
    return s


def run_job(job: Job) -> JobResult:
    """Open the job's frames, code them at the job's rate point, measure every frame."""
    t0 = time.perf_counter()
    host, pid = socket.gethostname(), os.getpid()
    try:
        for mod in job.imports:  # codec plugins: must register in this process too
            importlib.import_module(mod)
        from codeclab.codecs import get_codec, make_options
        from codeclab.pipeline.io.sources import FrameRange, open_source
        from codeclab.pipeline.transcode import code_frames

        spec = get_codec(job.codec)
        options = make_options(spec, job.codec_values())
        fps = Fraction(job.fps) if job.fps is not None else None
        src = open_source(
            job.path,
            size=job.size,
            fps=fps,
            pix_fmt=job.pix_fmt,
            frames=FrameRange(job.start, job.count, job.step),
            to_pix_fmt=job.to_pix_fmt,
        )
        rows: list[dict[str, Any]] = []
        nbytes = 0
        with src:
            for cf in code_frames(src, spec, options, ms_ssim=job.ms_ssim):
                m = dict(cf.metrics)
                row = {k: float(m[k]) for k in FRAME_COLUMNS if k in m and m[k] is not None}
                row["bits"] = int(m["bits"])
                row["src_index"] = int(getattr(cf.source, "index", len(rows)))
                rows.append(row)
                nbytes += sum(len(p.data) for p in cf.packets)
            fps = fps or src.format.fps
        if not rows:
            raise ValueError(f"{job.path}: no frames selected (start {job.start}, step {job.step}, count {job.count})")
        return JobResult(
            job.key, True, None, rows, _summary(rows, fps, job.step), nbytes, time.perf_counter() - t0, host, pid
        )
    except Exception as e:  # recorded, reported at the end; never stops the batch
        return JobResult(job.key, False, describe_error(e), wall_s=time.perf_counter() - t0, host=host, pid=pid)


def describe_error(e: BaseException) -> str:
    """One line for the table (type and message) plus the innermost frame, for debugging."""
    tb = traceback.extract_tb(e.__traceback__)
    where = f" [{os.path.basename(tb[-1].filename)}:{tb[-1].lineno}]" if tb else ""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}{where}"
