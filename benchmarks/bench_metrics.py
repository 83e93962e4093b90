"""Speed of our per-frame metrics against FFmpeg's own filters, measured in the same run.

    .venv/bin/python benchmarks/bench_metrics.py [--width 1920 --height 1080 --depth 8 --repeat 5]

Prints seconds per frame for our PSNR (Y, U, V) and luma MS-SSIM, and for FFmpeg's ``psnr``
and libvmaf's ``float_ms_ssim`` on the same synthetic frame pair, plus the ratios.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from codeclab.base.frame import Frame, VideoFormat
from codeclab.pipeline.metrics import frame_metrics, ms_ssim


def _pair(w: int, h: int, depth: int) -> tuple[Frame, Frame]:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    fmt = VideoFormat(w, h, "420", depth)
    peak = fmt.max_value
    planes_a, planes_b = [], []
    for shape in fmt.plane_shapes:
        base = gaussian_filter(rng.uniform(0, 1, shape), 2.0)
        a = np.clip(np.rint((base - base.mean()) * 4 * peak + peak / 2), 0, peak)
        b = np.clip(np.rint(a + rng.normal(0, peak / 100, shape)), 0, peak)
        planes_a.append(a.astype(fmt.dtype))
        planes_b.append(b.astype(fmt.dtype))
    return Frame(tuple(planes_a), fmt), Frame(tuple(planes_b), fmt)


def _to_av(fr: Frame) -> av.VideoFrame:
    packed = np.concatenate([p.reshape(-1, fr.format.width) for p in fr.planes])
    return av.VideoFrame.from_ndarray(packed, format=fr.format.pix_fmt)


def _ffmpeg(ref: Frame, dist: Frame, name: str, args: str, n: int) -> float:
    """Seconds per frame of a two-input FFmpeg metric filter over n copies of the pair."""
    tb = Fraction(1, 25)
    g = av.filter.Graph()
    fmt = ref.format
    srcs = [g.add_buffer(width=fmt.width, height=fmt.height, format=fmt.pix_fmt, time_base=tb) for _ in range(2)]
    flt = g.add(name, args)
    sink = g.add("buffersink")
    srcs[0].link_to(flt, 0, 0)
    srcs[1].link_to(flt, 0, 1)
    flt.link_to(sink)
    g.configure()
    fa, fb = _to_av(dist), _to_av(ref)
    t = time.perf_counter()
    for i in range(n):
        a, b = fa.reformat(), fb.reformat()  # fresh frames (pushing transfers ownership)
        a.pts = b.pts = i
        srcs[0].push(a)
        srcs[1].push(b)
        try:
            g.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            pass
    for s in srcs:
        s.push(None)
    while True:
        try:
            g.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            break
    return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    ref, dist = _pair(a.width, a.height, a.depth)
    frame_metrics(ref, dist)  # warm-up (imports, caches)

    t = time.perf_counter()
    for _ in range(a.repeat):
        frame_metrics(ref, dist, ms_ssim=False)
    ours_psnr = (time.perf_counter() - t) / a.repeat
    t = time.perf_counter()
    for _ in range(a.repeat):
        v = ms_ssim(ref.y, dist.y, a.depth)
    ours_ms = (time.perf_counter() - t) / a.repeat

    ff_psnr = _ffmpeg(ref, dist, "psnr", "", a.repeat)
    print(f"{ref.format}, {a.repeat} repeats")
    print(f"PSNR Y/U/V   ours {ours_psnr * 1e3:8.1f} ms   FFmpeg psnr {ff_psnr * 1e3:8.1f} ms   "
          f"ours/FFmpeg {ours_psnr / ff_psnr:5.2f}")
    try:
        with tempfile.TemporaryDirectory() as d:
            log = Path(d) / "v.json"
            ff_ms = _ffmpeg(ref, dist, "libvmaf", f"feature=name=float_ms_ssim:log_path={log}:log_fmt=json",
                            a.repeat)
            gc.collect()  # libvmaf writes its log when the graph is freed
            vm = json.loads(log.read_text())["frames"][0]["metrics"]["float_ms_ssim"]
        print(f"MS-SSIM Y    ours {ours_ms * 1e3:8.1f} ms   libvmaf     {ff_ms * 1e3:8.1f} ms   "
              f"ours/libvmaf {ours_ms / ff_ms:5.2f}   (libvmaf time includes its VMAF model)")
        print(f"MS-SSIM value ours {v:.6f}  libvmaf float_ms_ssim {vm:.6f}")
    except (ValueError, av.error.FFmpegError, FileNotFoundError, KeyError) as e:
        print(f"MS-SSIM Y    ours {ours_ms * 1e3:8.1f} ms   (libvmaf unavailable: {e})")


if __name__ == "__main__":
    main()
