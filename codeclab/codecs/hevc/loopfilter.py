"""HEVC in-loop filters of an all-intra picture: deblocking (8.7.2) and SAO (8.7.3), numba.

Edge maps (shared with the encoder): two bool arrays in 4x4 *luma* units, shape
(H/4, W/4) of the coded (padded) picture:
  ``vert[y4, x4]`` - a transform or prediction block boundary runs along the left side of
  the 4x4 unit (x4, y4), i.e. the vertical edge x = 4*x4 for rows 4*y4 .. 4*y4+3;
  ``hor[y4, x4]``  - the same for the top side (horizontal edge y = 4*y4).
:func:`mark_block_edges` marks the left and top sides of a block; marking every TB (and PB)
of the picture this way marks every internal boundary (a block's right side is its
neighbour's left side). Only edges on the 8x8 luma grid are filtered and picture edges
never are; with intra CUs on both sides every marked edge has bS = 2.
``qp_map[y4, x4]`` holds QpY of the CU covering each 4x4 luma unit.

Deblocking assumes slice_deblocking_filter_disabled_flag = 0, beta/tc offsets 0, no PCM
and no transquant bypass, one slice/tile (or loop filtering across them enabled).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from codeclab.codecs.hevc.quant import _QPC_TABLE

__all__ = [
    "BETA_TABLE",
    "TC_TABLE",
    "new_edge_maps",
    "mark_block_edges",
    "deblock",
]

# Table 8-12: beta' for Q = 0..51 and tC' for Q = 0..53
BETA_TABLE = np.array([0] * 16 + [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 22, 24, 26,
                                  28, 30, 32, 34, 36, 38, 40, 42, 44, 46, 48, 50, 52, 54, 56, 58,
                                  60, 62, 64], dtype=np.int32)
TC_TABLE = np.array([0] * 18 + [1] * 9 + [2] * 4 + [3] * 4 + [4] * 3 + [5, 5, 6, 6, 7, 8, 9, 10, 11,
                                                                         13, 14, 16, 18, 20, 22, 24],
                    dtype=np.int32)
# qPi -> QpC for 4:2:0 (Table 8-10), indexable by qPi + 64 for qPi in -64..63
_QPC_LUT = np.array([q if q < 30 else (_QPC_TABLE[q - 30] if q <= 43 else q - 6)
                     for q in range(-64, 64)], dtype=np.int32)
for _t in (BETA_TABLE, TC_TABLE, _QPC_LUT):
    _t.setflags(write=False)


def new_edge_maps(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Empty (vert, hor) edge maps for a coded luma picture of height x width (multiples of 8)."""
    if height % 8 or width % 8:
        raise ValueError(f"coded picture {width}x{height} is not a multiple of 8")
    return (np.zeros((height // 4, width // 4), dtype=bool),
            np.zeros((height // 4, width // 4), dtype=bool))


def mark_block_edges(vert: np.ndarray, hor: np.ndarray, x0: int, y0: int, w: int, h: int) -> None:
    """Mark the left and top sides of the luma block (x0, y0, w, h) (multiples of 4)."""
    vert[y0 >> 2:(y0 + h) >> 2, x0 >> 2] = True
    hor[y0 >> 2, x0 >> 2:(x0 + w) >> 2] = True


@njit(cache=True)
def _luma_edges(pl, edge, qp, bit_depth, beta_t, tc_t):  # pragma: no cover - numba
    """Filter the vertical edges of pl (pass transposed views for horizontal edges)."""
    h4, w4 = edge.shape
    maxv = (1 << bit_depth) - 1
    sh = bit_depth - 8
    for y4 in range(h4):
        for x4 in range(2, w4, 2):
            if not edge[y4, x4]:
                continue
            qpl = (qp[y4, x4 - 1] + qp[y4, x4] + 1) >> 1
            beta = beta_t[min(max(qpl, 0), 51)] << sh
            tc = tc_t[min(max(qpl + 2, 0), 53)] << sh  # bS = 2: Q = qPL + 2 * (bS - 1)
            if tc == 0:
                continue  # neither filter can change a sample
            x = 4 * x4
            y0 = 4 * y4
            y3 = y0 + 3
            dp0 = abs(pl[y0, x - 3] - 2 * pl[y0, x - 2] + pl[y0, x - 1])
            dp3 = abs(pl[y3, x - 3] - 2 * pl[y3, x - 2] + pl[y3, x - 1])
            dq0 = abs(pl[y0, x + 2] - 2 * pl[y0, x + 1] + pl[y0, x])
            dq3 = abs(pl[y3, x + 2] - 2 * pl[y3, x + 1] + pl[y3, x])
            dpq0 = dp0 + dq0
            dpq3 = dp3 + dq3
            dp = dp0 + dp3
            dq = dq0 + dq3
            if dpq0 + dpq3 >= beta:
                continue  # dE = 0
            strong = True
            for yy, dpq in ((y0, dpq0), (y3, dpq3)):  # 8.7.2.5.6 with dpq = 2 * dpqK
                if not (2 * dpq < (beta >> 2)
                        and abs(pl[yy, x - 4] - pl[yy, x - 1]) + abs(pl[yy, x] - pl[yy, x + 3]) < (beta >> 3)
                        and abs(pl[yy, x - 1] - pl[yy, x]) < ((5 * tc + 1) >> 1)):
                    strong = False
            dep = dp < ((beta + (beta >> 1)) >> 3)
            deq = dq < ((beta + (beta >> 1)) >> 3)
            tc2 = 2 * tc
            for y in range(y0, y0 + 4):
                p0 = pl[y, x - 1]
                p1 = pl[y, x - 2]
                p2 = pl[y, x - 3]
                q0 = pl[y, x]
                q1 = pl[y, x + 1]
                q2 = pl[y, x + 2]
                if strong:
                    p3 = pl[y, x - 4]
                    q3 = pl[y, x + 3]
                    pl[y, x - 1] = min(max((p2 + 2 * p1 + 2 * p0 + 2 * q0 + q1 + 4) >> 3, p0 - tc2), p0 + tc2)
                    pl[y, x - 2] = min(max((p2 + p1 + p0 + q0 + 2) >> 2, p1 - tc2), p1 + tc2)
                    pl[y, x - 3] = min(max((2 * p3 + 3 * p2 + p1 + p0 + q0 + 4) >> 3, p2 - tc2), p2 + tc2)
                    pl[y, x] = min(max((p1 + 2 * p0 + 2 * q0 + 2 * q1 + q2 + 4) >> 3, q0 - tc2), q0 + tc2)
                    pl[y, x + 1] = min(max((p0 + q0 + q1 + q2 + 2) >> 2, q1 - tc2), q1 + tc2)
                    pl[y, x + 2] = min(max((p0 + q0 + q1 + 3 * q2 + 2 * q3 + 4) >> 3, q2 - tc2), q2 + tc2)
                else:
                    delta = (9 * (q0 - p0) - 3 * (q1 - p1) + 8) >> 4
                    if abs(delta) >= tc * 10:
                        continue
                    delta = min(max(delta, -tc), tc)
                    pl[y, x - 1] = min(max(p0 + delta, 0), maxv)
                    pl[y, x] = min(max(q0 - delta, 0), maxv)
                    if dep:
                        dlt = min(max((((p2 + p0 + 1) >> 1) - p1 + delta) >> 1, -(tc >> 1)), tc >> 1)
                        pl[y, x - 2] = min(max(p1 + dlt, 0), maxv)
                    if deq:
                        dlt = min(max((((q2 + q0 + 1) >> 1) - q1 - delta) >> 1, -(tc >> 1)), tc >> 1)
                        pl[y, x + 1] = min(max(q1 + dlt, 0), maxv)


@njit(cache=True)
def _chroma_edges(pl, edge, qp, qp_offset, bit_depth, tc_t, qpc_lut):  # pragma: no cover - numba
    """4:2:0 chroma, vertical edges on the 8x8 chroma grid (16 luma), 4-row segments."""
    h4, w4 = edge.shape  # luma 4x4 units
    maxv = (1 << bit_depth) - 1
    sh = bit_depth - 8
    hc = pl.shape[0]
    for yc in range(0, hc, 4):
        y4 = yc >> 1  # bS and QP of the luma segment at luma row 2 * yc
        for x4 in range(4, w4, 4):
            if not edge[y4, x4]:
                continue
            qpi = ((qp[y4, x4 - 1] + qp[y4, x4] + 1) >> 1) + qp_offset
            qpc = qpc_lut[min(max(qpi, -64), 63) + 64]
            tc = tc_t[min(max(qpc + 2, 0), 53)] << sh
            if tc == 0:
                continue
            x = 2 * x4
            for y in range(yc, min(yc + 4, hc)):
                p0 = pl[y, x - 1]
                p1 = pl[y, x - 2]
                q0 = pl[y, x]
                q1 = pl[y, x + 1]
                delta = min(max((((q0 - p0) << 2) + p1 - q1 + 4) >> 3, -tc), tc)
                pl[y, x - 1] = min(max(p0 + delta, 0), maxv)
                pl[y, x] = min(max(q0 - delta, 0), maxv)


def deblock(planes: list[np.ndarray], edges: tuple[np.ndarray, np.ndarray], qp_map: np.ndarray,
            bit_depth: int, chroma_format_idc: int = 1, cb_qp_offset: int = 0,
            cr_qp_offset: int = 0, bit_depth_chroma: int | None = None) -> list[np.ndarray]:
    """Deblocked copies (int32) of the reconstructed planes [Y] or [Y, Cb, Cr].

    Vertical edges of the whole picture first, then horizontal edges on that result
    (8.7.2). ``edges`` = (vert, hor) maps and ``qp_map`` as described in the module
    docstring; cb/cr_qp_offset are the PPS offsets (cQpPicOffset; slice offsets do not
    enter deblocking). Only 4:2:0 (and 4:0:0) chroma is supported.
    """
    vert, hor = edges
    luma = np.array(planes[0], dtype=np.int32)
    h, w = luma.shape
    shape4 = (h // 4, w // 4)
    if h % 8 or w % 8 or vert.shape != shape4 or hor.shape != shape4 or qp_map.shape != shape4:
        raise ValueError(f"deblock: luma {w}x{h} needs (H/4, W/4) = {shape4} edge and QP maps, "
                         f"got {vert.shape}, {hor.shape}, {qp_map.shape}")
    if chroma_format_idc not in (0, 1):
        raise NotImplementedError(f"deblock: chroma_format_idc {chroma_format_idc} (only 4:2:0)")
    qp = np.ascontiguousarray(qp_map, dtype=np.int32)
    vert = np.ascontiguousarray(vert, dtype=np.bool_)
    hor = np.ascontiguousarray(hor, dtype=np.bool_)
    _luma_edges(luma, vert, qp, bit_depth, BETA_TABLE, TC_TABLE)
    _luma_edges(luma.T, hor.T, qp.T, bit_depth, BETA_TABLE, TC_TABLE)
    out = [luma]
    bdc = bit_depth if bit_depth_chroma is None else bit_depth_chroma
    for c_idx, off in ((1, cb_qp_offset), (2, cr_qp_offset))[: len(planes) - 1]:
        c = np.array(planes[c_idx], dtype=np.int32)
        if c.shape != (h // 2, w // 2):
            raise ValueError(f"deblock: chroma plane {c_idx} is {c.shape}, expected {(h // 2, w // 2)}")
        _chroma_edges(c, vert, qp, off, bdc, TC_TABLE, _QPC_LUT)
        _chroma_edges(c.T, hor.T, qp.T, off, bdc, TC_TABLE, _QPC_LUT)
        out.append(c)
    return out
