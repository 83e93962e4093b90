"""Our HEVC intra encoder (codec ``hevc``, SQ + SATD decisions) beside x265 all-intra.

    .venv/bin/python benchmarks/bench_hevc_core.py [CLIP] [--frames 10] [--qp 32] [--quant sq]

CLIP defaults to ../shared/media/clips/cockatoo.mp4; a 416x240 window (the JVET class-D
size) is cut from its centre after conversion to 4:2:0 8-bit, and both encoders code the
same frames, held in memory, in the same run. x265 runs through PyAV with preset medium,
keyint 1 (all-intra) and the same flat QP. Every stream is decoded by FFmpeg and PSNR is
measured on that output; ours is also checked bit-exact against our reconstruction.
Printed: frames/s (wall clock and process CPU time: the machine is shared), bits/frame,
PSNR-Y/U/V.

    .venv/bin/python benchmarks/bench_hevc_core.py --tune

instead measures the decision multiplier (lam_mode = lam_split = k * sqrt(lambda)): BD-rate
(PSNR-Y) of k = 1, 3, 6, 9 against k = 1 on three 416x240 windows of the val photographs,
QP 22/27/32/37, deblocking + SAO on.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from codeclab.codecs import get_codec, make_options
from codeclab.frame import Frame, VideoFormat

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "clips" / "cockatoo.mp4"
W, H = 416, 240


def load(path: Path, n: int) -> tuple[list[Frame], VideoFormat]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        fps = Fraction(s.average_rate or 25)
        fmt = VideoFormat(W, H, bit_depth=8, fps=fps)
        frames = []
        for vf in c.decode(video=0):
            g = vf.reformat(format="yuv420p")
            pl = [np.from_dlpack(p) for p in g.planes]
            y0, x0 = (g.height - H) // 4 * 2, (g.width - W) // 4 * 2
            planes = (pl[0][y0:y0 + H, x0:x0 + W].copy(),
                      pl[1][y0 // 2:(y0 + H) // 2, x0 // 2:(x0 + W) // 2].copy(),
                      pl[2][y0 // 2:(y0 + H) // 2, x0 // 2:(x0 + W) // 2].copy())
            frames.append(Frame(planes, fmt, len(frames), len(frames)))
            if len(frames) == n:
                break
    return frames, fmt


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def run(name: str, values: dict, frames: list[Frame], fmt: VideoFormat) -> dict:
    spec = get_codec(name)
    opts = make_options(spec, values)
    enc, dec = spec.make_encoder(fmt, opts), spec.make_decoder(fmt, opts)
    packets = []
    t0, c0 = time.perf_counter(), time.process_time()
    for f in frames:
        packets += enc.encode(f)
    packets += enc.flush()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = []
    for p in packets:
        out += dec.decode(p)
    out += dec.flush()
    exact = all(np.array_equal(a, b) for p, o in zip(packets, out) if "recon" in p.props
                for a, b in zip(o.planes, p.props["recon"]))
    ps = np.array([[psnr(o.planes[c], f.planes[c]) for c in range(3)] for o, f in zip(out, frames)])
    return {"fps_wall": len(frames) / wall, "fps_cpu": len(frames) / cpu,
            "bits": float(np.mean([p.bits for p in packets])), "psnr": ps.mean(axis=0), "exact": exact,
            "n": len(out)}


def tune() -> None:
    from codeclab.codecs.hevc.encoder import PictureEncoder
    from codeclab.codecs.hevc.params import StreamParams
    from codeclab.pipeline.eval.bdrate import bd_rate

    val = DEFAULT.parents[1] / "val"
    pics = []
    for name, (y0, x0) in (("Kite.png", (100, 200)), ("Dune.png", (300, 500)), ("FallenLeaf.png", (200, 100))):
        with av.open(str(val / name)) as c:
            g = next(c.decode(video=0)).reformat(format="yuv420p")
            pl = [np.from_dlpack(p) for p in g.planes]
        pics.append([pl[0][y0:y0 + H, x0:x0 + W].copy(),
                     pl[1][y0 // 2:(y0 + H) // 2, x0 // 2:(x0 + W) // 2].copy(),
                     pl[2][y0 // 2:(y0 + H) // 2, x0 // 2:(x0 + W) // 2].copy()])

    def rd(k: float) -> tuple[list[float], list[float]]:
        rates, psnrs = [], []
        for qp in (22, 27, 32, 37):
            e = PictureEncoder(StreamParams(W, H, 8, 5, 1, qp, Fraction(25), True, False, True, True))
            e.lam_mode = e.lam_split = k * e.lam_satd
            bits, mse = 0, 0.0
            for pic in pics:
                out = e.encode(pic)
                bits += out.bits
                mse += float(((out.recon[0].astype(np.float64) - pic[0]) ** 2).mean())
            rates.append(bits)
            psnrs.append(10 * np.log10(255.0 ** 2 / (mse / len(pics))))
        return rates, psnrs

    base = rd(1.0)
    for k in (1.0, 3.0, 6.0, 9.0):
        r = base if k == 1.0 else rd(k)
        print(f"k = {k:3.0f}: bits {r[0]}, PSNR-Y {[round(float(p), 2) for p in r[1]]}, "
              f"BD-rate vs k=1 {bd_rate(base[0], base[1], r[0], r[1]):+.2f} %")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", nargs="?", default=str(DEFAULT))
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--qp", type=int, default=32)
    ap.add_argument("--quant", default="sq")
    ap.add_argument("--tune", action="store_true", help="measure the decision multiplier instead")
    a = ap.parse_args()
    if a.tune:
        tune()
        return
    frames, fmt = load(Path(a.clip), a.frames)
    print(f"{Path(a.clip).name}: {len(frames)} frames {W}x{H} 4:2:0 8-bit, QP {a.qp}")
    # warm-up (numba compilation / cache load) outside the timing
    run("hevc", {"qp": a.qp, "quant": a.quant}, frames[:1], fmt)
    rows = [("hevc (ours, %s)" % a.quant, run("hevc", {"qp": a.qp, "quant": a.quant, "keep_recon": True}, frames, fmt)),
            ("x265 medium all-intra", run("x265", {"qp": a.qp, "preset": "medium", "keyint": 1}, frames, fmt))]
    print(f"{'encoder':26s} {'fps(wall)':>9s} {'fps(cpu)':>9s} {'bits/frame':>11s} {'PSNR-Y':>7s} {'PSNR-U':>7s} "
          f"{'PSNR-V':>7s}  decoded")
    for name, r in rows:
        print(f"{name:26s} {r['fps_wall']:9.2f} {r['fps_cpu']:9.2f} {r['bits']:11.0f} {r['psnr'][0]:7.2f} "
              f"{r['psnr'][1]:7.2f} {r['psnr'][2]:7.2f}  {r['n']} frames"
              + (", bit-exact with our recon" if name.startswith("hevc") and r["exact"] else ""))
    ours, x = rows[0][1], rows[1][1]
    print(f"ours/x265: speed {ours['fps_cpu'] / x['fps_cpu']:.3f}x (cpu), bits {ours['bits'] / x['bits']:.3f}x")


if __name__ == "__main__":
    main()
