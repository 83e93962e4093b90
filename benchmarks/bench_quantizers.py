"""Speed of the quantisers (SQ + sign hiding vs HM's RDOQ) per block, n = 4..32.

    .venv/bin/python benchmarks/bench_quantizers.py [--blocks 256 --repeat 5 --qp 32]

Blocks are transform coefficients of DC-predicted blocks of a real picture when
../shared/media is present (synthetic Laplacian coefficients otherwise), quantised in one
batch call per size with the I-slice initial CABAC contexts of the encoder. Prints
microseconds per block for each quantiser, the RDOQ/SQ time ratio, and the RD cost
(SSE + lambda * bits, bits from the CABAC residual coder in estimate mode) of RDOQ relative
to SQ on the same blocks.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from codeclab.bitstream.cabac import E_FRAC, ENTROPY_BITS, init_contexts, new_engine
from codeclab.codecs.hevc.lambdas import intra_lambda
from codeclab.codecs.hevc.quant import dequantize
from codeclab.codecs.hevc.quantizers import RATE_K, QuantBatch, extract_rate_state, get_quantizer
from codeclab.codecs.hevc.residual import C4_SCAN, SB_SCAN, code_residual
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--qp", type=int, default=32)
    a = ap.parse_args()
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
