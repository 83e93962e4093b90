"""Coding of one transform block inside the compiled search (numba): prediction, forward
transform, the quantizer, scaling, inverse transform, reconstruction, and the record of
the result in the :class:`~codeclab.codecs.hevc.picture_state.PictureState`.

This is the one place a TB is coded; both decision strategies (:mod:`search`) call it.

Quantizers are called through :func:`quantize`, the compiled side of the quantizer
protocol (docs/quantizers.md): ``sq``, ``rdoq`` and the neural RDOQ networks
(``nrdoq-ar``, ``nrdoq-fcn``: their features and inference kernels, :class:`NetParams`)
run natively here, with the CABAC rates RDOQ and the networks price levels with read from
the live contexts of the search (or the slice's initial contexts for the SATD decisions);
any other quantizer of the registry (a recording wrapper, one of the user's) is called
back in Python with the same contexts, through numba's object mode (:data:`EXTERNAL`),
once per batch. Blocks whose coefficients are all
below half a quantization step are never handed over: no HM-family quantizer codes
anything there, and a call costs more than a small TB.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, objmode

from codeclab.base.jit import unit, view
from codeclab.bitstream.cabac import E_FRAC, ENTROPY_BITS, FRAC_ONE, new_engine
from codeclab.codecs.hevc.intra import _predict_one
from codeclab.codecs.hevc.nrdoq.features import N_LOCAL, _features, ar_infer, fcn_infer
from codeclab.codecs.hevc.quantizer import _hdq_batch, _live_index
from codeclab.codecs.hevc.picture_state import TB_LINES, TB_ROWS, tb_rates, tb_scans
from codeclab.codecs.hevc.rdoq import _IQS, RATE_K, _rdoq_block
from codeclab.codecs.hevc.residual import C4_SCAN, SB_SCAN, code_residual
from codeclab.codecs.hevc.scalar_quant import QUANT_SCALES, _dequant_kernel, _quant_kernel
from codeclab.codecs.hevc.scan import scan_idx_for, scan_tables
from codeclab.codecs.hevc.transform import DCT_MATRIX_32, DST_MATRIX_4, _forward_kernel, _inverse_kernel

__all__ = ["TbParams", "NetParams", "NO_NET", "QUANT_SQ", "QUANT_RDOQ", "QUANT_EXTERNAL", "QUANT_AR",
           "QUANT_FCN", "EXTERNAL", "quantize", "code_tb", "chroma_tree", "forward", "reconstruct",
           "code_inter_tb", "inter_tree"]

QUANT_SQ, QUANT_RDOQ, QUANT_EXTERNAL, QUANT_AR, QUANT_FCN = 0, 1, 2, 3, 4

#: the networks' reference: HM's SQ rounding of I slices, in every slice type (features.py)
_NET_ADD512 = 171


class NetParams(NamedTuple):
    """The weights of the neural quantizer the search runs (float32, as the kernels of
    nrdoq.features take them); the other network's entries are 1-element placeholders of
    the same types, so one compiled search serves every quantizer."""

    ar: tuple  # w1 (in, h), b1, w2 (h, h), b2, w3 (h, 4), b3
    fcn: tuple  # w0 (ch, in, 1, 1), b0, w1 (ch, ch, 3, 3), b1, w2, b2, w3 (4, ch, 1, 1), b3


def _placeholder(dims: tuple[int, ...]) -> tuple:
    return tuple(np.zeros((1,) * d, dtype=np.float32) for d in dims)


NO_NET = NetParams(_placeholder((2, 1, 2, 1, 2, 1)), _placeholder((4, 1, 4, 1, 4, 1, 4, 1)))

#: [the quantizer object behind QUANT_EXTERNAL (an EncoderQuantizer), the exception it
#: raised]: set by the picture encoder for the duration of one picture (one per process: the
#: search is single-threaded); an exception cannot cross the compiled units
#: (:mod:`codeclab.base.jit`), so it is kept here and raised by the encoder after the search
EXTERNAL: list = [None, None]


class TbParams(NamedTuple):
    """What coding a TB depends on (fixed for a picture)."""

    bit_depth: int
    qp: tuple[int, int, int]        # Y, Cb, Cr (chroma mapped)
    sign_hiding: bool
    ts_enabled: bool
    lam: float                      # RD lambda (SSE in the samples' bit depth)
    qkind: int                      # QUANT_SQ / QUANT_RDOQ / QUANT_AR / QUANT_FCN / QUANT_EXTERNAL
    sq_add512: int                  # SQ rounding offset in 1/512
    qlam: tuple[float, float, float]  # the quantizers' lambdas (lambdas.SliceLambdas.quant)
    ctx0: np.ndarray                # the slice's initial contexts
    ts_fast: bool                   # HM's TransformSkipFast: see _ts_candidate
    ts_try: bool                    # try transform skip at all (else the flag is always 0)
    net: NetParams                  # the network of QUANT_AR / QUANT_FCN (else NO_NET)


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    mats = np.zeros((5, 32, 32), dtype=np.int32)  # DCT 4..32, then the 4x4 DST
    for k in range(4):
        n = 4 << k
        mats[k, :n, :n] = DCT_MATRIX_32[:: 32 // n, :n]
    mats[4, :4, :4] = DST_MATRIX_4
    scans = np.zeros((4, 3, 1024), dtype=np.int64)
    cgs = np.zeros((4, 3, 64), dtype=np.int64)
    for k in range(4):
        s, c = scan_tables(k + 2)
        scans[k, :, : s.shape[1]] = s
        cgs[k, :, : c.shape[1]] = c
    gather = np.zeros((2, 5, RATE_K), dtype=np.int64)  # [chroma][cbf ctxInc] -> coder index
    for luma in (0, 1):
        for inc in range(5):
            gather[luma, inc] = _live_index(0 if luma else 1, inc)
    return mats, scans, cgs, gather


_MATS, _SCANS, _CGS, _GATHER = _tables()
_M32 = np.ascontiguousarray(DCT_MATRIX_32)
_QS = np.array(QUANT_SCALES, dtype=np.int64)
for _t in (_MATS, _SCANS, _CGS, _GATHER, _M32, _QS):
    _t.setflags(write=False)


def _call_external(coefs: np.ndarray, qp: int, log2: int, bit_depth: int, c: int,
                   scans: np.ndarray, sign_hiding: bool, depth: int, ctx: np.ndarray, lam: float
                   ) -> np.ndarray:
    """QUANT_EXTERNAL: the registry quantizer in Python, with the contexts the compiled RDOQ
    would price with (the search's carried ones, or the slice's initial ones with the cbf
    context of trafoDepth 0) and the picture's quantizer lambda for component ``c``."""
    q = EXTERNAL[0]
    if EXTERNAL[1] is not None:  # an earlier call failed: finish the picture cheaply
        return np.zeros(coefs.shape, dtype=np.int32)
    try:
        if hasattr(q, "live_ctx"):
            q.live_ctx = ctx
            out = q.quantize(coefs, int(qp), int(log2), int(bit_depth), int(c), scans,
                             bool(sign_hiding), trafo_depth=int(depth), lam=float(lam))
        else:
            out = q.quantize(coefs, int(qp), int(log2), int(bit_depth), int(c), scans, bool(sign_hiding))
        out = np.ascontiguousarray(out, dtype=np.int32)
        if out.shape != coefs.shape:
            raise ValueError(f"quantizer {type(q).__name__} returned levels of shape {out.shape} "
                             f"for coefficients of shape {coefs.shape}")
        return out
    except BaseException as e:  # noqa: BLE001 - cannot cross the compiled units; re-raised by the encoder
        EXTERNAL[1] = e
        return np.zeros(coefs.shape, dtype=np.int32)


@njit(cache=True)
def _external(coefs, qp, log2, bit_depth, c, scans, sign_hiding, depth, ctx, lam):  # pragma: no cover
    with objmode(out="int32[:, :, ::1]"):
        out = _call_external(coefs, qp, log2, bit_depth, c, scans, sign_hiding, depth, ctx, lam)
    return out


@unit
def quantize(tp, ctx, live, coef, qp, log2, c, scans, depth, out, work):  # pragma: no cover - numba
    """Levels of the blocks coef (B, n, n) of component c at trafoDepth ``depth`` into out
    (``work``: the state's TbWork; RDOQ takes its rates, work arrays and the levels row
    TB_ROWS - 2 from it, the rows code_tb holds are not touched).

    live: rates from ``ctx`` (the search's carried contexts, cbf context of ``depth``);
    otherwise from the slice's initial contexts, cbf context of trafoDepth 0 (luma) / 0."""
    nb = coef.shape[0]
    n = 1 << log2
    nn = n * n
    bd = tp.bit_depth
    qpp = qp + 6 * (bd - 8)
    qbits = 14 + qpp // 6 + 15 - bd - log2
    qs = _QS[qpp % 6]
    half = np.int64(1) << (qbits - 1)
    out[:] = 0
    alive = np.zeros(nb, dtype=np.bool_)
    nlive = 0
    for b in range(nb):
        m = 0
        for i in range(n):
            for j in range(n):
                v = abs(np.int64(coef[b, i, j]))
                if v > m:
                    m = v
        if m * qs >= half:
            alive[b] = True
            nlive += 1
    if nlive == 0:
        return
    k = log2 - 2
    if tp.qkind == QUANT_SQ:
        qarr = np.full(1, qpp, dtype=np.int64)
        qb = np.full(1, qbits, dtype=np.int64)
        qsa = np.full(1, qs, dtype=np.int64)
        for b in range(nb):
            if alive[b]:
                _quant_kernel(coef[b:b + 1], qarr, log2, bd, tp.sq_add512, out[b:b + 1])
                if tp.sign_hiding:
                    _hdq_batch(view(out[b], (1, nn)), view(coef[b], (1, nn)), _SCANS[k, :, :nn],
                               scans[b:b + 1], qb, qsa)
        return
    luma = c == 0
    if live:
        inc = (1 if depth == 0 else 0) if luma else depth
        states = ctx
    else:
        inc = 1 if luma else 0
        states = tp.ctx0
    gi = _GATHER[1 if luma else 0, inc]
    if tp.qkind == QUANT_AR or tp.qkind == QUANT_FCN:
        _net_quantize(tp, states, gi, coef, alive, nlive, qp, log2, c, scans, out)
        return
    if tp.qkind == QUANT_RDOQ:
        rb = tb_rates(work)
        for i in range(RATE_K):
            s = np.int64(states[gi[i]])
            rb[i, 0] = ENTROPY_BITS[s]
            rb[i, 1] = ENTROPY_BITS[s ^ 1]
        lam = tp.qlam[c]
        tshift = 15 - bd - log2
        escale = 2.0 ** (15 - 2 * tshift - 2 * (bd - 8)) / float(qs) ** 2
        rdf = float(_IQS[qpp % 6]) ** 2 * 4.0 ** (qpp // 6) / lam / 16 / 4.0 ** (bd - 8) + 0.5
        rd_factor = np.int64(min(rdf, 2.0 ** 36)) if np.isfinite(rdf) else np.int64(2) ** 36
        flat = work.blk[TB_ROWS - 2, :nn]
        fw, iw = work.fw, work.iw
        for b in range(nb):
            if alive[b]:
                s = scans[b]
                _rdoq_block(view(coef[b], (nn,)), log2, _SCANS[k, s, :nn], _CGS[k, s, :max(1, nn >> 4)],
                            luma, s, qbits, qs, escale, lam, rb, tp.sign_hiding, rd_factor, flat, fw, iw)
                out[b] = view(flat, (n, n))
        return
    # a quantizer of the registry in Python: the live blocks as one batch
    cl = np.empty((nlive, n, n), dtype=np.int32)
    sl = np.empty(nlive, dtype=np.int64)
    j = 0
    for b in range(nb):
        if alive[b]:
            cl[j] = coef[b]
            sl[j] = scans[b]
            j += 1
    if live:
        lv = _external(cl, qp, log2, bd, c, sl, tp.sign_hiding, depth, ctx, tp.qlam[c])
    else:  # as the compiled RDOQ: initial contexts, the cbf context of trafoDepth 0
        lv = _external(cl, qp, log2, bd, c, sl, tp.sign_hiding, 0, tp.ctx0, tp.qlam[c])
    j = 0
    for b in range(nb):
        if alive[b]:
            out[b] = lv[j]
            j += 1


@njit(cache=True)
def _net_quantize(tp, states, gi, coef, alive, nlive, qp, log2, c, scans, out):  # pragma: no cover
    """The neural quantizer of ``tp.net`` on the live blocks, as ``NRDOQQuantizer.quantize``
    computes it: |scaled| and SQ levels (rounding 171/512), the features with the rate state
    gathered from ``states``, the network's class per active coefficient, the changed
    levels with the coefficients' signs, then HM's signBitHidingHDQ."""
    n = 1 << log2
    nn = n * n
    k = log2 - 2
    bd = tp.bit_depth
    qpp = qp + 6 * (bd - 8)
    qbits = 14 + qpp // 6 + 15 - bd - log2
    qs = _QS[qpp % 6]
    inv = 1.0 / float(np.int64(1) << qbits)
    a = np.empty((nlive, nn), dtype=np.float32)
    sq3 = np.empty((nlive, n, n), dtype=np.int32)
    sl = np.empty(nlive, dtype=np.int64)
    rs = np.empty((nlive, RATE_K), dtype=np.int64)
    for i in range(RATE_K):
        rs[0, i] = np.int64(states[gi[i]])
    qarr = np.full(1, qpp, dtype=np.int64)
    j = 0
    for b in range(coef.shape[0]):
        if alive[b]:
            for i in range(nn):
                a[j, i] = np.float32(abs(np.int64(coef[b].flat[i])) * qs * inv)
            _quant_kernel(coef[b:b + 1], qarr, log2, bd, _NET_ADD512, sq3[j:j + 1])
            sl[j] = scans[b]
            if j > 0:
                rs[j] = rs[0]
            j += 1
    sq = sq3.reshape(nlive, nn)
    for j in range(nlive):
        for i in range(nn):
            sq[j, i] = abs(sq[j, i])
    sc = _SCANS[k, :, :nn]
    qpa = np.full(nlive, qp, dtype=np.int64)
    ca = np.full(nlive, c, dtype=np.int64)
    cls = np.zeros((nlive, nn), dtype=np.int64)
    if tp.qkind == QUANT_AR:  # features inside the kernel, active coefficients only
        w = tp.net.ar
        ar_infer(a, sq, sc, sl, log2, qpa, ca, rs, w[0], w[1], w[2], w[3], w[4], w[5], cls)
    else:
        feat = np.zeros((nlive, N_LOCAL, nn), dtype=np.float32)
        _features(a, sq, sc, log2, qpa, ca, sl, rs, feat)
        w = tp.net.fcn
        fcn_infer(feat.reshape(nlive, N_LOCAL, n, n), a.reshape(nlive, n, n), sq.reshape(nlive, n, n),
                  w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], cls.reshape(nlive, n, n))
    qb = np.full(1, qbits, dtype=np.int64)
    qsa = np.full(1, qs, dtype=np.int64)
    j = 0
    for b in range(coef.shape[0]):
        if alive[b]:
            for i in range(nn):
                lvl = sq[j, i]
                m = cls[j, i]
                if m == 1:
                    lvl -= 1
                elif m == 2:
                    lvl = 0
                elif m == 3:
                    lvl += 1
                out[b].flat[i] = -lvl if coef[b].flat[i] < 0 else lvl
            if tp.sign_hiding:
                _hdq_batch(view(out[b], (1, nn)), view(coef[b], (1, nn)), sc, sl[j:j + 1], qb, qsa)
            j += 1


@unit
def forward(resid, log2, dst, bd, out):  # pragma: no cover - numba
    """HM's forward transform of (B, n, n) residuals (transform.forward_transform) into out;
    returns out."""
    _forward_kernel(resid, _MATS[4 if dst else log2 - 2], _M32, log2 >= 4 and not dst, log2 + bd - 9,
                    log2 + 6, out)
    return out


@unit
def reconstruct(lv, qp, log2, dst, bd, out):  # pragma: no cover - numba
    """Scaling + inverse transform of (B, n, n) levels into out (the scaled coefficients
    first, then transformed in place: _inverse_kernel reads a block whole before it writes
    it): the decoder's residual; returns out."""
    _dequant_kernel(lv, np.full(1, qp + 6 * (bd - 8), dtype=np.int64), log2, bd, out)
    _inverse_kernel(out, _MATS[4 if dst else log2 - 2], 20 - bd, out)
    return out


@unit
def _reconstruct_ts(lv, qp, log2, bd):  # pragma: no cover - numba
    """8.6.4.2 with transform_skip_flag: r = d << (5 + log2 n), then the bdShift rounding."""
    d = np.empty(lv.shape, dtype=np.int32)
    _dequant_kernel(lv, np.full(1, qp + 6 * (bd - 8), dtype=np.int64), log2, bd, d)
    out = np.empty(lv.shape, dtype=np.int32)
    bd_shift = 20 - bd
    for i in range(d.size):
        r = np.int64(d.flat[i]) << (5 + log2)
        out.flat[i] = (r + (np.int64(1) << (bd_shift - 1))) >> bd_shift
    return out


@unit
def _forward_ts(resid, log2, bd):  # pragma: no cover - numba
    """HM's transform skip: resid << (15 - bitDepth - log2 n) (rounded shift if negative)."""
    out = np.empty(resid.shape, dtype=np.int32)
    shift = 15 - bd - log2
    for i in range(resid.size):
        r = np.int64(resid.flat[i])
        out.flat[i] = (r << shift) if shift >= 0 else ((r + (np.int64(1) << (-shift - 1))) >> -shift)
    return out


@unit
def _est_bits(tp, lv, log2, c, scan, ts_flag):  # pragma: no cover - numba
    """Bits of residual_coding of lv from the slice's initial contexts (the transform-skip
    choice: both candidates priced from the same state)."""
    eng = new_engine(1)  # estimate mode
    code_residual(eng, tp.ctx0.copy(), np.zeros(16, dtype=np.uint8), lv, log2, c, scan,
                  tp.sign_hiding, True, 1 if ts_flag else 0, SB_SCAN, C4_SCAN)
    return eng[E_FRAC] / FRAC_ONE


@njit(cache=True)
def _any(a):  # pragma: no cover - numba
    for v in a.flat:
        if v != 0:
            return True
    return False


@unit
def _ts_cost(tp, org, pred, lv, r, nz, log2, c, scan, ts_flag):  # pragma: no cover - numba
    maxv = (1 << tp.bit_depth) - 1
    n = 1 << log2
    d = 0
    for i in range(n):
        for j in range(n):
            v = pred[i, j]
            if nz:
                v = min(max(v + r[i, j], 0), maxv)
            e = np.int64(org[i, j] - v)
            d += e * e
    bits = _est_bits(tp, lv, log2, c, scan, ts_flag) if nz else 1.0
    return float(d) + tp.lam * bits


@njit(cache=True)
def _ts_candidate(st, c, x, y):  # pragma: no cover - numba
    """HM's TransformSkipFast (on in its all-intra configuration): a 4x4 luma TB tries
    transform skip only in an NxN CU, a 4x4 chroma TB only where a co-located 4x4 luma TB
    chose it (luma is coded first)."""
    if c == 0:
        return st.nxn[y >> 3, x >> 3] != 0
    u, v = y >> 1, x >> 1  # the co-located luma 8x8 in 4x4 units
    return st.ts[0][u, v] != 0 or st.ts[0][u, v + 1] != 0 or st.ts[0][u + 1, v] != 0 \
        or st.ts[0][u + 1, v + 1] != 0


@njit(cache=True)
def _residual_of(org, x, y, n, pred, out):  # pragma: no cover - numba
    """out = the source block at (x, y) minus ``pred``, row by row (contiguous rows: vectorised)."""
    for i in range(n):
        o, p, d = org[y + i, x:x + n], pred[i], out[i]
        for j in range(n):
            d[j] = o[j] - p[j]


@njit(cache=True)
def store_tb(st, c, x, y, log2, pred, r, lv, nz, ts, maxv):  # pragma: no cover - numba
    """Record a coded TB: reconstruction, availability, levels, cbf and ts flags."""
    n = 1 << log2
    # row by row through the planes' contiguous row slices (a[y + i, x:x + n] is a C-layout
    # view, where a row of a 2-D window is not): LLVM vectorises the sample loops
    rp, ap, lp = st.rec[c], st.av[c], st.lv[c]
    for i in range(n):
        rec, av, lvp, p = rp[y + i, x:x + n], ap[y + i, x:x + n], lp[y + i, x:x + n], pred[i]
        if nz:
            ri, li = r[i], lv[i]
            for j in range(n):
                rec[j] = min(max(p[j] + ri[j], 0), maxv)
                lvp[j] = li[j]
        else:
            for j in range(n):
                rec[j] = p[j]
                lvp[j] = 0
        for j in range(n):
            av[j] = True
    m = max(n >> 2, 1)
    u, v0 = y >> 2, x >> 2
    st.cbf[c][u:u + m, v0:v0 + m] = 1 if nz else 0
    st.ts[c][u:u + m, v0:v0 + m] = 1 if (ts and nz) else 0


@unit
def code_tb(st, tp, ctx, live, c, x, y, log2, mode, depth):  # pragma: no cover - numba
    """Predict, transform, quantize and reconstruct one TB of component c (its own
    coordinates) at trafoDepth ``depth`` and record it (luma: with its trafoDepth); for
    4x4 TBs with transform skip enabled, the skip is chosen by SSE + lambda * bits.
    Returns whether it has levels."""
    n = 1 << log2
    nn = n * n
    bd = tp.bit_depth
    maxv = (1 << bd) - 1
    w = st.tbw
    pred, resid = view(w.blk[0, :nn], (n, n)), view(w.blk[1, :nn], (1, n, n))
    coef, lv = view(w.blk[2, :nn], (1, n, n)), view(w.blk[3, :nn], (1, n, n))
    r = view(w.blk[4, :nn], (1, n, n))
    _predict_one(st.rec[c], st.av[c], x, y, n, log2, mode, c == 0, bd, np.bool_(True), pred, w.blk[TB_LINES])
    _residual_of(st.org[c], x, y, n, pred, resid[0])
    scan = scan_idx_for(mode, log2, c)
    qp = tp.qp[c]
    dst = c == 0 and log2 == 2
    scans = tb_scans(w, 1)
    scans[0] = scan
    quantize(tp, ctx, live, forward(resid, log2, dst, bd, coef), qp, log2, c, scans, depth, lv, w)
    nz = _any(lv)
    if nz:
        reconstruct(lv, qp, log2, dst, bd, r)
    ts = False
    if tp.ts_enabled and tp.ts_try and log2 == 2 and (not tp.ts_fast or _ts_candidate(st, c, x, y)):
        lts = np.empty((1, n, n), dtype=np.int32)
        quantize(tp, ctx, live, _forward_ts(resid, log2, bd), qp, log2, c, scans, depth, lts, w)
        if _any(lts):
            rts = _reconstruct_ts(lts, qp, log2, bd)
            org = st.org[c][y:y + n, x:x + n]
            if (_ts_cost(tp, org, pred, lts[0], rts[0], True, log2, c, scan, True)
                    < _ts_cost(tp, org, pred, lv[0], r[0], nz, log2, c, scan, False)):
                lv, r, ts, nz = lts, rts, True, True
    store_tb(st, c, x, y, log2, pred, r[0], lv[0], nz, ts, maxv)
    if c == 0:
        m = n >> 2
        st.tdepth[y >> 2:(y >> 2) + m, x >> 2:(x >> 2) + m] = depth
    return nz


@unit
def chroma_tree(st, tp, ctx, live, x0, y0, log2_0, depth0, cmode):  # pragma: no cover - numba
    """Code the chroma TBs of the luma transform tree rooted at (x0, y0, 2^log2_0) (trafoDepth
    ``depth0``), with IntraPredModeC ``cmode``: 4:2:0 chroma follows the luma splits down to
    8x8 luma (4x4 chroma), in z-order (explicit stack: numba cannot cache recursion)."""
    stack = np.empty((16, 4), dtype=np.int64)
    stack[0, 0], stack[0, 1], stack[0, 2], stack[0, 3] = x0, y0, log2_0, depth0
    top = 1
    while top > 0:
        top -= 1
        x, y, log2, depth = stack[top]
        if st.tdepth[y >> 2, x >> 2] > depth and log2 > 3:
            h = 1 << (log2 - 1)
            for k in range(3, -1, -1):
                stack[top, 0], stack[top, 1] = x + (h if k & 1 else 0), y + (h if k & 2 else 0)
                stack[top, 2], stack[top, 3] = log2 - 1, depth + 1
                top += 1
            continue
        _chroma_tb(st, tp, ctx, live, x, y, log2, depth, cmode)


@unit
def _chroma_tb(st, tp, ctx, live, x, y, log2, depth, cmode):  # pragma: no cover - numba
    """The Cb and Cr TBs of the luma node (x, y, 2^log2)."""
    xc, yc, lc = x >> 1, y >> 1, log2 - 1
    if (tp.ts_enabled and tp.ts_try and lc == 2) or tp.qp[1] != tp.qp[2]:
        code_tb(st, tp, ctx, live, np.int64(1), xc, yc, lc, cmode, depth)
        code_tb(st, tp, ctx, live, np.int64(2), xc, yc, lc, cmode, depth)
        return
    n, bd = 1 << lc, tp.bit_depth
    nn2 = 2 * n * n
    maxv = (1 << bd) - 1
    w = st.tbw
    pred, resid = view(w.blk[0, :nn2], (2, n, n)), view(w.blk[1, :nn2], (2, n, n))
    coef, lv, r = (view(w.blk[2, :nn2], (2, n, n)), view(w.blk[3, :nn2], (2, n, n)),
                   view(w.blk[4, :nn2], (2, n, n)))
    for k in range(2):
        _predict_one(st.rec[k + 1], st.av[k + 1], xc, yc, n, lc, cmode, np.bool_(False), bd, np.bool_(True),
                     pred[k], w.blk[TB_LINES])
        _residual_of(st.org[k + 1], xc, yc, n, pred[k], resid[k])
    scans = tb_scans(w, 2)
    scans[:] = scan_idx_for(cmode, lc, 1)
    quantize(tp, ctx, live, forward(resid, lc, False, bd, coef), tp.qp[1], lc, np.int64(1), scans, depth, lv,
             w)
    reconstruct(lv, tp.qp[1], lc, False, bd, r)
    for k in range(2):
        store_tb(st, k + 1, xc, yc, lc, pred[k], r[k], lv[k], _any(lv[k]), False, maxv)


# ------------------------------------------------------------------ inter TBs -------------
# An inter CU's motion-compensated prediction is written into the reconstruction first;
# its TBs then code the residual against what the reconstruction holds (DCT at every size,
# scanIdx 0, no transform skip).


@unit
def code_inter_tb(st, tp, ctx, live, c, x, y, log2, depth):  # pragma: no cover - numba
    """Code the residual of one TB of an inter CU against the prediction in ``st.rec`` and
    record it (luma: with its trafoDepth). Returns whether it has levels."""
    n = 1 << log2
    bd = tp.bit_depth
    pred = st.rec[c][y:y + n, x:x + n].copy()
    resid = np.empty((1, n, n), dtype=np.int32)
    _residual_of(st.org[c], x, y, n, pred, resid[0])
    qp = tp.qp[c]
    lv = np.empty((1, n, n), dtype=np.int32)
    quantize(tp, ctx, live, forward(resid, log2, False, bd, np.empty_like(resid)), qp, log2, c,
             np.zeros(1, dtype=np.int64), depth, lv, st.tbw)
    nz = _any(lv)
    r = reconstruct(lv, qp, log2, False, bd, np.empty_like(lv)) if nz else lv
    store_tb(st, c, x, y, log2, pred, r[0], lv[0], nz, False, (1 << bd) - 1)
    if c == 0:
        m = n >> 2
        st.tdepth[y >> 2:(y >> 2) + m, x >> 2:(x >> 2) + m] = depth
    return nz


@unit
def inter_tree(st, tp, ctx, live, x0, y0, log2_0, log2_max_tb, extra):  # pragma: no cover - numba
    """Code the residual of the inter CU (x0, y0, 2^log2_0) with a uniform transform tree:
    TBs ``extra`` levels below the largest allowed (the CU, or the largest TB where the CU
    exceeds it), luma 4x4 at the least; per TB luma, then Cb and Cr (4:2:0: the chroma of
    four 4x4 luma TBs is one 4x4 pair at their 8x8 parent)."""
    log2 = max(min(log2_0, log2_max_tb) - extra, 2)
    n = 1 << log2
    depth = log2_0 - log2
    if log2 > 2:
        for yy in range(y0, y0 + (1 << log2_0), n):
            for xx in range(x0, x0 + (1 << log2_0), n):
                code_inter_tb(st, tp, ctx, live, np.int64(0), xx, yy, log2, depth)
                for c in range(1, 3):
                    code_inter_tb(st, tp, ctx, live, np.int64(c), xx >> 1, yy >> 1, log2 - 1, depth)
        return
    for yy in range(y0, y0 + (1 << log2_0), 8):
        for xx in range(x0, x0 + (1 << log2_0), 8):
            for k in range(4):
                code_inter_tb(st, tp, ctx, live, np.int64(0), xx + 4 * (k & 1), yy + 2 * (k & 2), np.int64(2), depth)
            for c in range(1, 3):
                code_inter_tb(st, tp, ctx, live, np.int64(c), xx >> 1, yy >> 1, np.int64(2), depth - 1)
