"""RDOQ (rdoq.py) against an independent bit count of residual_coding (spec binarisation).

The reference counter below is a plain transcription of 7.3.8.11 / 9.3.3.x / 9.3.4.2.x
(cbf, last position prefix/suffix, coded_sub_block_flag, sig_coeff_flag, greater1/2 with the
spec's ctxSet rule, signs with sign hiding, coeff_abs_level_remaining as TR + EG(k+1)),
summing fixed per-context bit costs; distortion uses the normative dequantizer. RDOQ was
written from HM, this from the spec, so agreement on "RDOQ is cheaper" is a real check.
"""

from __future__ import annotations

import numpy as np
import pytest
from _synth import MEDIA

from codeclab.codecs.hevc.lambdas import intra_lambda
from codeclab.codecs.hevc.rdoq import (
    RATE_CBF,
    RATE_CSBF,
    RATE_GT1,
    RATE_GT2,
    RATE_K,
    RATE_LAST_X,
    RATE_LAST_Y,
    RATE_SIG,
    rdoq_blocks,
)
from codeclab.codecs.hevc.scalar_quant import QUANT_SCALES, dequantize, quant_shift, quantize_sq
from codeclab.codecs.hevc.scan import coeff_scan_4x4, subblock_scan
from codeclab.codecs.hevc.transform import forward_transform, forward_transform_skip


# --- PRIVATE STAND-IN (tests only) for the CABAC rate estimator of codeclab.bitstream.cabac:
# HM-style 128-entry table, index (pStateIdx << 1 | valMPS) ^ bin, from the HEVC probability
# model p_LPS(s) = 0.5 * (0.01875 / 0.5)^(s / 63). Replace by the real table once it lands.
def standin_entropy_bits() -> np.ndarray:
    p = 0.5 * (0.01875 / 0.5) ** (np.arange(64) / 63)
    t = np.empty(128, dtype=np.int32)
    t[0::2] = np.round(-np.log2(1 - p) * 32768)
    t[1::2] = np.round(-np.log2(p) * 32768)
    return t


def random_bits(rng: np.random.Generator, nb: int) -> np.ndarray:
    """(nb, RATE_K, 2) bit tables from random CABAC states (pStateIdx 0..62, random MPS)."""
    t = standin_entropy_bits()
    st = rng.integers(0, 126, (nb, RATE_K))
    return np.stack([t[st], t[st ^ 1]], axis=-1).astype(np.int32)


# ----------------------------------------------------------------- reference bit counter
_CTX_MAP = [0, 1, 4, 5, 2, 3, 4, 5, 6, 6, 8, 8, 7, 7, 8]


def _spec_sig_ctx(x, y, log2, luma, scan_idx, prev_csbf):
    if log2 == 2:
        sig = _CTX_MAP[(y << 2) + x]
    elif x + y == 0:
        sig = 0
    else:
        xp, yp = x & 3, y & 3
        if prev_csbf == 0:
            sig = 2 if xp + yp == 0 else 1 if xp + yp < 3 else 0
        elif prev_csbf == 1:
            sig = 2 if yp == 0 else 1 if yp == 1 else 0
        elif prev_csbf == 2:
            sig = 2 if xp == 0 else 1 if xp == 1 else 0
        else:
            sig = 2
        if luma:
            if (x >> 2, y >> 2) != (0, 0):
                sig += 3
            sig += (9 if scan_idx == 0 else 15) if log2 == 3 else 21
        else:
            sig += 9 if log2 == 3 else 12
    return sig


def _last_split(v):
    """(prefix, suffix length) of a last_sig_coeff position (7.4.9.11 inverted)."""
    if v < 4:
        return v, 0
    p = 4
    while True:
        nxt = p + 1
        if (1 << ((nxt >> 1) - 1)) * (2 + (nxt & 1)) > v:
            return p, (p >> 1) - 1
        p = nxt


def _remaining_len(value, k):
    """Bins of coeff_abs_level_remaining: TR prefix (cMax 4 << k) then EG(k+1) (9.3.3.11)."""
    if value < (4 << k):
        return (value >> k) + 1 + k
    v = value - (4 << k)
    kk = k + 1
    n = 0
    while v >= (1 << kk):
        v -= 1 << kk
        kk += 1
        n += 1
    return 4 + n + 1 + kk


def ref_bits(lv, log2, c_idx, scan_idx, rb, sbh):
    """Bits (1/32768) of cbf + residual_coding for signed levels lv (n, n) [y, x]."""
    n = 1 << log2
    luma = c_idx == 0
    nz = lv != 0
    if not nz.any():
        return int(rb[RATE_CBF, 0])
    total = int(rb[RATE_CBF, 1])
    sb = subblock_scan(log2, scan_idx) if log2 > 2 else np.zeros((1, 2), int)
    c4 = coeff_scan_4x4(scan_idx)

    def pos(i, k):
        return int(sb[i][0] * 4 + c4[k][0]), int(sb[i][1] * 4 + c4[k][1])

    last_i, last_k = max((i, k) for i in range(len(sb)) for k in range(16)
                         if nz[pos(i, k)[1], pos(i, k)[0]])
    lx, ly = pos(last_i, last_k)
    if scan_idx == 2:
        lx, ly = ly, lx
    if luma:
        off, shift = 3 * (log2 - 2) + ((log2 - 1) >> 2), (log2 + 1) >> 2
    else:
        off, shift = 0, log2 - 2
    cmax = 2 * log2 - 1
    for v, base in ((lx, RATE_LAST_X), (ly, RATE_LAST_Y)):
        p, slen = _last_split(v)
        for j in range(p):
            total += int(rb[base + off + (j >> shift), 1])
        if p < cmax:
            total += int(rb[base + off + (p >> shift), 0])
        total += 32768 * slen
    wg = n >> 2
    csbf = np.zeros((wg + 1, wg + 1), int)  # [xS, yS], border zero
    prev_any_gt1 = None  # None: no greater1 invocation yet in this TB
    for i in range(last_i, -1, -1):
        xs, ys = int(sb[i][0]), int(sb[i][1])
        sub_nz = any(nz[pos(i, k)[1], pos(i, k)[0]] for k in range(16))
        infer_dc = False
        if 0 < i < last_i:
            ctx = RATE_CSBF + min(1, csbf[xs + 1, ys] + csbf[xs, ys + 1])
            total += int(rb[ctx, int(sub_nz)])
            csbf[xs, ys] = int(sub_nz)
            infer_dc = sub_nz
        else:
            csbf[xs, ys] = 1
        prev = csbf[xs + 1, ys] + 2 * csbf[xs, ys + 1]
        start = last_k - 1 if i == last_i else 15
        if csbf[xs, ys]:
            for k in range(start, -1, -1):
                x, y = pos(i, k)
                if k > 0 or not infer_dc:
                    s = nz[y, x]
                    total += int(rb[RATE_SIG + _spec_sig_ctx(x, y, log2, luma, scan_idx, prev), int(s)])
                    if s:
                        infer_dc = False
        ks = [k for k in range(15, -1, -1) if nz[pos(i, k)[1], pos(i, k)[0]]]
        if not ks:
            continue
        absl = [abs(int(lv[pos(i, k)[1], pos(i, k)[0]])) for k in ks]
        ctx_set = 0 if (i == 0 or not luma) else 2
        if prev_any_gt1:
            ctx_set += 1
        g1ctx, any1, first_g1 = 1, False, None
        g1 = [0] * len(ks)
        for j in range(min(8, len(ks))):
            f = int(absl[j] > 1)
            g1[j] = f
            total += int(rb[RATE_GT1 + ctx_set * 4 + min(3, g1ctx), f])
            if f and first_g1 is None:
                first_g1 = j
            if g1ctx > 0:
                g1ctx = 0 if f else g1ctx + 1
            any1 = any1 or bool(f)
        prev_any_gt1 = any1
        g2 = [0] * len(ks)
        if first_g1 is not None:
            g2[first_g1] = int(absl[first_g1] > 2)
            total += int(rb[RATE_GT2 + ctx_set, g2[first_g1]])
        hidden = sbh and ks[0] - ks[-1] > 3
        total += 32768 * (len(ks) - int(hidden))
        rice = 0
        for j in range(len(ks)):
            base = 1 + g1[j] + g2[j]
            if base == ((3 if j == first_g1 else 2) if j < 8 else 1):
                total += 32768 * _remaining_len(absl[j] - base, rice)
                if absl[j] > 3 * (1 << rice):
                    rice = min(rice + 1, 4)
    return total


def rd_cost(coef, lv, log2, c_idx, scan_idx, qp, lam, rb, sbh, bit_depth=8):
    """SSE in 8-bit units (normative dequantizer, coefficient domain) + lam * bits."""
    tshift = 15 - bit_depth - log2
    d = coef.astype(np.float64) - dequantize(lv, qp, log2, bit_depth)
    dist = float((d * d).sum()) / 4.0 ** tshift / 4.0 ** (bit_depth - 8)
    return dist + lam * ref_bits(lv, log2, c_idx, scan_idx, rb, sbh) / 32768


# ----------------------------------------------------------------------------- helpers
def random_coeffs(rng, nb, log2, scale=300.0):
    n = 1 << log2
    decay = np.exp(-np.add.outer(np.arange(n), np.arange(n)) * 4.0 / n)
    return np.round(rng.laplace(0, scale, (nb, n, n)) * decay).astype(np.int32)


def real_residual_coeffs(log2, count, rng):
    """Transform coefficients of planar/DC-predicted blocks of a real picture (luma)."""
    av = pytest.importorskip("av")
    pics = sorted((MEDIA / "val").glob("*.png")) if MEDIA.is_dir() else []
    if not pics:
        pytest.skip("shared media absent")
    with av.open(str(pics[0])) as cont:
        img = next(cont.decode(video=0)).to_ndarray(format="gray").astype(np.int32)
    n = 1 << log2
    out = []
    for _ in range(count):
        y = int(rng.integers(1, img.shape[0] - n))
        x = int(rng.integers(1, img.shape[1] - n))
        blk = img[y:y + n, x:x + n]
        top, left = img[y - 1, x:x + n], img[y:y + n, x - 1]
        pred = (top.sum() + left.sum() + n) // (2 * n)  # DC prediction from neighbours
        out.append(blk - pred)
    res = np.stack(out)
    return forward_transform(res, log2, log2 == 2, 8)


def run_rdoq(coefs, log2, c_idx, scan_idx, qp, lam, bits, sbh):
    nb = coefs.shape[0]
    return rdoq_blocks(coefs, log2, np.full(nb, c_idx), np.full(nb, scan_idx), np.full(nb, qp),
                       np.full(nb, lam), bits, 8, sbh)


# ------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("log2", [2, 3, 4, 5])
def test_levels_are_hm_candidates(log2):
    rng = np.random.default_rng(log2)
    qp = 27
    c = random_coeffs(rng, 24, log2)
    lv = run_rdoq(c, log2, 0, 0, qp, intra_lambda(qp), random_bits(rng, 24), False)
    qb = quant_shift(qp, log2, 8)
    scaled = np.abs(c.astype(np.int64)) * QUANT_SCALES[qp % 6]
    rnd = (scaled + (1 << (qb - 1))) >> qb
    ceil = -(-scaled >> qb)
    a = np.abs(lv)
    assert np.all(a <= ceil)
    assert np.all((a == 0) | (a == rnd) | (a == rnd - 1))
    assert np.all((lv == 0) | (np.sign(lv) == np.sign(c)))


@pytest.mark.parametrize("log2,c_idx,scan_idx,ts", [(2, 0, 0, False), (2, 0, 2, False),
                                                     (2, 0, 1, True), (3, 0, 1, False),
                                                     (3, 1, 0, False), (4, 0, 0, False),
                                                     (4, 2, 0, False), (5, 0, 0, False)])
def test_rd_cost_below_sq_random(log2, c_idx, scan_idx, ts):
    rng = np.random.default_rng(100 + log2 * 7 + c_idx + scan_idx)
    nb = 40 if log2 < 5 else 16
    qp = 32
    lam = intra_lambda(qp)
    if ts:  # transform-skip: residual samples << transform shift
        c = forward_transform_skip(np.round(rng.laplace(0, 12, (nb, 4, 4))).astype(np.int32), 2, 8)
    else:
        c = random_coeffs(rng, nb, log2)
    bits = random_bits(rng, nb)
    sq = quantize_sq(c, qp, log2, 8)
    rd = run_rdoq(c, log2, c_idx, scan_idx, qp, lam, bits, False)
    cs = np.array([rd_cost(c[b], sq[b], log2, c_idx, scan_idx, qp, lam, bits[b], False) for b in range(nb)])
    cr = np.array([rd_cost(c[b], rd[b], log2, c_idx, scan_idx, qp, lam, bits[b], False) for b in range(nb)])
    assert np.mean(cr <= cs + 1e-9) >= 0.85, (cr - cs)
    assert cr.sum() < cs.sum()


@pytest.mark.parametrize("log2", [2, 3, 4, 5])
def test_rd_cost_below_sq_real_blocks(log2):
    rng = np.random.default_rng(7 + log2)
    nb = 40 if log2 < 5 else 16
    c = real_residual_coeffs(log2, nb, rng)
    for qp in (22, 37):
        lam = intra_lambda(qp)
        bits = random_bits(rng, nb)
        sq = quantize_sq(c, qp, log2, 8)
        rd = run_rdoq(c, log2, 0, 0, qp, lam, bits, True)
        cs = np.array([rd_cost(c[b], sq[b], log2, 0, 0, qp, lam, bits[b], True) for b in range(nb)])
        cr = np.array([rd_cost(c[b], rd[b], log2, 0, 0, qp, lam, bits[b], True) for b in range(nb)])
        assert np.mean(cr <= cs + 1e-9) >= 0.8, (qp, cr - cs)
        assert cr.sum() < 0.99 * cs.sum(), (qp, cr.sum(), cs.sum())


@pytest.mark.parametrize("log2", [2, 3, 4, 5])
def test_lambda_zero_is_rounding(log2):
    rng = np.random.default_rng(30 + log2)
    c = random_coeffs(rng, 20, log2)
    qp = 30
    lv = run_rdoq(c, log2, 0, 0, qp, 1e-12, random_bits(rng, 20), False)
    nearest = quantize_sq(c, qp, log2, 8, rounding=0.5)
    assert np.array_equal(lv, nearest)


def test_large_lambda_zeroes_blocks():
    """With equiprobable contexts coding anything costs more bits than cbf = 0. (With random
    states it need not: a cbf context far on the 'coded' side makes a lone DC level cheaper.)"""
    rng = np.random.default_rng(5)
    t = standin_entropy_bits()
    flat = np.broadcast_to(np.array([t[0], t[1]], np.int32), (8, RATE_K, 2))
    for log2 in (2, 3, 4, 5):
        c = random_coeffs(rng, 8, log2)
        lv = run_rdoq(c, log2, 0, 0, 32, 1e9, flat, True)
        assert not lv.any()


def test_group_zeroing_and_last_position_shrink_levels():
    """At moderate lambda RDOQ codes fewer/lower levels than SQ on sparse high-QP content."""
    rng = np.random.default_rng(11)
    c = random_coeffs(rng, 16, 5, scale=80.0)
    qp = 37
    sq = quantize_sq(c, qp, 5, 8)
    rd = run_rdoq(c, 5, 0, 0, qp, intra_lambda(qp), random_bits(rng, 16), False)
    assert np.abs(rd).sum() < np.abs(sq).sum()
    assert np.count_nonzero(rd) < np.count_nonzero(sq)


def _check_parity(lv, log2, scan_idx):
    sb = subblock_scan(log2, scan_idx) if log2 > 2 else np.zeros((1, 2), int)
    c4 = coeff_scan_4x4(scan_idx)
    checked = 0
    for xs, ys in sb:
        vals = [int(lv[ys * 4 + c4[k][1], xs * 4 + c4[k][0]]) for k in range(16)]
        ks = [k for k in range(16) if vals[k]]
        if ks and ks[-1] - ks[0] >= 4:
            s = sum(abs(v) for v in vals)
            assert (vals[ks[0]] < 0) == (s % 2 == 1)
            checked += 1
    return checked


@pytest.mark.parametrize("log2,scan_idx", [(2, 0), (2, 1), (3, 2), (4, 0), (5, 0)])
def test_sign_hiding_parity(log2, scan_idx):
    rng = np.random.default_rng(50 + log2)
    c = random_coeffs(rng, 40, log2, scale=3000.0)
    lv = run_rdoq(c, log2, 0, scan_idx, 27, intra_lambda(27), random_bits(rng, 40), True)
    assert sum(_check_parity(lv[b], log2, scan_idx) for b in range(40)) >= 10


def test_sign_hiding_costs_little():
    """RDOQ with hidden signs stays cheaper than SQ with HDQ hiding, sign savings counted."""
    from codeclab.codecs.hevc.quantizer import sign_hiding_hdq
    rng = np.random.default_rng(77)
    log2, qp, nb = 4, 27, 30
    c = random_coeffs(rng, nb, log2)
    bits = random_bits(rng, nb)
    lam = intra_lambda(qp)
    sq = sign_hiding_hdq(quantize_sq(c, qp, log2, 8), c, log2, np.zeros(nb, int), np.full(nb, qp), 8)
    rd = run_rdoq(c, log2, 0, 0, qp, lam, bits, True)
    cs = sum(rd_cost(c[b], sq[b], log2, 0, 0, qp, lam, bits[b], True) for b in range(nb))
    cr = sum(rd_cost(c[b], rd[b], log2, 0, 0, qp, lam, bits[b], True) for b in range(nb))
    assert cr < cs


def test_batch_equals_single_calls():
    rng = np.random.default_rng(3)
    log2, nb = 3, 12
    c = random_coeffs(rng, nb, log2)
    c_idx = rng.integers(0, 3, nb)
    scan_idx = rng.integers(0, 3, nb)
    qp = rng.integers(20, 40, nb)
    lam = np.array([intra_lambda(q) for q in qp])
    bits = random_bits(rng, nb)
    whole = rdoq_blocks(c, log2, c_idx, scan_idx, qp, lam, bits, 8, True)
    for b in range(nb):
        one = rdoq_blocks(c[b:b + 1], log2, c_idx[b:b + 1], scan_idx[b:b + 1], qp[b:b + 1],
                          lam[b:b + 1], bits[b:b + 1], 8, True)
        assert np.array_equal(whole[b], one[0])


def test_ten_bit_matches_eight_bit_scaled():
    """10-bit coefficients at QP+12 quantize like 8-bit ones (QpBdOffset and errScale)."""
    rng = np.random.default_rng(9)
    c8 = random_coeffs(rng, 10, 3)
    bits = random_bits(rng, 10)
    nb = 10
    a = rdoq_blocks(c8, 3, np.zeros(nb, int), np.zeros(nb, int), np.full(nb, 30),
                    np.full(nb, intra_lambda(30)), bits, 8, False)
    # a 10-bit residual is 4x larger, its transform shift 2 smaller: the same coefficients
    b = rdoq_blocks(c8, 3, np.zeros(nb, int), np.zeros(nb, int), np.full(nb, 30),
                    np.full(nb, intra_lambda(30)), bits, 10, False)
    assert np.array_equal(a, b)


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        rdoq_blocks(np.zeros((2, 8, 8), np.int32), 2, [0, 0], [0, 0], [30, 30], [1.0, 1.0],
                    np.zeros((2, RATE_K, 2), np.int32), 8, False)
    with pytest.raises(ValueError):
        rdoq_blocks(np.zeros((2, 4, 4), np.int32), 2, [0, 0], [0, 0], [30, 30], [1.0, 1.0],
                    np.zeros((2, 3, 2), np.int32), 8, False)


# ------------------------------------------- against the real (adaptive) CABAC residual coder
def cabac_bits(lv, log2, c_idx, scan_idx, full_ctx, sbh):
    """cbf + residual_coding bits from the syntax layer's CABAC coder in estimate mode
    (contexts adapt bin by bin, as in the real stream)."""
    cabac = pytest.importorskip("codeclab.bitstream.cabac")
    residual = pytest.importorskip("codeclab.codecs.hevc.residual")
    tables = pytest.importorskip("codeclab.codecs.hevc.tables")
    cbf_ci = tables.CTX_CBF_LUMA + 1 if c_idx == 0 else tables.CTX_CBF_CHROMA
    coded = bool(lv.any())
    bits = int(cabac.ENTROPY_BITS[int(full_ctx[cbf_ci]) ^ int(coded)])
    if coded:
        eng = cabac.new_engine(1)
        residual.code_residual(eng, full_ctx.copy(), np.zeros(16, np.uint8),
                               np.ascontiguousarray(lv, dtype=np.int32), log2, c_idx, scan_idx,
                               sbh, False, 0, residual.SB_SCAN, residual.C4_SCAN)
        bits += int(eng[cabac.E_FRAC])
    return bits


@pytest.mark.parametrize("log2", [2, 3, 4, 5])
def test_rd_cost_below_sq_with_real_cabac(log2):
    """Real picture blocks, initial I-slice contexts, bits counted by the adaptive coder."""
    cabac = pytest.importorskip("codeclab.bitstream.cabac")
    tables = pytest.importorskip("codeclab.codecs.hevc.tables")
    from codeclab.codecs.hevc.quantizer import QuantBatch, extract_rate_state, get_quantizer
    rng = np.random.default_rng(60 + log2)
    nb = 40 if log2 < 5 else 16
    c = real_residual_coeffs(log2, nb, rng)
    for qp in (22, 27, 32, 37):
        full = cabac.init_contexts(tables.INIT_VALUES_I, qp)
        lam = intra_lambda(qp)
        st = np.broadcast_to(extract_rate_state(full, None, 0, 1), (nb, RATE_K))
        batch = QuantBatch(c, log2, 0, 0, qp, lam, False, 8, np.ascontiguousarray(st), True)
        sq = get_quantizer("sq").quantize(batch)
        rd = get_quantizer("rdoq").quantize(batch)
        tshift = 15 - 8 - log2

        def cost(lv, b):
            d = c[b].astype(np.float64) - dequantize(lv, qp, log2, 8)
            return (d * d).sum() / 4.0 ** tshift + lam * cabac_bits(lv, log2, 0, 0, full, True) / 32768

        cs = np.array([cost(sq[b], b) for b in range(nb)])
        cr = np.array([cost(rd[b], b) for b in range(nb)])
        assert np.mean(cr <= cs + 1e-9) >= 0.75, (qp, cr - cs)
        assert cr.sum() < cs.sum(), (qp, cr.sum(), cs.sum())


def test_near_exhaustive_optimum_4x4():
    """On 4x4 blocks with few candidates, RDOQ's greedy HM search lands on the exhaustive
    optimum (over HM's candidate sets, spec bit count, fixed states) almost always."""
    import itertools

    rng = np.random.default_rng(0)
    qp, log2 = 32, 2
    lam = intra_lambda(qp)
    qb = quant_shift(qp, log2, 8)
    found, excess, total = 0, 0.0, 0.0
    tried = 0
    while tried < 60:
        c = random_coeffs(rng, 1, log2, scale=500.0)
        r = (np.abs(c[0].astype(np.int64)) * QUANT_SCALES[qp % 6] + (1 << (qb - 1))) >> qb
        idx = np.argwhere(r > 0)
        if not 1 <= len(idx) <= 5:
            continue
        tried += 1
        bits = random_bits(rng, 1)
        best = np.inf
        for combo in itertools.product(*[sorted({int(r[y, x]), int(r[y, x]) - 1, 0}) for y, x in idx]):
            lv = np.zeros((4, 4), np.int32)
            for (y, x), v in zip(idx, combo):
                lv[y, x] = v * np.sign(c[0][y, x])
            best = min(best, rd_cost(c[0], lv, log2, 0, 0, qp, lam, bits[0], False))
        got = rd_cost(c[0], run_rdoq(c, log2, 0, 0, qp, lam, bits, False)[0], log2, 0, 0, qp, lam,
                      bits[0], False)
        assert got >= best - 1e-6
        found += got <= best + 1e-6
        excess += got - best
        total += best
    assert found >= 0.9 * tried
    assert excess < 0.02 * total
