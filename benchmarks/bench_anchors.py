"""Cost of codeclab's coding loop around x265/x264, against bare PyAV encoding in the same run.

    .venv/bin/python benchmarks/bench_anchors.py [FILE] [--frames 12] [--qp 32] [--preset medium]

FILE defaults to the demo clip shipped in the package. For each anchor it times, on the
same frames (decoded once, held in memory):

1. bare PyAV: ``add_stream("libx265")`` into an in-memory MP4 with the options our encoder
   passes (the reference: FFmpeg doing all the work);
2. ``FFmpegEncoder`` alone (our wrapper: numpy planes -> VideoFrame -> Annex-B packets);
3. ``code_frames`` (encode + FFmpeg decode + PSNR), and with MS-SSIM.

It prints frames/s and the ratio to (1), and checks that (1) and (2) produce the same
number of bytes per frame (same encoder, same options: the wrapper must not change the
stream). MP4 samples replace each 4-byte start code by a 4-byte length, so x265 (hev1,
parameter sets in band) matches byte for byte; x264 in MP4 moves SPS/PPS into the
``avcC`` header (global header), so our packets are larger by a constant amount.
"""

from __future__ import annotations

import argparse
import io
import time

import av

from codeclab.codecs import get_codec, make_options
from codeclab.codecs.ffmpeg import _params
from codeclab.pipeline.demo import demo_clip
from codeclab.pipeline.io.sources import FrameRange, open_source
from codeclab.pipeline.transcode import code_frames


def _bare(library: str, frames: list, opts) -> tuple[float, list[int]]:
    fmt = frames[0].format
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        options = {"preset": opts.preset, "qp": str(opts.qp), f"{library[3:]}-params": _params(opts, library)}
        st = out.add_stream(library, rate=fmt.fps, options=options)
        st.width, st.height, st.pix_fmt = fmt.width, fmt.height, fmt.pix_fmt
        vfs = []
        for f in frames:
            vf = av.VideoFrame(fmt.width, fmt.height, fmt.pix_fmt)
            for plane, arr in zip(vf.planes, f.planes):
                if plane.line_size == arr.shape[1] * arr.itemsize:
                    plane.update(arr)
                else:
                    raise SystemExit("bench: frame width needs padding; use a width multiple of 64")
            vf.pts = f.index
            vfs.append(vf)
        sizes = []
        t0 = time.perf_counter()
        for vf in vfs:
            for p in st.encode(vf):
                sizes.append(p.size)
                out.mux(p)
        for p in st.encode(None):
            sizes.append(p.size)
            out.mux(p)
        return time.perf_counter() - t0, sizes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", default=None)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--qp", type=int, default=32)
    ap.add_argument("--preset", default="medium")
    a = ap.parse_args()
    path = a.file or demo_clip()
    with open_source(path, frames=FrameRange(0, a.frames)) as src:
        frames = list(src)
    fmt = frames[0].format
    n = len(frames)
    print(f"{path}: {n} frames {fmt}")
    print(f"{'codec':<6} {'what':<28} {'fps':>8} {'vs bare':>8}")
    for codec, library in (("x265", "libx265"), ("x264", "libx264")):
        spec = get_codec(codec)
        opts = make_options(spec, {"qp": a.qp, "preset": a.preset})
        bare_s, bare_sizes = _bare(library, frames, opts)
        enc = spec.make_encoder(fmt, opts)
        t0 = time.perf_counter()
        packets = [p for f in frames for p in enc.encode(f)] + enc.flush()
        ours_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        list(code_frames(frames, spec, opts, ms_ssim=False))
        loop_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        list(code_frames(frames, spec, opts, ms_ssim=True))
        loop_ms_s = time.perf_counter() - t0
        for what, s in (("bare PyAV encode (mp4)", bare_s), ("FFmpegEncoder", ours_s),
                        ("code_frames (enc+dec+PSNR)", loop_s), ("code_frames + MS-SSIM", loop_ms_s)):
            print(f"{codec:<6} {what:<28} {n / s:8.1f} {bare_s / s:8.2f}")
        diff = [len(p.data) - s for p, s in zip(packets, bare_sizes)]
        print(f"{codec:<6} bytes/frame ours - bare mp4 sample: min {min(diff)} max {max(diff)} "
              f"(start codes vs length prefixes; total ours {sum(len(p.data) for p in packets)})")


if __name__ == "__main__":
    main()
