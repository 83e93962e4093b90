"""The rules of residual_coding that the coder and the quantizers must apply alike, in numba.

residual.py codes levels with these contexts, rdoq.py prices levels with the same contexts,
and the quantizers (rdoq.py, ``quantizer.sign_hiding_hdq``) fix the level parity that
residual.py relies on when it omits a sign. Two copies that drifted apart would give wrong
rates, or a stream whose hidden signs decode wrong, without any error; so each rule exists
here only:

- the coded_sub_block_flag neighbourhood (prevCsbf) and its context (9.3.4.2.4);
- sigCtx of sig_coeff_flag (9.3.4.2.5, with ctxIdxMap for 4x4 TBs);
- the contexts of last_sig_coeff_{x,y}_prefix (9.3.4.2.3), the prefix of a position and the
  length of its suffix;
- sign data hiding: which 4x4 group hides a sign (7.3.8.11), and HM's parity fix with its
  two cost models (``signBitHidingHDQ`` for SQ levels, the rate-aware one of RDOQ).

Context indices are the spec's ctxInc within one component: the chroma offsets (sig_coeff_flag
27, coded_sub_block_flag 2, last prefix 15) are added by the coder; rdoq.py's rate layout
stores chroma's contexts from 0. Blocks are flat (n*n,) raster arrays, groups raster-indexed
yS * (n/4) + xS, scans as in :func:`codeclab.codecs.hevc.scan.scan_tables`.

numba's cache (``cache=True``) is keyed by each kernel's own file: after editing this module,
delete the cached kernels of the modules that import it (``__pycache__/*.nbi``, ``*.nbc``
under codecs/hevc), or they keep running the old rules.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "CTX_IDX_MAP",
    "GROUP_IDX",
    "MIN_IN_GROUP",
    "prev_csbf",
    "csbf_ctx",
    "sig_ctx",
    "last_prefix_ctx",
    "last_suffix_len",
    "hides_sign",
    "level_delta",
    "hide_signs",
]

# Table 9-50 ctxIdxMap: sigCtx of a 4x4 TB from its raster position (yC << 2) + xC
CTX_IDX_MAP = np.array([0, 1, 4, 5, 2, 3, 4, 5, 6, 6, 8, 8, 7, 7, 8, 8], dtype=np.int64)
CTX_IDX_MAP.setflags(write=False)
# last_sig_coeff_{x,y}_prefix of a position 0..31, and the first position of each prefix
GROUP_IDX = np.array([0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7,
                      8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9], dtype=np.int64)
GROUP_IDX.setflags(write=False)
MIN_IN_GROUP = np.array([0, 1, 2, 3, 4, 6, 8, 12, 16, 24], dtype=np.int64)
MIN_IN_GROUP.setflags(write=False)
_MAX_I64 = np.iinfo(np.int64).max
_MIN_SDH_DISTANCE = 4  # first and last non-zero level of a group this far apart in scan order


@njit(cache=True, inline="always")
def prev_csbf(cg_flags, cgx, cgy, wg):  # pragma: no cover - numba
    """prevCsbf of 9.3.4.2.5: the right group's coded_sub_block_flag + 2 x the lower one's
    (0 outside the TB); cg_flags (wg*wg,) raster, wg = groups per row."""
    r = cg_flags[cgy * wg + cgx + 1] if cgx < wg - 1 else 0
    b = cg_flags[(cgy + 1) * wg + cgx] if cgy < wg - 1 else 0
    return r + 2 * b


@njit(cache=True, inline="always")
def csbf_ctx(prev):  # pragma: no cover - numba
    """ctxInc of coded_sub_block_flag (9.3.4.2.4, luma; chroma adds 2): Min(csbfR + csbfB, 1)."""
    return 1 if prev != 0 else 0


@njit(cache=True, inline="always")
def sig_ctx(prev, x, y, log2n, luma, scan_idx):  # pragma: no cover - numba
    """sigCtx of 9.3.4.2.5 for the coefficient at (x, y) of a 2^log2n TB whose group has the
    neighbourhood ``prev`` (:func:`prev_csbf`); chroma without its +27 offset."""
    if log2n == 2:
        return CTX_IDX_MAP[(y << 2) + x]
    if x + y == 0:
        return 0
    xp = x & 3
    yp = y & 3
    if prev == 0:
        s = xp + yp
        sig = 2 if s == 0 else (1 if s < 3 else 0)
    elif prev == 1:
        sig = 2 if yp == 0 else (1 if yp == 1 else 0)
    elif prev == 2:
        sig = 2 if xp == 0 else (1 if xp == 1 else 0)
    else:
        sig = 2
    if luma:
        if (x >> 2) + (y >> 2) > 0:
            sig += 3
        if log2n == 3:
            sig += 9 if scan_idx == 0 else 15
        else:
            sig += 21
    else:
        sig += 9 if log2n == 3 else 12
    return sig


@njit(cache=True, inline="always")
def last_prefix_ctx(log2n, luma):  # pragma: no cover - numba
    """(ctxOffset, ctxShift) of last_sig_coeff_{x,y}_prefix (9.3.4.2.3): bin i of the prefix
    uses context ctxOffset + (i >> ctxShift); chroma without its +15 offset."""
    if luma:
        return 3 * (log2n - 2) + ((log2n - 1) >> 2), (log2n + 1) >> 2
    return 0, log2n - 2


@njit(cache=True, inline="always")
def last_suffix_len(prefix):  # pragma: no cover - numba
    """Bypass bins of last_sig_coeff_{x,y}_suffix after a prefix (none up to prefix 3)."""
    return (prefix >> 1) - 1 if prefix > 3 else 0


@njit(cache=True, inline="always")
def hides_sign(first_nz, last_nz):  # pragma: no cover - numba
    """Sign data hiding (7.3.8.11): a 4x4 group whose first and last non-zero levels (scan
    positions in the group) are 4 or more apart omits the sign of its first non-zero level;
    the parity of the group's level sum carries it."""
    return last_nz - first_nz >= _MIN_SDH_DISTANCE


@njit(cache=True, inline="always")
def level_delta(lev_d, level, qbits):  # pragma: no cover - numba
    """HM's deltaU: |coefficient| * quantScale (``lev_d``) minus the level's reconstruction
    level << qbits, in 1/256 of a quantization step; both parity fixes cost moves with it."""
    return (lev_d - (np.int64(level) << qbits)) >> (qbits - 8)


@njit(cache=True)
def hide_signs(lv, coef, scan, delta_u, rate_up, rate_down, sig_delta, rd_factor,
               rated):  # pragma: no cover - numba
    """HM's parity fix for sign data hiding, in place on one block's signed levels ``lv``.

    lv, coef (n*n,) raster (levels, and the coefficients whose signs a new level takes);
    scan (n*n,) raster index per scan position; delta_u (n*n,) :func:`level_delta` of each
    level. A block whose absolute levels sum to less than 2 is left alone (as in HM). Per
    4x4 group that hides a sign (:func:`hides_sign`) and whose level sum has the wrong parity
    for its first level's sign, the one +-1 change of least cost is made: a zero may become
    non-zero only with its coefficient's sign if it lies before the first non-zero level,
    the first level may not drop from 1 to 0, and in the last coded group nothing after the
    last non-zero level moves.

    rated False: ``signBitHidingHDQ``, cost = rd_factor * -+deltaU (pass rd_factor 1; the
    rate arrays are not read). rated True: RDOQ's rule, cost = rd_factor * -+deltaU plus the
    rate change: rate_up / rate_down (fractional bits of level +-1), sig_delta (sig flag 1
    minus 0), one bit for a new sign, four bits saved by removing the last level."""
    nn = lv.shape[0]
    abs_sum = 0
    for i in range(nn):
        abs_sum += abs(lv[i])
    if abs_sum < 2:
        return
    last_cg = -1
    for sub in range((nn >> 4) - 1, -1, -1):
        pos = sub << 4
        first_nz = 16
        last_nz = -1
        for k in range(15, -1, -1):
            if lv[scan[pos + k]] != 0:
                last_nz = k
                break
        for k in range(16):
            if lv[scan[pos + k]] != 0:
                first_nz = k
                break
        s = 0
        for k in range(first_nz, last_nz + 1):
            s += lv[scan[pos + k]]
        if last_nz >= 0 and last_cg == -1:
            last_cg = 1
        if hides_sign(first_nz, last_nz):
            signbit = 0 if lv[scan[pos + first_nz]] > 0 else 1
            if signbit != (s & 1):
                min_cost = _MAX_I64
                min_pos = -1
                final_change = 0
                start = last_nz if last_cg == 1 else 15
                for k in range(start, -1, -1):
                    blk = scan[pos + k]
                    q = lv[blk]
                    du = delta_u[blk]
                    if q != 0:
                        aq = abs(q)
                        cost_up = rd_factor * (-du)
                        cost_down = rd_factor * du
                        if rated:
                            cost_up += rate_up[blk]
                            cost_down += rate_down[blk]
                            if aq == 1:
                                cost_down -= sig_delta[blk]
                            if last_cg == 1 and last_nz == k and aq == 1:
                                cost_down -= 4 << 15
                        if cost_up < cost_down:
                            cur = cost_up
                            change = 1
                        else:
                            change = -1
                            if k == first_nz and aq == 1:
                                cur = _MAX_I64
                            else:
                                cur = cost_down
                    else:
                        cur = rd_factor * (-abs(du))
                        if rated:
                            cur += (1 << 15) + rate_up[blk] + sig_delta[blk]
                        change = 1
                        if k < first_nz:
                            if (0 if coef[blk] >= 0 else 1) != signbit:
                                cur = _MAX_I64
                    if cur < min_cost:
                        min_cost = cur
                        final_change = change
                        min_pos = blk
                if lv[min_pos] == 32767 or lv[min_pos] == -32768:
                    final_change = -1
                if coef[min_pos] >= 0:
                    lv[min_pos] += final_change
                else:
                    lv[min_pos] -= final_change
        if last_cg == 1:
            last_cg = 0
