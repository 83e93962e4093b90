"""Neural RDOQ (codecs/hevc/nrdoq): valid levels, bit-exact streams, the numba and torch paths agree."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from _synth import random_quant_batch

from codeclab.codecs.hevc.quantizer import QuantBatch, available_quantizers, get_quantizer
from codeclab.codecs.hevc.rdoq import scan_tables
from codeclab.codecs.hevc.scalar_quant import quantize_sq, scaled_coeffs

sys.path.insert(0, str(Path(__file__).resolve().parent))

NAMES = ("nrdoq-fcn", "nrdoq-ar")


def _parity_ok(lv: np.ndarray, log2: int, scan_idx: np.ndarray) -> bool:
    scans, _ = scan_tables(log2)
    for b in range(lv.shape[0]):
        s = lv[b].reshape(-1)[scans[int(scan_idx[b])]]
        if np.abs(s).sum() < 2:
            continue
        for g in range(0, s.size, 16):
            nz = np.flatnonzero(s[g:g + 16])
            if len(nz) and nz[-1] - nz[0] >= 4:
                if (int(np.abs(s[g:g + 16]).sum()) & 1) != (1 if s[g + nz[0]] < 0 else 0):
                    return False
    return True


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_levels_valid(name):
    """Registered without importing the package; levels stay within RDOQ's reach of SQ
    (0 .. round(a) + 1 after sign hiding), signs follow the coefficients, SDH parity holds,
    the same batch gives the same levels, and a batch equals its blocks one by one."""
    assert name in available_quantizers()
    q = get_quantizer(name)
    assert q.needs_rate_state is True  # the rate inputs (features.py, group "rate")
    for log2 in (2, 3, 4, 5):
        batch = random_quant_batch(log2, 24, seed=log2)
        lv = q.quantize(batch)
        assert lv.shape == batch.coeffs.shape and lv.dtype == np.int32
        a = np.abs(scaled_coeffs(batch.coeffs, 27, log2, 8))
        assert np.all(np.abs(lv) <= np.floor(a + 0.5) + 1)
        assert np.all(lv * batch.coeffs >= 0)
        assert _parity_ok(lv, log2, batch.scan_idx)
        assert np.array_equal(lv, q.quantize(batch))
        single = np.concatenate([q.quantize(QuantBatch(batch.coeffs[i:i + 1], log2, batch.c_idx[i],
                                                       batch.scan_idx[i], 27, 10.0, False, 8,
                                                       batch.ctx[i:i + 1], True))
                                 for i in range(4)])
        assert np.array_equal(single, lv[:4])


@pytest.mark.parametrize("name", NAMES)
def test_changes_something_relative_to_sq(name):
    """The network does refine: on Laplacian blocks it differs from plain SQ somewhere."""
    q = get_quantizer(name)
    batch = random_quant_batch(3, 64, seed=5, qp=32)
    sq = quantize_sq(batch.coeffs, 32, 3, 8)
    q_lv = q.quantize(QuantBatch(batch.coeffs, 3, batch.c_idx, batch.scan_idx, 32, 10.0, False, 8, batch.ctx, False))
    assert not np.array_equal(np.abs(q_lv), np.abs(sq))


@pytest.mark.parametrize("name", NAMES)
def test_streams_decode_bit_exact(name):
    """Streams coded with each network decode in FFmpeg to our reconstruction (SDH on), with
    the SATD decisions (one block per call) and with the RD search (candidate batches)."""
    from test_hevc_decode import ffmpeg_decode, picture

    from codeclab.codecs.hevc.encoder import PictureEncoder
    from codeclab.codecs.hevc.params import StreamParams
    from codeclab.codecs.hevc.quantizer import EncoderQuantizer

    for bd, qp, content, preset, (w, h) in ((8, 27, "noise", "fast", (136, 72)),
                                            (10, 32, "stripes", "fast", (136, 72)),
                                            (8, 22, "noise", "medium", (64, 40))):
        planes = picture(content, bd, w, h, seed=qp)
        p = StreamParams(w, h, bd, 5, 1, qp, Fraction(25), True, True, True, True)
        pic = PictureEncoder(p, EncoderQuantizer(name, qp), preset).encode(planes)
        frames, bad = ffmpeg_decode(pic.data)
        assert not bad and len(frames) == 1
        assert all(np.array_equal(frames[0][c], pic.recon[c]) for c in range(3))


def test_hevc_codec_option_accepts_names():
    from codeclab.codecs.hevc import HevcOptions

    for name in NAMES:
        assert HevcOptions(quant=name).quant == name


def test_fcn_numba_path_equals_torch():
    """Single blocks run the FCN in numba, batches in torch: the same classes either way."""
    from codeclab.codecs.hevc.nrdoq import neural_quantizer as nq

    q = get_quantizer("nrdoq-fcn")
    for log2 in (2, 3, 4, 5):
        batch = random_quant_batch(log2, 6, seed=10 + log2)
        old = nq.NUMBA_FCN_MAX
        try:
            nq.NUMBA_FCN_MAX = 10 ** 9
            a, _ = q.classes(batch)
            nq.NUMBA_FCN_MAX = 0
            b, _ = q.classes(batch)
        finally:
            nq.NUMBA_FCN_MAX = old
        assert np.array_equal(a, b)


def test_rate_inputs_are_the_bits_of_the_blocks_contexts():
    """The "rate" inputs of a coefficient are bits(1) - bits(0) of its contexts' current states
    (CABAC entropy-bits table): sig_coeff_flag at the spec's 4x4 context (ctxIdxMap), and they
    follow the states handed over, not the QP."""
    from _synth import initial_rate_state

    from codeclab.bitstream.cabac import ENTROPY_BITS
    from codeclab.codecs.hevc.nrdoq.features import GROUPS, block_features
    from codeclab.codecs.hevc.rdoq import RATE_SIG

    ctx_idx_map = [0, 1, 4, 5, 2, 3, 4, 5, 6, 6, 8, 8, 7, 7, 8]  # Table 9-50 (9.3.4.2.5)
    coeffs = np.full((2, 4, 4), 300, np.int32)
    ctx = initial_rate_state(np.array([0, 0]), 30)
    ctx[1, RATE_SIG:RATE_SIG + 9] = np.arange(9) * 7  # other states for the second block
    feat = block_features(coeffs, 2, np.array([30, 30]), np.array([0, 0]), np.array([0, 0]), ctx)[0]
    r0 = GROUPS["rate"][0]
    eb = np.asarray(ENTROPY_BITS, np.float64) / 32768
    for b in range(2):
        for pos in range(15):
            st = int(ctx[b, RATE_SIG + ctx_idx_map[pos]])
            assert feat[b, r0, pos // 4, pos % 4] == pytest.approx((eb[st ^ 1] - eb[st]) / 4, abs=1e-6)
    assert not np.array_equal(feat[0, r0], feat[1, r0])
    assert np.array_equal(np.delete(feat[0], r0, 0), np.delete(feat[1], r0, 0))


def test_weights_for_other_inputs_are_refused(tmp_path):
    """Weights trained before the rate inputs (25 local channels) get one clear error."""
    from codeclab.base.errors import UsageError
    from codeclab.codecs.hevc.nrdoq.neural_quantizer import NRDOQQuantizer, default_weights

    with np.load(default_weights("fcn")) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["w.net.0.weight"] = arrays["w.net.0.weight"][:, :25]
    old = tmp_path / "old_fcn.npz"
    np.savez(old, **arrays)
    with pytest.raises(UsageError, match="take 25 inputs.*retrain"):
        NRDOQQuantizer("fcn", old)
