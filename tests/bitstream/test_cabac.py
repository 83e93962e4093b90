"""CABAC engine: round trip through an independent transcription of the spec's decoding
process (9.3.4.3), context initialisation (9.3.2.2), rate estimator consistency."""

from __future__ import annotations

import re

import numpy as np
import pytest

from codeclab.bitstream.cabac import (
    E_FRAC,
    ENTROPY_BITS,
    FRAC_ONE,
    RANGE_LPS,
    TRANS_LPS,
    TRANS_MPS,
    CabacWriter,
    encode_bin,
    encode_bypass,
    encode_terminate,
    init_contexts,
)
from codeclab.codecs.hevc.tables import INIT_VALUES_I, NUM_CTX


class SpecDecoder:
    """9.3.2.5 / 9.3.4.3 arithmetic decoding engine, written from the text (bit by bit)."""

    def __init__(self, data: bytes, ctx: np.ndarray) -> None:
        self.bits = "".join(f"{b:08b}" for b in data) + "0" * 64
        self.pos = 0
        self.range = 510
        self.offset = self.read(9)
        self.state = [int(v) >> 1 for v in ctx]
        self.mps = [int(v) & 1 for v in ctx]

    def read(self, n: int) -> int:
        v = int(self.bits[self.pos:self.pos + n], 2)
        self.pos += n
        return v

    def renorm(self) -> None:
        while self.range < 256:
            self.range <<= 1
            self.offset = (self.offset << 1) | self.read(1)

    def decision(self, ci: int) -> int:
        s = self.state[ci]
        lps = int(RANGE_LPS[s][(self.range >> 6) & 3])
        self.range -= lps
        if self.offset >= self.range:
            b = 1 - self.mps[ci]
            self.offset -= self.range
            self.range = lps
            if s == 0:
                self.mps[ci] = 1 - self.mps[ci]
            self.state[ci] = int(TRANS_LPS[s])
        else:
            b = self.mps[ci]
            self.state[ci] = int(TRANS_MPS[s])
        self.renorm()
        return b

    def bypass(self) -> int:
        self.offset = (self.offset << 1) | self.read(1)
        if self.offset >= self.range:
            self.offset -= self.range
            return 1
        return 0

    def terminate(self) -> int:
        self.range -= 2
        if self.offset >= self.range:
            return 1
        self.renorm()
        return 0


def test_published_table_rows():
    assert list(RANGE_LPS[0]) == [128, 176, 208, 240]
    assert list(RANGE_LPS[12]) == [77, 94, 111, 128]
    assert list(RANGE_LPS[62]) == [6, 7, 8, 9]
    assert list(RANGE_LPS[63]) == [2, 2, 2, 2]
    assert list(TRANS_LPS[:8]) == [0, 0, 1, 2, 2, 4, 4, 5] and TRANS_LPS[63] == 63
    assert TRANS_MPS[61] == 62 and TRANS_MPS[62] == 62 and TRANS_MPS[63] == 63


def test_context_init_matches_9_3_2_2():
    for iv in (154, 139, 63, 227, 79, 111):
        for qp in (-5, 0, 22, 37, 51, 60):
            m = (iv >> 4) * 5 - 45
            n = ((iv & 15) << 3) - 16
            pre = min(max(((m * min(max(qp, 0), 51)) >> 4) + n, 1), 126)
            mps = 1 if pre > 63 else 0
            state = pre - 64 if mps else 63 - pre
            assert init_contexts(np.array([iv]), qp)[0] == (state << 1) | mps
    # initValue 154 is the equiprobable state at every QP
    assert np.all(init_contexts(np.array([154]), 30) == 0b1)


@pytest.mark.parametrize("seed", range(6))
def test_round_trip_through_spec_decoder(seed):
    rng = np.random.default_rng(seed)
    w = CabacWriter(INIT_VALUES_I, int(rng.integers(0, 52)), capacity=1 << 15)
    ctx0 = w.ctx.copy()
    ops = []
    for _ in range(4000):
        kind = rng.choice(3, p=[0.7, 0.28, 0.02])
        if kind == 0:
            ci = int(rng.integers(0, NUM_CTX))
            b = int(rng.random() < (0.9 if ci % 2 else 0.3))
            encode_bin(w.eng, w.ctx, w.buf, ci, b)
        elif kind == 1:
            ci, b = -1, int(rng.integers(0, 2))
            encode_bypass(w.eng, w.buf, b)
        else:
            ci, b = -2, 0
            encode_terminate(w.eng, w.buf, 0)
        ops.append((kind, ci, b))
    encode_terminate(w.eng, w.buf, 1)
    data = w.getvalue()
    d = SpecDecoder(data, ctx0)
    for kind, ci, b in ops:
        got = d.decision(ci) if kind == 0 else d.bypass() if kind == 1 else d.terminate()
        assert got == b
    assert d.terminate() == 1
    # the last bit the decoder has read at the terminating bin is rbsp_stop_one_bit (the
    # flush's final 1), followed only by alignment zeros up to the end of the data
    end = 8 * len(data)
    assert d.bits[d.pos - 1] == "1" and set(d.bits[d.pos:end]) <= {"0"} and end - d.pos < 8
    assert data[-1] != 0


@pytest.mark.parametrize("ones", [0.999, 0.001])
def test_round_trip_runs_of_ff_and_carries(ones):
    """Long runs of bypass ones (zeros) make runs of 0xff bytes that wait for a carry in the
    byte-oriented writer (and runs of 0x00); every bin must still decode, and a writer that
    was never flushed must not pass for a stream."""
    rng = np.random.default_rng(11)
    w = CabacWriter(INIT_VALUES_I, 30, capacity=1 << 15)
    with pytest.raises(ValueError):
        w.getvalue()
    ctx0 = w.ctx.copy()
    ops = []
    for _ in range(20000):
        if rng.random() < 0.97:
            b = int(rng.random() < ones)
            encode_bypass(w.eng, w.buf, b)
            ops.append((1, -1, b))
        else:
            ci, b = int(rng.integers(0, NUM_CTX)), int(rng.integers(0, 2))
            encode_bin(w.eng, w.ctx, w.buf, ci, b)
            ops.append((0, ci, b))
    encode_terminate(w.eng, w.buf, 1)
    data = w.getvalue()
    runs = re.findall(rb"\xff+" if ones > 0.5 else rb"\x00+", data)
    assert max(map(len, runs)) >= 8  # the runs this test is for did occur
    d = SpecDecoder(data, ctx0)
    for kind, ci, b in ops:
        assert (d.decision(ci) if kind == 0 else d.bypass()) == b
    assert d.terminate() == 1


def test_estimate_mode_tracks_real_length_and_contexts():
    rng = np.random.default_rng(7)
    wr = CabacWriter(INIT_VALUES_I, 30, capacity=1 << 16)
    es = CabacWriter(INIT_VALUES_I, 30, estimate=True)
    for _ in range(20000):
        ci = int(rng.integers(0, 8))
        b = int(rng.random() < 0.15 + 0.1 * ci)
        encode_bin(wr.eng, wr.ctx, wr.buf, ci, b)
        encode_bin(es.eng, es.ctx, es.buf, ci, b)
        if rng.random() < 0.1:
            encode_bypass(wr.eng, wr.buf, 1)
            encode_bypass(es.eng, es.buf, 1)
    encode_terminate(wr.eng, wr.buf, 1)
    assert np.array_equal(wr.ctx, es.ctx)
    real = 8 * len(wr.getvalue())
    est = es.eng[E_FRAC] / FRAC_ONE
    assert abs(est - real) / real < 0.02
    assert es.eng[1] == 510 and es.buf.sum() == 0  # estimate mode never touches the coder


def test_entropy_table_shape():
    assert ENTROPY_BITS.shape == (128,)
    assert ENTROPY_BITS[0] == ENTROPY_BITS[1] == FRAC_ONE  # state 0: p = 1/2
    assert np.all(np.diff(ENTROPY_BITS[0::2]) <= 0) and np.all(np.diff(ENTROPY_BITS[1::2]) >= 0)


def test_snapshot_restore_and_overflow():
    w = CabacWriter(INIT_VALUES_I, 26, capacity=16)
    snap = w.snapshot()
    for i in range(2000):
        encode_bypass(w.eng, w.buf, i & 1)
    encode_terminate(w.eng, w.buf, 1)
    with pytest.raises(OverflowError):
        w.getvalue()
    w.restore(snap)
    assert np.array_equal(w.ctx, snap[0]) and np.array_equal(w.eng, snap[1])
