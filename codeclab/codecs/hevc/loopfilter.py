"""HEVC in-loop filters: deblocking (8.7.2) and SAO (8.7.3), numba.

Decoder order: deblock the whole picture, then SAO reads the deblocked picture.

Edge maps (shared with the encoder): two bool arrays in 4x4 *luma* units, shape
(H/4, W/4) of the coded (padded) picture:
  ``vert[y4, x4]`` - a transform or prediction block boundary runs along the left side of
  the 4x4 unit (x4, y4), i.e. the vertical edge x = 4*x4 for rows 4*y4 .. 4*y4+3;
  ``hor[y4, x4]``  - the same for the top side (horizontal edge y = 4*y4).
:func:`mark_block_edges` marks the left and top sides of a block; marking every TB (and PB)
of the picture this way marks every internal boundary (a block's right side is its
neighbour's left side). Only edges on the 8x8 luma grid are filtered and picture edges
never are. :func:`deblock` takes either these bool maps (every marked edge has bS = 2, as
between intra CUs) or maps of bS values 0..2 per edge unit (:func:`boundary_strengths`, for
pictures with inter CUs). ``qp_map[y4, x4]`` holds QpY of the CU covering each 4x4 luma unit.

Deblocking assumes slice_deblocking_filter_disabled_flag = 0, beta/tc offsets 0, no PCM
and no transquant bypass, one slice/tile (or loop filtering across them enabled).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from codeclab.codecs.hevc.scalar_quant import _QPC_TABLE

__all__ = [
    "BETA_TABLE",
    "TC_TABLE",
    "new_edge_maps",
    "mark_block_edges",
    "deblock",
    "boundary_strengths",
    "SAO_OFF",
    "SAO_BAND",
    "SAO_EDGE",
    "SaoParams",
    "sao_max_offset",
    "sao_apply",
    "sao_estimate",
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
            bs = np.int64(edge[y4, x4])
            qpl = (qp[y4, x4 - 1] + qp[y4, x4] + 1) >> 1
            beta = beta_t[min(max(qpl, 0), 51)] << sh
            tc = tc_t[min(max(qpl + 2 * (bs - 1), 0), 53)] << sh  # Q = qPL + 2 * (bS - 1)
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
            if edge[y4, x4] != 2:  # chroma edges are filtered where bS = 2 only
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
    (8.7.2). ``edges`` = (vert, hor) edge or bS maps and ``qp_map`` as described in the module
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
    if vert.dtype == np.bool_:  # edge maps: bS 2 wherever marked
        vert, hor = vert.astype(np.uint8) * 2, hor.astype(np.uint8) * 2
    vert = np.ascontiguousarray(vert, dtype=np.uint8)
    hor = np.ascontiguousarray(hor, dtype=np.uint8)
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


@njit(cache=True)
def _mv_far(mv, py, px, a, qy, qx, b):  # pragma: no cover - numba
    """List a's vector of unit p and list b's of unit q differ by a whole luma sample or more."""
    return abs(mv[py, px, 2 * a] - mv[qy, qx, 2 * b]) >= 4 or abs(mv[py, px, 2 * a + 1] - mv[qy, qx, 2 * b + 1]) >= 4


@njit(cache=True)
def _motion_bs(pf, mv, rpoc, py, px, qy, qx):  # pragma: no cover - numba
    """1 where the motion of two inter units differs as 8.7.2.4 counts it (other reference
    pictures - whichever list names them -, another number of vectors, or vectors a whole
    sample apart), else 0."""
    p, q = pf[py, px], pf[qy, qx]
    n_p = (p & 1) + (p >> 1)
    if n_p != (q & 1) + (q >> 1):
        return 1
    if n_p == 1:
        a, b = (0 if p == 1 else 1), (0 if q == 1 else 1)
        if rpoc[py, px, a] != rpoc[qy, qx, b]:
            return 1
        return 1 if _mv_far(mv, py, px, a, qy, qx, b) else 0
    p0, p1, q0, q1 = rpoc[py, px, 0], rpoc[py, px, 1], rpoc[qy, qx, 0], rpoc[qy, qx, 1]
    if not ((p0 == q0 and p1 == q1) or (p0 == q1 and p1 == q0)):
        return 1
    if p0 != p1:  # two different pictures: compare the vectors referring to the same one
        if p0 == q0:
            return 1 if _mv_far(mv, py, px, 0, qy, qx, 0) or _mv_far(mv, py, px, 1, qy, qx, 1) else 0
        return 1 if _mv_far(mv, py, px, 0, qy, qx, 1) or _mv_far(mv, py, px, 1, qy, qx, 0) else 0
    # both vectors of both units refer to one picture: both pairings must differ
    straight = _mv_far(mv, py, px, 0, qy, qx, 0) or _mv_far(mv, py, px, 1, qy, qx, 1)
    crossed = _mv_far(mv, py, px, 0, qy, qx, 1) or _mv_far(mv, py, px, 1, qy, qx, 0)
    return 1 if straight and crossed else 0


@njit(cache=True)
def _bs_pass(edge, tb, pf, mv, rpoc, cbf, dy, dx, out):  # pragma: no cover - numba
    """bS of each marked edge unit against its neighbour at (-dy, -dx) (8.7.2.4); ``tb``:
    the edge is a transform block edge (else a prediction block edge only)."""
    h4, w4 = edge.shape
    for y4 in range(dy, h4):
        for x4 in range(dx, w4):
            if not edge[y4, x4]:
                continue
            py, px = y4 - dy, x4 - dx
            if pf[py, px] == 0 or pf[y4, x4] == 0:
                out[y4, x4] = 2
            elif tb[y4, x4] and (cbf[py, px] or cbf[y4, x4]):
                out[y4, x4] = 1
            else:
                out[y4, x4] = _motion_bs(pf, mv, rpoc, py, px, y4, x4)


def boundary_strengths(edges: tuple[np.ndarray, np.ndarray], pf: np.ndarray, mv: np.ndarray,
                       ref_poc: np.ndarray, cbf_luma: np.ndarray,
                       tb_edges: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """bS maps (vert, hor) of a picture with inter CUs (8.7.2.4) over the marked (transform
    or prediction block) edges: 2 where a side is intra (pf 0), else 1 on a transform block
    edge (``tb_edges``; default every marked edge) where a side's luma TB has levels, or
    where the sides' motion differs (reference pictures, number of vectors, or vectors a
    whole sample apart), else 0. Per 4x4 luma unit: pf (predFlagL0 | predFlagL1 << 1), mv
    (x, y of list 0, then of list 1), ref_poc (POC of each list's reference, -1 unused) and
    cbf_luma."""
    out = []
    for k, edge in enumerate(edges):
        bs = np.zeros(edge.shape, dtype=np.uint8)
        tb = edge if tb_edges is None else tb_edges[k]
        _bs_pass(np.ascontiguousarray(edge, dtype=np.bool_), np.ascontiguousarray(tb, dtype=np.bool_),
                 pf, mv, ref_poc, cbf_luma, 1 if k == 1 else 0, 1 if k == 0 else 0, bs)
        out.append(bs)
    return out[0], out[1]


# ================================================================ SAO (8.7.3) ==============

SAO_OFF, SAO_BAND, SAO_EDGE = 0, 1, 2
# 8.7.3.2 (hPos, vPos) of the two neighbours for SaoEoClass 0..3
_EO_DX = np.array([[-1, 1], [0, 0], [-1, 1], [1, -1]], dtype=np.int64)
_EO_DY = np.array([[0, 0], [-1, 1], [-1, 1], [-1, 1]], dtype=np.int64)
# edgeIdx = 2 + sum(sign) mapped: 0 -> 1, 1 -> 2, 2 -> 0, 3 -> 3, 4 -> 4
_EO_MAP = np.array([1, 2, 0, 3, 4], dtype=np.int64)
for _t in (_EO_DX, _EO_DY, _EO_MAP):
    _t.setflags(write=False)


class SaoParams:
    """SAO parameters of a picture, per CTB (row, col) and component c (0 Y, 1 Cb, 2 Cr).

    type[r, q, c]:   SaoTypeIdx (0 off, 1 band, 2 edge); Cb and Cr always share it.
    offsets[r, q, c, 0:4]: SaoOffsetVal[1..4] with their signs (edge: >= 0, >= 0, <= 0,
                     <= 0 as the syntax implies; band: explicit signs) - the values to code
                     are abs() and, for band offsets, the sign.
    band_position[r, q, c], eo_class[r, q, c] (Cb and Cr share the class).
    merge_left[r, q], merge_up[r, q]: the syntax flags; when set, the CTB's arrays already
                     hold the copied parameters (apply never looks at the flags).
    """

    def __init__(self, ctb_rows: int, ctb_cols: int) -> None:
        self.type = np.zeros((ctb_rows, ctb_cols, 3), dtype=np.int32)
        self.offsets = np.zeros((ctb_rows, ctb_cols, 3, 4), dtype=np.int32)
        self.band_position = np.zeros((ctb_rows, ctb_cols, 3), dtype=np.int32)
        self.eo_class = np.zeros((ctb_rows, ctb_cols, 3), dtype=np.int32)
        self.merge_left = np.zeros((ctb_rows, ctb_cols), dtype=bool)
        self.merge_up = np.zeros((ctb_rows, ctb_cols), dtype=bool)

    def slice_flags(self) -> tuple[bool, bool]:
        """(slice_sao_luma_flag, slice_sao_chroma_flag): True where any CTB uses SAO."""
        return bool(np.any(self.type[..., 0])), bool(np.any(self.type[..., 1:]))


def sao_max_offset(bit_depth: int) -> int:
    """cMax of sao_offset_abs: (1 << (Min(bitDepth, 10) - 5)) - 1."""
    return (1 << (min(bit_depth, 10) - 5)) - 1


@njit(cache=True, inline="always")
def _eo_window(y0, y1, x0, x1, h, w, ax, ay, bx, by):  # pragma: no cover - numba
    """The rows and columns of a CTB (y0..y1, x0..x1) whose two edge neighbours (offsets
    (ax, ay), (bx, by)) lie inside the picture: the samples an edge class applies to."""
    return max(y0, -ay, -by), min(y1, h - ay, h - by), max(x0, -ax, -bx), min(x1, w - ax, w - bx)


@njit(cache=True)
def _sao_apply_plane(src, dst, ctb, typ, offs, band_pos, eo_cls, bit_depth, dx, dy, eo_map):  # pragma: no cover
    """SAO of one plane, CTB by CTB. Rows are read as slices indexed from 0 and an edge
    offset is picked by selects from a five-entry table per CTB (edgeIdx -> offset, 0 for
    category 0, whose samples keep their value): LLVM vectorises the row loops."""
    h, w = src.shape
    maxv = (1 << bit_depth) - 1
    shift = bit_depth - 5
    rows, cols = typ.shape
    table = np.zeros(32, dtype=np.int32)
    o = np.zeros(5, dtype=np.int32)  # edge offset by edgeIdx 0..4
    for r in range(rows):
        for q in range(cols):
            t = typ[r, q]
            if t == 0:
                continue
            y0, y1 = r * ctb, min((r + 1) * ctb, h)
            x0, x1 = q * ctb, min((q + 1) * ctb, w)
            if t == 1:
                table[:] = 0
                for k in range(4):
                    table[(k + band_pos[r, q]) & 31] = offs[r, q, k]
                for y in range(y0, y1):
                    ss = src[y, x0:x1]
                    dd = dst[y, x0:x1]
                    for x in range(x1 - x0):
                        v = ss[x] + table[(ss[x] >> shift) & 31]
                        dd[x] = min(max(v, 0), maxv)
                continue
            c = eo_cls[r, q]
            ax, ay, bx, by = dx[c, 0], dy[c, 0], dx[c, 1], dy[c, 1]
            for e in range(5):
                o[e] = offs[r, q, eo_map[e] - 1] if eo_map[e] != 0 else 0
            o0, o1, o3, o4 = o[0], o[1], o[3], o[4]
            ys, ye, xs, xe = _eo_window(y0, y1, x0, x1, h, w, ax, ay, bx, by)
            for y in range(ys, ye):
                ra = src[y + ay, xs + ax:xe + ax]
                rb = src[y + by, xs + bx:xe + bx]
                ss = src[y, xs:xe]
                dd = dst[y, xs:xe]
                for x in range(xe - xs):
                    v = ss[x]
                    na, nb = ra[x], rb[x]
                    k = np.int32(v > na) - np.int32(v < na) + np.int32(v > nb) - np.int32(v < nb)
                    off = o0 if k == -2 else (o1 if k == -1 else (o3 if k == 1 else (o4 if k == 2 else np.int32(0))))
                    dd[x] = min(max(v + off, 0), maxv)


def sao_apply(planes: list[np.ndarray], params: SaoParams, log2_ctb: int, bit_depth: int,
              bit_depth_chroma: int | None = None) -> list[np.ndarray]:
    """Decoder process 8.7.3 on the deblocked planes (4:2:0): new int32 planes. Every CTB
    reads deblocked (not yet SAO-filtered) neighbours, across CTB boundaries; neighbours
    outside the coded picture leave a sample unmodified (edge offset).

    Matches FFmpeg exactly for CTBs of 32 and 64 (and 16 without deblocking); with 16x16
    CTBs, deblocking and SAO together, FFmpeg 8 differs at a few chroma samples on chroma
    CTB borders (tests/codecs/hevc/test_loopfilter.py documents it), so prefer CTB >= 32."""
    out = []
    for c, pl in enumerate(planes):
        src = np.ascontiguousarray(pl, dtype=np.int32)
        dst = src.copy()
        ctb = (1 << log2_ctb) >> (1 if c else 0)
        bd = bit_depth if c == 0 or bit_depth_chroma is None else bit_depth_chroma
        _sao_apply_plane(src, dst, ctb, np.ascontiguousarray(params.type[..., c]),
                         np.ascontiguousarray(params.offsets[:, :, c, :]),
                         np.ascontiguousarray(params.band_position[..., c]),
                         np.ascontiguousarray(params.eo_class[..., c]), bd, _EO_DX, _EO_DY,
                         _EO_MAP)
        out.append(dst)
    return out


@njit(cache=True)
def _sao_stats_plane(org, rec, ctb, bit_depth, dx, dy, eo_map, eo_cnt, eo_sum, bo_cnt, bo_sum):  # pragma: no cover
    """Per CTB: counts and sums of (org - rec) per edge category 1..4 (4 classes; category 0,
    which no offset uses, is left at zero) and per band. A sample whose edge neighbours
    leave the picture has no category: each class runs over the rows and columns where both
    exist. The edge loop reads row slices indexed from 0 and accumulates the four
    categories with selects (no scatter): LLVM vectorises it (2.7x the per-sample scatter)."""
    h, w = rec.shape
    shift = bit_depth - 5
    rows, cols = bo_cnt.shape[0], bo_cnt.shape[1]
    bcnt = np.zeros(32, dtype=np.int64)  # the CTB's band histogram (rows read from 0, as below)
    bsum = np.zeros(32, dtype=np.int64)
    cnt = np.zeros(5, dtype=np.int64)  # an edge class's categories in the CTB
    tot = np.zeros(5, dtype=np.int64)
    for r in range(rows):
        for q in range(cols):
            y0, y1 = r * ctb, min((r + 1) * ctb, h)
            x0, x1 = q * ctb, min((q + 1) * ctb, w)
            bcnt[:] = 0
            bsum[:] = 0
            for y in range(y0, y1):
                rr = rec[y, x0:x1]
                oo = org[y, x0:x1]
                for x in range(x1 - x0):
                    v = rr[x]
                    b = (v >> shift) & 31
                    bcnt[b] += 1
                    bsum[b] += oo[x] - v
            bo_cnt[r, q] += bcnt
            bo_sum[r, q] += bsum
            for c in range(4):
                ax, ay, bx, by = dx[c, 0], dy[c, 0], dx[c, 1], dy[c, 1]
                ys, ye, xs, xe = _eo_window(y0, y1, x0, x1, h, w, ax, ay, bx, by)
                cnt[:] = 0
                tot[:] = 0
                for y in range(ys, ye):
                    ra = rec[y + ay, xs + ax:xe + ax]
                    rb = rec[y + by, xs + bx:xe + bx]
                    rr = rec[y, xs:xe]
                    oo = org[y, xs:xe]
                    k0 = k1 = k3 = k4 = np.int32(0)
                    t0 = t1 = t3 = t4 = np.int32(0)
                    for x in range(xe - xs):  # indices from 0: no negative-index wrap, so SIMD
                        v = rr[x]
                        na, nb = ra[x], rb[x]
                        k = np.int32(v > na) - np.int32(v < na) + np.int32(v > nb) - np.int32(v < nb)
                        d = oo[x] - v
                        k0 += np.int32(k == -2)
                        k1 += np.int32(k == -1)
                        k3 += np.int32(k == 1)
                        k4 += np.int32(k == 2)
                        t0 += d if k == -2 else np.int32(0)
                        t1 += d if k == -1 else np.int32(0)
                        t3 += d if k == 1 else np.int32(0)
                        t4 += d if k == 2 else np.int32(0)
                    cnt[0] += k0
                    cnt[1] += k1
                    cnt[3] += k3
                    cnt[4] += k4
                    tot[0] += t0
                    tot[1] += t1
                    tot[3] += t3
                    tot[4] += t4
                for k in (0, 1, 3, 4):
                    eo_cnt[r, q, c, eo_map[k]] += cnt[k]
                    eo_sum[r, q, c, eo_map[k]] += tot[k]


@njit(cache=True, inline="always")
def _offset_bits(a, cmax):  # pragma: no cover - numba
    """Truncated-unary (bypass) length of sao_offset_abs."""
    return a + 1 if a < cmax else cmax


@njit(cache=True)
def _best_offset(cnt, dsum, lo, hi, lam, cmax, signed_bit):  # pragma: no cover - numba
    """HM estIterOffset: start from the clipped rounded mean, try every value towards 0,
    keep the least dD + lambda * bits; dD = cnt*o^2 - 2*o*sum (change of SSE)."""
    best, best_cost = 0, lam * _offset_bits(0, cmax)
    if cnt == 0:
        return best, best_cost
    if dsum >= 0:
        o = (2 * dsum + cnt) // (2 * cnt)
    else:
        o = -((-2 * dsum + cnt) // (2 * cnt))
    o = min(max(o, lo), hi)
    step = -1 if o > 0 else 1
    while o != 0:
        bits = _offset_bits(abs(o), cmax) + (1 if signed_bit else 0)
        cost = cnt * o * o - 2 * o * dsum + lam * bits
        if cost < best_cost:
            best, best_cost = o, cost
        o += step
    return best, best_cost


@njit(cache=True)
def _comp_candidates(eo_cnt, eo_sum, bo_cnt, bo_sum, r, q, lam, cmax, eo_offs, eo_cost, bo_offs):  # pragma: no cover
    """Per component: best offsets and costs of the 4 edge classes and of band offset.
    Fills eo_offs (4, 4), eo_cost (4,), bo_offs (4,); returns (band cost incl. position bits,
    band position)."""
    for cls in range(4):
        tot = 0.0
        for cat in range(1, 5):
            lo, hi = (0, cmax) if cat <= 2 else (-cmax, 0)
            o, k = _best_offset(eo_cnt[r, q, cls, cat], eo_sum[r, q, cls, cat], lo, hi, lam, cmax, False)
            eo_offs[cls, cat - 1] = o
            tot += k
        eo_cost[cls] = tot
    band_o = np.zeros(32, dtype=np.int64)
    band_c = np.zeros(32)
    for b in range(32):
        o, k = _best_offset(bo_cnt[r, q, b], bo_sum[r, q, b], -cmax, cmax, lam, cmax, True)
        band_o[b] = o
        band_c[b] = k
    best_pos, best = 0, 1e300
    for pos in range(32):
        c = band_c[pos] + band_c[(pos + 1) & 31] + band_c[(pos + 2) & 31] + band_c[(pos + 3) & 31]
        if c < best:
            best, best_pos = c, pos
    for k in range(4):
        bo_offs[k] = band_o[(best_pos + k) & 31]
    return best + lam * 5, best_pos


@njit(cache=True)
def _dist_params(eo_cnt, eo_sum, bo_cnt, bo_sum, r, q, typ, arg, offs):  # pragma: no cover
    """SSE change on CTB (r, q) of one component with the given parameters."""
    d = 0.0
    if typ == SAO_EDGE:
        for k in range(4):
            o = offs[k]
            d += eo_cnt[r, q, arg, k + 1] * o * o - 2 * o * eo_sum[r, q, arg, k + 1]
    elif typ == SAO_BAND:
        for k in range(4):
            b = (arg + k) & 31
            o = offs[k]
            d += bo_cnt[r, q, b] * o * o - 2 * o * bo_sum[r, q, b]
    return d


@njit(cache=True)
def _sao_decide(eo_cnt, eo_sum, bo_cnt, bo_sum, n_comp, lam_l, lam_c, cmax_l, cmax_c,
                allow_merge, typ, offsets, band_pos, eo_cls, merge_left, merge_up):  # pragma: no cover
    rows, cols = typ.shape[0], typ.shape[1]
    eo_offs = np.zeros((3, 4, 4), dtype=np.int64)
    eo_cost = np.zeros((3, 4))
    bo_offs = np.zeros((3, 4), dtype=np.int64)
    bo_cost = np.zeros(3)
    bo_pos = np.zeros(3, dtype=np.int64)
    for r in range(rows):
        for q in range(cols):
            for c in range(n_comp):
                lam = lam_l if c == 0 else lam_c
                cmax = cmax_l if c == 0 else cmax_c
                bo_cost[c], bo_pos[c] = _comp_candidates(
                    eo_cnt[c], eo_sum[c], bo_cnt[c], bo_sum[c], r, q, lam, cmax,
                    eo_offs[c], eo_cost[c], bo_offs[c])
            # luma: off (1 bin), edge (2 type bins + 2 class bits), band (2 type bins)
            best, bt, barg = lam_l * 1.0, SAO_OFF, 0
            for cls in range(4):
                cost = eo_cost[0, cls] + lam_l * 4
                if cost < best:
                    best, bt, barg = cost, SAO_EDGE, cls
            if bo_cost[0] + lam_l * 2 < best:
                best, bt, barg = bo_cost[0] + lam_l * 2, SAO_BAND, bo_pos[0]
            total = best
            ctyp, carg = SAO_OFF, 0
            if n_comp == 3:  # Cb and Cr share the type and the edge class
                bestc = lam_c * 1.0
                for cls in range(4):
                    cost = eo_cost[1, cls] + eo_cost[2, cls] + lam_c * 4
                    if cost < bestc:
                        bestc, ctyp, carg = cost, SAO_EDGE, cls
                if bo_cost[1] + bo_cost[2] + lam_c * 2 < bestc:
                    bestc, ctyp = bo_cost[1] + bo_cost[2] + lam_c * 2, SAO_BAND
                total += bestc
            merged = 0  # 1 left, 2 up
            if allow_merge:
                total += lam_l * ((q > 0) + (r > 0))  # the merge flags a non-merged CTB sends
                for cand in range(2):
                    rr, qq = (r, q - 1) if cand == 0 else (r - 1, q)
                    if rr < 0 or qq < 0:
                        continue
                    d = 0.0
                    for c in range(n_comp):
                        t = typ[rr, qq, c]
                        arg = eo_cls[rr, qq, c] if t == SAO_EDGE else band_pos[rr, qq, c]
                        d += _dist_params(eo_cnt[c], eo_sum[c], bo_cnt[c], bo_sum[c], r, q, t, arg,
                                          offsets[rr, qq, c])
                    cost = d + lam_l * (1 if cand == 0 else 1 + (q > 0))
                    if cost < total:
                        total, merged = cost, cand + 1
            if merged:
                rr, qq = (r, q - 1) if merged == 1 else (r - 1, q)
                typ[r, q] = typ[rr, qq]
                offsets[r, q] = offsets[rr, qq]
                band_pos[r, q] = band_pos[rr, qq]
                eo_cls[r, q] = eo_cls[rr, qq]
                if merged == 1:
                    merge_left[r, q] = True
                else:
                    merge_up[r, q] = True
                continue
            typ[r, q, 0] = bt
            if bt == SAO_EDGE:
                eo_cls[r, q, 0] = barg
                offsets[r, q, 0] = eo_offs[0, barg]
            elif bt == SAO_BAND:
                band_pos[r, q, 0] = barg
                offsets[r, q, 0] = bo_offs[0]
            for c in range(1, n_comp):
                typ[r, q, c] = ctyp
                if ctyp == SAO_EDGE:
                    eo_cls[r, q, c] = carg
                    offsets[r, q, c] = eo_offs[c, carg]
                elif ctyp == SAO_BAND:
                    band_pos[r, q, c] = bo_pos[c]
                    offsets[r, q, c] = bo_offs[c]


def sao_estimate(orig: list[np.ndarray], deblocked: list[np.ndarray], log2_ctb: int,
                 bit_depth: int, lambda_: float, chroma_lambda: float | None = None,
                 bit_depth_chroma: int | None = None, allow_merge: bool = True) -> SaoParams:
    """Encoder-side SAO decision per CTB (HM-style statistics, simple rate model), numba.

    Per CTB and component: counts and sums of (orig - deblocked) per edge category and per
    band; offsets by HM's iterative search (rounded mean towards 0, least dSSE + lambda *
    bits); the type (off / band at the best of 32 positions / edge class 0..3) minimising
    dSSE + lambda * bits, Cb and Cr deciding jointly (they share type and edge class); then
    merge-left / merge-up if cheaper. ``lambda_`` is the RD lambda for SSE in the samples'
    own bit depth (so ~ 4^(bd-8) times the 8-bit one); ``chroma_lambda`` defaults to it.
    Bits are counted as bins (bypass and context bins alike).
    """
    h, w = deblocked[0].shape
    ctb = 1 << log2_ctb
    rows, cols = -(-h // ctb), -(-w // ctb)
    params = SaoParams(rows, cols)
    n_comp = len(deblocked)
    eo_cnt = np.zeros((3, rows, cols, 4, 5), np.int64)
    eo_sum = np.zeros((3, rows, cols, 4, 5), np.int64)
    bo_cnt = np.zeros((3, rows, cols, 32), np.int64)
    bo_sum = np.zeros((3, rows, cols, 32), np.int64)
    bdc = bit_depth if bit_depth_chroma is None else bit_depth_chroma
    for c in range(n_comp):
        _sao_stats_plane(np.ascontiguousarray(orig[c], dtype=np.int32),
                         np.ascontiguousarray(deblocked[c], dtype=np.int32), ctb >> (1 if c else 0),
                         bit_depth if c == 0 else bdc, _EO_DX, _EO_DY, _EO_MAP,
                         eo_cnt[c], eo_sum[c], bo_cnt[c], bo_sum[c])
    lam_c = lambda_ if chroma_lambda is None else chroma_lambda
    _sao_decide(eo_cnt, eo_sum, bo_cnt, bo_sum, n_comp, float(lambda_), float(lam_c),
                sao_max_offset(bit_depth), sao_max_offset(bdc), bool(allow_merge), params.type,
                params.offsets, params.band_position, params.eo_class, params.merge_left,
                params.merge_up)
    return params
