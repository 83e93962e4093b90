"""RD search and presets of our HEVC intra encoder, against x265.

    .venv/bin/python benchmarks/bench_hevc_rd.py [--quick] [--no-1080p] [--ctb 64]

Content (8-bit 4:2:0, all-intra, QP 22/27/32/37, deblocking + SAO on, CTB 64 as x265's
CTU, max_tu_depth 1 as x265's tu-intra-depth): 416x240
windows of the val photographs Dune, FallenLeaf and summer_1am (the HEVC tests use only a
window of Kite) and of two clip frames (cockatoo.mp4 frame 120, balle1-vp9.avi frame 150
mirror-extended, frames the clip tests decode but never encode with this codec); --quick
takes Dune and the cockatoo frame only. One run measures and prints:

- BD-rate (PSNR-Y, classic cubic and PCHIP, ``eval.bdrate.bd_rate``) of ``rdoq``
  against ``sq`` in our encoder (preset slow), of the presets against each other, and of
  our encoder (rdoq, slow) against x265 preset medium and preset veryslow (PyAV, keyint 1,
  tune psnr, the same QPs, ``info=0``), rates and PSNRs summed / averaged over the
  pictures per QP (BD of the aggregate curve) and also the mean of per-picture BD-rates;
- encode frames/s (process CPU time, the machine is shared) of every preset x quantizer
  at 416x240 (all pictures, QP 32) and at 1920x1080 (one cockatoo frame scaled up, QP 32,
  --no-1080p skips it), with the share of encode time spent in a quantizer called back in
  Python (``EncoderQuantizer``: rate-state extraction, QuantBatch, the quantizer itself;
  wall clock inside it over wall clock of the encode; "-" for sq and rdoq, which run
  inside the compiled search).

Every one of our streams is decoded by FFmpeg and checked bit-exact against our
reconstruction; PSNR is measured on the decoded pictures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import av  # noqa: E402
import numpy as np  # noqa: E402

from codeclab.base.frame import Frame, VideoFormat  # noqa: E402
from codeclab.codecs import get_codec, make_options  # noqa: E402

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
W, H = 416, 240
QPS = (22, 27, 32, 37)
PICS = (("val/Dune.png", 0, (300, 500)), ("val/FallenLeaf.png", 0, (200, 100)),
        ("val/summer_1am.png", 0, (250, 400)), ("clips/cockatoo.mp4", 120, (240, 432)),
        ("clips/balle1-vp9.avi", 150, (0, 0)))
QUICK = (0, 3)


def _frame(path: Path, index: int) -> av.VideoFrame:
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == index:
                return f
    raise SystemExit(f"{path}: no frame {index}")


def window(path: Path, index: int, y0: int, x0: int) -> list[np.ndarray]:
    """A 416x240 4:2:0 8-bit window; smaller pictures are mirror-extended first."""
    g = _frame(path, index).reformat(format="yuv420p")
    pl = [np.from_dlpack(p) for p in g.planes]
    ph, pw = max(0, H - g.height), max(0, W - g.width)
    if ph or pw:
        pl = [np.pad(a, ((0, ph >> (c > 0)), (0, pw >> (c > 0))), mode="reflect") for c, a in enumerate(pl)]
    return [pl[0][y0:y0 + H, x0:x0 + W].copy(), pl[1][y0 // 2:(y0 + H) // 2, x0 // 2:(x0 + W) // 2].copy(),
            pl[2][y0 // 2:(y0 + H) // 2, x0 // 2:(x0 + W) // 2].copy()]


def hd_frame() -> list[np.ndarray]:
    g = _frame(MEDIA / "clips" / "cockatoo.mp4", 120).reformat(format="yuv420p", width=1920, height=1080)
    return [np.from_dlpack(p).copy() for p in g.planes]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def encode(codec: str, values: dict, planes: list[np.ndarray]) -> dict:
    """One picture through a registry codec and FFmpeg's decoder: bits, PSNR-Y/U/V, CPU
    seconds, quantizer seconds (ours), bit-exactness (ours)."""
    h, w = planes[0].shape
    fmt = VideoFormat(w, h, bit_depth=8, fps=Fraction(25))
    spec = get_codec(codec)
    opts = make_options(spec, {**values, **({"keep_recon": True} if codec == "hevc" else {})})
    enc, dec = spec.make_encoder(fmt, opts), spec.make_decoder(fmt, opts)
    c0, w0 = time.process_time(), time.perf_counter()
    pk = enc.encode(Frame(tuple(planes), fmt, 0, 0)) + enc.flush()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    out = []
    for p in pk:
        out += dec.decode(p)
    out += dec.flush()
    if len(out) != 1:
        raise SystemExit(f"{codec} {values}: decoded {len(out)} pictures")
    r = {"bits": 8 * sum(len(p.data) for p in pk), "cpu": cpu, "wall": wall,
         "psnr": [psnr(out[0].planes[c], planes[c]) for c in range(3)]}
    if codec == "hevc":
        r["exact"] = all(np.array_equal(a, b) for a, b in zip(out[0].planes, pk[0].props["recon"]))
        if not r["exact"]:
            raise SystemExit(f"hevc {values}: FFmpeg output differs from our reconstruction")
        from codeclab.codecs.hevc.tb_coding import QUANT_EXTERNAL

        q = enc._pic.q  # time inside a Python quantizer; sq and rdoq run inside the compiled search
        r["quant_s"] = q.seconds if enc._pic.tp.qkind == QUANT_EXTERNAL else float("nan")
        q.seconds, q.calls = 0.0, 0
    return r


def curves(runs: list[list[dict]]) -> tuple[list[float], list[float]]:
    """Aggregate RD curve over pictures: total bits and mean PSNR-Y per QP."""
    bits = [float(sum(runs[p][k]["bits"] for p in range(len(runs)))) for k in range(len(QPS))]
    ps = [float(np.mean([runs[p][k]["psnr"][0] for p in range(len(runs))])) for k in range(len(QPS))]
    return bits, ps


def bd_line(label: str, anchor: list[list[dict]], test: list[list[dict]]) -> str:
    from codeclab.eval.bdrate import bd_rate

    ra, pa = curves(anchor)
    rt, pt = curves(test)
    agg = {m: bd_rate(ra, pa, rt, pt, method=m) for m in ("cubic", "pchip")}
    per = {m: float(np.mean([bd_rate(*[[r["bits"] for r in a], [r["psnr"][0] for r in a]],
                                     *[[r["bits"] for r in t], [r["psnr"][0] for r in t]], method=m)
                             for a, t in zip(anchor, test)])) for m in ("cubic", "pchip")}
    return (f"{label:44s} cubic {agg['cubic']:+7.2f} %  pchip {agg['pchip']:+7.2f} %   "
            f"(mean per picture: cubic {per['cubic']:+7.2f} %, pchip {per['pchip']:+7.2f} %)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two pictures only (development)")
    ap.add_argument("--no-1080p", action="store_true", help="skip the 1920x1080 speed figure")
    ap.add_argument("--ctb", type=int, default=64)
    a = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    if not MEDIA.is_dir():
        sys.exit(f"media folder {MEDIA} not found")
    chosen = [PICS[i] for i in (QUICK if a.quick else range(len(PICS)))]
    pics = [window(MEDIA / rel, idx, *yx) for rel, idx, yx in chosen]
    print(f"{len(pics)} pictures {W}x{H} 4:2:0 8-bit: {', '.join(f'{r}#{i}' for r, i, _ in chosen)}; "
          f"QP {'/'.join(map(str, QPS))}; CTB {a.ctb}")
    encode("hevc", {"gop": "ai", "qp": 32, "preset": "slow", "quant": "rdoq"}, pics[0])  # numba warm-up
    base = {"gop": "ai", "ctb": a.ctb, "max_tu_depth": 1, "transform_skip": False}  # this benchmark's settings, not the defaults
    configs = [("fast", "sq"), ("fast", "rdoq"), ("medium", "sq"), ("medium", "rdoq"),
               ("slow", "sq"), ("slow", "rdoq")]
    res: dict[str, list[list[dict]]] = {}
    t_all = time.perf_counter()
    for preset, quant in configs:
        key = f"hevc {preset} {quant}"
        res[key] = [[encode("hevc", {**base, "qp": qp, "preset": preset, "quant": quant}, p) for qp in QPS]
                    for p in pics]
        r = res[key]
        print(f"{key:22s} bits {[round(x) for x in curves(r)[0]]} PSNR-Y "
              f"{[round(x, 2) for x in curves(r)[1]]}  ({time.perf_counter() - t_all:.0f} s)", flush=True)
    for xp in ("medium", "veryslow"):
        key = f"x265 {xp}"
        res[key] = [[encode("x265", {"qp": qp, "preset": xp, "tune": "psnr", "keyint": 1}, p) for qp in QPS]
                    for p in pics]
        print(f"{key:22s} bits {[round(x) for x in curves(res[key])[0]]} PSNR-Y "
              f"{[round(x, 2) for x in curves(res[key])[1]]}", flush=True)

    print("\nBD-rate (PSNR-Y; negative = the second saves bits), aggregate over the pictures:")
    for pr in ("fast", "medium", "slow"):
        print(bd_line(f"rdoq vs sq, preset {pr}", res[f"hevc {pr} sq"], res[f"hevc {pr} rdoq"]))
    for q in ("sq", "rdoq"):
        print(bd_line(f"medium vs fast ({q})", res[f"hevc fast {q}"], res[f"hevc medium {q}"]))
        print(bd_line(f"slow vs fast ({q})", res[f"hevc fast {q}"], res[f"hevc slow {q}"]))
    for xp in ("medium", "veryslow"):
        for pr in ("slow", "medium"):
            print(bd_line(f"ours (rdoq, {pr}) vs x265 {xp}", res[f"x265 {xp}"], res[f"hevc {pr} rdoq"]))

    print("\nspeed at QP 32 (frames/s of process CPU time; share of encode time in a Python quantizer, - for the compiled sq / rdoq):")
    k32 = QPS.index(32)
    rows = []
    for preset, quant in configs:
        r = [p[k32] for p in res[f"hevc {preset} {quant}"]]
        cpu, qs = sum(x["cpu"] for x in r), sum(x["quant_s"] for x in r)
        rows.append((preset, quant, len(r) / cpu, qs / sum(x["wall"] for x in r)))
    for xp in ("medium", "veryslow"):
        r = [p[k32] for p in res[f"x265 {xp}"]]
        rows.append((f"x265 {xp}", "-", len(r) / sum(x["cpu"] for x in r), float("nan")))
    hd = {}
    if not a.no_1080p:
        pic = hd_frame()
        for preset, quant in configs:
            r = encode("hevc", {**base, "qp": 32, "preset": preset, "quant": quant}, pic)
            hd[(preset, quant)] = (1 / r["cpu"], r["quant_s"] / r["wall"])
            print(f"  1080p {preset} {quant}: {r['cpu']:.1f} s", flush=True)
        for xp in ("medium", "veryslow"):
            r = encode("x265", {"qp": 32, "preset": xp, "tune": "psnr", "keyint": 1}, pic)
            hd[(f"x265 {xp}", "-")] = (1 / r["cpu"], float("nan"))
    print(f"{'encoder':16s} {'quant':5s} {'416x240 fps':>12s} {'quant share':>12s} {'1080p fps':>10s} {'quant share':>12s}")
    for preset, quant, fps, share in rows:
        h = hd.get((preset, quant))
        hs = (f"{h[0]:10.3f} " + (f"{h[1] * 100:11.1f}%" if h[1] == h[1] else f"{'-':>12s}")) if h \
            else f"{'-':>10s} {'-':>12s}"
        ss = f"{share * 100:11.1f}%" if share == share else f"{'-':>12s}"
        print(f"{preset:16s} {quant:5s} {fps:12.3f} {ss} {hs}")
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s wall")


if __name__ == "__main__":
    main()
