"""HEVC intra sample prediction, H.265 8.4.4.2.1-8.4.4.2.6, in numba.

Reference samples are kept as one line of 4n+1 values running from the bottom-left sample
p[-1][2n-1] up the left column to the corner p[-1][-1] and along the top row to p[2n-1][-1]:
``line[2n - 1 - y] = p[-1][y]``, ``line[2n] = p[-1][-1]``, ``line[2n + 1 + x] = p[x][-1]``.
In that order the substitution process (8.4.4.2.2) is "copy the previous value" and the
[1 2 1] filter (8.4.4.2.3) is a plain 1-D filter with fixed end points.
Predictions are returned as numpy [y, x] arrays (the spec writes predSamples[x][y]).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "INTRA_PLANAR",
    "INTRA_DC",
    "INTRA_ANGLE",
    "INTRA_INV_ANGLE",
    "predict_intra",
    "predict_all_modes",
    "reference_line",
    "chroma_mode_from",
    "most_probable_modes",
    "mode_syntax",
]

INTRA_PLANAR, INTRA_DC = 0, 1
# Table 8-4 intraPredAngle for modes 0..34 (0 for planar/DC, unused)
INTRA_ANGLE = np.array([0, 0, 32, 26, 21, 17, 13, 9, 5, 2, 0, -2, -5, -9, -13, -17, -21, -26,
                        -32, -26, -21, -17, -13, -9, -5, -2, 0, 2, 5, 9, 13, 17, 21, 26, 32],
                       dtype=np.int32)
# Table 8-5 invAngle for modes 11..25 (0 elsewhere)
INTRA_INV_ANGLE = np.zeros(35, dtype=np.int32)
INTRA_INV_ANGLE[11:26] = [-4096, -1638, -910, -630, -482, -390, -315, -256, -315, -390, -482,
                          -630, -910, -1638, -4096]
for _a in (INTRA_ANGLE, INTRA_INV_ANGLE):
    _a.setflags(write=False)


@njit(cache=True)
def _gather(recon, avail, x0, y0, n, bit_depth, line):  # pragma: no cover - numba
    """Reference samples with availability + substitution (8.4.4.2.2) into line[0:4n+1].
    A missing sample is marked -1 in ``line`` itself until it is substituted (samples are
    never negative), so no availability array is allocated per call."""
    h, w = recon.shape
    m = 4 * n + 1
    c = 2 * n
    any_ok = False
    xl = x0 - 1
    for i in range(c):  # left column, bottom-up: y = y0 + 2n-1-i
        yy = y0 + c - 1 - i
        if 0 <= yy < h and 0 <= xl < w and avail[yy, xl]:
            line[i] = recon[yy, xl]
            any_ok = True
        else:
            line[i] = -1
    yt = y0 - 1
    for i in range(c, m):  # the corner, then the top row left to right: x = x0 - 1 + i - 2n
        xx = x0 - 1 + i - c
        if 0 <= yt < h and 0 <= xx < w and avail[yt, xx]:
            line[i] = recon[yt, xx]
            any_ok = True
        else:
            line[i] = -1
    if not any_ok:
        line[:m] = 1 << (bit_depth - 1)
        return
    if line[0] < 0:
        for i in range(1, m):
            if line[i] >= 0:
                line[0] = line[i]
                break
    for i in range(1, m):
        if line[i] < 0:
            line[i] = line[i - 1]


@njit(cache=True)
def _filter(line, n, strong, bit_depth, fline):  # pragma: no cover - numba
    """8.4.4.2.3 for filterFlag = 1: [1 2 1] or (32x32 luma) bi-linear strong smoothing."""
    m = 4 * n + 1
    c = 2 * n
    if strong and n == 32:
        thr = 1 << (bit_depth - 5)
        corner, top_end, left_end = line[c], line[m - 1], line[0]
        if (abs(corner + top_end - 2 * line[c + n]) < thr
                and abs(corner + left_end - 2 * line[c - n]) < thr):
            fline[c] = corner
            for y in range(63):  # pF[-1][y] = ((63-y) p[-1][-1] + (y+1) p[-1][63] + 32) >> 6
                fline[c - 1 - y] = ((63 - y) * corner + (y + 1) * left_end + 32) >> 6
                fline[c + 1 + y] = ((63 - y) * corner + (y + 1) * top_end + 32) >> 6
            fline[0] = left_end
            fline[m - 1] = top_end
            return
    fline[0] = line[0]
    fline[m - 1] = line[m - 1]
    for i in range(1, m - 1):
        fline[i] = (line[i - 1] + 2 * line[i] + line[i + 1] + 2) >> 2


@njit(cache=True)
def _predict(line, n, log2n, mode, edge_filters, bit_depth, ref, out):  # pragma: no cover
    """Planar / DC / angular from a (possibly filtered) reference line into out[0:n, 0:n]."""
    c = 2 * n
    if mode == 0:  # planar 8.4.4.2.5
        tr = line[c + 1 + n]  # p[nTbS][-1]
        bl = line[c - 1 - n]  # p[-1][nTbS]
        top = line[c + 1:c + 1 + n]  # indexed from 0 below: vectorised rows (see _angular_rows)
        for y in range(n):
            left = line[c - 1 - y]
            o = out[y]
            for x in range(n):
                o[x] = ((n - 1 - x) * left + (x + 1) * tr + (n - 1 - y) * top[x]
                        + (y + 1) * bl + n) >> (log2n + 1)
        return
    if mode == 1:  # DC 8.4.4.2.6
        s = n
        for i in range(n):
            s += line[c + 1 + i] + line[c - 1 - i]
        dc = s >> (log2n + 1)
        for y in range(n):
            for x in range(n):
                out[y, x] = dc
        if edge_filters:
            out[0, 0] = (line[c - 1] + 2 * dc + line[c + 1] + 2) >> 2
            for x in range(1, n):
                out[0, x] = (line[c + 1 + x] + 3 * dc + 2) >> 2
            for y in range(1, n):
                out[y, 0] = (line[c - 1 - y] + 3 * dc + 2) >> 2
        return
    _angular_rows(line, n, mode, edge_filters, bit_depth, ref, out)
    if mode < 18:  # horizontal modes were built transposed
        _transpose_inplace(out, n)


@njit(cache=True)
def _transpose_inplace(a, n):  # pragma: no cover - numba
    for i in range(n):
        for j in range(i + 1, n):
            t = a[i, j]
            a[i, j] = a[j, i]
            a[j, i] = t


@njit(cache=True, inline="always")
def _angular_rows(line, n, mode, edge_filters, bit_depth, ref, out):  # pragma: no cover - numba
    """Angular prediction (8.4.4.2.6) of mode 2..34 into out[0:n, 0:n], row by row along the
    main reference: vertical modes (18..34) as they are, horizontal modes (2..17) transposed
    (out[x, y] = predSamples at row y, column x). Building both along rows keeps the inner
    loop contiguous and branch-free; a SATD is the same for a block and its transpose, so
    the mode decision compares horizontal modes with the transposed source block and never
    transposes back."""
    c = 2 * n
    maxv = (1 << bit_depth) - 1
    angle = INTRA_ANGLE[mode]
    inv = INTRA_INV_ANGLE[mode]
    sgn = 1 if mode >= 18 else -1  # the main reference runs up the top row / down the left column
    # ref[k] stored at ref[k + n] so that k = -n..2n fits
    for k in range(n + 1):  # ref[x] = p[-1+x][-1] (vertical) / p[-1][-1+x] (horizontal)
        ref[k + n] = line[c + sgn * k]
    if angle < 0:
        last = (n * angle) >> 5
        if last < -1:
            for k in range(last, 0):
                j = -1 + ((k * inv + 128) >> 8)  # p[-1][j] (vertical) / p[j][-1] (horizontal)
                ref[k + n] = line[c - sgn * (1 + j)]
    else:
        for k in range(n + 1, 2 * n + 1):
            ref[k + n] = line[c + sgn * k]
    for j in range(n):
        pos = (j + 1) * angle
        base = (pos >> 5) + 1 + n
        fact = pos & 31
        # slices indexed from 0: numba then emits no negative-index wrap per sample and
        # LLVM vectorises the row (3-4x at 16x16 and 32x32)
        r = ref[base:base + n + 1]
        o = out[j]
        if fact != 0:
            f0 = 32 - fact
            for i in range(n):
                o[i] = (f0 * r[i] + fact * r[i + 1] + 16) >> 5
        else:
            for i in range(n):
                o[i] = r[i]
    if edge_filters and (mode == 26 or mode == 10):  # 26: left column; 10: top row (transposed)
        for y in range(n):
            v = line[c + sgn] + ((line[c - sgn * (1 + y)] - line[c]) >> 1)
            out[y, 0] = min(max(v, 0), maxv)


@njit(cache=True)
def _filter_flag(mode, n):  # pragma: no cover - numba
    if mode == 1 or n == 4:
        return False
    d = min(abs(mode - 26), abs(mode - 10))
    thr = 7 if n == 8 else (1 if n == 16 else 0)
    return d > thr


@njit(cache=True)
def _predict_one(recon, avail, x0, y0, n, log2n, mode, luma, bit_depth, strong, out, lines):  # pragma: no cover
    """The prediction of one block into out; ``lines``: int32 scratch of at least 11 n + 3
    samples (its reference line, filtered line and projected reference)."""
    m = 4 * n + 1
    line = lines[:m]
    _gather(recon, avail, x0, y0, n, bit_depth, line)
    ref = lines[m:m + 3 * n + 1]
    if luma and _filter_flag(mode, n):
        fline = lines[m + 3 * n + 1:2 * m + 3 * n + 1]
        _filter(line, n, strong, bit_depth, fline)
        _predict(fline, n, log2n, mode, n < 32, bit_depth, ref, out)
    else:
        _predict(line, n, log2n, mode, luma and n < 32, bit_depth, ref, out)


@njit(cache=True)
def _predict_all(recon, avail, x0, y0, n, log2n, luma, bit_depth, strong, out):  # pragma: no cover
    m = 4 * n + 1
    line = np.empty(m, dtype=np.int32)
    _gather(recon, avail, x0, y0, n, bit_depth, line)
    fline = np.empty(m, dtype=np.int32)
    _filter(line, n, strong, bit_depth, fline)
    ref = np.empty(3 * n + 1, dtype=np.int32)
    for mode in range(35):
        use_f = luma and _filter_flag(mode, n)
        _predict(fline if use_f else line, n, log2n, mode, luma and n < 32, bit_depth, ref,
                 out[mode])


def _check(recon: np.ndarray, avail: np.ndarray, log2_size: int) -> None:
    if recon.shape != avail.shape or recon.ndim != 2:
        raise ValueError(f"predict_intra: recon {recon.shape} and avail {avail.shape} must be one 2-D shape")
    if not 2 <= log2_size <= 5:
        raise ValueError(f"predict_intra: log2_size {log2_size} outside 2..5")


def predict_intra(recon: np.ndarray, avail: np.ndarray, x0: int, y0: int, log2_size: int,
                  mode: int, c_idx: int, bit_depth: int, strong_intra_smoothing: bool = True,
                  out: np.ndarray | None = None, chroma_format_idc: int = 1) -> np.ndarray:
    """Intra prediction of the n x n TB at (x0, y0) of one component plane: (n, n) int32 [y, x].

    recon: that component's reconstruction so far (int32/uint16/uint8, samples >= 0), the
        whole coded (padded) picture; values outside ``avail`` are ignored.
    avail: bool plane of the same shape, True where a sample is already reconstructed. In
        decoding order a neighbouring sample is available for intra prediction iff it lies in
        the picture and its block precedes the current one in z-scan, i.e. iff it has been
        reconstructed; so if the caller sets ``avail[y:y+n, x:x+n] = True`` after
        reconstructing each TB (single slice and tile, constrained_intra_pred off), this map
        reproduces the spec's availability exactly - including the bottom-left/top-right
        samples of not-yet-coded blocks, which stay False.
    mode: IntraPredModeY for luma, IntraPredModeC (see chroma_mode_from) for chroma.
    The neighbour filter and the DC/horizontal/vertical edge filters apply to luma only
    (and to chroma when chroma_format_idc == 3 for the neighbour filter).
    """
    _check(recon, avail, log2_size)
    n = 1 << log2_size
    if out is None:
        out = np.empty((n, n), dtype=np.int32)
    filt = c_idx == 0 or chroma_format_idc == 3
    if filt and c_idx != 0:
        raise NotImplementedError("4:4:4 chroma prediction (neighbour filter without edge filters)")
    _predict_one(recon, avail, int(x0), int(y0), n, log2_size, int(mode), c_idx == 0,
                 int(bit_depth), bool(strong_intra_smoothing), out, np.empty(11 * n + 3, dtype=np.int32))
    return out


def predict_all_modes(recon: np.ndarray, avail: np.ndarray, x0: int, y0: int, log2_size: int,
                      c_idx: int, bit_depth: int, strong_intra_smoothing: bool = True,
                      out: np.ndarray | None = None) -> np.ndarray:
    """All 35 predictions (35, n, n) of one TB from one reference build (for mode decision);
    out[m] equals predict_intra(..., mode=m, ...)."""
    _check(recon, avail, log2_size)
    n = 1 << log2_size
    if out is None:
        out = np.empty((35, n, n), dtype=np.int32)
    _predict_all(recon, avail, int(x0), int(y0), n, log2_size, c_idx == 0, int(bit_depth),
                 bool(strong_intra_smoothing), out)
    return out


def reference_line(recon: np.ndarray, avail: np.ndarray, x0: int, y0: int, log2_size: int,
                   bit_depth: int) -> np.ndarray:
    """The substituted, unfiltered reference line (4n+1,) described in the module docstring."""
    n = 1 << log2_size
    line = np.empty(4 * n + 1, dtype=np.int32)
    _gather(recon, avail, int(x0), int(y0), n, int(bit_depth), line)
    return line


@njit(cache=True)
def chroma_mode_from(intra_chroma_pred_mode: int, luma_mode: int) -> int:
    """IntraPredModeC for 4:2:0 (Table 8-2): 0 -> planar, 1 -> 26, 2 -> 10, 3 -> DC, 4 -> the
    luma mode; a candidate equal to the luma mode is replaced by 34. (numba: the search and
    the slice writer use this one rule too.)"""
    if intra_chroma_pred_mode == 4:
        return luma_mode
    cand = (0, 26, 10, 1)[intra_chroma_pred_mode]
    return 34 if cand == luma_mode else cand


@njit(cache=True)
def most_probable_modes(cand_a: int, cand_b: int) -> tuple[int, int, int]:
    """candModeList of 8.4.2 from the left (A) and above (B) candidates. The caller passes
    INTRA_DC (1) for a neighbour that is unavailable, not intra, PCM, or (for B) in the CTB
    row above - the spec's substitutions. (numba: the search and the slice writer use this
    one rule too.)"""
    if cand_a == cand_b:
        if cand_a < 2:
            return (0, 1, 26)
        return (cand_a, 2 + ((cand_a + 29) % 32), 2 + ((cand_a - 2 + 1) % 32))
    if cand_a != 0 and cand_b != 0:
        return (cand_a, cand_b, 0)
    if cand_a != 1 and cand_b != 1:
        return (cand_a, cand_b, 1)
    return (cand_a, cand_b, 26)


def mode_syntax(mode: int, mpm: tuple[int, int, int]) -> tuple[bool, int]:
    """(prev_intra_luma_pred_flag, mpm_idx or rem_intra_luma_pred_mode) coding ``mode``."""
    if mode in mpm:
        return True, mpm.index(mode)
    return False, mode - sum(1 for c in mpm if c < mode)
