"""Speed of the quantizers (SQ + sign hiding vs HM's RDOQ) per block, n = 4..32, and the
BD-rate of RDOQ against SQ through the all-intra encoder.

    .venv/bin/python benchmarks/bench_quantizers.py [--blocks 256 --repeat 5 --qp 32]
    .venv/bin/python benchmarks/bench_quantizers.py --bdrate [--pictures 4 --crop 0]

Blocks are transform coefficients of DC-predicted blocks of a real picture when
../shared/media is present (synthetic Laplacian coefficients otherwise), quantized in one
batch call per size with the I-slice initial CABAC contexts of the encoder. Prints
microseconds per block for each quantizer, the RDOQ/SQ time ratio, and the RD cost
(SSE + lambda * bits, bits from the CABAC residual coder in estimate mode) of RDOQ relative
to SQ on the same blocks.

``--bdrate`` encodes the validation pictures of ../shared/media (4:2:0, 8-bit, CTB 64, sign
hiding, transform skip, deblocking and SAO on) at QP 22/27/32/37 with each quantizer, decodes
every stream with FFmpeg (PyAV), and prints per-picture and mean BD-rate (pchip) of RDOQ
against SQ for Y and for (6Y+U+V)/8 PSNR.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from codeclab.bitstream.cabac import E_FRAC, ENTROPY_BITS, init_contexts, new_engine
from codeclab.codecs.hevc.lambdas import intra_lambda
from codeclab.codecs.hevc.quantizer import RATE_K, QuantBatch, extract_rate_state, get_quantizer
from codeclab.codecs.hevc.residual import C4_SCAN, SB_SCAN, code_residual
from codeclab.codecs.hevc.scalar_quant import dequantize
from codeclab.codecs.hevc.tables import CTX_CBF_LUMA, INIT_VALUES_I
from codeclab.codecs.hevc.transform import forward_transform

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


def _coeffs(log2: int, count: int, rng: np.random.Generator) -> np.ndarray:
    n = 1 << log2
    pics = sorted((MEDIA / "val").glob("*.png")) if MEDIA.is_dir() else []
    if not pics:
        decay = np.exp(-np.add.outer(np.arange(n), np.arange(n)) * 4.0 / n)
        return np.round(rng.laplace(0, 300, (count, n, n)) * decay).astype(np.int32)
    import av

    with av.open(str(pics[0])) as cont:
        img = next(cont.decode(video=0)).to_ndarray(format="gray").astype(np.int32)
    res = []
    for _ in range(count):
        y = int(rng.integers(1, img.shape[0] - n))
        x = int(rng.integers(1, img.shape[1] - n))
        pred = (img[y - 1, x:x + n].sum() + img[y:y + n, x - 1].sum() + n) // (2 * n)
        res.append(img[y:y + n, x:x + n] - pred)
    return forward_transform(np.stack(res), log2, log2 == 2, 8)


def _bits(lv: np.ndarray, log2: int, full: np.ndarray) -> int:
    coded = bool(lv.any())
    b = int(ENTROPY_BITS[int(full[CTX_CBF_LUMA + 1]) ^ int(coded)])
    if coded:
        eng = new_engine(1)
        code_residual(eng, full.copy(), np.zeros(16, np.uint8), np.ascontiguousarray(lv),
                      log2, 0, 0, True, False, 0, SB_SCAN, C4_SCAN)
        b += int(eng[E_FRAC])
    return b


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-10))


def bdrate(pictures: int, crop: int) -> None:
    import io
    from fractions import Fraction

    import av

    from codeclab.codecs.hevc.encoder import PictureEncoder
    from codeclab.codecs.hevc.params import StreamParams
    from codeclab.codecs.hevc.quantizer import EncoderQuantizer
    from codeclab.eval.bdrate import bd_rate_components

    pics = sorted((MEDIA / "val").glob("*.png"))[:pictures] if MEDIA.is_dir() else []
    if not pics:
        raise SystemExit("bench_quantizers: --bdrate needs ../shared/media/val/*.png")
    qps = (22, 27, 32, 37)
    res: dict[str, list[float]] = {"Y": [], "YUV": []}
    print(f"{'picture':<16} {'size':>9} {'BD-rate Y %':>12} {'BD-rate YUV %':>14} {'sq s':>6} {'rdoq s':>7}")
    for path in pics:
        with av.open(str(path)) as cont:
            fr = next(cont.decode(video=0))
        w, h = fr.width & ~1, fr.height & ~1
        if crop:
            w, h = min(w, crop), min(h, crop)
        yuv = fr.reformat(width=fr.width & ~1, height=fr.height & ~1, format="yuv420p")
        planes = [np.asarray(pl)[:ph, :pw] for pl, (pw, ph) in zip(
            (yuv.to_ndarray()[: yuv.height],
             yuv.to_ndarray()[yuv.height: yuv.height * 5 // 4].reshape(yuv.height // 2, -1),
             yuv.to_ndarray()[yuv.height * 5 // 4:].reshape(yuv.height // 2, -1)),
            ((w, h), (w // 2, h // 2), (w // 2, h // 2)))]
        curves, secs = {}, {}
        for name in ("sq", "rdoq"):
            d: dict[str, list[float]] = {"rate": [], "psnr_y": [], "psnr_u": [], "psnr_v": []}
            t0 = time.perf_counter()
            for qp in qps:
                p = StreamParams(w, h, 8, 6, 1, qp, Fraction(25), True, True, True, True)
                out = PictureEncoder(p, quantizer=EncoderQuantizer(name, qp)).encode(planes)
                with av.open(io.BytesIO(out.data), format="hevc") as c:
                    dec = next(c.decode(video=0)).to_ndarray()
                dy = dec[:h]
                du = dec[h: h * 5 // 4].reshape(h // 2, w // 2)
                dv = dec[h * 5 // 4:].reshape(h // 2, w // 2)
                d["rate"].append(out.bits)
                for k, a, b in (("psnr_y", dy, planes[0]), ("psnr_u", du, planes[1]),
                                ("psnr_v", dv, planes[2])):
                    d[k].append(_psnr(a, b))
            secs[name] = time.perf_counter() - t0
            curves[name] = d
        bd = bd_rate_components(curves["sq"], curves["rdoq"])
        res["Y"].append(bd["Y"])
        res["YUV"].append(bd["YUV"])
        print(f"{path.stem:<16} {w:>4}x{h:<4} {bd['Y']:>12.2f} {bd['YUV']:>14.2f} "
              f"{secs['sq']:>6.1f} {secs['rdoq']:>7.1f}")
        for name in ("sq", "rdoq"):
            c = curves[name]
            print("   " + name + ": " + ", ".join(f"QP{q} {r} b {y:.2f} dB"
                                               for q, r, y in zip(qps, c["rate"], c["psnr_y"])))
    print(f"{'mean':<16} {'':>9} {np.mean(res['Y']):>12.2f} {np.mean(res['YUV']):>14.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--qp", type=int, default=32)
    ap.add_argument("--bdrate", action="store_true", help="BD-rate of rdoq vs sq via the encoder")
    ap.add_argument("--pictures", type=int, default=4)
    ap.add_argument("--crop", type=int, default=0, help="crop pictures to at most this size")
    a = ap.parse_args()
    if a.bdrate:
        bdrate(a.pictures, a.crop)
        return
    rng = np.random.default_rng(0)
    full = init_contexts(INIT_VALUES_I, a.qp)
    lam = intra_lambda(a.qp)
    quants = {"sq": get_quantizer("sq"), "rdoq": get_quantizer("rdoq")}
    print(f"QP {a.qp}, lambda {lam:.3f}, {a.blocks} luma blocks per size, best of {a.repeat}")
    print(f"{'n':>3} {'sq us/blk':>10} {'rdoq us/blk':>12} {'ratio':>6} {'RD cost rdoq/sq':>16}")
    for log2 in range(2, 6):
        c = _coeffs(log2, a.blocks, rng)
        st = np.ascontiguousarray(np.broadcast_to(extract_rate_state(full, None, 0, 1),
                                                  (a.blocks, RATE_K)))
        batch = QuantBatch(c, log2, 0, 0, a.qp, lam, False, 8, st, True)
        times, out = {}, {}
        for name, q in quants.items():
            out[name] = q.quantize(batch)  # compile / warm up
            best = np.inf
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                q.quantize(batch)
                best = min(best, time.perf_counter() - t0)
            times[name] = best / a.blocks * 1e6
        tshift = 15 - 8 - log2
        cost = {}
        for name, lv in out.items():
            d = c.astype(np.float64) - dequantize(lv, a.qp, log2, 8)
            dist = (d * d).sum() / 4.0 ** tshift
            cost[name] = dist + lam * sum(_bits(lv[b], log2, full) for b in range(a.blocks)) / 32768
        print(f"{1 << log2:>3} {times['sq']:>10.2f} {times['rdoq']:>12.2f} "
              f"{times['rdoq'] / times['sq']:>6.1f} {cost['rdoq'] / cost['sq']:>16.4f}")


if __name__ == "__main__":
    main()
