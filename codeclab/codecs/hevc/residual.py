"""residual_coding (7.3.8.11) with its context selection (9.3.4.2.4-9.3.4.2.7) in numba.

Sign data hiding: the coder omits the sign of the first nonzero level of every sub-block
whose first and last nonzero levels are more than 3 scan positions apart
(``residual_rules.hides_sign``); the quantizer (``residual_rules.hide_signs``) must have made
the parity of those sub-blocks right. The context derivations are residual_rules' too, the
ones RDOQ prices levels with.

One call codes one TB's levels; the same call estimates its rate when the engine is in
estimate mode (see :mod:`codeclab.bitstream.cabac`). Levels are int32 (n, n) [y, x].
"""

from __future__ import annotations

import numpy as np
from numba import njit

from codeclab.base.jit import borrow
from codeclab.bitstream.cabac import encode_bin, encode_bypass, encode_bypass_bits
from codeclab.codecs.hevc.residual_rules import (
    GROUP_IDX,
    MIN_IN_GROUP,
    csbf_ctx,
    hides_sign,
    last_prefix_ctx,
    last_suffix_len,
    prev_csbf,
    sig_ctx,
)
from codeclab.codecs.hevc.scan import coeff_scan_4x4, subblock_scan
from codeclab.codecs.hevc.tables import (
    CTX_CSBF,
    CTX_GT1,
    CTX_GT2,
    CTX_LAST_X,
    CTX_LAST_Y,
    CTX_SIG,
    CTX_TS_FLAG,
)

__all__ = ["SB_SCAN", "C4_SCAN", "code_residual", "write_residual"]


def _build_scans() -> tuple[np.ndarray, np.ndarray]:
    sb = np.zeros((3, 4, 64, 2), dtype=np.int64)
    c4 = np.zeros((3, 16, 2), dtype=np.int64)
    for s in range(3):
        c4[s] = coeff_scan_4x4(s)
        for log2 in range(2, 6):
            t = subblock_scan(log2, s)
            sb[s, log2 - 2, : t.shape[0]] = t
    sb.setflags(write=False)
    c4.setflags(write=False)
    return sb, c4


SB_SCAN, C4_SCAN = _build_scans()


@njit(cache=True)
def _code_last(eng, ctx, buf, base, pos, log2, c_idx):  # pragma: no cover - numba
    off, shift = last_prefix_ctx(log2, c_idx == 0)
    if c_idx:
        off += 15  # chroma's contexts follow luma's 15
    cmax = (log2 << 1) - 1
    prefix = GROUP_IDX[pos]
    for i in range(prefix):
        encode_bin(eng, ctx, buf, base + off + (i >> shift), 1)
    if prefix < cmax:
        encode_bin(eng, ctx, buf, base + off + (prefix >> shift), 0)
    return prefix


@njit(cache=True)
def code_residual(eng, ctx, buf, coef, log2, c_idx, scan_idx, sign_hiding, ts_allowed,
                  ts_flag, sb_scan, c4_scan):  # pragma: no cover - numba
    """Code residual_coding() of one TB with at least one nonzero level."""
    # borrowed (base.jit.borrow): each inlined encode_bin then counts no references
    eng, ctx, buf, coef = borrow(eng), borrow(ctx), borrow(buf), borrow(coef)
    n = 1 << log2
    nsb_w = n >> 2
    if ts_allowed:
        encode_bin(eng, ctx, buf, CTX_TS_FLAG + (1 if c_idx else 0), ts_flag)
    # last significant coefficient in forward scan order
    nsb = nsb_w * nsb_w
    last_sb = -1
    last_p = -1
    for i in range(nsb - 1, -1, -1):
        xs = sb_scan[scan_idx, log2 - 2, i, 0]
        ys = sb_scan[scan_idx, log2 - 2, i, 1]
        for p in range(15, -1, -1):
            if coef[ys * 4 + c4_scan[scan_idx, p, 1], xs * 4 + c4_scan[scan_idx, p, 0]] != 0:
                last_sb = i
                last_p = p
                break
        if last_sb >= 0:
            break
    if last_sb < 0:
        return
    lx = sb_scan[scan_idx, log2 - 2, last_sb, 0] * 4 + c4_scan[scan_idx, last_p, 0]
    ly = sb_scan[scan_idx, log2 - 2, last_sb, 1] * 4 + c4_scan[scan_idx, last_p, 1]
    cx, cy = lx, ly
    if scan_idx == 2:  # the syntax carries the swapped coordinates for vertical scans
        cx, cy = ly, lx
    px = _code_last(eng, ctx, buf, CTX_LAST_X, cx, log2, c_idx)
    py = _code_last(eng, ctx, buf, CTX_LAST_Y, cy, log2, c_idx)
    encode_bypass_bits(eng, buf, cx - MIN_IN_GROUP[px], last_suffix_len(px))
    encode_bypass_bits(eng, buf, cy - MIN_IN_GROUP[py], last_suffix_len(py))

    # one allocation for the three (this runs for every rate estimate of the RD search)
    work = np.zeros(nsb + 32, dtype=np.int64)
    csbf = work[:nsb]  # coded_sub_block_flag, raster yS * nsb_w + xS
    absl = work[nsb:nsb + 16]
    neg = work[nsb + 16:]
    c1 = 1
    for i in range(last_sb, -1, -1):
        xs = sb_scan[scan_idx, log2 - 2, i, 0]
        ys = sb_scan[scan_idx, log2 - 2, i, 1]
        nz = 0
        for p in range(16):
            v = coef[ys * 4 + c4_scan[scan_idx, p, 1], xs * 4 + c4_scan[scan_idx, p, 0]]
            absl[p] = v if v >= 0 else -v
            neg[p] = 1 if v < 0 else 0
            if v != 0:
                nz += 1
        infer_dc = 0
        g = ys * nsb_w + xs
        prev = prev_csbf(csbf, xs, ys, nsb_w)
        if i < last_sb and i > 0:
            flag = 1 if nz > 0 else 0
            encode_bin(eng, ctx, buf, CTX_CSBF + csbf_ctx(prev) + (2 if c_idx else 0), flag)
            csbf[g] = flag
            infer_dc = 1
        else:
            csbf[g] = 1
        if csbf[g] == 0:
            continue
        start = last_p - 1 if i == last_sb else 15
        for p in range(start, -1, -1):
            if p == 0 and infer_dc:
                break  # inferred significant
            xc = xs * 4 + c4_scan[scan_idx, p, 0]
            yc = ys * 4 + c4_scan[scan_idx, p, 1]
            sctx = sig_ctx(prev, xc, yc, log2, c_idx == 0, scan_idx)
            sig = 1 if absl[p] != 0 else 0
            encode_bin(eng, ctx, buf, CTX_SIG + (sctx if c_idx == 0 else 27 + sctx), sig)
            if sig:
                infer_dc = 0
        # levels
        ctx_set = 2 if (i > 0 and c_idx == 0) else 0
        if c1 == 0:
            ctx_set += 1
        c1 = 1
        g1_base = CTX_GT1 + (16 if c_idx else 0) + 4 * ctx_set
        n_g1 = 0
        last_g1_p = -1
        first_sig = 16
        last_sig = -1
        for p in range(15, -1, -1):
            if absl[p] == 0:
                continue
            if n_g1 < 8:
                f = 1 if absl[p] > 1 else 0
                encode_bin(eng, ctx, buf, g1_base + c1, f)
                n_g1 += 1
                if f:
                    c1 = 0
                    if last_g1_p == -1:
                        last_g1_p = p
                elif c1 > 0 and c1 < 3:
                    c1 += 1
            if last_sig == -1:
                last_sig = p
            first_sig = p
        hidden = 1 if (sign_hiding and hides_sign(first_sig, last_sig)) else 0
        if last_g1_p != -1:
            encode_bin(eng, ctx, buf, CTX_GT2 + ctx_set + (4 if c_idx else 0),
                       1 if absl[last_g1_p] > 2 else 0)
        for p in range(15, -1, -1):
            if absl[p] != 0 and not (hidden and p == first_sig):
                encode_bypass(eng, buf, neg[p])
        n_sig = 0
        rice = 0
        for p in range(15, -1, -1):
            a = absl[p]
            if a == 0:
                continue
            if n_sig < 8:
                base = 1 + (1 if a > 1 else 0)
                if p == last_g1_p:
                    base += 1 if a > 2 else 0
                    thr = 3
                else:
                    thr = 2
            else:
                base = 1
                thr = 1
            if base == thr:
                rem = a - base
                # coeff_abs_level_remaining: TR prefix (cMax 4 << rice) + EG(rice + 1)
                if rem < (4 << rice):
                    q = rem >> rice
                    for _ in range(q):
                        encode_bypass(eng, buf, 1)
                    encode_bypass(eng, buf, 0)
                    encode_bypass_bits(eng, buf, rem & ((1 << rice) - 1), rice)
                else:
                    for _ in range(4):
                        encode_bypass(eng, buf, 1)
                    v = rem - (4 << rice)
                    k = rice + 1
                    while v >= (1 << k):
                        encode_bypass(eng, buf, 1)
                        v -= 1 << k
                        k += 1
                    encode_bypass(eng, buf, 0)
                    encode_bypass_bits(eng, buf, v, k)
                if a > 3 * (1 << rice) and rice < 4:
                    rice += 1
            n_sig += 1


def write_residual(w, levels: np.ndarray, log2: int, c_idx: int, scan_idx: int,
                   sign_hiding: bool, ts_allowed: bool, ts_flag: bool) -> None:
    """Python entry: code one TB into a :class:`~codeclab.bitstream.cabac.CabacWriter`."""
    code_residual(w.eng, w.ctx, w.buf, np.ascontiguousarray(levels, dtype=np.int32), int(log2),
                  int(c_idx), int(scan_idx), bool(sign_hiding), bool(ts_allowed), int(ts_flag),
                  SB_SCAN, C4_SCAN)
