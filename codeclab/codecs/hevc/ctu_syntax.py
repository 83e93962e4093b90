"""Slice data syntax above the residual level (7.3.8) in numba, read from a PictureState:
SAO, coding_quadtree, coding_unit with intra mode coding (MPM derivation 8.4.2) and, in P
and B slices, cu_skip_flag, pred_mode_flag, part_mode (2Nx2N, 2NxN, Nx2N) and each
prediction_unit (merge_idx, or inter_pred_idc and per list ref_idx, mvd_coding and mvp
flag), rqt_root_cbf, transform_tree / transform_unit with the 4:2:0 cbf rules,
end_of_slice_segment_flag.

The same functions write the slice (engine in write mode) and price a CU for the search
(engine in estimate mode, :mod:`codeclab.bitstream.cabac`): the syntax order lives only
here. :func:`write_slice_data` writes a whole picture in one call; residuals are
:func:`codeclab.codecs.hevc.residual.code_residual`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from codeclab.base.jit import borrow, unit
from codeclab.bitstream.cabac import encode_bin, encode_bypass, encode_bypass_bits, encode_terminate
from codeclab.codecs.hevc import tables as T
from codeclab.codecs.hevc.intra import chroma_mode_from, most_probable_modes
from codeclab.codecs.hevc.picture_state import ICU_PART, ICU_SKIP, MOT_MRG, MOT_MVD, MOT_MVPF, MOT_PF, MOT_RI
from codeclab.codecs.hevc.residual import C4_SCAN, SB_SCAN, code_residual
from codeclab.codecs.hevc.scan import scan_idx_for

__all__ = ["mpm_at", "write_cu", "write_ctu", "write_slice_data", "cu_chroma_mode",
           "cu_has_residual"]



@njit(cache=True)
def mpm_at(st, x, y, log2_ctb):  # pragma: no cover - numba
    """candModeList of 8.4.2 for the PB at luma (x, y): left, above (only inside the current
    CTB row); an unavailable neighbour counts as DC."""
    a = st.mode[y >> 2, (x - 1) >> 2] if x > 0 else -1
    b = -1
    if y > 0 and (y - 1) >= ((y >> log2_ctb) << log2_ctb):
        b = st.mode[(y - 1) >> 2, x >> 2]
    return most_probable_modes(np.int64(1) if a < 0 else np.int64(a), np.int64(1) if b < 0 else np.int64(b))


@njit(cache=True)
def cu_chroma_mode(st, x, y):  # pragma: no cover - numba
    """IntraPredModeC of the CU at (x, y) (from its first luma PB)."""
    return chroma_mode_from(st.cidx[y >> 3, x >> 3], st.mode[y >> 2, x >> 2])


@njit(cache=True)
def _any(a, y0, x0, m):  # pragma: no cover - numba
    for i in range(y0, y0 + m):
        for j in range(x0, x0 + m):
            if a[i, j]:
                return True
    return False


@unit
def _residual(eng, ctx, buf, st, c, x, y, log2, mode, sign_hiding, ts_enabled):  # pragma: no cover
    """residual_coding of the TB of component c at (x, y) (its own coordinates)."""
    n = 1 << log2
    code_residual(eng, ctx, buf, np.ascontiguousarray(st.lv[c][y:y + n, x:x + n]), log2, c,
                  scan_idx_for(mode, log2, c), sign_hiding, ts_enabled and log2 == 2,
                  st.ts[c][y >> 2, x >> 2], SB_SCAN, C4_SCAN)


@njit(cache=True)
def _push(stack, top, a, b, c, d, e=0, f=0, g=0, h=0):  # pragma: no cover - numba
    """Push a node (up to 8 ints) on an explicit depth-first stack; the new top."""
    stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3] = a, b, c, d
    if stack.shape[1] > 4:
        stack[top, 4], stack[top, 5], stack[top, 6], stack[top, 7] = e, f, g, h
    return top + 1


@unit
def _write_tt(eng, ctx, buf, st, x0, y0, log2_0, max_depth, intra_split, log2_max_tb, sign_hiding,
              ts_enabled, lmode0, cmode, inter):  # pragma: no cover - numba
    """transform_tree() of the CU at (x0, y0, 2^log2_0), depth first with an explicit stack
    (numba cannot cache recursive functions); per node: (x, y, log2, trafoDepth, index among
    its parent's four children, the parent's cbf_cb and cbf_cr, luma mode). ``inter``: an
    inter CU (cbf_luma of an unsplit root with no chroma cbf is inferred 1, 7.3.8.8)."""
    stack = np.empty((32, 8), dtype=np.int64)
    top = _push(stack, 0, x0, y0, log2_0, 0, 0, 0, 0, lmode0)
    while top > 0:
        top -= 1
        x, y, log2, depth, blk4, p_cb, p_cr, lmode = stack[top]
        split = st.tdepth[y >> 2, x >> 2] > depth
        if log2 <= log2_max_tb and log2 > 2 and depth < max_depth and not (intra_split and depth == 0):
            encode_bin(eng, ctx, buf, T.CTX_SPLIT_TF + 5 - log2, 1 if split else 0)
        cb, cr = p_cb, p_cr
        if log2 > 2:
            cb = cr = 0
            u, m = y >> 3, 1 << (log2 - 3)
            v = x >> 3
            if depth == 0 or p_cb:
                cb = 1 if _any(st.cbf[1], u, v, m) else 0
                encode_bin(eng, ctx, buf, T.CTX_CBF_CHROMA + depth, cb)
            if depth == 0 or p_cr:
                cr = 1 if _any(st.cbf[2], u, v, m) else 0
                encode_bin(eng, ctx, buf, T.CTX_CBF_CHROMA + depth, cr)
        if split:
            h = 1 << (log2 - 1)
            for k in range(3, -1, -1):  # pushed in reverse: popped in z-order
                cx = x + (h if k & 1 else 0)
                cy = y + (h if k & 2 else 0)
                m = lmode if not intra_split else st.mode[cy >> 2, cx >> 2]
                top = _push(stack, top, cx, cy, log2 - 1, depth + 1, k, cb, cr, m)
            continue
        luma = st.cbf[0][y >> 2, x >> 2] != 0
        if not inter or depth != 0 or cb or cr:
            encode_bin(eng, ctx, buf, T.CTX_CBF_LUMA + (1 if depth == 0 else 0), 1 if luma else 0)
        if luma:
            _residual(eng, ctx, buf, st, 0, x, y, log2, lmode, sign_hiding, ts_enabled)
        if log2 > 2:  # this node's chroma TBs
            xc, yc, lc = x >> 1, y >> 1, log2 - 1
        elif blk4 == 3:  # the parent 8x8's 4x4 chroma TBs, after its fourth luma TB
            xc, yc, lc = (x - 4) >> 1, (y - 4) >> 1, 2
        else:
            continue
        for c in (1, 2):
            if st.cbf[c][yc >> 2, xc >> 2]:
                _residual(eng, ctx, buf, st, c, xc, yc, lc, cmode, sign_hiding, ts_enabled)


@njit(cache=True)
def _write_tr(eng, ctx, buf, ci, nctx, v, cmax):  # pragma: no cover - numba
    """Truncated rice (cRiceParam 0) value v of cMax: the first nctx bins coded with contexts
    ci, ci + 1, ... (merge_idx: 1, ref_idx_lX: 2), the rest bypass."""
    for k in range(cmax):
        b = 1 if v > k else 0
        if k < nctx:
            encode_bin(eng, ctx, buf, ci + k, b)
        else:
            encode_bypass(eng, buf, b)
        if not b:
            break


@njit(cache=True)
def _write_eg1(eng, buf, v):  # pragma: no cover - numba
    """abs_mvd_minus2: first-order Exp-Golomb, bypass (9.3.3.3)."""
    k = 1
    while v >= (1 << k):
        encode_bypass(eng, buf, 1)
        v -= 1 << k
        k += 1
    encode_bypass(eng, buf, 0)
    while k > 0:
        k -= 1
        encode_bypass(eng, buf, (v >> k) & 1)


@njit(cache=True)
def _write_mvd(eng, ctx, buf, dx, dy):  # pragma: no cover - numba
    """mvd_coding() (7.3.8.9)."""
    ax, ay = abs(dx), abs(dy)
    encode_bin(eng, ctx, buf, T.CTX_MVD, 1 if ax > 0 else 0)
    encode_bin(eng, ctx, buf, T.CTX_MVD, 1 if ay > 0 else 0)
    if ax > 0:
        encode_bin(eng, ctx, buf, T.CTX_MVD + 1, 1 if ax > 1 else 0)
    if ay > 0:
        encode_bin(eng, ctx, buf, T.CTX_MVD + 1, 1 if ay > 1 else 0)
    if ax > 0:
        if ax > 1:
            _write_eg1(eng, buf, ax - 2)
        encode_bypass(eng, buf, 1 if dx < 0 else 0)
    if ay > 0:
        if ay > 1:
            _write_eg1(eng, buf, ay - 2)
        encode_bypass(eng, buf, 1 if dy < 0 else 0)


@njit(cache=True)
def _write_pu(eng, ctx, buf, st, x, y, w, h, depth, skip, nref, nref1, max_merge):  # pragma: no cover
    """prediction_unit() of the PB (x, y, w, h) of a CU at quadtree depth ``depth`` in a P
    slice (nref1 = 0) or a B slice (nref / nref1 active references in list 0 / 1)."""
    m = st.mot[y >> 2, x >> 2]
    mi = m[MOT_MRG]
    if not skip:
        encode_bin(eng, ctx, buf, T.CTX_MERGE_FLAG, 1 if mi >= 0 else 0)
    if mi >= 0:
        if max_merge > 1:
            _write_tr(eng, ctx, buf, T.CTX_MERGE_IDX, 1, mi, max_merge - 1)
        return
    pf = m[MOT_PF]
    if nref1 > 0:  # inter_pred_idc: PRED_BI "1", PRED_L0 "00", PRED_L1 "01" (8x4 / 4x8: "0" / "1")
        if w + h != 12:
            encode_bin(eng, ctx, buf, T.CTX_INTER_DIR + depth, 1 if pf == 3 else 0)
        if pf != 3:
            encode_bin(eng, ctx, buf, T.CTX_INTER_DIR + 4, 0 if pf == 1 else 1)
    for lx in range(2):
        if pf & (1 << lx):
            n = nref if lx == 0 else nref1
            if n > 1:
                _write_tr(eng, ctx, buf, T.CTX_REF_IDX, 2, m[MOT_RI + lx], n - 1)
            _write_mvd(eng, ctx, buf, m[MOT_MVD + 2 * lx], m[MOT_MVD + 2 * lx + 1])  # mvd_l1_zero_flag 0
            encode_bin(eng, ctx, buf, T.CTX_MVP_FLAG, m[MOT_MVPF + lx])


@njit(cache=True)
def cu_has_residual(st, x, y, log2):  # pragma: no cover - numba
    """rqt_root_cbf of the CU: any cbf in it."""
    m = max(1 << (log2 - 2), 1)
    mc = max(m >> 1, 1)
    return _any(st.cbf[0], y >> 2, x >> 2, m) or _any(st.cbf[1], y >> 3, x >> 3, mc) \
        or _any(st.cbf[2], y >> 3, x >> 3, mc)


@unit
def write_cu(eng, ctx, buf, st, x, y, log2, log2_ctb, max_tu_depth, log2_max_tb, sign_hiding,
             ts_enabled, slice_p, nref, nref1, max_merge, max_tu_depth_inter):  # pragma: no cover - numba
    """coding_unit() of the CU at (x, y, 2^log2) as the state holds it (``slice_p``: in a P
    or B slice, with nref / nref1 active references in list 0 / 1 - nref1 0 in a P slice -
    and MaxNumMergeCand max_merge); in estimate mode it prices the CU (the neighbours must
    hold the state it is coded in)."""
    if slice_p:
        skip = st.icu[y >> 3, x >> 3, ICU_SKIP] != 0
        inc = 0
        if x > 0 and st.icu[y >> 3, (x - 1) >> 3, ICU_SKIP]:
            inc += 1
        if y > 0 and st.icu[(y - 1) >> 3, x >> 3, ICU_SKIP]:
            inc += 1
        encode_bin(eng, ctx, buf, T.CTX_SKIP + inc, 1 if skip else 0)
        n = 1 << log2
        depth = st.cdepth[y >> 3, x >> 3]
        if skip:
            _write_pu(eng, ctx, buf, st, x, y, n, n, depth, True, nref, nref1, max_merge)
            return
        inter = st.mot[y >> 2, x >> 2, MOT_PF] != 0
        encode_bin(eng, ctx, buf, T.CTX_PRED_MODE, 0 if inter else 1)
        if inter:
            part = st.icu[y >> 3, x >> 3, ICU_PART]
            half = 1 << (log2 - 1)
            encode_bin(eng, ctx, buf, T.CTX_PART_MODE, 1 if part == 0 else 0)  # AMP off:
            if part != 0:                                                    # 1, 01, 00
                encode_bin(eng, ctx, buf, T.CTX_PART_MODE + 1, 1 if part == 1 else 0)
            if part == 0:
                _write_pu(eng, ctx, buf, st, x, y, n, n, depth, False, nref, nref1, max_merge)
            elif part == 1:
                _write_pu(eng, ctx, buf, st, x, y, n, half, depth, False, nref, nref1, max_merge)
                _write_pu(eng, ctx, buf, st, x, y + half, n, half, depth, False, nref, nref1, max_merge)
            else:
                _write_pu(eng, ctx, buf, st, x, y, half, n, depth, False, nref, nref1, max_merge)
                _write_pu(eng, ctx, buf, st, x + half, y, half, n, depth, False, nref, nref1, max_merge)
            root = cu_has_residual(st, x, y, log2)
            if part != 0 or st.mot[y >> 2, x >> 2, MOT_MRG] < 0:  # 2Nx2N merge: rqt_root_cbf inferred 1
                encode_bin(eng, ctx, buf, T.CTX_RQT_ROOT_CBF, 1 if root else 0)
            if root:
                _write_tt(eng, ctx, buf, st, x, y, log2, max_tu_depth_inter, False, log2_max_tb,
                          sign_hiding, ts_enabled, np.int64(0), np.int64(0), True)
            return
    nxn = st.nxn[y >> 3, x >> 3] != 0
    if log2 == 3:
        encode_bin(eng, ctx, buf, T.CTX_PART_MODE, 0 if nxn else 1)
    half = 1 << (log2 - 1)
    npu = 4 if nxn else 1
    flags = np.zeros(4, dtype=np.int64)
    vals = np.zeros(4, dtype=np.int64)
    for k in range(npu):
        px = x + (half if k & 1 else 0)
        py = y + (half if k & 2 else 0)
        m = st.mode[py >> 2, px >> 2]
        c0, c1, c2 = mpm_at(st, px, py, log2_ctb)
        if m == c0 or m == c1 or m == c2:
            flags[k] = 1
            vals[k] = 0 if m == c0 else (1 if m == c1 else 2)
        else:
            vals[k] = m - (1 if c0 < m else 0) - (1 if c1 < m else 0) - (1 if c2 < m else 0)
    for k in range(npu):
        encode_bin(eng, ctx, buf, T.CTX_PREV_INTRA, flags[k])
    for k in range(npu):
        v = vals[k]
        if flags[k]:
            encode_bypass(eng, buf, 1 if v > 0 else 0)
            if v > 0:
                encode_bypass(eng, buf, 1 if v > 1 else 0)
        else:
            encode_bypass_bits(eng, buf, v, 5)
    ci = st.cidx[y >> 3, x >> 3]
    if ci == 4:
        encode_bin(eng, ctx, buf, T.CTX_CHROMA_MODE, 0)
    else:
        encode_bin(eng, ctx, buf, T.CTX_CHROMA_MODE, 1)
        encode_bypass_bits(eng, buf, ci, 2)
    lmode = st.mode[y >> 2, x >> 2]
    _write_tt(eng, ctx, buf, st, x, y, log2, max_tu_depth + (1 if nxn else 0), nxn, log2_max_tb,
              sign_hiding, ts_enabled, lmode, chroma_mode_from(ci, lmode), False)


@unit
def write_ctu(eng, ctx, buf, st, x0, y0, W, H, log2_ctb, max_tu_depth, log2_max_tb, sign_hiding,
              ts_enabled, slice_p, nref, nref1, max_merge, max_tu_depth_inter):  # pragma: no cover - numba
    """coding_quadtree() of the CTU at (x0, y0), depth first with an explicit stack."""
    stack = np.empty((16, 4), dtype=np.int64)
    top = _push(stack, 0, x0, y0, log2_ctb, 0)
    while top > 0:
        top -= 1
        x, y, log2, depth = stack[top]
        if x >= W or y >= H:
            continue
        size = 1 << log2
        if x + size <= W and y + size <= H and log2 > 3:
            split = st.cdepth[y >> 3, x >> 3] > depth
            inc = 0
            if x > 0 and st.cdepth[y >> 3, (x - 1) >> 3] > depth:
                inc += 1
            if y > 0 and st.cdepth[(y - 1) >> 3, x >> 3] > depth:
                inc += 1
            encode_bin(eng, ctx, buf, T.CTX_SPLIT_CU + inc, 1 if split else 0)
        else:
            split = log2 > 3
        if split:
            h = size >> 1
            for k in range(3, -1, -1):
                top = _push(stack, top, x + (h if k & 1 else 0), y + (h if k & 2 else 0), log2 - 1,
                            depth + 1)
        else:
            write_cu(eng, ctx, buf, st, x, y, log2, log2_ctb, max_tu_depth, log2_max_tb, sign_hiding,
                     ts_enabled, slice_p, nref, nref1, max_merge, max_tu_depth_inter)


@unit
def _write_sao(eng, ctx, buf, r, q, luma, chroma, bit_depth, typ, offsets, band_position,
               eo_class, merge_left, merge_up):  # pragma: no cover - numba
    """sao() of CTB (r, q) (7.3.8.3) from loopfilter.SaoParams' arrays."""
    if q > 0:
        ml = merge_left[r, q]
        encode_bin(eng, ctx, buf, T.CTX_SAO_MERGE, 1 if ml else 0)
        if ml:
            return
    if r > 0:
        mu = merge_up[r, q]
        encode_bin(eng, ctx, buf, T.CTX_SAO_MERGE, 1 if mu else 0)
        if mu:
            return
    cmax = (1 << (min(bit_depth, 10) - 5)) - 1
    for ci in range(3):
        if (ci == 0 and not luma) or (ci > 0 and not chroma):
            continue
        t = typ[r, q, ci]
        if ci < 2:  # sao_type_idx_luma / _chroma: TR cMax 2, bin 0 context, bin 1 bypass
            if t == 0:
                encode_bin(eng, ctx, buf, T.CTX_SAO_TYPE, 0)
            else:
                encode_bin(eng, ctx, buf, T.CTX_SAO_TYPE, 1)
                encode_bypass(eng, buf, 0 if t == 1 else 1)
        if t == 0:
            continue
        for k in range(4):  # sao_offset_abs: TR bypass, cMax
            a = abs(offsets[r, q, ci, k])
            for _ in range(a):
                encode_bypass(eng, buf, 1)
            if a < cmax:
                encode_bypass(eng, buf, 0)
        if t == 1:
            for k in range(4):
                v = offsets[r, q, ci, k]
                if v != 0:
                    encode_bypass(eng, buf, 1 if v < 0 else 0)
            encode_bypass_bits(eng, buf, band_position[r, q, ci], 5)
        elif ci < 2:
            encode_bypass_bits(eng, buf, eo_class[r, q, ci], 2)


@njit(cache=True)
def write_slice_data(eng, ctx, buf, st, log2_ctb, max_tu_depth, log2_max_tb, sign_hiding,
                     ts_enabled, bit_depth, sao_luma, sao_chroma, typ, offsets, band_position,
                     eo_class, merge_left, merge_up, slice_p, nref, nref1, max_merge,
                     max_tu_depth_inter):  # pragma: no cover - numba
    """slice_segment_data() of the whole picture: per CTU its SAO parameters (when either
    slice flag is on), its coding quadtree and end_of_slice_segment_flag (the last one
    flushes). Its arguments are borrowed (``base.jit.borrow``): the caller owns them
    throughout, and every call below would otherwise count references to each array of the
    picture state."""
    eng, ctx, buf, st = borrow(eng), borrow(ctx), borrow(buf), borrow(st)
    typ, offsets, band_position = borrow(typ), borrow(offsets), borrow(band_position)
    eo_class, merge_left, merge_up = borrow(eo_class), borrow(merge_left), borrow(merge_up)
    H, W = st.org[0].shape
    ctb = 1 << log2_ctb
    rows, cols = -(-H // ctb), -(-W // ctb)
    for r in range(rows):
        for q in range(cols):
            if sao_luma or sao_chroma:
                _write_sao(eng, ctx, buf, r, q, sao_luma, sao_chroma, bit_depth, typ, offsets,
                           band_position, eo_class, merge_left, merge_up)
            write_ctu(eng, ctx, buf, st, q * ctb, r * ctb, W, H, log2_ctb, max_tu_depth,
                      log2_max_tb, sign_hiding, ts_enabled, slice_p, nref, nref1, max_merge, max_tu_depth_inter)
            encode_terminate(eng, buf, 1 if (r == rows - 1 and q == cols - 1) else 0)
