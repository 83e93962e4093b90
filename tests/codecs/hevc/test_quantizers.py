"""Quantizer interface: registry, QuantBatch, SQ + HM sign hiding (HDQ), rate-state helpers."""

from __future__ import annotations

import numpy as np
import pytest

from codeclab.base.errors import UsageError
from codeclab.codecs.hevc.lambdas import chroma_lambda, chroma_weight, intra_lambda, sqrt_lambda
from codeclab.codecs.hevc.quantizer import (
    RATE_K,
    QuantBatch,
    Quantizer,
    available_quantizers,
    extract_rate_state,
    get_quantizer,
    rate_table,
    register_quantizer,
    sign_hiding_hdq,
)
from codeclab.codecs.hevc.rdoq import RATE_CBF, RATE_GT1, RATE_LAST_X, RATE_SIG, rdoq_blocks
from codeclab.codecs.hevc.scalar_quant import QUANT_SCALES, chroma_qp, quant_shift, quantize_sq
from codeclab.codecs.hevc.scan import coeff_scan_4x4, subblock_scan


def standin_entropy_bits() -> np.ndarray:
    """PRIVATE STAND-IN (tests only) for the CABAC estimator's table, as in test_rdoq.py."""
    p = 0.5 * (0.01875 / 0.5) ** (np.arange(64) / 63)
    t = np.empty(128, dtype=np.int32)
    t[0::2] = np.round(-np.log2(1 - p) * 32768)
    t[1::2] = np.round(-np.log2(p) * 32768)
    return t


def make_batch(rng, log2, nb, sign_hiding=True, with_ctx=True):
    n = 1 << log2
    decay = np.exp(-np.add.outer(np.arange(n), np.arange(n)) * 4.0 / n)
    c = np.round(rng.laplace(0, 900, (nb, n, n)) * decay).astype(np.int32)
    qp = rng.integers(22, 38, nb)
    c_idx = rng.integers(0, 3, nb)
    return QuantBatch(coeffs=c, log2_size=log2, c_idx=c_idx, scan_idx=rng.integers(0, 3, nb),
                      qp=qp, lam=np.array([intra_lambda(q) for q in qp]),
                      transform_skip=np.zeros(nb, bool), bit_depth=8,
                      ctx=rng.integers(0, 126, (nb, RATE_K)).astype(np.uint8) if with_ctx else None,
                      sign_hiding=sign_hiding)


# ------------------------------------------------------------------------------ registry
def test_registry_and_protocol():
    assert {"sq", "rdoq"} <= set(available_quantizers())
    sq = get_quantizer("sq")
    rd = get_quantizer("rdoq", entropy_bits=standin_entropy_bits())
    for q in (sq, rd):
        assert isinstance(q, Quantizer)
    assert not sq.needs_rate_state and rd.needs_rate_state
    with pytest.raises(UsageError):
        get_quantizer("nope")
    with pytest.raises(UsageError):
        get_quantizer("sq", bogus=1)


def test_register_custom_quantizer():
    class Zero:
        name = "zero-test"
        needs_rate_state = False

        def quantize(self, batch):
            return np.zeros_like(batch.coeffs, dtype=np.int32)

    register_quantizer("zero-test", Zero)
    b = make_batch(np.random.default_rng(0), 2, 3)
    assert not get_quantizer("zero-test").quantize(b).any()


def test_batch_validation():
    with pytest.raises(ValueError):
        QuantBatch(np.zeros((2, 4, 8), np.int32), 2, 0, 0, 30, 1.0, False, 8)
    with pytest.raises(ValueError):
        QuantBatch(np.zeros((2, 4, 4), np.int32), 2, 0, 0, 30, 1.0, False, 8,
                   ctx=np.zeros((2, 5), np.uint8))
    b = QuantBatch(np.zeros((2, 4, 4), np.int32), 2, 0, 0, 30, 1.0, False, 8)
    assert len(b) == 2 and b.qp.shape == (2,)


def test_rdoq_needs_rate_state():
    b = make_batch(np.random.default_rng(1), 3, 2, with_ctx=False)
    with pytest.raises(UsageError):
        get_quantizer("rdoq", entropy_bits=standin_entropy_bits()).quantize(b)


def test_rdoq_with_the_coders_own_contexts():
    """Default entropy table and layout of the CABAC coder (skipped until it is present)."""
    cabac = pytest.importorskip("codeclab.bitstream.cabac")
    tables = pytest.importorskip("codeclab.codecs.hevc.tables")
    assert np.array_equal(cabac.ENTROPY_BITS, standin_entropy_bits())
    full = cabac.init_contexts(tables.INIT_VALUES_I, 32)
    rng = np.random.default_rng(2)
    b = make_batch(rng, 3, 6)
    b.ctx = np.stack([extract_rate_state(full, None, int(ci), 0) for ci in b.c_idx])
    out = get_quantizer("rdoq").quantize(b)
    ref = get_quantizer("rdoq", entropy_bits=standin_entropy_bits()).quantize(b)
    assert np.array_equal(out, ref)
    assert b.ctx[0][RATE_SIG] == full[tables.CTX_SIG + (0 if b.c_idx[0] == 0 else 27)]


# ----------------------------------------------------------------------------------- SQ
@pytest.mark.parametrize("log2", [2, 3, 4, 5])
def test_sq_without_hiding_is_quantize_sq(log2):
    b = make_batch(np.random.default_rng(log2), log2, 6, sign_hiding=False)
    out = get_quantizer("sq").quantize(b)
    assert np.array_equal(out, quantize_sq(b.coeffs, b.qp, log2, 8))


def _groups(log2, scan_idx):
    sb = subblock_scan(log2, scan_idx) if log2 > 2 else np.zeros((1, 2), int)
    c4 = coeff_scan_4x4(scan_idx)
    return [[(int(ys * 4 + c4[k][1]), int(xs * 4 + c4[k][0])) for k in range(16)] for xs, ys in sb]


@pytest.mark.parametrize("log2", [2, 3, 4, 5])
def test_sq_hiding_parity_and_minimal_change(log2):
    """Parity holds; each group changes at most one level by 1, and that change costs no more
    squared error (level units) than the best allowed change found by brute force."""
    rng = np.random.default_rng(20 + log2)
    b = make_batch(rng, log2, 60)
    plain = quantize_sq(b.coeffs, b.qp, log2, 8)
    hid = get_quantizer("sq").quantize(b)
    checked = 0
    for k in range(len(b)):
        qb = quant_shift(int(b.qp[k]), log2, 8)
        x = np.abs(b.coeffs[k].astype(np.float64)) * QUANT_SCALES[int(b.qp[k]) % 6] / 2.0 ** qb
        groups = _groups(log2, int(b.scan_idx[k]))
        last_group = max((g for g in range(len(groups))
                          if any(plain[k][p] for p in groups[g])), default=-1)
        if np.abs(plain[k]).sum() < 2:
            assert np.array_equal(hid[k], plain[k])
            continue
        for g, pos in enumerate(groups):
            vals = [int(plain[k][p]) for p in pos]
            nzk = [i for i in range(16) if vals[i]]
            diff = [i for i in range(16) if hid[k][pos[i]] != vals[i]]
            if not nzk or nzk[-1] - nzk[0] < 4:
                assert not diff
                continue
            need = (vals[nzk[0]] < 0) != (sum(abs(v) for v in vals) % 2 == 1)
            assert len(diff) == int(need)
            newv = [int(hid[k][p]) for p in pos]
            nzn = [i for i in range(16) if newv[i]]
            assert (newv[nzn[0]] < 0) == (sum(abs(v) for v in newv) % 2 == 1)
            if not need:
                continue
            checked += 1
            i = diff[0]
            assert abs(newv[i] - vals[i]) == 1

            def d_inc(j, step):
                a = abs(vals[j])
                return (x[pos[j]] - (a + step)) ** 2 - (x[pos[j]] - a) ** 2

            allowed = []
            top = nzk[-1] if g == last_group else 15
            for j in range(top + 1):
                a = abs(vals[j])
                if a:
                    allowed.append(d_inc(j, +1))
                    if not (j == nzk[0] and a == 1):
                        allowed.append(d_inc(j, -1))
                elif j > nzk[0] or (b.coeffs[k][pos[j]] >= 0) == (vals[nzk[0]] > 0):
                    allowed.append(d_inc(j, +1))
            got = d_inc(i, abs(newv[i]) - abs(vals[i]))
            assert got <= min(allowed) + 2 / 128 + 1e-12
    assert checked >= 5


def test_hdq_is_a_pure_function():
    rng = np.random.default_rng(4)
    b = make_batch(rng, 3, 5)
    lv = quantize_sq(b.coeffs, b.qp, 3, 8)
    keep = lv.copy()
    sign_hiding_hdq(lv, b.coeffs, 3, b.scan_idx, b.qp, 8)
    assert np.array_equal(lv, keep)


# --------------------------------------------------------------------------------- RDOQ
def test_rdoq_through_interface_equals_kernel():
    rng = np.random.default_rng(8)
    b = make_batch(rng, 4, 7)
    t = standin_entropy_bits()
    out = get_quantizer("rdoq", entropy_bits=t).quantize(b)
    ref = rdoq_blocks(b.coeffs, 4, b.c_idx, b.scan_idx, b.qp, b.lam, rate_table(b.ctx, t), 8, True)
    assert np.array_equal(out, ref)
    # batch of B equals B single-block batches
    for k in range(len(b)):
        one = QuantBatch(b.coeffs[k:k + 1], 4, b.c_idx[k:k + 1], b.scan_idx[k:k + 1],
                         b.qp[k:k + 1], b.lam[k:k + 1], b.transform_skip[k:k + 1], 8,
                         b.ctx[k:k + 1], True)
        assert np.array_equal(get_quantizer("rdoq", entropy_bits=t).quantize(one)[0], out[k])


# --------------------------------------------------------------------------- rate state
def test_rate_table_mps_cheaper():
    t = standin_entropy_bits()
    st = np.array([[2 * 40 + 1, 2 * 40, 0]], np.uint8)  # pState 40 MPS 1, MPS 0, pState 0
    bits = rate_table(st, t)
    assert bits.shape == (1, 3, 2)
    assert bits[0, 0, 1] < bits[0, 0, 0]  # MPS = 1 is the cheap bin
    assert bits[0, 1, 0] < bits[0, 1, 1]
    assert abs(int(bits[0, 2, 0]) - 32768) < 600 and abs(int(bits[0, 2, 1]) - 32768) < 600


def test_extract_rate_state_layout():
    names = ["coded_sub_block_flag", "sig_coeff_flag", "coeff_abs_level_greater1_flag",
             "coeff_abs_level_greater2_flag", "last_sig_coeff_x_prefix",
             "last_sig_coeff_y_prefix", "cbf_luma", "cbf_cb_cr"]
    sizes = [4, 42, 24, 6, 18, 18, 2, 4]
    offsets, o = {}, 3
    for nme, sz in zip(names, sizes):
        offsets[nme] = o
        o += sz
    full = np.arange(o, dtype=np.int64) % 126
    luma = extract_rate_state(full, offsets, 0, 1)
    assert luma.shape == (RATE_K,)
    assert luma[RATE_SIG + 5] == offsets["sig_coeff_flag"] + 5
    assert luma[RATE_GT1 + 15] == offsets["coeff_abs_level_greater1_flag"] + 15
    assert luma[RATE_CBF] == offsets["cbf_luma"] + 1
    ch = extract_rate_state(full, offsets, 2, 0)
    assert ch[RATE_SIG + 14] == offsets["sig_coeff_flag"] + 27 + 14
    assert ch[RATE_GT1 + 7] == offsets["coeff_abs_level_greater1_flag"] + 16 + 7
    assert ch[RATE_LAST_X + 2] == offsets["last_sig_coeff_x_prefix"] + 15 + 2
    assert ch[RATE_CBF] == offsets["cbf_cb_cr"]
    both = extract_rate_state(np.stack([full, full]), offsets, 0, 1)
    assert both.shape == (2, RATE_K) and np.array_equal(both[1], luma)
    with pytest.raises(UsageError):
        extract_rate_state(full, {"sig_coeff_flag": 0}, 0, 0)


# ------------------------------------------------------------------------------ lambdas
def test_lambdas_hm_values():
    # 0.57 * 2^((QP-12)/3), computed independently at the CTC QPs
    for qp, want in ((22, 5.74524), (27, 18.24), (32, 57.90839), (37, 183.84768)):
        assert intra_lambda(qp) == pytest.approx(want, rel=1e-3)
    assert intra_lambda(32, num_b_frames=7) == pytest.approx(0.57 * 0.65 * 2 ** (20 / 3))
    assert sqrt_lambda(intra_lambda(32)) == pytest.approx(intra_lambda(32) ** 0.5)


def test_chroma_lambda():
    for qp in range(0, 52):
        qpc = chroma_qp(qp, 1)
        assert chroma_weight(qp) == pytest.approx(2 ** ((qp - qpc) / 3))
        assert chroma_lambda(intra_lambda(qp), qp) == pytest.approx(
            intra_lambda(qp) * 2 ** ((qpc - qp) / 3))
    assert chroma_weight(20) == 1.0  # below 30 the mapping is the identity
    assert chroma_weight(-3, offset=-2) == 1.0  # qp + offset < 0: HM keeps qpc = qp


def test_encoder_adapter():
    """EncoderQuantizer speaks encoder.py's per-call signature and forwards HM lambdas."""
    from codeclab.codecs.hevc.quantizer import EncoderQuantizer
    rng = np.random.default_rng(12)
    b = make_batch(rng, 3, 4)
    sq = EncoderQuantizer("sq", 30).quantize(b.coeffs, 30, 3, 8, 0, 0, True)
    ref = get_quantizer("sq").quantize(QuantBatch(b.coeffs, 3, 0, 0, 30, 1.0, False, 8))
    assert np.array_equal(sq, ref)
    pytest.importorskip("codeclab.bitstream.cabac")
    pytest.importorskip("codeclab.codecs.hevc.tables")
    eq = EncoderQuantizer("rdoq", 30)
    assert eq.lam[0] == pytest.approx(intra_lambda(30))
    assert eq.lam[1] == pytest.approx(chroma_lambda(intra_lambda(30), 30))
    out = eq.quantize(b.coeffs, chroma_qp(30, 1), 3, 8, 1, 0, True)
    want = get_quantizer("rdoq").quantize(QuantBatch(
        b.coeffs, 3, 1, 0, chroma_qp(30, 1), eq.lam[1], False, 8,
        np.repeat(eq.state[1][None], len(b), axis=0), True))
    assert np.array_equal(out, want)
