"""The encoder's decisions, compiled: one call searches a whole picture (numba).

Two strategies over one :class:`~codeclab.codecs.hevc.picture_state.PictureState`, both
coding their TBs with :func:`codeclab.codecs.hevc.tb_coding.code_tb`:

- ``fast`` (no RD search): 2Nx2N vs NxN at 8x8, the CU split (64 down to 8) and the TU
  split compare the parent with its four parts, both predicted from source neighbours
  (SATD over a coarse-to-fine subset of the modes, :func:`_mode_search`), plus lam_split *
  rough side bits; Hadamard SATD plus lam_mode * rough mode bits then chooses the luma
  mode among the three best of those and the MPMs, predicted from our reconstruction;
  chroma takes the best SATD of the five intra_chroma_pred_mode candidates.
- ``medium`` / ``slow`` (HM's TEncCu / TEncSearch, intra part): per PB a rough decision
  (SATD + sqrt(lambda) * mode bits priced from the current CABAC state) keeps the preset's
  number of candidates (plus the three MPMs); each is coded for real at the TU root as one
  batch (SSE + lambda * CABAC-estimated bits); the best get the residual quadtree by RD
  cost; the chroma mode is chosen by RD cost over its candidates (chroma SSE weighted by
  HM's 2^((QP - QPc) / 3)); 2Nx2N vs NxN at 8x8 and the CU split compare the whole RD cost
  of both. All rates come from one estimate-mode CABAC engine whose contexts follow the
  decisions in coding order (snapshot / restore), priced by the slice writer itself
  (:func:`codeclab.codecs.hevc.ctu_syntax.write_cu`); the quantizer sees the same live
  contexts, so RDOQ prices levels with the states the block will be coded with. Every
  trial is undone with the state's save / restore of a region.

P pictures always take the RD search (each preset's fields set its effort) and try inter
CUs before the intra ones (:func:`_inter_cu`): every merge candidate as a skip, the best
with a residual, AMVP after a motion search per reference picture, 2NxN / Nx2N; inter
residuals use :func:`codeclab.codecs.hevc.tb_coding.inter_tree` (uniform transform trees
chosen by RD cost); the cheapest whole-CU RD cost wins.

The final bitstream is written afterwards from the state, so a search only chooses: it
cannot break decodability.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit
from numba.typed import List

from codeclab.base.jit import borrow, unit, view
from codeclab.bitstream.cabac import E_FRAC, ENTROPY_BITS, FRAC_ONE, encode_bin
from codeclab.codecs.hevc import tables as T
from codeclab.codecs.hevc.ctu_syntax import _push, cu_has_residual, mpm_at, write_cu
from codeclab.codecs.hevc.inter import merge_candidates, mvp_candidates, predict_block, predict_pb
from codeclab.codecs.hevc.motion_search import motion_search, mv_cost, mvd_bits
from codeclab.codecs.hevc.intra import (
    _angular_rows,
    _filter,
    _filter_flag,
    _gather,
    _predict,
    chroma_mode_from,
)
from codeclab.codecs.hevc.picture_state import (
    ICU_PART,
    ICU_SKIP,
    MOT_CH,
    MOT_MRG,
    MOT_MV,
    MOT_MVD,
    MOT_MVPF,
    MOT_PF,
    MOT_RI,
    restore_chroma,
    restore_luma,
    restore_region,
    save_chroma,
    save_luma,
    save_region,
)
from codeclab.codecs.hevc.residual import C4_SCAN, SB_SCAN, code_residual
from codeclab.codecs.hevc.satd import _satd_tiles, satd_scratch
from codeclab.codecs.hevc.scan import scan_idx_for
from codeclab.codecs.hevc.tb_coding import (
    chroma_tree,
    code_tb,
    forward,
    inter_tree,
    quantize,
    reconstruct,
    store_tb,
)

__all__ = ["Preset", "PRESETS", "SearchParams", "search_picture"]

ALL_MODES = np.arange(35, dtype=np.int64)
NO_MPM = np.full(3, -1, dtype=np.int64)
for _a in (ALL_MODES, NO_MPM):
    _a.setflags(write=False)


@dataclass(frozen=True)
class Preset:
    """How hard the encoder searches.

    rd: RD search (False = the SATD decisions); n_rd: luma candidates given a full RD
    check per PU size log2 2..6 (HM: 8, 8, 3, 3, 3); mpm: add the three MPMs to them;
    tu_modes: how many of the best modes (after the TU-root check) get the TU-split check;
    chroma_all: all five chroma candidates (else DM + the best chroma SATD); early_cu:
    skip the split check of a CU coded whole without any residual (HM's ECU idea);
    ts_fast: HM's TransformSkipFast (4x4 transform skip tried only in NxN CUs, chroma only
    where its luma chose it); ts_try: 4x4 transform skip tried at all (False: where the
    stream enables it, its flag is coded 0 in every 4x4 TB); coarse: the SATD luma mode
    decisions (the fast preset's, and the RD search's rough decision) evaluate a
    coarse-to-fine subset of the 35 luma modes (planar, DC, every fourth angular mode and
    the MPMs, then +-2 and +-1 around the best angular one: 11 to 18 modes, see
    _mode_search) instead of all 35; mode_w / split_w: the SATD decisions' lambdas per rough
    side bit, in units of sqrt(lambda): luma and chroma modes / CU split, NxN and TU split.

    P pictures always use the RD search (the intra fields above then set its intra side):
    merge_rd: merge candidates (best luma SATD first) coded with a residual, besides every
    candidate tried as skip; search_range: integer motion search range in samples;
    intra_p: intra CUs tried in P pictures (0 never, 1 unless the best inter CU is a skip
    or has no residual, 2 always); tu_inter: inter residuals are coded with uniform
    transform trees 0 .. tu_inter levels below the largest TB, the cheapest kept; rect:
    2NxN and Nx2N inter CUs are tried too (each PB by HM's merge estimation), their motion
    searched in every reference picture (rect_all_refs, as HM) or only in the one the
    2Nx2N search chose; bi_iters: in B pictures, the bi-prediction refinements (each
    searches one list's vector against twice the source minus the other list's
    prediction, alternating lists; HM: up to 4)."""

    name: str
    rd: bool
    n_rd: tuple[int, int, int, int, int] = (8, 8, 3, 3, 3)
    mpm: bool = True
    tu_modes: int = 1
    chroma_all: bool = True
    early_cu: bool = False
    ts_fast: bool = True
    ts_try: bool = True
    coarse: bool = False
    mode_w: float = 6.0
    split_w: float = 6.0
    merge_rd: int = 2
    search_range: int = 64
    intra_p: int = 1
    tu_inter: int = 1
    rect: bool = True
    rect_all_refs: bool = False
    bi_iters: int = 1


PRESETS: dict[str, Preset] = {
    "fast": Preset("fast", False, (2, 2, 1, 1, 1), mpm=False, chroma_all=False, early_cu=True,
                   ts_try=False, coarse=True, merge_rd=1, search_range=32, intra_p=1, tu_inter=0,
                   rect=False),
    "medium": Preset("medium", True, (3, 3, 2, 2, 2), mpm=False, tu_modes=1, chroma_all=False,
                     early_cu=True, coarse=True, merge_rd=2, intra_p=1),
    "slow": Preset("slow", True, (5, 5, 2, 2, 2), mpm=True, tu_modes=2, chroma_all=False,
                   early_cu=True, merge_rd=5, intra_p=2, tu_inter=2, rect_all_refs=True, bi_iters=2),
}


class SearchParams(NamedTuple):
    """The decisions' side of a picture's parameters (the TB side is tb_coding.TbParams)."""

    log2_ctb: int
    max_tu_depth: int
    log2_max_tb: int
    lam: float          # RD: SSE in the samples' bit depth + lam * bits
    sqrt_lam: float     # rough RD decisions: SATD + sqrt_lam * bits
    wc: float           # chroma SSE weight
    lam_mode: float     # SATD decisions: mode choice
    lam_split: float    # SATD decisions: partitions
    rd: bool
    n_rd: tuple[int, int, int, int, int]
    mpm: bool
    tu_modes: int
    chroma_all: bool
    early_cu: bool
    coarse: bool
    inter: bool         # a P or B picture (inter CUs tried, P/B-slice syntax priced)
    nref: int           # num_ref_idx_l0_active
    nref1: int          # num_ref_idx_l1_active (0: a P picture)
    max_merge: int      # MaxNumMergeCand
    merge_rd: int
    search_range: int
    intra_p: int
    tu_inter: int       # extra uniform transform-tree levels tried for inter residuals
    rect: bool          # 2NxN and Nx2N inter CUs tried
    rect_all_refs: bool  # their PBs search every reference picture (else 2Nx2N's choice)
    max_tu_depth_inter: int  # max_transform_hierarchy_depth_inter of the SPS
    bi_iters: int



# ------------------------------------------------------------------ small helpers ----------

@njit(cache=True)
def _snap(eng, ctx):  # pragma: no cover - numba
    return ctx.copy(), eng.copy()


@njit(cache=True)
def _restore(eng, ctx, s):  # pragma: no cover - numba
    ctx[:] = s[0]
    eng[:] = s[1]


@njit(cache=True)
def _flag_bits(ctx, ci, b):  # pragma: no cover - numba
    return ENTROPY_BITS[np.int64(ctx[ci]) ^ b] / FRAC_ONE


@njit(cache=True)
def _encode_flag(eng, ctx, buf, ci, b):  # pragma: no cover - numba
    """Code one context bin on the carried engine; its bits."""
    b0 = eng[E_FRAC]
    encode_bin(eng, ctx, buf, ci, b)
    return (eng[E_FRAC] - b0) / FRAC_ONE


@njit(cache=True)
def _sse(st, c, x, y, n):  # pragma: no cover - numba
    o, r = st.org[c][y:y + n, x:x + n], st.rec[c][y:y + n, x:x + n]  # indexed from 0: vectorised
    s = np.int64(0)
    for i in range(n):
        for j in range(n):
            d = np.int64(o[i, j] - r[i, j])
            s += d * d
    return float(s)


@njit(cache=True)
def _cu_cost_d(st, sp, x, y, log2):  # pragma: no cover - numba
    n = 1 << log2
    return _sse(st, 0, x, y, n) + sp.wc * (_sse(st, 1, x >> 1, y >> 1, n >> 1)
                                           + _sse(st, 2, x >> 1, y >> 1, n >> 1))


@njit(cache=True)
def _set_mode(st, x, y, log2, mode):  # pragma: no cover - numba
    n4 = 1 << (log2 - 2)
    st.mode[y >> 2:(y >> 2) + n4, x >> 2:(x >> 2) + n4] = mode


@njit(cache=True)
def _set_cu(a, x, y, log2, v):  # pragma: no cover - numba
    """Set an 8x8-unit CU map over the CU."""
    m = 1 << (log2 - 3)
    a[y >> 3:(y >> 3) + m, x >> 3:(x >> 3) + m] = v


@njit(cache=True)
def _best_modes(cost, k, mpm, add_mpm):  # pragma: no cover - numba
    """The k modes of least cost (ties: the lower mode), then, with ``add_mpm``, the MPMs
    ``mpm`` not among them. (k passes of a minimum search: k is at most 8, where a stable
    sort of all 35 costs was a mergesort with its allocations per PB.)"""
    nm = cost.shape[0]
    out = np.empty(k + 3, dtype=np.int64)
    no = 0
    for _ in range(min(k, nm)):
        best = -1
        for m in range(nm):
            if best >= 0 and not cost[m] < cost[best]:
                continue
            taken = False
            for i in range(no):
                if out[i] == m:
                    taken = True
            if not taken:
                best = m
        out[no] = best
        no += 1
    if add_mpm:
        for m in mpm:
            found = False
            for i in range(no):
                if out[i] == m:
                    found = True
            if not found:
                out[no] = m
                no += 1
    return out[:no]


@njit(cache=True)
def _tile(n):  # pragma: no cover - numba
    return 8 if n % 8 == 0 else 4


@njit(cache=True)
def _reference(recon, av, x, y, n, luma, bd, line, fline):  # pragma: no cover - numba
    """The block's reference line (intra._gather) into ``line`` and, for luma, its filtered
    version (the modes that intra._filter_flag selects use it) into ``fline``."""
    _gather(recon, av, x, y, n, bd, line)
    if luma:
        _filter(line, n, np.bool_(True), bd, fline)


@njit(cache=True)
def _carve(scr, n):  # pragma: no cover - numba
    """_satd_modes' buffers as views of the state's scratch: reference line, filtered line,
    projected reference, source block, transposed source, prediction, SATD scratch. Views of
    the borrowed scratch count no references, where arrays allocated per call cost a
    malloc, a free and reference counting each. (One array, not one per buffer and block
    size: every unit that takes the state gets each of its arrays by value.)"""
    m = 4 * n + 1
    nn = n * n
    o = 3 * m + 1
    return (scr[0:m], scr[m:2 * m], scr[2 * m:o], view(scr[o:o + nn], (n, n)),
            view(scr[o + nn:o + 2 * nn], (n, n)), view(scr[o + 2 * nn:o + 3 * nn], (n, n)),
            view(scr[o + 3 * nn:o + 3 * nn + 16 * max(n, 4)], (16, max(n, 4))))


@unit
def _predictions(recon, av, x, y, log2, luma, bd, modes):  # pragma: no cover - numba
    """(k, n, n): the predictions of the block in the given modes, from one reference build."""
    n = 1 << log2
    line = np.empty(4 * n + 1, dtype=np.int32)
    fline = np.empty(4 * n + 1, dtype=np.int32)
    _reference(recon, av, x, y, n, luma, bd, line, fline)
    ref = np.empty(3 * n + 1, dtype=np.int32)
    preds = np.empty((modes.shape[0], n, n), dtype=np.int32)
    for k in range(modes.shape[0]):
        mode = modes[k]
        _predict(fline if luma and _filter_flag(mode, n) else line, n, log2, mode, luma and n < 32, bd,
                 ref, preds[k])
    return preds


@njit(cache=True)
def _satd_modes(recon, av, org, x, y, log2, luma, bd, modes, scr, fresh, out):  # pragma: no cover - numba
    """SATD against ``org``'s block of the block predicted from ``recon`` in each of
    ``modes`` into out[:k], from one reference build. Horizontal modes are predicted transposed and
    compared with the transposed source (intra._angular_rows): the same SATD. ``scr``: the
    state's scratch (PictureState.scr), for blocks up to 32x32; ``fresh`` False: the
    scratch still holds this block's reference lines and source copies from the call
    before (a coarse-to-fine search's later steps), so they are not built again."""
    n = 1 << log2
    line, fline, ref, ob, obt, pred, sd = _carve(scr, n)
    if fresh:
        _reference(recon, av, x, y, n, luma, bd, line, fline)
        o = org[y:y + n, x:x + n]
        for i in range(n):
            for j in range(n):
                ob[i, j] = o[i, j]
                obt[j, i] = o[i, j]
    tile = _tile(n)
    edge = luma and n < 32
    for k in range(modes.shape[0]):
        mode = modes[k]
        ln = fline if luma and _filter_flag(mode, n) else line
        if mode < 2:
            _predict(ln, n, log2, mode, edge, bd, ref, pred)
            out[k] = _satd_tiles(pred, ob, tile, sd)
        else:
            _angular_rows(ln, n, mode, edge, bd, ref, pred)
            out[k] = _satd_tiles(pred, ob if mode >= 18 else obt, tile, sd)


@njit(cache=True)
def _satd_at(recon, av, org, x, y, log2, luma, bd, modes, scr, kids, fresh, out):  # pragma: no cover - numba
    """_satd_modes of a block (into out[:k]); a 64x64 block (luma, from source) as its four
    32x32 TBs, each with the availability it has when the previous ones are done: the same blocks,
    references and SATDs as its four 32x32 CUs, so ``kids`` (4, 35), the values already
    known of those (+inf: not evaluated; or (0, 35)), are used as they are (its quadrants
    are always built fresh)."""
    if log2 <= 5:
        _satd_modes(recon, av, org, x, y, log2, luma, bd, modes, scr, fresh, out)
        return
    nm = modes.shape[0]
    v = out[:nm]
    v[:] = 0
    miss = np.empty(nm, dtype=np.int64)
    w = np.empty(nm, dtype=np.int64)
    for k in range(4):
        qx, qy = x + (32 if k & 1 else 0), y + (32 if k & 2 else 0)
        nmiss = 0
        for i in range(nm):
            if kids.shape[0] == 4 and kids[k, modes[i]] < np.inf:
                v[i] += np.int64(kids[k, modes[i]])
            else:
                miss[nmiss] = i
                nmiss += 1
        if nmiss:
            _satd_modes(recon, av, org, qx, qy, np.int64(5), luma, bd, modes[miss[:nmiss]], scr,
                        np.bool_(True), w)
            for j in range(nmiss):
                v[miss[j]] += w[j]
        av[qy:qy + 32, qx:qx + 32] = True
    av[y:y + 64, x:x + 64] = False


@unit
def _mode_search(recon, av, org, x, y, log2, bd, coarse, bias, mpm, scr, iscr, kids, cost):  # pragma: no cover
    """SATD + bias (an empty ``bias``: none) of the luma modes predicted from ``recon`` into
    ``cost`` (35,); with ``coarse`` only a coarse-to-fine subset is evaluated (the rest are
    +inf): planar, DC, the angular modes 2, 6, .., 34 and the MPMs ``mpm``, then +-2 and +-1
    around the best angular mode (x265's fast intra search does the same). ``kids``: see
    _satd_at; ``iscr``: PictureState.iscr (the mode lists and their SATDs: no array is
    allocated per search)."""
    nb = bias.shape[0]
    v = iscr[16:51]
    if not coarse:
        _satd_at(recon, av, org, x, y, log2, np.bool_(True), bd, ALL_MODES, scr, kids, np.bool_(True), v)
        for m in range(35):
            cost[m] = v[m] + (bias[m] if nb else 0.0)
        return
    cost[:] = np.inf
    first = iscr[0:14]
    nf = 0
    for m in range(35):
        if m < 2 or (m - 2) % 4 == 0 or m == mpm[0] or m == mpm[1] or m == mpm[2]:
            first[nf] = m
            nf += 1
    _satd_at(recon, av, org, x, y, log2, np.bool_(True), bd, first[:nf], scr, kids, np.bool_(True), v)
    for i in range(nf):
        cost[first[i]] = v[i] + (bias[first[i]] if nb else 0.0)
    cand = iscr[14:16]
    for step in (2, 1):
        best = 2 + np.argmin(cost[2:])
        nc = 0
        for m in (best - step, best + step):
            if 2 <= m <= 34 and cost[m] == np.inf:
                cand[nc] = m
                nc += 1
        if nc:
            _satd_at(recon, av, org, x, y, log2, np.bool_(True), bd, cand[:nc], scr, kids, np.bool_(False), v)
            for i in range(nc):
                cost[cand[i]] = v[i] + (bias[cand[i]] if nb else 0.0)


CACHE_ROWS = 341  # the blocks of a 64x64 CTU: 1 + 4 + 16 + 64 + 256 (the cache has one more: _fast_mode's scratch)


@njit(cache=True)
def _slot(x, y, log2):  # pragma: no cover - numba
    """Row of the block (x, y, 2^log2) in the CTU's source-SATD cache: the levels 64..4 one
    after the other, each in raster order of its blocks in the CTU (a 64x64 CTU's four
    32x32 CUs are rows 1..4 in z-order)."""
    base = (0, 0, 85, 21, 5, 1, 0)[log2]
    return base + ((y & 63) >> log2) * (64 >> log2) + ((x & 63) >> log2)


@njit(cache=True)
def _source_mode_satd(st, tp, sp, cache, x, y, log2):  # pragma: no cover - numba
    """SATD of the 35 modes (+inf where a coarse search skipped them) predicting the luma
    block from *source* neighbours with the availability it has when first asked; a 64x64
    block is predicted as its four 32x32 TBs are, which are its four 32x32 CUs: their values
    are computed first and reused. Cached per CTU (``cache``: CACHE_ROWS + 1 rows of 35, a row not
    computed yet has NaN first; search_picture clears it per CTU): a parent's split test
    computes its children's values. Returns the cache's row: read it, never write it."""
    row = cache[_slot(x, y, log2)]
    if not np.isnan(row[0]):
        return row
    kids = cache[:0]
    if log2 == 6:
        av = st.av[0]
        for k in range(4):  # the 32x32 CUs first: their split tests then find themselves cached
            qx, qy = x + (32 if k & 1 else 0), y + (32 if k & 2 else 0)
            kr = cache[_slot(qx, qy, 5)]
            if np.isnan(kr[0]):
                _source_search(st, tp, sp, qx, qy, np.int64(5), cache[:0], kr)
            av[qy:qy + 32, qx:qx + 32] = True
        av[y:y + 64, x:x + 64] = False
        kids = cache[1:5]
    _source_search(st, tp, sp, x, y, log2, kids, row)
    return row


@njit(cache=True)
def _source_search(st, tp, sp, x, y, log2, kids, out):  # pragma: no cover - numba
    org = st.org[0]
    _mode_search(org, st.av[0], org, x, y, log2, tp.bit_depth, sp.coarse, out[:0], NO_MPM, st.scr, st.iscr,
                 kids, out)


@njit(cache=True)
def _best_satd(st, tp, sp, cache, x, y, log2):  # pragma: no cover - numba
    return _source_mode_satd(st, tp, sp, cache, x, y, log2).min()


@njit(cache=True)
def _split_wins(st, tp, sp, cache, x, y, log2):  # pragma: no cover - numba
    """Parent vs four children, all predicted from source samples (cheap, unbiased between
    the two); each CU is charged ~4 bits of mode/split side information."""
    av = st.av[0]
    s, h = 1 << log2, 1 << (log2 - 1)
    cost_p = _best_satd(st, tp, sp, cache, x, y, log2) + sp.lam_split * 4
    cost_c = sp.lam_split * 17
    if cost_c >= cost_p:
        return False
    for k in range(4):
        cx, cy = x + (h if k & 1 else 0), y + (h if k & 2 else 0)
        cost_c += _best_satd(st, tp, sp, cache, cx, cy, log2 - 1)
        av[cy:cy + h, cx:cx + h] = True
        if cost_c >= cost_p:
            break
    av[y:y + s, x:x + s] = False
    return cost_c < cost_p


@njit(cache=True)
def _nxn_wins(st, tp, sp, cache, x, y):  # pragma: no cover - numba
    """2Nx2N vs NxN at an 8x8 CU, both predicted from source samples (the same cheap,
    unbiased comparison as the CU split): NxN pays 3 more mode codes."""
    av = st.av[0]
    cost_2n = _best_satd(st, tp, sp, cache, x, y, np.int64(3)) + sp.lam_split * 4
    cost_nxn = sp.lam_split * 16
    if cost_nxn >= cost_2n:
        return False
    for k in range(4):
        px, py = x + (4 if k & 1 else 0), y + (4 if k & 2 else 0)
        cost_nxn += _best_satd(st, tp, sp, cache, px, py, np.int64(2))
        av[py:py + 4, px:px + 4] = True
        if cost_nxn >= cost_2n:
            break
    av[y:y + 8, x:x + 8] = False
    return cost_nxn < cost_2n


@unit
def _chroma_mode_satd(st, tp, sp, xc, yc, log2c, luma_mode):  # pragma: no cover - numba
    """(intra_chroma_pred_mode, IntraPredModeC) with the best SATD of the five (DM first
    on ties)."""
    modes, v, tot = st.iscr[0:5], st.iscr[5:10], st.iscr[10:15]  # intra_chroma_pred_mode 0..3, then 4 (DM)
    for idx in range(4):
        modes[idx] = chroma_mode_from(idx, luma_mode)
    modes[4] = luma_mode
    tot[:] = 0
    for c in (1, 2):
        _satd_modes(st.rec[c], st.av[c], st.org[c], xc, yc, log2c, np.bool_(False), tp.bit_depth, modes,
                    st.scr, np.bool_(True), v)
        tot += v
    best, bi, bm = tot[4] + sp.lam_mode * 1, 4, luma_mode
    for idx in range(4):
        cst = tot[idx] + sp.lam_mode * 3
        if cst < best:
            best, bi, bm = cst, idx, modes[idx]
    return bi, bm


@njit(cache=True)
def _has_residual(st, x, y, log2):  # pragma: no cover - numba
    n = 1 << log2
    if st.cbf[0][y >> 2:(y + n) >> 2, x >> 2:(x + n) >> 2].any():
        return True
    for c in (1, 2):
        if st.cbf[c][y >> 3:(y + n) >> 3, x >> 3:(x + n) >> 3].any():
            return True
    return False


# ------------------------------------------------------------------ fast: SATD decisions --

@njit(cache=True, inline="always")
def _rough_mode_bits(m, c0, c1, c2):  # pragma: no cover - numba
    """The SATD decisions' luma mode side bits: 2 for the first MPM, 3 for the others, 6 else."""
    return 2.0 if m == c0 else 3.0 if m == c1 or m == c2 else 6.0


@njit(cache=True)
def _fast_mode(st, tp, sp, cache, x, y, log2):  # pragma: no cover - numba
    """The luma mode of a PB: least SATD + lam_mode * mode bits among the three best by the
    source-neighbour SATD the split decisions already computed (the cache) and the MPMs,
    predicted from our reconstruction (64x64: the source SATD of its four TBs itself; ties:
    the lower mode). The costs go to the cache's spare row (no array per PB)."""
    c0, c1, c2 = mpm_at(st, x, y, sp.log2_ctb)
    src = _source_mode_satd(st, tp, sp, cache, x, y, log2)
    cost = cache[CACHE_ROWS]
    for m in range(35):
        cost[m] = src[m] + sp.lam_mode * _rough_mode_bits(m, c0, c1, c2)
    if log2 > 5:
        return np.argmin(cost)
    modes = _best_modes(cost, 3, (c0, c1, c2), True)
    nm = modes.shape[0]
    v = st.iscr[:nm]
    _satd_modes(st.rec[0], st.av[0], st.org[0], x, y, log2, np.bool_(True), tp.bit_depth, modes, st.scr,
                np.bool_(True), v)
    best, bm = np.inf, 35
    for i in range(nm):
        m = modes[i]
        c = v[i] + sp.lam_mode * _rough_mode_bits(m, c0, c1, c2)
        if c < best or (c == best and m < bm):
            best, bm = c, m
    return bm


@njit(cache=True)
def _mode_satd(st, tp, cache, x, y, log2, mode):  # pragma: no cover - numba
    """The source-neighbour SATD of one luma mode at a block up to 32x32: from the CTU's
    cache where the split tests' searches evaluated that mode (their availability is the
    block's now: nothing outside a parent is coded between its split test and its
    children's coding), else computed."""
    row = cache[_slot(x, y, log2)]
    if not np.isnan(row[0]) and row[mode] < np.inf:
        return np.int64(row[mode])
    org = st.org[0]
    one, v = st.iscr[0:1], st.iscr[1:2]
    one[0] = mode
    _satd_modes(org, st.av[0], org, x, y, log2, np.bool_(True), tp.bit_depth, one, st.scr, np.bool_(True), v)
    return v[0]


@njit(cache=True)
def _tu_split_wins(st, tp, sp, cache, x, y, log2, mode):  # pragma: no cover - numba
    """Predicting from nearer samples pays when the four quadrants' SATD (source neighbours)
    beats the whole block's by more than ~12 bits of side information."""
    av = st.av[0]
    n, h = 1 << log2, 1 << (log2 - 1)
    whole = _mode_satd(st, tp, cache, x, y, log2, mode)
    parts = sp.lam_split * 12
    for k in range(4):
        cx, cy = x + (h if k & 1 else 0), y + (h if k & 2 else 0)
        parts += _mode_satd(st, tp, cache, cx, cy, log2 - 1, mode)
        av[cy:cy + h, cx:cx + h] = True
    av[y:y + n, x:x + n] = False
    return parts < whole


@unit
def _fast_luma_tree(st, tp, sp, ctx, cache, x0, y0, log2_0, depth0, mode):  # pragma: no cover - numba
    """The luma TU tree of a PB, split where the SATD test says so (depth first, explicit
    stack: numba cannot cache recursive functions)."""
    stack = np.empty((16, 4), dtype=np.int64)
    top = _push(stack, 0, x0, y0, log2_0, depth0)
    while top > 0:
        top -= 1
        x, y, log2, depth = stack[top]
        split = False
        if log2 > sp.log2_max_tb:
            split = True
        elif log2 > 2 and depth < sp.max_tu_depth:
            split = _tu_split_wins(st, tp, sp, cache, x, y, log2, mode)
        if split:
            h = 1 << (log2 - 1)
            for k in range(3, -1, -1):  # pushed in reverse: popped in z-order
                top = _push(stack, top, x + (h if k & 1 else 0), y + (h if k & 2 else 0), log2 - 1,
                            depth + 1)
        else:
            code_tb(st, tp, ctx, np.bool_(False), np.int64(0), x, y, log2, np.int64(mode), depth)

@unit
def _fast_cu(st, tp, sp, ctx, cache, x, y, log2, depth):  # pragma: no cover - numba
    _set_cu(st.cdepth, x, y, log2, depth)
    nxn = log2 == 3 and _nxn_wins(st, tp, sp, cache, x, y)
    _set_cu(st.nxn, x, y, log2, 1 if nxn else 0)
    if nxn:
        for k in range(4):
            px, py = x + (4 if k & 1 else 0), y + (4 if k & 2 else 0)
            m4 = _fast_mode(st, tp, sp, cache, px, py, np.int64(2))
            _set_mode(st, px, py, 2, m4)
            code_tb(st, tp, ctx, np.bool_(False), np.int64(0), px, py, np.int64(2), np.int64(m4), np.int64(1))
    else:
        mode = _fast_mode(st, tp, sp, cache, x, y, log2)
        _set_mode(st, x, y, log2, mode)
        _fast_luma_tree(st, tp, sp, ctx, cache, x, y, log2, np.int64(0), np.int64(mode))
    idx, cmode = _chroma_mode_satd(st, tp, sp, x >> 1, y >> 1, log2 - 1, st.mode[y >> 2, x >> 2])
    _set_cu(st.cidx, x, y, log2, idx)
    chroma_tree(st, tp, ctx, np.bool_(False), x, y, log2, np.int64(0), np.int64(cmode))


@unit
def _fast_decide(st, tp, sp, ctx, cache, x0, y0):  # pragma: no cover - numba
    """The SATD decisions of one CTU (depth first, explicit stack)."""
    H, W = st.org[0].shape
    stack = np.empty((16, 4), dtype=np.int64)
    top = _push(stack, 0, x0, y0, sp.log2_ctb, 0)
    while top > 0:
        top -= 1
        x, y, log2, depth = stack[top]
        if x >= W or y >= H:
            continue
        s = 1 << log2
        split = x + s > W or y + s > H
        if not split and log2 > 3:
            split = _split_wins(st, tp, sp, cache, x, y, log2)
        if split:
            h = s >> 1
            for k in range(3, -1, -1):
                top = _push(stack, top, x + (h if k & 1 else 0), y + (h if k & 2 else 0), log2 - 1,
                            depth + 1)
        else:
            _fast_cu(st, tp, sp, ctx, cache, x, y, log2, depth)

# ------------------------------------------------------------------ RD search: luma -------

@unit
def _price_luma(eng, ctx, buf, lv, log2, scans, depth, sign_hiding, ts_allowed):  # pragma: no cover
    """Bits of cbf_luma + residual of each block (B, n, n) from the same context state."""
    nb = lv.shape[0]
    out = np.empty(nb)
    tmp = ctx.copy()
    e = eng.copy()
    ci = T.CTX_CBF_LUMA + (1 if depth == 0 else 0)
    for b in range(nb):
        tmp[:] = ctx
        e[E_FRAC] = 0
        nz = lv[b].any()
        encode_bin(e, tmp, buf, ci, 1 if nz else 0)
        if nz:
            code_residual(e, tmp, buf, lv[b], log2, 0, scans[b], sign_hiding, ts_allowed, 0,
                          SB_SCAN, C4_SCAN)
        out[b] = e[E_FRAC] / FRAC_ONE
    return out


@unit
def _root_costs(st, tp, sp, eng, ctx, buf, x, y, log2, depth, modes, pr, lv, root_slot):  # pragma: no cover
    """D + lambda * (cbf + residual bits) of each candidate mode coded as one TB, all from
    the same neighbours and contexts, as one batch (no state changes), from their
    predictions ``pr`` (overwritten by the reconstructions), levels into ``lv`` (k, n, n).
    ``root_slot[mode]``: the index b of the mode's levels and reconstruction, kept for the
    leaf that reuses them (-1: not kept)."""
    n, bd = 1 << log2, tp.bit_depth
    k = modes.shape[0]
    maxv = (1 << bd) - 1
    org = st.org[0][y:y + n, x:x + n]
    resid = np.empty((k, n, n), dtype=np.int32)
    scans = np.empty(k, dtype=np.int64)
    for b in range(k):
        for i in range(n):
            for j in range(n):
                resid[b, i, j] = org[i, j] - pr[b, i, j]
        scans[b] = scan_idx_for(modes[b], log2, 0)
    quantize(tp, ctx, np.bool_(True), forward(resid, log2, log2 == 2, bd, np.empty_like(resid)), tp.qp[0], log2,
             np.int64(0), scans, depth, lv, st.tbw)
    r = reconstruct(lv, tp.qp[0], log2, log2 == 2, bd, np.empty_like(lv))
    dist = np.empty(k)
    keep = not (tp.ts_enabled and log2 == 2)
    for b in range(k):
        nz = lv[b].any()
        d = np.int64(0)
        for i in range(n):
            for j in range(n):
                v = pr[b, i, j]
                if nz:
                    v = min(max(v + r[b, i, j], 0), maxv)
                    pr[b, i, j] = v
                e = np.int64(org[i, j] - v)
                d += e * e
        dist[b] = float(d)
        if keep:
            root_slot[modes[b]] = b
    bits = _price_luma(eng, ctx, buf, lv, log2, scans, depth, tp.sign_hiding,
                       tp.ts_enabled and log2 == 2)
    flag = 0.0
    if 2 < log2 <= sp.log2_max_tb and depth < sp.max_tu_depth:  # split_transform_flag = 0
        flag = _flag_bits(ctx, T.CTX_SPLIT_TF + 5 - log2, 0)
    return dist + sp.lam * (bits + flag)


@unit
def _luma_leaf(st, tp, sp, eng, ctx, buf, x, y, log2, depth, mode, root_key, root_lv, root_rec,
               root_slot):  # pragma: no cover - numba
    """Code one luma TB for real (or reuse the TU-root check's coding from the same
    neighbours), price cbf + residual on the carried contexts; D + lambda * R."""
    n = 1 << log2
    b = root_slot[mode]
    if root_key[0] == x and root_key[1] == y and root_key[2] == log2 and root_key[3] == depth and b >= 0:
        # root_rec holds the reconstruction already: stored with a zero residual
        nz = root_lv[b].any()
        store_tb(st, 0, x, y, log2, root_rec[b], np.zeros((n, n), dtype=np.int32), root_lv[b],
                 nz, False, (1 << tp.bit_depth) - 1)
        st.tdepth[y >> 2:(y + n) >> 2, x >> 2:(x + n) >> 2] = depth
    else:
        nz = code_tb(st, tp, ctx, np.bool_(True), np.int64(0), x, y, log2, np.int64(mode), depth)
    b0 = eng[E_FRAC]
    encode_bin(eng, ctx, buf, T.CTX_CBF_LUMA + (1 if depth == 0 else 0), 1 if nz else 0)
    if nz:
        code_residual(eng, ctx, buf, np.ascontiguousarray(st.lv[0][y:y + n, x:x + n]), log2, 0,
                      scan_idx_for(mode, log2, 0), tp.sign_hiding, tp.ts_enabled and log2 == 2,
                      st.ts[0][y >> 2, x >> 2], SB_SCAN, C4_SCAN)
    bits = (eng[E_FRAC] - b0) / FRAC_ONE
    return _sse(st, 0, x, y, n) + sp.lam * bits


@unit
def _luma_tree(st, tp, sp, eng, ctx, buf, x0, y0, log2_0, depth0, mode, root_key, root_lv,
               root_rec, root_slot):  # pragma: no cover - numba
    """Code the luma transform tree of one PB with ``mode``, the TU split chosen by RD cost;
    contexts advanced past it; D + lambda * R of luma.

    Depth first without recursion (numba cannot cache recursive functions): a node that
    may split is coded as a leaf first (kept as a snapshot), then its four children are
    entered one by one; a frame per open node holds the running split cost, the leaf's
    cost and which child is next; a finished child hands its cost to its parent."""
    if log2_0 <= sp.log2_max_tb and not (log2_0 > 2 and depth0 < sp.max_tu_depth):  # a leaf
        return _luma_leaf(st, tp, sp, eng, ctx, buf, x0, y0, log2_0, depth0, mode, root_key,
                          root_lv, root_rec, root_slot)
    frames = np.empty((8, 8), dtype=np.int64)    # x, y, log2, depth, kind (0 forced, 1 trial), child
    costs = np.empty((8, 2))                      # running sum (split), leaf cost
    keep_ctx = List()
    keep_luma = List()
    top = 0
    x, y, log2, depth = x0, y0, log2_0, depth0
    entering = True
    val = 0.0
    while True:
        if entering:
            h = 1 << (log2 - 1)
            if log2 > sp.log2_max_tb:  # forced split (64x64 CU), no flag
                top = _push(frames, top, x, y, log2, depth, 0, 0)
                costs[top - 1, 0] = 0.0
                x, y, log2, depth = x, y, log2 - 1, depth + 1
                continue
            # NxN only exists at 8x8, so its 4x4 PBs (trafoDepth 1) can never split further
            if not (log2 > 2 and depth < sp.max_tu_depth):
                val = _luma_leaf(st, tp, sp, eng, ctx, buf, x, y, log2, depth, mode, root_key,
                                 root_lv, root_rec, root_slot)
                entering = False
            else:
                n = 1 << log2
                ci = T.CTX_SPLIT_TF + 5 - log2
                ctx0 = _snap(eng, ctx)
                sv = save_luma(st, x, y, n)
                j_leaf = sp.lam * _encode_flag(eng, ctx, buf, ci, 0) + _luma_leaf(
                    st, tp, sp, eng, ctx, buf, x, y, log2, depth, mode, root_key, root_lv, root_rec,
                    root_slot)
                keep_ctx.append(_snap(eng, ctx))
                keep_luma.append(save_luma(st, x, y, n))
                _restore(eng, ctx, ctx0)
                restore_luma(st, sv, x, y, n)
                top = _push(frames, top, x, y, log2, depth, 1, 0)
                costs[top - 1, 0] = sp.lam * _encode_flag(eng, ctx, buf, ci, 1)
                costs[top - 1, 1] = j_leaf
                x, y, log2, depth = x, y, log2 - 1, depth + 1
                continue
        if top == 0:
            return val
        f = top - 1
        px, py, pl, pd, kind, k = frames[f, 0], frames[f, 1], frames[f, 2], frames[f, 3], frames[f, 4], frames[f, 5]
        costs[f, 0] += val
        k += 1
        done = k == 4 or (kind == 1 and costs[f, 0] >= costs[f, 1])
        if not done:
            frames[f, 5] = k
            h = 1 << (pl - 1)
            x, y, log2, depth = px + (h if k & 1 else 0), py + (h if k & 2 else 0), pl - 1, pd + 1
            entering = True
            continue
        top -= 1
        if kind == 0:
            val = costs[f, 0]
        else:
            lc = keep_ctx.pop()
            ll = keep_luma.pop()
            if costs[f, 0] < costs[f, 1]:
                val = costs[f, 0]
            else:
                _restore(eng, ctx, lc)
                restore_luma(st, ll, px, py, 1 << pl)
                val = costs[f, 1]

@unit
def _luma_pu(st, tp, sp, eng, ctx, buf, cache, x, y, log2, depth):  # pragma: no cover - numba
    """Choose and code the luma mode of one PB (TU tree rooted at trafoDepth ``depth``)."""
    n = 1 << log2
    c0, c1, c2 = mpm_at(st, x, y, sp.log2_ctb)
    f0 = _flag_bits(ctx, T.CTX_PREV_INTRA, 0)
    f1 = _flag_bits(ctx, T.CTX_PREV_INTRA, 1)
    mbits = np.full(35, f0 + 5.0)
    mbits[c0] = f1 + 1.0
    mbits[c1] = f1 + 2.0
    mbits[c2] = f1 + 2.0
    if log2 <= 5:
        rough = np.empty(35)
        _mode_search(st.rec[0], st.av[0], st.org[0], x, y, log2, tp.bit_depth, sp.coarse, sp.sqrt_lam * mbits,
                     np.array([c0, c1, c2], dtype=np.int64), st.scr, st.iscr, cache[:0], rough)
    else:
        rough = _source_mode_satd(st, tp, sp, cache, x, y, log2) + sp.sqrt_lam * mbits
    order = _best_modes(rough, sp.n_rd[log2 - 2], (c0, c1, c2), sp.mpm)
    no = order.shape[0]
    # the TU-root check's levels and reconstructions, by candidate (root_slot: mode -> index)
    root_slot = np.full(35, -1, dtype=np.int64)
    root_key = np.array([-1, -1, -1, -1], dtype=np.int64)
    if no > 1 and log2 <= 5:
        root_rec = _predictions(st.rec[0], st.av[0], x, y, log2, np.bool_(True), tp.bit_depth, order)
        root_lv = np.empty((no, n, n), dtype=np.int32)
        j = _root_costs(st, tp, sp, eng, ctx, buf, x, y, log2, depth, order, root_rec, root_lv,
                        root_slot)
        root_key[:] = (x, y, log2, depth)
        for i in range(no):
            j[i] += sp.lam * mbits[order[i]]
        ranked = order[np.argsort(j, kind="mergesort")]
    else:
        root_rec = np.empty((0, 1, 1), dtype=np.int32)
        root_lv = root_rec
        ranked = order
    if log2 > 5:  # 64x64 CU (four 32x32 TBs): full sequential checks of all
        nt = no
    elif 2 < log2 <= sp.log2_max_tb and depth < sp.max_tu_depth:  # TU split possible
        nt = min(no, max(1, sp.tu_modes))
    else:
        nt = 1
    if nt > 1:
        ctx0 = _snap(eng, ctx)
        sv = save_luma(st, x, y, n)
        best_j = np.inf
        best_m = -1
        best_ctx = ctx0
        best_sv = sv
        for t in range(nt):
            m = ranked[t]
            _set_mode(st, x, y, log2, m)
            jm = _luma_tree(st, tp, sp, eng, ctx, buf, x, y, log2, depth, m, root_key, root_lv,
                            root_rec, root_slot) + sp.lam * mbits[m]
            if best_m < 0 or jm < best_j:
                best_j, best_m = jm, m
                best_ctx = _snap(eng, ctx)
                best_sv = save_luma(st, x, y, n)
            _restore(eng, ctx, ctx0)
            restore_luma(st, sv, x, y, n)
        _restore(eng, ctx, best_ctx)
        restore_luma(st, best_sv, x, y, n)
        _set_mode(st, x, y, log2, best_m)
        return best_m
    m = ranked[0]
    _set_mode(st, x, y, log2, m)
    _luma_tree(st, tp, sp, eng, ctx, buf, x, y, log2, depth, m, root_key, root_lv, root_rec, root_slot)
    return m


# ------------------------------------------------------------------ RD search: chroma -----

@unit
def _chroma_batch(st, tp, sp, eng, ctx, buf, x, y, log2, cidx, cmodes):  # pragma: no cover - numba
    """intra_chroma_pred_mode by RD cost for a CU whose chroma is one TB per component:
    every candidate's Cb and Cr coded in one batch from the same neighbours, priced by the
    chroma syntax alone (intra_chroma_pred_mode, cbf_cb / cbf_cr at trafoDepth 0, the two
    residuals): the rest of the CU is the same for every candidate and touches none of
    those contexts, so the differences in J are exactly those of write_cu."""
    bd = tp.bit_depth
    maxv = (1 << bd) - 1
    xc, yc, lc = x >> 1, y >> 1, log2 - 1
    n, k = 1 << lc, cidx.shape[0]
    pr = np.empty((2 * k, n, n), dtype=np.int32)
    resid = np.empty((2 * k, n, n), dtype=np.int32)
    scans = np.empty(2 * k, dtype=np.int64)
    for c in (1, 2):
        allp = _predictions(st.rec[c], st.av[c], xc, yc, lc, np.bool_(False), bd, cmodes)
        org = st.org[c][yc:yc + n, xc:xc + n]
        for i in range(k):
            b = (c - 1) * k + i
            pr[b] = allp[i]
            scans[b] = scan_idx_for(cmodes[i], lc, 1)
            for u in range(n):
                for v in range(n):
                    resid[b, u, v] = org[u, v] - pr[b, u, v]
    lv = np.empty((2 * k, n, n), dtype=np.int32)
    quantize(tp, ctx, np.bool_(True), forward(resid, lc, False, bd, np.empty_like(resid)), tp.qp[1], lc,
             np.int64(1), scans, np.int64(0), lv, st.tbw)
    r = reconstruct(lv, tp.qp[1], lc, False, bd, np.empty_like(lv))
    nz = np.zeros(2 * k, dtype=np.bool_)
    sse = np.empty(2 * k)
    for b in range(2 * k):
        nz[b] = lv[b].any()
        org = st.org[1 + b // k][yc:yc + n, xc:xc + n]
        d = np.int64(0)
        for u in range(n):
            for v in range(n):
                s = pr[b, u, v]
                if nz[b]:
                    s = min(max(s + r[b, u, v], 0), maxv)
                e = np.int64(org[u, v] - s)
                d += e * e
        sse[b] = float(d)
    ctx0 = _snap(eng, ctx)
    best_j = np.inf
    best = -1
    for i in range(k):
        b0 = eng[E_FRAC]
        encode_bin(eng, ctx, buf, T.CTX_CHROMA_MODE, 0 if cidx[i] == 4 else 1)
        extra = 0.0 if cidx[i] == 4 else 2.0  # two bypass bins
        encode_bin(eng, ctx, buf, T.CTX_CBF_CHROMA, 1 if nz[i] else 0)
        encode_bin(eng, ctx, buf, T.CTX_CBF_CHROMA, 1 if nz[k + i] else 0)
        for c in (1, 2):
            b = (c - 1) * k + i
            if nz[b]:
                code_residual(eng, ctx, buf, lv[b], lc, c, scans[i], tp.sign_hiding, False, 0,
                              SB_SCAN, C4_SCAN)
        j = sp.wc * (sse[i] + sse[k + i]) + sp.lam * ((eng[E_FRAC] - b0) / FRAC_ONE + extra)
        _restore(eng, ctx, ctx0)
        if best < 0 or j < best_j:
            best_j, best = j, i
    _set_cu(st.cidx, x, y, log2, cidx[best])
    for c in (1, 2):
        b = (c - 1) * k + best
        store_tb(st, c, xc, yc, lc, pr[b], r[b], lv[b], nz[b], False, maxv)


@unit
def _chroma_rd(st, tp, sp, eng, ctx, buf, x, y, log2):  # pragma: no cover - numba
    """intra_chroma_pred_mode by RD cost (weighted chroma SSE + lambda * the CU's bits),
    then the chosen chroma TBs are coded."""
    lm = st.mode[y >> 2, x >> 2]
    xc, yc, nc = x >> 1, y >> 1, 1 << (log2 - 1)
    if sp.chroma_all:
        cidx = np.array([4, 0, 1, 2, 3], dtype=np.int64)
    else:
        idx, _ = _chroma_mode_satd(st, tp, sp, xc, yc, log2 - 1, lm)
        cidx = np.array([4], dtype=np.int64) if idx == 4 else np.array([4, idx], dtype=np.int64)
    k = cidx.shape[0]
    cmodes = np.empty(k, dtype=np.int64)
    for i in range(k):
        cmodes[i] = chroma_mode_from(cidx[i], lm)
    root_split = st.tdepth[y >> 2, x >> 2] > 0
    if (k > 1 and not (root_split and log2 > 3) and tp.qp[1] == tp.qp[2]
            and not (tp.ts_enabled and log2 == 3)):
        _chroma_batch(st, tp, sp, eng, ctx, buf, x, y, log2, cidx, cmodes)
        return
    best = 0
    if k > 1:
        sv = save_chroma(st, xc, yc, nc)
        ctx0 = _snap(eng, ctx)
        best_j = np.inf
        best = -1
        for i in range(k):
            _set_cu(st.cidx, x, y, log2, cidx[i])
            chroma_tree(st, tp, ctx, np.bool_(True), x, y, log2, np.int64(0), cmodes[i])
            d = sp.wc * (_sse(st, 1, xc, yc, nc) + _sse(st, 2, xc, yc, nc))
            b0 = eng[E_FRAC]
            write_cu(eng, ctx, buf, st, x, y, log2, sp.log2_ctb, sp.max_tu_depth, sp.log2_max_tb,
                     tp.sign_hiding, tp.ts_enabled, sp.inter, sp.nref, sp.nref1, sp.max_merge, sp.max_tu_depth_inter)
            j = d + sp.lam * (eng[E_FRAC] - b0) / FRAC_ONE
            _restore(eng, ctx, ctx0)
            restore_chroma(st, sv, xc, yc, nc)
            if best < 0 or j < best_j:
                best_j, best = j, i
    _set_cu(st.cidx, x, y, log2, cidx[best])
    chroma_tree(st, tp, ctx, np.bool_(True), x, y, log2, np.int64(0), cmodes[best])


# ------------------------------------------------------------------ RD search: CUs --------

@unit
def _rd_code_cu(st, tp, sp, eng, ctx, buf, cache, x, y, log2, depth, nxn):  # pragma: no cover
    """Code one CU (modes, TU tree, chroma by RD); leaves it in the state and the carried
    contexts advanced past it; returns D + lambda * R of the whole CU."""
    _set_cu(st.cdepth, x, y, log2, depth)
    _set_cu(st.nxn, x, y, log2, 1 if nxn else 0)
    ctx_start = _snap(eng, ctx)
    if nxn:
        for k in range(4):
            _luma_pu(st, tp, sp, eng, ctx, buf, cache, x + (4 if k & 1 else 0), y + (4 if k & 2 else 0),
                     np.int64(2), np.int64(1))
    else:
        _luma_pu(st, tp, sp, eng, ctx, buf, cache, x, y, log2, np.int64(0))
    _chroma_rd(st, tp, sp, eng, ctx, buf, x, y, log2)
    _restore(eng, ctx, ctx_start)
    b0 = eng[E_FRAC]
    write_cu(eng, ctx, buf, st, x, y, log2, sp.log2_ctb, sp.max_tu_depth, sp.log2_max_tb,
             tp.sign_hiding, tp.ts_enabled, sp.inter, sp.nref, sp.nref1, sp.max_merge, sp.max_tu_depth_inter)
    bits = (eng[E_FRAC] - b0) / FRAC_ONE
    return _cu_cost_d(st, sp, x, y, log2) + sp.lam * bits


@unit
def _rd_cu_8x8(st, tp, sp, eng, ctx, buf, cache, x, y, depth):  # pragma: no cover - numba
    """2Nx2N against NxN (four 4x4 PUs) by RD cost."""
    ctx0 = _snap(eng, ctx)
    reg0 = save_region(st, x, y, 3)
    j2 = _rd_code_cu(st, tp, sp, eng, ctx, buf, cache, x, y, np.int64(3), np.int64(depth), np.bool_(False))
    keep_ctx = _snap(eng, ctx)
    keep = save_region(st, x, y, 3)
    _restore(eng, ctx, ctx0)
    restore_region(st, reg0, x, y, 3)
    jn = _rd_code_cu(st, tp, sp, eng, ctx, buf, cache, x, y, np.int64(3), np.int64(depth), np.bool_(True))
    if jn < j2:
        return jn
    _restore(eng, ctx, keep_ctx)
    restore_region(st, keep, x, y, 3)
    return j2


@unit
def _rd_cu(st, tp, sp, refs, eng, ctx, buf, cache, x0, y0):  # pragma: no cover - numba
    """Decide and code the CU quadtree of the CTU at (x0, y0); its RD cost J.

    Depth first without recursion (numba cannot cache recursive functions), as
    :func:`_luma_tree`: a CU that may split is coded whole first (kept as a snapshot), then
    its four children are entered one by one with the split's running cost."""
    H, W = st.org[0].shape
    frames = np.empty((8, 8), dtype=np.int64)   # x, y, log2, depth, kind, child
    costs = np.empty((8, 2))                     # running sum (split), whole cost
    keep_ctx = List()
    keep_reg = List()
    top = 0
    x, y, log2, depth = x0, y0, sp.log2_ctb, 0
    entering = True
    val = 0.0
    while True:
        if entering:
            entering = False
            s = 1 << log2
            if x >= W or y >= H:
                val = 0.0
            elif x + s > W or y + s > H:  # forced split, no flag
                top = _push(frames, top, x, y, log2, depth, 0, 0)
                costs[top - 1, 0] = 0.0
                x, y, log2, depth = x, y, log2 - 1, depth + 1
                entering = True
                continue
            elif log2 == 3:
                val = _rd_best_cu(st, tp, sp, refs, eng, ctx, buf, cache, x, y, np.int64(3), np.int64(depth))
            else:
                inc = 0
                if x > 0 and st.cdepth[y >> 3, (x - 1) >> 3] > depth:
                    inc += 1
                if y > 0 and st.cdepth[(y - 1) >> 3, x >> 3] > depth:
                    inc += 1
                ci = T.CTX_SPLIT_CU + inc
                ctx0 = _snap(eng, ctx)
                reg0 = save_region(st, x, y, log2)
                j_whole = sp.lam * _encode_flag(eng, ctx, buf, ci, 0) + _rd_best_cu(
                    st, tp, sp, refs, eng, ctx, buf, cache, x, y, np.int64(log2), np.int64(depth))
                if sp.early_cu and not _has_residual(st, x, y, log2):
                    val = j_whole
                else:
                    keep_ctx.append(_snap(eng, ctx))
                    keep_reg.append(save_region(st, x, y, log2))
                    _restore(eng, ctx, ctx0)
                    restore_region(st, reg0, x, y, log2)
                    top = _push(frames, top, x, y, log2, depth, 1, 0)
                    costs[top - 1, 0] = sp.lam * _encode_flag(eng, ctx, buf, ci, 1)
                    costs[top - 1, 1] = j_whole
                    x, y, log2, depth = x, y, log2 - 1, depth + 1
                    entering = True
                    continue
        if top == 0:
            return val
        f = top - 1
        px, py, pl, pd, kind, k = frames[f, 0], frames[f, 1], frames[f, 2], frames[f, 3], frames[f, 4], frames[f, 5]
        costs[f, 0] += val
        k += 1
        done = k == 4 or (kind == 1 and costs[f, 0] >= costs[f, 1])
        if not done:
            frames[f, 5] = k
            h = 1 << (pl - 1)
            x, y, log2, depth = px + (h if k & 1 else 0), py + (h if k & 2 else 0), pl - 1, pd + 1
            entering = True
            continue
        top -= 1
        if kind == 0:
            val = costs[f, 0]
        else:
            lc = keep_ctx.pop()
            lr = keep_reg.pop()
            if costs[f, 0] < costs[f, 1]:
                val = costs[f, 0]
            else:
                _restore(eng, ctx, lc)
                restore_region(st, lr, px, py, pl)
                val = costs[f, 1]

# ------------------------------------------------------------------ RD search: inter CUs --
# A P picture's CU is tried as 2Nx2N inter (every merge candidate as skip, the best merge
# candidates with a residual, AMVP with a motion search per reference picture), then as
# intra (preset intra_p), and the cheapest whole-CU RD cost wins. Every trial starts from
# the same contexts and region state (snapshot / restore), as the intra decisions do.


@njit(cache=True)
def _clear_motion(st, x, y, log2):  # pragma: no cover - numba
    """Mark the CU (x, y, 2^log2) intra in the motion maps (no prediction lists, no skip)."""
    n = 1 << log2
    u4, v4, m4 = y >> 2, x >> 2, n >> 2
    st.mot[u4:u4 + m4, v4:v4 + m4, MOT_PF] = 0
    st.mot[u4:u4 + m4, v4:v4 + m4, MOT_RI:MOT_RI + 2] = -1
    st.mot[u4:u4 + m4, v4:v4 + m4, MOT_MRG] = -1
    _set_icu(st, x, y, log2, ICU_SKIP, 0)
    _set_icu(st, x, y, log2, ICU_PART, 0)


@njit(cache=True)
def _set_icu(st, x, y, log2, ch, v):  # pragma: no cover - numba
    """Set channel ``ch`` of the inter CU map over the CU."""
    m = 1 << (log2 - 3)
    st.icu[y >> 3:(y >> 3) + m, x >> 3:(x >> 3) + m, ch] = v


@njit(cache=True)
def _begin_inter_cu(st, x, y, log2, depth, part):  # pragma: no cover - numba
    """The CU maps of an inter CU with PartMode ``part``, its residual cleared."""
    n = 1 << log2
    nc = n >> 1
    xc, yc = x >> 1, y >> 1
    u4, v4, m4 = y >> 2, x >> 2, n >> 2
    mc = max(nc >> 2, 1)
    _set_cu(st.cdepth, x, y, log2, depth)
    _set_cu(st.nxn, x, y, log2, 0)
    _set_cu(st.cidx, x, y, log2, 4)
    _set_icu(st, x, y, log2, ICU_PART, part)
    st.mode[u4:u4 + m4, v4:v4 + m4] = -1
    st.lv[0][y:y + n, x:x + n] = 0
    st.cbf[0][u4:u4 + m4, v4:v4 + m4] = 0
    st.ts[0][u4:u4 + m4, v4:v4 + m4] = 0
    st.tdepth[u4:u4 + m4, v4:v4 + m4] = 0
    for c in range(1, 3):
        st.lv[c][yc:yc + nc, xc:xc + nc] = 0
        st.cbf[c][yc >> 2:(yc >> 2) + mc, xc >> 2:(xc >> 2) + mc] = 0
        st.ts[c][yc >> 2:(yc >> 2) + mc, xc >> 2:(xc >> 2) + mc] = 0


@njit(cache=True)
def _place_pu(st, refs, bd, x, y, w, h, m, mark_av, luma_done):  # pragma: no cover - numba
    """The PB's motion ``m`` (motion-map channels) in the maps and its prediction in
    ``st.rec`` (chroma, and luma unless ``luma_done``: the caller put it there); ``mark_av``:
    its samples count as decoded for the motion prediction of the CU's next PB."""
    u4, v4, mh, mw = y >> 2, x >> 2, h >> 2, w >> 2
    xc, yc, wc, hc = x >> 1, y >> 1, w >> 1, h >> 1
    if not luma_done:
        predict_pb(refs, m, x, y, w, h, 0, bd, st.rec[0][y:y + h, x:x + w])
    for c in range(1, 3):
        predict_pb(refs, m, x, y, w, h, c, bd, st.rec[c][yc:yc + hc, xc:xc + wc])
    for i in range(mh):
        for j in range(mw):
            st.mot[u4 + i, v4 + j, :] = m
    if mark_av:
        st.av[0][y:y + h, x:x + w] = True


@unit
def _code_inter_cu(st, tp, sp, eng, ctx, buf, x, y, log2, residual):  # pragma: no cover - numba
    """With the inter CU's motion and prediction in the state: its residual, coded with
    uniform transform trees 0 .. tu_inter levels below the largest TB and kept by RD cost
    (``residual``), or none; a 2Nx2N merge CU left without levels is a skip. The carried
    contexts advance past the CU; its RD cost J."""
    n = 1 << log2
    nc = n >> 1
    st.av[0][y:y + n, x:x + n] = True
    st.av[1][y >> 1:(y >> 1) + nc, x >> 1:(x >> 1) + nc] = True
    st.av[2][y >> 1:(y >> 1) + nc, x >> 1:(x >> 1) + nc] = True
    merge2n = st.icu[y >> 3, x >> 3, ICU_PART] == 0 and st.mot[y >> 2, x >> 2, MOT_MRG] >= 0
    if not residual:
        _set_icu(st, x, y, log2, ICU_SKIP, 1 if merge2n else 0)
        b0 = eng[E_FRAC]
        write_cu(eng, ctx, buf, st, x, y, log2, sp.log2_ctb, sp.max_tu_depth, sp.log2_max_tb,
                 tp.sign_hiding, tp.ts_enabled, sp.inter, sp.nref, sp.nref1, sp.max_merge, sp.max_tu_depth_inter)
        return _cu_cost_d(st, sp, x, y, log2) + sp.lam * (eng[E_FRAC] - b0) / FRAC_ONE
    forced = log2 - min(log2, sp.log2_max_tb)
    last = min(sp.tu_inter, sp.max_tu_depth_inter - forced, min(log2, sp.log2_max_tb) - 2)
    if last == 0:  # one tree to try: no snapshots
        return _inter_residual(st, tp, sp, eng, ctx, buf, x, y, log2, 0, merge2n)
    ctx0 = _snap(eng, ctx)
    pred = save_region(st, x, y, log2)
    best_j = np.inf
    best = 0
    keep_ctx = ctx0
    keep = pred
    for extra in range(last + 1):
        if extra > 0:
            _restore(eng, ctx, ctx0)
            restore_region(st, pred, x, y, log2)
        j = _inter_residual(st, tp, sp, eng, ctx, buf, x, y, log2, extra, merge2n)
        if j < best_j:
            best_j, best = j, extra
            if extra < last:
                keep_ctx, keep = _snap(eng, ctx), save_region(st, x, y, log2)
    if best != last:
        _restore(eng, ctx, keep_ctx)
        restore_region(st, keep, x, y, log2)
    return best_j


@unit
def _inter_residual(st, tp, sp, eng, ctx, buf, x, y, log2, extra, merge2n):  # pragma: no cover
    """The inter CU's residual coded with a uniform transform tree ``extra`` levels below
    its largest TB, the CU written (contexts advance); its J."""
    inter_tree(st, tp, ctx, np.bool_(True), x, y, log2, np.int64(sp.log2_max_tb), np.int64(extra))
    _set_icu(st, x, y, log2, ICU_SKIP, 1 if (merge2n and not cu_has_residual(st, x, y, log2)) else 0)
    b0 = eng[E_FRAC]
    write_cu(eng, ctx, buf, st, x, y, log2, sp.log2_ctb, sp.max_tu_depth, sp.log2_max_tb,
             tp.sign_hiding, tp.ts_enabled, sp.inter, sp.nref, sp.nref1, sp.max_merge, sp.max_tu_depth_inter)
    return _cu_cost_d(st, sp, x, y, log2) + sp.lam * (eng[E_FRAC] - b0) / FRAC_ONE


@njit(cache=True)
def _tile_of(w, h):  # pragma: no cover - numba
    return 8 if (w % 8 == 0 and h % 8 == 0) else 4


@njit(cache=True)
def _idc_bits(b_slice, lx_or_bi):  # pragma: no cover - numba
    """Bins of inter_pred_idc (0: L0, 1: L1, 2: BI) of a PB larger than 8x4 in a B slice."""
    if not b_slice:
        return 0
    return 1 if lx_or_bi == 2 else 2


@njit(cache=True)
def _ref_bits(r, n):  # pragma: no cover - numba
    """Bins of ref_idx r among n active references (truncated unary)."""
    return min(r + 1, n - 1) if n > 1 else 0


@njit(cache=True)
def _set_amvp(refs, st, sp, x, y, w, h, lx, r, mx, my, out):  # pragma: no cover - numba
    """List X of ``out`` (motion-map channels): reference r, vector (mx, my), the cheaper
    predictor's flag and the mvd against it; returns the mvd's bins (flag included)."""
    mvp = np.zeros((2, 2), dtype=np.int64)
    mvp_candidates(st, refs, x, y, w, h, lx, r, sp.log2_ctb, mvp)
    b0 = mvd_bits(mx - mvp[0, 0]) + mvd_bits(my - mvp[0, 1])
    b1 = mvd_bits(mx - mvp[1, 0]) + mvd_bits(my - mvp[1, 1])
    f = 1 if b1 < b0 else 0
    out[MOT_PF] |= 1 << lx
    out[MOT_MV + 2 * lx], out[MOT_MV + 2 * lx + 1] = mx, my
    out[MOT_RI + lx] = r
    out[MOT_MVPF + lx] = f
    out[MOT_MVD + 2 * lx], out[MOT_MVD + 2 * lx + 1] = mx - mvp[f, 0], my - mvp[f, 1]
    return min(b0, b1) + 1


@unit
def _amvp_search(st, sp, refs, bd, x, y, w, h, cands, nm, only, out):  # pragma: no cover - numba
    """AMVP motion of the PB into ``out`` (motion-map channels, merge index -1): a motion
    search per reference picture of each list (``only[X]`` >= 0: that one of list X),
    started from its predictors, zero and the merge candidates' vectors into that picture
    (a picture already searched through list 0 is re-priced, not searched again, as HM
    does for identical lists); in a B slice also bi-prediction of the two lists' best,
    refined ``bi_iters`` times. The cheapest by SATD + sqrt(lambda) * (mvd, ref_idx and
    inter_pred_idc bins); its cost."""
    b_slice = refs.nref[1] > 0
    starts = np.zeros((8, 2), dtype=np.int64)
    mvp = np.zeros((2, 2), dtype=np.int64)
    npic = refs.ref_y.shape[0]
    seen = np.zeros(npic, dtype=np.bool_)
    s_mv = np.zeros((npic, 2), dtype=np.int64)
    s_dist = np.zeros(npic)
    bc = np.full(2, np.inf)
    br = np.zeros(2, dtype=np.int64)
    bmv = np.zeros((2, 2), dtype=np.int64)
    for lx in range(2 if b_slice else 1):
        nr = refs.nref[lx]
        for r in range(nr):
            if only[lx] >= 0 and r != only[lx]:
                continue
            k = refs.pic[lx, r]
            mvp_candidates(st, refs, x, y, w, h, lx, r, sp.log2_ctb, mvp)
            if seen[k]:
                mx, my = s_mv[k, 0], s_mv[k, 1]
                c = s_dist[k] + mv_cost(mx, my, mvp, sp.sqrt_lam)
            else:
                ns = 0
                for q in range(2):
                    starts[ns, 0], starts[ns, 1] = mvp[q, 0], mvp[q, 1]
                    ns += 1
                starts[ns, 0], starts[ns, 1] = 0, 0
                ns += 1
                for i in range(nm):
                    for ly in range(2):
                        if ns < 8 and cands[i, MOT_PF] & (1 << ly) and refs.pic[ly, cands[i, MOT_RI + ly]] == k:
                            starts[ns, 0], starts[ns, 1] = cands[i, MOT_MV + 2 * ly], cands[i, MOT_MV + 2 * ly + 1]
                            ns += 1
                mx, my, c = motion_search(st.org[0], x, y, refs.ref_y[k], x, y, w, h, starts, ns, mvp,
                                          sp.sqrt_lam, sp.search_range, bd, True, 1.0)
                seen[k] = True
                s_mv[k, 0], s_mv[k, 1] = mx, my
                s_dist[k] = c - mv_cost(mx, my, mvp, sp.sqrt_lam)
            c += sp.sqrt_lam * (_ref_bits(r, nr) + _idc_bits(b_slice, lx))
            if c < bc[lx]:
                bc[lx], br[lx], bmv[lx, 0], bmv[lx, 1] = c, r, mx, my
    out[:] = 0
    out[MOT_RI], out[MOT_RI + 1], out[MOT_MRG] = -1, -1, -1
    best = 0 if bc[0] <= bc[1] else 1
    cost = bc[best]
    if b_slice and w + h != 12 and sp.bi_iters > 0:
        bi = np.zeros(MOT_CH, dtype=np.int64)
        cb = _bi_search(st, sp, refs, bd, x, y, w, h, br, bmv, bi)
        if cb < cost:
            out[:] = bi
            return cb
    _set_amvp(refs, st, sp, x, y, w, h, best, br[best], bmv[best, 0], bmv[best, 1], out)
    return cost


@njit(cache=True)
def _bi_search(st, sp, refs, bd, x, y, w, h, br, bmv, out):  # pragma: no cover - numba
    """Bi-prediction from list 0's and list 1's best uni-prediction (references br, vectors
    bmv), each of ``bi_iters`` rounds refining one list's vector (list 1 first) within HM's
    BipredSearchRange of 4 samples against 2 x source - the other list's prediction; the
    motion into ``out`` and its cost (SATD of the real bi-prediction + sqrt(lambda) * bins)."""
    mv = bmv.copy()
    org = st.org[0]
    pred = np.empty((h, w), dtype=np.int32)
    tgt = np.empty((h, w), dtype=np.int32)
    mvp = np.zeros((2, 2), dtype=np.int64)
    starts = np.zeros((1, 2), dtype=np.int64)
    for it in range(sp.bi_iters):
        lx = 1 - (it & 1)
        ly = 1 - lx
        predict_block(refs.ref_y[refs.pic[ly, br[ly]]], x, y, w, h, mv[ly, 0], mv[ly, 1], True, bd, pred)
        for i in range(h):
            for j in range(w):
                tgt[i, j] = 2 * org[y + i, x + j] - pred[i, j]
        mvp_candidates(st, refs, x, y, w, h, lx, br[lx], sp.log2_ctb, mvp)
        starts[0, 0], starts[0, 1] = mv[lx, 0], mv[lx, 1]
        mx, my, _ = motion_search(tgt, 0, 0, refs.ref_y[refs.pic[lx, br[lx]]], x, y, w, h, starts, 1,
                                  mvp, sp.sqrt_lam, 4, bd, True, 0.5)
        mv[lx, 0], mv[lx, 1] = mx, my
    out[:] = 0
    out[MOT_RI], out[MOT_RI + 1], out[MOT_MRG] = -1, -1, -1
    bins = _idc_bits(True, 2)
    for lx in range(2):
        bins += _set_amvp(refs, st, sp, x, y, w, h, lx, br[lx], mv[lx, 0], mv[lx, 1], out) \
            + _ref_bits(br[lx], refs.nref[lx])
    predict_pb(refs, out, x, y, w, h, 0, bd, pred)
    sd = satd_scratch(w)
    return _satd_tiles(org[y:y + h, x:x + w], pred, _tile_of(w, h), sd) + sp.sqrt_lam * bins


@njit(cache=True)
def _merge_rough(st, sp, refs, bd, x, y, w, h, cands, nm, out, preds):  # pragma: no cover - numba
    """SATD + sqrt(lambda) * merge_idx bins of each merge candidate of the PB; its luma
    prediction into preds[i] (placed later without predicting again)."""
    ob = st.org[0][y:y + h, x:x + w]
    sd = satd_scratch(w)
    tile = _tile_of(w, h)
    for i in range(nm):
        predict_pb(refs, cands[i], x, y, w, h, 0, bd, preds[i])
        out[i] = _satd_tiles(ob, preds[i], tile, sd) + sp.sqrt_lam * min(i + 1, nm - 1)


@njit(cache=True)
def _place_merge(st, refs, bd, x, y, w, h, cands, i, preds, mark_av):  # pragma: no cover - numba
    """Merge candidate i of the PB in the state (its luma prediction from ``preds``)."""
    cands[i, MOT_MRG] = i
    st.rec[0][y:y + h, x:x + w] = preds[i]
    _place_pu(st, refs, bd, x, y, w, h, cands[i], mark_av, True)


@unit
def _inter_2n(st, tp, sp, refs, eng, ctx, buf, x, y, log2, depth, ref_out):  # pragma: no cover - numba
    """The cheapest 2Nx2N inter coding of the CU (every merge candidate as skip, the best
    merge_rd of them with a residual, AMVP with a residual), left in the state with the
    contexts past it; its J (ref_out: the reference index per list AMVP chose, 0 for a
    list it left unused)."""
    n = 1 << log2
    bd = tp.bit_depth
    ctx0 = _snap(eng, ctx)
    reg0 = save_region(st, x, y, log2)
    best_j = np.inf
    best_ctx = ctx0
    best_reg = reg0
    cands = np.zeros((5, MOT_CH), dtype=np.int64)
    nm = merge_candidates(st, refs, x, y, n, n, sp.log2_ctb, 0, 0, cands)
    rough = np.empty(nm)
    preds = np.empty((nm, n, n), dtype=np.int32)
    _merge_rough(st, sp, refs, bd, x, y, n, n, cands, nm, rough, preds)
    order = np.argsort(rough)
    for t in range(nm + min(sp.merge_rd, nm)):
        i = order[t - nm] if t >= nm else t
        _begin_inter_cu(st, x, y, log2, depth, 0)
        _place_merge(st, refs, bd, x, y, n, n, cands, i, preds, False)
        j = _code_inter_cu(st, tp, sp, eng, ctx, buf, x, y, log2, t >= nm)
        if j < best_j:
            best_j, best_ctx, best_reg = j, _snap(eng, ctx), save_region(st, x, y, log2)
        _restore(eng, ctx, ctx0)
        restore_region(st, reg0, x, y, log2)
    m = np.zeros(MOT_CH, dtype=np.int64)
    only = np.full(2, -1, dtype=np.int64)
    _amvp_search(st, sp, refs, bd, x, y, n, n, cands, nm, only, m)
    ref_out[0], ref_out[1] = max(m[MOT_RI], 0), max(m[MOT_RI + 1], 0)
    _begin_inter_cu(st, x, y, log2, depth, 0)
    _place_pu(st, refs, bd, x, y, n, n, m, False, False)
    j = _code_inter_cu(st, tp, sp, eng, ctx, buf, x, y, log2, True)
    if j < best_j:
        return j
    _restore(eng, ctx, best_ctx)
    restore_region(st, best_reg, x, y, log2)
    return best_j


@unit
def _inter_parts(st, tp, sp, refs, eng, ctx, buf, x, y, log2, depth, part, only):  # pragma: no cover
    """The CU as two PBs, 2NxN (``part`` 1) or Nx2N (2): each takes the cheaper of its best
    merge candidate and its AMVP motion (``only[X]`` >= 0: searched in that reference of
    list X only) by SATD + lambda * bits (HM's merge estimation), then the CU's residual
    is coded by RD. Left in the state; its J."""
    n = 1 << log2
    half = n >> 1
    bd = tp.bit_depth
    cands = np.zeros((5, MOT_CH), dtype=np.int64)
    m = np.zeros(MOT_CH, dtype=np.int64)
    rough = np.empty(5)
    if part == 1:
        preds = np.empty((5, half, n), dtype=np.int32)
    else:
        preds = np.empty((5, n, half), dtype=np.int32)
    _begin_inter_cu(st, x, y, log2, depth, part)
    for k in range(2):
        if part == 1:
            px, py, w, h = x, y + k * half, n, half
        else:
            px, py, w, h = x + k * half, y, half, n
        nm = merge_candidates(st, refs, px, py, w, h, sp.log2_ctb, part, k, cands)
        _merge_rough(st, sp, refs, bd, px, py, w, h, cands, nm, rough, preds)
        i = np.argmin(rough[:nm])
        c = _amvp_search(st, sp, refs, bd, px, py, w, h, cands, nm, only, m)
        # the first PB is available to the second (6.4.2: a neighbour in the same coding
        # block is; merge_candidates drops the one A1 / B1 rule 8.5.3.2.3 excludes)
        mark = k == 0
        if rough[i] <= c:
            _place_merge(st, refs, bd, px, py, w, h, cands, i, preds, mark)
        else:
            _place_pu(st, refs, bd, px, py, w, h, m, mark, False)
    return _code_inter_cu(st, tp, sp, eng, ctx, buf, x, y, log2, True)


@unit
def _inter_cu(st, tp, sp, refs, eng, ctx, buf, x, y, log2, depth):  # pragma: no cover - numba
    """The cheapest inter coding of the CU: 2Nx2N, then (preset ``rect``) 2NxN and Nx2N;
    left in the state with the contexts past it; its J."""
    only = np.full(2, -1, dtype=np.int64)
    if not sp.rect:
        return _inter_2n(st, tp, sp, refs, eng, ctx, buf, x, y, log2, depth, only)
    ctx0 = _snap(eng, ctx)
    reg0 = save_region(st, x, y, log2)
    best = _inter_2n(st, tp, sp, refs, eng, ctx, buf, x, y, log2, depth, only)
    if sp.rect_all_refs:
        only[:] = -1
    keep_ctx = _snap(eng, ctx)
    keep = save_region(st, x, y, log2)
    for part in (1, 2):
        _restore(eng, ctx, ctx0)
        restore_region(st, reg0, x, y, log2)
        jp = _inter_parts(st, tp, sp, refs, eng, ctx, buf, x, y, log2, depth, np.int64(part), only)
        if jp < best:
            best = jp
            keep_ctx, keep = _snap(eng, ctx), save_region(st, x, y, log2)
    _restore(eng, ctx, keep_ctx)
    restore_region(st, keep, x, y, log2)
    return best


@unit
def _rd_best_cu(st, tp, sp, refs, eng, ctx, buf, cache, x, y, log2, depth):  # pragma: no cover
    """The whole CU (x, y, 2^log2) coded its cheapest way (intra: 2Nx2N, and NxN at 8x8; in
    P pictures also inter), left in the state; its J."""
    if not sp.inter:
        if log2 == 3:
            return _rd_cu_8x8(st, tp, sp, eng, ctx, buf, cache, x, y, depth)
        return _rd_code_cu(st, tp, sp, eng, ctx, buf, cache, x, y, log2, depth, np.bool_(False))
    ctx0 = _snap(eng, ctx)
    reg0 = save_region(st, x, y, log2)
    j_inter = _inter_cu(st, tp, sp, refs, eng, ctx, buf, x, y, log2, depth)
    if sp.intra_p == 0 or (sp.intra_p == 1 and not cu_has_residual(st, x, y, log2)):
        return j_inter
    keep_ctx = _snap(eng, ctx)
    keep = save_region(st, x, y, log2)
    _restore(eng, ctx, ctx0)
    restore_region(st, reg0, x, y, log2)
    _clear_motion(st, x, y, log2)
    if log2 == 3:
        j_intra = _rd_cu_8x8(st, tp, sp, eng, ctx, buf, cache, x, y, depth)
    else:
        j_intra = _rd_code_cu(st, tp, sp, eng, ctx, buf, cache, x, y, log2, depth, np.bool_(False))
    if j_intra < j_inter:
        return j_intra
    _restore(eng, ctx, keep_ctx)
    restore_region(st, keep, x, y, log2)
    return j_inter


# ------------------------------------------------------------------ picture ---------------

@njit(cache=True)
def search_picture(st, tp, sp, refs, eng, ctx, buf):  # pragma: no cover - numba
    """Decide and code every CTU of the picture in z-order into ``st`` (preset ``sp``); the
    RD search carries (eng, ctx, buf), an estimate-mode engine at the slice's initial
    contexts."""
    # borrowed (base.jit.borrow): the calls below pass them on without counting references
    st, tp, refs = borrow(st), borrow(tp), borrow(refs)
    eng, ctx, buf = borrow(eng), borrow(ctx), borrow(buf)
    cache = np.empty((CACHE_ROWS + 1, 35))
    H, W = st.org[0].shape
    ctb = 1 << sp.log2_ctb
    for ry in range(-(-H // ctb)):
        for rx in range(-(-W // ctb)):
            cache[:, 0] = np.nan
            if sp.rd or sp.inter:
                _rd_cu(st, tp, sp, refs, eng, ctx, buf, cache, rx * ctb, ry * ctb)
            else:
                _fast_decide(st, tp, sp, ctx, cache, rx * ctb, ry * ctb)
