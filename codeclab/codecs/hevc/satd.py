"""Hadamard SATD as HM's TComRdCost::xGetHADs computes it (intra mode decision cost).

Blocks whose sides are multiples of 8 are cut into 8x8 tiles, cost (sum|H8 D H8| + 2) >> 2
per tile; otherwise 4x4 tiles, cost (sum|H4 D H4| + 1) >> 1. H is the unnormalised +-1
Hadamard matrix (row order does not change a sum of absolute values).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["satd", "satd_batch"]


@njit(cache=True, inline="always")
def _bfly8_cols(d, r0, w, absum):  # pragma: no cover - numba
    """The 8-point Hadamard butterflies down each column x < w of rows r0..r0+7 of d, in
    place; with ``absum`` the column's sum of absolute outputs goes to row r0 instead."""
    for x in range(w):
        a0 = d[r0, x]; a1 = d[r0 + 1, x]; a2 = d[r0 + 2, x]; a3 = d[r0 + 3, x]  # noqa: E702
        a4 = d[r0 + 4, x]; a5 = d[r0 + 5, x]; a6 = d[r0 + 6, x]; a7 = d[r0 + 7, x]  # noqa: E702
        s0 = a0 + a4; s1 = a1 + a5; s2 = a2 + a6; s3 = a3 + a7  # noqa: E702
        d0 = a0 - a4; d1 = a1 - a5; d2 = a2 - a6; d3 = a3 - a7  # noqa: E702
        t0 = s0 + s2; t1 = s1 + s3; t2 = s0 - s2; t3 = s1 - s3  # noqa: E702
        u0 = d0 + d2; u1 = d1 + d3; u2 = d0 - d2; u3 = d1 - d3  # noqa: E702
        if absum:
            d[r0, x] = (abs(t0 + t1) + abs(t0 - t1) + abs(t2 + t3) + abs(t2 - t3)
                        + abs(u0 + u1) + abs(u0 - u1) + abs(u2 + u3) + abs(u2 - u3))
        else:
            d[r0, x] = t0 + t1; d[r0 + 1, x] = t0 - t1; d[r0 + 2, x] = t2 + t3; d[r0 + 3, x] = t2 - t3  # noqa: E702
            d[r0 + 4, x] = u0 + u1; d[r0 + 5, x] = u0 - u1; d[r0 + 6, x] = u2 + u3; d[r0 + 7, x] = u2 - u3  # noqa: E702


@njit(cache=True, inline="always")
def _satd8_strip(a, b, y0, d):  # pragma: no cover - numba
    """Sum of the 8x8 tile costs of rows y0..y0+7. Both butterfly passes run down columns
    across the whole strip (contiguous, vectorised): the differences in d[0:8], the column
    pass, each tile transposed into d[8:16], the column pass again (the row pass of the
    tile) summing absolute values: 2.5x the speed of row butterflies per tile."""
    w = a.shape[1]
    for y in range(8):
        ar, br, dr = a[y0 + y], b[y0 + y], d[y]
        for x in range(w):
            dr[x] = np.int32(ar[x]) - np.int32(br[x])
    _bfly8_cols(d, 0, w, False)
    for t in range(0, w, 8):
        for k in range(8):
            for y in range(8):
                d[8 + k, t + y] = d[y, t + k]
    _bfly8_cols(d, 8, w, True)
    total = 0
    for t in range(0, w, 8):
        s = 0
        for y in range(8):
            s += d[8, t + y]
        total += (s + 2) >> 2
    return total


@njit(cache=True, inline="always")
def _satd_tiles(a, b, size, d):  # pragma: no cover - numba
    """SATD of a against b in size x size tiles; d: satd_scratch(w) (the caller allocates
    it once for many calls)."""
    h, w = a.shape
    total = 0
    if size == 8:
        for y0 in range(0, h, 8):
            total += _satd8_strip(a, b, y0, d)
        return total
    for y0 in range(0, h, 4):
        for x0 in range(0, w, 4):
            for y in range(4):
                r0 = np.int32(a[y0 + y, x0]) - np.int32(b[y0 + y, x0])
                r1 = np.int32(a[y0 + y, x0 + 1]) - np.int32(b[y0 + y, x0 + 1])
                r2 = np.int32(a[y0 + y, x0 + 2]) - np.int32(b[y0 + y, x0 + 2])
                r3 = np.int32(a[y0 + y, x0 + 3]) - np.int32(b[y0 + y, x0 + 3])
                e0 = r0 + r2; e1 = r1 + r3; f0 = r0 - r2; f1 = r1 - r3  # noqa: E702
                d[y, 0] = e0 + e1; d[y, 1] = e0 - e1  # noqa: E702
                d[y, 2] = f0 + f1; d[y, 3] = f0 - f1  # noqa: E702
            s = 0
            for x in range(4):
                e0 = d[0, x] + d[2, x]; e1 = d[1, x] + d[3, x]  # noqa: E702
                f0 = d[0, x] - d[2, x]; f1 = d[1, x] - d[3, x]  # noqa: E702
                s += abs(e0 + e1) + abs(e0 - e1) + abs(f0 + f1) + abs(f0 - f1)
            total += (s + 1) >> 1
    return total


@njit(cache=True)
def satd_scratch(w):  # pragma: no cover - numba
    """The scratch _satd_tiles needs for blocks w samples wide."""
    return np.empty((16, max(w, 4)), dtype=np.int32)


@njit(cache=True)
def _satd_batch(preds, orig, size, out):  # pragma: no cover - numba
    d = satd_scratch(orig.shape[1])
    for k in range(preds.shape[0]):
        out[k] = _satd_tiles(orig, preds[k], size, d)


def _tile(shape: tuple[int, ...]) -> int:
    h, w = shape[-2:]
    if h % 8 == 0 and w % 8 == 0:
        return 8
    if h % 4 == 0 and w % 4 == 0:
        return 4
    raise ValueError(f"satd: block {h}x{w} is not a multiple of 4")


def satd(a: np.ndarray, b: np.ndarray) -> int:
    """HM SATD between two equally shaped 2-D blocks (any integer dtypes)."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"satd: shapes {a.shape} and {b.shape} differ or are not 2-D")
    return int(_satd_tiles(a, b, _tile(a.shape), satd_scratch(a.shape[1])))


def satd_batch(preds: np.ndarray, orig: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """SATD of each of preds (B, h, w) against orig (h, w) in one call: (B,) int64.
    Typical use: ``satd_batch(predict_all_modes(...), orig_block)`` for all 35 modes."""
    if preds.ndim != 3 or preds.shape[1:] != orig.shape:
        raise ValueError(f"satd_batch: preds {preds.shape} do not match orig {orig.shape}")
    if out is None:
        out = np.empty(preds.shape[0], dtype=np.int64)
    _satd_batch(preds, orig, _tile(orig.shape), out)
    return out
