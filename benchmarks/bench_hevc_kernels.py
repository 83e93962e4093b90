"""Per-call cost of the HEVC pixel kernels (what the encoder calls thousands of times per
picture) and of the picture-level loop filters.

    .venv/bin/python benchmarks/bench_hevc_kernels.py [--repeat 2000]

Prints microseconds per call (after a warm-up call that compiles the numba kernels) for
one block of each size: predict_intra (one mode), predict_all_modes (35 modes from one
reference build), satd_batch (35 candidates), forward/inverse transform (inverse on a
typical quantized block with 3x3 low-frequency levels and on a dense one), quantize_sq,
dequantize; then deblock, sao_estimate and sao_apply on a 1920x1088 4:2:0 picture with
every 8x8 edge marked and CTB 64. Random inputs, fixed seed; timings only, no checks.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from codeclab.codecs.hevc.intra import predict_all_modes, predict_intra
from codeclab.codecs.hevc.loopfilter import deblock, mark_block_edges, new_edge_maps, sao_apply, sao_estimate
from codeclab.codecs.hevc.satd import satd_batch
from codeclab.codecs.hevc.scalar_quant import dequantize, quantize_sq
from codeclab.codecs.hevc.transform import forward_transform, inverse_transform


def per_call_us(f, n: int) -> float:
    f()
    t = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2000)
    n = ap.parse_args().repeat
    rng = np.random.default_rng(0)
    rec = rng.integers(0, 256, (128, 128)).astype(np.int32)
    av = np.zeros(rec.shape, bool)
    av[:32] = True
    av[:, :32] = True
    print("us per call        4x4     8x8   16x16   32x32")
    rows: dict[str, list[float]] = {}
    for log2 in (2, 3, 4, 5):
        s = 1 << log2
        out = np.empty((35, s, s), np.int32)
        org = np.ascontiguousarray(rng.integers(0, 256, (s, s)).astype(np.int32))
        res = rng.integers(-255, 256, (s, s)).astype(np.int32)
        sparse = np.zeros((s, s), np.int32)
        sparse[:3, :3] = rng.integers(-300, 300, (3, 3))
        dense = rng.integers(-300, 300, (s, s)).astype(np.int32)
        cases = {
            "predict_intra": lambda: predict_intra(rec, av, 32, 32, log2, 18, 0, 8),
            "predict_all_modes": lambda: predict_all_modes(rec, av, 32, 32, log2, 0, 8, out=out),
            "satd_batch(35)": lambda: satd_batch(out, org),
            "forward_transform": lambda: forward_transform(res, log2, False, 8),
            "inverse (3x3 levels)": lambda: inverse_transform(sparse, log2, False, 8),
            "inverse (dense)": lambda: inverse_transform(dense, log2, False, 8),
            "quantize_sq": lambda: quantize_sq(dense, 30, log2, 8),
            "dequantize": lambda: dequantize(dense, 30, log2, 8),
        }
        for name, f in cases.items():
            rows.setdefault(name, []).append(per_call_us(f, n))
    for name, v in rows.items():
        print(f"{name:<20}" + "".join(f"{x:8.1f}" for x in v))

    h, w = 1088, 1920
    yy, xx = np.mgrid[0:h, 0:w]
    org = [np.clip(128 + 60 * np.sin(xx / 9) + rng.normal(0, 3, (h, w)), 0, 255).astype(np.int32)]
    org += [np.clip(120 + 30 * np.cos(yy[::2, ::2] / 5), 0, 255).astype(np.int32)] * 2
    rec3 = [np.clip(o + rng.integers(-4, 5, o.shape), 0, 255).astype(np.int32) for o in org]
    vert, hor = new_edge_maps(h, w)
    for y in range(0, h, 8):
        for x in range(0, w, 8):
            mark_block_edges(vert, hor, x, y, 8, 8)
    qp = np.full(vert.shape, 32)
    params = sao_estimate(org, rec3, 6, 8, 20.0)
    print(f"\n1920x1088 4:2:0, ms per picture")
    for name, f in (("deblock", lambda: deblock(rec3, (vert, hor), qp, 8)),
                    ("sao_estimate", lambda: sao_estimate(org, rec3, 6, 8, 20.0)),
                    ("sao_apply", lambda: sao_apply(rec3, params, 6, 8))):
        print(f"{name:<20}{per_call_us(f, 5) / 1000:8.1f}")


if __name__ == "__main__":
    main()
