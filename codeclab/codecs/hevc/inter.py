"""Inter prediction to the letter of H.265 (numba): fractional-sample interpolation
(8.5.3.3.3), default weighted sample prediction (8.5.3.3.4.2), the merge candidate list
(8.5.3.2.2 - 8.5.3.2.5) and the luma motion vector predictors of AMVP (8.5.3.2.6 - 8.5.3.2.9),
temporal candidates included.

Everything reads the encoder's :class:`~codeclab.codecs.hevc.picture_state.PictureState`
(motion of the blocks coded so far) and an :class:`InterRefs` (the slice's reference
pictures and the collocated picture's motion), so the encoder derives exactly the lists the
decoder derives: the coded syntax (merge_idx, mvp flag, mvd) only selects from them.

Reference samples outside the picture are the nearest edge sample (the Clip3 of 8.5.3.3.3);
blocks are gathered with clipped coordinates, so no padded copies of the references exist.
Motion vectors are in quarter luma samples (eighth chroma samples in 4:2:0).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from codeclab.codecs.hevc.picture_state import MOT_MV, MOT_PF, MOT_RI

__all__ = ["InterRefs", "LUMA_TAPS", "CHROMA_TAPS", "predict_block", "predict_pb", "interp_block",
           "merge_candidates", "mvp_candidates", "scale_mv"]

# Table 8-11 / 8-12: the interpolation filters (index = fractional position)
LUMA_TAPS = np.array([[0, 0, 0, 64, 0, 0, 0, 0], [-1, 4, -10, 58, 17, -5, 1, 0],
                      [-1, 4, -11, 40, 40, -11, 4, -1], [0, 1, -5, 17, 58, -10, 4, -1]], dtype=np.int64)
CHROMA_TAPS = np.array([[0, 64, 0, 0], [-2, 58, 10, -2], [-4, 54, 16, -2], [-6, 46, 28, -4],
                        [-4, 36, 36, -4], [-4, 28, 46, -6], [-2, 16, 54, -4], [-2, 10, 58, -2]],
                       dtype=np.int64)
for _t in (LUMA_TAPS, CHROMA_TAPS):
    _t.setflags(write=False)


class InterRefs(NamedTuple):
    """The reference side of one P or B slice.

    ref_y[k], ref_c[k]: the distinct reference pictures after the in-loop filters (luma;
    Cb and Cr stacked); pic[X, i]: which of them is RefPicListX[i], ref_poc[X, i] its POC,
    nref[X] = num_ref_idx_lX_active (nref[1] = 0 in a P slice); col_*: the collocated
    picture's motion field per 4x4 luma unit as it was coded (pf: 0 = intra; mv: both
    lists; rpoc: POC of the picture each list referred to), used only when ``tmvp``;
    col_from_l0: collocated_from_l0_flag; no_backward: NoBackwardPredFlag (no reference
    follows the current picture in output order)."""

    poc: int
    ref_y: np.ndarray      # int32 (npic, H, W)
    ref_c: np.ndarray      # int32 (npic, 2, H/2, W/2)
    pic: np.ndarray        # int64 (2, 16)
    ref_poc: np.ndarray    # int64 (2, 16)
    nref: np.ndarray       # int64 (2,)
    max_merge: int         # MaxNumMergeCand
    tmvp: bool             # slice_temporal_mvp_enabled_flag
    col_poc: int
    col_pf: np.ndarray     # uint8 (H/4, W/4)
    col_mv: np.ndarray     # int32 (H/4, W/4, 4)
    col_rpoc: np.ndarray   # int64 (H/4, W/4, 2)
    col_from_l0: bool
    no_backward: bool


# ------------------------------------------------------------------ interpolation ---------

@njit(cache=True)
def interp_block(ref, x, y, w, h, mvx, mvy, luma, bd, out):  # pragma: no cover - numba
    """predSamplesLX (14-bit intermediate) of the w x h block at (x, y) of the plane ``ref``
    (its own component's coordinates) displaced by (mvx, mvy) (quarter luma / eighth chroma
    samples) into out[:h, :w]."""
    H, W = ref.shape
    if luma:
        fx, fy = mvx & 3, mvy & 3
        x0, y0 = x + (mvx >> 2), y + (mvy >> 2)
        taps = LUMA_TAPS
        nt = 8
    else:
        fx, fy = mvx & 7, mvy & 7
        x0, y0 = x + (mvx >> 3), y + (mvy >> 3)
        taps = CHROMA_TAPS
        nt = 4
    half = nt // 2 - 1
    shift1 = min(4, bd - 8)
    shift3 = max(2, 14 - bd)
    # the source window with clipped coordinates (8.5.3.3.3: xInt = Clip3(0, W - 1, ...))
    sw, sh = w + nt - 1, h + nt - 1
    src = np.empty((sh, sw), dtype=np.int64)
    inside = x0 - half >= 0 and y0 - half >= 0 and x0 - half + sw <= W and y0 - half + sh <= H
    for i in range(sh):
        yy = y0 - half + i
        if not inside:
            yy = min(max(yy, 0), H - 1)
        for j in range(sw):
            xx = x0 - half + j
            if not inside:
                xx = min(max(xx, 0), W - 1)
            src[i, j] = ref[yy, xx]
    if fx == 0 and fy == 0:
        for i in range(h):
            for j in range(w):
                out[i, j] = src[i + half, j + half] << shift3
        return
    if fy == 0:
        for i in range(h):
            for j in range(w):
                s = 0
                for k in range(nt):
                    s += taps[fx, k] * src[i + half, j + k]
                out[i, j] = s >> shift1
        return
    if fx == 0:
        for i in range(h):
            for j in range(w):
                s = 0
                for k in range(nt):
                    s += taps[fy, k] * src[i + k, j + half]
                out[i, j] = s >> shift1
        return
    tmp = np.empty((sh, w), dtype=np.int64)
    for i in range(sh):
        for j in range(w):
            s = 0
            for k in range(nt):
                s += taps[fx, k] * src[i, j + k]
            tmp[i, j] = s >> shift1
    for i in range(h):
        for j in range(w):
            s = 0
            for k in range(nt):
                s += taps[fy, k] * tmp[i + k, j]
            out[i, j] = s >> 6


@njit(cache=True)
def predict_block(ref, x, y, w, h, mvx, mvy, luma, bd, out):  # pragma: no cover - numba
    """Uni-prediction samples (default weighted prediction, 8.5.3.3.4.2) into out[:h, :w]."""
    tmp = np.empty((h, w), dtype=np.int64)
    interp_block(ref, x, y, w, h, mvx, mvy, luma, bd, tmp)
    shift = 14 - bd
    off = 1 << (shift - 1)
    maxv = (1 << bd) - 1
    for i in range(h):
        for j in range(w):
            out[i, j] = min(max((tmp[i, j] + off) >> shift, 0), maxv)


@njit(cache=True)
def predict_pb(refs, m, x, y, w, h, c, bd, out):  # pragma: no cover - numba
    """Component ``c`` (0 Y, 1 Cb, 2 Cr) of the prediction of the luma PB (x, y, w, h) with
    the motion ``m`` (motion-map channels) into out: one list's samples rounded, or both
    lists' averaged (default weighted sample prediction, 8.5.3.3.4.2)."""
    if c == 0:
        xs, ys, ws, hs = x, y, w, h
    else:
        xs, ys, ws, hs = x >> 1, y >> 1, w >> 1, h >> 1
    pf = m[MOT_PF]
    if pf != 3:
        lx = 0 if pf == 1 else 1
        k = refs.pic[lx, m[MOT_RI + lx]]
        plane = refs.ref_y[k] if c == 0 else refs.ref_c[k, c - 1]
        predict_block(plane, xs, ys, ws, hs, m[MOT_MV + 2 * lx], m[MOT_MV + 2 * lx + 1], c == 0, bd, out)
        return
    a = np.empty((hs, ws), dtype=np.int64)
    b = np.empty((hs, ws), dtype=np.int64)
    for lx in range(2):
        k = refs.pic[lx, m[MOT_RI + lx]]
        plane = refs.ref_y[k] if c == 0 else refs.ref_c[k, c - 1]
        interp_block(plane, xs, ys, ws, hs, m[MOT_MV + 2 * lx], m[MOT_MV + 2 * lx + 1], c == 0, bd,
                     a if lx == 0 else b)
    shift = 15 - bd
    off = 1 << (shift - 1)
    maxv = (1 << bd) - 1
    for i in range(hs):
        for j in range(ws):
            out[i, j] = min(max((a[i, j] + b[i, j] + off) >> shift, 0), maxv)


# ------------------------------------------------------------------ motion vector prediction

@njit(cache=True)
def _tdiv(a, b):  # pragma: no cover - numba
    """C integer division (truncating towards zero), as the specification's "/"."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@njit(cache=True)
def scale_mv(mv, td, tb):  # pragma: no cover - numba
    """8.5.3.2.7 (8-179 .. 8-183): a motion vector component scaled by POC distances."""
    td = min(max(td, -128), 127)
    tb = min(max(tb, -128), 127)
    tx = _tdiv(16384 + (abs(td) >> 1), td)
    f = min(max((tb * tx + 32) >> 6, -4096), 4095)
    p = f * mv
    s = 1 if p > 0 else (-1 if p < 0 else 0)
    return min(max(s * ((abs(p) + 127) >> 8), -32768), 32767)


@njit(cache=True)
def _avail(st, xn, yn):  # pragma: no cover - numba
    """The neighbouring PB covering luma (xn, yn) is available for motion prediction: inside
    the picture, already decoded (z-scan order, 6.4.1) and not intra (6.4.2)."""
    H, W = st.av[0].shape
    if xn < 0 or yn < 0 or xn >= W or yn >= H:
        return False
    return st.av[0][yn, xn] and st.mot[yn >> 2, xn >> 2, MOT_PF] != 0


@njit(cache=True)
def _same_motion(st, ya, xa, yb, xb):  # pragma: no cover - numba
    """The two 4x4 units have the same motion vectors and reference indices."""
    a, b = st.mot[ya, xa], st.mot[yb, xb]
    if a[MOT_PF] != b[MOT_PF]:
        return False
    for lx in range(2):
        if a[MOT_PF] & (1 << lx):
            if a[MOT_RI + lx] != b[MOT_RI + lx] or a[MOT_MV + 2 * lx] != b[MOT_MV + 2 * lx] \
                    or a[MOT_MV + 2 * lx + 1] != b[MOT_MV + 2 * lx + 1]:
                return False
    return True


@njit(cache=True)
def _col_mv(refs, u, v, lx):  # pragma: no cover - numba
    """(available, mvx, mvy, POC distance) of the collocated unit's motion chosen for list
    X (8.5.3.2.9): its only list, or with two lists, list X when no reference follows the
    current picture, else list N = collocated_from_l0_flag."""
    p = refs.col_pf[u, v]
    if p == 0:
        return False, 0, 0, 0
    if p == 1:
        c = 0
    elif p == 2:
        c = 1
    elif refs.no_backward:
        c = lx
    else:
        c = 1 if refs.col_from_l0 else 0
    return True, refs.col_mv[u, v, 2 * c], refs.col_mv[u, v, 2 * c + 1], refs.col_poc - refs.col_rpoc[u, v, c]


@njit(cache=True)
def _temporal(refs, st, x, y, w, h, lx, ref_idx, log2_ctb):  # pragma: no cover - numba
    """8.5.3.2.8: (available, mvx, mvy) of the temporal predictor of list X for refIdxLX
    (collocated PB bottom right, else centre, on the 16x16 grid of the compressed motion
    field), scaled by the POC distances."""
    H, W = st.av[0].shape
    cur_diff = refs.poc - refs.ref_poc[lx, ref_idx]
    for k in range(2):
        if k == 0:
            xc, yc = x + w, y + h
            if (y >> log2_ctb) != (yc >> log2_ctb) or yc >= H or xc >= W:
                continue
        else:
            xc, yc = x + (w >> 1), y + (h >> 1)
        ok, mvx, mvy, col_diff = _col_mv(refs, (yc >> 4) << 2, (xc >> 4) << 2, lx)
        if not ok:
            continue
        if col_diff == cur_diff or col_diff == 0:
            return True, mvx, mvy
        return True, scale_mv(mvx, col_diff, cur_diff), scale_mv(mvy, col_diff, cur_diff)
    return False, 0, 0


# the combined bi-predictive candidates' pairs (Table 8-6: l0CandIdx, l1CandIdx)
_COMB_L0 = np.array([0, 1, 0, 2, 1, 2, 0, 3, 1, 3, 2, 3], dtype=np.int64)
_COMB_L1 = np.array([1, 0, 2, 0, 2, 1, 3, 0, 3, 1, 3, 2], dtype=np.int64)
for _t in (_COMB_L0, _COMB_L1):
    _t.setflags(write=False)


@njit(cache=True)
def merge_candidates(st, refs, x, y, w, h, log2_ctb, part, part_idx, out):  # pragma: no cover
    """mergeCandList of the PB (x, y, w, h), partition ``part_idx`` of a CU with PartMode
    ``part`` (0 2Nx2N, 1 2NxN, 2 Nx2N): out[i] holds candidate i's motion in the channels
    of the motion map (MOT_PF, MOT_MV.., MOT_RI..) for i < MaxNumMergeCand (Log2ParMrgLevel
    2, so no shared lists); the 8x4 / 4x8 rule (a bi candidate predicts from list 0 only)
    applied. Returns the count."""
    out[:, :] = 0
    out[:, MOT_RI] = -1
    out[:, MOT_RI + 1] = -1
    b_slice = refs.nref[1] > 0
    n = 0
    # spatial candidates A1, B1, B0, A0, B2 (8.5.3.2.3) as 4x4 unit coordinates
    ua1, va1 = (y + h - 1) >> 2, (x - 1) >> 2
    ub1, vb1 = (y - 1) >> 2, (x + w - 1) >> 2
    ub0, vb0 = (y - 1) >> 2, (x + w) >> 2
    ua0, va0 = (y + h) >> 2, (x - 1) >> 2
    ub2, vb2 = (y - 1) >> 2, (x - 1) >> 2
    # availableN (raw) decides the pruning comparisons, availableFlagN the list entries
    # the second PB of an Nx2N / 2NxN CU never merges with the first (A1 / B1 unavailable)
    ra1 = _avail(st, x - 1, y + h - 1) and not (part == 2 and part_idx == 1)
    rb1 = _avail(st, x + w - 1, y - 1) and not (part == 1 and part_idx == 1)
    rb0 = _avail(st, x + w, y - 1)
    ra0 = _avail(st, x - 1, y + h)
    rb2 = _avail(st, x - 1, y - 1)
    a1 = ra1
    b1 = rb1 and not (ra1 and _same_motion(st, ub1, vb1, ua1, va1))
    b0 = rb0 and not (rb1 and _same_motion(st, ub0, vb0, ub1, vb1))
    a0 = ra0 and not (ra1 and _same_motion(st, ua0, va0, ua1, va1))
    b2 = rb2 and not (ra1 and _same_motion(st, ub2, vb2, ua1, va1)) \
        and not (rb1 and _same_motion(st, ub2, vb2, ub1, vb1)) and not (a1 and b1 and b0 and a0)
    for ok, u, v in ((a1, ua1, va1), (b1, ub1, vb1), (b0, ub0, vb0), (a0, ua0, va0), (b2, ub2, vb2)):
        if ok and n < refs.max_merge:
            out[n, MOT_PF:MOT_RI + 2] = st.mot[u, v, MOT_PF:MOT_RI + 2]
            n += 1
    if refs.tmvp and n < refs.max_merge:  # temporal candidate, refIdxLXCol = 0 (8.5.3.2.2)
        ok0, mx0, my0 = _temporal(refs, st, x, y, w, h, 0, 0, log2_ctb)
        ok1, mx1, my1 = False, 0, 0
        if b_slice:
            ok1, mx1, my1 = _temporal(refs, st, x, y, w, h, 1, 0, log2_ctb)
        if ok0 or ok1:
            if ok0:
                out[n, MOT_MV], out[n, MOT_MV + 1], out[n, MOT_RI] = mx0, my0, 0
            if ok1:
                out[n, MOT_MV + 2], out[n, MOT_MV + 3], out[n, MOT_RI + 1] = mx1, my1, 0
            out[n, MOT_PF] = (1 if ok0 else 0) | (2 if ok1 else 0)
            n += 1
    if b_slice and 1 < n < refs.max_merge:  # combined bi-predictive candidates (8.5.3.2.4)
        orig = n
        for k in range(orig * (orig - 1)):
            if n == refs.max_merge:
                break
            c0, c1 = out[_COMB_L0[k]], out[_COMB_L1[k]]
            if c0[MOT_PF] & 1 and c1[MOT_PF] & 2 and (
                    refs.ref_poc[0, c0[MOT_RI]] != refs.ref_poc[1, c1[MOT_RI + 1]]
                    or c0[MOT_MV] != c1[MOT_MV + 2] or c0[MOT_MV + 1] != c1[MOT_MV + 3]):
                out[n, MOT_PF] = 3
                out[n, MOT_MV], out[n, MOT_MV + 1], out[n, MOT_RI] = c0[MOT_MV], c0[MOT_MV + 1], c0[MOT_RI]
                out[n, MOT_MV + 2], out[n, MOT_MV + 3] = c1[MOT_MV + 2], c1[MOT_MV + 3]
                out[n, MOT_RI + 1] = c1[MOT_RI + 1]
                n += 1
    nz = min(refs.nref[0], refs.nref[1]) if b_slice else refs.nref[0]
    z = 0
    while n < refs.max_merge:  # zero candidates (8.5.3.2.5)
        r = z if z < nz else 0
        out[n, MOT_PF] = 3 if b_slice else 1
        out[n, MOT_RI] = r
        if b_slice:
            out[n, MOT_RI + 1] = r
        n += 1
        z += 1
    if w + h == 12:  # 8.5.3.2.2: an 8x4 / 4x8 PB is never bi-predicted
        for i in range(n):
            if out[i, MOT_PF] == 3:
                out[i, MOT_PF] = 1
                out[i, MOT_RI + 1] = -1
                out[i, MOT_MV + 2] = 0
                out[i, MOT_MV + 3] = 0
    return n


@njit(cache=True)
def _cand_same(st, refs, u, v, lx, target_poc):  # pragma: no cover - numba
    """A neighbour's motion vector that refers to the target picture (list X first, then
    the other list)."""
    m = st.mot[u, v]
    for k in range(2):
        c = lx if k == 0 else 1 - lx
        if m[MOT_PF] & (1 << c) and refs.ref_poc[c, m[MOT_RI + c]] == target_poc:
            return True, m[MOT_MV + 2 * c], m[MOT_MV + 2 * c + 1]
    return False, 0, 0


@njit(cache=True)
def _cand_scaled(st, refs, u, v, lx, target_poc):  # pragma: no cover - numba
    """A neighbour's motion vector (list X first, then the other list) scaled to the
    target picture (all our references are short-term)."""
    m = st.mot[u, v]
    for k in range(2):
        c = lx if k == 0 else 1 - lx
        if m[MOT_PF] & (1 << c):
            npoc = refs.ref_poc[c, m[MOT_RI + c]]
            mvx, mvy = m[MOT_MV + 2 * c], m[MOT_MV + 2 * c + 1]
            if npoc != target_poc:
                td, tb = refs.poc - npoc, refs.poc - target_poc
                mvx, mvy = scale_mv(mvx, td, tb), scale_mv(mvy, td, tb)
            return True, mvx, mvy
    return False, 0, 0


@njit(cache=True)
def mvp_candidates(st, refs, x, y, w, h, lx, ref_idx, log2_ctb, out):  # pragma: no cover - numba
    """mvpListLX (two entries, out[i] = (mvx, mvy)) of the PB (x, y, w, h) for refIdxLX."""
    target = refs.ref_poc[lx, ref_idx]
    a_pos = ((x - 1, y + h), (x - 1, y + h - 1))            # A0, A1
    b_pos = ((x + w, y - 1), (x + w - 1, y - 1), (x - 1, y - 1))  # B0, B1, B2
    a_av = np.zeros(2, dtype=np.bool_)
    b_av = np.zeros(3, dtype=np.bool_)
    for k in range(2):
        a_av[k] = _avail(st, a_pos[k][0], a_pos[k][1])
    for k in range(3):
        b_av[k] = _avail(st, b_pos[k][0], b_pos[k][1])
    scaled_flag = a_av[0] or a_av[1]
    fa, ax, ay = False, 0, 0
    for k in range(2):
        if a_av[k] and not fa:
            fa, ax, ay = _cand_same(st, refs, a_pos[k][1] >> 2, a_pos[k][0] >> 2, lx, target)
    for k in range(2):
        if a_av[k] and not fa:
            fa, ax, ay = _cand_scaled(st, refs, a_pos[k][1] >> 2, a_pos[k][0] >> 2, lx, target)
    fb, bx, by = False, 0, 0
    for k in range(3):
        if b_av[k] and not fb:
            fb, bx, by = _cand_same(st, refs, b_pos[k][1] >> 2, b_pos[k][0] >> 2, lx, target)
    if not scaled_flag and fb:
        fa, ax, ay = True, bx, by
    if not scaled_flag:
        fb, bx, by = False, 0, 0
        for k in range(3):
            if b_av[k] and not fb:
                fb, bx, by = _cand_scaled(st, refs, b_pos[k][1] >> 2, b_pos[k][0] >> 2, lx, target)
    n = 0
    if fa:
        out[n, 0], out[n, 1] = ax, ay
        n += 1
    if fb and not (fa and ax == bx and ay == by):
        out[n, 0], out[n, 1] = bx, by
        n += 1
    if n < 2 and refs.tmvp:
        ok, cx, cy = _temporal(refs, st, x, y, w, h, lx, ref_idx, log2_ctb)
        if ok:
            out[n, 0], out[n, 1] = cx, cy
            n += 1
    while n < 2:
        out[n, 0], out[n, 1] = 0, 0
        n += 1
