"""Our HEVC intra encoder (codec ``hevc``) beside x265 all-intra.

    .venv/bin/python benchmarks/bench_hevc_core.py [CLIP] [--frames 10] [--qp 32] [--quant rdoq]
        [--preset medium]

(--preset fast = the SATD decisions these figures were first measured with; the RD search
and its presets have their own benchmark, bench_hevc_rd.py.)

CLIP defaults to ../shared/media/clips/cockatoo.mp4; a 416x240 window (the JVET class-D
size) is cut from its centre after conversion to 4:2:0 8-bit (smaller clips are first
mirror-extended to that size), and both encoders code the
same frames, held in memory, in the same run. x265 runs through PyAV with preset medium,
keyint 1 (all-intra), the same flat QP and ``info=0`` (otherwise every IDR carries a ~2 KB
SEI with x265's version and options, more than the picture itself at this size). Every stream is decoded by FFmpeg and PSNR is
measured on that output; ours is also checked bit-exact against our reconstruction.
Printed: frames/s (wall clock and process CPU time: the machine is shared), bits/frame,
PSNR-Y/U/V.

    .venv/bin/python benchmarks/bench_hevc_core.py [CLIP] --bd

codes the frames at QP 22/27/32/37 with both encoders and prints the BD-rate (PSNR-Y and
PSNR-YUV 6:1:1) of ours against x265 (x265's fixed QP is its P QP: I pictures get a lower
one through ipratio, so equal QPs are not equal quality; BD-rate is the fair comparison).

    .venv/bin/python benchmarks/bench_hevc_core.py --tune

instead measures the SATD decisions' multiplier (preset fast) (lam_mode = lam_split = k * sqrt(lambda)): BD-rate
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

from codeclab.base.frame import Frame, VideoFormat
from codeclab.codecs import get_codec, make_options

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
            ph, pw = max(0, H - g.height), max(0, W - g.width)  # small clips: mirror-extend
            if ph or pw:
                pl = [np.pad(a, ((0, ph >> (c > 0)), (0, pw >> (c > 0))), mode="reflect")
                      for c, a in enumerate(pl)]
            y0, x0 = (pl[0].shape[0] - H) // 4 * 2, (pl[0].shape[1] - W) // 4 * 2
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
    from codeclab.eval.bdrate import bd_rate

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
            e = PictureEncoder(StreamParams(W, H, 8, 5, 1, qp, Fraction(25), True, False, True, True),
                               preset="fast")
            e.sp = e.sp._replace(lam_mode=k * e.sp.sqrt_lam, lam_split=k * e.sp.sqrt_lam)
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
    ap.add_argument("--quant", default="rdoq")
    ap.add_argument("--preset", default="medium", help="hevc preset: fast (SATD decisions), medium, slow")
    ap.add_argument("--tune", action="store_true", help="measure the decision multiplier instead")
    ap.add_argument("--bd", action="store_true", help="BD-rate against x265 over QP 22..37")
    a = ap.parse_args()
    if a.tune:
        tune()
        return
    frames, fmt = load(Path(a.clip), a.frames)
    if a.bd:
        from codeclab.eval.bdrate import bd_rate

        pts = {}
        for name, extra in (("hevc", {"gop": "ai", "quant": a.quant, "preset": a.preset}), ("x265", {"preset": "medium", "keyint": 1, "params": "info=0"})):
            rs = [run(name, {"qp": qp, **extra}, frames, fmt) for qp in (22, 27, 32, 37)]
            pts[name] = ([r["bits"] for r in rs], [float(r["psnr"][0]) for r in rs],
                         [float((6 * r["psnr"][0] + r["psnr"][1] + r["psnr"][2]) / 8) for r in rs],
                         [r["fps_cpu"] for r in rs])
            print(f"{name}: bits/frame {[round(b) for b in pts[name][0]]}, PSNR-Y "
                  f"{[round(p, 2) for p in pts[name][1]]}, fps(cpu) {[round(f, 2) for f in pts[name][3]]}")
        (rx, py_x, pyuv_x, _), (rh, py_h, pyuv_h, _) = pts["x265"], pts["hevc"]
        print(f"BD-rate ours vs x265: PSNR-Y {bd_rate(rx, py_x, rh, py_h):+.2f} %, "
              f"PSNR-YUV {bd_rate(rx, pyuv_x, rh, pyuv_h):+.2f} %")
        return
    print(f"{Path(a.clip).name}: {len(frames)} frames {W}x{H} 4:2:0 8-bit, QP {a.qp}")
    # warm-up (numba compilation / cache load) outside the timing
    ours = {"gop": "ai", "qp": a.qp, "quant": a.quant, "preset": a.preset}
    run("hevc", ours, frames[:1], fmt)
    rows = [(f"hevc (ours, {a.quant}, {a.preset})", run("hevc", {**ours, "keep_recon": True}, frames, fmt)),
            ("x265 medium all-intra", run("x265", {"qp": a.qp, "preset": "medium", "keyint": 1, "params": "info=0"}, frames, fmt))]
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
