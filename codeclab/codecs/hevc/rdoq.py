"""HM's rate-distortion optimised quantization (TComTrQuant::xRateDistOptQuant) in numba.

One block at a time, in HM's order:

1. per coefficient, in reverse scan order from the first non-zero SQ level, choose among
   HM's candidates (0 when round(x) < 3, round(x) - 1, round(x); ``xGetCodedLevel``) the one
   of least ``err^2 * errScale + lambda * rate``, the rate counting sig_coeff_flag (spec
   sigCtx incl. the pattern of coded neighbouring sub-blocks), greater1 (ctxSet /
   greater1Ctx as HM tracks them), greater2, coeff_abs_level_remaining with the Rice
   adaptation and the sign (``xGetICRate``);
2. per 4x4 group between the first and the last coded one: coded_sub_block_flag cost,
   and zeroing the whole group when that is cheaper;
3. the last-position pass: for each candidate last coefficient (stopping at the first
   level > 1), cost with its last_sig_coeff prefix/suffix rate and the cbf; the best wins;
4. sign data hiding with HM's rate deltas (``residual_rules.hide_signs``, rated: the RDOQ
   variant of ``signBitHidingHDQ``).

The contexts (sigCtx, coded_sub_block_flag, last position) are residual_rules', the ones
residual.py codes the levels with.

Units are HM's: rates in 1/32768 bit, distortion scaled by ``errScale = 2^15 /
(2^(2 transformShift) Q^2 2^(2 (bitDepth-8)))`` so that cost = 2^15 (SSE_8bit + lambda bits).

Rate state: per block a (K, 2) int32 table ``bits[k, bin]`` of fractional bits (1/32768)
for the contexts of one component in the layout below (RATE_*), built from CABAC states by
:func:`codeclab.codecs.hevc.quantizer.rate_table`. Chroma uses the first entries of each
group (spec ctxInc minus the chroma offset).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from codeclab.base.jit import borrow
from codeclab.codecs.hevc.residual_rules import (
    GROUP_IDX,
    csbf_ctx,
    hide_signs,
    last_prefix_ctx,
    last_suffix_len,
    level_delta,
    prev_csbf,
    sig_ctx,
)
from codeclab.codecs.hevc.scalar_quant import LEVEL_SCALES, QUANT_SCALES, qp_prime, quant_shift
from codeclab.codecs.hevc.scan import scan_tables

__all__ = [
    "RATE_CSBF",
    "RATE_SIG",
    "RATE_GT1",
    "RATE_GT2",
    "RATE_LAST_X",
    "RATE_LAST_Y",
    "RATE_CBF",
    "RATE_K",
    "err_scale",
    "rdoq_blocks",
]

# per-block rate layout (offset of each syntax element's contexts; luma counts)
RATE_CSBF = 0      # coded_sub_block_flag: 2 (csbfCtx 0..1)
RATE_SIG = 2       # sig_coeff_flag: 27 luma (sigCtx 0..26), chroma uses 15 (ctxInc - 27)
RATE_GT1 = 29      # coeff_abs_level_greater1_flag: 16 luma, chroma 8 (ctxInc - 16)
RATE_GT2 = 45      # coeff_abs_level_greater2_flag: 4 luma, chroma 2 (ctxInc - 4)
RATE_LAST_X = 49   # last_sig_coeff_x_prefix: 15 luma, chroma 3 (ctxInc - 15)
RATE_LAST_Y = 64   # last_sig_coeff_y_prefix: 15 luma, chroma 3
RATE_CBF = 79      # the one cbf_luma / cbf_cb / cbf_cr context this block's flag uses
RATE_K = 80

_QS = np.array(QUANT_SCALES, dtype=np.int64)
_IQS = np.array(LEVEL_SCALES, dtype=np.int64)
_INF = 1.7976931348623157e308


def err_scale(qp: int, log2_size: int, bit_depth: int) -> float:
    """HM's errScale (flat scaling list): 2^15 / (2^(2 tshift) Q^2 2^(2 (bitDepth - 8)))."""
    qpp = qp + 6 * (bit_depth - 8)
    tshift = 15 - bit_depth - log2_size
    q = QUANT_SCALES[qpp % 6]
    return 2.0 ** 15 * 2.0 ** (-2 * tshift) / (q * q) / 2.0 ** (2 * (bit_depth - 8))


@njit(cache=True, inline="always")
def _ic_rate(level, one_ctx, abs_ctx, rice, c1_idx, c2_idx, rb):  # pragma: no cover - numba
    """xGetICRate: bits (1/32768) of a non-zero level's sign, gt1, gt2 and remaining."""
    if level == 0:
        return 0
    rate = 32768  # sign, bypass
    base = (2 + (1 if c2_idx < 1 else 0)) if c1_idx < 8 else 1
    if level >= base:
        sym = level - base
        if sym < (3 << rice):
            rate += ((sym >> rice) + 1 + rice) << 15
        else:
            length = rice
            sym -= 3 << rice
            while sym >= (1 << length):
                sym -= 1 << length
                length += 1
            rate += (3 + length + 1 - rice + length) << 15
        if c1_idx < 8:
            rate += rb[RATE_GT1 + one_ctx, 1]
            if c2_idx < 1:
                rate += rb[RATE_GT2 + abs_ctx, 1]
    elif level == 1:
        rate += rb[RATE_GT1 + one_ctx, 0]
    else:  # level == 2 below base 3
        rate += rb[RATE_GT1 + one_ctx, 1] + rb[RATE_GT2 + abs_ctx, 0]
    return rate


@njit(cache=True)
def _last_prefix_bits(rb, off, log2n, luma, out):  # pragma: no cover - numba
    """out[g] = bits of last_sig_coeff_{x,y}_prefix = g (TR, cMax = 2 log2n - 1)."""
    ctx_off, shift = last_prefix_ctx(log2n, luma)
    gmax = 2 * log2n - 1
    acc = 0
    for g in range(gmax + 1):
        ctx = off + ctx_off + (g >> shift)
        out[g] = acc + (rb[ctx, 0] if g < gmax else 0)
        acc += rb[ctx, 1]


@njit(cache=True)
def rdoq_work():  # pragma: no cover - numba
    """The work arrays of _rdoq_block for blocks up to 32x32 (float, int64): allocated once
    per batch of blocks instead of per block."""
    return np.empty(3 * 1024 + 64), np.empty(5 * 1024 + 64 + 20, dtype=np.int64)


@njit(cache=True)
def _rdoq_block(coef, log2n, scan, cg_scan, luma, scan_idx, qbits, qscale, escale, lam, rb,
                sbh, rd_factor, out, fwork, iwork):  # pragma: no cover - numba
    """RDOQ of one block. coef: (n*n,) int raster; scan: raster index per scan position;
    cg_scan: raster group index per group scan position; out: (n*n,) int32 signed levels;
    fwork / iwork: rdoq_work()'s arrays (cleared here)."""
    # borrowed (base.jit.borrow): the inlined rate of each level then counts no references
    coef, scan, cg_scan, rb, out = borrow(coef), borrow(scan), borrow(cg_scan), borrow(rb), borrow(out)
    n = 1 << log2n
    nn = n * n
    ncg = nn >> 4
    wg = n >> 2
    fw = borrow(fwork)[:3 * nn + ncg]  # the ten work arrays as views of the two
    fw[:] = 0.0
    cost_coeff, cost_sig, cost_coeff0 = fw[:nn], fw[nn:2 * nn], fw[2 * nn:3 * nn]
    cost_cg_sig = fw[3 * nn:]
    iw = borrow(iwork)[:5 * nn + ncg + 20]
    iw[:] = 0
    rate_up, rate_down, sig_delta = iw[:nn], iw[nn:2 * nn], iw[2 * nn:3 * nn]
    delta_u, lvl, cg_sig = iw[3 * nn:4 * nn], iw[4 * nn:5 * nn], iw[5 * nn:5 * nn + ncg]
    lx, ly = iw[5 * nn + ncg:5 * nn + ncg + 10], iw[5 * nn + ncg + 10:]
    half = np.int64(1) << (qbits - 1)

    ctx_set = 0
    c1 = 1
    c2 = 0
    c1_idx = 0
    c2_idx = 0
    rice = 0
    base_cost = 0.0
    uncoded = 0.0
    last_sp = -1
    cg_last = -1
    for cgp in range(ncg - 1, -1, -1):
        cgblk = cg_scan[cgp]
        cgy = cgblk // wg
        cgx = cgblk - cgy * wg
        nnz_before0 = 0
        coded_level_dist = 0.0
        uncoded_dist = 0.0
        sig_cost = 0.0
        sig_cost0 = 0.0
        pattern = prev_csbf(cg_sig, cgx, cgy, wg)
        for pin in range(15, -1, -1):
            sp = cgp * 16 + pin
            blk = scan[sp]
            lev_d = np.int64(abs(coef[blk])) * qscale
            max_abs = min(np.int64(32767), (lev_d + half) >> qbits)
            err = float(lev_d)
            cost_coeff0[sp] = err * err * escale
            uncoded += cost_coeff0[sp]
            lvl[blk] = max_abs
            if max_abs > 0 and last_sp < 0:
                last_sp = sp
                ctx_set = 2 if (luma and (sp >> 4) > 0) else 0
                cg_last = cgp
            if last_sp >= 0:
                one_ctx = 4 * ctx_set + c1
                abs_ctx = ctx_set
                is_last = sp == last_sp
                sctx = 0 if is_last else sig_ctx(pattern, blk & (n - 1), blk >> log2n, log2n,
                                                 luma, scan_idx)
                # xGetCodedLevel
                best = 0
                csig = 0.0
                if not is_last and max_abs < 3:
                    csig = lam * rb[RATE_SIG + sctx, 0]
                    cost = cost_coeff0[sp] + csig
                else:
                    cost = _INF
                cur_sig = 0.0
                if not is_last:
                    cur_sig = lam * rb[RATE_SIG + sctx, 1]
                    sig_delta[blk] = rb[RATE_SIG + sctx, 1] - rb[RATE_SIG + sctx, 0]
                if max_abs > 0:
                    min_abs = max_abs - 1 if max_abs > 1 else 1
                    for a in range(max_abs, min_abs - 1, -1):
                        e = float(lev_d - (np.int64(a) << qbits))
                        c = (e * e * escale
                             + lam * _ic_rate(a, one_ctx, abs_ctx, rice, c1_idx, c2_idx, rb)
                             + cur_sig)
                        if c < cost:
                            best = a
                            cost = c
                            csig = cur_sig
                cost_coeff[sp] = cost
                cost_sig[sp] = csig
                level = best
                delta_u[blk] = level_delta(lev_d, level, qbits)
                if level > 0:
                    now = _ic_rate(level, one_ctx, abs_ctx, rice, c1_idx, c2_idx, rb)
                    rate_up[blk] = _ic_rate(level + 1, one_ctx, abs_ctx, rice, c1_idx, c2_idx, rb) - now
                    rate_down[blk] = _ic_rate(level - 1, one_ctx, abs_ctx, rice, c1_idx, c2_idx, rb) - now
                else:
                    rate_up[blk] = rb[RATE_GT1 + one_ctx, 0]
                lvl[blk] = level
                base_cost += cost_coeff[sp]
                base_level = (2 + (1 if c2_idx < 1 else 0)) if c1_idx < 8 else 1
                if level >= base_level and level > 3 * (1 << rice):
                    rice = min(rice + 1, 4)
                if level >= 1:
                    c1_idx += 1
                if level > 1:
                    c1 = 0
                    if c2 < 2:
                        c2 += 1
                    c2_idx += 1
                elif c1 < 3 and c1 > 0 and level > 0:
                    c1 += 1
                if sp % 16 == 0 and sp > 0:
                    ctx_set = (2 if (luma and ((sp - 1) >> 4) > 0) else 0) + (1 if c1 == 0 else 0)
                    c1 = 1
                    c2 = 0
                    c1_idx = 0
                    c2_idx = 0
                    rice = 0
            else:
                base_cost += cost_coeff0[sp]
            sig_cost += cost_sig[sp]
            if pin == 0:
                sig_cost0 = cost_sig[sp]
            if lvl[blk] != 0:
                cg_sig[cgblk] = 1
                coded_level_dist += cost_coeff[sp] - cost_sig[sp]
                uncoded_dist += cost_coeff0[sp]
                if pin != 0:
                    nnz_before0 += 1
        if cg_last >= 0:
            if cgp > 0:
                cctx = RATE_CSBF + csbf_ctx(pattern)
                if cg_sig[cgblk] == 0:
                    base_cost += lam * rb[cctx, 0] - sig_cost
                    cost_cg_sig[cgp] = lam * rb[cctx, 0]
                elif cgp < cg_last:
                    if nnz_before0 == 0:
                        base_cost -= sig_cost0
                        sig_cost -= sig_cost0
                    cost_zero = base_cost
                    base_cost += lam * rb[cctx, 1]
                    cost_zero += lam * rb[cctx, 0]
                    cost_cg_sig[cgp] = lam * rb[cctx, 1]
                    cost_zero += uncoded_dist - coded_level_dist - sig_cost
                    if cost_zero < base_cost:
                        cg_sig[cgblk] = 0
                        base_cost = cost_zero
                        cost_cg_sig[cgp] = lam * rb[cctx, 0]
                        for pin in range(15, -1, -1):
                            sp = cgp * 16 + pin
                            blk = scan[sp]
                            if lvl[blk] != 0:
                                lvl[blk] = 0
                                cost_coeff[sp] = cost_coeff0[sp]
                                cost_sig[sp] = 0.0
            else:
                cg_sig[cgblk] = 1

    for i in range(nn):
        out[i] = 0
    if last_sp < 0:
        return
    # ===== last position =====
    _last_prefix_bits(rb, RATE_LAST_X, log2n, luma, lx)
    _last_prefix_bits(rb, RATE_LAST_Y, log2n, luma, ly)
    best_cost = uncoded + lam * rb[RATE_CBF, 0]
    base_cost += lam * rb[RATE_CBF, 1]
    best_last_p1 = 0
    found = False
    for cgp in range(cg_last, -1, -1):
        cgblk = cg_scan[cgp]
        base_cost -= cost_cg_sig[cgp]
        if cg_sig[cgblk] != 0:
            for pin in range(15, -1, -1):
                sp = cgp * 16 + pin
                if sp > last_sp:
                    continue
                blk = scan[sp]
                if lvl[blk] != 0:
                    py = blk >> log2n
                    px = blk - (py << log2n)
                    if scan_idx == 2:  # vertical scan codes the swapped position
                        px, py = py, px
                    gx = GROUP_IDX[px]
                    gy = GROUP_IDX[py]
                    bits = lx[gx] + ly[gy] + 32768 * (last_suffix_len(gx) + last_suffix_len(gy))
                    total = base_cost + lam * bits - cost_sig[sp]
                    if total < best_cost:
                        best_last_p1 = sp + 1
                        best_cost = total
                    if lvl[blk] > 1:
                        found = True
                        break
                    base_cost -= cost_coeff[sp]
                    base_cost += cost_coeff0[sp]
                else:
                    base_cost -= cost_sig[sp]
            if found:
                break
    for sp in range(best_last_p1):
        blk = scan[sp]
        out[blk] = -lvl[blk] if coef[blk] < 0 else lvl[blk]
    if sbh:
        hide_signs(out, coef, scan, delta_u, rate_up, rate_down, sig_delta, rd_factor, True)


@njit(cache=True)
def _rdoq_batch(coefs, log2n, scans, cg_scans, luma, scan_idx, qbits, qscale, escale, lam, rbs,
                sbh, rd_factor, out):  # pragma: no cover - numba
    fw, iw = rdoq_work()
    for b in range(coefs.shape[0]):
        s = scan_idx[b]
        _rdoq_block(coefs[b], log2n, scans[s], cg_scans[s], luma[b], s, qbits[b], qscale[b],
                    escale[b], lam[b], rbs[b], sbh, rd_factor[b], out[b], fw, iw)


def rdoq_blocks(coeffs: np.ndarray, log2_size: int, c_idx: np.ndarray, scan_idx: np.ndarray,
                qp: np.ndarray, lam: np.ndarray, bits: np.ndarray, bit_depth: int,
                sign_hiding: bool) -> np.ndarray:
    """RDOQ of B blocks of one size: coeffs (B, n, n) int, per-block c_idx/scan_idx/qp/lam (B,),
    bits (B, RATE_K, 2) fractional-bit tables (1/32768). Returns (B, n, n) int32 signed levels.

    qp is the signalled QP of the block's component (chroma already mapped); lam the
    lambda of that component (:mod:`lambdas`). Transform-skip blocks need nothing special:
    their coefficients carry the same transform shift (HM, no extended precision).
    """
    c = np.ascontiguousarray(coeffs, dtype=np.int32)
    nb = c.shape[0]
    n = 1 << log2_size
    if c.shape[1:] != (n, n):
        raise ValueError(f"rdoq_blocks: coeffs {c.shape} are not (B, {n}, {n})")
    b = np.ascontiguousarray(bits, dtype=np.int64)
    if b.shape != (nb, RATE_K, 2):
        raise ValueError(f"rdoq_blocks: bits {b.shape} are not ({nb}, {RATE_K}, 2)")
    scans, cgs = scan_tables(log2_size)
    qp = np.broadcast_to(np.asarray(qp, dtype=np.int64), (nb,))
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), (nb,)).copy()
    if np.any(lam < 0):
        raise ValueError("rdoq_blocks: lambda must be >= 0")
    qpp = qp_prime(qp, bit_depth)
    qbits = quant_shift(qp, log2_size, bit_depth)  # per block (works on arrays)
    qscale = _QS[qpp % 6]
    tshift = 15 - bit_depth - log2_size
    escale = 2.0 ** (15 - 2 * tshift - 2 * (bit_depth - 8)) / qscale.astype(np.float64) ** 2
    with np.errstate(divide="ignore"):
        rdf = _IQS[qpp % 6].astype(np.float64) ** 2 * 4.0 ** (qpp // 6) / lam / 16 \
            / 4.0 ** (bit_depth - 8) + 0.5
    # capped so that rd_factor * deltaU (|deltaU| < 2^24) cannot overflow when lambda -> 0
    rd_factor = np.where(np.isfinite(rdf), np.minimum(rdf, 2.0 ** 36), 2.0 ** 36).astype(np.int64)
    luma = np.broadcast_to(np.asarray(c_idx), (nb,)) == 0
    si = np.broadcast_to(np.asarray(scan_idx, dtype=np.int64), (nb,))
    out = np.empty((nb, n * n), dtype=np.int32)
    _rdoq_batch(c.reshape(nb, n * n), log2_size, scans, cgs, np.ascontiguousarray(luma),
                np.ascontiguousarray(si), qbits, qscale, escale, lam, b, bool(sign_hiding),
                rd_factor, out)
    return out.reshape(nb, n, n)
