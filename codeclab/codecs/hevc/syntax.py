"""Slice data syntax above the residual level (7.3.8): SAO, coding_quadtree, coding_unit
with intra mode coding (MPM derivation 8.4.2), transform_tree / transform_unit with the
4:2:0 cbf rules, end_of_slice_segment_flag.

The encoder first decides and reconstructs a whole picture into :class:`CodingUnit` /
:class:`TransformNode` records, then this module writes them: the writing pass is the
only place the syntax order lives, and a later RD search can run it in estimate mode.
Python calls the numba bin coder once per CU-level syntax element; bins of residuals are
never looped over here (see :mod:`codeclab.codecs.hevc.residual`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codeclab.bitstream.cabac import CabacWriter, encode_bin, encode_bypass, encode_bypass_bits, encode_terminate
from codeclab.codecs.hevc import tables as T
from codeclab.codecs.hevc.intra import mode_syntax, most_probable_modes
from codeclab.codecs.hevc.residual import write_residual

__all__ = ["TransformNode", "CodingUnit", "PictureMaps", "mpm_candidates", "mode_bits",
           "write_cu", "write_ctu", "write_end_of_slice", "write_sao"]


@dataclass
class TransformNode:
    """One node of a transform tree (luma coordinates). Chroma of a 4:2:0 node is held by
    the node whose log2 > 2 codes it: a leaf with log2 > 2, or a log2 == 3 node split into
    four 4x4 luma TBs (its chroma 4x4 TBs are coded with the fourth child)."""

    x: int
    y: int
    log2: int
    depth: int
    split: bool = False
    children: list[TransformNode] = field(default_factory=list)
    luma: np.ndarray | None = None      # levels or None (cbf 0)
    cb: np.ndarray | None = None
    cr: np.ndarray | None = None
    ts: list[bool] = field(default_factory=lambda: [False, False, False])
    scan: list[int] = field(default_factory=lambda: [0, 0, 0])

    @property
    def cbf_cb(self) -> bool:
        """cbf_cb at this node: any Cb coefficients in its subtree."""
        if self.cb is not None:
            return True
        return any(c.cbf_cb for c in self.children) if self.log2 > 3 else False

    @property
    def cbf_cr(self) -> bool:
        if self.cr is not None:
            return True
        return any(c.cbf_cr for c in self.children) if self.log2 > 3 else False


@dataclass
class CodingUnit:
    x: int
    y: int
    log2: int
    nxn: bool
    luma_modes: list[int]
    chroma_idx: int       # intra_chroma_pred_mode 0..4
    chroma_mode: int      # IntraPredModeC
    tu: TransformNode


class PictureMaps:
    """Per-picture state the syntax needs from neighbours: CU depth per 8x8 unit and luma
    intra mode per 4x4 unit (-1 = not yet coded / outside)."""

    def __init__(self, coded_w: int, coded_h: int, log2_ctb: int) -> None:
        self.w, self.h, self.log2_ctb = coded_w, coded_h, log2_ctb
        self.depth = np.zeros((coded_h // 8, coded_w // 8), dtype=np.int32)
        self.mode = np.full((coded_h // 4, coded_w // 4), -1, dtype=np.int32)
        self.cus: dict[tuple[int, int], CodingUnit] = {}


def mpm_candidates(maps: PictureMaps, x: int, y: int) -> tuple[int, int, int]:
    """candModeList of 8.4.2 for the PB at luma (x, y): left (x-1, y), above (x, y-1), the
    above one only inside the current CTB row; an unavailable neighbour counts as DC."""
    a = int(maps.mode[y >> 2, (x - 1) >> 2]) if x > 0 else -1
    b = -1
    if y > 0 and (y - 1) >= ((y >> maps.log2_ctb) << maps.log2_ctb):
        b = int(maps.mode[(y - 1) >> 2, x >> 2])
    return most_probable_modes(1 if a < 0 else a, 1 if b < 0 else b)


def mode_bits(cands: tuple[int, int, int], mode: int) -> float:
    """Rough bits of coding a luma mode (decision helper)."""
    if mode in cands:
        return 1.0 + (1 if cands.index(mode) == 0 else 2)
    return 6.0


# ------------------------------------------------------------------ writers --------------

def write_sao(w: CabacWriter, sao, r: int, q: int, luma: bool, chroma: bool,
              bit_depth: int) -> None:
    """sao() of CTB (r, q) (7.3.8.3) from a loopfilter.SaoParams."""
    e, c, b = w.eng, w.ctx, w.buf
    if q > 0:
        ml = bool(sao.merge_left[r, q])
        encode_bin(e, c, b, T.CTX_SAO_MERGE, int(ml))
        if ml:
            return
    if r > 0:
        mu = bool(sao.merge_up[r, q])
        encode_bin(e, c, b, T.CTX_SAO_MERGE, int(mu))
        if mu:
            return
    cmax = (1 << (min(bit_depth, 10) - 5)) - 1
    for ci in range(3):
        if (ci == 0 and not luma) or (ci > 0 and not chroma):
            continue
        typ = int(sao.type[r, q, ci])
        if ci < 2:  # sao_type_idx_luma / _chroma: TR cMax 2, bin 0 context, bin 1 bypass
            if typ == 0:
                encode_bin(e, c, b, T.CTX_SAO_TYPE, 0)
            else:
                encode_bin(e, c, b, T.CTX_SAO_TYPE, 1)
                encode_bypass(e, b, 0 if typ == 1 else 1)
        if typ == 0:
            continue
        offs = [int(v) for v in sao.offsets[r, q, ci]]
        for v in offs:  # sao_offset_abs: TR bypass, cMax
            a = abs(v)
            for _ in range(a):
                encode_bypass(e, b, 1)
            if a < cmax:
                encode_bypass(e, b, 0)
        if typ == 1:
            for v in offs:
                if v != 0:
                    encode_bypass(e, b, 1 if v < 0 else 0)
            encode_bypass_bits(e, b, int(sao.band_position[r, q, ci]), 5)
        elif ci < 2:
            encode_bypass_bits(e, b, int(sao.eo_class[r, q, ci]), 2)


def _write_tt(w: CabacWriter, node: TransformNode, parent: TransformNode | None, blk: int,
              max_depth: int, intra_split: bool, log2_max_tb: int, p_cb: bool, p_cr: bool,
              sign_hiding: bool, ts_enabled: bool) -> None:
    e, c, b = w.eng, w.ctx, w.buf
    log2, depth = node.log2, node.depth
    if log2 <= log2_max_tb and log2 > 2 and depth < max_depth and not (intra_split and depth == 0):
        encode_bin(e, c, b, T.CTX_SPLIT_TF + 5 - log2, int(node.split))
    cb, cr = p_cb, p_cr
    if log2 > 2:
        cb = cr = False
        if depth == 0 or p_cb:
            cb = node.cbf_cb
            encode_bin(e, c, b, T.CTX_CBF_CHROMA + depth, int(cb))
        if depth == 0 or p_cr:
            cr = node.cbf_cr
            encode_bin(e, c, b, T.CTX_CBF_CHROMA + depth, int(cr))
    if node.split:
        for k, ch in enumerate(node.children):
            _write_tt(w, ch, node, k, max_depth, intra_split, log2_max_tb, cb, cr,
                      sign_hiding, ts_enabled)
        return
    encode_bin(e, c, b, T.CTX_CBF_LUMA + (1 if depth == 0 else 0), int(node.luma is not None))
    if node.luma is not None:
        write_residual(w, node.luma, log2, 0, node.scan[0], sign_hiding,
                       ts_enabled and log2 == 2, node.ts[0])
    holder, lc = (node, log2 - 1) if log2 > 2 else ((parent, 2) if blk == 3 else (None, 0))
    if holder is not None:
        for ci, lv in ((1, holder.cb), (2, holder.cr)):
            if lv is not None:
                write_residual(w, lv, lc, ci, holder.scan[ci], sign_hiding,
                               ts_enabled and lc == 2, holder.ts[ci])


def write_cu(w: CabacWriter, maps: PictureMaps, cu: CodingUnit, max_tu_depth: int,
              log2_max_tb: int, sign_hiding: bool, ts_enabled: bool) -> None:
    """coding_unit() of an intra CU; with an estimate-mode writer it prices the CU (the
    neighbour maps must hold the state the CU is coded in)."""
    e, c, b = w.eng, w.ctx, w.buf
    if cu.log2 == 3:
        encode_bin(e, c, b, T.CTX_PART_MODE, 0 if cu.nxn else 1)
    half = 1 << (cu.log2 - 1)
    pus = ([(cu.x, cu.y), (cu.x + half, cu.y), (cu.x, cu.y + half), (cu.x + half, cu.y + half)]
           if cu.nxn else [(cu.x, cu.y)])
    codes = [mode_syntax(m, mpm_candidates(maps, px, py)) for (px, py), m in zip(pus, cu.luma_modes)]
    for flag, _ in codes:
        encode_bin(e, c, b, T.CTX_PREV_INTRA, int(flag))
    for flag, v in codes:
        if flag:
            encode_bypass(e, b, 1 if v > 0 else 0)
            if v > 0:
                encode_bypass(e, b, 1 if v > 1 else 0)
        else:
            encode_bypass_bits(e, b, v, 5)
    if cu.chroma_idx == 4:
        encode_bin(e, c, b, T.CTX_CHROMA_MODE, 0)
    else:
        encode_bin(e, c, b, T.CTX_CHROMA_MODE, 1)
        encode_bypass_bits(e, b, cu.chroma_idx, 2)
    _write_tt(w, cu.tu, None, 0, max_tu_depth + int(cu.nxn), cu.nxn, log2_max_tb, False, False,
              sign_hiding, ts_enabled)


def write_ctu(w: CabacWriter, maps: PictureMaps, x0: int, y0: int, max_tu_depth: int,
              log2_max_tb: int, sign_hiding: bool, ts_enabled: bool) -> None:
    """coding_quadtree() of the CTU at (x0, y0) from the decided CUs in ``maps.cus``."""
    e, c, b = w.eng, w.ctx, w.buf

    def cq(x: int, y: int, log2: int, depth: int) -> None:
        if x >= maps.w or y >= maps.h:
            return
        size = 1 << log2
        if x + size <= maps.w and y + size <= maps.h and log2 > 3:
            split = (x, y) not in maps.cus or maps.cus[(x, y)].log2 < log2
            inc = 0
            if x > 0 and maps.depth[y >> 3, (x - 1) >> 3] > depth:
                inc += 1
            if y > 0 and maps.depth[(y - 1) >> 3, x >> 3] > depth:
                inc += 1
            encode_bin(e, c, b, T.CTX_SPLIT_CU + inc, int(split))
        else:
            split = log2 > 3
        if split:
            h = size >> 1
            cq(x, y, log2 - 1, depth + 1)
            cq(x + h, y, log2 - 1, depth + 1)
            cq(x, y + h, log2 - 1, depth + 1)
            cq(x + h, y + h, log2 - 1, depth + 1)
        else:
            write_cu(w, maps, maps.cus[(x, y)], max_tu_depth, log2_max_tb, sign_hiding, ts_enabled)

    cq(x0, y0, maps.log2_ctb, 0)


def write_end_of_slice(w: CabacWriter, last: bool) -> None:
    """end_of_slice_segment_flag; 1 flushes the engine (incl. the rbsp stop bit)."""
    encode_terminate(w.eng, w.buf, 1 if last else 0)
