"""Quantization against per-element equations (HM's xQuant, H.265 8.6.1-8.6.3)."""

import numpy as np
import pytest

from codeclab.codecs.hevc.scalar_quant import chroma_qp, dequantize, quant_shift, quantize_sq, scaled_coeffs

QS = [26214, 23302, 20560, 18396, 16384, 14564]
LS = [40, 45, 51, 57, 64, 72]


def _ref_quant(c, qp, log2, bd, add512):
    qpp = qp + 6 * (bd - 8)
    qbits = 14 + qpp // 6 + (15 - bd - log2)
    a = abs(int(c))
    lvl = (a * QS[qpp % 6] + (add512 << (qbits - 9))) >> qbits
    return max(-lvl, -32768) if c < 0 else min(lvl, 32767)


def _ref_dequant(lvl, qp, log2, bd):
    qpp = qp + 6 * (bd - 8)
    bd_shift = bd + log2 + 10 - 15
    v = ((int(lvl) * 16 * LS[qpp % 6] << (qpp // 6)) + (1 << (bd_shift - 1))) >> bd_shift
    return min(max(v, -32768), 32767)


@pytest.mark.parametrize("bd", [8, 10])
@pytest.mark.parametrize("log2", [2, 3, 4, 5])
def test_quant_dequant_match_equations(bd, log2):
    rng = np.random.default_rng(log2 * 10 + bd)
    n = 1 << log2
    for qp in (-6 * (bd - 8), 0, 1, 22, 27, 37, 51):
        c = rng.integers(-40000, 40000, (n, n))
        c[0, 0] = 0
        lv = quantize_sq(c, qp, log2, bd)
        ref = np.vectorize(lambda v: _ref_quant(v, qp, log2, bd, 171))(c)
        assert np.array_equal(lv, ref)
        lv2 = quantize_sq(c, qp, log2, bd, rounding=85 / 512)
        assert np.array_equal(lv2, np.vectorize(lambda v: _ref_quant(v, qp, log2, bd, 85))(c))
        big = rng.integers(-40000, 40000, (n, n))
        dq = dequantize(big, qp, log2, bd)
        assert np.array_equal(dq, np.vectorize(lambda v: _ref_dequant(v, qp, log2, bd))(big))
        assert dq.dtype == np.int32


def test_batch_per_block_qp_and_scaled_units():
    rng = np.random.default_rng(1)
    c = rng.integers(-3000, 3000, (3, 8, 8))
    qps = np.array([22, 30, 37])
    lv = quantize_sq(c, qps, 3, 8)
    for i, q in enumerate(qps):
        assert np.array_equal(lv[i], quantize_sq(c[i], int(q), 3, 8))
    s = scaled_coeffs(c, qps, 3, 8)
    # level = floor(|s| + 1/3) up to HM's integer offset (171/512 exactly)
    assert np.array_equal(np.abs(lv), np.floor(np.abs(s) + 171 / 512).astype(int))
    assert quant_shift(22, 3, 8) == 14 + 3 + 4


def test_dequant_inverts_quant_roughly():
    c = np.full((4, 4), 1000)
    for qp in (10, 22, 32):
        step = 2 ** ((qp - 4) / 6)
        # c and d share one scale; the step there is Qstep * 2^transformShift (= 2^5 here)
        lv = quantize_sq(c, qp, 2, 8, rounding=0.5)
        d = dequantize(lv, qp, 2, 8)
        assert abs(int(d[0, 0]) - 1000) <= step * 32 / 2 + 1


def test_chroma_qp_table():
    # Table 8-10 (4:2:0): qPi < 30 -> qPi; 30..43 -> table; > 43 -> qPi - 6
    table = {30: 29, 31: 30, 32: 31, 33: 32, 34: 33, 35: 33, 36: 34, 37: 34, 38: 35, 39: 35,
             40: 36, 41: 36, 42: 37, 43: 37}
    for q in range(0, 58):
        exp = q if q < 30 else table.get(q, q - 6)
        assert chroma_qp(q, 1) == exp
    assert chroma_qp(51, 1, cb_qp_offset=6) == 51  # clipped qPi = 57 -> 51
    assert chroma_qp(40, 2, cr_qp_offset=-3) == 34
    assert chroma_qp(-12, 1, bit_depth_c=10) == -12 and chroma_qp(-20, 1, cb_qp_offset=-5, bit_depth_c=10) == -12
    assert chroma_qp(45, 1, chroma_format_idc=3) == 45
    with pytest.raises(ValueError):
        quantize_sq(np.zeros((4, 4)), -1, 2, 8)
