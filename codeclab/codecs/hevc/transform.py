"""HEVC core transforms: normative inverse (8.6.4.2 + the bdShift of 8.6.2) and HM's forward.

Layout: blocks are numpy [y, x] (row = vertical frequency / sample row). M is the N-point
DCT matrix, M[k, n] = basis k at sample n (the spec's transMatrix with its index order
swapped), built from the 32-point coefficient table by subsampling rows (8.6.4.2:
transMatrix for nTbS < 32 uses every 32/nTbS-th basis). DST-VII 4x4 is used only for
intra luma 4x4 TBs.

Inverse (normative): E = M^T D (columns), G = Clip3(-32768, 32767, (E + 64) >> 7),
R = G M (rows), r = (R + (1 << (bdShift-1))) >> bdShift, bdShift = 20 - bitDepth.
Forward (HM partialButterfly equivalent, matrix form): T = (X M^T + rnd) >> (log2 n + bitDepth - 9),
C = (M T + rnd) >> (log2 n + 6).
All kernels take (B, n, n) batches in one numba call; (n, n) inputs are accepted too.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "DCT_MATRIX_32",
    "DST_MATRIX_4",
    "transform_matrix",
    "forward_transform",
    "inverse_transform",
    "forward_transform_skip",
    "inverse_transform_skip",
]

# |64*sqrt(2)*cos(j*pi/64)| as the standard rounds it, j = 1..32 (j = 32 -> 0)
_ODD32 = (90, 90, 88, 85, 82, 78, 73, 67, 61, 54, 46, 38, 31, 22, 13, 4)  # j = 1, 3, .., 31
_ODD16 = (90, 87, 80, 70, 57, 43, 25, 9)  # j = 2, 6, .., 30
_ODD8 = (89, 75, 50, 18)  # j = 4, 12, 20, 28
_ODD4 = (83, 36)  # j = 8, 24


def _build_dct32() -> np.ndarray:
    mag = np.zeros(33, dtype=np.int32)
    mag[1::2] = _ODD32
    mag[2::4] = _ODD16
    mag[4::8] = _ODD8
    mag[8::16] = _ODD4
    mag[16] = 64
    m = np.empty((32, 32), dtype=np.int32)
    m[0, :] = 64
    for k in range(1, 32):
        for n in range(32):
            a = ((2 * n + 1) * k) % 128  # angle in units of pi/64, cos period 128
            j = a % 64
            j = 64 - j if j > 32 else j
            sign = 1 if np.cos(np.pi * a / 64) > 0 else -1
            m[k, n] = sign * mag[j]
    m.setflags(write=False)
    return m


DCT_MATRIX_32 = _build_dct32()
DST_MATRIX_4 = np.array([[29, 55, 74, 84], [74, 74, 0, -74], [84, -29, -74, 55], [55, -84, 74, -29]],
                        dtype=np.int32)
DST_MATRIX_4.setflags(write=False)
_MATS = {k: np.ascontiguousarray(DCT_MATRIX_32[:: 32 >> k, : 1 << k]) for k in (2, 3, 4, 5)}


def transform_matrix(log2_size: int, dst: bool = False) -> np.ndarray:
    """M[k, n] for the DCT of size 2^log2_size (or the 4x4 DST)."""
    if dst:
        if log2_size != 2:
            raise ValueError("the DST exists only for 4x4 blocks")
        return DST_MATRIX_4
    return _MATS[log2_size]


@njit(cache=True)
def _inverse_kernel(d, m, bd_shift, out):  # pragma: no cover - numba
    """The normative inverse transform of each block of d (B, n, n) into out: E = M^T D
    (columns first, clipped to 16 bits after the first stage's rounding), then R = E M.
    Every inner loop runs along a contiguous row (E is kept transposed: et[x] is column x
    of E), so LLVM vectorises them; zero coefficients and the all-zero columns of E (at and
    beyond kx_end) are skipped. Exact int64 algebra: the order of the sums is free."""
    b_count, n, _ = d.shape
    et = np.empty((n, n), dtype=np.int64)
    acc = np.empty(n, dtype=np.int64)
    rnd = np.int64(1) << (bd_shift - 1)
    for b in range(b_count):
        et[:, :] = 0
        kx_end = 0  # columns of D (hence of E) at and beyond kx_end are all zero
        for k in range(n):
            mk = m[k]
            for x in range(n):
                c = np.int64(d[b, k, x])
                if c != 0:
                    kx_end = max(kx_end, x + 1)
                    col = et[x]
                    for y in range(n):
                        col[y] += mk[y] * c
        for x in range(kx_end):
            col = et[x]
            for y in range(n):
                col[y] = min(max((col[y] + 64) >> 7, -32768), 32767)
        for y in range(n):
            acc[:] = 0
            for k in range(kx_end):
                g = et[k, y]
                if g != 0:
                    mk = m[k]
                    for x in range(n):
                        acc[x] += g * mk[x]
            row = out[b, y]
            for x in range(n):
                row[x] = (acc[x] + rnd) >> bd_shift


@njit(cache=True)
def _dct_cols(x, n, m32, y, e, o):  # pragma: no cover - numba
    """y[k, :] = sum_i M_n[k, i] * x[i, :]: the n-point DCT of every column of x (n, w) at
    once, by even/odd (partial butterfly) decomposition: odd basis rows from the
    antisymmetric half, even rows = the n/2-point DCT of the symmetric half. Exact integer
    algebra, identical to the matrix product with 1/3 of the multiplies; every operation
    runs along a contiguous row of w columns (vectorised). x is overwritten (it holds the
    running even part); e, o: scratch (n/2, w)."""
    w = x.shape[1]
    s = n
    while s > 1:
        h = s >> 1
        step = 32 // s  # row k of M_s is row k * step of M_32
        for i in range(h):
            for c in range(w):
                e[i, c] = x[i, c] + x[s - 1 - i, c]
                o[i, c] = x[i, c] - x[s - 1 - i, c]
        for k in range(1, s, 2):
            yk = k * (n // s)
            for c in range(w):
                y[yk, c] = 0
            for i in range(h):
                mk = m32[k * step, i]
                for c in range(w):
                    y[yk, c] += mk * o[i, c]
        for i in range(h):
            for c in range(w):
                x[i, c] = e[i, c]
        s = h
    for c in range(w):
        y[0, c] = 64 * x[0, c]


@njit(cache=True)
def _forward_kernel(r, m, m32, use_dct, s1, s2, out):  # pragma: no cover - numba
    """HM's forward transform of each block of r (B, n, n) into out: rows first (T = X M^T,
    rounded by s1), then columns (C = M T, rounded by s2); int32 is exact here (residuals
    of at most 10 bits give sums below 2^27). use_dct: the DCT by column butterflies over
    whole blocks (pays from 16x16); otherwise the matrix product (the 4x4 DST, small DCTs)."""
    b_count, n, _ = r.shape
    w = np.empty((3, n, n), dtype=np.int32)  # one allocation: x, y, then e / o (n/2 rows each)
    x, y = w[0], w[1]
    e, o = w[2, : n >> 1], w[2, n >> 1:]
    r1 = np.int32(1 << (s1 - 1)) if s1 > 0 else np.int32(0)
    r2 = np.int32(1 << (s2 - 1))
    for b in range(b_count):
        if use_dct:
            for i in range(n):  # rows first: the DCT of the columns of X^T
                for j in range(n):
                    x[j, i] = r[b, i, j]
            _dct_cols(x, n, m32, y, e, o)  # y = (X M^T)^T
            for i in range(n):  # T = y^T, rounded
                for j in range(n):
                    x[j, i] = (y[i, j] + r1) >> s1
            _dct_cols(x, n, m32, y, e, o)  # C = M T
            for i in range(n):
                for j in range(n):
                    out[b, i, j] = (y[i, j] + r2) >> s2
        else:
            for i in range(n):  # T = X M^T, kept transposed (x[k, i] = T[i, k])
                for k in range(n):
                    acc = np.int32(0)
                    for j in range(n):
                        acc += np.int32(r[b, i, j]) * m[k, j]
                    x[k, i] = (acc + r1) >> s1
            for k in range(n):  # C = M T: dot products of contiguous rows
                for j in range(n):
                    acc = np.int32(0)
                    for i in range(n):
                        acc += m[k, i] * x[j, i]
                    out[b, k, j] = (acc + r2) >> s2


def _as_batch(a: np.ndarray, log2_size: int, what: str) -> tuple[np.ndarray, bool]:
    n = 1 << log2_size
    a = np.asarray(a)
    single = a.ndim == 2
    b = a[None] if single else a
    if b.ndim != 3 or b.shape[1:] != (n, n):
        raise ValueError(f"{what}: expected ({n}, {n}) or (B, {n}, {n}), got {a.shape}")
    return b, single


def inverse_transform(coeffs: np.ndarray, log2_size: int, dst: bool, bit_depth: int) -> np.ndarray:
    """Normative inverse transform + bdShift: scaled coefficients d -> residual r (int32)."""
    d, single = _as_batch(coeffs, log2_size, "inverse_transform")
    out = np.empty(d.shape, dtype=np.int32)
    _inverse_kernel(d, transform_matrix(log2_size, dst), 20 - bit_depth, out)
    return out[0] if single else out


def forward_transform(resid: np.ndarray, log2_size: int, dst: bool, bit_depth: int) -> np.ndarray:
    """HM forward transform: residual -> coefficients (int32) on the scale quantize_sq expects."""
    r, single = _as_batch(resid, log2_size, "forward_transform")
    out = np.empty(r.shape, dtype=np.int32)
    _forward_kernel(r, transform_matrix(log2_size, dst), DCT_MATRIX_32, log2_size >= 4 and not dst,
                    log2_size + bit_depth - 9, log2_size + 6, out)
    return out[0] if single else out


def forward_transform_skip(resid: np.ndarray, log2_size: int, bit_depth: int) -> np.ndarray:
    """HM's transform skip: coef = resid << (15 - bitDepth - log2 n) (rounded right shift if
    negative), so quantize_sq's qbits apply unchanged."""
    r = np.asarray(resid, dtype=np.int64)
    shift = 15 - bit_depth - log2_size
    if shift >= 0:
        c = r << shift
    else:
        c = (r + (1 << (-shift - 1))) >> -shift
    return c.astype(np.int32)


def inverse_transform_skip(coeffs: np.ndarray, log2_size: int, bit_depth: int) -> np.ndarray:
    """8.6.4.2 with transform_skip_flag (no rotation / extended precision): r = d << tsShift,
    tsShift = 5 + log2 n, then the bdShift = 20 - bitDepth rounding of 8.6.2."""
    d = np.asarray(coeffs, dtype=np.int64)
    bd_shift = 20 - bit_depth
    r = d << (5 + log2_size)
    return ((r + (1 << (bd_shift - 1))) >> bd_shift).astype(np.int32)
