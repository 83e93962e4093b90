"""The encoder's picture state: every decision and sample of one picture as planes.

Both decision strategies (the SATD decisions of preset ``fast`` and the RD search of
``medium`` / ``slow``, :mod:`codeclab.codecs.hevc.search`) write into one
:class:`PictureState`, and the slice writer (:mod:`codeclab.codecs.hevc.ctu_syntax`) reads
the coded syntax back from it. Everything is a numpy plane indexed by position, so
compiled code can code a region one way, measure it, and undo it by copying the region
back (:func:`save_region` / :func:`restore_region`), and Python only ever sees whole
pictures.

Per-position maps: a TB's levels sit at the TB's own position in ``lv`` (luma coordinates
for Y, chroma coordinates for Cb/Cr); ``cbf`` / ``ts`` have one entry per 4x4 unit of
their component, set over the whole TB; luma modes and trafoDepth per 4x4 luma unit, the
CU's depth, part mode and intra_chroma_pred_mode per 8x8 luma unit; inter prediction per
4x4 luma unit in the channels of ``mot`` (prediction list flags, motion vectors in quarter
samples, reference indices, merge index or -1, mvp flags, the coded mvd), cu_skip_flag and
the inter PartMode per 8x8 in ``icu``. (Two packed arrays, not eight: every compiled call
that takes the state passes each of its arrays by value and checks each one's reference
count, so each array adds to the cost of every call, intra ones included; the search
borrows the state's arrays (``base.jit.borrow``), so these checks find no owner to count.)
The TU tree is implied: a node (x, y, log2, depth) is split iff ``tdepth`` at its top-left
exceeds ``depth``; a CU's size is ``log2_ctb - cdepth``.

The state also carries the buffers the decisions and the TB coding work in (``scr``,
``iscr``, ``tbw``): one picture is coded by one thread, so one set serves every block.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from codeclab.base.jit import view
from codeclab.codecs.hevc.rdoq import RATE_K, rdoq_work

__all__ = ["PictureState", "new_picture_state", "save_region", "restore_region",
           "save_luma", "restore_luma", "save_chroma", "restore_chroma",
           "MOT_PF", "MOT_MV", "MOT_RI", "MOT_MRG", "MOT_MVPF", "MOT_MVD", "MOT_CH",
           "ICU_SKIP", "ICU_PART", "blank_motion", "TbWork", "new_tb_work", "tb_rates", "tb_scans",
           "TB_ROWS", "TB_LINES"]

# channels of the motion map ``mot`` (int32 per 4x4 luma unit); list X = 0, 1
MOT_PF = 0     # predFlagL0 | predFlagL1 << 1; 0 = intra or not coded
MOT_MV = 1     # mvLX (x, y) at MOT_MV + 2X, MOT_MV + 2X + 1, quarter samples
MOT_RI = 5     # refIdxLX at MOT_RI + X; -1: list unused
MOT_MRG = 7    # merge_idx of the PB; -1: coded with mvd (AMVP)
MOT_MVPF = 8   # mvp_lX_flag at MOT_MVPF + X
MOT_MVD = 10   # the coded MvdLX (x, y) at MOT_MVD + 2X, MOT_MVD + 2X + 1
MOT_CH = 14
# channels of the inter CU map ``icu`` (uint8 per 8x8 luma unit)
ICU_SKIP = 0   # cu_skip_flag
ICU_PART = 1   # PartMode of an inter CU: 0 2Nx2N, 1 2NxN, 2 Nx2N


SCRATCH = 4096  # PictureState.scr: search._satd_modes' seven buffers for blocks up to 32x32


class TbWork(NamedTuple):
    """The buffers of coding one TB (tb_coding.code_tb, tb_coding.quantize), allocated with
    the picture state instead of a dozen small arrays per TB. Three arrays, not one per
    buffer: a compiled unit that takes the state gets each of its arrays by value."""

    blk: np.ndarray  # int32 (TB_ROWS, 1024): prediction, residual, coefficients, levels, the
    #                  decoded residual, RDOQ's levels (quantize), the reference lines (TB_LINES)
    fw: np.ndarray   # float64: RDOQ's work array (rdoq.rdoq_work)
    iw: np.ndarray   # int64: RDOQ's work array, then its rates (tb_rates), then two scanIdx (tb_scans)


TB_ROWS = 7
TB_LINES = TB_ROWS - 1


class PictureState(NamedTuple):
    """One picture being coded (all planes at the coded size, multiples of 8)."""

    org: tuple[np.ndarray, np.ndarray, np.ndarray]   # int32 source Y, Cb, Cr
    rec: tuple[np.ndarray, np.ndarray, np.ndarray]   # int32 reconstruction (before filters)
    av: tuple[np.ndarray, np.ndarray, np.ndarray]    # bool: reconstructed (intra availability)
    lv: tuple[np.ndarray, np.ndarray, np.ndarray]    # int32 levels of each TB at its position
    cbf: tuple[np.ndarray, np.ndarray, np.ndarray]   # uint8 per 4x4 unit: the TB has levels
    ts: tuple[np.ndarray, np.ndarray, np.ndarray]    # uint8 per 4x4 unit: transform_skip_flag
    mode: np.ndarray     # int32 (H/4, W/4) IntraPredModeY, -1 = not coded yet
    tdepth: np.ndarray   # uint8 (H/4, W/4) trafoDepth of the luma TB covering the unit
    cdepth: np.ndarray   # int32 (H/8, W/8) CU depth (coding quadtree)
    nxn: np.ndarray      # uint8 (H/8, W/8) part_mode NxN (8x8 CUs only)
    cidx: np.ndarray     # uint8 (H/8, W/8) intra_chroma_pred_mode (0..4) of the CU
    mot: np.ndarray      # int32 (H/4, W/4, MOT_CH) motion of the PB covering the unit
    icu: np.ndarray      # uint8 (H/8, W/8, 2) cu_skip_flag, inter PartMode
    scr: np.ndarray      # int32 (SCRATCH,) buffers of the SATD mode decisions (search._carve)
    iscr: np.ndarray     # int64 (64,) their mode lists and SATD values (search._mode_search)
    tbw: TbWork          # the buffers of coding one TB


def new_picture_state(org: list[np.ndarray], inter: bool = True) -> PictureState:
    """A blank state for the source planes ``org`` (int32, coded size, 4:2:0). Without
    ``inter`` (an I picture) the motion maps are empty: nothing reads them, and a snapshot
    of a region then copies none of them."""
    H, W = org[0].shape
    sizes = [(H, W), (H // 2, W // 2), (H // 2, W // 2)]
    h4, w4 = (H // 4, W // 4) if inter else (0, 0)
    h8, w8 = (H // 8, W // 8) if inter else (0, 0)

    def three(dtype, div: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(np.zeros((h // div, w // div), dtype=dtype) for h, w in sizes)  # type: ignore[return-value]

    return PictureState(
        org=tuple(np.ascontiguousarray(o, dtype=np.int32) for o in org),  # type: ignore[arg-type]
        rec=three(np.int32), av=three(np.bool_), lv=three(np.int32),
        cbf=three(np.uint8, 4), ts=three(np.uint8, 4),
        mode=np.full((H // 4, W // 4), -1, dtype=np.int32),
        tdepth=np.zeros((H // 4, W // 4), dtype=np.uint8),
        cdepth=np.zeros((H // 8, W // 8), dtype=np.int32),
        nxn=np.zeros((H // 8, W // 8), dtype=np.uint8),
        cidx=np.zeros((H // 8, W // 8), dtype=np.uint8),
        mot=blank_motion(h4, w4), icu=np.zeros((h8, w8, 2), dtype=np.uint8),
        scr=np.zeros(SCRATCH, dtype=np.int32), iscr=np.zeros(64, dtype=np.int64), tbw=new_tb_work())


def new_tb_work() -> TbWork:
    """A TB workspace (every buffer for blocks up to 32x32)."""
    fw, iw = rdoq_work()
    return TbWork(blk=np.zeros((TB_ROWS, 1024), dtype=np.int32), fw=fw,
                  iw=np.zeros(iw.size + 2 * RATE_K + 2, dtype=np.int64))


@njit(cache=True)
def tb_rates(w):  # pragma: no cover - numba
    """The (RATE_K, 2) rates RDOQ prices with, in a TbWork's int64 array."""
    o = w.iw.size - 2 * RATE_K - 2
    return view(w.iw[o:o + 2 * RATE_K], (RATE_K, 2))


@njit(cache=True)
def tb_scans(w, k):  # pragma: no cover - numba
    """The scanIdx array of k <= 2 TBs, in a TbWork's int64 array."""
    return w.iw[w.iw.size - 2:w.iw.size - 2 + k]


def blank_motion(h4: int, w4: int) -> np.ndarray:
    """A motion map of intra units: no prediction list, no reference, no merge index."""
    mot = np.zeros((h4, w4, MOT_CH), dtype=np.int32)
    mot[..., MOT_RI:MOT_RI + 2] = -1
    mot[..., MOT_MRG] = -1
    return mot


# ------------------------------------------------------------------ snapshots -------------
# A snapshot is a tuple of copies of the region of each plane; restore copies them back.
# Luma-only and chroma-only variants serve the mode and TU-tree trials, which touch one.


@njit(cache=True)
def _window(a, y, x, h, w):  # pragma: no cover - numba
    """A contiguous copy of a[y:y + h, x:x + w] (cut at the plane's edges, as the slice
    is), by rows (numba's copy of a strided view walks it element by element)."""
    h, w = max(min(h, a.shape[0] - y), 0), max(min(w, a.shape[1] - x), 0)
    out = np.empty((h, w), dtype=a.dtype)
    for i in range(h):
        src = a[y + i, x:x + w]
        dst = out[i]
        for j in range(w):
            dst[j] = src[j]
    return out


@njit(cache=True)
def _put(a, s, y, x):  # pragma: no cover - numba
    """a[y:y + h, x:x + w] = s, by rows."""
    h, w = s.shape
    for i in range(h):
        src = s[i]
        dst = a[y + i, x:x + w]
        for j in range(w):
            dst[j] = src[j]


@njit(cache=True)
def save_luma(st, x, y, n):  # pragma: no cover - numba
    """Reconstruction, availability, levels, cbf, ts and trafoDepth of the luma square."""
    u, v, m = y >> 2, x >> 2, max(n >> 2, 1)
    return (_window(st.rec[0], y, x, n, n), _window(st.av[0], y, x, n, n), _window(st.lv[0], y, x, n, n),
            _window(st.cbf[0], u, v, m, m), _window(st.ts[0], u, v, m, m), _window(st.tdepth, u, v, m, m))


@njit(cache=True)
def restore_luma(st, s, x, y, n):  # pragma: no cover - numba
    u, v = y >> 2, x >> 2
    _put(st.rec[0], s[0], y, x)
    _put(st.av[0], s[1], y, x)
    _put(st.lv[0], s[2], y, x)
    _put(st.cbf[0], s[3], u, v)
    _put(st.ts[0], s[4], u, v)
    _put(st.tdepth, s[5], u, v)


@njit(cache=True)
def save_chroma(st, xc, yc, n):  # pragma: no cover - numba
    """Cb and Cr of the chroma square (xc, yc, n): samples, availability, levels, flags."""
    u, v, m = yc >> 2, xc >> 2, max(n >> 2, 1)
    return (_window(st.rec[1], yc, xc, n, n), _window(st.rec[2], yc, xc, n, n),
            _window(st.av[1], yc, xc, n, n), _window(st.av[2], yc, xc, n, n),
            _window(st.lv[1], yc, xc, n, n), _window(st.lv[2], yc, xc, n, n),
            _window(st.cbf[1], u, v, m, m), _window(st.cbf[2], u, v, m, m),
            _window(st.ts[1], u, v, m, m), _window(st.ts[2], u, v, m, m))


@njit(cache=True)
def restore_chroma(st, s, xc, yc, n):  # pragma: no cover - numba
    u, v = yc >> 2, xc >> 2
    _put(st.rec[1], s[0], yc, xc)
    _put(st.rec[2], s[1], yc, xc)
    _put(st.av[1], s[2], yc, xc)
    _put(st.av[2], s[3], yc, xc)
    _put(st.lv[1], s[4], yc, xc)
    _put(st.lv[2], s[5], yc, xc)
    _put(st.cbf[1], s[6], u, v)
    _put(st.cbf[2], s[7], u, v)
    _put(st.ts[1], s[8], u, v)
    _put(st.ts[2], s[9], u, v)


@njit(cache=True)
def save_region(st, x, y, log2):  # pragma: no cover - numba
    """Everything coding the CU square (x, y, 2^log2) changes: both luma and chroma parts
    and the CU maps (modes, depths, part mode, chroma mode, motion, skip; the motion maps of
    an I picture's state are empty and stand for themselves)."""
    n = 1 << log2
    u8, v8, m8 = y >> 3, x >> 3, n >> 3
    u4, v4, m4 = y >> 2, x >> 2, n >> 2
    if st.mot.size == 0:
        motion = (st.mot, st.icu)
    else:
        motion = (st.mot[u4:u4 + m4, v4:v4 + m4].copy(), st.icu[u8:u8 + m8, v8:v8 + m8].copy())
    return (save_luma(st, x, y, n), save_chroma(st, x >> 1, y >> 1, n >> 1),
            st.mode[u4:u4 + m4, v4:v4 + m4].copy(), st.cdepth[u8:u8 + m8, v8:v8 + m8].copy(),
            st.nxn[u8:u8 + m8, v8:v8 + m8].copy(), st.cidx[u8:u8 + m8, v8:v8 + m8].copy(), motion)


@njit(cache=True)
def restore_region(st, s, x, y, log2):  # pragma: no cover - numba
    n = 1 << log2
    u8, v8, m8 = y >> 3, x >> 3, n >> 3
    u4, v4, m4 = y >> 2, x >> 2, n >> 2
    restore_luma(st, s[0], x, y, n)
    restore_chroma(st, s[1], x >> 1, y >> 1, n >> 1)
    st.mode[u4:u4 + m4, v4:v4 + m4] = s[2]
    st.cdepth[u8:u8 + m8, v8:v8 + m8] = s[3]
    st.nxn[u8:u8 + m8, v8:v8 + m8] = s[4]
    st.cidx[u8:u8 + m8, v8:v8 + m8] = s[5]
    if st.mot.size != 0:
        st.mot[u4:u4 + m4, v4:v4 + m4] = s[6][0]
        st.icu[u8:u8 + m8, v8:v8 + m8] = s[6][1]
