"""Motion estimation for one prediction block (numba): an integer search in the spirit of
HM's TZ search, then half- and quarter-sample refinement by Hadamard SATD (HM's
HadamardME), every candidate priced as distortion + lambda_motion * the mvd's bits.

The integer search starts from the best of its start points (the AMVP predictors, zero,
the merge candidates), walks expanding diamonds (distances 1, 2, 4, ... up to the search
range) around it, then repeats 1-sample diamond steps until no neighbour is cheaper. SAD
on every second row for blocks of 16 rows or more (as HM's subsampled SAD) keeps the
integer search cheap; the fractional refinement uses the standard's interpolation
(:func:`codeclab.codecs.hevc.inter.predict_block`), so the SATD it minimises is that of
the prediction the decoder forms.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from codeclab.codecs.hevc.inter import predict_block
from codeclab.codecs.hevc.satd import _satd_tiles, satd_scratch

__all__ = ["mvd_bits", "mv_cost", "motion_search"]

# the 8 neighbours of a diamond / square step, (dx, dy)
_SQUARE = np.array([[0, -1], [-1, 0], [1, 0], [0, 1], [-1, -1], [1, -1], [-1, 1], [1, 1]], dtype=np.int64)
_DIAMOND = np.array([[0, -2], [-1, -1], [1, -1], [-2, 0], [2, 0], [-1, 1], [1, 1], [0, 2]], dtype=np.int64)
for _t in (_SQUARE, _DIAMOND):
    _t.setflags(write=False)


@njit(cache=True)
def mvd_bits(d):  # pragma: no cover - numba
    """Bits of one mvd component in mvd_coding (flags counted as one bit each, as HM's
    motion cost does): greater0, greater1, the EG1 suffix and the sign."""
    a = abs(d)
    if a == 0:
        return 1
    if a == 1:
        return 3
    v = a - 2
    k = 1
    n = 0
    while v >= (1 << k):
        v -= 1 << k
        k += 1
        n += 1
    return 3 + n + 1 + k


@njit(cache=True)
def mv_cost(mvx, mvy, mvp, lam):  # pragma: no cover - numba
    """lambda * bits of the cheaper of the two predictors (quarter-sample mv and mvp)."""
    b0 = mvd_bits(mvx - mvp[0, 0]) + mvd_bits(mvy - mvp[0, 1])
    b1 = mvd_bits(mvx - mvp[1, 0]) + mvd_bits(mvy - mvp[1, 1])
    return lam * (min(b0, b1) + 1)


@njit(cache=True)
def _sad(org, ox, oy, ref, w, h, rx, ry, step):  # pragma: no cover - numba
    """SAD of org[oy:oy+h, ox:ox+w] against the reference block at integer (rx, ry) (clipped
    at the picture edges), every ``step``-th row (scaled back up)."""
    H, W = ref.shape
    s = 0
    if rx >= 0 and ry >= 0 and rx + w <= W and ry + h <= H:
        for i in range(0, h, step):
            o = org[oy + i]
            r = ref[ry + i]
            for j in range(w):
                s += abs(np.int64(o[ox + j]) - np.int64(r[rx + j]))
    else:
        for i in range(0, h, step):
            yy = min(max(ry + i, 0), H - 1)
            for j in range(w):
                xx = min(max(rx + j, 0), W - 1)
                s += abs(np.int64(org[oy + i, ox + j]) - np.int64(ref[yy, xx]))
    return s * step


@njit(cache=True)
def motion_search(org, ox, oy, ref, x, y, w, h, starts, nstart, mvp, lam, sr, bd, subpel, dscale):  # pragma: no cover
    """The best quarter-sample motion vector of the luma PB (x, y, w, h) in ``ref`` and its
    cost (dscale * SATD + lam * bits) against the target block org[oy:oy+h, ox:ox+w] (the
    source itself, or for a bi-prediction refinement twice the source minus the other
    list's prediction, with dscale 1/2). starts[:nstart]: quarter-sample start candidates;
    mvp: the two AMVP predictors; sr: integer search range around the best start; subpel:
    refine to quarter samples."""
    step = 2 if h >= 16 else 1
    # integer start: the cheapest start candidate (rounded to integer samples)
    bx, by = 0, 0
    best = -1.0
    for k in range(nstart):
        cx, cy = (starts[k, 0] + 2) >> 2, (starts[k, 1] + 2) >> 2
        c = dscale * _sad(org, ox, oy, ref, w, h, x + cx, y + cy, step) + mv_cost(cx << 2, cy << 2, mvp, lam)
        if best < 0 or c < best:
            best, bx, by = c, cx, cy
    cx0, cy0 = bx, by
    # expanding diamonds around the start
    dist = 1
    while dist <= sr:
        for k in range(8):
            px = cx0 + _DIAMOND[k, 0] * dist // 2 if dist > 1 else cx0 + _SQUARE[k, 0]
            py = cy0 + _DIAMOND[k, 1] * dist // 2 if dist > 1 else cy0 + _SQUARE[k, 1]
            c = dscale * _sad(org, ox, oy, ref, w, h, x + px, y + py, step) + mv_cost(px << 2, py << 2, mvp, lam)
            if c < best:
                best, bx, by = c, px, py
        dist *= 2
    # 1-sample refinement until no neighbour is cheaper
    for _ in range(64):
        moved = False
        qx, qy = bx, by
        for k in range(8):
            px, py = qx + _SQUARE[k, 0], qy + _SQUARE[k, 1]
            if abs(px - cx0) > sr or abs(py - cy0) > sr:
                continue
            c = dscale * _sad(org, ox, oy, ref, w, h, x + px, y + py, step) + mv_cost(px << 2, py << 2, mvp, lam)
            if c < best:
                best, bx, by = c, px, py
                moved = True
        if not moved:
            break
    mx, my = bx << 2, by << 2
    ob = org[oy:oy + h, ox:ox + w]
    pred = np.empty((h, w), dtype=np.int32)
    d = satd_scratch(w)
    tile = 8 if (w % 8 == 0 and h % 8 == 0) else 4
    predict_block(ref, x, y, w, h, mx, my, True, bd, pred)
    cost = dscale * _satd_tiles(ob, pred, tile, d) + mv_cost(mx, my, mvp, lam)
    if not subpel:
        return mx, my, cost
    for half in (2, 1):  # half-sample, then quarter-sample neighbours of the best so far
        qx, qy = mx, my
        for k in range(8):
            px, py = qx + _SQUARE[k, 0] * half, qy + _SQUARE[k, 1] * half
            predict_block(ref, x, y, w, h, px, py, True, bd, pred)
            c = dscale * _satd_tiles(ob, pred, tile, d) + mv_cost(px, py, mvp, lam)
            if c < cost:
                cost, mx, my = c, px, py
    return mx, my, cost
