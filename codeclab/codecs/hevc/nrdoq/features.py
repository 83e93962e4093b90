"""What the neural RDOQ networks see, per coefficient, computed from the SQ levels.

Everything is derived from the coefficients, the block's QP, size, component and scan
and the CABAC states RDOQ would price it with (``QuantBatch.ctx``), in numba over a whole
batch. Inputs are grouped so an ablation can zero a
group (``--drop``): see :data:`GROUPS`.

Output space (``data.CLASS_NAMES``), relative to HM's SQ level ``s = floor(a + 171/512)``
(``a`` = |scaled coefficient| in level units) before sign hiding:
keep, minus1 (s - 1 >= 1), zero, plus1 (s + 1, only where rounding to nearest gives it).
Classes that cannot be RDOQ's choice are masked (:func:`valid_mask`): RDOQ's candidates are
round(a), round(a) - 1 and 0, and our data show RDOQ *raises* SQ's level far more often than
it lowers it by one (SQ rounds with 1/3, RDOQ starts from 1/2; docs/nrdoq.md).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from codeclab.base.errors import UsageError
from codeclab.bitstream.cabac import ENTROPY_BITS
from codeclab.codecs.hevc.rdoq import RATE_CSBF, RATE_GT1, RATE_SIG
from codeclab.codecs.hevc.residual_rules import csbf_ctx, prev_csbf, sig_ctx
from codeclab.codecs.hevc.scan import scan_tables
from codeclab.codecs.hevc.scalar_quant import quantize_sq, scaled_coeffs

__all__ = ["N_LOCAL", "N_STATE", "GROUPS", "drop_channels", "block_features", "valid_mask", "active_mask",
           "ar_state_features", "apply_classes", "KEEP", "MINUS1", "ZERO", "PLUS1", "N_CLASSES"]

KEEP, MINUS1, ZERO, PLUS1 = 0, 1, 2, 3
N_CLASSES = 4
N_LOCAL = 28
N_STATE = 12
#: input groups (channel index ranges) for ablations; "state" exists only in the AR network
GROUPS = {"frac": (0, 1), "level": (1, 6), "pos": (6, 10), "context": (10, 16), "qp": (16, 17),
          "size": (17, 21), "comp": (21, 22), "scan": (22, 25), "rate": (25, 28),
          "state": (28, 28 + N_STATE)}
_EB = np.asarray(ENTROPY_BITS, dtype=np.float64) / 32768.0  # bits of a bin by state ^ bin
_LOG1P = np.log(1.0 + np.arange(1025, dtype=np.float64))  # log(1 + count), counts up to 32 * 32
_EB.setflags(write=False)
_LOG1P.setflags(write=False)
#: the inputs that are the same for every coefficient of a block (qp, size, comp, scan): the
#: AR kernel folds them into the first layer's bias once per block
_BLOCK_CONST = (16, 25)


@njit(cache=True, inline="always")
def _bin_delta(st):  # pragma: no cover - numba
    """Bits of bin 1 minus bits of bin 0 from an HM state byte, / 4."""
    return (_EB[st ^ 1] - _EB[st]) / 4.0


@njit(cache=True, inline="always")
def _block_stats(a_b, sq_b, sc, n, cgf):  # pragma: no cover - numba
    """Per block: cgf (coded 4x4 groups of the SQ levels, raster: the neighbourhood of the
    sig contexts), and (last active scan position (round(a) > 0), number of SQ non-zeros)."""
    nn = n * n
    wg = n >> 2
    cgf[:] = 0
    for p in range(nn):
        if sq_b[p] > 0:
            cgf[((p // n) >> 2) * wg + ((p % n) >> 2)] = 1
    last = -1
    tot = 0
    for k in range(nn):
        if np.floor(a_b[sc[k]] + 0.5) > 0:
            last = k
        if sq_b[sc[k]] > 0:
            tot += 1
    return last, tot


@njit(cache=True, inline="always")
def _group_stats(sq_b, sc, k):  # pragma: no cover - numba
    """(non-zeros, sum of min(level, 3)) of the SQ levels of the 4x4 group ending at scan position k."""
    nz = 0
    sm = 0
    for j in range(k - 15, k + 1):
        v = sq_b[sc[j]]
        if v > 0:
            nz += 1
            sm += min(v, 3)
    return nz, sm


@njit(cache=True, inline="always")
def _coef_features(v, s, p, k, log2n, last, after, cg_nz, cg_sum, tot, qp, luma, c_idx, scan_idx, cgf,
                   ctx_b, x):  # pragma: no cover - numba
    """The N_LOCAL inputs of the coefficient at raster p / scan position k into x[:N_LOCAL]:
    the one definition both networks (and training) read."""
    n = 1 << log2n
    nn = n * n
    lognn = _LOG1P[nn]
    fl = np.floor(v)
    x[0] = v - fl
    x[1] = min(v, 4.0) / 4.0
    x[2] = 1.0 if s == 1 else 0.0
    x[3] = 1.0 if s == 2 else 0.0
    x[4] = 1.0 if s >= 3 else 0.0
    x[5] = 1.0 if np.floor(v + 0.5) > s else 0.0
    x[6] = (p % n) / n
    x[7] = (p // n) / n
    x[8] = k / nn
    x[9] = (k & 15) / 16.0
    x[10] = 1.0 if k == last else 0.0
    x[11] = _LOG1P[after] / lognn
    x[12] = cg_nz / 16.0
    x[13] = cg_sum / 16.0
    x[14] = _LOG1P[tot] / lognn
    x[15] = (last - k) / nn if last >= k else -1.0
    x[16] = (qp - 30) / 10.0
    for j in range(4):
        x[17 + j] = 1.0 if log2n == j + 2 else 0.0
    x[21] = 1.0 if c_idx > 0 else 0.0
    for j in range(3):
        x[22 + j] = 1.0 if scan_idx == j else 0.0
    # rates from the contexts RDOQ prices with: sig_coeff_flag at this position's context,
    # greater1 (first of its group), coded_sub_block_flag of its group
    xx, yy = p % n, p // n
    wg = n >> 2
    prev = prev_csbf(cgf, xx >> 2, yy >> 2, wg)
    x[25] = _bin_delta(ctx_b[RATE_SIG + sig_ctx(prev, xx, yy, log2n, luma, scan_idx)])
    gset = 2 if (luma and (k >> 4) > 0) else 0
    x[26] = _bin_delta(ctx_b[RATE_GT1 + gset * 4 + 1])
    x[27] = _bin_delta(ctx_b[RATE_CSBF + csbf_ctx(prev)])


@njit(cache=True)
def _features(a, sq, scan, log2n, qp, c_idx, scan_idx, ctx, out):  # pragma: no cover - numba
    """a: (B, nn) |scaled|, sq: (B, nn) |SQ level| (raster); scan: (3, nn); ctx (B, RATE_K)
    CABAC states; out (B, N_LOCAL, nn): every coefficient's inputs (the FCN, training)."""
    nb, nn = a.shape
    n = 1 << log2n
    cgf = np.zeros((n >> 2) * (n >> 2), dtype=np.int64)
    x = np.zeros(N_LOCAL, np.float32)
    for b in range(nb):
        sc = scan[scan_idx[b]]
        luma = c_idx[b] == 0
        last, tot = _block_stats(a[b], sq[b], sc, n, cgf)
        after = 0
        cg_nz = 0
        cg_sum = 0
        for k in range(nn - 1, -1, -1):
            if (k & 15) == 15:  # entering a CG in reverse: its counts over the whole group
                cg_nz, cg_sum = _group_stats(sq[b], sc, k)
            p = sc[k]
            v = a[b, p]
            _coef_features(v, sq[b, p], p, k, log2n, last, after, cg_nz, cg_sum, tot, qp[b], luma, c_idx[b],
                           scan_idx[b], cgf, ctx[b], x)
            for i in range(N_LOCAL):
                out[b, i, p] = x[i]
            if np.floor(v + 0.5) > 0:
                after += 1


def scaled_and_sq(coeffs: np.ndarray, qp: np.ndarray, log2: int, bit_depth: int) -> tuple[np.ndarray, np.ndarray]:
    """(|scaled| (B, nn) float32, |SQ level| (B, nn) int32, rounding 171/512): what the features
    and the networks' classes are relative to."""
    nb = coeffs.shape[0]
    a = np.abs(scaled_coeffs(coeffs, qp, log2, bit_depth)).astype(np.float32).reshape(nb, -1)
    sq = np.abs(quantize_sq(coeffs, qp, log2, bit_depth)).astype(np.int32).reshape(nb, -1)
    return a, sq


def block_features(coeffs: np.ndarray, log2: int, qp: np.ndarray, c_idx: np.ndarray,
                   scan_idx: np.ndarray, ctx: np.ndarray, bit_depth: int = 8
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features (B, N_LOCAL, n, n) float32, |scaled| (B, n, n) float32, |SQ level| (B, n, n) int32).

    ctx: (B, RATE_K) CABAC states of each block (rdoq.py layout, ``QuantBatch.ctx``)."""
    nb = coeffs.shape[0]
    n = 1 << log2
    qp = np.ascontiguousarray(np.broadcast_to(np.asarray(qp, np.int64), (nb,)))
    a, sq = scaled_and_sq(coeffs, qp, log2, bit_depth)
    out = np.zeros((nb, N_LOCAL, n * n), np.float32)
    scans, _ = scan_tables(log2)
    _features(a, sq, scans, log2, qp,
              np.ascontiguousarray(np.broadcast_to(np.asarray(c_idx, np.int64), (nb,))),
              np.ascontiguousarray(np.broadcast_to(np.asarray(scan_idx, np.int64), (nb,))),
              np.ascontiguousarray(ctx, dtype=np.int64), out)
    return out.reshape(nb, N_LOCAL, n, n), a.reshape(nb, n, n), sq.reshape(nb, n, n)


def active_mask(a: np.ndarray, sq: np.ndarray) -> np.ndarray:
    """Coefficients a decision is made for: SQ level > 0 or rounding to nearest gives > 0."""
    return (sq > 0) | (np.floor(a + 0.5) > 0)


def valid_mask(a: np.ndarray, sq: np.ndarray) -> np.ndarray:
    """(…, N_CLASSES) bool: which changes are possible at each coefficient (RDOQ's candidates)."""
    m = np.zeros(sq.shape + (N_CLASSES,), bool)
    m[..., KEEP] = True
    m[..., MINUS1] = sq >= 2
    m[..., ZERO] = sq >= 1
    m[..., PLUS1] = np.floor(a + 0.5) > sq
    return m


def apply_classes(sq: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """|level| after the per-coefficient change (classes must be valid)."""
    out = sq.astype(np.int32).copy()
    out[cls == MINUS1] -= 1
    out[cls == ZERO] = 0
    out[cls == PLUS1] += 1
    return out


@njit(cache=True, inline="always")
def _state_update(st, lvl, cls, k, nn):  # pragma: no cover - numba
    """Running state after deciding |level| lvl at scan position k (reverse order).
    st[0] nz in CG, [1] levels > 1 in CG, [2] c1 (HM greater1 state), [3] Rice k,
    [4] last found, [5] nz in block, [6] previous CG ended with c1 == 0 (ctxSet), [7] CG
    coded so far, [8..11] one-hot class of the previous decision."""
    if lvl > 0:
        st[0] += 1
        st[4] = 1
        st[5] += 1
        st[7] = 1
        if lvl > 1:
            st[1] += 1
            st[2] = 0
        elif st[2] > 0 and st[2] < 3:
            st[2] += 1
        if lvl > 3 * (1 << int(st[3])):
            st[3] = min(st[3] + 1, 4)
    for j in range(4):
        st[8 + j] = 1.0 if cls == j else 0.0


@njit(cache=True, inline="always")
def _state_cg_start(st):  # pragma: no cover - numba
    st[6] = 1.0 if st[2] == 0 and st[7] > 0 else 0.0
    st[0] = 0
    st[1] = 0
    st[2] = 1
    st[3] = 0
    st[7] = 0


@njit(cache=True, inline="always")
def _state_write(st, nn, out):  # pragma: no cover - numba
    out[0] = min(st[0], 8.0) / 8.0
    out[1] = min(st[1], 2.0) / 2.0
    out[2] = st[2] / 3.0
    out[3] = st[3] / 4.0
    out[4] = st[4]
    out[5] = _LOG1P[int(st[5])] / _LOG1P[nn]
    out[6] = st[6]
    out[7] = st[7]
    for j in range(4):
        out[8 + j] = st[8 + j]


@njit(cache=True)
def _teacher_states(lv, cls, act, scan, scan_idx, out):  # pragma: no cover - numba
    """State features (B, N_STATE, nn) seen at each active position when the levels after it
    (scan order) are the given ones (teacher forcing with RDOQ's levels)."""
    nb, nn = lv.shape
    st = np.zeros(12, np.float64)
    for b in range(nb):
        sc = scan[scan_idx[b]]
        st[:] = 0.0
        st[2] = 1
        for k in range(nn - 1, -1, -1):
            if (k & 15) == 15:
                _state_cg_start(st)
            p = sc[k]
            if not act[b, p]:
                continue
            _state_write(st, nn, out[b, :, p])
            _state_update(st, lv[b, p], cls[b, p], k, nn)


def ar_state_features(levels: np.ndarray, cls: np.ndarray, act: np.ndarray, log2: int,
                      scan_idx: np.ndarray) -> np.ndarray:
    """(B, N_STATE, n, n) float32 running-state inputs of the AR network under teacher forcing."""
    nb = levels.shape[0]
    n = 1 << log2
    out = np.zeros((nb, N_STATE, n * n), np.float32)
    scans, _ = scan_tables(log2)
    _teacher_states(np.abs(levels).reshape(nb, -1).astype(np.int64), cls.reshape(nb, -1).astype(np.int64),
                    act.reshape(nb, -1), scans,
                    np.ascontiguousarray(np.broadcast_to(np.asarray(scan_idx, np.int64), (nb,))), out)
    return out.reshape(nb, N_STATE, n, n)


@njit(cache=True)
def ar_infer(a, sq, scan, scan_idx, log2n, qp, c_idx, ctx, w1, b1, w2, b2, w3, b3, out_cls):  # pragma: no cover
    """The AR network over a batch: per block, reverse scan over the active positions, an MLP
    on (the coefficient's inputs, computed here as :func:`_features` does, and the running
    state of its own earlier decisions), masked argmax.
    a (B, nn) float32; sq (B, nn) int; qp, c_idx, scan_idx (B,); ctx (B, RATE_K);
    out_cls (B, nn) int, zero on entry (0 = keep)."""
    nb, nn = a.shape
    n = 1 << log2n
    nl = N_LOCAL
    h1 = w1.shape[1]
    h2 = w2.shape[1]
    x = np.zeros(nl + N_STATE, np.float32)
    zb = np.zeros(h1, np.float32)
    z1 = np.zeros(h1, np.float32)
    z2 = np.zeros(h2, np.float32)
    st = np.zeros(N_STATE, np.float64)
    cgf = np.zeros((n >> 2) * (n >> 2), dtype=np.int64)
    for b in range(nb):
        sc = scan[scan_idx[b]]
        luma = c_idx[b] == 0
        last, tot = _block_stats(a[b], sq[b], sc, n, cgf)
        if last < 0:
            continue
        st[:] = 0.0
        st[2] = 1
        after = 0
        cg_nz = 0
        cg_sum = 0
        blk = True  # the block's constant inputs not folded into zb yet
        for k in range(last | 15, -1, -1):  # the groups after the last active one change nothing
            if (k & 15) == 15:
                _state_cg_start(st)
                cg_nz, cg_sum = _group_stats(sq[b], sc, k)
            p = sc[k]
            s = sq[b, p]
            v = a[b, p]
            r = np.floor(v + 0.5)
            if s == 0 and r == 0:
                continue
            _coef_features(v, s, p, k, log2n, last, after, cg_nz, cg_sum, tot, qp[b], luma, c_idx[b],
                           scan_idx[b], cgf, ctx[b], x)
            after += 1
            _state_write(st, nn, x[nl:])
            # rows of the weights in the inner loop (contiguous, SIMD), zero inputs skipped
            # (one-hot groups, flags, and about half the units after each ReLU)
            if blk:
                zb[:] = b1
                for i in range(_BLOCK_CONST[0], _BLOCK_CONST[1]):
                    xi = x[i]
                    if xi != 0.0:
                        for j in range(h1):
                            zb[j] += xi * w1[i, j]
                blk = False
            z1[:] = zb
            for i in range(_BLOCK_CONST[0]):
                xi = x[i]
                if xi != 0.0:
                    for j in range(h1):
                        z1[j] += xi * w1[i, j]
            for i in range(_BLOCK_CONST[1], nl + N_STATE):
                xi = x[i]
                if xi != 0.0:
                    for j in range(h1):
                        z1[j] += xi * w1[i, j]
            z2[:] = b2
            for i in range(h1):
                zi = z1[i]
                if zi > 0.0:
                    for j in range(h2):
                        z2[j] += zi * w2[i, j]
            best = -1e30
            cls = 0
            for c in range(4):
                if c == 1 and s < 2:
                    continue
                if c == 2 and s < 1:
                    continue
                if c == 3 and r <= s:
                    continue
                acc = b3[c]
                for i in range(h2):
                    if z2[i] > 0.0:
                        acc += z2[i] * w3[i, c]
                if acc > best:
                    best = acc
                    cls = c
            lvl = s
            if cls == 1:
                lvl = s - 1
            elif cls == 2:
                lvl = 0
            elif cls == 3:
                lvl = s + 1
            out_cls[b, p] = cls
            _state_update(st, lvl, cls, k, nn)


@njit(cache=True)
def _conv3x3_relu(src, w, bias, dst, off, buf, y0, y1, x0, x1):  # pragma: no cover - numba
    """dst[o, off + y, off + x] = relu(bias[o] + sum_i,ky,kx w[o, i, ky, kx] src[i, y + ky, x + kx])
    for y0 <= y < y1, x0 <= x < x1, src zero-padded by one; off = 1 keeps dst padded for the
    next 3x3 layer."""
    for o in range(w.shape[0]):
        buf[y0:y1, x0:x1] = bias[o]
        for i in range(w.shape[1]):
            for ky in range(3):
                for kx in range(3):
                    wv = w[o, i, ky, kx]
                    for y in range(y0, y1):
                        for x in range(x0, x1):
                            buf[y, x] += wv * src[i, y + ky, x + kx]
        for y in range(y0, y1):
            for x in range(x0, x1):
                dst[o, y + off, x + off] = max(buf[y, x], 0.0)


@njit(cache=True)
def fcn_infer(feat, a, sq, w0, b0, w1, b1, w2, b2, w3, b3, out_cls):  # pragma: no cover - numba
    """The FCN (models.FCN: 1x1, 3x3, 3x3, 1x1 convs, ReLU, zero padding) on a batch plus the
    masked argmax, for small batches where torch's per-call overhead dominates.
    feat (B, C, n, n) float32; a, sq (B, n, n); weights as torch stores them (out, in, kh, kw).

    Only where a decision exists: the layers are evaluated on the bounding box of the active
    coefficients, grown by the receptive field still ahead (2, 1, 0 samples), which gives
    exactly the full block's values there (the zero padding outside the block is kept)."""
    nb, cin, n, _ = feat.shape
    ch = w0.shape[0]
    h0 = np.zeros((ch, n + 2, n + 2), np.float32)
    h1 = np.zeros((ch, n + 2, n + 2), np.float32)
    h2 = np.zeros((ch, n, n), np.float32)
    logit = np.zeros(4, np.float32)
    buf = np.zeros((n, n), np.float32)
    for b in range(nb):
        ya, yb, xa, xb = n, -1, n, -1
        for y in range(n):
            for x in range(n):
                out_cls[b, y, x] = 0
                if sq[b, y, x] > 0 or np.floor(a[b, y, x] + 0.5) > 0:
                    ya, yb, xa, xb = min(ya, y), max(yb, y), min(xa, x), max(xb, x)
        if yb < 0:
            continue
        ly0, ly1, lx0, lx1 = max(ya - 2, 0), min(yb + 3, n), max(xa - 2, 0), min(xb + 3, n)
        for o in range(ch):  # loops ordered so the innermost runs over pixels (SIMD)
            buf[ly0:ly1, lx0:lx1] = b0[o]
            for i in range(cin):
                w = w0[o, i, 0, 0]
                for y in range(ly0, ly1):
                    for x in range(lx0, lx1):
                        buf[y, x] += w * feat[b, i, y, x]
            for y in range(ly0, ly1):
                for x in range(lx0, lx1):
                    h0[o, y + 1, x + 1] = max(buf[y, x], 0.0)
        _conv3x3_relu(h0, w1, b1, h1, 1, buf, max(ya - 1, 0), min(yb + 2, n), max(xa - 1, 0), min(xb + 2, n))
        _conv3x3_relu(h1, w2, b2, h2, 0, buf, ya, yb + 1, xa, xb + 1)
        for y in range(ya, yb + 1):
            for x in range(xa, xb + 1):
                s = sq[b, y, x]
                r = np.floor(a[b, y, x] + 0.5)
                if s == 0 and r == 0:
                    continue
                for c in range(4):
                    acc = b3[c]
                    for i in range(ch):
                        acc += w3[c, i, 0, 0] * h2[i, y, x]
                    logit[c] = acc
                best = logit[0]
                cls = 0
                if s >= 2 and logit[1] > best:
                    best = logit[1]
                    cls = 1
                if s >= 1 and logit[2] > best:
                    best = logit[2]
                    cls = 2
                if r > s and logit[3] > best:
                    cls = 3
                out_cls[b, y, x] = cls


def drop_channels(drop: tuple[str, ...] | list[str]) -> list[int]:
    """Channel indices zeroed for an ablation (unknown group names are an error)."""
    idx = []
    for g in drop:
        if g not in GROUPS:
            raise UsageError(f"nrdoq: unknown input group {g!r} (have {', '.join(GROUPS)})")
        idx += list(range(*GROUPS[g]))
    return idx
