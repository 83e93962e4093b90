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
def _hadamard_rows(t, size):  # pragma: no cover - numba
    """In-place 1-D Hadamard (butterflies) of each row of t[:size, :size]."""
    for r in range(size):
        h = 1
        while h < size:
            for i in range(0, size, 2 * h):
                for j in range(i, i + h):
                    a = t[r, j]
                    b = t[r, j + h]
                    t[r, j] = a + b
                    t[r, j + h] = a - b
            h *= 2


@njit(cache=True)
def _satd_tiles(a, b, size):  # pragma: no cover - numba
    h, w = a.shape
    t = np.empty((size, size), dtype=np.int64)
    tt = np.empty((size, size), dtype=np.int64)
    total = 0
    for y0 in range(0, h, size):
        for x0 in range(0, w, size):
            for y in range(size):
                for x in range(size):
                    t[y, x] = np.int64(a[y0 + y, x0 + x]) - np.int64(b[y0 + y, x0 + x])
            _hadamard_rows(t, size)
            for y in range(size):
                for x in range(size):
                    tt[x, y] = t[y, x]
            _hadamard_rows(tt, size)
            s = 0
            for y in range(size):
                for x in range(size):
                    s += abs(tt[y, x])
            total += (s + 2) >> 2 if size == 8 else (s + 1) >> 1
    return total


@njit(cache=True)
def _satd_batch(preds, orig, size, out):  # pragma: no cover - numba
    for k in range(preds.shape[0]):
        out[k] = _satd_tiles(orig, preds[k], size)


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
    return int(_satd_tiles(a, b, _tile(a.shape)))


def satd_batch(preds: np.ndarray, orig: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """SATD of each of preds (B, h, w) against orig (h, w) in one call: (B,) int64.
    Typical use: ``satd_batch(predict_all_modes(...), orig_block)`` for all 35 modes."""
    if preds.ndim != 3 or preds.shape[1:] != orig.shape:
        raise ValueError(f"satd_batch: preds {preds.shape} do not match orig {orig.shape}")
    if out is None:
        out = np.empty(preds.shape[0], dtype=np.int64)
    _satd_batch(preds, orig, _tile(orig.shape), out)
    return out
